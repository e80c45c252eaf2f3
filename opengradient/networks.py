"""Network presets: every URL, address and chain parameter the client needs, in one place.

`PUBLIC` holds the defaults of SDK 0.7.4 (Alpha testnet, one static LLM gateway, payments on Base
Sepolia); `PUBLIC_LATEST` today's network (LLM enclaves found in the TEE registry and reached over
TLS pinned to their registered certificates, payments on Base mainnet). Every public preset names
the TEE registry, whose keys the client checks response signatures against. The devnet builds its
own preset with `devnet_network(base_url)`. A `Client` takes a preset (or its name in `PRESETS`)
and lets each field be overridden by its own constructor argument.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

INFERENCE_CONTRACT_ADDRESS = "0x8383C9bD7462F12Eb996DD02F78234C0421A6FaE"
INFERENCE_PRECOMPILE_ADDRESS = "0x00000000000000000000000000000000000000F4"
#: Where the Alpha chain serves price history (and runs workflow models on it).
PRICE_HISTORY_PRECOMPILE_ADDRESS = "0x00000000000000000000000000000000000000F5"
SCHEDULER_ADDRESS = "0x7179724De4e7FF9271FA40C0337c7f90C0508eF6"
PERMIT2_ADDRESS = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
#: The Alpha chain's registry of enclaves (`TEERegistry`): their endpoints, keys and certificates.
TEE_REGISTRY_ADDRESS = "0x703cB174AEadB35D611858369B4b1111dC9Abda6"

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
    #: True: LLM requests go to an enclave picked from the TEE registry (`llm_server_url` is then
    #: only the gateway whose key `tee_trust="gateway"` fetches); False: to `llm_server_url`.
    llm_discovery: bool = False

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
    tee_registry_address=TEE_REGISTRY_ADDRESS,
)

_BASE_MAINNET = PaymentNetwork(
    network="eip155:8453",
    rpc_url="https://mainnet.base.org",
    token_address="0xFbC2051AE2265686a469421b2C5A2D5462FbF5eB",
    token_name="OpenGradient",
    token_version="1",
)

#: The 0.7.4 endpoints, paying on Base mainnet with the newer OPG token (as releases between did).
PUBLIC_BASE_MAINNET = replace(PUBLIC, name="public-base-mainnet", payments=_BASE_MAINNET)

#: Today's network (the official 1.1.x releases): enclaves discovered in the TEE registry, each
#: reached at its registered endpoint over TLS pinned to its registered certificate; Base mainnet.
PUBLIC_LATEST = replace(PUBLIC, name="public-latest", payments=_BASE_MAINNET, llm_discovery=True)


def devnet_network(base_url: str, *, opg_token: str, payments_chain_id: int = DEVNET_PAYMENTS_CHAIN_ID,
                   alpha_chain_id: int = DEVNET_ALPHA_CHAIN_ID, tee_registry: str | None = None,
                   token_name: str = "OPG", token_version: str = "2", llm_discovery: bool = False) -> Network:
    """The preset of a devnet whose services all live under `base_url` (HTTP or in-process);
    with `llm_discovery` LLM requests go to the enclaves its TEE registry lists instead."""
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
        llm_discovery=llm_discovery and tee_registry is not None,
    )


#: `og.init(network=NAME)`: `public` (the default) and its alias `public-0.7.4` are SDK 0.7.4's
#: network, `public-latest` today's.
PRESETS: dict[str, Network] = {PUBLIC.name: PUBLIC, "public-0.7.4": PUBLIC,
                               PUBLIC_BASE_MAINNET.name: PUBLIC_BASE_MAINNET, PUBLIC_LATEST.name: PUBLIC_LATEST}
