"""Drive the official `opengradient==0.7.4` client against a devnet (payments chain base-sepolia),
with nothing but its documented constructor arguments."""

from __future__ import annotations

import json

from harness import Payments, check, config, expect

import opengradient as og

cfg = config()
client = og.Client(private_key=cfg["private_key"], rpc_url=cfg["rpc_url"], api_url=cfg["api_url"],
                   og_llm_server_url=cfg["llm_url"], og_llm_streaming_server_url=cfg["llm_url"])
HELLO = [{"role": "user", "content": "Hello! My name is Ada."}]
WEATHER = {"type": "function", "function": {
    "name": "get_current_weather", "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"]}}}


def chat(paid: Payments) -> str:
    result = client.llm.chat(og.TEE_LLM.GPT_4O, HELLO, max_tokens=50)
    paid.note(result.payment_hash)
    content = result.chat_output["content"]
    expect(bool(content), "empty reply")
    return f"reply {content[:40]!r}, finish {result.finish_reason}"


def stream(paid: Payments) -> str:
    text, finish = "", None
    for chunk in client.llm.chat(og.TEE_LLM.GPT_4O, HELLO, max_tokens=50, stream=True):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    paid.note(None)
    expect(bool(text) and finish is not None, f"stream gave {text!r}, finish {finish}")
    return f"{len(text)} characters, finish {finish}"


def completion(paid: Payments) -> str:
    result = client.llm.completion(og.TEE_LLM.GPT_4O, "Say hello.", max_tokens=30)
    paid.note(result.payment_hash)
    expect(bool(result.completion_output), "empty completion")
    return f"completion {result.completion_output[:40]!r}"


def tools(paid: Payments) -> str:
    result = client.llm.chat(og.TEE_LLM.GPT_4O, [{"role": "user", "content": "Weather in Dallas, in fahrenheit?"}],
                             tools=[WEATHER], tool_choice="auto", max_tokens=100)
    paid.note(result.payment_hash)
    calls = result.chat_output.get("tool_calls") or []
    expect(result.finish_reason == "tool_calls" and bool(calls), f"no tool call: {result.chat_output}")
    function = calls[0].get("function", calls[0])
    return f"tool call {function['name']}({json.loads(function['arguments'])})"


def settlement_modes(paid: Payments) -> str:
    for mode in og.x402SettlementMode:
        result = client.llm.chat(og.TEE_LLM.GPT_4O, HELLO, max_tokens=20, x402_settlement_mode=mode)
        paid.note(result.payment_hash)
        expect(bool(result.chat_output["content"]), f"empty reply in mode {mode.value}")
    return ", ".join(m.value for m in og.x402SettlementMode) + ": each answered and paid"


def infer(paid: Payments) -> str:
    result = client.alpha.infer(cfg["model_cid"], og.InferenceMode.VANILLA, {"X": [[1.0, 2.0, 3.0, 4.0]]})
    value = result.model_output["Y"]
    expect(float(value.reshape(())) == 11.125, f"Y = {value!r}")
    return f"Y = {value.tolist()} ({value.dtype}), tx {result.transaction_hash[:10]}…"


workflow: dict[str, str] = {}


def new_workflow(paid: Payments) -> str:
    query = og.HistoricalInputQuery(base="ETH", quote="USDT", total_candles=cfg["total_candles"],
                                    candle_duration_in_mins=60, order=og.CandleOrder.ASCENDING,
                                    candle_types=[og.CandleType.CLOSE])
    address = client.alpha.new_workflow(cfg["workflow_model_cid"], query, cfg["input_name"],
                                        scheduler_params=og.SchedulerParams(frequency=3600, duration_hours=1))
    workflow["address"] = address
    return f"deployed (official bytecode) and scheduled {address}"


def run_workflow(paid: Payments) -> str:
    output = client.alpha.run_workflow(workflow["address"])
    value = output.numbers[cfg["output_name"]]
    return f"{cfg['output_name']} = {value.tolist()}"


def read_workflow(paid: Payments) -> str:
    output = client.alpha.read_workflow_result(workflow["address"])
    expect(cfg["output_name"] in output.numbers, f"no {cfg['output_name']}: {output}")
    genesis = client.alpha.read_workflow_result(cfg["genesis_workflow"])
    expect(cfg["output_name"] in genesis.numbers, f"genesis workflow: {genesis}")
    return f"latest {output.numbers[cfg['output_name']].tolist()}; genesis workflow read too"


def workflow_history(paid: Payments) -> str:
    history = client.alpha.read_workflow_history(workflow["address"], 5)
    expect(len(history) >= 1, "no history")
    return f"{len(history)} result(s), newest first"


for name, run in [("chat", chat), ("stream", stream), ("completion", completion), ("tools", tools),
                  ("settlement modes", settlement_modes), ("alpha.infer", infer), ("workflow new", new_workflow),
                  ("workflow run", run_workflow), ("workflow read", read_workflow),
                  ("workflow history", workflow_history)]:
    check(name, run)
