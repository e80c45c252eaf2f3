"""Proofs of AlphaSense tool answers: where they are kept, and the proof of a workflow's result.

**Run-model tools** answer with the output of one `alpha.infer` transaction, and their proof is
that inference's ordinary `Proof` (kind `"onchain"`, or `"zkml"` in ZKML mode): `verify()`
re-reads the transaction and checks the model CID, the mode and the hashes of input and output.

**Workflow-read tools** answer with a workflow's latest stored result, which some earlier
transaction produced (a `run()` by anyone, the scheduler, or the workflow's set-up). The tool
finds that transaction through the contract's `InferenceResultEmitted` logs and returns a
`WorkflowResultProof` with `evidence="transaction"`. Its `verify(client)` checks, against the chain:

* the transaction succeeded in `block_number` and the workflow contract (`contract_address`)
  emitted `InferenceResultEmitted` in it with exactly this output (`output_hash` is keccak-256 of
  the ABI-encoded `ModelOutput`, as for on-chain inference);
* in the same transaction the inference precompile emitted `ModelInferenceEvent` for model
  `model_cid` in mode `inference_mode`, on the input whose hash is `input_hash` (the candles the
  price-history precompile at `0x…F5` fed the model; it emits the event), with that same output;
* the contract's `modelId()` is `model_cid`, so the contract is a workflow of that model;
* no later run of the workflow happened up to `read_block`, the block the tool read — so this
  was the workflow's current result when the agent got it.

It does not prove more than the chain does: the price feed's candles are trusted as the chain holds
them (synthetic on the devnet), and a VANILLA run is vouched for by the chain's execution, not by
a zero-knowledge proof.

When no producing transaction can be found (logs pruned, or an RPC that refuses `eth_getLogs`),
the proof has `evidence="read"`: no transaction, only that the contract held this output
(`output_hash`) at `read_block`. Verifying it re-reads the result at that block, which needs a
node that keeps old state. Either way `kind` is `"onchain"`.

`WorkflowResultProof` is a `Proof` with two more fields (`evidence`, `read_block`). Rebuild a
saved one (or the plain dict a LangGraph checkpoint makes of it) with `og.Proof.from_dict`, which
returns a `WorkflowResultProof` for data with `evidence`; `proof_from_dict` is the same function.

**Where proofs go.** A LangChain tool returns its proof as the `ToolMessage` artifact. An OpenAI
Agents tool and a Swarm function keep theirs in a `ProofLog` at `tool.proofs` (one shared log
may be passed to several tools as `proof_log=`); the OpenAI Agents log also records each
proof's tool call id. Every tool records into the `proof_log` it was given.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from opengradient.errors import ConfigurationError, InferenceError, RPCError, VerificationError
from opengradient.proof import Proof

if TYPE_CHECKING:
    from opengradient.client.chain import Flow
    from opengradient.client.client import Client
    from opengradient.networks import Network
    from opengradient.types import ModelOutput

Evidence = Literal["transaction", "read"]

#: Blocks per `eth_getLogs` request when looking back for the run that produced a result.
LOG_WINDOW = 10_000
#: How far back (in blocks) to look for it before settling for a read proof.
MAX_LOOKBACK = 500_000


# ---------------------------------------------------------------------------------------------
# Where the proofs of OpenAI Agents and Swarm tools are kept
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolProof:
    """One answer of a tool: which tool, its proof, the tool call id (if the framework gave one)
    and the text the agent got."""

    tool_name: str
    proof: Proof
    call_id: str | None = None
    output: str = ""


class ProofLog:
    """The proofs tools produced, in order; safe to share between tools and threads.

    Iterating gives the `Proof`s; `records` gives them with tool name, call id and answer text.
    """

    def __init__(self) -> None:
        self._records: list[ToolProof] = []
        self._lock = threading.Lock()

    def add(self, tool_name: str, proof: Proof, *, call_id: str | None = None, output: str = "") -> ToolProof:
        """Record one answer's proof."""
        record = ToolProof(tool_name, proof, call_id, output)
        with self._lock:
            self._records.append(record)
        return record

    @property
    def records(self) -> list[ToolProof]:
        """Every record, oldest first (a copy)."""
        with self._lock:
            return list(self._records)

    @property
    def latest(self) -> Proof | None:
        """The newest proof, or None."""
        with self._lock:
            return self._records[-1].proof if self._records else None

    def for_call(self, call_id: str) -> Proof | None:
        """The proof of the tool call with this id (OpenAI Agents tools record call ids)."""
        with self._lock:
            return next((r.proof for r in reversed(self._records) if r.call_id == call_id), None)

    def for_tool(self, tool_name: str) -> list[Proof]:
        """The proofs one tool produced, oldest first."""
        with self._lock:
            return [r.proof for r in self._records if r.tool_name == tool_name]

    def verify_all(self, client: Client | None = None) -> bool:
        """Verify every proof (True, or `VerificationError` naming the first that fails)."""
        return all(p.verify(client) for p in self)

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._records.clear()

    def __iter__(self) -> Iterator[Proof]:
        return iter([r.proof for r in self.records])

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __getitem__(self, index: int) -> Proof:
        with self._lock:
            return self._records[index].proof

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        return f"ProofLog({len(self)} proofs)"


def proofs_of(tool: Any) -> ProofLog:
    """The `ProofLog` of an OpenAI Agents or Swarm tool (its `proofs` attribute, typed).

    LangChain tools have none: their proofs are the artifacts of the `ToolMessage`s they answer
    (or pass `proof_log=` when creating them).
    """
    log = getattr(tool, "proofs", None)
    if not isinstance(log, ProofLog):
        raise TypeError(f"{type(tool).__name__} has no AlphaSense proof log; a LangChain tool's proof is the "
                        "artifact of its ToolMessage, or pass proof_log= when creating the tool")
    return log


# ---------------------------------------------------------------------------------------------
# The proof of a workflow's latest result
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowResultProof(Proof):
    """Evidence for a workflow's latest result (see the module docs for what it proves).

    `evidence="transaction"`: `transaction_hash`/`block_number` name the run that produced the
    result, `model_cid`/`inference_mode`/`input_hash` come from the precompile's event in it, and
    `read_block` is the block the result was read at. `evidence="read"`: no transaction was
    found; `block_number` and `read_block` are the block the result was read at.
    """

    evidence: Evidence = "transaction"
    read_block: int | None = None

    def verify(self, client: Client | None = None, *, onchain: bool = False) -> bool:
        """Re-check the proof against the chain; True, or `VerificationError` with the reason."""
        if client is None:
            import opengradient

            client = opengradient.global_client
            if client is None:
                raise ConfigurationError("verifying a proof needs a client",
                                         hint="pass client= or call og.init first")
        return client.alpha._sync.run(verify_workflow_flow(self, client.network))


def proof_from_dict(data: dict[str, Any]) -> Proof:
    """Rebuild a proof saved with `to_dict()`: a `WorkflowResultProof` when it has `evidence`
    (the same as `og.Proof.from_dict`)."""
    return Proof.from_dict(data)


# -- encoding helpers ------------------------------------------------------------------------------


def _hex(data: Any) -> bytes:
    text = str(data)
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def _keccak_hex(data: bytes) -> str:
    from eth_utils import keccak

    return "0x" + keccak(data).hex()


def _selector(signature: str) -> bytes:
    from eth_utils import keccak

    return keccak(text=signature)[:4]


def _qty(value: Any) -> int:
    return int(str(value), 16) if isinstance(value, str) else int(value)


def _is_log(log: dict[str, Any], address: str, topic: str) -> bool:
    topics = log.get("topics") or []
    return bool(topics) and str(topics[0]).lower() == topic and str(log.get("address", "")).lower() == address.lower()


def _position(log: dict[str, Any]) -> tuple[int, int]:
    return _qty(log.get("blockNumber", 0)), _qty(log.get("logIndex", 0))


def _view_at(address: str, data: bytes, block: str) -> Flow[bytes]:
    from opengradient.client.chain import Rpc

    raw = yield Rpc("eth_call", ({"to": address, "data": "0x" + data.hex()}, block))
    return _hex(raw)


def _model_id(address: str, block: str) -> Flow[str | None]:
    """The workflow's `modelId()`, or None when the contract has no such view."""
    from eth_abi import decode

    from opengradient.errors import ContractRevertError

    try:
        raw = yield from _view_at(address, _selector("modelId()"), block)
        (cid,) = decode(["string"], raw)
    except (ContractRevertError, RPCError, ValueError, TypeError):
        return None
    return str(cid)


def _result_logs(address: str, first: int, last: int) -> Flow[list[dict[str, Any]]]:
    from opengradient.client.chain import Rpc
    from opengradient.client.workflows import INFERENCE_RESULT_EMITTED_TOPIC

    logs = yield Rpc("eth_getLogs", ({"address": address, "topics": [INFERENCE_RESULT_EMITTED_TOPIC],
                                      "fromBlock": hex(first), "toBlock": hex(last)},))
    return [log for log in logs or [] if _is_log(log, address, INFERENCE_RESULT_EMITTED_TOPIC)]


def _latest_result_log(address: str, block: int) -> Flow[dict[str, Any] | None]:
    """The newest `InferenceResultEmitted` of `address` at or before `block` (None if none is
    found within `MAX_LOOKBACK` blocks, or the node refuses the log query)."""
    last = block
    while last >= 0 and block - last < MAX_LOOKBACK:
        first = max(0, last - LOG_WINDOW + 1)
        try:
            logs = yield from _result_logs(address, first, last)
        except RPCError:
            return None
        if logs:
            return max(logs, key=_position)
        last = first - 1
    return None


def _precompile_inference(receipt: dict[str, Any], result_log: dict[str, Any]) -> tuple[Any, ...] | None:
    """The precompile's `(modelCID, mode, input, output bytes)` for the result in `result_log`: its
    nearest `ModelInferenceEvent` before that log in the same transaction."""
    from eth_abi import decode, encode

    from opengradient.client.abi import MODEL_INFERENCE_ARGS, MODEL_INFERENCE_TOPIC
    from opengradient.client.codec import MODEL_OUTPUT
    from opengradient.networks import INFERENCE_PRECOMPILE_ADDRESS, PRICE_HISTORY_PRECOMPILE_ADDRESS

    before = _qty(result_log.get("logIndex", 0))
    candidates = [log for log in receipt.get("logs") or []
                  if any(_is_log(log, a, MODEL_INFERENCE_TOPIC)
                         for a in (PRICE_HISTORY_PRECOMPILE_ADDRESS, INFERENCE_PRECOMPILE_ADDRESS))
                  and _qty(log.get("logIndex", 0)) < before]
    for log in sorted(candidates, key=_position, reverse=True):
        try:
            _, (mode, cid, model_input), output = decode(MODEL_INFERENCE_ARGS, _hex(log["data"]))
        except Exception:  # not an event this SDK can read: look at the one before
            continue
        return str(cid), int(mode), model_input, encode([MODEL_OUTPUT], [output])
    return None


def _input_hash(model_input: Any) -> str:
    from eth_abi import encode

    from opengradient.client.codec import MODEL_INPUT

    return _keccak_hex(encode([MODEL_INPUT], [model_input]))


def _mode_name(mode: int) -> str:
    from opengradient.types import InferenceMode

    try:
        return InferenceMode(mode).name
    except ValueError:
        return str(mode)


class _NoResultYetError(InferenceError):
    """The workflow has not produced a result yet."""


def read_with_proof_flow(address: str, network: Network) -> Flow[tuple[ModelOutput, WorkflowResultProof]]:
    """Read a workflow's latest result at one block, and find the transaction that produced it."""
    from eth_abi import decode

    from opengradient.client.chain import Rpc
    from opengradient.client.codec import MODEL_OUTPUT
    from opengradient.client.workflows import GET_INFERENCE_RESULT_SELECTOR, is_empty, model_output_from_abi

    chain_id = int((yield Rpc("eth_chainId")), 16)
    block = int((yield Rpc("eth_blockNumber")), 16)
    tag = hex(block)
    raw = yield from _view_at(address, GET_INFERENCE_RESULT_SELECTOR, tag)
    if not raw:
        code = yield Rpc("eth_getCode", (address, tag))
        if code in (None, "0x", "0x0", ""):
            raise InferenceError(f"there is no contract at {address}",
                                 hint="check the workflow address and that the client is on the right network")
        raise InferenceError(f"{address} returned nothing; it is not a PriceHistoryInference workflow")
    try:
        (decoded,) = decode([MODEL_OUTPUT], raw)
    except Exception as exc:
        raise InferenceError(f"{address} answered getInferenceResult with data this SDK cannot decode",
                             hint="check that it is a PriceHistoryInference workflow") from exc
    output = model_output_from_abi(decoded)
    if is_empty(output):
        raise _NoResultYetError(f"workflow {address} has no result yet",
                           hint="run it with alpha.run_workflow, or wait for the scheduler")
    output_hash = _keccak_hex(raw)
    contract_model = yield from _model_id(address, tag)

    log = yield from _latest_result_log(address, block)
    if log is not None and _keccak_hex(_hex(log["data"])) == output_hash:
        tx_hash = str(log["transactionHash"])
        receipt = yield Rpc("eth_getTransactionReceipt", (tx_hash,))
        if receipt is not None and _qty(receipt.get("status", "0x1")) == 1:
            inference = _precompile_inference(receipt, log)
            fields_: dict[str, Any] = {"model_cid": contract_model}
            if inference is not None:
                cid, mode, model_input, _ = inference
                fields_ = {"model_cid": cid, "inference_mode": _mode_name(mode),
                           "input_hash": _input_hash(model_input)}
            return output, WorkflowResultProof(
                kind="onchain", chain_id=chain_id, transaction_hash=tx_hash,
                block_number=_qty(receipt["blockNumber"]), contract_address=address,
                output_hash=output_hash, explorer_url=network.tx_url(tx_hash),
                evidence="transaction", read_block=block, **fields_)
    return output, WorkflowResultProof(
        kind="onchain", chain_id=chain_id, block_number=block, contract_address=address,
        model_cid=contract_model, output_hash=output_hash, explorer_url=network.address_url(address),
        evidence="read", read_block=block)


def verify_workflow_flow(proof: WorkflowResultProof, network: Network) -> Flow[bool]:
    """The checks of `WorkflowResultProof.verify` (see the module docs)."""
    from opengradient.client.chain import Rpc
    from opengradient.client.workflows import GET_INFERENCE_RESULT_SELECTOR

    def fail(reason: str) -> VerificationError:
        subject = proof.transaction_hash or f"{proof.contract_address} at block {proof.read_block}"
        return VerificationError(f"workflow proof of {subject} does not verify: {reason}")

    address = proof.contract_address
    if not address or not proof.output_hash:
        raise fail("it names no contract or output")
    chain_id = int((yield Rpc("eth_chainId")), 16)
    if proof.chain_id is not None and chain_id != proof.chain_id:
        raise fail(f"the client is on chain {chain_id}, the proof is for chain {proof.chain_id}")
    if proof.model_cid is not None:
        model = yield from _model_id(address, "latest")
        if model != proof.model_cid:
            raise fail(f"the contract runs model {model!r}, not {proof.model_cid!r}")

    if proof.evidence == "read":
        if proof.read_block is None:
            raise fail("it names no block")
        try:
            raw = yield from _view_at(address, GET_INFERENCE_RESULT_SELECTOR, hex(proof.read_block))
        except RPCError as exc:
            raise fail(f"the node cannot read the contract at block {proof.read_block}: {exc.message}") from exc
        if _keccak_hex(raw) != proof.output_hash:
            raise fail(f"the contract's result at block {proof.read_block} has another hash")
        return True

    if proof.evidence != "transaction" or not proof.transaction_hash:
        raise fail(f"unknown evidence {proof.evidence!r} or no transaction")
    receipt = yield Rpc("eth_getTransactionReceipt", (proof.transaction_hash,))
    if receipt is None:
        raise fail("the transaction is not on this chain")
    if _qty(receipt.get("status", "0x0")) != 1:
        raise fail("the transaction reverted")
    block = _qty(receipt["blockNumber"])
    if proof.block_number is not None and block != proof.block_number:
        raise fail("the transaction is in another block")
    from opengradient.client.workflows import INFERENCE_RESULT_EMITTED_TOPIC

    emitted = [log for log in receipt.get("logs") or []
               if _is_log(log, address, INFERENCE_RESULT_EMITTED_TOPIC)
               and _keccak_hex(_hex(log["data"])) == proof.output_hash]
    if not emitted:
        raise fail(f"the transaction has no InferenceResultEmitted of {address} with this output")
    result_log = emitted[-1]
    if proof.input_hash is not None:
        inference = _precompile_inference(receipt, result_log)
        if inference is None:
            raise fail("the inference precompile emitted no ModelInferenceEvent for this result")
        cid, mode, model_input, event_output = inference
        if cid != proof.model_cid:
            raise fail(f"the precompile ran model {cid!r}, not {proof.model_cid!r}")
        if proof.inference_mode is not None and _mode_name(mode) != proof.inference_mode:
            raise fail(f"the precompile ran in mode {_mode_name(mode)}, not {proof.inference_mode}")
        if _input_hash(model_input) != proof.input_hash:
            raise fail("the input hash does not match the precompile's input")
        from eth_abi import decode

        from opengradient.client.codec import MODEL_OUTPUT

        (plain,) = decode([MODEL_OUTPUT], event_output)
        numbers, strings, jsons, _ = plain
        if (numbers or strings or jsons) and _keccak_hex(event_output) != proof.output_hash:
            raise fail("the precompile's output is not the output the workflow stored")
    if proof.read_block is not None:
        if proof.read_block < block:
            raise fail("the read block is before the transaction")
        later = yield from _result_logs(address, block, proof.read_block)
        if later and _position(max(later, key=_position)) > _position(result_log):
            raise fail(f"the workflow ran again before block {proof.read_block}; this was not its latest result")
    return True

