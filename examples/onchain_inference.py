"""On-chain ONNX inference with `client.alpha.infer`, and re-checking its proof, on an in-process devnet.

Each call is one transaction to the inference contract's `run` on the Alpha chain; the chain's
inference precompile runs the model (onnxruntime on the devnet) and the output comes back in the
transaction's `InferenceResult` event. The result's `proof` names the transaction, the model, and
the hashes of input and output; `proof.verify(client)` re-reads them from the chain.

The devnet ships a few small models (`net.models`); numeric, string and multi-tensor inputs all
work. Errors come back before anything is sent: an unknown model or an input that does not fit
the model fails the gas estimate with the chain's reason.

Run: python examples/onchain_inference.py
"""

from __future__ import annotations

import opengradient as og


def main() -> None:
    with og.devnet.start() as net:
        client = net.client
        for model in net.models:
            result = client.alpha.infer(model_cid=model.cid, inference_mode=og.InferenceMode.VANILLA,
                                        model_input=model.example_input)
            assert result.proof is not None
            outputs = {name: value.tolist() for name, value in result.model_output.items()}
            print(f"{model.name:<16} {outputs}")
            print(f"{'':<16} tx {result.transaction_hash[:18]}…  proof verified: {result.proof.verify(client)}")

        regression = net.model("price-regression")
        tee = client.alpha.infer(model_cid=regression.cid, inference_mode=og.InferenceMode.TEE,
                                 model_input={"X": [[4.0, 3.0, 2.0, 1.0]]})
        print(f"TEE mode         {tee.model_output['Y'].tolist()}")

        try:
            client.alpha.infer(model_cid="no-such-model", inference_mode=og.InferenceMode.VANILLA,
                               model_input={"X": [[1.0]]})
        except og.ModelNotFoundError as exc:
            print(f"unknown model    refused before sending: {exc.reason}")


if __name__ == "__main__":
    main()
