"""API reference, "Model Hub": create a model repository, upload an ONNX file, run it on chain.

The sample's code against a local devnet, whose Model Hub signs in with the development account
(its email and password are printed by `opengradient devnet up`). "model.onnx" is the devnet's
small price-regression model copied into a temporary directory. Beyond the sample, the example
adds a version, lists the files, and runs the uploaded model by its CID.

Run: python examples/model_hub.py
"""

from __future__ import annotations

import os
import shutil
import tempfile

import opengradient as og
from opengradient.devnet.services.models import PRICE_REGRESSION


def main() -> None:
    with og.devnet.start(http=True) as net, tempfile.TemporaryDirectory() as workdir:
        hub_user = net.info()["model_hub"]
        shutil.copy(PRICE_REGRESSION.path, os.path.join(workdir, "model.onnx"))
        os.chdir(workdir)

        client = og.init(
            private_key=net.accounts[0].private_key,
            email=hub_user["email"],
            password=hub_user["password"],
            network=net.network,
        )

        repo = client.model_hub.create_model("my-model", "A price prediction model")
        upload = client.model_hub.upload("model.onnx", repo.name, repo.initialVersion)
        print(f"created {repo.name!r} version {repo.initialVersion}; uploaded model.onnx as {upload.modelCid} "
              f"({upload.size} bytes)")

        version = client.model_hub.create_version(repo.name, notes="retrained", is_major=False)
        print(f"added version {version['versionString']}")
        for file in client.model_hub.list_files(repo.name, repo.initialVersion):
            print(f"  {file['name']}  {file['size']} bytes  {file['ipfsCid']}")

        result = client.alpha.infer(model_cid=upload.modelCid, inference_mode=og.InferenceMode.VANILLA,
                                    model_input={"X": [[1.0, 2.0, 3.0, 4.0]]})
        print(f"ran {upload.modelCid} on chain: { {k: v.tolist() for k, v in result.model_output.items()} }")


if __name__ == "__main__":
    main()
