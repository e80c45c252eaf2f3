"""Network presets: every URL, address and chain parameter the client needs, in one place.

`PUBLIC` holds the defaults of SDK 0.7.4 (Alpha testnet, payments on Base Sepolia). The devnet
builds its own preset with `devnet_network(base_url)`. A `Client` takes a preset and lets each
field be overridden by its own constructor argument.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

INFERENCE_CONTRACT_ADDRESS = "0x8383C9bD7462F12Eb996DD02F78234C0421A6FaE"
INFERENCE_PRECOMPILE_ADDRESS = "0x00000000000000000000000000000000000000F4"
#: Where the Alpha chain serves price history (and runs workflow models on it).
PRICE_HISTORY_PRECOMPILE_ADDRESS = "0x00000000000000000000000000000000000000F5"
SCHEDULER_ADDRESS = "0x7179724De4e7FF9271FA40C0337c7f90C0508eF6"
PERMIT2_ADDRESS = "0x000000000022D473030F116dDEE9F6B43aC78BA3"

#: Chain ids of the devnet; chosen to differ from every public chain so nothing signed locally
#: can be replayed elsewhere.
DEVNET_ALPHA_CHAIN_ID = 910_010
DEVNET_PAYMENTS_CHAIN_ID = 910_020


@dataclass(frozen=True)
class PaymentNetwork:
    """Where LLM requests are paid: the chain (CAIP-2) and the OPG token's EIP-712 domain."""

    network: str
    rpc_url: str
    token_address: str
    token_name: str
    token_version: str
    token_decimals: int = 18


@dataclass(frozen=True)
class Network:
    """Endpoints and addresses of one OpenGradient deployment."""

    name: str
    rpc_url: str
    api_url: str
    contract_address: str
    llm_server_url: str
    llm_streaming_server_url: str
    hub_url: str
    auth_url: str
    twins_url: str
    scheduler_address: str
    explorer_url: str
    payments: PaymentNetwork
    alpha_chain_id: int | None = None
    #: The Alpha-chain contract listing active enclaves and their keys (the LLM trust anchor).
    tee_registry_address: str | None = None

    def with_overrides(self, **fields: object) -> Network:
        """A copy with the given fields replaced; `None` values keep the preset's value."""
        return replace(self, **{k: v for k, v in fields.items() if v is not None})  # type: ignore[arg-type]

    def tx_url(self, transaction_hash: str) -> str:
        """Block-explorer link of a transaction."""
        return f"{self.explorer_url}/tx/{transaction_hash}"

    def address_url(self, address: str) -> str:
        """Block-explorer link of an address."""
        return f"{self.explorer_url}/address/{address}"


PUBLIC = Network(
    name="public",
    rpc_url="https://ogevmdevnet.opengradient.ai",
    api_url="https://sdk-devnet.opengradient.ai",
    contract_address=INFERENCE_CONTRACT_ADDRESS,
    llm_server_url="https://llm.opengradient.ai",
    llm_streaming_server_url="https://llm.opengradient.ai",
    hub_url="https://api.opengradient.ai/api/v0",
    auth_url="https://identitytoolkit.googleapis.com/v1",
    twins_url="https://chat-api.memchat.io/api/v1",
    scheduler_address=SCHEDULER_ADDRESS,
    explorer_url="https://explorer.opengradient.ai",
    payments=PaymentNetwork(
        network="eip155:84532",
        rpc_url="https://sepolia.base.org",
        token_address="0x240b09731D96979f50B2C649C9CE10FcF9C7987F",
        token_name="OPG",
        token_version="2",
    ),
)

#: Later releases pay on Base mainnet with a new OPG token.
PUBLIC_BASE_MAINNET = replace(
    PUBLIC,
    name="public-base-mainnet",
    payments=PaymentNetwork(
        network="eip155:8453",
        rpc_url="https://mainnet.base.org",
        token_address="0xFbC2051AE2265686a469421b2C5A2D5462FbF5eB",
        token_name="OpenGradient",
        token_version="1",
    ),
)


def devnet_network(base_url: str, *, opg_token: str, payments_chain_id: int = DEVNET_PAYMENTS_CHAIN_ID,
                   alpha_chain_id: int = DEVNET_ALPHA_CHAIN_ID, tee_registry: str | None = None,
                   token_name: str = "OPG", token_version: str = "2") -> Network:
    """The preset of a devnet whose services all live under `base_url` (HTTP or in-process)."""
    base = base_url.rstrip("/")
    return Network(
        name="devnet",
        rpc_url=f"{base}/rpc/alpha",
        api_url=base,
        contract_address=INFERENCE_CONTRACT_ADDRESS,
        llm_server_url=base,
        llm_streaming_server_url=base,
        hub_url=f"{base}/api/v0",
        auth_url=f"{base}/auth/v1",
        twins_url=f"{base}/twins/api/v1",
        scheduler_address=SCHEDULER_ADDRESS,
        explorer_url=f"{base}/explorer",
        payments=PaymentNetwork(
            network=f"eip155:{payments_chain_id}",
            rpc_url=f"{base}/rpc/payments",
            token_address=opg_token,
            token_name=token_name,
            token_version=token_version,
        ),
        alpha_chain_id=alpha_chain_id,
        tee_registry_address=tee_registry,
    )


PRESETS: dict[str, Network] = {PUBLIC.name: PUBLIC, PUBLIC_BASE_MAINNET.name: PUBLIC_BASE_MAINNET}
