"""The TEE registry reader, the enclave directory's refresh and choice rules, and the presets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from eth_abi import encode
from eth_utils import keccak

import opengradient as og
from opengradient.client.chain import Flow, Rpc
from opengradient.client.registry import (
    REFRESH_SECONDS,
    TEE_INFO,
    EnclaveDirectory,
    RegisteredEnclave,
    active_tees_call,
    decode_active_tees,
)
from opengradient.networks import PRESETS, PUBLIC, PUBLIC_LATEST, TEE_REGISTRY_ADDRESS

KEY = "0x" + "11" * 32
OPERATOR = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
NO_OHTTP = (0, 0, 0, 0, b"", b"", 0)


def _entry(public_key: bytes, endpoint: str, certificate: bytes = b"cert", *, ohttp: tuple[Any, ...] = NO_OHTTP,
           tee_type: int = 0, enabled: bool = True) -> tuple[Any, ...]:
    return (OPERATOR, OPERATOR, endpoint, public_key, certificate, b"\x07" * 32, tee_type, enabled, 100, 200, ohttp)


def _answer(*entries: tuple[Any, ...]) -> str:
    return "0x" + encode([f"{TEE_INFO}[]"], [list(entries)]).hex()


def _run(flow: Flow[Any], answer: str) -> Any:
    """Drive a flow whose only step is the registry's eth_call, answering it with `answer`."""
    step = next(flow)
    assert isinstance(step, Rpc) and step.method == "eth_call"
    try:
        flow.send(answer)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the flow asked for more than one step")


def test_get_active_tees_call_and_decoding() -> None:
    call = active_tees_call(TEE_REGISTRY_ADDRESS)
    request, block = call.params
    assert request["to"] == TEE_REGISTRY_ADDRESS and block == "latest"
    assert request["data"] == "0x" + keccak(text="getActiveTEEs(uint8)")[:4].hex() + "00" * 32
    x25519 = bytes(range(32))
    [plain, sealed] = decode_active_tees(_answer(
        _entry(b"key-a", "https://10.0.0.1:443/"),
        _entry(b"key-b", "https://10.0.0.2", ohttp=(1, 0x20, 1, 3, x25519, b"cfg", 300))))
    assert plain.tee_id == "0x" + keccak(b"key-a").hex() and plain.base_url == "https://10.0.0.1:443"
    assert plain.payment_address == OPERATOR and plain.pcr_hash == "0x" + "07" * 32
    assert plain.ohttp is None and plain.tls_pin == b"cert"
    assert sealed.ohttp is not None and (sealed.ohttp.kem_id, sealed.ohttp.public_key) == (0x20, x25519)
    assert "cert" not in repr(plain) and "key-a" not in repr(plain)  # the bytes stay out of reprs
    with pytest.raises(og.InvalidResponseError, match="cannot be decoded"):
        decode_active_tees("0x1234")


def _directory(clock: list[float], *, plain_http: bool = False,
               choose: Any = None) -> EnclaveDirectory:
    return EnclaveDirectory(TEE_REGISTRY_ADDRESS, plain_http=plain_http, clock=lambda: clock[0],
                            choose=choose or (lambda options: options[0]))


def test_the_directory_rereads_the_registry_every_300_seconds_and_keeps_its_enclave() -> None:
    now = [1000.0]
    directory = _directory(now)
    assert directory.stale() and directory.current is None
    a, b = _entry(b"a", "https://a"), _entry(b"b", "https://b")
    _run(directory.read_flow(), _answer(a, b))
    first = directory.select()
    assert first.endpoint == "https://a" and not directory.stale()
    now[0] += REFRESH_SECONDS - 1
    assert not directory.stale()
    now[0] += 1
    assert directory.stale()
    _run(directory.read_flow(), _answer(b, a))  # still listed: kept, whatever the order
    assert directory.select() is first
    _run(directory.read_flow(), _answer(b))  # gone: another one
    assert directory.current is None and directory.select().endpoint == "https://b"


def test_select_moves_away_from_a_failed_enclave_unless_it_is_the_only_one() -> None:
    now = [0.0]
    directory = _directory(now)
    _run(directory.read_flow(), _answer(_entry(b"a", "https://a"), _entry(b"b", "https://b")))
    a = directory.select()
    assert directory.select(avoid=a).endpoint == "https://b"
    _run(directory.read_flow(), _answer(_entry(b"a", "https://a")))
    assert directory.select(avoid=a).endpoint == "https://a"


def test_only_enclaves_a_client_can_authenticate_are_usable() -> None:
    now = [0.0]
    seen: list[Sequence[RegisteredEnclave]] = []

    def record(options: Sequence[RegisteredEnclave]) -> RegisteredEnclave:
        seen.append(options)
        return options[0]

    entries = (_entry(b"no-cert", "https://a", b""), _entry(b"plain", "http://b"), _entry(b"ok", "https://c"),
               _entry(b"validator", "https://d", tee_type=1))
    over_sockets = _directory(now, choose=record)
    _run(over_sockets.read_flow(), _answer(*entries))
    assert [e.endpoint for e in over_sockets.active] == ["https://a", "http://b", "https://c"]
    assert over_sockets.select().endpoint == "https://c" and [e.endpoint for e in seen[-1]] == ["https://c"]
    through_a_transport = _directory(now, plain_http=True, choose=record)
    _run(through_a_transport.read_flow(), _answer(*entries))
    through_a_transport.select()
    assert [e.endpoint for e in seen[-1]] == ["http://b", "https://c"]
    nothing = _directory(now)
    _run(nothing.read_flow(), _answer(_entry(b"plain", "http://b")))
    with pytest.raises(og.NetworkError, match="no usable LLM enclave .1 active, none with an https endpoint"):
        nothing.select()


def test_presets_name_both_generations_of_the_network() -> None:
    assert PRESETS["public"] is PRESETS["public-0.7.4"] is PUBLIC
    assert PUBLIC.llm_server_url == "https://llm.opengradient.ai" and not PUBLIC.llm_discovery
    assert PUBLIC.payments.network == "eip155:84532"
    latest = PRESETS["public-latest"]
    assert latest is PUBLIC_LATEST and latest.llm_discovery and latest.payments.network == "eip155:8453"
    assert (latest.payments.token_name, latest.payments.token_version) == ("OpenGradient", "1")
    assert not PRESETS["public-base-mainnet"].llm_discovery
    assert {n.tee_registry_address for n in PRESETS.values()} == {TEE_REGISTRY_ADDRESS}
    assert PUBLIC.rpc_url == latest.rpc_url  # the registry lives on the Alpha chain


def test_seed_defaults_and_a_pinned_gateway() -> None:
    seed = og.Client(KEY)
    assert seed.network is not PUBLIC_LATEST and seed.network.llm_server_url == "https://llm.opengradient.ai"
    assert seed._tee_trust == "registry"  # response keys come from the registry, not the gateway
    assert og.Client(KEY, network="public-latest").llm._discover
    pinned = og.Client(KEY, network="public-latest", og_llm_server_url="https://10.1.2.3")
    assert not pinned.network.llm_discovery and not pinned.llm._discover
    assert pinned.network.llm_server_url == "https://10.1.2.3"
