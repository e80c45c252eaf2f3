"""Selectors, event topics and ABI types of the Alpha chain's inference interface.

Constants are written out (a test recomputes each from its signature) so that importing this
module costs nothing.
"""

from __future__ import annotations

from opengradient.client.codec import MODEL_INPUT, MODEL_OUTPUT

#: `(uint8 mode, string modelCID, ModelInput input)` as the precompile takes it.
INFERENCE_REQUEST = f"(uint8,string,{MODEL_INPUT})"

RUN_SIGNATURE = f"run(string,uint8,{MODEL_INPUT})"
RUN_SELECTOR = bytes.fromhex("cbf09d80")
RUN_ARGS = ["string", "uint8", MODEL_INPUT]

RUN_MODEL_INFERENCE_SIGNATURE = f"runModelInference({INFERENCE_REQUEST})"
RUN_MODEL_INFERENCE_SELECTOR = bytes.fromhex("7289e9c2")

INFERENCE_RESULT_EVENT = f"InferenceResult({MODEL_OUTPUT})"
INFERENCE_RESULT_TOPIC = "0xc1396ff68bc2d8630100df29ce5561fa99078c602e8676ab72a53e37095d7168"

MODEL_INFERENCE_EVENT = f"ModelInferenceEvent(string,{INFERENCE_REQUEST},{MODEL_OUTPUT})"
MODEL_INFERENCE_TOPIC = "0x1b283af3452f3718585ce100f80d9aa81fc60924db4a582a36db6aae3b109d87"
MODEL_INFERENCE_ARGS = ["string", INFERENCE_REQUEST, MODEL_OUTPUT]

#: Emitted by the inference precompile next to `ModelInferenceEvent` for a proven ZKML inference:
#: the proof's hash belongs to the inference, not to the model's output.
ZKML_PROOF_EVENT = "ZkmlProof(string,bytes32)"
ZKML_PROOF_TOPIC = "0x6687f52e3059519a3ad349fe5a471227f7aeef7fd0ff31fa9f0abfa20462a577"
ZKML_PROOF_ARGS = ["string", "bytes32"]
