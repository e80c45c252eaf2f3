"""The TEE registry on the Alpha chain: which LLM enclaves exist, where, and what to trust.

`getActiveTEEs(0)` lists the active LLM-proxy enclaves, each with its endpoint, the RSA key it
signs responses with (`tee_id` is the keccak of its DER), the DER certificate its TLS server
presents, the address it is paid at, and its Oblivious-HTTP key. `EnclaveDirectory` keeps the
last reading, re-reads it when it is older than `REFRESH_SECONDS` (on the next request; its
clock is injectable), keeps the enclave it picked at random while that one stays active, and
picks another when it disappears or cannot be reached.

Usable endpoints: an `https` endpoint with a registered certificate (reached over TLS pinned to
it). A plain-`http` endpoint only when the client's HTTP goes through a transport it was given
(the in-process devnet registers its in-process URL): over a socket nothing would authenticate
it. Entries that are neither are skipped.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opengradient.client.chain import Flow, Rpc
from opengradient.errors import ConfigurationError, InvalidResponseError, NetworkError

#: teeType of an LLM proxy enclave.
LLM_PROXY = 0
#: How old a reading of the registry may get before the next request re-reads it (seconds).
REFRESH_SECONDS = 300.0
_OHTTP_CONFIG = "(uint8,uint16,uint16,uint16,bytes,bytes,uint256)"
#: `TEEInfo`: owner, paymentAddress, endpoint, publicKey, tlsCertificate, pcrHash, teeType,
#: enabled, registeredAt, lastHeartbeatAt, ohttpConfig.
TEE_INFO = f"(address,address,string,bytes,bytes,bytes32,uint8,bool,uint256,uint256,{_OHTTP_CONFIG})"
_GET_ACTIVE_TEES = "getActiveTEEs(uint8)"


@dataclass(frozen=True)
class OhttpConfig:
    """An enclave's HPKE key for Oblivious HTTP (RFC 9458): ids of its suite and its X25519 key."""

    key_id: int
    kem_id: int
    kdf_id: int
    aead_id: int
    public_key: bytes
    key_config: bytes
    registered_at: int


@dataclass(frozen=True)
class RegisteredEnclave:
    """One registry entry: where an enclave listens and what to trust when talking to it."""

    tee_id: str
    endpoint: str
    payment_address: str
    public_key: bytes = field(repr=False)
    tls_certificate: bytes = field(repr=False)
    pcr_hash: str
    tee_type: int
    enabled: bool
    registered_at: int
    last_heartbeat_at: int
    ohttp: OhttpConfig | None = None

    @property
    def base_url(self) -> str:
        """The endpoint without a trailing slash (routes are appended to it)."""
        return self.endpoint.rstrip("/")

    @property
    def tls_pin(self) -> bytes | None:
        """The certificate an `https` endpoint must present (None for a plain-`http` one)."""
        return self.tls_certificate if self.endpoint.lower().startswith("https://") else None


def active_tees_call(registry: str, tee_type: int = LLM_PROXY) -> Rpc:
    """The `eth_call` of `getActiveTEEs(tee_type)` on `registry`."""
    from eth_abi import encode
    from eth_utils import keccak

    data = keccak(text=_GET_ACTIVE_TEES)[:4] + encode(["uint8"], [tee_type])
    return Rpc("eth_call", ({"to": registry, "data": "0x" + data.hex()}, "latest"))


def decode_active_tees(raw: Any) -> list[RegisteredEnclave]:
    """The entries of a `getActiveTEEs` answer (hex); `InvalidResponseError` if it is not one."""
    from eth_abi import decode
    from eth_utils import keccak, to_checksum_address

    try:
        (infos,) = decode([f"{TEE_INFO}[]"], bytes.fromhex(str(raw).removeprefix("0x")))
    except Exception as exc:  # eth_abi raises several unrelated types for malformed data
        raise InvalidResponseError(f"the TEE registry's getActiveTEEs answer cannot be decoded ({exc}); "
                                   "is the registry address right?") from None
    out = []
    for (owner, pay_to, endpoint, public_key, certificate, pcr, tee_type, enabled, registered, heartbeat,
         ohttp) in infos:
        del owner  # who registered it: not what a client trusts
        config = OhttpConfig(*ohttp) if ohttp[4] else None
        out.append(RegisteredEnclave(
            tee_id="0x" + bytes(keccak(bytes(public_key))).hex(), endpoint=str(endpoint),
            payment_address=to_checksum_address(pay_to), public_key=bytes(public_key),
            tls_certificate=bytes(certificate), pcr_hash="0x" + bytes(pcr).hex(), tee_type=int(tee_type),
            enabled=bool(enabled), registered_at=int(registered), last_heartbeat_at=int(heartbeat),
            ohttp=config))
    return out


class EnclaveDirectory:
    """The registry as last read, and the enclave this client sends its LLM requests to.

    `clock` (monotonic seconds) decides when a reading is stale; `choose` picks among usable
    enclaves (at random by default). Both can be replaced, for tests.
    """

    def __init__(self, registry: str, *, plain_http: bool, clock: Callable[[], float] = time.monotonic,
                 choose: Callable[[Sequence[RegisteredEnclave]], RegisteredEnclave] | None = None) -> None:
        self.registry = registry
        self.clock = clock
        self.choose = choose or random.SystemRandom().choice
        self._plain_http = plain_http
        self._lock = threading.Lock()
        self._active: tuple[RegisteredEnclave, ...] = ()
        self._read_at: float | None = None
        self._current: RegisteredEnclave | None = None

    @property
    def active(self) -> tuple[RegisteredEnclave, ...]:
        """The active LLM enclaves at the last reading, in registry order."""
        return self._active

    @property
    def current(self) -> RegisteredEnclave | None:
        """The enclave requests go to (None until one is picked)."""
        return self._current

    def stale(self) -> bool:
        """True when the registry was never read or was read `REFRESH_SECONDS` ago or more."""
        return self._read_at is None or self.clock() - self._read_at >= REFRESH_SECONDS

    def usable(self, enclave: RegisteredEnclave) -> bool:
        """An https endpoint with a certificate to pin, or plain http where a transport carries it."""
        endpoint = enclave.endpoint.lower()
        if endpoint.startswith("https://"):
            return bool(enclave.tls_certificate)
        return self._plain_http and endpoint.startswith("http://")

    def read_flow(self) -> Flow[tuple[RegisteredEnclave, ...]]:
        """Read the active LLM enclaves; the current one is dropped if it is no longer among them."""
        if not self.registry:
            raise ConfigurationError("this network names no TEE registry to find enclaves in")
        raw = yield active_tees_call(self.registry)
        entries = tuple(e for e in decode_active_tees(raw) if e.tee_type == LLM_PROXY and e.enabled)
        with self._lock:
            self._active, self._read_at = entries, self.clock()
            if self._current is not None and self._current.tee_id not in {e.tee_id for e in entries}:
                self._current = None
        return entries

    def select(self, *, avoid: RegisteredEnclave | None = None) -> RegisteredEnclave:
        """The current enclave while it is active; otherwise (or to move away from `avoid`) a newly
        picked usable one. `avoid` is only picked again when it is the only usable enclave."""
        with self._lock:
            current = self._current
            if current is not None and (avoid is None or current.tee_id != avoid.tee_id):
                return current
            usable = [e for e in self._active if self.usable(e)]
            others = [e for e in usable if avoid is None or e.tee_id != avoid.tee_id]
            if not usable:
                skipped = len(self._active)
                raise NetworkError(
                    f"the TEE registry at {self.registry} lists no usable LLM enclave"
                    + (f" ({skipped} active, none with an https endpoint and a TLS certificate)" if skipped else ""),
                    hint="try again later, or pin a gateway with og_llm_server_url=…")
            self._current = self.choose(others or usable)
            return self._current

    def __repr__(self) -> str:
        current = self._current.tee_id if self._current else None
        return f"EnclaveDirectory(registry={self.registry!r}, active={len(self._active)}, current={current!r})"
