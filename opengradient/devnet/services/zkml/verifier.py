"""The on-chain verifier: ezkl's reusable Halo2 verifier contract, placed on the Alpha chain.

ezkl renders the same `Halo2VerifierReusable` contract for every circuit (checked by
`python -m opengradient.devnet.services.zkml.build --check`); what is specific to a circuit is its verifier
key artifact (VKA: the verification key plus the circuit's layout, as 32-byte words). A VKA is
registered once with ``registerVka(bytes32[])`` (a transaction: its keccak-256 becomes a known
digest) and then every proof of that circuit is checked with ``verifyProof(bytes proof,
uint256[] instances, bytes32[] vka)``, which reverts on a bad proof and otherwise returns
``(true, digest, rescaled instances)`` (raw words, not ABI-encoded: success, digest, count,
values). One contract plus one VKA per proving key is the "verifier per key" of the design, with no
Solidity compiler needed when a model is uploaded: the contract is compiled offline (solc-js
0.8.20) and its artifact committed.

The contract is placed at `VERIFIER_ADDRESS` when the devnet starts (it has no constructor).
ezkl 23 calls its reusable verifier experimental; the devnet's tests check that it accepts good
proofs and rejects changed ones.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, cast

#: Where every devnet keeps the verifier (the last 20 bytes of
#: keccak-256("opengradient.devnet.services.zkml.Halo2VerifierReusable")).
VERIFIER_ADDRESS = "0x50ba6DD89BeCe4e21F423AfA8532150dce586824"
CONTRACT_NAME = "Halo2VerifierReusable"
ZKML_DIR = Path(__file__).resolve().parent
SOURCE_PATH = ZKML_DIR / "contracts" / f"{CONTRACT_NAME}.sol"
ARTIFACT_PATH = ZKML_DIR / "artifacts" / f"{CONTRACT_NAME}.json"
#: `registerVka(bytes32[])`.
REGISTER_VKA_SELECTOR = bytes.fromhex("dc8b4094")


@cache
def verifier_artifact() -> dict[str, Any]:
    """The committed compiler output (`abi`, `bytecode`, `deployedBytecode`, versions)."""
    return cast(dict[str, Any], json.loads(ARTIFACT_PATH.read_text(encoding="utf-8")))


def verifier_runtime_code() -> bytes:
    """Deployed bytecode of the verifier, for placing it at genesis."""
    return bytes.fromhex(verifier_artifact()["deployedBytecode"].removeprefix("0x"))


def register_vka_calldata(vka: list[bytes]) -> bytes:
    """Call data of ``registerVka(bytes32[] vka)``."""
    from eth_abi import encode

    return REGISTER_VKA_SELECTOR + encode(["bytes32[]"], [vka])
