"""`choose_network`: a proof's chain id picks the devnet (named, or the default local URL) or a
public preset; the devnet is asked for its chains, never assumed."""

from __future__ import annotations

import pytest

from opengradient.client.discovery import DevnetInfo
from opengradient.errors import ConfigurationError, NetworkError
from opengradient.networks import DEVNET_ALPHA_CHAIN_ID, DEVNET_PAYMENTS_CHAIN_ID, devnet_network
from opengradient.proof_networks import DEFAULT_DEVNET_URL, choose_network

ASKED: list[str] = []


def devnet_at(url: str, payments_chain_id: int = DEVNET_PAYMENTS_CHAIN_ID) -> DevnetInfo:
    ASKED.append(url)
    return DevnetInfo(devnet_network(url, opg_token="0x" + "11" * 20, payments_chain_id=payments_chain_id), {})


def unreachable(url: str) -> DevnetInfo:
    ASKED.append(url)
    raise NetworkError(f"reaching the devnet at {url}: connection refused")


def test_a_devnet_proof_without_a_named_devnet_goes_to_the_default_local_url() -> None:
    ASKED.clear()
    choice = choose_network(DEVNET_ALPHA_CHAIN_ID, devnet_url=None, discover=devnet_at)
    assert ASKED == [DEFAULT_DEVNET_URL] and choice.kind == "devnet"
    assert choice.devnet_url == DEFAULT_DEVNET_URL
    assert choice.description == f"the devnet at {DEFAULT_DEVNET_URL} (chain id {DEVNET_ALPHA_CHAIN_ID})"


def test_a_named_devnet_wins_and_serves_its_payments_chain() -> None:
    choice = choose_network(DEVNET_PAYMENTS_CHAIN_ID, devnet_url="http://127.0.0.1:21555/", discover=devnet_at)
    assert choice.devnet_url == "http://127.0.0.1:21555" and choice.kind == "devnet"


def test_a_named_devnet_in_base_mode_serves_base_chain_id_proofs() -> None:
    choice = choose_network(8453, devnet_url="http://127.0.0.1:21556",
                            discover=lambda url: devnet_at(url, payments_chain_id=8453))
    assert choice.kind == "devnet"


def test_public_chain_ids_without_a_devnet_go_public() -> None:
    ASKED.clear()
    choice = choose_network(84532, devnet_url=None, discover=devnet_at)
    assert ASKED == [] and choice.kind == "public" and choice.network is not None
    assert choice.network.payments.network == "eip155:84532"
    assert choose_network(8453, devnet_url="http://127.0.0.1:21557", discover=unreachable).kind == "public"
    assert choose_network(None, devnet_url=None, discover=devnet_at).kind == "configured"
    assert choose_network(12345, devnet_url=None, discover=devnet_at).kind == "configured"


def test_a_devnet_proof_with_no_devnet_or_the_wrong_one_is_refused_clearly() -> None:
    with pytest.raises(ConfigurationError, match=f"no devnet answers at {DEFAULT_DEVNET_URL}"):
        choose_network(DEVNET_ALPHA_CHAIN_ID, devnet_url=None, discover=unreachable)
    with pytest.raises(ConfigurationError, match="the devnet at http://x runs chains 8453, 910010"):
        choose_network(DEVNET_PAYMENTS_CHAIN_ID, devnet_url="http://x",
                       discover=lambda url: devnet_at(url, payments_chain_id=8453))
