"""Self-signed TLS certificates for the devnet's enclave endpoints, made fresh at every start.

Each enclave's HTTPS server presents its own certificate (an ECDSA P-256 key, valid 30 days, for
the address it listens on); its DER is what the TEE registry lists for the enclave, so a client
that pins it talks to that server and no other. The key never leaves the process except into a
private temporary file the HTTPS server loads at start (`write_pem`), which the devnet deletes once
the server is up.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["TlsIdentity", "self_signed"]

_VALID_DAYS = 30


@dataclass(frozen=True)
class TlsIdentity:
    """A TLS server's certificate (DER, as registered) and its private key (kept out of reprs)."""

    certificate_der: bytes
    _key: ec.EllipticCurvePrivateKey = field(repr=False)

    def write_pem(self, directory: Path) -> tuple[Path, Path]:
        """Write the certificate and key as PEM files (the key readable by this user only)."""
        cert_path, key_path = directory / "cert.pem", directory / "key.pem"
        certificate = x509.load_der_x509_certificate(self.certificate_der)
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
        return cert_path, key_path


def self_signed(common_name: str, host: str) -> TlsIdentity:
    """A new key and a self-signed end-entity certificate naming `host` (an IP or a DNS name)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    try:
        alternative: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alternative = x509.DNSName(host)
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return TlsIdentity(certificate.public_bytes(serialization.Encoding.DER), key)
