"""Quick start on the devnet: upload an ONNX model to the Model Hub, run it on chain, check the proof.

Run: `make demo` (or `python examples/quickstart_devnet.py` with the devnet extra installed).
Everything runs on this machine: two EVM chains, the inference precompile on onnxruntime and the
Model Hub. Pass `--http` to serve the devnet on loopback and go through real sockets.
"""

from __future__ import annotations

import sys
import time

import opengradient as og
from opengradient.devnet.services.models import PRICE_REGRESSION


def main(http: bool = False) -> None:
    print("Starting the devnet…", flush=True)
    with og.devnet.start(http=http) as net:
        print(f"  ready at {net.url} in {net.startup_seconds:.2f} s "
              f"(Alpha chain id {net.network.alpha_chain_id})")
        client = net.client

        repo = client.model_hub.create_model("my-price-model", "A linear price regression")
        print(f"Created model repository {repo.name!r}, version {repo.initialVersion}")

        def progress(sent: int, total: int) -> None:
            print(f"\r  uploading {PRICE_REGRESSION.filename}: {sent}/{total} bytes", end="", flush=True)

        upload = client.model_hub.upload(PRICE_REGRESSION.path, repo.name, repo.initialVersion,
                                         progress=progress)
        print(f"\nUploaded: model CID {upload.modelCid} ({upload.size} bytes)")

        started = time.perf_counter()
        result = client.alpha.infer(
            model_cid=upload.modelCid,
            inference_mode=og.InferenceMode.VANILLA,
            model_input={"X": [[1.0, 2.0, 3.0, 4.0]]},
        )
        elapsed = (time.perf_counter() - started) * 1000
        print(f"Ran on chain in {elapsed:.0f} ms")
        print(f"  transaction: {result.transaction_hash}")
        print(f"  output:      { {k: v.tolist() for k, v in result.model_output.items()} }")

        assert result.proof is not None
        result.proof.verify(client)
        print(f"  proof verified against the chain (block {result.proof.block_number}, "
              f"output hash {result.proof.output_hash[:18] if result.proof.output_hash else ''}…)")


if __name__ == "__main__":
    main(http="--http" in sys.argv[1:])
