"""The agent cassettes hold no secrets: no payment signatures or receipts, no keys, no loopback ports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from opengradient.devnet.chain.keys import dev_accounts

CASSETTES = sorted((Path(__file__).resolve().parent.parent / "cassettes" / "agents").glob("*.yaml"))
SECRET_REQUEST_HEADERS = {"payment-signature", "x-payment", "x-upto-session", "authorization"}
SECRET_RESPONSE_HEADERS = {"payment-response", "x-payment-response", "x-upto-session", "set-cookie"}


def test_there_are_cassettes() -> None:
    assert CASSETTES, "the standard suite's VCR test replays tests/cassettes/agents/"


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: p.name)
def test_cassette_holds_no_secrets(path: Path) -> None:
    text = path.read_text()
    for account in dev_accounts(10):
        key = account.private_key.removeprefix("0x").lower()
        assert key not in text.lower(), f"a private key is in {path.name}"
    cassette = yaml.safe_load(text)
    assert cassette["interactions"]
    for interaction in cassette["interactions"]:
        request, response = interaction["request"], interaction["response"]
        assert request["uri"].startswith("http://devnet.local/"), request["uri"]
        for name, values in request["headers"].items():
            if name.lower() in SECRET_REQUEST_HEADERS:
                assert values == ["REDACTED"], f"{name} recorded in {path.name}"
            assert name.lower() != "host"
        for name in response["headers"]:
            assert name.lower() not in SECRET_RESPONSE_HEADERS, f"{name} recorded in {path.name}"
