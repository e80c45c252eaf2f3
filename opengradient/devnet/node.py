"""`Devnet`: the whole network on this machine — chains, contracts, precompile, Model Hub.

LLM enclaves: the gateway signs with `enclaves` enclave keys, each registered in the TEE registry
(at the public registry's address) with an endpoint of its own. Served over HTTP, each enclave
also gets an HTTPS server presenting a self-signed certificate made at start, whose DER is what the
registry lists: clients pin it. In-process there are no sockets and no TLS: the first enclave's
registered endpoint is the in-process URL itself (further ones `http://enclave-N.devnet.local`),
with no certificate, and a client reaches them through the devnet's transport. The devnet's own
preset discovers enclaves in the registry, as today's network does.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from opengradient.client.client import Client
from opengradient.client.confidential import ConfidentialLLM
from opengradient.client.wallet import Wallet
from opengradient.devnet.app import build_app
from opengradient.devnet.chain.deploy import runtime_code
from opengradient.devnet.chain.evm import DevChain
from opengradient.devnet.chain.keys import DevAccount, dev_accounts
from opengradient.devnet.chain.payments_chain import PAYMENTS_CHAIN_WARNING, PaymentsChain
from opengradient.devnet.chain.payments_chain import payments_chain as resolve_payments_chain
from opengradient.devnet.chain.precompiles.inference import InferencePrecompile
from opengradient.devnet.chain.precompiles.llm import LLM_PRECOMPILE_ADDRESS, LLMPrecompile
from opengradient.devnet.chain.precompiles.price_history import (
    PRICE_HISTORY_PRECOMPILE_ADDRESS,
    PriceFeed,
    PriceHistoryPrecompile,
)
from opengradient.devnet.services.hub import DEV_EMAIL, DEV_PASSWORD, HubService, ModelStore
from opengradient.devnet.services.limits import limits_table
from opengradient.devnet.services.llm.completions import KNOWN_MODELS
from opengradient.devnet.services.llm.enclave import Enclave
from opengradient.devnet.services.llm.gateway import LLMGateway
from opengradient.devnet.services.llm.reference import ReferenceModel
from opengradient.devnet.services.llm.relay import OhttpRelay
from opengradient.devnet.services.models import SHIPPED_MODELS
from opengradient.devnet.services.twins import DEVNET_TWINS_API_KEY, TwinsService
from opengradient.devnet.services.workflows import install_workflows
from opengradient.devnet.services.zkml.service import ZkmlService
from opengradient.devnet.services.zkml.verifier import VERIFIER_ADDRESS, verifier_runtime_code
from opengradient.devnet.tls import TlsIdentity, self_signed
from opengradient.devnet.transport import ASGIBridge
from opengradient.networks import (
    DEVNET_ALPHA_CHAIN_ID,
    INFERENCE_CONTRACT_ADDRESS,
    INFERENCE_PRECOMPILE_ADDRESS,
    Network,
    PaymentNetwork,
    devnet_network,
)

log = logging.getLogger("opengradient.devnet")

#: Host name of the in-process devnet; requests to it never leave the process.
IN_PROCESS_URL = "http://devnet.local"
_FUNDING_WEI = 10_000 * 10**18
#: OPG each user account (0–7) holds at start.
OPG_PER_USER = 1_000_000 * 10**18
#: Dev account roles: 0–7 users (hold OPG), 8 the gateway operator (deployer, payTo, settlement
#: recorder, TEE registrant), 9 the facilitator (sends the x402 settle transactions); user 6 also pays
#: for the OHTTP relay.
USER_ACCOUNTS = 8
OPERATOR_ACCOUNT = 8
FACILITATOR_ACCOUNT = 9
#: The user account the OHTTP relay pays with (it holds OPG like the others).
RELAY_ACCOUNT = 6
#: The relay's development API key (`Authorization: Bearer …` on `/api/v1/chat/ohttp`).
DEVNET_RELAY_API_KEY = "devnet-relay-key"


@dataclass(frozen=True)
class DevnetModel:
    """A model the devnet published at start: its hub name, CID and an input it runs on."""

    name: str
    cid: str
    description: str
    example_input: dict[str, Any]


class Devnet:
    """A running devnet. Use `start()`; close it (or use `with`) to stop it."""

    def __init__(self, *, http: bool = False, host: str = "127.0.0.1", port: int = 0,
                 data_dir: Path | str | None = None, deferred_results: bool = False,
                 accounts: int = 10, payments_chain: str | PaymentsChain = "devnet",
                 block_time: float | None = None, enclaves: int | None = None) -> None:
        started = time.perf_counter()
        #: Which chain the payments chain stands in for (`opengradient.devnet.chain.payments_chain`).
        self.payments_mode = resolve_payments_chain(payments_chain)
        self.accounts: list[DevAccount] = dev_accounts(max(accounts, FACILITATOR_ACCOUNT + 1))
        funded = {a.address: _FUNDING_WEI for a in self.accounts}
        self._tmp = tempfile.TemporaryDirectory(prefix="og-devnet-") if data_dir is None else None
        self.data_dir = Path(self._tmp.name if self._tmp else data_dir)  # type: ignore[arg-type]
        self.store = ModelStore(self.data_dir / "models")
        # The hub's index survives restarts with the models' bytes, in a data directory the user chose.
        self.hub = HubService(self.store, index_path=None if self._tmp else self.data_dir / "hub.json")
        self.zkml = ZkmlService(self.data_dir / "zkml")
        self.precompile = InferencePrecompile(self.store, deferred_results=deferred_results,
                                              zkml=self.zkml)
        self.llm_precompile = LLMPrecompile(ReferenceModel(), KNOWN_MODELS)
        #: The candles the price-history precompile serves (advanced by the scheduler loop).
        self.price_feed = PriceFeed(time.time())
        self.twins = TwinsService()
        self.alpha_chain = DevChain(
            DEVNET_ALPHA_CHAIN_ID, name="alpha", funded=funded,
            code={INFERENCE_CONTRACT_ADDRESS: runtime_code("OGInference"),
                  VERIFIER_ADDRESS: verifier_runtime_code()},
            precompiles={INFERENCE_PRECOMPILE_ADDRESS: self.precompile,
                         LLM_PRECOMPILE_ADDRESS: self.llm_precompile,
                         PRICE_HISTORY_PRECOMPILE_ADDRESS: PriceHistoryPrecompile(self.price_feed, self.precompile)})
        self.zkml.attach_chain(self.alpha_chain)
        self.payments_chain = DevChain(self.payments_mode.chain_id, name="payments", funded=funded,
                                       code={})
        self.models: list[DevnetModel] = [
            DevnetModel(m.name, self.hub.publish(m.name, m.path, description=m.description),
                        m.description, m.example_input)
            for m in SHIPPED_MODELS
        ]
        self.gateway = LLMGateway.deploy(
            payments_chain=self.payments_chain, alpha_chain=self.alpha_chain,
            operator=self.accounts[OPERATOR_ACCOUNT], facilitator=self.accounts[FACILITATOR_ACCOUNT],
            holders=[a.address for a in self.accounts[:USER_ACCOUNTS]], mint_each=OPG_PER_USER,
            token_name=self.payments_mode.token_name, token_version=self.payments_mode.token_version,
            token_address=self.payments_mode.token_address, store=self.store)
        #: The OHTTP relay: pays enclaves for confidential chat with dev account `RELAY_ACCOUNT`.
        self.relay = OhttpRelay(
            wallet=Wallet(self.accounts[RELAY_ACCOUNT].private_key),
            payments=PaymentNetwork(network=self.gateway.network, rpc_url="",
                                    token_address=self.gateway.contracts.opg_token,
                                    token_name=self.payments_mode.token_name,
                                    token_version=self.payments_mode.token_version),
            enclave_call=self.gateway.ohttp_call, authority_of=self.gateway.authority_of,
            api_key=DEVNET_RELAY_API_KEY)
        self.app = build_app(alpha=self.alpha_chain, payments=self.payments_chain, hub=self.hub,
                             precompile=self.precompile, info=self.info, llm=self.gateway,
                             twins=self.twins, zkml=self.zkml, relay=self.relay)
        self._bridge = ASGIBridge(self.app, direct={"/rpc/alpha": self.alpha_chain.rpc_bytes,
                                                     "/rpc/payments": self.payments_chain.rpc_bytes})
        #: uvicorn servers and their threads: the devnet's HTTP server first, then the enclaves' HTTPS
        #: servers by tee id.
        self._servers: list[tuple[Any, threading.Thread]] = []
        self._enclave_servers: dict[str, tuple[Any, threading.Thread]] = {}
        self.url = self._serve(host, port) if http else IN_PROCESS_URL
        count = enclaves if enclaves is not None else (2 if http else 1)
        if count < 1:
            raise ValueError("a devnet needs at least one enclave")
        for index in range(count):
            self._add_enclave(index, host, (port + 1 + index) if http and port else 0)
        self.network: Network = devnet_network(self.url, opg_token=self.gateway.contracts.opg_token,
                                               payments_chain_id=self.payments_mode.chain_id,
                                               tee_registry=self.gateway.tee_registry,
                                               token_name=self.payments_mode.token_name,
                                               token_version=self.payments_mode.token_version,
                                               llm_discovery=True)
        self.client = self.new_client()
        # The scheduler follows the chain's clock, so `evm_increaseTime` makes workflows due.
        self.workflows = install_workflows(self.alpha_chain, self.hub, self.price_feed, self.accounts,
                                           clock=self.alpha_chain.now)
        for chain in (self.alpha_chain, self.payments_chain):
            for account in self.accounts:  # eth_sendTransaction from a dev account, as anvil's
                chain.unlock(account.private_key)
            chain.mark_base()  # anvil_reset comes back to the deployed devnet, not to an empty chain
        if block_time is not None:  # after the deployment, which automines
            self.alpha_chain.mine_every(block_time)
            self.payments_chain.mine_every(block_time)
        self.startup_seconds = time.perf_counter() - started
        log.info("devnet ready at %s in %.2f s", self.url, self.startup_seconds)

    @property
    def in_process(self) -> bool:
        """True when the devnet is reached through transports rather than sockets."""
        return not self._servers

    def _add_enclave(self, index: int, host: str, port: int) -> None:
        """Register enclave `index` (the gateway's own key first): over HTTP behind an HTTPS server
        of its own, in-process at an in-process URL."""
        enclave = self.gateway.enclave if index == 0 else Enclave()
        if self.in_process:
            endpoint = IN_PROCESS_URL if index == 0 else f"http://enclave-{index}.devnet.local"
            self.gateway.register_tee(endpoint, enclave=enclave)
            return
        identity = self_signed(f"opengradient-devnet-enclave-{index}", host)
        try:
            server, thread, bound = self._serve_tls(host, port, identity)
        except OSError:  # the port after the devnet's is taken: any free one will do
            server, thread, bound = self._serve_tls(host, 0, identity)
        self._enclave_servers[enclave.tee_id] = (server, thread)
        self.gateway.register_tee(f"https://{_authority(host, bound)}", enclave=enclave,
                                  certificate=identity.certificate_der)

    def disable_enclave(self, tee_id: str) -> None:
        """Take an enclave out of the TEE registry's active list (its server keeps answering)."""
        self.gateway.disable_tee(tee_id)

    def stop_enclave(self, tee_id: str) -> None:
        """Stop an enclave's HTTPS server (the registry still lists it): connections to it fail."""
        entry = self._enclave_servers.pop(tee_id, None)
        if entry is None:
            raise KeyError(f"no enclave server for {tee_id} (in-process devnets have none)")
        _stop(*entry)

    def confidential_llm(self, **kwargs: Any) -> ConfidentialLLM:
        """An `og.ConfidentialLLM` through this devnet's relay, with its development API key."""
        kwargs.setdefault("headers", {"Authorization": f"Bearer {self.relay.api_key}"})
        if self.in_process:
            kwargs.setdefault("transport", self._bridge.transport)
            kwargs.setdefault("async_transport", self._bridge.async_transport)
        return ConfidentialLLM(self.url, network=self.network, **kwargs)

    def new_client(self, private_key: str | None = None, **kwargs: Any) -> Client:
        """A client for this devnet (dev account 0 and the dev hub user unless told otherwise)."""
        kwargs.setdefault("email", DEV_EMAIL)
        kwargs.setdefault("password", DEV_PASSWORD)
        kwargs.setdefault("twins_api_key", DEVNET_TWINS_API_KEY)
        if self.in_process:
            kwargs.setdefault("transport", self._bridge.transport)
            kwargs.setdefault("async_transport", self._bridge.async_transport)
        return Client(private_key or self.accounts[0].private_key, network=self.network, **kwargs)

    def model(self, name: str) -> DevnetModel:
        """A shipped model by name."""
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(f"no devnet model {name!r}; shipped: {', '.join(m.name for m in self.models)}")

    def info(self) -> dict[str, Any]:
        """What is running, for `GET /` and `opengradient devnet up`."""
        return {
            "url": self.url,
            "alpha": {"rpc_url": self.network.rpc_url, "chain_id": DEVNET_ALPHA_CHAIN_ID,
                      "inference_contract": INFERENCE_CONTRACT_ADDRESS,
                      "inference_precompile": INFERENCE_PRECOMPILE_ADDRESS,
                      "llm_precompile": LLM_PRECOMPILE_ADDRESS,
                      "price_history_precompile": PRICE_HISTORY_PRECOMPILE_ADDRESS,
                      "tee_registry": self.network.tee_registry_address,
                      "tee_enclaves": self.gateway.registered,
                      "zkml_verifier": VERIFIER_ADDRESS},
            "payments": {"rpc_url": self.network.payments.rpc_url,
                         "chain_id": self.payments_mode.chain_id,
                         "mode": self.payments_mode.name,
                         "opg_token": self.network.payments.token_address,
                         "token_name": self.payments_mode.token_name,
                         "token_version": self.payments_mode.token_version,
                         **({"warning": PAYMENTS_CHAIN_WARNING} if self.payments_mode.compatible else {})},
            "model_hub": {"url": self.network.hub_url, "email": DEV_EMAIL, "password": DEV_PASSWORD},
            "models": [{"name": m.name, "cid": m.cid, "example_input": m.example_input}
                       for m in self.models],
            "llm": self.gateway.info(),
            "twins": {"url": self.network.twins_url, **self.twins.info()},
            "relay": {"url": self.url, **self.relay.info()},
            "workflows": self.workflows.info() if hasattr(self, "workflows") else None,
            "accounts": [a.address for a in self.accounts],
            "limits": {"request_body_bytes": limits_table()},
        }

    def _serve(self, host: str, port: int) -> str:
        server, thread, bound = self._start_server(host, port, uvicorn_options={})
        self._servers.append((server, thread))
        return f"http://{_authority(host, bound)}"

    def _serve_tls(self, host: str, port: int, identity: TlsIdentity) -> tuple[Any, threading.Thread, int]:
        """An HTTPS server of the devnet's app presenting `identity`; the key file it loads lives in a
        private directory only until the server is up."""
        directory = Path(tempfile.mkdtemp(prefix="og-devnet-tls-"))
        try:
            cert, key = identity.write_pem(directory)
            server, thread, bound = self._start_server(
                host, port, uvicorn_options={"ssl_certfile": str(cert), "ssl_keyfile": str(key)})
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        self._servers.append((server, thread))
        return server, thread, bound

    def _start_server(self, host: str, port: int, *, uvicorn_options: dict[str, Any]
                      ) -> tuple[Any, threading.Thread, int]:
        import socket

        import uvicorn

        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets made that way, and without
        # it every response waits ~40 ms for a delayed ACK (uvicorn writes headers and body apart).
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                             socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise OSError(f"{host}:{port} is not available ({exc.strerror})") from exc
        bound_port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off", **uvicorn_options)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                  name=f"og-devnet-http-{bound_port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the devnet could not serve on {host}:{bound_port}")
            time.sleep(0.005)
        return server, thread, bound_port

    def close(self) -> None:
        """Stop serving and free the data directory (if the devnet made it)."""
        self.workflows.close()
        self.client.close()
        self.gateway.close()
        self.zkml.close()
        for server, thread in self._servers:
            _stop(server, thread)
        self._servers.clear()
        self._enclave_servers.clear()
        self._bridge.close()
        self.alpha_chain.close()
        self.payments_chain.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Devnet:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Devnet(url={self.url!r}, models={[m.name for m in self.models]})"


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _stop(server: Any, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=5)


def start(*, http: bool = False, host: str = "127.0.0.1", port: int = 0,
          data_dir: Path | str | None = None, deferred_results: bool = False,
          payments_chain: str = "devnet", block_time: float | None = None,
          enclaves: int | None = None, accounts: int = 10) -> Devnet:
    """Start a devnet: in-process by default, or served over HTTP on `host:port` with `http=True`.

    `deferred_results=True` makes on-chain inference behave like asynchronous execution on the
    public network: the event output is empty and the result is served by the inference API.
    `payments_chain` is `"devnet"` (its own chain id: nothing signed here is valid elsewhere),
    `"base-sepolia"` or `"base"` (the public chain id, OPG address and EIP-712 domain, for clients
    that hard-code them; signatures are then valid in form on the public chain: dev keys only).
    `block_time` (seconds) mines both chains at that interval, as anvil's `--block-time`; without
    it they automine (a block as soon as transactions arrive; concurrent ones share it).
    `enclaves` is how many LLM enclaves the TEE registry lists (default 2 over HTTP, each behind an
    HTTPS server with its own self-signed certificate; 1 in-process).
    `accounts` is how many funded development accounts there are (at least 10: the devnet's own
    roles use the first ten); `eth_sendTransaction` from any of them is signed by the devnet.
    """
    return Devnet(http=http, host=host, port=port, data_dir=data_dir, deferred_results=deferred_results,
                  payments_chain=payments_chain, block_time=block_time, enclaves=enclaves,
                  accounts=accounts)
