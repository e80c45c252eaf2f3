"""`client.alpha`: ONNX models run on chain through the inference contract.

An inference is one transaction to the inference contract's `run`, which calls the inference
precompile; the output comes back in the contract's `InferenceResult` event. Input is validated
and encoded, and the gas estimate is taken, before anything is signed: an unknown model or an
input that does not fit fails with the chain's revert reason and no transaction is sent.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opengradient import bounded_json
from opengradient.client.abi import (
    INFERENCE_RESULT_TOPIC,
    MODEL_INFERENCE_ARGS,
    MODEL_INFERENCE_TOPIC,
    RUN_ARGS,
    RUN_SELECTOR,
    ZKML_PROOF_ARGS,
    ZKML_PROOF_TOPIC,
)
from opengradient.client.chain import (
    AsyncDriver,
    Flow,
    HttpGetJson,
    Rpc,
    SendTx,
    SyncDriver,
    wait_for_receipt,
)
from opengradient.client.codec import MODEL_INPUT, MODEL_OUTPUT, decode_model_output, encode_model_input
from opengradient.client.rpc import revert_error
from opengradient.errors import (
    InferenceError,
    InvalidInputError,
    NetworkError,
    UnconfirmedTransactionError,
    VerificationError,
)
from opengradient.proof import Proof
from opengradient.types import (
    HistoricalInputQuery,
    InferenceMode,
    InferenceResult,
    ModelOutput,
    SchedulerParams,
)

if TYPE_CHECKING:
    from opengradient.client._http import HttpCore
    from opengradient.client.client import Client
    from opengradient.client.wallet import Wallet
    from opengradient.networks import Network

_MAX_CID_LENGTH = 256
_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


def parse_inference_mode(mode: Any) -> InferenceMode:
    """Accept the enum, its value or its name; anything else is a typed error."""
    if isinstance(mode, InferenceMode):
        return mode
    if isinstance(mode, str) and mode.strip().upper() in InferenceMode.__members__:
        return InferenceMode[mode.strip().upper()]
    if isinstance(mode, int) and not isinstance(mode, bool) and mode in {m.value for m in InferenceMode}:
        return InferenceMode(mode)
    raise InvalidInputError(f"unknown inference mode {mode!r}",
                            hint="use og.InferenceMode.VANILLA, TEE or ZKML")


def parse_model_cid(model_cid: Any) -> str:
    """A model CID is a non-empty string without surrounding whitespace."""
    if not isinstance(model_cid, str) or not model_cid.strip():
        raise InvalidInputError(f"model_cid must be a non-empty string, got {model_cid!r}",
                                hint="use the modelCid that model_hub.upload returned")
    cid = model_cid.strip()
    if len(cid) > _MAX_CID_LENGTH:
        raise InvalidInputError(f"model_cid is {len(cid)} characters long; CIDs are shorter than "
                                f"{_MAX_CID_LENGTH}")
    return cid


@dataclass(frozen=True)
class PreparedInference:
    """A validated, encoded inference request: everything needed before touching the chain."""

    model_cid: str
    mode: InferenceMode
    input_tuple: Any
    calldata: bytes
    input_hash: str


def prepare_inference(model_cid: Any, inference_mode: Any, model_input: Any) -> PreparedInference:
    """Validate and encode; raises `InvalidInputError` before any network I/O."""
    from eth_abi import encode
    from eth_utils import keccak

    cid = parse_model_cid(model_cid)
    mode = parse_inference_mode(inference_mode)
    input_tuple = encode_model_input(model_input)
    calldata = RUN_SELECTOR + encode(RUN_ARGS, [cid, int(mode), input_tuple])
    input_hash = "0x" + keccak(encode([MODEL_INPUT], [input_tuple])).hex()
    return PreparedInference(cid, mode, input_tuple, calldata, input_hash)


def _logs(receipt: dict[str, Any], address: str | None, topic: str) -> list[dict[str, Any]]:
    found = []
    for log in receipt.get("logs") or []:
        topics = log.get("topics") or []
        if not topics or str(topics[0]).lower() != topic:
            continue
        if address is not None and str(log.get("address", "")).lower() != address.lower():
            continue
        found.append(log)
    return found


def _hex_bytes(data: str) -> bytes:
    return bytes.fromhex(data[2:] if data.startswith("0x") else data)


def _is_empty(output: Any) -> bool:
    numbers, strings, jsons, _ = output
    return not numbers and not strings and not jsons


def output_from_api_json(model_output: dict[str, Any]) -> tuple[Any, ...]:
    """Turn the API's JSON form of a `ModelOutput` into the ABI tuple the codec decodes."""
    numbers = [(t["name"], [(int(v["value"]), int(v["decimals"])) for v in t.get("values", [])],
                [int(d) for d in t.get("shape", [])]) for t in model_output.get("numbers", [])]
    strings = [(t["name"], [str(v) for v in t.get("values", [])]) for t in model_output.get("strings", [])]
    jsons = [(j["name"], str(j["value"])) for j in model_output.get("jsons", [])]
    return (numbers, strings, jsons, bool(model_output.get("is_simulation_result", False)))


#: Where each mode's asynchronous result keeps `model_output` under `InferenceResult`.
_API_RESULT_PATHS: dict[InferenceMode, tuple[str, ...]] = {
    InferenceMode.VANILLA: ("VanillaResult", "model_output"),
    InferenceMode.ZKML: ("ZkmlResult", "model_output"),
    InferenceMode.TEE: ("TeeNodeResult", "Response", "VanillaResponse", "model_output"),
}


def parse_api_result(body: Any, mode: InferenceMode) -> tuple[Any, ...]:
    """Decode `GET …/inference/tx/{id}` for an inference run in `mode`: `inference_results[0]` is
    base64 JSON `{"InferenceResult": …}` with `model_output` at the mode's documented path
    (`VanillaResult.model_output`, `ZkmlResult.model_output`,
    `TeeNodeResult.Response.VanillaResponse.model_output`); any other shape is an `InferenceError`."""
    def unreadable(reason: str) -> InferenceError:
        return InferenceError(f"the inference API returned a {mode.name} result this SDK cannot read: {reason}",
                              hint="the node and this SDK disagree on the inference API's format")

    results = body.get("inference_results") if isinstance(body, dict) else None
    if not isinstance(results, list) or not results or not isinstance(results[0], str):
        raise unreadable("no base64 string in inference_results")
    try:
        document = bounded_json.loads(base64.b64decode(results[0], validate=True))
    except ValueError as exc:
        raise unreadable(f"inference_results[0] is not base64 JSON ({exc})") from None
    node: Any = document.get("InferenceResult") if isinstance(document, dict) else None
    path = ["InferenceResult"]
    for key in _API_RESULT_PATHS[mode]:
        if not isinstance(node, dict) or key not in node:
            raise unreadable(f"{'.'.join(path)} has no {key!r}")
        node, path = node[key], [*path, key]
    if not isinstance(node, dict):
        raise unreadable(f"{'.'.join(path)} is not an object")
    try:
        return output_from_api_json(node)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise unreadable(f"malformed model_output ({exc!r})") from None


class Alpha:
    """On-chain inference on the Alpha chain (sync methods, and `a`-prefixed async twins)."""

    def __init__(self, *, http: HttpCore, network: Network, wallet: Wallet | None,
                 max_retries: int = 2) -> None:
        self._network = network
        self._wallet = wallet
        self._sync = SyncDriver(http, network.rpc_url, wallet, chain_id=network.alpha_chain_id,
                                max_retries=max_retries)
        self._async = AsyncDriver(http, network.rpc_url, wallet, chain_id=network.alpha_chain_id,
                                  max_retries=max_retries)

    @property
    def network(self) -> Network:
        """The network this namespace talks to (explorer links, addresses)."""
        return self._network

    def infer(self, model_cid: str, inference_mode: InferenceMode | int | str,
              model_input: dict[str, Any], max_retries: int | None = None) -> InferenceResult:
        """Run `model_cid` on chain and return its output tensors, transaction hash and proof.

        `max_retries` bounds retries of network failures; only idempotent steps are retried
        (reads, and resending the same signed transaction), so a retry never pays twice.
        """
        prepared = prepare_inference(model_cid, inference_mode, model_input)
        return self._sync.run(self._infer_flow(prepared), max_retries=max_retries)

    async def ainfer(self, model_cid: str, inference_mode: InferenceMode | int | str,
                     model_input: dict[str, Any], max_retries: int | None = None) -> InferenceResult:
        """Async twin of `infer`."""
        prepared = prepare_inference(model_cid, inference_mode, model_input)
        return await self._async.run(self._infer_flow(prepared), max_retries=max_retries)

    # ---- workflows ----------------------------------------------------------------------------

    def new_workflow(self, model_cid: str, input_query: HistoricalInputQuery | dict[str, Any],
                     input_tensor_name: str,
                     scheduler_params: SchedulerParams | dict[str, int] | None = None) -> str:
        """Deploy a `PriceHistoryInference` workflow running `model_cid` on the candles of
        `input_query`, fed as tensor `input_tensor_name`; return its contract address.

        With `scheduler_params` the workflow is also registered with the chain's scheduler, which
        then calls `run()` every `frequency` seconds for `duration_hours`. If that registration
        fails, `WorkflowSchedulingError` is raised; it carries the deployed `contract_address`.
        """
        from opengradient.client.workflows import deploy_flow, prepare_workflow

        prepared = prepare_workflow(model_cid, input_query, input_tensor_name, scheduler_params)
        return self._sync.run(deploy_flow(self._sync._wallet().address, self._network.scheduler_address,
                                          prepared))

    async def anew_workflow(self, model_cid: str, input_query: HistoricalInputQuery | dict[str, Any],
                            input_tensor_name: str,
                            scheduler_params: SchedulerParams | dict[str, int] | None = None) -> str:
        """Async twin of `new_workflow`."""
        from opengradient.client.workflows import deploy_flow, prepare_workflow

        prepared = prepare_workflow(model_cid, input_query, input_tensor_name, scheduler_params)
        return await self._async.run(deploy_flow(self._async._wallet().address,
                                                 self._network.scheduler_address, prepared))

    def schedule_workflow(self, contract_address: str,
                          scheduler_params: SchedulerParams | dict[str, int]) -> str:
        """Register a deployed workflow with the scheduler; returns the registration's tx hash."""
        from opengradient.client.workflows import parse_address, schedule_flow

        address, params = parse_address(contract_address), _required_schedule(scheduler_params)
        return self._sync.run(schedule_flow(self._sync._wallet().address, self._network.scheduler_address,
                                            address, params))

    async def aschedule_workflow(self, contract_address: str,
                                 scheduler_params: SchedulerParams | dict[str, int]) -> str:
        """Async twin of `schedule_workflow`."""
        from opengradient.client.workflows import parse_address, schedule_flow

        address, params = parse_address(contract_address), _required_schedule(scheduler_params)
        return await self._async.run(schedule_flow(self._async._wallet().address,
                                                   self._network.scheduler_address, address, params))

    def run_workflow(self, contract_address: str) -> ModelOutput:
        """Run a workflow now (a transaction to its `run()`) and return the model's output."""
        from opengradient.client.workflows import parse_address, run_flow

        address = parse_address(contract_address)
        return self._sync.run(run_flow(self._sync._wallet().address, address))

    async def arun_workflow(self, contract_address: str) -> ModelOutput:
        """Async twin of `run_workflow`."""
        from opengradient.client.workflows import parse_address, run_flow

        address = parse_address(contract_address)
        return await self._async.run(run_flow(self._async._wallet().address, address))

    def read_workflow_result(self, contract_address: str) -> ModelOutput:
        """The output of the workflow's latest run (a read; no transaction, no key needed).

        Raises `InferenceError` when the workflow has no result yet.
        """
        from opengradient.client.workflows import parse_address, read_result_flow

        return self._sync.run(read_result_flow(parse_address(contract_address)))

    async def aread_workflow_result(self, contract_address: str) -> ModelOutput:
        """Async twin of `read_workflow_result`."""
        from opengradient.client.workflows import parse_address, read_result_flow

        return await self._async.run(read_result_flow(parse_address(contract_address)))

    def read_workflow_history(self, contract_address: str, num_results: int) -> list[ModelOutput]:
        """The outputs of the workflow's last `num_results` runs, newest first."""
        from opengradient.client.workflows import parse_address, parse_num_results, read_history_flow

        address, n = parse_address(contract_address), parse_num_results(num_results)
        return self._sync.run(read_history_flow(address, n))

    async def aread_workflow_history(self, contract_address: str, num_results: int) -> list[ModelOutput]:
        """Async twin of `read_workflow_history`."""
        from opengradient.client.workflows import parse_address, parse_num_results, read_history_flow

        address, n = parse_address(contract_address), parse_num_results(num_results)
        return await self._async.run(read_history_flow(address, n))

    def _infer_flow(self, prepared: PreparedInference) -> Flow[InferenceResult]:
        from eth_abi import decode
        from eth_utils import keccak

        contract = self._network.contract_address
        sender = self._sync._wallet().address
        call = {"from": sender, "to": contract, "data": "0x" + prepared.calldata.hex()}
        gas = int((yield Rpc("eth_estimateGas", (call,))), 16)
        tx_hash = yield SendTx(contract, prepared.calldata, gas + gas // 10)
        try:
            receipt = yield from wait_for_receipt(tx_hash)
        except NetworkError as exc:
            raise UnconfirmedTransactionError(
                f"inference transaction {tx_hash} was sent but its receipt could not be read",
                                   transaction_hash=tx_hash,
                                   hint="look it up before retrying: a retry runs (and pays) again") from exc
        if int(str(receipt.get("status", "0x1")), 16) == 0:
            block = receipt.get("blockNumber", "latest")
            try:
                yield Rpc("eth_call", (call, block))
            except Exception as exc:
                raise revert_error(str(exc), getattr(exc, "data", None), transaction_hash=tx_hash) from exc
            raise revert_error("execution reverted", None, transaction_hash=tx_hash)

        results = _logs(receipt, contract, INFERENCE_RESULT_TOPIC)
        if not results:
            raise InferenceError(f"transaction {tx_hash} emitted no InferenceResult event",
                                 hint="check that contract_address points at the inference contract")
        event_data = _hex_bytes(results[0]["data"])
        (output,) = decode([MODEL_OUTPUT], event_data)
        output_hash = "0x" + keccak(event_data).hex()
        if _is_empty(output):
            output = yield from self._deferred_output(receipt, tx_hash, prepared.mode)
            from eth_abi import encode

            output_hash = "0x" + keccak(encode([MODEL_OUTPUT], [output])).hex()
        model_output = decode_model_output(output)
        zkml: dict[str, Any] = {}
        if prepared.mode == InferenceMode.ZKML:
            zkml = zkml_reference(receipt)
        proof = Proof(
            kind="zkml" if zkml else "onchain",
            chain_id=self._sync.chain_id,
            transaction_hash=tx_hash,
            block_number=int(str(receipt["blockNumber"]), 16),
            contract_address=contract,
            model_cid=prepared.model_cid,
            inference_mode=prepared.mode.name,
            input_hash=prepared.input_hash,
            output_hash=output_hash,
            explorer_url=self._network.tx_url(tx_hash),
            **zkml,
        )
        return InferenceResult(transaction_hash=tx_hash, model_output=model_output, proof=proof)

    def _deferred_output(self, receipt: dict[str, Any], tx_hash: str,
                         mode: InferenceMode) -> Flow[tuple[Any, ...]]:
        """Asynchronous execution: the result is served by the API under the inference id."""
        from eth_abi import decode

        events = _logs(receipt, None, MODEL_INFERENCE_TOPIC)
        if not events:
            raise InferenceError(f"transaction {tx_hash} returned an empty output and no inference id")
        inference_id, _, _ = decode(MODEL_INFERENCE_ARGS, _hex_bytes(events[0]["data"]))
        url = f"{self._network.api_url}/artela-network/artela-rollkit/inference/tx/{inference_id}"
        body = yield HttpGetJson(url)
        return parse_api_result(body, mode)


def zkml_reference(receipt: dict[str, Any]) -> dict[str, Any]:
    """ZKML mode: the inference id and the proof hash the node recorded for it in a `ZkmlProof`
    event of the same transaction; empty when the node recorded no proof."""
    from eth_abi import decode

    for log in _logs(receipt, None, ZKML_PROOF_TOPIC):
        try:
            inference_id, proof_hash = decode(ZKML_PROOF_ARGS, _hex_bytes(log["data"]))
        except Exception:  # not an event this SDK can read
            continue
        return {"inference_id": str(inference_id), "zkml_proof_hash": "0x" + bytes(proof_hash).hex()}
    return {}


def _required_schedule(scheduler_params: Any) -> SchedulerParams:
    from opengradient.client.workflows import parse_scheduler_params

    params = parse_scheduler_params(scheduler_params)
    if params is None:
        raise InvalidInputError("scheduler_params is required",
                                hint="for example og.SchedulerParams(frequency=3600, duration_hours=24)")
    return params


def _verify_flow(proof: Proof, network: Network) -> Flow[bool]:
    from eth_abi import decode, encode
    from eth_utils import keccak

    def fail(reason: str) -> VerificationError:
        return VerificationError(f"proof of {proof.transaction_hash} does not verify: {reason}")

    if not proof.transaction_hash or not proof.contract_address:
        raise fail("it names no transaction or contract")
    if not _TX_HASH.fullmatch(str(proof.transaction_hash)):
        raise fail("its transaction hash is not 0x followed by 64 hex digits")
    chain_id = int((yield Rpc("eth_chainId")), 16)
    if proof.chain_id is not None and chain_id != proof.chain_id:
        raise fail(f"the client is on chain {chain_id}, the proof is for chain {proof.chain_id}")
    receipt = yield Rpc("eth_getTransactionReceipt", (proof.transaction_hash,))
    if receipt is None:
        raise fail("the transaction is not on this chain")
    if int(str(receipt.get("status", "0x0")), 16) != 1:
        raise fail("the transaction reverted")
    if proof.block_number is not None and int(str(receipt["blockNumber"]), 16) != proof.block_number:
        raise fail("the transaction is in another block")
    tx = yield Rpc("eth_getTransactionByHash", (proof.transaction_hash,))
    calldata = _hex_bytes(tx["input"])
    if str(tx.get("to", "")).lower() != proof.contract_address.lower() or calldata[:4] != RUN_SELECTOR:
        raise fail("the transaction is not a call to the inference contract's run")
    cid, mode, input_tuple = decode(RUN_ARGS, calldata[4:])
    if cid != proof.model_cid:
        raise fail(f"the transaction ran model {cid!r}, not {proof.model_cid!r}")
    if proof.inference_mode is not None and InferenceMode(mode).name != proof.inference_mode:
        raise fail(f"the transaction ran in mode {InferenceMode(mode).name}, not {proof.inference_mode}")
    if "0x" + keccak(encode([MODEL_INPUT], [input_tuple])).hex() != proof.input_hash:
        raise fail("the input hash does not match the transaction's input")
    results = _logs(receipt, proof.contract_address, INFERENCE_RESULT_TOPIC)
    if not results:
        raise fail("the transaction emitted no InferenceResult")
    data = _hex_bytes(results[0]["data"])
    (output,) = decode([MODEL_OUTPUT], data)
    if _is_empty(output):
        events = _logs(receipt, None, MODEL_INFERENCE_TOPIC)
        if not events:
            raise fail("the output is empty and there is no inference id")
        inference_id = decode(MODEL_INFERENCE_ARGS, _hex_bytes(events[0]["data"]))[0]
        body = yield HttpGetJson(
            f"{network.api_url}/artela-network/artela-rollkit/inference/tx/{inference_id}")
        data = encode([MODEL_OUTPUT], [parse_api_result(body, InferenceMode(mode))])
    if "0x" + keccak(data).hex() != proof.output_hash:
        raise fail("the output hash does not match the output recorded for the transaction")
    return True


def verify_onchain_proof(proof: Proof, client: Client) -> bool:
    """Check an on-chain proof against the client's chain: transaction, model, mode, input, output."""
    return client.alpha._sync.run(_verify_flow(proof, client.network))
