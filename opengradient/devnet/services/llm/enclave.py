"""The gateway's enclave stand-in: an RSA-2048 key made at start that signs every response.

The devnet has no TEE hardware. The key, its id and the signatures are exactly what a real
enclave produces (computed with `opengradient.client.tee`), so clients verify
devnet responses with the same code they use in production. What cannot be real is the hardware
attestation: `attestation()` returns a document signed by the enclave key itself and labelled
`"simulated": true`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from opengradient.client.ohttp import KeyConfig, ServerContext, generate_key, open_request
from opengradient.client.tee import keccak256, signed_message, tee_id_of

__all__ = ["MEASUREMENT", "PCR_HASH", "SIMULATED_NOTE", "Enclave"]

#: The fixed "measurement" the devnet registers; its keccak is the registry's `pcrHash`.
MEASUREMENT = "opengradient-devnet/llm-gateway/simulated-enclave/v1"
PCR_HASH = keccak256(MEASUREMENT.encode())
SIMULATED_NOTE = ("Simulated: no hardware attestation exists on the devnet. This document is "
                  "signed by the gateway's own key, so it proves possession of that key and "
                  "freshness (the nonce), not that the code runs in a TEE.")
ALGORITHM = "RSA-PSS-SHA256"
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


class Enclave:
    """An RSA-2048 signing key and the TEE fields it puts on responses."""

    def __init__(self, private_key: rsa.RSAPrivateKey | None = None) -> None:
        self._key = private_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = self._key.public_key()
        self.public_key_der: bytes = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_key_pem: str = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.tee_id: str = tee_id_of(self.public_key_der)
        #: Its Oblivious HTTP key (X25519, registered in the TEE registry's `ohttpConfig`): only this
        #: enclave opens what is sealed to it.
        self.ohttp: KeyConfig
        self.ohttp, self._ohttp_private = generate_key(1)

    def __repr__(self) -> str:
        return f"Enclave(tee_id={self.tee_id!r}, simulated=True)"

    def open_sealed(self, message: bytes) -> tuple[bytes, ServerContext]:
        """Open an OHTTP request sealed to this enclave: (plaintext, the context to seal the answer)."""
        return open_request(self.ohttp, self._ohttp_private, message)

    def sign(self, data: bytes) -> bytes:
        """RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) signature over `data`."""
        return self._key.sign(data, _PSS, hashes.SHA256())

    def tee_fields(self, request_hash: bytes, output_hash: bytes,
                   timestamp: int | None = None) -> dict[str, Any]:
        """The five TEE fields of one response: signature, request and output hashes, timestamp, tee id."""
        ts = int(time.time()) if timestamp is None else int(timestamp)
        signature = self.sign(signed_message(request_hash, output_hash, ts))
        return {
            "tee_signature": base64.b64encode(signature).decode(),
            "tee_request_hash": request_hash.hex(),
            "tee_output_hash": output_hash.hex(),
            "tee_timestamp": ts,
            "tee_id": self.tee_id,
        }

    def signing_key(self, attestation_url: str) -> dict[str, Any]:
        """Body of `GET /signing-key`."""
        return {"public_key": self.public_key_pem, "tee_id": self.tee_id, "algorithm": ALGORITHM,
                "attestation_url": attestation_url, "simulated": True}

    def attestation(self, nonce: bytes) -> dict[str, Any]:
        """A simulated attestation document binding the key's hashes and the caller's nonce.

        `signature` is RSA-PSS over the UTF-8 bytes of `json.dumps(document, sort_keys=True)`.
        """
        document = {
            "version": 1,
            "simulated": True,
            "tee_id": self.tee_id,
            "public_key_sha256": hashlib.sha256(self.public_key_der).hexdigest(),
            "public_key_keccak256": keccak256(self.public_key_der).hex(),
            "nonce": nonce.hex(),
            "measurement": MEASUREMENT,
            "pcr_hash": "0x" + PCR_HASH.hex(),
            "timestamp": int(time.time()),
            "note": SIMULATED_NOTE,
        }
        payload = json.dumps(document, sort_keys=True).encode()
        return {
            "document": document,
            "signature": base64.b64encode(self.sign(payload)).decode(),
            "algorithm": ALGORITHM,
            "public_key": self.public_key_pem,
            "simulated": True,
            "note": SIMULATED_NOTE,
        }
