"""The devnet driven the way the official clients drive the public network: raw JSON-RPC and REST
with the public ABIs and shapes, written out here as facts, and nothing of this SDK's client.

Each test is one path the official clients take: asynchronous inference results in each mode's
documented shape, ZKML outputs that hold only the model's tensors, a workflow deployed and read
through the public `PriceHistoryInference` ABI (which reads its candles from the precompile at
0x…F5), and the Model Hub's create-model / create-version / upload / list flow.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from eth_abi import decode, encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address

import opengradient as og
from opengradient.devnet.node import Devnet

# ---- the public interfaces, as facts --------------------------------------------------------

TENSOR = "(string,(int128,int128)[],uint32[])"
MODEL_INPUT = f"({TENSOR}[],(string,string[])[])"
MODEL_OUTPUT = f"({TENSOR}[],(string,string[])[],(string,string)[],bool)"
QUERY = "(string,string,uint32,uint32,uint8,uint8[])"
INFERENCE_CONTRACT = "0x8383C9bD7462F12Eb996DD02F78234C0421A6FaE"
SCHEDULER = "0x7179724De4e7FF9271FA40C0337c7f90C0508eF6"
PRICE_HISTORY = "0x00000000000000000000000000000000000000F5"


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


RUN = selector(f"run(string,uint8,{MODEL_INPUT})")
INFERENCE_RESULT = topic(f"InferenceResult({MODEL_OUTPUT})")
MODEL_INFERENCE_EVENT = topic(f"ModelInferenceEvent(string,(uint8,string,{MODEL_INPUT}),{MODEL_OUTPUT})")
INFERENCE_RESULT_EMITTED = topic(f"InferenceResultEmitted(address,{MODEL_OUTPUT})")
#: What each mode's asynchronous result nests `model_output` under, inside `InferenceResult`.
RESULT_PATHS = {0: ["VanillaResult"], 1: ["ZkmlResult"], 2: ["TeeNodeResult", "Response", "VanillaResponse"]}


class Raw:
    """JSON-RPC and REST against a devnet, through its HTTP app, signing with one dev key."""

    def __init__(self, net: Devnet, key: str) -> None:
        self.http = httpx.Client(transport=net._bridge.transport, base_url=net.url)
        self.account = Account.from_key(key)

    def rpc(self, method: str, *params: Any) -> Any:
        body = self.http.post("/rpc/alpha", json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                  "params": list(params)}).json()
        assert "error" not in body, body
        return body["result"]

    def call(self, to: str, data: bytes) -> bytes:
        return bytes.fromhex(self.rpc("eth_call", {"to": to, "data": "0x" + data.hex()}, "latest")[2:])

    def transact(self, to: str | None, data: bytes) -> dict[str, Any]:
        sender = self.account.address
        call = {"from": sender, "data": "0x" + data.hex(), **({"to": to} if to else {})}
        gas = int(self.rpc("eth_estimateGas", call), 16)
        price = int(self.rpc("eth_gasPrice"), 16)
        tx = {"chainId": int(self.rpc("eth_chainId"), 16), "type": 2, "data": data, "value": 0,
              "nonce": int(self.rpc("eth_getTransactionCount", sender, "pending"), 16), "gas": gas * 2,
              "maxFeePerGas": 2 * price, "maxPriorityFeePerGas": min(price, 10**9),
              **({"to": to_checksum_address(to)} if to else {})}
        raw = self.account.sign_transaction(tx).raw_transaction
        receipt: dict[str, Any] = self.rpc("eth_getTransactionReceipt", self.rpc("eth_sendRawTransaction",
                                                                                  "0x" + raw.hex()))
        assert receipt["status"] == "0x1"
        return receipt

    def close(self) -> None:
        self.http.close()


def logs(receipt: dict[str, Any], event_topic: str) -> list[bytes]:
    return [bytes.fromhex(log["data"][2:]) for log in receipt["logs"] if log["topics"][0] == event_topic]


def numbers(output: Any) -> dict[str, list[float]]:
    """Number tensors as the 0.7.4 client reads them: value / 10**decimals, flattened."""
    return {name: [float(Decimal(v) / 10 ** Decimal(d)) for v, d in values] for name, values, _ in output[0]}


@pytest.fixture(scope="module")
def deferred() -> Iterator[Devnet]:
    """A devnet whose on-chain inference is asynchronous: results come from the inference API."""
    with og.devnet.start(deferred_results=True) as net:
        yield net


def _run_raw(raw: Raw, cid: str, mode: int) -> dict[str, Any]:
    tensor = ("X", [(1, 0), (2, 0), (3, 0), (4, 0)], [1, 4])
    return raw.transact(INFERENCE_CONTRACT, RUN + encode(["string", "uint8", MODEL_INPUT], [cid, mode, ([tensor], [])]))


# ---- asynchronous results -------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0, 2], ids=["VANILLA", "TEE"])
def test_asynchronous_results_have_each_modes_documented_shape(deferred: Devnet, mode: int) -> None:
    raw = Raw(deferred, deferred.accounts[1].private_key)
    try:
        receipt = _run_raw(raw, deferred.model("price-regression").cid, mode)
        (event_output,) = decode([MODEL_OUTPUT], logs(receipt, INFERENCE_RESULT)[0])
        assert event_output[:3] == ((), (), ())  # deferred: the event's output is empty
        inference_id = decode(["string"], logs(receipt, MODEL_INFERENCE_EVENT)[0])[0]
        body = raw.http.get(f"/artela-network/artela-rollkit/inference/tx/{inference_id}").json()
        document = json.loads(base64.b64decode(body["inference_results"][0]))
        node = document["InferenceResult"]
        for key in RESULT_PATHS[mode]:
            assert list(node) == [key]
            node = node[key]
        output = node["model_output"]
        values = [float(Decimal(v["value"]) / 10 ** Decimal(v["decimals"])) for v in output["numbers"][0]["values"]]
        assert (output["numbers"][0]["name"], values, output["numbers"][0]["shape"]) == ("Y", [11.125], [1, 1])
        assert output["jsons"] == [] and output["is_simulation_result"] is False
    finally:
        raw.close()


def test_our_client_reads_exactly_the_documented_shapes(deferred: Devnet) -> None:
    model = deferred.model("price-regression")
    for mode in (og.InferenceMode.VANILLA, og.InferenceMode.TEE):
        result = deferred.client.alpha.infer(model.cid, mode, model.example_input)
        assert result.model_output["Y"].tolist() == [[11.125]]
    from opengradient.client.alpha import parse_api_result

    flat: dict[str, Any] = {"model_output": {"numbers": [], "strings": [], "jsons": []}}
    for mode, document in [(og.InferenceMode.TEE, {"InferenceResult": {"TeeNodeResult": flat}}),
                           (og.InferenceMode.VANILLA, {"InferenceResult": {"TeeNodeResult": flat}}),
                           (og.InferenceMode.ZKML, {"InferenceResult": {"ZkmlResult": {"Response": flat}}}),
                           (og.InferenceMode.VANILLA, {"VanillaResult": flat})]:
        body = {"inference_results": [base64.b64encode(json.dumps(document).encode()).decode()]}
        with pytest.raises(og.InferenceError, match=f"{mode.name} result this SDK cannot read"):
            parse_api_result(body, mode)
    bodies: list[Any] = [{}, {"inference_results": []}, {"inference_results": ["%%%"]}, []]
    for body in bodies:
        with pytest.raises(og.InferenceError, match="cannot read"):
            parse_api_result(body, og.InferenceMode.VANILLA)


# ---- ZKML: the output is what the model produced --------------------------------------------


def test_zkml_output_holds_only_the_models_tensors_and_the_proof_hash_is_an_event(devnet: Devnet) -> None:
    pytest.importorskip("ezkl", reason="ZKML needs the zkml extra: pip install 'opengradient[zkml]'")
    raw = Raw(devnet, devnet.accounts[2].private_key)
    try:
        receipt = _run_raw(raw, devnet.model("price-regression").cid, 1)
        (output,) = decode([MODEL_OUTPUT], logs(receipt, INFERENCE_RESULT)[0])
        assert [t[0] for t in output[0]] == ["Y"] and output[1] == () and output[2] == ()
        assert numbers(output) == {"Y": [11.125]}
        inference_id = decode(["string"], logs(receipt, MODEL_INFERENCE_EVENT)[0])[0]
        (proof_event,) = logs(receipt, topic("ZkmlProof(string,bytes32)"))
        event_id, proof_hash = decode(["string", "bytes32"], proof_event)
        assert event_id == inference_id
        document = raw.http.get(f"/zkml/proof/{inference_id}").json()
        assert document["proof_hash"] == "0x" + proof_hash.hex()
    finally:
        raw.close()


# ---- workflows through the public PriceHistoryInference ABI ---------------------------------


def test_a_workflow_through_the_public_abi(devnet: Devnet) -> None:
    from opengradient.client.workflows import creation_code
    from opengradient.devnet.services.models.forecasts import ETH_RETURN

    raw = Raw(devnet, devnet.accounts[3].private_key)
    try:
        cid = devnet.workflows.models[ETH_RETURN.name]
        query = ("ETH", "USDT", ETH_RETURN.total_candles, 60, 0, [3])
        deployed = raw.transact(None, creation_code() + encode(["string", "string", QUERY],
                                                                [cid, ETH_RETURN.input_name, query]))
        address = deployed["contractAddress"]
        public_getters = {"modelId()": ["string"], "inputName()": ["string"], "historicalContract()": ["address"],
                          "inputQuery()": ["string", "string", "uint32", "uint32", "uint8"]}
        got = {sig: decode(types, raw.call(address, selector(sig))) for sig, types in public_getters.items()}
        assert got == {"modelId()": (cid,), "inputName()": (ETH_RETURN.input_name,),
                       "historicalContract()": (PRICE_HISTORY.lower(),),
                       "inputQuery()": ("ETH", "USDT", ETH_RETURN.total_candles, 60, 0)}
        ran = raw.transact(address, selector("run()"))
        (emitted,) = [log for log in ran["logs"] if log["topics"][0] == INFERENCE_RESULT_EMITTED]
        assert emitted["address"].lower() == address.lower()
        assert emitted["topics"][1] == "0x" + bytes(12).hex() + raw.account.address[2:].lower()
        (result,) = decode([MODEL_OUTPUT], bytes.fromhex(emitted["data"][2:]))
        # The price-history precompile recorded the input the model ran on: the feed's candles.
        (_, (mode, ran_cid, model_input), _) = decode(["string", f"(uint8,string,{MODEL_INPUT})", MODEL_OUTPUT],
                                                      logs(ran, MODEL_INFERENCE_EVENT)[0])
        candles = devnet.price_feed.candles("ETH", "USDT", 60, ETH_RETURN.total_candles)
        assert (mode, ran_cid) == (0, cid)
        assert model_input[0][0] == (ETH_RETURN.input_name, tuple((c.close, 5) for c in candles),
                                     (1, ETH_RETURN.total_candles, 1))
        (latest,) = decode([MODEL_OUTPUT], raw.call(address, selector("getInferenceResult()")))
        assert latest == result and list(numbers(latest)) == [ETH_RETURN.output_name]
        (history,) = decode([f"{MODEL_OUTPUT}[]"], raw.call(
            address, selector("getLastInferenceResults(uint256)") + encode(["uint256"], [5])))
        assert len(history) == 2 and history[0] == result  # set-up ran it once, then run()
        end = int(raw.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16) + 3600
        registered = raw.transact(SCHEDULER, selector("registerTask(address,uint256,uint256)") +
                                  encode(["address", "uint256", "uint256"], [address, end, 600]))
        assert registered["logs"][0]["address"].lower() == SCHEDULER.lower()
    finally:
        raw.close()


# ---- the Model Hub's REST flow, as the official clients drive it ----------------------------


def test_hub_flow_as_the_official_clients_drive_it(devnet: Devnet) -> None:
    from opengradient.devnet.services.hub import DEV_EMAIL, DEV_PASSWORD

    with httpx.Client(transport=devnet._bridge.transport, base_url=devnet.url) as http:
        signed_in = http.post("/auth/v1/accounts:signInWithPassword",
                              json={"email": DEV_EMAIL, "password": DEV_PASSWORD, "returnSecureToken": True}).json()
        auth = {"Authorization": f"Bearer {signed_in['idToken']}"}
        created = http.post("/api/v0/models/", json={"name": "official-flow", "description": "d"}, headers=auth)
        assert created.status_code == 201 and created.json()["name"] == "official-flow"
        # 0.7.4's create_model then creates the version itself (passing "1.00" as the notes).
        version = http.post("/api/v0/models/official-flow/versions", json={"notes": "1.00", "is_major": False},
                            headers=auth, follow_redirects=False)
        assert version.status_code == 201 and version.json()["versionString"] == "1.00"
        model = http.get("/api/v0/models/official-flow", headers=auth).json()
        assert [v["versionString"] for v in model["versions"]] == ["1.00"]  # no empty extra version
        data = devnet.store.get(devnet.model("price-regression").cid)
        uploaded = http.post("/api/v0/models/official-flow/versions/1.00/files", headers=auth,
                             files={"file": ("model.onnx", data, "application/octet-stream")})
        assert uploaded.status_code == 201
        assert uploaded.json()["ipfsCid"] == devnet.model("price-regression").cid
        assert uploaded.json()["size"] == len(data)
        files = http.get("/api/v0/models/official-flow/versions/1.00/files", headers=auth).json()
        assert [(f["name"], f["size"]) for f in files] == [("model.onnx", len(data))]
