"""What a devnet served over HTTP says about itself at `GET /`: its preset and its published
development credentials."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from opengradient.bounded_json import response_json
from opengradient.client._http import raise_for_status, transport_errors
from opengradient.errors import ConfigurationError
from opengradient.networks import Network, devnet_network


@dataclass(frozen=True)
class DevnetInfo:
    """A devnet's `Network`, and the credentials it publishes for development (Model Hub user, twins key)."""

    network: Network
    credentials: dict[str, str] = field(default_factory=dict, repr=False)


def discover_devnet(url: str, *, timeout: float = 10.0) -> DevnetInfo:
    """Ask the devnet at `url` for its chain ids, token, registry and development credentials; its
    `Network` sends LLM requests to the enclaves the devnet's TEE registry lists (over pinned TLS)."""
    base = url.rstrip("/")
    with transport_errors(f"reaching the devnet at {base}"):
        response = httpx.get(base + "/", timeout=timeout)
    raise_for_status(response, hint="is `opengradient devnet up` running there?")
    try:
        info = response_json(response)
        network = devnet_network(base, opg_token=info["payments"]["opg_token"],
                                 payments_chain_id=int(info["payments"]["chain_id"]),
                                 alpha_chain_id=int(info["alpha"]["chain_id"]),
                                 tee_registry=info["alpha"].get("tee_registry"),
                                 token_name=str(info["payments"].get("token_name", "OPG")),
                                 token_version=str(info["payments"].get("token_version", "2")),
                                 llm_discovery=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"{base} does not look like an OpenGradient devnet ({exc!r})") from exc
    return DevnetInfo(network, _credentials(info))


def _credentials(info: Any) -> dict[str, str]:
    hub, twins = info.get("model_hub") or {}, info.get("twins") or {}
    if not isinstance(hub, dict) or not isinstance(twins, dict):
        return {}
    found = {"email": hub.get("email"), "password": hub.get("password"), "twins_api_key": twins.get("api_key")}
    return {k: v for k, v in found.items() if isinstance(v, str) and v}


def network_from_devnet(url: str, *, timeout: float = 10.0) -> Network:
    """The `Network` of the devnet at `url` (for `og.init(network=...)`)."""
    return discover_devnet(url, timeout=timeout).network
