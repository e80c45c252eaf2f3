"""`Client`: one object that reaches every OpenGradient service through one connection pool."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from opengradient.client._http import HttpCore
from opengradient.client.wallet import Wallet
from opengradient.errors import ConfigurationError
from opengradient.networks import PRESETS, PUBLIC, Network
from opengradient.types import LlmInferenceMode

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from opengradient.client.alpha import Alpha
    from opengradient.client.llm import LLM, TeeTrust
    from opengradient.client.model_hub import ModelHub
    from opengradient.client.payments import PaymentScheme
    from opengradient.client.twins import Twins
    from opengradient.legacy import LegacyLLM
    from opengradient.types import TEE_LLM, TextGenerationOutput, x402SettlementMode


class Client:
    """The OpenGradient client.

    `private_key` pays for LLM requests (x402 on the payments chain); `alpha_private_key` pays gas
    for on-chain inference on the Alpha chain and defaults to `private_key`. URL and address
    arguments override the chosen `network` preset (the public network by default, whose values
    are the 0.7.4 defaults; `network="public-latest"` is today's, whose LLM enclaves are found in
    the TEE registry — `og_llm_server_url` pins one gateway instead). `transport`/`async_transport`
    replace the network layer — the in-process devnet uses them, so no socket is opened; TLS is
    then the transport's business too, certificate pinning included.

    LLM payments are capped per request by `max_payment_per_request` (OPG base units; 0.05 OPG
    by default): a dearer request fails before anything is signed, and all that one call signs
    (a payment, and another if the server answers it with a fresh 402) stays within it. No
    signature is valid for more than an hour, whatever the server's offer asks. Responses are verified
    against the TEE registry's enclave keys (`tee_trust="registry"`, the default when the
    network names a registry), the gateway's published key (`"gateway"`), a pinned PEM key
    (`tee_public_key=`), or not at all (`"off"`).

    `payment_scheme` picks how LLM requests are paid: `"exact"` (the default: one signed payment,
    settled on chain, per request) or `"upto"` (x402's metered scheme: one Permit2 signature opens
    a gateway session that later requests are charged to, settled once; run
    `client.llm.ensure_opg_approval(...)` first).
    """

    def __init__(
        self,
        private_key: str | None = None,
        alpha_private_key: str | None = None,
        email: str | None = None,
        password: str | None = None,
        twins_api_key: str | None = None,
        wallet_address: str | None = None,
        rpc_url: str | None = None,
        api_url: str | None = None,
        contract_address: str | None = None,
        og_llm_server_url: str | None = None,
        og_llm_streaming_server_url: str | None = None,
        *,
        network: Network | str = PUBLIC,
        hub_url: str | None = None,
        auth_url: str | None = None,
        auth_api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 2,
        max_payment_per_request: int | None = None,
        tee_trust: TeeTrust | None = None,
        tee_public_key: str | None = None,
        payment_scheme: PaymentScheme = "exact",
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if isinstance(network, str):
            if network not in PRESETS:
                raise ConfigurationError(f"unknown network preset {network!r}",
                                         hint=f"use one of {sorted(PRESETS)} or a Network object")
            network = PRESETS[network]
        if max_retries < 0:
            raise ConfigurationError("max_retries must be >= 0")
        self.network: Network = network.with_overrides(
            rpc_url=rpc_url, api_url=api_url, contract_address=contract_address,
            llm_server_url=og_llm_server_url, llm_streaming_server_url=og_llm_streaming_server_url,
            hub_url=hub_url, auth_url=auth_url,
            # a gateway named here is the one LLM requests go to: no enclave discovery then
            llm_discovery=False if og_llm_server_url or og_llm_streaming_server_url else None)
        self._wallet = Wallet(private_key) if private_key is not None else None
        self._alpha_wallet = (Wallet(alpha_private_key, role="alpha_private_key")
                              if alpha_private_key is not None else self._wallet)
        self.wallet_address: str | None = wallet_address or (
            self._wallet.address if self._wallet else None)
        self._email = email
        self.__password = password
        self.__twins_api_key = twins_api_key
        self._auth_api_key = auth_api_key
        self.max_retries = max_retries
        self._http = HttpCore(timeout=timeout, transport=transport, async_transport=async_transport)
        self._max_payment = max_payment_per_request
        self._tee_trust: TeeTrust = tee_trust or ("registry" if self.network.tee_registry_address else "gateway")
        self._tee_public_key = tee_public_key
        if tee_public_key is not None:
            from opengradient.client.tee import TeeKey

            try:
                TeeKey.from_pem(tee_public_key)
            except (ValueError, TypeError) as exc:
                raise ConfigurationError("tee_public_key is not a PEM public key",
                                         hint="pass the `public_key` that GET /signing-key serves") from exc
        if payment_scheme not in ("exact", "upto"):
            raise ConfigurationError(f"unknown payment_scheme {payment_scheme!r}", hint="use 'exact' or 'upto'")
        self._payment_scheme: PaymentScheme = payment_scheme
        self._alpha: Alpha | None = None
        self._model_hub: ModelHub | None = None
        self._llm: LLM | None = None
        self._twins: Twins | None = None
        self._legacy: LegacyLLM | None = None

    @property
    def alpha(self) -> Alpha:
        """On-chain ONNX inference (and workflows) on the Alpha chain."""
        if self._alpha is None:
            from opengradient.client.alpha import Alpha

            self._alpha = Alpha(http=self._http, network=self.network, wallet=self._alpha_wallet,
                                max_retries=self.max_retries)
        return self._alpha

    @property
    def llm(self) -> LLM:
        """TEE-verified LLM chat and completion, paid per request with x402."""
        if self._llm is None:
            from opengradient.client.llm import LLM
            from opengradient.client.payments import DEFAULT_MAX_PAYMENT

            self._llm = LLM(http=self._http, network=self.network, wallet=self._wallet,
                            max_retries=self.max_retries,
                            max_payment_per_request=self._max_payment or DEFAULT_MAX_PAYMENT,
                            tee_trust=self._tee_trust, tee_public_key=self._tee_public_key,
                            payment_scheme=self._payment_scheme)
        return self._llm

    @property
    def twins(self) -> Twins:
        """Digital-twin chat (needs `twins_api_key`; calls without one raise a clear error)."""
        if self._twins is None:
            from opengradient.client.twins import Twins

            self._twins = Twins(self._http, base_url=self.network.twins_url, api_key=self.__twins_api_key)
        return self._twins

    @property
    def model_hub(self) -> ModelHub:
        """Model repositories: create, version, upload, list."""
        if self._model_hub is None:
            from opengradient.client.model_hub import ModelHub

            self._model_hub = ModelHub(self._http, hub_url=self.network.hub_url,
                                       auth_url=self.network.auth_url, email=self._email,
                                       password=self.__password, auth_api_key=self._auth_api_key)
        return self._model_hub

    # -- the legacy LLM API of the seed's LLM guide (see `opengradient.legacy`) -------------------

    def _legacy_llm(self) -> LegacyLLM:
        if self._legacy is None:
            from opengradient.legacy import LegacyLLM

            self._legacy = LegacyLLM(http=self._http, network=self.network, wallet=self._alpha_wallet,
                                     llm=lambda: self.llm, max_retries=self.max_retries)
        return self._legacy

    def llm_completion(self, model_cid: TEE_LLM | str, prompt: str,
                       inference_mode: LlmInferenceMode | int | str = LlmInferenceMode.VANILLA,
                       max_tokens: int = 100, temperature: float = 0.0,
                       stop_sequence: str | list[str] | None = None, *,
                       x402_settlement_mode: x402SettlementMode | str | None = None,
                       settlement_mode: x402SettlementMode | str | None = None) -> TextGenerationOutput:
        """Legacy completion: VANILLA runs `runLLMCompletion` on the Alpha chain (result from the
        receipt); TEE goes through `client.llm` (x402). `settlement_mode` aliases
        `x402_settlement_mode` and applies to TEE only."""
        return self._legacy_llm().completion(model_cid, prompt, inference_mode, max_tokens, temperature,
                                             stop_sequence, x402_settlement_mode, settlement_mode)

    async def allm_completion(self, model_cid: TEE_LLM | str, prompt: str,
                              inference_mode: LlmInferenceMode | int | str = LlmInferenceMode.VANILLA,
                              max_tokens: int = 100, temperature: float = 0.0,
                              stop_sequence: str | list[str] | None = None, *,
                              x402_settlement_mode: x402SettlementMode | str | None = None,
                              settlement_mode: x402SettlementMode | str | None = None) -> TextGenerationOutput:
        """Async twin of `llm_completion`."""
        return await self._legacy_llm().acompletion(model_cid, prompt, inference_mode, max_tokens, temperature,
                                                    stop_sequence, x402_settlement_mode, settlement_mode)

    def llm_chat(self, model_cid: TEE_LLM | str, messages: Sequence[Mapping[str, Any]],
                 inference_mode: LlmInferenceMode | int | str = LlmInferenceMode.VANILLA, max_tokens: int = 100,
                 temperature: float = 0.0, stop_sequence: str | list[str] | None = None,
                 tools: list[dict[str, Any]] | None = None, tool_choice: str | dict[str, Any] | None = None, *,
                 x402_settlement_mode: x402SettlementMode | str | None = None,
                 settlement_mode: x402SettlementMode | str | None = None) -> TextGenerationOutput:
        """Legacy chat: VANILLA runs `runLLMChat` on the Alpha chain (result from the receipt); TEE
        goes through `client.llm` (x402). `settlement_mode` aliases `x402_settlement_mode` and
        applies to TEE only."""
        return self._legacy_llm().chat(model_cid, messages, inference_mode, max_tokens, temperature,
                                       stop_sequence, tools, tool_choice, x402_settlement_mode, settlement_mode)

    async def allm_chat(self, model_cid: TEE_LLM | str, messages: Sequence[Mapping[str, Any]],
                        inference_mode: LlmInferenceMode | int | str = LlmInferenceMode.VANILLA,
                        max_tokens: int = 100, temperature: float = 0.0,
                        stop_sequence: str | list[str] | None = None, tools: list[dict[str, Any]] | None = None,
                        tool_choice: str | dict[str, Any] | None = None, *,
                        x402_settlement_mode: x402SettlementMode | str | None = None,
                        settlement_mode: x402SettlementMode | str | None = None) -> TextGenerationOutput:
        """Async twin of `llm_chat`."""
        return await self._legacy_llm().achat(model_cid, messages, inference_mode, max_tokens, temperature,
                                              stop_sequence, tools, tool_choice, x402_settlement_mode,
                                              settlement_mode)

    @property
    def address(self) -> str | None:
        """Address of the LLM payment key."""
        return self._wallet.address if self._wallet else None

    @property
    def alpha_address(self) -> str | None:
        """Address that pays gas on the Alpha chain."""
        return self._alpha_wallet.address if self._alpha_wallet else None

    def close(self) -> None:
        """Close the client's connections (sync pool)."""
        self._http.close()

    async def aclose(self) -> None:
        """Close the client's connections (sync and async pools)."""
        await self._http.aclose()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (f"Client(network={self.network.name!r}, address={self.address}, "
                f"alpha_address={self.alpha_address})")

    def __reduce__(self) -> Any:
        raise TypeError("a Client cannot be pickled: it holds private keys")
