"""Build the preset of a devnet served over HTTP from what it says about itself at `GET /`."""

from __future__ import annotations

import httpx

from opengradient.bounded_json import response_json
from opengradient.client._http import raise_for_status, transport_errors
from opengradient.errors import ConfigurationError
from opengradient.networks import Network, devnet_network


def network_from_devnet(url: str, *, timeout: float = 10.0) -> Network:
    """Ask the devnet at `url` for its chain ids, token and registry; returns its `Network`, whose
    LLM requests go to the enclaves the devnet's TEE registry lists (over pinned TLS)."""
    base = url.rstrip("/")
    with transport_errors(f"reaching the devnet at {base}"):
        response = httpx.get(base + "/", timeout=timeout)
    raise_for_status(response, hint="is `opengradient devnet up` running there?")
    try:
        info = response_json(response)
        return devnet_network(base, opg_token=info["payments"]["opg_token"],
                              payments_chain_id=int(info["payments"]["chain_id"]),
                              alpha_chain_id=int(info["alpha"]["chain_id"]),
                              tee_registry=info["alpha"].get("tee_registry"),
                              token_name=str(info["payments"].get("token_name", "OPG")),
                              token_version=str(info["payments"].get("token_version", "2")),
                              llm_discovery=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"{base} does not look like an OpenGradient devnet ({exc!r})") from exc
