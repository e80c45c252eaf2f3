"""One `Proof` type for everything the SDK can prove about a result.

A proof is plain data — safe to log, store and send — plus `verify()`, which re-checks it
against its source of truth: the chain for on-chain inference, the enclave key for TEE LLM
responses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from opengradient.client.client import Client

ProofKind = Literal["onchain", "tee", "zkml"]


@dataclass(frozen=True)
class Proof:
    """Evidence for one result.

    `kind="onchain"`: the result was emitted by the inference contract in `transaction_hash`;
    `input_hash`/`output_hash` are keccak-256 of the ABI-encoded `ModelInput`/`ModelOutput`.
    `kind="tee"`: an enclave signed the request and output hashes (`tee_*` fields).
    `kind="zkml"`: an on-chain inference run in ZKML mode; besides the on-chain fields it names
    the inference (`inference_id`) and the zero-knowledge proof whose hash the chain recorded
    (`zkml_proof_hash`); see `opengradient.client.zkml`.
    What each inference mode proves on the devnet is documented in `opengradient.devnet`.
    """

    kind: ProofKind
    chain_id: int | None = None
    transaction_hash: str | None = None
    block_number: int | None = None
    contract_address: str | None = None
    model_cid: str | None = None
    inference_mode: str | None = None
    input_hash: str | None = None
    output_hash: str | None = None
    tee_id: str | None = None
    tee_signature: str | None = None
    tee_timestamp: int | None = None
    payment_hash: str | None = None
    explorer_url: str | None = None
    inference_id: str | None = None
    zkml_proof_hash: str | None = None

    def verify(self, client: Client | None = None, *, onchain: bool = False) -> bool:
        """Re-check the proof at its source; returns True or raises `VerificationError`.

        Uses `client` (or `og.global_client`) to reach the chain. For a ZKML proof the
        zero-knowledge proof is checked off chain with ezkl (`pip install 'opengradient[zkml]'`)
        and, with `onchain=True`, also by the verifier contract on the chain.
        """
        from opengradient.errors import ConfigurationError, VerificationError

        if client is None:
            import opengradient

            client = opengradient.global_client
            if client is None:
                raise ConfigurationError("verifying a proof needs a client",
                                         hint="pass client= or call og.init first")
        if self.kind == "onchain":
            from opengradient.client.alpha import verify_onchain_proof

            return verify_onchain_proof(self, client)
        if self.kind == "tee":
            return client.llm.verify_proof(self)
        if self.kind == "zkml":
            from opengradient.client.zkml import verify_zkml_proof

            return verify_zkml_proof(self, client, onchain=onchain)
        raise VerificationError(f"unknown proof kind {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        """The proof as JSON-ready data."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def to_json(self) -> str:
        """The proof as a JSON document."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Proof:
        """Rebuild a proof of any kind from `to_dict()` data, or from the plain dict a framework
        made of it (a LangGraph checkpoint stores a tool's proof artifact as one).

        `Proof.from_dict` gives the right class for the data: a workflow-result proof (it has
        `evidence`) comes back as `opengradient.alphasense.WorkflowResultProof`, whose `verify()`
        checks what it proves; anything else as a `Proof`. Unknown keys are ignored.
        """
        if cls is Proof and "evidence" in data:
            from opengradient.alphasense.proofs import WorkflowResultProof

            return WorkflowResultProof.from_dict(data)
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
