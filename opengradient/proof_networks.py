"""Which network a saved proof belongs to, from the chain id it records (for `opengradient verify`).

A proof names its chain: the Alpha chain for on-chain and ZKML proofs, the payments chain for TEE
proofs. The devnet's chain ids are its own (`DEVNET_ALPHA_CHAIN_ID`, `DEVNET_PAYMENTS_CHAIN_ID`),
so a devnet proof is verified on a devnet — the one named by `--devnet`/`OG_DEVNET_URL`/the
`devnet_url` setting, else the default local one — and never on the public network. A devnet in a
public-chain-id mode (`--payments-chain base`) is only chosen when it is named explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from opengradient.client.discovery import DevnetInfo
from opengradient.errors import ConfigurationError, OpenGradientError
from opengradient.networks import (
    DEVNET_ALPHA_CHAIN_ID,
    DEVNET_PAYMENTS_CHAIN_ID,
    PUBLIC,
    PUBLIC_LATEST,
    Network,
)

__all__ = ["DEFAULT_DEVNET_URL", "NetworkChoice", "choose_network"]

#: Where `opengradient devnet up` serves by default.
DEFAULT_DEVNET_URL = "http://127.0.0.1:8645"
_DEVNET_CHAINS = frozenset({DEVNET_ALPHA_CHAIN_ID, DEVNET_PAYMENTS_CHAIN_ID})
#: Public presets by the payments chain id their TEE proofs record (the newest preset per chain).
_PUBLIC_BY_PAYMENTS_CHAIN = {int(n.payments.network.split(":")[1]): n for n in (PUBLIC, PUBLIC_LATEST)}


@dataclass(frozen=True)
class NetworkChoice:
    """Where to verify: a devnet (`devnet_url`), a public preset (`network`), or, when the chain id
    says nothing, whatever the settings configure (both None). `description` says which, for people."""

    kind: Literal["devnet", "public", "configured"]
    description: str
    devnet_url: str | None = None
    network: Network | None = None


def _chain_ids(info: DevnetInfo) -> set[int]:
    ids = {int(info.network.payments.network.split(":")[1])}
    if info.network.alpha_chain_id is not None:
        ids.add(info.network.alpha_chain_id)
    return ids


def choose_network(chain_id: int | None, *, devnet_url: str | None,
                   discover: Callable[[str], DevnetInfo]) -> NetworkChoice:
    """The network for a proof of `chain_id`; `devnet_url` is the one the user named (or None), and
    `discover(url)` asks a devnet for its network. Raises `ConfigurationError` when the proof is a
    devnet's and no devnet with its chain answers."""
    if chain_id is None:
        return NetworkChoice("configured", "the configured network (the proof names no chain)")
    if devnet_url is not None or chain_id in _DEVNET_CHAINS:
        url = (devnet_url or DEFAULT_DEVNET_URL).rstrip("/")
        try:
            info = discover(url)
        except OpenGradientError as exc:
            if chain_id in _DEVNET_CHAINS:
                raise ConfigurationError(
                    f"the proof is from a devnet (chain id {chain_id}) and no devnet answers at {url}: {exc}",
                    hint="start one (`opengradient devnet up`) or name it with --devnet URL or OG_DEVNET_URL"
                ) from exc
        else:
            served = _chain_ids(info)
            if chain_id in served:
                return NetworkChoice("devnet", f"the devnet at {url} (chain id {chain_id})", devnet_url=url)
            if chain_id in _DEVNET_CHAINS:
                raise ConfigurationError(
                    f"the proof is for chain {chain_id}, the devnet at {url} runs chains "
                    f"{', '.join(str(i) for i in sorted(served))}",
                    hint="name the devnet that made the proof with --devnet URL")
    public = _PUBLIC_BY_PAYMENTS_CHAIN.get(chain_id)
    if public is not None:
        return NetworkChoice("public", f"the public network {public.name} (chain id {chain_id})", network=public)
    return NetworkChoice("configured", f"the configured network (chain id {chain_id} is not a known preset's)")
