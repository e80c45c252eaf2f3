"""The devnet's x402 facilitator: x402's own facilitator core, settling on a `DevChain` in-process.

`x402FacilitatorSync` with x402's exact-EVM facilitator scheme does the verification and the
settlement logic (EIP-712 recovery, time window, `transferWithAuthorization` simulation, revert
reason → error code mapping, Transfer-event check). What this module adds is the part x402 leaves
to the operator — a signer that reaches the chain — plus the guards the field notes call for:

- `ChainSigner` implements x402's `FacilitatorEvmSigner` protocol on `DevChain.rpc` (no HTTP, no
  web3 provider). One lock is held across nonce reservation, signing and sending, and the nonce is
  re-read from the chain after a failed send, so concurrent settlements never collide.
- `DevFacilitator` checks the network itself (x402 routes every `eip155:*` payload to the one
  registered signer) and never settles what it has not verified (a replay would otherwise be
  broadcast, revert on chain and burn gas).
- Settlement can leave the request's critical path (`submit`): x402's settle runs on a worker
  thread and the caller waits only until the transfer is in the chain's pool under its hash (the
  hash is final; the receipt follows when the block is built). `verify_quick` checks an `exact`
  payment without simulating the transfer (x402's own checks without the simulation, plus the
  nonce read from the token); the caller checks the balance against its own ledger of pending
  settlements (`ExposureBook`), which is what the simulation would otherwise have covered.
- Both x402 schemes are registered: `exact` (EIP-3009) and `upto` (Permit2 through x402's upto
  proxy, settling an amount up to the signed cap; the gateway's sessions use it). Custom-error
  reverts (Permit2's `InvalidNonce()`, the proxy's `UnauthorizedFacilitator()`, …) are named in
  the error text, so x402's substring mapping finds its specific codes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from x402 import x402FacilitatorSync
from x402.mechanisms.evm.constants import (
    EIP1271_MAGIC_VALUE,
    ERR_NETWORK_MISMATCH,
    ERR_NONCE_ALREADY_USED,
    ERR_UNSUPPORTED_SCHEME,
    ERR_UPTO_SETTLEMENT_EXCEEDS_AMOUNT,
    ERR_UPTO_TRANSACTION_FAILED,
    IS_VALID_SIGNATURE_ABI,
    SCHEME_UPTO,
    TX_STATUS_SUCCESS,
    X402_UPTO_PERMIT2_PROXY_ABI,
    X402_UPTO_PERMIT2_PROXY_ADDRESS,
)
from x402.mechanisms.evm.exact.facilitator import ExactEvmScheme, ExactEvmSchemeConfig
from x402.mechanisms.evm.exact.v1.facilitator import ExactEvmSchemeV1
from x402.mechanisms.evm.types import TransactionReceipt, TypedDataDomain, TypedDataField, UptoPermit2Payload
from x402.mechanisms.evm.upto import UptoEvmFacilitatorScheme
from x402.mechanisms.evm.upto.permit2_utils import _build_upto_permit2_settle_args, _map_upto_settle_error
from x402.mechanisms.evm.v1.constants import V1_NETWORK_CHAIN_IDS
from x402.schemas import (
    PaymentPayload,
    PaymentRequirements,
    SettleResponse,
    VerifyResponse,
)
from x402.schemas.v1 import PaymentPayloadV1, PaymentRequirementsV1

from opengradient.devnet.chain.evm import RpcError

if TYPE_CHECKING:
    from opengradient.devnet.chain.evm import DevChain

__all__ = [
    "AUTHORIZATION_HELD",
    "AuthorizationKey",
    "ChainCallError",
    "ChainSigner",
    "ContractRevertError",
    "DevFacilitator",
    "PendingSettlement",
    "TxSender",
    "authorization_key",
    "chain_id_of_network",
    "v1_network_name",
]

log = logging.getLogger("opengradient.devnet.facilitator")

#: A settle refused because the gateway holds the authorization (it backs a request or a session).
AUTHORIZATION_HELD = "authorization_held_by_gateway"
_DECIMAL = re.compile(r"^[0-9]{1,100}$")  # leading zeros allowed: the number is what counts
_BYTES32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

#: (scheme, payer in lower case, nonce as an integer): one key per authorization however spelled.
AuthorizationKey = tuple[str, str, int]

#: Settlement worker threads: each waits for its block, so there are as many as requests in flight.
_SETTLE_WORKERS = 512
_AUTHORIZATION_STATE_ABI: list[dict[str, Any]] = [{
    "type": "function", "name": "authorizationState", "stateMutability": "view",
    "inputs": [{"name": "authorizer", "type": "address"}, {"name": "nonce", "type": "bytes32"}],
    "outputs": [{"name": "", "type": "bool"}]}]


class _Submission:
    """Where a settlement worker reports the hash of the transfer it put in the pool."""

    def __init__(self) -> None:
        self.transaction: str | None = None
        self.ready = threading.Event()

    def submitted(self, tx_hash: str) -> None:
        if self.transaction is None:
            self.transaction = tx_hash
        self.ready.set()


#: The submission the current settlement worker thread reports to (none outside `submit`).
_SUBMITTING = threading.local()


@dataclass(frozen=True)
class PendingSettlement:
    """A settlement whose transfer is in the pool: `transaction` is its final hash; `result`
    resolves once the block is built (a failure then is the payer's unpaid debt)."""

    transaction: str
    payer: str
    network: str
    result: Future[SettleResponse]


def authorization_key(payload: PaymentPayloadAny) -> AuthorizationKey | None:
    """The canonical key of a payment's authorization, or None when its fields are malformed.

    The chain knows a nonce as a number (EIP-3009's bytes32, Permit2's uint256), so "7", "07" and
    "007" are one permit: keys are built from the number, never from the text. Only the
    protocol's spellings are accepted — a Permit2 nonce in decimal digits, an EIP-3009 nonce as
    0x and 64 hex digits — and the payer must be an address.
    """
    body = payload.payload if isinstance(payload.payload, dict) else {}
    scheme = payload.get_scheme()
    authorization = body.get("permit2Authorization" if scheme == SCHEME_UPTO else "authorization")
    if not isinstance(authorization, dict):
        return None
    payer, nonce = authorization.get("from"), authorization.get("nonce")
    if not isinstance(payer, str) or not _ADDRESS.match(payer):
        return None
    if scheme == SCHEME_UPTO:
        if isinstance(nonce, int) and not isinstance(nonce, bool) and 0 <= nonce < 2**256:
            value = nonce
        elif isinstance(nonce, str) and _DECIMAL.match(nonce) and int(nonce) < 2**256:
            value = int(nonce)
        else:
            return None
    elif isinstance(nonce, str) and _BYTES32.match(nonce):
        value = int(nonce, 16)
    else:
        return None
    return scheme, payer.lower(), value

#: Gas limit of facilitator transactions; `transferWithAuthorization` uses ~83k. A fixed limit
#: spares an `eth_estimateGas` round trip per settlement (only gas used is paid).
SETTLE_GAS_LIMIT = 300_000
_PRIORITY_FEE = 10**9
_MIN_MAX_FEE = 2 * 10**9

PaymentPayloadAny = PaymentPayload | PaymentPayloadV1
PaymentRequirementsAny = PaymentRequirements | PaymentRequirementsV1


class ChainCallError(RuntimeError):
    """A JSON-RPC call to the devnet chain answered with an error."""

    def __init__(self, method: str, code: int, message: str, data: str | None = None) -> None:
        super().__init__(f"{method}: {message}")
        self.method, self.code, self.message, self.data = method, code, message, data


class ContractRevertError(ChainCallError):
    """A call or transaction reverted; the text keeps the reason (x402 maps it by substring)."""


def chain_id_of_network(network: str) -> int | None:
    """Chain id of a CAIP-2 `eip155:<id>` or x402 v1 network name; None when unknown."""
    if network.startswith("eip155:"):
        try:
            return int(network.split(":", 1)[1])
        except ValueError:
            return None
    return V1_NETWORK_CHAIN_IDS.get(network)


def v1_network_name(chain_id: int) -> str | None:
    """The x402 v1 name of a chain (`base-sepolia` for 84532), if it has one."""
    for name, known in V1_NETWORK_CHAIN_IDS.items():
        if known == chain_id:
            return name
    return None


def _abi_type(param: Mapping[str, Any]) -> str:
    kind = str(param["type"])
    if not kind.startswith("tuple"):
        return kind
    inner = ",".join(_abi_type(c) for c in param.get("components", []))
    return f"({inner}){kind[len('tuple'):]}"


def _function(abi: Sequence[Mapping[str, Any]], name: str, argc: int) -> Mapping[str, Any]:
    candidates = [e for e in abi if e.get("type") == "function" and e.get("name") == name]
    for entry in candidates:  # overloads (transferWithAuthorization) are told apart by arity
        if len(entry.get("inputs", [])) == argc:
            return entry
    if candidates:
        return candidates[0]
    raise ValueError(f"function {name} is not in the ABI")


def encode_call(abi: Sequence[Mapping[str, Any]], name: str, *args: Any) -> tuple[bytes, list[str]]:
    """Calldata for `name(*args)` and the function's output types."""
    entry = _function(abi, name, len(args))
    inputs = [_abi_type(p) for p in entry.get("inputs", [])]
    outputs = [_abi_type(p) for p in entry.get("outputs", [])]
    selector = keccak(text=f"{name}({','.join(inputs)})")[:4]
    return selector + abi_encode(inputs, list(args)), outputs


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


@cache
def _custom_errors() -> dict[str, str]:
    """Selector (hex, no 0x) → `Name(types)` of every custom error in the devnet's contracts."""
    from opengradient.devnet.chain.deploy import ARTIFACTS_DIR, artifact

    table: dict[str, str] = {}
    for path in sorted(ARTIFACTS_DIR.glob("*.json")):
        for entry in artifact(path.stem).get("abi", []):
            if entry.get("type") == "error":
                signature = f"{entry['name']}({','.join(_abi_type(i) for i in entry.get('inputs', []))})"
                table[keccak(text=signature)[:4].hex()] = signature
    return table


def _revert_message(message: str, data: Any) -> str:
    """`message`, naming the custom error when the revert data is one the devnet's contracts define."""
    if not isinstance(data, str) or len(data) < 10 or ": " in message:
        return message
    name = _custom_errors().get(data[2:10].lower())
    return f"{message}: {name}" if name else message


class TxSender:
    """Sends transactions from one account on one `DevChain`, in-process.

    One lock covers nonce reservation, signing and sending: the devnet mines each transaction
    at once and keeps no pool, so nonces must arrive in order. After a failed send the nonce is
    re-read from the chain.
    """

    def __init__(self, chain: DevChain, private_key: str) -> None:
        self.chain = chain
        self._account = Account.from_key(private_key)
        self.address: str = self._account.address
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self._max_fee: int | None = None

    def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; errors raise (reverts as `ContractRevertError`)."""
        response = self.chain.rpc({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        assert isinstance(response, dict)
        error = response.get("error")
        if error is not None:
            message = str(error.get("message", ""))
            data = error.get("data")
            cls = ContractRevertError if "revert" in message.lower() else ChainCallError
            if cls is ContractRevertError:
                message = _revert_message(message, data)
            raise cls(method, int(error.get("code", 0)), message, data)
        return response.get("result")

    def call(self, to: str, data: bytes, *, sender: str | None = None) -> bytes:
        """`eth_call` against the pending block (wall-clock time); returns the raw output."""
        result = self.rpc("eth_call", {"from": sender or self.address, "to": to, "data": _hex(data)},
                          "latest")
        return bytes.fromhex(str(result)[2:])

    def estimate_gas(self, to: str, data: bytes) -> int:
        """Single-pass gas estimate (with the chain's margin)."""
        return int(self.rpc("eth_estimateGas", {"from": self.address, "to": to, "data": _hex(data)}), 16)

    def _fee(self) -> int:
        if self._max_fee is None:
            price = int(self.rpc("eth_gasPrice"), 16)
            self._max_fee = max(4 * price, _MIN_MAX_FEE)
        return self._max_fee

    def send(self, to: str, data: bytes, *, gas: int = SETTLE_GAS_LIMIT) -> str:
        """Sign and submit one transaction to the chain's pool; returns its hash once accepted.

        The lock covers nonce, signing and submission only — not the block — so concurrent
        settlements share blocks; `receipt` waits for the block."""
        with self._lock:
            for attempt in range(2):
                if self._nonce is None:
                    self._nonce = int(self.rpc("eth_getTransactionCount", self.address, "pending"), 16)
                tx = {
                    "type": 2,
                    "chainId": self.chain.chain_id,
                    "nonce": self._nonce,
                    "to": to_checksum_address(to),
                    "value": 0,
                    "data": bytes(data),
                    "gas": gas,
                    "maxFeePerGas": self._fee(),
                    "maxPriorityFeePerGas": _PRIORITY_FEE,
                }
                raw = self._account.sign_transaction(tx).raw_transaction
                try:
                    tx_hash = self.chain.submit(bytes(raw))
                except RpcError as exc:
                    self._nonce = None  # resynchronise from the chain next time
                    if attempt == 0 and "base fee" in exc.message:
                        self._max_fee = None  # fees moved: re-read and retry once
                        continue
                    raise ChainCallError("eth_sendRawTransaction", exc.code, exc.message, exc.data) from None
                self._nonce += 1
                return tx_hash
        raise AssertionError("unreachable")

    def receipt(self, tx_hash: str, timeout: float = 30.0) -> dict[str, Any]:
        """The transaction's receipt, once its block is mined (a dropped one raises)."""
        dropped = self.chain.wait_mined(tx_hash, timeout)
        if dropped is not None:
            self._nonce = None  # the chain did not take it: resynchronise
            raise ChainCallError("eth_getTransactionReceipt", -32000, f"transaction {tx_hash} was dropped: {dropped}",
                                 None)
        return dict(self.rpc("eth_getTransactionReceipt", tx_hash))


class ChainSigner(TxSender):
    """x402's `FacilitatorEvmSigner` protocol on a `DevChain`, reached in-process."""

    def get_addresses(self) -> list[str]:
        return [self.address]

    def get_chain_id(self) -> int:
        return self.chain.chain_id

    def read_contract(self, address: str, abi: list[dict[str, Any]], function_name: str,
                      *args: Any) -> Any:
        data, outputs = encode_call(abi, function_name, *args)
        raw = self.call(address, data)
        if not outputs:
            return None
        decoded = abi_decode(outputs, raw)
        return decoded[0] if len(decoded) == 1 else list(decoded)

    def verify_typed_data(self, address: str, domain: TypedDataDomain | dict[str, Any],
                          types: dict[str, list[TypedDataField]], primary_type: str,
                          message: dict[str, Any], signature: bytes) -> bool:
        if isinstance(domain, dict):
            domain_dict = dict(domain)
        else:
            domain_dict = {"name": domain.name, "chainId": domain.chain_id,
                           "verifyingContract": domain.verifying_contract}
            if domain.version:
                domain_dict["version"] = domain.version
        field_types = {"name": "string", "version": "string", "chainId": "uint256",
                       "verifyingContract": "address", "salt": "bytes32"}
        full_types: dict[str, list[dict[str, str]]] = {
            "EIP712Domain": [{"name": k, "type": field_types[k]} for k in domain_dict if k in field_types]}
        for name, fields in types.items():
            full_types[name] = [{"name": f.name, "type": f.type} if isinstance(f, TypedDataField)
                                else dict(f) for f in fields]
        body = dict(message)
        if isinstance(body.get("nonce"), bytes):
            body["nonce"] = _hex(body["nonce"])
        typed = {"types": full_types, "primaryType": primary_type, "domain": domain_dict,
                 "message": body}
        try:
            signable = encode_typed_data(full_message=typed)
            if self.get_code(address):
                digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
                result = self.read_contract(address, IS_VALID_SIGNATURE_ABI, "isValidSignature",
                                            digest, signature)
                return bytes(result)[:4] == EIP1271_MAGIC_VALUE
            recovered = Account.recover_message(signable, signature=signature)
            return bool(recovered.lower() == address.lower())
        except Exception:
            return False

    def write_contract(self, address: str, abi: list[dict[str, Any]], function_name: str,
                       *args: Any, data_suffix: str | None = None) -> str:
        data, _ = encode_call(abi, function_name, *args)
        if data_suffix:
            data += bytes.fromhex(data_suffix.removeprefix("0x"))
        tx_hash = self.send(address, data)
        submission: _Submission | None = getattr(_SUBMITTING, "current", None)
        if submission is not None and function_name == "transferWithAuthorization":
            submission.submitted(tx_hash)  # the payment itself (not a wallet deployment)
        return tx_hash

    def send_transaction(self, to: str, data: bytes) -> str:
        return self.send(to, data)

    def wait_for_transaction_receipt(self, tx_hash: str) -> TransactionReceipt:
        receipt = self.receipt(tx_hash)
        return TransactionReceipt(
            status=TX_STATUS_SUCCESS if int(receipt["status"], 16) == 1 else 0,
            block_number=int(receipt["blockNumber"], 16),
            tx_hash=tx_hash,
            logs=list(receipt.get("logs") or []),
        )

    def get_balance(self, address: str, token_address: str) -> int:
        if not token_address or int(token_address, 16) == 0:
            return int(self.rpc("eth_getBalance", address, "latest"), 16)
        selector = keccak(text="balanceOf(address)")[:4]
        raw = self.call(token_address, selector + abi_encode(["address"], [address]))
        return int(abi_decode(["uint256"], raw)[0])

    def get_code(self, address: str) -> bytes:
        return bytes.fromhex(str(self.rpc("eth_getCode", address, "latest"))[2:])


class DevFacilitator:
    """Verifies and settles x402 payments on one devnet chain with x402's facilitator core.

    `network` is the CAIP-2 id the devnet advertises (`eip155:<payments chain id>`). Payments
    for any other chain are refused with `network_mismatch` before x402 sees them. Schemes:
    `exact` (v1 and v2) and `upto` (v2): an upto payment is verified against its cap
    (`requirements.amount` = the signed `permitted.amount`) and settled for any amount up to it.
    """

    SCHEMES = ("exact", SCHEME_UPTO)

    def __init__(self, chain: DevChain, private_key: str) -> None:
        self.chain = chain
        self.network = f"eip155:{chain.chain_id}"
        self.v1_network = v1_network_name(chain.chain_id)
        self.signer = ChainSigner(chain, private_key)
        self.core = x402FacilitatorSync()
        # simulate_in_settle stays off: `settle` below verifies (with simulation) first unless
        # the caller just did, so each payment is simulated exactly once.
        self._exact = ExactEvmScheme(self.signer, ExactEvmSchemeConfig())
        self.core.register([self.network], self._exact)
        self.core.register([self.network], UptoEvmFacilitatorScheme(self.signer))
        if self.v1_network is not None:
            self.core.register_v1([self.v1_network], ExactEvmSchemeV1(self.signer))
        # Verify-then-settle is made atomic per authorization, so two concurrent settles of one
        # payment never both reach the chain (the second is refused as already used).
        self._settle_locks = [threading.Lock() for _ in range(64)]
        #: Authorizations the gateway holds (a request in flight, an open upto session): nobody
        #: else may settle them through `settle_public`.
        self._held: dict[AuthorizationKey, int] = {}
        self._held_lock = threading.Lock()
        self._workers = ThreadPoolExecutor(_SETTLE_WORKERS, thread_name_prefix="og-settle")

    def close(self) -> None:
        """Wait for the settlements under way (their blocks are being built) and stop the workers."""
        self._workers.shutdown(wait=True)

    def hold(self, payload: PaymentPayloadAny) -> AuthorizationKey | None:
        """Reserve an authorization for the gateway until `unhold`; waits out a public settle of it
        already under way (whose effect the gateway's verification then sees)."""
        key = authorization_key(payload)
        if key is None:
            return None
        with self._lock_for(payload), self._held_lock:
            self._held[key] = self._held.get(key, 0) + 1
        return key

    def unhold(self, key: AuthorizationKey | None) -> None:
        """Give an authorization back (its request settled or failed, its session settled)."""
        if key is None:
            return
        with self._held_lock:
            count = self._held.get(key, 0) - 1
            if count > 0:
                self._held[key] = count
            else:
                self._held.pop(key, None)

    def held(self, payload: PaymentPayloadAny) -> bool:
        """Whether the gateway holds this payment's authorization."""
        key = authorization_key(payload)
        with self._held_lock:
            return key is not None and key in self._held

    def settle_public(self, payload: PaymentPayloadAny, requirements: PaymentRequirementsAny) -> SettleResponse:
        """`settle` for callers outside the gateway (`POST /facilitator/settle`).

        Invariant: an authorization the gateway holds — a payment whose request is being served,
        an upto permit backing an open session — is settled only by the gateway. Anyone else's
        settle of it is refused with `authorization_held_by_gateway`, checked under the same lock
        that makes verify-then-settle atomic, so it cannot slip in between.
        """
        network = str(requirements.network)
        with self._lock_for(payload):
            if self.held(payload):
                return SettleResponse(success=False, error_reason=AUTHORIZATION_HELD,
                                      error_message="this authorization backs a request or an upto session of "
                                                    "the gateway: only the gateway settles it",
                                      transaction="", network=network, payer=self._payer(payload))
            check = self.verify(payload, self._cap_requirements(payload, requirements))
            if not check.is_valid:
                return SettleResponse(success=False, error_reason=check.invalid_reason,
                                      error_message=check.invalid_message, payer=check.payer,
                                      transaction="", network=network)
            return self._settle(payload, requirements)

    @property
    def address(self) -> str:
        """The account that sends settlement transactions (an upto witness must name it)."""
        return self.signer.address

    def _wrong_network(self, payload: PaymentPayloadAny,
                       requirements: PaymentRequirementsAny) -> str | None:
        """Refusal reason when either side names another chain (None when both are ours)."""
        networks = [str(requirements.network), str(payload.get_network())]
        for network in networks:
            if chain_id_of_network(network) != self.chain.chain_id:
                return ERR_NETWORK_MISMATCH
        scheme = payload.get_scheme()
        if scheme not in self.SCHEMES or requirements.scheme != scheme:
            return ERR_UNSUPPORTED_SCHEME
        if scheme == SCHEME_UPTO and isinstance(payload, PaymentPayloadV1):
            return ERR_UNSUPPORTED_SCHEME  # upto exists in x402 v2 only
        return None

    @staticmethod
    def _authorization(payload: PaymentPayloadAny) -> dict[str, Any]:
        """The signed authorization: EIP-3009 `authorization` or upto's `permit2Authorization`."""
        body = payload.payload if isinstance(payload.payload, dict) else {}
        authorization = body.get("authorization")
        if not isinstance(authorization, dict):
            authorization = body.get("permit2Authorization")
        return authorization if isinstance(authorization, dict) else {}

    def _payer(self, payload: PaymentPayloadAny) -> str | None:
        payer = self._authorization(payload).get("from")
        return str(payer) if payer is not None else None

    def verify(self, payload: PaymentPayloadAny, requirements: PaymentRequirementsAny) -> VerifyResponse:
        """Check a payment (including an on-chain simulation of the transfer); never raises.

        For `upto`, `requirements.amount` is the cap: it must equal the signed permitted amount.
        """
        reason = self._wrong_network(payload, requirements)
        if reason is not None:
            return VerifyResponse(is_valid=False, invalid_reason=reason, payer=self._payer(payload))
        try:
            result = self.core.verify(payload, requirements)
        except Exception as exc:  # scheme not found, malformed payload fields, …
            log.warning("verify failed: %s: %s", type(exc).__name__, exc)
            return VerifyResponse(is_valid=False, invalid_reason="invalid_payload",
                                  invalid_message=str(exc), payer=self._payer(payload))
        if (not result.is_valid and result.invalid_reason == ERR_UPTO_TRANSACTION_FAILED
                and isinstance(payload, PaymentPayload) and isinstance(requirements, PaymentRequirements)):
            # x402 reports any failed upto simulation generically; name the revert (a used nonce,
            # an expired permit, …) with x402's own mapping of the proxy's and Permit2's errors.
            specific = self._upto_revert_reason(payload, int(requirements.amount))
            if specific is not None:
                result = VerifyResponse(is_valid=False, invalid_reason=specific, payer=result.payer)
        return result

    def verify_quick(self, payload: PaymentPayloadAny,
                     requirements: PaymentRequirementsAny) -> tuple[VerifyResponse, bool]:
        """`verify` without simulating the transfer where that is sound: (result, simulated).

        For an x402 v2 `exact` EIP-3009 payment this runs x402's checks without the simulation
        (fields, time window, EIP-712 signature, the asset) and reads the nonce's state from the
        token; the balance is left to the caller, who must check it against what it has pending
        for the payer (`simulated` is then False). Anything else is verified in full.
        """
        body = payload.payload if isinstance(payload.payload, dict) else {}
        quick = (isinstance(payload, PaymentPayload) and isinstance(requirements, PaymentRequirements)
                 and payload.get_scheme() == "exact" and isinstance(body.get("authorization"), dict)
                 and self._wrong_network(payload, requirements) is None)
        if not quick:
            return self.verify(payload, requirements), True
        assert isinstance(payload, PaymentPayload) and isinstance(requirements, PaymentRequirements)
        try:
            result, _ = self._exact._verify(payload, requirements, simulate=False)
            if not result.is_valid:
                return result, False
            authorization = body["authorization"]
            used = self.signer.read_contract(requirements.asset, _AUTHORIZATION_STATE_ABI, "authorizationState",
                                             authorization["from"], bytes.fromhex(str(authorization["nonce"])[2:]))
        except Exception as exc:  # malformed fields x402 did not catch, an unreachable chain
            log.warning("verify failed: %s: %s", type(exc).__name__, exc)
            return VerifyResponse(is_valid=False, invalid_reason="invalid_payload", invalid_message=str(exc),
                                  payer=self._payer(payload)), False
        if used:
            return VerifyResponse(is_valid=False, invalid_reason=ERR_NONCE_ALREADY_USED, payer=result.payer), False
        return result, False

    def submit(self, payload: PaymentPayloadAny,
               requirements: PaymentRequirementsAny) -> SettleResponse | PendingSettlement:
        """Settle a just-verified payment, waiting only until its transfer is in the pool.

        Returns the failed `SettleResponse` when settlement stopped before anything was sent, or
        a `PendingSettlement` naming the transfer's hash; its `result` resolves once mined.
        """
        submission = _Submission()

        def work() -> SettleResponse:
            _SUBMITTING.current = submission
            try:
                return self.settle(payload, requirements, verified=True)
            finally:
                _SUBMITTING.current = None
                submission.ready.set()

        result = self._workers.submit(work)
        submission.ready.wait()
        if submission.transaction is None:
            return result.result()  # refused before sending: nothing is pending
        return PendingSettlement(transaction=submission.transaction, payer=self._payer(payload) or "",
                                 network=str(requirements.network), result=result)

    def _upto_revert_reason(self, payload: PaymentPayload, amount: int) -> str | None:
        try:
            permit, value, owner, witness, signature = _build_upto_permit2_settle_args(
                UptoPermit2Payload.from_dict(payload.payload), amount)
            self.signer.read_contract(X402_UPTO_PERMIT2_PROXY_ADDRESS, X402_UPTO_PERMIT2_PROXY_ABI, "settle",
                                      permit, value, owner, witness, signature)
        except ContractRevertError as exc:
            mapped = _map_upto_settle_error(exc, self.network, self._payer(payload) or "").error_reason
            return mapped if mapped != ERR_UPTO_TRANSACTION_FAILED else None
        except Exception:
            return None
        return None

    def settle(self, payload: PaymentPayloadAny, requirements: PaymentRequirementsAny, *,
               verified: bool = False) -> SettleResponse:
        """Settle a payment on chain; verifies first unless `verified` (just verified by the caller).

        For `upto`, `requirements.amount` is what to charge (at most the signed cap); the payment
        is verified against its cap before anything is sent.
        """
        network = str(requirements.network)
        if not verified:
            with self._lock_for(payload):
                check = self.verify(payload, self._cap_requirements(payload, requirements))
                if not check.is_valid:
                    return SettleResponse(success=False, error_reason=check.invalid_reason,
                                          error_message=check.invalid_message, payer=check.payer,
                                          transaction="", network=network)
                return self._settle(payload, requirements)
        reason = self._wrong_network(payload, requirements)
        if reason is not None:
            return SettleResponse(success=False, error_reason=reason, transaction="",
                                  network=network, payer=self._payer(payload))
        return self._settle(payload, requirements)

    def settle_upto(self, payload: PaymentPayload, cap_requirements: PaymentRequirements,
                    amount: int) -> SettleResponse:
        """Settle `amount` (≤ the cap) of an upto payment verified against `cap_requirements`."""
        network = str(cap_requirements.network)
        if not 0 <= amount <= int(cap_requirements.amount):
            return SettleResponse(success=False, error_reason=ERR_UPTO_SETTLEMENT_EXCEEDS_AMOUNT,
                                  transaction="", network=network, payer=self._payer(payload))
        charge = cap_requirements.model_copy(update={"amount": str(amount)})
        with self._lock_for(payload):
            return self.settle(payload, charge, verified=True)

    def _cap_requirements(self, payload: PaymentPayloadAny,
                          requirements: PaymentRequirementsAny) -> PaymentRequirementsAny:
        """For upto, the requirements with the signed cap as amount (what verification compares)."""
        if payload.get_scheme() != SCHEME_UPTO or not isinstance(requirements, PaymentRequirements):
            return requirements
        permitted = self._authorization(payload).get("permitted")
        cap = permitted.get("amount") if isinstance(permitted, dict) else None
        if cap is None:
            return requirements
        try:
            if int(requirements.amount) > int(cap):
                return requirements  # verification refuses it: more than was signed for
        except (TypeError, ValueError):
            return requirements
        return requirements.model_copy(update={"amount": str(cap)})

    def _lock_for(self, payload: PaymentPayloadAny) -> threading.Lock:
        key = authorization_key(payload)
        text = repr(key) if key is not None else repr(self._authorization(payload))
        return self._settle_locks[int.from_bytes(keccak(text=text)[:4], "big") % len(self._settle_locks)]

    def _settle(self, payload: PaymentPayloadAny, requirements: PaymentRequirementsAny) -> SettleResponse:
        network = str(requirements.network)
        started = time.perf_counter()
        try:
            result = self.core.settle(payload, requirements)
        except Exception as exc:
            log.warning("settle failed: %s: %s", type(exc).__name__, exc)
            return SettleResponse(success=False, error_reason="unexpected_settle_error",
                                  error_message=str(exc), transaction="", network=network,
                                  payer=self._payer(payload))
        log.debug("settled %s in %.1f ms (success=%s)", result.transaction,
                  (time.perf_counter() - started) * 1000, result.success)
        return result

    def supported(self) -> dict[str, Any]:
        """`GET /supported` body: the kinds this facilitator settles and its signer."""
        return self.core.get_supported().model_dump(by_alias=True, exclude_none=True)


def parse_facilitator_request(body: Any) -> tuple[PaymentPayloadAny, PaymentRequirementsAny]:
    """Parse an x402 facilitator `/verify` or `/settle` body; raises ValueError when malformed."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    raw_payload = body.get("paymentPayload")
    raw_requirements = body.get("paymentRequirements")
    if not isinstance(raw_payload, dict) or not isinstance(raw_requirements, dict):
        raise ValueError("paymentPayload and paymentRequirements must be objects")
    version = raw_payload.get("x402Version", body.get("x402Version", 2))
    if version == 1:
        return (PaymentPayloadV1.model_validate(raw_payload),
                PaymentRequirementsV1.model_validate(raw_requirements))
    if version == 2:
        return (PaymentPayload.model_validate(raw_payload),
                PaymentRequirements.model_validate(raw_requirements))
    raise ValueError(f"unsupported x402Version {version!r}")
