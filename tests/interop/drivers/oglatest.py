"""Drive the latest official `opengradient` client against a devnet (payments chain base), with
nothing but its documented constructor arguments: `LLM.from_url` for a static gateway, `LLM(...)`
for the TEE-registry path, `Alpha(...)`. `BASE_MAINNET_RPC` (read by the client) is set by the
harness to the devnet's payments RPC, so no request leaves the machine."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from harness import Payments, check, config, expect

import opengradient as og

cfg = config()
HELLO = [{"role": "user", "content": "Hello! My name is Ada."}]
WEATHER = {"type": "function", "function": {
    "name": "get_current_weather", "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"]}}}
MODEL = og.TEE_LLM.GPT_4O if hasattr(og.TEE_LLM, "GPT_4O") else next(iter(og.TEE_LLM))
llm = og.LLM.from_url(private_key=cfg["private_key"], llm_server_url=cfg["llm_url"])
alpha = og.Alpha(private_key=cfg["private_key"], rpc_url=cfg["rpc_url"], api_url=cfg["api_url"])
loop = asyncio.new_event_loop()


def run(coroutine: Any) -> Any:
    return loop.run_until_complete(coroutine)


def approval(paid: Payments) -> str:
    result = llm.ensure_opg_approval(min_allowance=1.0, approve_amount=100.0)
    return f"Permit2 allowance {result}"


def chat(paid: Payments) -> str:
    result = run(llm.chat(MODEL, HELLO, max_tokens=50))
    paid.note(result.payment_hash)
    content = result.chat_output["content"]
    expect(bool(content), "empty reply")
    return f"reply {content[:40]!r}, finish {result.finish_reason}"


def stream(paid: Payments) -> str:
    async def collect() -> tuple[str, Any]:
        text, finish = "", None
        async for chunk in await llm.chat(MODEL, HELLO, max_tokens=50, stream=True):
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
        return text, finish

    text, finish = run(collect())
    paid.note(None)
    expect(bool(text) and finish is not None, f"stream gave {text!r}, finish {finish}")
    return f"{len(text)} characters, finish {finish}"


def completion(paid: Payments) -> str:
    result = run(llm.completion(MODEL, "Say hello.", max_tokens=30))
    paid.note(result.payment_hash)
    expect(bool(result.completion_output), "empty completion")
    return f"completion {result.completion_output[:40]!r}"


def tools(paid: Payments) -> str:
    result = run(llm.chat(MODEL, [{"role": "user", "content": "Weather in Dallas, in fahrenheit?"}],
                          tools=[WEATHER], tool_choice="auto", max_tokens=100))
    paid.note(result.payment_hash)
    calls = result.chat_output.get("tool_calls") or []
    expect(result.finish_reason == "tool_calls" and bool(calls), f"no tool call: {result.chat_output}")
    function = calls[0].get("function", calls[0])
    return f"tool call {function['name']}({json.loads(function['arguments'])})"


def settlement_modes(paid: Payments) -> str:
    seen = []
    for mode in og.x402SettlementMode:
        result = run(llm.chat(MODEL, HELLO, max_tokens=20, x402_settlement_mode=mode))
        paid.note(result.payment_hash)
        expect(bool(result.chat_output["content"]), f"empty reply in mode {mode.value}")
        blob = getattr(result, "data_settlement_blob_id", None)
        if mode.value == "batch":  # the devnet stores the batch data and says where
            expect(bool(blob), "a batch answer without x-settlement-walrus-blob-id")
        seen.append(f"{mode.value} (data tx {'yes' if result.data_settlement_transaction_hash else 'no'}, "
                    f"batch blob {'yes' if blob else 'no'})")
    return ", ".join(seen)


def registry(paid: Payments) -> str:
    discovered = og.LLM(private_key=cfg["private_key"], rpc_url=cfg["rpc_url"],
                        tee_registry_address=cfg["tee_registry"])
    result = run(discovered.chat(MODEL, HELLO, max_tokens=20))
    paid.note(result.payment_hash)
    expect(str(result.tee_endpoint).startswith("https://"), f"not an HTTPS enclave: {result.tee_endpoint}")
    registered = {t.lower().removeprefix("0x") for t in cfg["tee_ids"]}
    expect(str(result.tee_id).lower().removeprefix("0x") in registered, f"tee_id {result.tee_id} is not registered")
    expect(str(result.tee_payment_address).lower() == cfg["pay_to"].lower(), f"paid {result.tee_payment_address}")
    return (f"reply {result.chat_output['content'][:30]!r} from enclave {str(result.tee_id)[:10]}… at "
            f"{result.tee_endpoint} (TLS pinned to its registered certificate), paid to {result.tee_payment_address}")


def confidential(paid: Payments) -> str:
    """Oblivious HTTP through the devnet's relay, which pays: nothing is paid by this driver's key."""
    client = og.ConfidentialLLM(relay_url=cfg["relay_url"], rpc_url=cfg["rpc_url"],
                                registry_address=cfg["tee_registry"],
                                auth_headers=lambda: {"Authorization": f"Bearer {cfg['relay_key']}"})
    # The model as its string value: this release's ConfidentialLLM sends str() of an enum member
    # ("TEE_LLM.GPT_4O") rather than its value, which no gateway knows (its bug; documented).
    result = client.chat(model=MODEL.value, messages=HELLO, max_tokens=30)
    tee_id = str(result.proof.tee_id).lower().removeprefix("0x")
    expect(tee_id in {t.lower().removeprefix("0x") for t in cfg["tee_ids"]}, f"tee_id {tee_id} is not registered")
    return f"reply {str(result.content)[:30]!r}, verified by the client, from enclave {tee_id[:8]}…"


def infer(paid: Payments) -> str:
    result = alpha.infer(cfg["model_cid"], og.InferenceMode.VANILLA, {"X": [[1.0, 2.0, 3.0, 4.0]]})
    value = result.model_output["Y"]
    expect(float(value.reshape(())) == 11.125, f"Y = {value!r}")
    return f"Y = {value.tolist()} ({value.dtype}), tx {str(result.transaction_hash)[:10]}…"


workflow: dict[str, str] = {}


def new_workflow(paid: Payments) -> str:
    query = og.HistoricalInputQuery(base="ETH", quote="USDT", total_candles=cfg["total_candles"],
                                    candle_duration_in_mins=60, order=og.CandleOrder.ASCENDING,
                                    candle_types=[og.CandleType.CLOSE])
    address = alpha.new_workflow(cfg["workflow_model_cid"], query, cfg["input_name"],
                                 scheduler_params=og.SchedulerParams(frequency=3600, duration_hours=1))
    workflow["address"] = address
    return f"deployed (official bytecode) and scheduled {address}"


def run_workflow(paid: Payments) -> str:
    output = alpha.run_workflow(workflow["address"])
    return f"{cfg['output_name']} = {output.numbers[cfg['output_name']].tolist()}"


def read_workflow(paid: Payments) -> str:
    output = alpha.read_workflow_result(workflow["address"])
    expect(cfg["output_name"] in output.numbers, f"no {cfg['output_name']}: {output}")
    genesis = alpha.read_workflow_result(cfg["genesis_workflow"])
    expect(cfg["output_name"] in genesis.numbers, f"genesis workflow: {genesis}")
    return f"latest {output.numbers[cfg['output_name']].tolist()}; genesis workflow read too"


def workflow_history(paid: Payments) -> str:
    history = alpha.read_workflow_history(workflow["address"], 5)
    expect(len(history) >= 1, "no history")
    return f"{len(history)} result(s), newest first"


for name, step in [("ensure_opg_approval", approval), ("chat", chat), ("stream", stream),
                   ("completion", completion), ("tools", tools), ("settlement modes", settlement_modes),
                   ("TEE registry discovery", registry), ("confidential chat (OHTTP relay)", confidential),
                   ("alpha.infer", infer), ("workflow new", new_workflow),
                   ("workflow run", run_workflow), ("workflow read", read_workflow),
                   ("workflow history", workflow_history)]:
    check(name, step)
