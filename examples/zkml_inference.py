"""On-chain inference in ZKML mode: the result comes with a zero-knowledge proof, checked two ways.

`alpha.infer(..., og.InferenceMode.ZKML, ...)` runs the model on chain as in VANILLA mode, and the
node also proves the run with ezkl; the chain records the proof's hash. `proof.verify(client)`
re-checks the transaction and then the zero-knowledge proof itself off chain (the proof shows that
this model, on this input, gives this output); `onchain=True` also has the verifier contract on
the chain check it. A result whose output was changed no longer verifies.

The devnet proves with a locally generated testing SRS: right for development, not for value.
Needs the `zkml` extra (`pip install 'opengradient[zkml]'`), which installs ezkl.

Run: python examples/zkml_inference.py
"""

from __future__ import annotations

from dataclasses import replace

import opengradient as og


def main() -> None:
    with og.devnet.start() as net:
        client = net.client
        model = net.model("price-regression")
        result = client.alpha.infer(model.cid, og.InferenceMode.ZKML, {"X": [[1.0, 2.0, 3.0, 4.0]]})
        proof = result.proof
        assert proof is not None
        print(f"output:            {result.model_output['Y'].tolist()} (transaction {result.transaction_hash[:18]}…)")
        print(f"proof:             {proof.kind}, zero-knowledge proof hash {proof.zkml_proof_hash}")
        print(f"verified off chain: {proof.verify(client)}")
        print(f"verified on chain:  {proof.verify(client, onchain=True)}")

        restored = og.Proof.from_dict(proof.to_dict())  # plain data: store it, send it, check it later
        print(f"re-checked from JSON: {restored.verify(client)}")

        forged = replace(proof, output_hash="0x" + "00" * 32)
        try:
            forged.verify(client)
        except og.VerificationError as exc:
            print(f"changed output refused: {exc.message}")


if __name__ == "__main__":
    main()
