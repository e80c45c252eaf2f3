"""Which chain the devnet's payments chain stands in for: its own, or Base Sepolia / Base in form.

`devnet` (the default) uses a chain id no public chain has and an OPG token at an address the
devnet's deployment gives it, so nothing signed against the devnet is valid anywhere else.

`base-sepolia` and `base` let clients that hard-code the public payment network pay the devnet
unchanged: the payments chain answers with the public chain id (84532 / 8453), and OPG sits at
its public address with its public EIP-712 domain (name `OPG` version `2` / name `OpenGradient`
version `1`). A payment signed in these modes is therefore **valid in form on the public chain's
domain**: sign only with the devnet's development keys, never with a key that holds real funds.
"""

from __future__ import annotations

from dataclasses import dataclass

from opengradient.errors import InvalidInputError
from opengradient.networks import DEVNET_PAYMENTS_CHAIN_ID, PUBLIC, PUBLIC_BASE_MAINNET, PaymentNetwork

__all__ = ["PAYMENTS_CHAINS", "PAYMENTS_CHAIN_WARNING", "PaymentsChain", "payments_chain"]

#: What the banner, `--help` and the docs say about the compatible modes.
PAYMENTS_CHAIN_WARNING = (
    "payments signed in the base-sepolia and base modes are valid in form on the public chain's "
    "EIP-712 domain (its chain id and OPG token address): use the devnet's development keys only")


@dataclass(frozen=True)
class PaymentsChain:
    """One payments-chain mode: chain id, where OPG lives (None: where the deployment puts it) and
    OPG's EIP-712 domain name and version."""

    name: str
    chain_id: int
    token_address: str | None
    token_name: str
    token_version: str

    @property
    def compatible(self) -> bool:
        """True when signatures made in this mode are valid in form on a public chain."""
        return self.token_address is not None


def _public(name: str, payments: PaymentNetwork) -> PaymentsChain:
    return PaymentsChain(name, int(payments.network.split(":", 1)[1]), payments.token_address,
                         payments.token_name, payments.token_version)


PAYMENTS_CHAINS: dict[str, PaymentsChain] = {
    "devnet": PaymentsChain("devnet", DEVNET_PAYMENTS_CHAIN_ID, None, "OPG", "2"),
    "base-sepolia": _public("base-sepolia", PUBLIC.payments),
    "base": _public("base", PUBLIC_BASE_MAINNET.payments),
}


def payments_chain(name: str | PaymentsChain) -> PaymentsChain:
    """A mode by name (`devnet`, `base-sepolia`, `base`); anything else is an `InvalidInputError`."""
    if isinstance(name, PaymentsChain):
        return name
    mode = PAYMENTS_CHAINS.get(name) if isinstance(name, str) else None
    if mode is None:
        raise InvalidInputError(f"unknown payments chain {name!r}", hint=f"use one of {', '.join(PAYMENTS_CHAINS)}")
    return mode
