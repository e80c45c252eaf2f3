"""A DeFi agent prototype: on-chain forecasts and an on-chain risk model size an ETH/USDT position.

Run: `python examples/defi_agent.py` (needs the `langchain` and `devnet` extras). Everything runs on an
in-process devnet.

The agent's tools are AlphaSense tools — LangChain `StructuredTool`s whose every answer carries a
proof (the `ToolMessage` artifact):

* `eth_volatility_forecast` reads the ETH/USDT 1-hour volatility forecast workflow (a read, no
  transaction); its proof names the transaction that produced the forecast;
* `eth_return_forecast` reads the ETH/USDT 1-hour return forecast workflow the same way;
* `risk_regime` runs the devnet's risk classifier on chain (one transaction) on features built from
  the forecasts and the proposed leverage.

The policy is a prototype's, deterministic and small: volatility targeting with a fixed risk budget
(the position whose one-sigma hourly move costs 0.25 % of equity, at most 1x leverage), in the
direction of the return forecast when it beats trading costs, scaled down by the risk regime. The
tools plug into any LangGraph or OpenAI Agents agent the same way (see
`tests/devnet/test_alphasense_agents.py`); here the policy calls them so the numbers are the point.
At the end the agent prints its decision and re-verifies every proof it relied on against the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

import opengradient as og
from opengradient.alphasense import ToolType, WorkflowResultProof, create_read_workflow_tool, create_run_model_tool
from opengradient.workflow_models import (
    ETH_1_HOUR_PRICE_FORECAST,
    ETH_USDT_ONE_HOUR_VOLATILITY_FORECAST,
    format_percentage,
)

EQUITY_USDT = 10_000.0
#: The one-sigma hourly loss the desk accepts, as a fraction of equity.
RISK_BUDGET = 0.0025
MAX_LEVERAGE = 1.0
#: A forecast return smaller than this (round-trip fees and slippage) is not worth trading.
MIN_EDGE = 0.0005
#: How much of the volatility-targeted size each risk regime keeps.
REGIME_SCALE = {"low": 1.0, "medium": 0.6, "high": 0.3}


class RiskFeatures(BaseModel):
    """What the risk classifier is asked about (each scaled so 1.0 is a large value)."""

    volatility: float = Field(description="forecast 1h volatility; 1.0 is 2%")
    expected_return: float = Field(description="absolute forecast 1h return; 1.0 is 1%")
    leverage: float = Field(ge=0, le=10, description="position notional divided by equity")


def risk_features(volatility: float, expected_return: float, leverage: float) -> dict[str, Any]:
    """The classifier's input tensor: float32 features [1, 3]."""
    return {"features": [[volatility, expected_return, leverage]]}


def scalar(output: og.ModelOutput, tensor: str) -> str:
    """A workflow's one-value output as full-precision text (the agent parses it back)."""
    return repr(float(output.numbers[tensor].reshape(()).item()))


def build_tools(client: og.Client, risk_model_cid: str) -> dict[str, Any]:
    return {
        "volatility": create_read_workflow_tool(
            ToolType.LANGCHAIN, ETH_USDT_ONE_HOUR_VOLATILITY_FORECAST.contract_address, "eth_volatility_forecast",
            "Forecast of ETH/USDT volatility over the next hour (standard deviation of the hourly return).",
            alpha=client.alpha, output_formatter=lambda out: scalar(out, "Y")),
        "return": create_read_workflow_tool(
            ToolType.LANGCHAIN, ETH_1_HOUR_PRICE_FORECAST.contract_address, "eth_return_forecast",
            "Forecast of the ETH/USDT return over the next hour.",
            alpha=client.alpha, output_formatter=lambda out: scalar(out, "regression_output")),
        "risk": create_run_model_tool(
            ToolType.LANGCHAIN, risk_model_cid, "risk_regime", risk_features, inference=client.alpha,
            tool_input_schema=RiskFeatures,
            tool_description="Classify the market risk regime (low, medium or high) of a position.",
            model_output_formatter=lambda result: f"{result.model_output['label'][0]} "
                                                  f"{result.model_output['probabilities'].reshape(-1).tolist()}"),
    }


@dataclass
class Evidence:
    tool: str
    answer: str
    proof: og.Proof


class DefiAgent:
    """Observes through tools, keeps every answer's proof, decides."""

    def __init__(self, tools: dict[str, Any]) -> None:
        self.tools = tools
        self.evidence: list[Evidence] = []
        self._calls = 0

    def use(self, key: str, **args: Any) -> str:
        """Call a tool the way an agent's tool node does; keep the answer's proof."""
        tool = self.tools[key]
        self._calls += 1
        message = tool.invoke({"type": "tool_call", "id": f"call_{self._calls}", "name": tool.name, "args": args})
        if message.status != "success" or message.artifact is None:
            raise RuntimeError(f"{tool.name} did not answer: {message.content}")
        self.evidence.append(Evidence(tool.name, str(message.content), message.artifact))
        return str(message.content)

    def decide(self) -> dict[str, Any]:
        volatility = float(self.use("volatility"))
        expected = float(self.use("return"))
        target = min(RISK_BUDGET * EQUITY_USDT / volatility, MAX_LEVERAGE * EQUITY_USDT)
        direction = 0 if abs(expected) < MIN_EDGE else (1 if expected > 0 else -1)
        leverage = target / EQUITY_USDT
        regime_answer = self.use("risk", volatility=round(volatility / 0.02, 6),
                                 expected_return=round(abs(expected) / 0.01, 6), leverage=round(leverage, 6))
        regime, probabilities = regime_answer.split(" ", 1)
        notional = direction * target * REGIME_SCALE[regime]
        return {"volatility": volatility, "expected_return": expected, "target": target, "regime": regime,
                "probabilities": probabilities, "notional": notional}


def describe(proof: og.Proof) -> str:
    tx, model = str(proof.transaction_hash)[:14], str(proof.model_cid)[:16]
    if isinstance(proof, WorkflowResultProof):
        if proof.evidence == "read":
            return f"workflow result read at block {proof.read_block}"
        return (f"workflow result from tx {tx}… (block {proof.block_number}), model {model}…, "
                f"latest as of block {proof.read_block}")
    return f"on-chain inference tx {tx}… (block {proof.block_number}), model {model}…, {proof.inference_mode}"


def main() -> None:
    with og.devnet.start() as net:
        client = net.client
        agent = DefiAgent(build_tools(client, net.model("risk-classifier").cid))
        decision = agent.decide()

        side = "LONG" if decision["notional"] > 0 else "SHORT" if decision["notional"] < 0 else "FLAT"
        size = abs(decision["notional"])
        print(f"ETH/USDT 1h volatility forecast: {format_percentage(decision['volatility'])}")
        print(f"ETH/USDT 1h return forecast:     {format_percentage(decision['expected_return'])}")
        print(f"volatility-targeted size:        {decision['target']:,.2f} USDT "
              f"(risk budget {RISK_BUDGET:.2%} of {EQUITY_USDT:,.0f} USDT per 1h sigma)")
        print(f"risk regime (on chain):          {decision['regime']} {decision['probabilities']}")
        print(f"decision:                        {side} {size:,.2f} USDT of ETH "
              f"(1h sigma risk {size * decision['volatility']:,.2f} USDT, "
              f"expected 1h P&L {decision['notional'] * decision['expected_return']:+,.2f} USDT)")
        print("evidence:")
        for item in agent.evidence:
            verified = item.proof.verify(client)
            print(f"  {item.tool:<24} {item.answer}")
            print(f"  {'':<24} proof verified: {verified}; {describe(item.proof)}")


if __name__ == "__main__":
    main()
