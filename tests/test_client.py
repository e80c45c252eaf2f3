"""The public surface of the seed (0.7.4): init, Client, enums, errors, keys kept secret."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest
from eth_abi import encode
from eth_utils import keccak

import opengradient as og
from opengradient.client import abi
from opengradient.client.rpc import decode_revert_data, revert_error
from opengradient.networks import PUBLIC

KEY = "0x" + "11" * 32
ADDRESS = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"


def test_init_returns_client_and_sets_global() -> None:
    client = og.init(private_key=KEY)
    assert isinstance(client, og.Client)
    assert og.global_client is client
    assert client.address == ADDRESS
    assert client.alpha_address == ADDRESS


def test_alpha_key_falls_back_and_can_differ() -> None:
    other = "0x" + "22" * 32
    client = og.Client(KEY, alpha_private_key=other)
    assert client.address == ADDRESS
    assert client.alpha_address != ADDRESS


def test_defaults_are_the_seed_values() -> None:
    client = og.Client(KEY)
    n = client.network
    assert n.rpc_url == "https://ogevmdevnet.opengradient.ai"
    assert n.api_url == "https://sdk-devnet.opengradient.ai"
    assert n.contract_address == "0x8383C9bD7462F12Eb996DD02F78234C0421A6FaE"
    assert n.llm_server_url == n.llm_streaming_server_url == "https://llm.opengradient.ai"
    assert n.hub_url == "https://api.opengradient.ai/api/v0"
    assert n.payments.network == "eip155:84532"


def test_constructor_arguments_override_the_preset() -> None:
    client = og.Client(KEY, rpc_url="http://node", api_url="http://api", contract_address="0xabc",
                       og_llm_server_url="http://llm")
    assert (client.network.rpc_url, client.network.api_url) == ("http://node", "http://api")
    assert client.network.contract_address == "0xabc"
    assert client.network.llm_server_url == "http://llm"
    assert PUBLIC.rpc_url == "https://ogevmdevnet.opengradient.ai"


def test_context_manager_closes() -> None:
    with og.Client(KEY) as client:
        assert client.alpha is client.alpha
    with pytest.raises(og.ConfigurationError, match="unknown network preset"):
        og.Client(KEY, network="moon")


@pytest.mark.parametrize("bad", ["0x1234", "not a key", "0x" + "zz" * 32, "0x" + "00" * 32])
def test_bad_keys_are_configuration_errors_that_do_not_echo_the_key(bad: str) -> None:
    with pytest.raises(og.ConfigurationError) as caught:
        og.Client(bad)
    assert bad not in str(caught.value)
    assert caught.value.__cause__ is None


def test_keys_never_show_in_repr_or_pickle() -> None:
    client = og.Client(KEY, password="hunter2-secret")
    text = repr(client) + str(client) + repr(client._wallet) + repr(client.alpha.__dict__)
    assert "11" * 32 not in text and "hunter2-secret" not in text
    with pytest.raises(TypeError, match="private key"):
        pickle.dumps(client)


TEE_LLM_0_7_4 = {"CLAUDE_3_5_HAIKU", "CLAUDE_3_7_SONNET", "CLAUDE_4_0_SONNET", "GEMINI_2_0_FLASH", "GEMINI_2_5_FLASH",
                 "GEMINI_2_5_FLASH_LITE", "GEMINI_2_5_PRO", "GPT_4O", "GPT_4_1_2025_04_14", "GROK_2_1212",
                 "GROK_2_VISION_LATEST", "GROK_3_BETA", "GROK_3_MINI_BETA", "GROK_4_1_FAST",
                 "GROK_4_1_FAST_NON_REASONING", "O4_MINI"}


def test_enums_match_0_7_4() -> None:
    assert TEE_LLM_0_7_4 <= set(og.TEE_LLM.__members__)
    assert og.TEE_LLM.GPT_4O.value == "openai/gpt-4o"
    assert og.TEE_LLM.CLAUDE_3_5_HAIKU.value == "anthropic/claude-3.5-haiku"
    assert all("/" in m.value for m in og.TEE_LLM)
    assert [m.value for m in og.InferenceMode] == [0, 1, 2]
    assert og.InferenceMode.ZKML == 1 and og.InferenceMode.TEE == 2
    assert og.x402SettlementMode.SETTLE_INDIVIDUAL is og.x402SettlementMode.SETTLE
    assert og.x402SettlementMode.SETTLE_INDIVIDUAL_WITH_METADATA is og.x402SettlementMode.SETTLE_METADATA
    assert str(og.x402SettlementMode.SETTLE_BATCH) == "settle-batch"
    assert [c.value for c in og.CandleType] == [0, 1, 2, 3, 4]
    assert og.CandleOrder.DESCENDING == 1


def test_enums_carry_todays_names_too() -> None:
    today = {"GPT_5": "openai/gpt-5", "CLAUDE_HAIKU_4_5": "anthropic/claude-haiku-4-5",
             "GEMINI_3_FLASH": "google/gemini-3-flash-preview", "GROK_4": "x-ai/grok-4",
             "SEED_1_6": "bytedance/seed-1.6"}
    assert {name: og.TEE_LLM[name].value for name in today} == today
    assert len({m.value for m in og.TEE_LLM}) == len(og.TEE_LLM)  # no accidental aliases
    modes = {m.name: m.value for m in og.x402SettlementMode}
    assert modes == {"SETTLE": "settle", "SETTLE_METADATA": "settle-metadata", "SETTLE_BATCH": "settle-batch",
                     "PRIVATE": "private", "BATCH_HASHED": "batch", "INDIVIDUAL": "individual"}


def test_types_of_the_seed() -> None:
    repo = og.ModelRepository("m", "1.00")
    assert repo.initialVersion == "1.00"
    assert og.FileUploadResult("bafk", 3).modelCid == "bafk"
    query = og.HistoricalInputQuery("ETH", "USDT", 10, 60, og.CandleOrder.ASCENDING,
                                    [og.CandleType.CLOSE, og.CandleType.VOLUME])
    assert query.to_abi() == ("ETH", "USDT", 10, 60, 0, [3, 4])
    params = og.SchedulerParams.from_dict({"frequency": 60, "duration_hours": 1})
    assert params is not None and params.frequency == 60 and params.end_time > 0


def test_error_hierarchy() -> None:
    for cls in (og.InvalidInputError, og.ContractRevertError, og.ModelNotFoundError, og.NetworkError,
                og.RequestTimeoutError, og.HTTPStatusError, og.AuthenticationError,
                og.VerificationError, og.ConfigurationError, og.RPCError):
        assert issubclass(cls, og.OpenGradientError)
    assert issubclass(og.InvalidInputError, ValueError)
    err = og.InvalidInputError("bad", hint="do this")
    assert str(err) == "bad (do this)"


def test_abi_constants_match_their_signatures() -> None:
    assert keccak(text=abi.RUN_SIGNATURE)[:4] == abi.RUN_SELECTOR
    assert keccak(text=abi.RUN_MODEL_INFERENCE_SIGNATURE)[:4] == abi.RUN_MODEL_INFERENCE_SELECTOR
    assert "0x" + keccak(text=abi.INFERENCE_RESULT_EVENT).hex() == abi.INFERENCE_RESULT_TOPIC
    assert "0x" + keccak(text=abi.MODEL_INFERENCE_EVENT).hex() == abi.MODEL_INFERENCE_TOPIC


def test_revert_data_decoding() -> None:
    data = "0x08c379a0" + encode(["string"], ["model not found: x"]).hex()
    assert decode_revert_data(data) == "model not found: x"
    assert isinstance(revert_error("execution reverted", data), og.ModelNotFoundError)
    panic = "0x4e487b71" + encode(["uint256"], [0x11]).hex()
    assert decode_revert_data(panic) == "panic 0x11 (arithmetic overflow or underflow)"
    assert decode_revert_data("0x1234") is None
    assert decode_revert_data("0x08c379a0zz") is None
    assert revert_error("execution reverted: custom", "0xdeadbeef").reason == "custom"


def test_import_is_cheap() -> None:
    code = ("import sys, json, opengradient; print(json.dumps(sorted(m for m in sys.modules "
            "if m.split('.')[0] in {'numpy','httpx','eth_abi','eth_account','web3','onnxruntime',"
            "'langchain_core','agents','starlette'})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_alpha_without_key_says_how_to_fix() -> None:
    client = og.Client(None)
    with pytest.raises(og.ConfigurationError, match="needs a private key"):
        client.alpha.infer("bafk", og.InferenceMode.VANILLA, {"x": [1.0]})


def test_the_library_logger_prints_nothing_unless_the_application_configures_logging() -> None:
    import logging

    handlers = logging.getLogger("opengradient").handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)


def test_retry_backoff_is_jittered_within_its_exponential_ceiling() -> None:
    from opengradient.client._http import HttpCore
    from opengradient.client.chain import SyncDriver

    driver = SyncDriver(HttpCore(timeout=None, transport=None, async_transport=None), "http://127.0.0.1:9", None)
    for attempt, ceiling in ((0, 0.2), (1, 0.4), (3, 1.6), (4, 2.0), (9, 2.0)):
        waits = {driver._backoff(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits), (attempt, waits)
        assert len(waits) > 1  # spread out, not one fixed delay
