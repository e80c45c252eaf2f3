"""Real ZKML on the devnet: ezkl circuits, proofs made in a separate process, an on-chain verifier.

An inference in `InferenceMode.ZKML` runs the model in onnxruntime and in its ezkl circuit; the
circuit's output is returned and proven, the proof's hash is recorded by the inference precompile's
``ZkmlProof(inferenceID, proofHash)`` event, and the devnet API serves the proof (``GET
/zkml/proof/{inference_id}``) and the model's verification key, settings, SRS and verifier (``GET
/zkml/vk/{model_cid}``). The SDK checks all of it with `Proof.verify()`
(`opengradient.client.zkml`).

Per model, on its first ZKML inference (cached by CID under ``<data dir>/zkml``; see `service`):
settings with ``decomp_base=128``, ``decomp_legs=4``, public inputs and outputs and fixed
parameters; calibration on representative inputs (that first input, scaled ×0.5–×4 and jittered);
the compiled circuit; a testing SRS made locally with ``ezkl.gen_srs``; proving and verification
keys; and the key's EVM artifact, registered with the verifier contract (`verifier`) on the first
request for the key. Proving runs in a child process (`worker`, `prover`) with a timeout, since
ezkl holds the GIL while it works.

What a devnet ZKML proof proves: that the model's circuit — the ONNX model with that CID,
quantised to fixed point, its weights fixed into the circuit and so into the verification key —
maps the request's input (as public fixed-point values) to the returned output. A verifier checks
the input and output it cares about against the proof's public values, to the circuit's
precision (half a fixed-point step, ``2**-scale / 2``; scale 13 for small MLPs, about 6e-5).

What it does not prove:

* The SRS is a **testing SRS** generated on the devnet: whoever generated it (the devnet
  operator, i.e. you) knows its secret and could forge proofs. A production deployment takes its
  SRS from a trusted-setup ceremony. The served SRS is labelled ``"kind": "testing"``.
* That the verification key belongs to the CID: the devnet serves both. (Re-running the set-up
  from the model's bytes with the served settings and SRS reproduces the key.)
* That the circuit equals onnxruntime's floating-point computation: it is a fixed-point
  approximation, typically within 1e-5–1e-3 of it.
* Anything about inputs outside the range the circuit was calibrated for: those are refused.

Limits (refused in ZKML mode with a revert reason, before anything is sent, and not retried for
that CID): models with string inputs or outputs; operators ezkl does not support (e.g.
``LabelEncoder``, ``StringNormalizer``, ``Tile``); more than `MAX_PARAMETERS` (10,000)
parameters; circuits of more than `MAX_ROWS` (16,384) rows or of height above 2^`MAX_LOGROWS`
(2^14). At the limit a proof takes ~10 s on two cores (an 8,500-parameter MLP: 7–8 s; its first
inference, with set-up, ~25 s); the two shipped numeric models (price-regression, multi-io) prove
in ~0.1–0.2 s. Inputs outside the range the circuit represents revert too (not cached).
"""

from __future__ import annotations

from typing import Any

from opengradient.devnet.services.zkml.verifier import VERIFIER_ADDRESS

# The prover process imports `opengradient.devnet.services.zkml.worker`, which runs this file first: keep it
# light (no py-evm, no onnxruntime) by loading the service only when it is asked for.
_SERVICE_NAMES = ("MAX_LOGROWS", "MAX_PARAMETERS", "MAX_ROWS", "PROVE_TIMEOUT", "SRS_KIND", "UNPROVEN_HASH", "Circuit",
                  "ZkmlService")

__all__ = [*_SERVICE_NAMES, "VERIFIER_ADDRESS"]


def __getattr__(name: str) -> Any:
    if name in _SERVICE_NAMES:
        from opengradient.devnet.services.zkml import service

        return getattr(service, name)
    raise AttributeError(f"module 'opengradient.devnet.services.zkml' has no attribute {name!r}")
