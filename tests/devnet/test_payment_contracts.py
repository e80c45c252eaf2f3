"""The payments and TEE-trust contracts on an in-process DevChain, and the deployer that installs them.

OPGToken (ERC-20 + EIP-2612 + EIP-3009), Multicall3, OGSettlement and TEERegistry, checked against
eth_account's EIP-712 signing, the published EIP-3009 test vector, and the official x402
client and facilitator core settling a real payment over loopback JSON-RPC.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

from opengradient.devnet.chain.deploy import (
    MULTICALL3_ADDRESS,
    Deployer,
    DeployerError,
    PaymentContracts,
    deploy_payment_contracts,
    deploy_tee_registry,
    encode_call,
    runtime_code,
)
from opengradient.devnet.chain.evm import DevChain
from opengradient.devnet.chain.keys import DevAccount, dev_accounts
from opengradient.networks import TEE_REGISTRY_ADDRESS

CHAIN_ID = 31_411
NETWORK = f"eip155:{CHAIN_ID}"
ETHER = 10**18
OPG = 10**18
MINT_EACH = 1_000_000 * OPG
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
AUTH_USED_TOPIC = keccak(text="AuthorizationUsed(address,bytes32)")
AUTH_CANCELED_TOPIC = keccak(text="AuthorizationCanceled(address,bytes32)")

EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
AUTHORIZATION_FIELDS = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]

# The published EIP-3009 test vector (key 0x11…11, USDC domain on chain 84532).
VECTOR_KEY = "0x" + "11" * 32
VECTOR_PAYER = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"
VECTOR_TOKEN = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
VECTOR_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
VECTOR_NONCE = "0x" + "ab" * 32
VECTOR_DIGEST = "0x05b92ff489e8e5e9e1d1f855628f5062a7bc971a40aac5b901b7338f8f529734"
VECTOR_SIGNATURE = (
    "0x4447f0ea468ceb43335c61c42ddff853e442501c1f29b89dba5886804a9cc030"
    "54f3cf9fad15e47a338917ed9b4edc790c703c212a8cdf3f5f3e9affb44017b81b"
)


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def accounts() -> list[DevAccount]:
    return dev_accounts(10)


@pytest.fixture(scope="module")
def chain(accounts: list[DevAccount]) -> DevChain:
    return DevChain(CHAIN_ID, funded={a.address: 10_000 * ETHER for a in accounts}, name="payments")


@pytest.fixture(scope="module")
def operator(accounts: list[DevAccount]) -> DevAccount:
    return accounts[0]


@pytest.fixture(scope="module")
def contracts(chain: DevChain, accounts: list[DevAccount]) -> PaymentContracts:
    # Holders 1..7; 8 and 9 stay without OPG (the facilitator and an empty payer).
    return deploy_payment_contracts(chain, accounts[0], [a.address for a in accounts[1:8]], mint_each=MINT_EACH)


@pytest.fixture(scope="module")
def deployer(chain: DevChain, operator: DevAccount, contracts: PaymentContracts) -> Deployer:
    return Deployer(chain, operator)


@pytest.fixture(scope="module")
def token(contracts: PaymentContracts) -> str:
    return contracts.opg_token


def _domain(token: str, chain_id: int = CHAIN_ID, name: str = "OPG", version: str = "2") -> dict[str, Any]:
    return {"name": name, "version": version, "chainId": chain_id, "verifyingContract": token}


def _sign_authorization(
    key: str,
    token: str,
    message: dict[str, Any],
    *,
    primary: str = "TransferWithAuthorization",
    domain: dict[str, Any] | None = None,
) -> bytes:
    fields = (
        [{"name": "authorizer", "type": "address"}, {"name": "nonce", "type": "bytes32"}]
        if primary == "CancelAuthorization"
        else AUTHORIZATION_FIELDS
    )
    typed = {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, primary: fields},
        "primaryType": primary,
        "domain": domain or _domain(token),
        "message": message,
    }
    return bytes(Account.sign_typed_data(key, full_message=typed).signature)


def _authorization(payer: str, to: str, value: int, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    message = {
        "from": payer,
        "to": to,
        "value": value,
        "validAfter": 0,
        "validBefore": now + 300,
        "nonce": os.urandom(32),
    }
    message.update(overrides)
    return message


def _args(message: dict[str, Any]) -> list[Any]:
    return [message[f["name"]] for f in AUTHORIZATION_FIELDS]


def _vrs(signature: bytes) -> tuple[int, bytes, bytes]:
    return signature[64], signature[:32], signature[32:64]


def _balance(deployer: Deployer, token: str, who: str) -> int:
    return int(deployer.call(token, "OPGToken", "balanceOf", who))


def _logs_with_topic(receipt: dict[str, Any], topic: bytes) -> list[dict[str, Any]]:
    return [log for log in receipt["logs"] if bytes.fromhex(log["topics"][0][2:]) == topic]


def _topic_address(topic: str) -> str:
    return to_checksum_address("0x" + topic[-40:])


# --------------------------------------------------------------------------------------------
# Deployment
# --------------------------------------------------------------------------------------------


def test_deploy_payment_contracts(accounts: list[DevAccount]) -> None:
    """A fresh chain, set up as the devnet does at start (and within its 300 ms budget)."""
    funded = {a.address: 10_000 * ETHER for a in accounts}
    chain = DevChain(CHAIN_ID + 1, funded=funded, name="payments")
    alpha = DevChain(CHAIN_ID + 2, funded=funded, name="alpha")
    started = time.perf_counter()
    contracts = deploy_payment_contracts(chain, accounts[0], [a.address for a in accounts[1:8]], mint_each=MINT_EACH)
    registry = deploy_tee_registry(alpha, accounts[0])
    assert time.perf_counter() - started < 1.0  # typically ~30 ms; generous for stalled CI machines
    deployer = Deployer(chain, accounts[0])
    token = contracts.opg_token
    assert contracts.multicall == MULTICALL3_ADDRESS
    for on, address in ((chain, token), (chain, contracts.settlement), (chain, MULTICALL3_ADDRESS), (alpha, registry)):
        code = on.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_getCode", "params": [address, "latest"]})
        assert isinstance(code, dict) and len(code["result"]) > 2
    assert deployer.call(token, "OPGToken", "name") == "OPG"
    assert deployer.call(token, "OPGToken", "symbol") == "OPG"
    assert deployer.call(token, "OPGToken", "version") == "2"
    assert deployer.call(token, "OPGToken", "decimals") == 18
    assert deployer.call(token, "OPGToken", "owner") == accounts[0].address
    assert deployer.call(token, "OPGToken", "totalSupply") == 7 * MINT_EACH
    for holder in accounts[1:8]:
        assert _balance(deployer, token, holder.address) == MINT_EACH
    assert _balance(deployer, token, accounts[8].address) == 0
    assert deployer.call(contracts.settlement, "OGSettlement", "recorder") == accounts[0].address
    assert Deployer(alpha, accounts[0]).call(registry, "TEERegistry", "admin") == accounts[0].address


def test_base_mainnet_style_domain(chain: DevChain, accounts: list[DevAccount]) -> None:
    alt = deploy_payment_contracts(chain, accounts[0], [], token_name="OpenGradient", token_version="1")
    d = Deployer(chain, accounts[0])
    assert d.call(alt.opg_token, "OPGToken", "name") == "OpenGradient"
    assert d.call(alt.opg_token, "OPGToken", "version") == "1"
    expected = encode_typed_data(
        full_message=_typed_for_domain(_domain(alt.opg_token, name="OpenGradient", version="1"))
    ).header
    assert d.call(alt.opg_token, "OPGToken", "DOMAIN_SEPARATOR") == expected


def test_deploy_revert_reason_is_reported(chain: DevChain, accounts: list[DevAccount]) -> None:
    zero = "0x" + "00" * 20
    with pytest.raises(DeployerError, match="owner is the zero address") as estimated:
        Deployer(chain, accounts[3]).deploy("OPGToken", "OPG", "OPG", "2", zero)
    assert estimated.value.reason == "OPGToken: owner is the zero address"
    # Without estimation the transaction is mined, fails, and is replayed for its reason.
    with pytest.raises(DeployerError, match="owner is the zero address") as mined:
        Deployer(chain, accounts[3], estimate_gas=False).deploy("OPGToken", "OPG", "OPG", "2", zero)
    assert mined.value.receipt is not None and mined.value.receipt["status"] == "0x0"
    with pytest.raises(DeployerError, match="no artifact"):
        Deployer(chain, accounts[3]).deploy("NoSuchContract")


def test_runtime_code_of_multicall_is_what_is_installed(chain: DevChain, contracts: PaymentContracts) -> None:
    code = chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_getCode", "params": [MULTICALL3_ADDRESS, "latest"]})
    assert isinstance(code, dict)
    assert bytes.fromhex(code["result"][2:]) == runtime_code("Multicall3")


# --------------------------------------------------------------------------------------------
# EIP-712 domain and the published vector
# --------------------------------------------------------------------------------------------


def _typed_for_domain(domain: dict[str, Any]) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, "TransferWithAuthorization": AUTHORIZATION_FIELDS},
        "primaryType": "TransferWithAuthorization",
        "domain": domain,
        "message": {
            "from": VECTOR_PAYER,
            "to": VECTOR_TO,
            "value": 10000,
            "validAfter": 0,
            "validBefore": 1900000000,
            "nonce": bytes.fromhex(VECTOR_NONCE[2:]),
        },
    }


def test_protocol_vector_digest_and_signature() -> None:
    typed = _typed_for_domain(_domain(VECTOR_TOKEN, chain_id=84532, name="USDC", version="2"))
    signable = encode_typed_data(full_message=typed)
    digest = keccak(b"\x19\x01" + signable.header + signable.body)
    assert "0x" + digest.hex() == VECTOR_DIGEST
    signed = Account.sign_typed_data(VECTOR_KEY, full_message=typed)
    assert "0x" + bytes(signed.signature).hex() == VECTOR_SIGNATURE
    assert Account.from_key(VECTOR_KEY).address == VECTOR_PAYER


def test_domain_separator_matches_eth_account(deployer: Deployer, token: str) -> None:
    expected = encode_typed_data(full_message=_typed_for_domain(_domain(token))).header
    assert deployer.call(token, "OPGToken", "DOMAIN_SEPARATOR") == expected
    fields, name, version, chain_id, verifying, salt, extensions = deployer.call(token, "OPGToken", "eip712Domain")
    assert (fields, name, version, chain_id) == (b"\x0f", "OPG", "2", CHAIN_ID)
    assert (to_checksum_address(verifying), salt, list(extensions)) == (token, b"\x00" * 32, [])


def test_protocol_vector_settles_on_opg_token_at_the_vector_address(accounts: list[DevAccount]) -> None:
    """The vector's exact signature moves 10000 units on OPGToken named USDC/2 on chain 84532.

    The runtime code (with its immutables) of a deployed instance is copied to the vector's token
    address, so this also shows DOMAIN_SEPARATOR is recomputed for an address it was not built at.
    """
    operator = accounts[0]
    base_sepolia = DevChain(84532, funded={operator.address: 10_000 * ETHER}, name="base-sepolia")
    d = Deployer(base_sepolia, operator)
    built = d.deploy("OPGToken", "USDC", "USDC", "2", operator.address)
    code = base_sepolia.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_getCode", "params": [built, "latest"]})
    assert isinstance(code, dict)
    base_sepolia.set_code(VECTOR_TOKEN, bytes.fromhex(code["result"][2:]))
    # Storage layout: _name 0, _symbol 1, _version 2, owner 3, totalSupply 4, balanceOf 5.
    balance_slot = int.from_bytes(keccak(bytes(12) + bytes.fromhex(VECTOR_PAYER[2:]) + (5).to_bytes(32, "big")))
    base_sepolia.set_storage(VECTOR_TOKEN, balance_slot, 10000)
    assert _balance(d, VECTOR_TOKEN, VECTOR_PAYER) == 10000
    expected = encode_typed_data(
        full_message=_typed_for_domain(_domain(VECTOR_TOKEN, chain_id=84532, name="USDC", version="2"))
    ).header
    assert d.call(VECTOR_TOKEN, "OPGToken", "DOMAIN_SEPARATOR") == expected
    d.transact(
        VECTOR_TOKEN,
        "OPGToken",
        "transferWithAuthorization",
        VECTOR_PAYER,
        VECTOR_TO,
        10000,
        0,
        1900000000,
        VECTOR_NONCE,
        VECTOR_SIGNATURE,
    )
    assert _balance(d, VECTOR_TOKEN, VECTOR_TO) == 10000
    assert _balance(d, VECTOR_TOKEN, VECTOR_PAYER) == 0


# --------------------------------------------------------------------------------------------
# EIP-3009
# --------------------------------------------------------------------------------------------


def test_transfer_with_authorization_vrs_overload(deployer: Deployer, token: str, accounts: list[DevAccount]) -> None:
    payer, payee = accounts[1], accounts[8]
    message = _authorization(payer.address, payee.address, 5 * OPG)
    signature = _sign_authorization(payer.private_key, token, message)
    before_payer, before_payee = _balance(deployer, token, payer.address), _balance(deployer, token, payee.address)
    assert deployer.call(token, "OPGToken", "authorizationState", payer.address, message["nonce"]) is False
    receipt = deployer.transact(token, "OPGToken", "transferWithAuthorization", *_args(message), *_vrs(signature))
    assert _balance(deployer, token, payer.address) == before_payer - 5 * OPG
    assert _balance(deployer, token, payee.address) == before_payee + 5 * OPG
    assert deployer.call(token, "OPGToken", "authorizationState", payer.address, message["nonce"]) is True
    (used,) = _logs_with_topic(receipt, AUTH_USED_TOPIC)
    assert _topic_address(used["topics"][1]) == payer.address
    assert used["topics"][2] == "0x" + message["nonce"].hex()
    (transfer,) = _logs_with_topic(receipt, TRANSFER_TOPIC)
    assert int(transfer["data"], 16) == 5 * OPG


def test_transfer_with_authorization_bytes_overload(deployer: Deployer, token: str, accounts: list[DevAccount]) -> None:
    payer, payee = accounts[2], accounts[8]
    message = _authorization(payer.address, payee.address, 7 * OPG)
    signature = _sign_authorization(payer.private_key, token, message)
    before = _balance(deployer, token, payee.address)
    # Anyone may submit it: here a third party that is neither payer nor payee.
    Deployer(deployer.chain, accounts[5]).transact(
        token, "OPGToken", "transferWithAuthorization", *_args(message), signature
    )
    assert _balance(deployer, token, payee.address) == before + 7 * OPG


def _expect_revert(deployer: Deployer, token: str, function: str, args: list[Any], reason: str) -> None:
    with pytest.raises(DeployerError) as excinfo:
        deployer.transact(token, "OPGToken", function, *args)
    assert excinfo.value.reason == reason, excinfo.value


def test_replay_is_refused(deployer: Deployer, token: str, accounts: list[DevAccount]) -> None:
    payer, payee = accounts[3], accounts[8]
    message = _authorization(payer.address, payee.address, OPG)
    signature = _sign_authorization(payer.private_key, token, message)
    deployer.transact(token, "OPGToken", "transferWithAuthorization", *_args(message), signature)
    reason = "FiatTokenV2: authorization is used or canceled"
    _expect_revert(deployer, token, "transferWithAuthorization", [*_args(message), signature], reason)
    _expect_revert(deployer, token, "transferWithAuthorization", [*_args(message), *_vrs(signature)], reason)


def test_time_window(deployer: Deployer, token: str, accounts: list[DevAccount]) -> None:
    payer, payee = accounts[3], accounts[8]
    now = int(time.time())
    expired = _authorization(payer.address, payee.address, OPG, validBefore=now - 10)
    _expect_revert(
        deployer,
        token,
        "transferWithAuthorization",
        [*_args(expired), _sign_authorization(payer.private_key, token, expired)],
        "FiatTokenV2: authorization is expired",
    )
    early = _authorization(payer.address, payee.address, OPG, validAfter=now + 3600, validBefore=now + 7200)
    _expect_revert(
        deployer,
        token,
        "transferWithAuthorization",
        [*_args(early), _sign_authorization(payer.private_key, token, early)],
        "FiatTokenV2: authorization is not yet valid",
    )


def test_bad_signatures(deployer: Deployer, token: str, accounts: list[DevAccount]) -> None:
    payer, payee, mallory = accounts[4], accounts[8], accounts[9]
    invalid = "FiatTokenV2: invalid signature"
    message = _authorization(payer.address, payee.address, OPG)
    # Signed by someone else.
    forged = _sign_authorization(mallory.private_key, token, message)
    _expect_revert(deployer, token, "transferWithAuthorization", [*_args(message), forged], invalid)
    _expect_revert(deployer, token, "transferWithAuthorization", [*_args(message), *_vrs(forged)], invalid)
    good = _sign_authorization(payer.private_key, token, message)
    v, r, s = _vrs(good)
    # Malleated: (r, n - s, flipped v) recovers the same signer with ecrecover, but s is high.
    high_s = (SECP256K1_N - int.from_bytes(s, "big")).to_bytes(32, "big")
    flipped_v = 55 - v
    _expect_revert(deployer, token, "transferWithAuthorization", [*_args(message), flipped_v, r, high_s], invalid)
    _expect_revert(
        deployer, token, "transferWithAuthorization", [*_args(message), r + high_s + bytes([flipped_v])], invalid
    )
    # v outside {27, 28}.
    for bad_v in (v - 27, 29, 0):
        _expect_revert(deployer, token, "transferWithAuthorization", [*_args(message), bad_v, r, s], invalid)
    # Wrong length, and a tampered amount.
    _expect_revert(deployer, token, "transferWithAuthorization", [*_args(message), good[:64]], invalid)
    tampered = dict(message, value=2 * OPG)
    _expect_revert(deployer, token, "transferWithAuthorization", [*_args(tampered), good], invalid)
    # Nothing of that used the nonce: the genuine signature still works.
    deployer.transact(token, "OPGToken", "transferWithAuthorization", *_args(message), good)


def test_insufficient_balance(deployer: Deployer, token: str, accounts: list[DevAccount]) -> None:
    poor, payee = accounts[9], accounts[8]  # account 9 holds no OPG
    message = _authorization(poor.address, payee.address, OPG)
    _expect_revert(
        deployer,
        token,
        "transferWithAuthorization",
        [*_args(message), _sign_authorization(poor.private_key, token, message)],
        "ERC20: transfer amount exceeds balance",
    )


def test_receive_with_authorization(deployer: Deployer, token: str, accounts: list[DevAccount]) -> None:
    payer, payee = accounts[5], accounts[6]
    message = _authorization(payer.address, payee.address, 3 * OPG)
    signature = _sign_authorization(payer.private_key, token, message, primary="ReceiveWithAuthorization")
    # A TransferWithAuthorization signature is not a ReceiveWithAuthorization one, and vice versa.
    transfer_sig = _sign_authorization(payer.private_key, token, message)
    payee_deployer = Deployer(deployer.chain, payee)
    _expect_revert(
        payee_deployer,
        token,
        "receiveWithAuthorization",
        [*_args(message), transfer_sig],
        "FiatTokenV2: invalid signature",
    )
    _expect_revert(
        deployer, token, "transferWithAuthorization", [*_args(message), signature], "FiatTokenV2: invalid signature"
    )
    # Only the payee may submit it.
    _expect_revert(
        deployer,
        token,
        "receiveWithAuthorization",
        [*_args(message), signature],
        "FiatTokenV2: caller must be the payee",
    )
    before = _balance(deployer, token, payee.address)
    payee_deployer.transact(token, "OPGToken", "receiveWithAuthorization", *_args(message), *_vrs(signature))
    assert _balance(deployer, token, payee.address) == before + 3 * OPG
    _expect_revert(
        payee_deployer,
        token,
        "receiveWithAuthorization",
        [*_args(message), signature],
        "FiatTokenV2: authorization is used or canceled",
    )


def test_cancel_authorization(deployer: Deployer, token: str, accounts: list[DevAccount]) -> None:
    payer, payee = accounts[6], accounts[8]
    message = _authorization(payer.address, payee.address, OPG)
    transfer_sig = _sign_authorization(payer.private_key, token, message)
    cancel = {"authorizer": payer.address, "nonce": message["nonce"]}
    cancel_sig = _sign_authorization(payer.private_key, token, cancel, primary="CancelAuthorization")
    forged = _sign_authorization(accounts[9].private_key, token, cancel, primary="CancelAuthorization")
    _expect_revert(
        deployer,
        token,
        "cancelAuthorization",
        [payer.address, message["nonce"], forged],
        "FiatTokenV2: invalid signature",
    )
    receipt = deployer.transact(
        token, "OPGToken", "cancelAuthorization", payer.address, message["nonce"], *_vrs(cancel_sig)
    )
    (canceled,) = _logs_with_topic(receipt, AUTH_CANCELED_TOPIC)
    assert _topic_address(canceled["topics"][1]) == payer.address
    assert deployer.call(token, "OPGToken", "authorizationState", payer.address, message["nonce"]) is True
    used = "FiatTokenV2: authorization is used or canceled"
    _expect_revert(deployer, token, "transferWithAuthorization", [*_args(message), transfer_sig], used)
    _expect_revert(deployer, token, "cancelAuthorization", [payer.address, message["nonce"], cancel_sig], used)


# --------------------------------------------------------------------------------------------
# ERC-20, EIP-2612, minting
# --------------------------------------------------------------------------------------------


def _permit_signature(key: str, token: str, message: dict[str, Any]) -> bytes:
    typed = {
        "types": {
            "EIP712Domain": EIP712_DOMAIN_TYPE,
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": _domain(token),
        "message": message,
    }
    return bytes(Account.sign_typed_data(key, full_message=typed).signature)


def test_permit_then_transfer_from(deployer: Deployer, token: str, accounts: list[DevAccount]) -> None:
    holder, spender, sink = accounts[7], accounts[5], accounts[8]
    nonce = deployer.call(token, "OPGToken", "nonces", holder.address)
    deadline = int(time.time()) + 600
    message = {
        "owner": holder.address,
        "spender": spender.address,
        "value": 9 * OPG,
        "nonce": nonce,
        "deadline": deadline,
    }
    signature = _permit_signature(holder.private_key, token, message)
    args = [holder.address, spender.address, 9 * OPG, deadline]
    # A different value than signed is refused.
    _expect_revert(
        deployer,
        token,
        "permit",
        [holder.address, spender.address, 10 * OPG, deadline, *_vrs(signature)],
        "EIP2612: invalid signature",
    )
    deployer.transact(token, "OPGToken", "permit", *args, *_vrs(signature))
    assert deployer.call(token, "OPGToken", "allowance", holder.address, spender.address) == 9 * OPG
    assert deployer.call(token, "OPGToken", "nonces", holder.address) == nonce + 1
    # The nonce moved on: the same permit cannot be replayed (bytes overload too).
    _expect_revert(deployer, token, "permit", [*args, signature], "EIP2612: invalid signature")
    spender_deployer = Deployer(deployer.chain, spender)
    before = _balance(deployer, token, sink.address)
    spender_deployer.transact(token, "OPGToken", "transferFrom", holder.address, sink.address, 4 * OPG)
    assert _balance(deployer, token, sink.address) == before + 4 * OPG
    assert deployer.call(token, "OPGToken", "allowance", holder.address, spender.address) == 5 * OPG
    with pytest.raises(DeployerError, match="transfer amount exceeds allowance"):
        spender_deployer.transact(token, "OPGToken", "transferFrom", holder.address, sink.address, 6 * OPG)
    # An expired permit.
    stale = dict(message, nonce=nonce + 1, deadline=int(time.time()) - 1)
    _expect_revert(
        deployer,
        token,
        "permit",
        [
            holder.address,
            spender.address,
            9 * OPG,
            stale["deadline"],
            _permit_signature(holder.private_key, token, stale),
        ],
        "FiatTokenV2: permit is expired",
    )


def test_erc20_transfer_and_mint_rights(deployer: Deployer, token: str, accounts: list[DevAccount]) -> None:
    alice, bob = accounts[1], accounts[9]
    alice_deployer = Deployer(deployer.chain, alice)
    receipt = alice_deployer.transact(token, "OPGToken", "transfer", bob.address, OPG)
    (transfer,) = _logs_with_topic(receipt, TRANSFER_TOPIC)
    assert _topic_address(transfer["topics"][1]) == alice.address
    assert _topic_address(transfer["topics"][2]) == bob.address
    Deployer(deployer.chain, bob).transact(token, "OPGToken", "transfer", alice.address, OPG)
    with pytest.raises(DeployerError, match="transfer amount exceeds balance"):
        Deployer(deployer.chain, bob).transact(token, "OPGToken", "transfer", alice.address, 1)

    # Minting, on a token of its own so the shared token's supply stays as deployed.
    fresh = deployer.deploy("OPGToken", "OPG", "OPG", "2", deployer.address)
    with pytest.raises(DeployerError, match="caller is not the owner"):
        alice_deployer.transact(fresh, "OPGToken", "mint", alice.address, OPG)
    deployer.transact(fresh, "OPGToken", "mint", bob.address, 2)
    deployer.transact(fresh, "OPGToken", "mintBatch", [alice.address, bob.address], [5, 7])
    with pytest.raises(DeployerError, match="length mismatch"):
        deployer.transact(fresh, "OPGToken", "mintBatch", [alice.address], [5, 7])
    assert deployer.call(fresh, "OPGToken", "totalSupply") == 14
    assert (_balance(deployer, fresh, alice.address), _balance(deployer, fresh, bob.address)) == (5, 9)
    deployer.transact(fresh, "OPGToken", "transferOwnership", alice.address)
    alice_deployer.transact(fresh, "OPGToken", "mint", alice.address, 1)
    with pytest.raises(DeployerError, match="caller is not the owner"):
        deployer.transact(fresh, "OPGToken", "mint", alice.address, 1)


# --------------------------------------------------------------------------------------------
# x402: the official client signs, the official facilitator core verifies and settles
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rpc_url(chain: DevChain) -> Iterator[str]:
    from opengradient.devnet.chain.rpc_server import RpcServer

    with RpcServer(chain, host="127.0.0.1") as server:
        yield server.url


def test_x402_facilitator_verifies_and_settles(
    deployer: Deployer, token: str, rpc_url: str, accounts: list[DevAccount]
) -> None:
    from x402 import x402ClientSync, x402FacilitatorSync
    from x402.mechanisms.evm import FacilitatorWeb3Signer
    from x402.mechanisms.evm.constants import ERR_NONCE_ALREADY_USED
    from x402.mechanisms.evm.exact import register_exact_evm_client, register_exact_evm_facilitator
    from x402.mechanisms.evm.exact.eip3009_utils import diagnose_eip3009_simulation_failure
    from x402.mechanisms.evm.signers import EthAccountSigner
    from x402.mechanisms.evm.types import ExactEIP3009Payload
    from x402.schemas import PaymentRequired, PaymentRequirements, ResourceInfo

    payer, pay_to, facilitator_account = accounts[2], accounts[4], accounts[8]
    amount = 25 * OPG // 100  # 0.25 OPG

    fac_signer = FacilitatorWeb3Signer(private_key=facilitator_account.private_key, rpc_url=rpc_url)
    facilitator = x402FacilitatorSync()
    register_exact_evm_facilitator(facilitator, fac_signer, networks=NETWORK)

    client = x402ClientSync()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(payer.private_key)), networks=NETWORK)
    client.set_spend_controls(
        {"allowed_assets": [{"network": NETWORK, "asset": token, "max_amount_per_payment": str(amount)}]}
    )

    requirements = PaymentRequirements(
        scheme="exact",
        network=NETWORK,
        amount=str(amount),
        asset=token,
        pay_to=pay_to.address,
        max_timeout_seconds=300,
        extra={"name": "OPG", "version": "2"},
    )
    required = PaymentRequired(
        accepts=[requirements], resource=ResourceInfo(url="http://devnet.local/v1/chat/completions")
    )
    payload = client.create_payment_payload(required)
    assert payload.x402_version == 2

    before_payer = _balance(deployer, token, payer.address)
    before_pay_to = _balance(deployer, token, pay_to.address)
    verified = facilitator.verify(payload, requirements)
    assert verified.is_valid, verified
    assert verified.payer == payer.address

    settled = facilitator.settle(payload, requirements)
    assert settled.success, settled
    assert settled.network == NETWORK
    tx_hash = settled.transaction
    receipt = deployer._rpc("eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x1"
    assert receipt["to"].lower() == token.lower()
    assert _balance(deployer, token, payer.address) == before_payer - amount
    assert _balance(deployer, token, pay_to.address) == before_pay_to + amount

    # The same payload again: verify refuses it with x402's nonce code, and nothing moves.
    replay = facilitator.verify(payload, requirements)
    assert not replay.is_valid
    assert replay.invalid_reason == ERR_NONCE_ALREADY_USED
    assert _balance(deployer, token, payer.address) == before_payer - amount
    assert _balance(deployer, token, pay_to.address) == before_pay_to + amount
    # A facilitator that simulates in settle refuses to broadcast the replay at all.
    cautious = x402FacilitatorSync()
    register_exact_evm_facilitator(
        cautious,
        FacilitatorWeb3Signer(private_key=accounts[7].private_key, rpc_url=rpc_url),
        networks=NETWORK,
        simulate_in_settle=True,
    )
    block = deployer.chain.block_number
    refused = cautious.settle(payload, requirements)
    assert (refused.success, refused.error_reason, refused.transaction) == (False, ERR_NONCE_ALREADY_USED, "")
    assert deployer.chain.block_number == block
    assert _balance(deployer, token, payer.address) == before_payer - amount
    # x402's Multicall3-based diagnosis reaches the same verdict through tryAggregate.
    authorization = ExactEIP3009Payload.from_dict(payload.payload).authorization
    assert (
        diagnose_eip3009_simulation_failure(fac_signer, token, authorization, amount, "OPG", "2")
        == ERR_NONCE_ALREADY_USED
    )


def test_x402_facilitator_refuses_bad_payments(
    deployer: Deployer, token: str, rpc_url: str, accounts: list[DevAccount]
) -> None:
    from x402 import x402ClientSync, x402FacilitatorSync
    from x402.mechanisms.evm import FacilitatorWeb3Signer
    from x402.mechanisms.evm.constants import (
        ERR_AUTHORIZATION_VALUE_MISMATCH,
        ERR_INSUFFICIENT_BALANCE,
        ERR_INVALID_SIGNATURE,
        ERR_TOKEN_NAME_MISMATCH,
    )
    from x402.mechanisms.evm.exact import register_exact_evm_client, register_exact_evm_facilitator
    from x402.mechanisms.evm.signers import EthAccountSigner
    from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements

    facilitator = x402FacilitatorSync()
    register_exact_evm_facilitator(
        facilitator, FacilitatorWeb3Signer(private_key=accounts[8].private_key, rpc_url=rpc_url), networks=NETWORK
    )

    def pay(payer: DevAccount, requirements: PaymentRequirements) -> PaymentPayload:
        client = x402ClientSync()
        register_exact_evm_client(client, EthAccountSigner(Account.from_key(payer.private_key)), networks=NETWORK)
        client.set_spend_controls({"allowed_assets": [{"network": NETWORK, "asset": token}]})
        result = client.create_payment_payload(PaymentRequired(accepts=[requirements]))
        assert isinstance(result, PaymentPayload)
        return result

    base = PaymentRequirements(
        scheme="exact",
        network=NETWORK,
        amount=str(OPG),
        asset=token,
        pay_to=accounts[4].address,
        max_timeout_seconds=300,
        extra={"name": "OPG", "version": "2"},
    )
    # Account 9 holds no OPG.
    poor = facilitator.verify(pay(accounts[9], base), base)
    assert poor.invalid_reason == ERR_INSUFFICIENT_BALANCE
    # Signed for another domain name: the signature does not verify.
    wrong_name = base.model_copy(update={"extra": {"name": "USDC", "version": "2"}})
    assert facilitator.verify(pay(accounts[3], wrong_name), base).invalid_reason in (
        ERR_INVALID_SIGNATURE,
        ERR_TOKEN_NAME_MISMATCH,
    )
    # Underpaid: the requirement asks for more than was signed.
    dearer = base.model_copy(update={"amount": str(2 * OPG)})
    assert facilitator.verify(pay(accounts[3], base), dearer).invalid_reason == ERR_AUTHORIZATION_VALUE_MISMATCH


# --------------------------------------------------------------------------------------------
# Multicall3
# --------------------------------------------------------------------------------------------


def test_multicall_try_aggregate_and_helpers(
    chain: DevChain, deployer: Deployer, token: str, accounts: list[DevAccount]
) -> None:
    holder = accounts[1].address
    calls = [
        (token, encode_call("OPGToken", "balanceOf", holder)),
        (token, encode_call("OPGToken", "name")),
        (token, encode_call("OPGToken", "transfer", accounts[2].address, 10**40)),  # reverts
        (token, encode_call("OPGToken", "authorizationState", holder, b"\x01" * 32)),
    ]
    results = deployer.call(MULTICALL3_ADDRESS, "Multicall3", "tryAggregate", False, calls)
    assert [ok for ok, _ in results] == [True, True, False, True]
    assert abi_decode(["uint256"], results[0][1])[0] == _balance(deployer, token, holder)
    assert abi_decode(["string"], results[1][1])[0] == "OPG"
    assert abi_decode(["string"], results[2][1][4:])[0] == "ERC20: transfer amount exceeds balance"
    assert abi_decode(["bool"], results[3][1])[0] is False
    with pytest.raises(DeployerError, match="Multicall3: call failed"):
        deployer.call(MULTICALL3_ADDRESS, "Multicall3", "tryAggregate", True, calls)
    with pytest.raises(DeployerError, match="Multicall3: call failed"):
        deployer.call(MULTICALL3_ADDRESS, "Multicall3", "aggregate", calls)
    block_number, data = deployer.call(MULTICALL3_ADDRESS, "Multicall3", "aggregate", calls[:2])
    assert block_number == chain.block_number + 1  # evaluated on the pending block
    assert abi_decode(["string"], data[1])[0] == "OPG"
    results3 = deployer.call(
        MULTICALL3_ADDRESS,
        "Multicall3",
        "aggregate3",
        [(target, index != 0, data) for index, (target, data) in enumerate(calls)],
    )
    assert [ok for ok, _ in results3] == [True, True, False, True]
    with pytest.raises(DeployerError, match="Multicall3: call failed"):
        deployer.call(MULTICALL3_ADDRESS, "Multicall3", "aggregate3", [(calls[2][0], False, calls[2][1])])
    assert deployer.call(MULTICALL3_ADDRESS, "Multicall3", "getChainId") == CHAIN_ID
    assert deployer.call(MULTICALL3_ADDRESS, "Multicall3", "getEthBalance", holder) > 0
    # The devnet evaluates calls on the block being built, even for "latest" (fresh timestamps).
    assert deployer.call(MULTICALL3_ADDRESS, "Multicall3", "getBlockNumber") == chain.block_number + 1
    assert abs(deployer.call(MULTICALL3_ADDRESS, "Multicall3", "getCurrentBlockTimestamp") - time.time()) < 60


# --------------------------------------------------------------------------------------------
# OGSettlement
# --------------------------------------------------------------------------------------------


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a <= b else keccak(b + a)


def _leaf(request_hash: bytes, output_hash: bytes) -> bytes:
    return keccak(request_hash + output_hash)


def _merkle(leaves: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """Sorted-pair tree; a lone last node is carried up. Returns the root and each leaf's proof."""
    proofs: list[list[bytes]] = [[] for _ in leaves]
    positions = list(range(len(leaves)))  # each leaf's index in the current level
    level = list(leaves)
    while len(level) > 1:
        for leaf_index, pos in enumerate(positions):
            sibling = pos ^ 1
            if sibling < len(level):
                proofs[leaf_index].append(level[sibling])
        level = [_pair(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
        positions = [pos // 2 for pos in positions]
    return level[0], proofs


def test_settlement_records_and_events(
    deployer: Deployer, contracts: PaymentContracts, accounts: list[DevAccount]
) -> None:
    settlement = contracts.settlement
    payment_tx, request_hash, output_hash = os.urandom(32), keccak(b"request"), keccak(b"output")
    payer = accounts[1].address
    receipt = deployer.transact(
        settlement, "OGSettlement", "recordSettlement", payment_tx, request_hash, output_hash, payer, 123
    )
    (log,) = receipt["logs"]
    assert log["topics"][0] == "0x" + keccak(text="Settled(bytes32,bytes32,address,bytes32,uint256)").hex()
    assert log["topics"][1:3] == ["0x" + payment_tx.hex(), "0x" + request_hash.hex()]
    assert _topic_address(log["topics"][3]) == payer
    assert abi_decode(["bytes32", "uint256"], bytes.fromhex(log["data"][2:])) == (output_hash, 123)
    assert deployer.call(settlement, "OGSettlement", "settledAt", request_hash, output_hash) == int(
        receipt["blockNumber"], 16
    )
    assert deployer.call(settlement, "OGSettlement", "settledAt", output_hash, request_hash) == 0

    receipt = deployer.transact(
        settlement,
        "OGSettlement",
        "recordSettlementWithMetadata",
        payment_tx,
        keccak(b"r2"),
        keccak(b"o2"),
        payer,
        456,
        "openai/gpt-4o",
        '{"messages": []}',
        "héllo",
    )
    (log,) = receipt["logs"]
    signature = "SettledWithMetadata(bytes32,bytes32,address,bytes32,uint256,string,string,string)"
    assert log["topics"][0] == "0x" + keccak(text=signature).hex()
    assert abi_decode(["bytes32", "uint256", "string", "string", "string"], bytes.fromhex(log["data"][2:])) == (
        keccak(b"o2"),
        456,
        "openai/gpt-4o",
        '{"messages": []}',
        "héllo",
    )
    assert deployer.call(settlement, "OGSettlement", "settlementCount") >= 2
    with pytest.raises(DeployerError, match="caller is not the recorder"):
        Deployer(deployer.chain, accounts[1]).transact(
            settlement, "OGSettlement", "recordSettlement", payment_tx, request_hash, output_hash, payer, 1
        )


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
def test_settlement_batches_and_merkle_proofs(deployer: Deployer, contracts: PaymentContracts, size: int) -> None:
    settlement = contracts.settlement
    pairs = [(keccak(b"req%d" % i), keccak(b"out%d" % i)) for i in range(size)]
    leaves = [_leaf(r, o) for r, o in pairs]
    assert [deployer.call(settlement, "OGSettlement", "leafHash", r, o) for r, o in pairs] == leaves
    root, proofs = _merkle(leaves)
    receipt = deployer.transact(settlement, "OGSettlement", "recordBatch", root, size)
    (log,) = receipt["logs"]
    batch_id = int(log["topics"][1], 16)
    assert log["topics"][0] == "0x" + keccak(text="BatchSettled(uint256,bytes32,uint256)").hex()
    assert abi_decode(["bytes32", "uint256"], bytes.fromhex(log["data"][2:])) == (root, size)
    assert deployer.call(settlement, "OGSettlement", "batchCount") == batch_id
    assert deployer.call(settlement, "OGSettlement", "batchRoot", batch_id) == root
    assert deployer.call(settlement, "OGSettlement", "batchSize", batch_id) == size
    for (request_hash, output_hash), leaf, proof in zip(pairs, leaves, proofs, strict=True):
        assert deployer.call(settlement, "OGSettlement", "verifyBatchLeaf", root, leaf, proof) is True
        assert (
            deployer.call(settlement, "OGSettlement", "verifyBatchMember", batch_id, request_hash, output_hash, proof)
            is True
        )
        # A different output under the same proof is not in the batch.
        assert (
            deployer.call(
                settlement, "OGSettlement", "verifyBatchMember", batch_id, request_hash, keccak(b"forged"), proof
            )
            is False
        )
    if size > 1:
        assert deployer.call(settlement, "OGSettlement", "verifyBatchLeaf", root, leaves[0], proofs[-1]) is False
    assert deployer.call(settlement, "OGSettlement", "verifyBatchMember", 10**6, *pairs[0], proofs[0]) is False


def test_settlement_batch_rejects_empty(deployer: Deployer, contracts: PaymentContracts) -> None:
    with pytest.raises(DeployerError, match="empty Merkle root"):
        deployer.transact(contracts.settlement, "OGSettlement", "recordBatch", b"\x00" * 32, 1)
    with pytest.raises(DeployerError, match="empty batch"):
        deployer.transact(contracts.settlement, "OGSettlement", "recordBatch", b"\x01" * 32, 0)


# --------------------------------------------------------------------------------------------
# TEERegistry
# --------------------------------------------------------------------------------------------


def _rsa_spki_der() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_tee_registry(accounts: list[DevAccount]) -> None:
    operator, stranger = accounts[0], accounts[1]
    alpha = DevChain(CHAIN_ID + 10, funded={a.address: 10_000 * ETHER for a in accounts}, name="alpha")
    registry = deploy_tee_registry(alpha, operator)
    assert registry == TEE_REGISTRY_ADDRESS  # where today's network has it
    admin = Deployer(alpha, operator)
    assert admin.call(registry, "TEERegistry", "admin") == operator.address

    llm_key, validator_key, second_key = _rsa_spki_der(), _rsa_spki_der(), _rsa_spki_der()
    pcr = keccak(b"pcr0|pcr1|pcr2")
    cert = b"-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
    register_args = [accounts[2].address, "https://127.0.0.1:8443", llm_key, cert, pcr, 0]
    tee_id = admin.call(registry, "TEERegistry", "registerTEE", *register_args)
    assert tee_id == keccak(llm_key)
    receipt = admin.transact(registry, "TEERegistry", "registerTEE", *register_args)
    assert receipt["logs"][0]["topics"][1] == "0x" + tee_id.hex()
    admin.transact(registry, "TEERegistry", "registerTEE", accounts[3].address, "https://v", validator_key, b"", pcr, 1)
    second_id = keccak(second_key)
    admin.transact(
        registry, "TEERegistry", "registerTEE", accounts[2].address, "https://127.0.0.1:9443", second_key, cert, pcr, 0
    )

    with pytest.raises(DeployerError, match="caller is not the admin"):
        Deployer(alpha, stranger).transact(
            registry, "TEERegistry", "registerTEE", accounts[2].address, "x", _rsa_spki_der(), b"", pcr, 0
        )
    with pytest.raises(DeployerError, match="already registered"):
        admin.transact(registry, "TEERegistry", "registerTEE", *register_args)
    with pytest.raises(DeployerError, match="unknown TEE type"):
        admin.transact(registry, "TEERegistry", "registerTEE", accounts[2].address, "x", b"\x01", b"", pcr, 2)

    info = admin.call(registry, "TEERegistry", "getTEE", tee_id)
    owner, payment, endpoint, public_key, tls, pcr_hash, tee_type, enabled, registered_at, heartbeat_at, ohttp = info
    assert (owner, payment, endpoint) == (operator.address, accounts[2].address, "https://127.0.0.1:8443")
    assert (public_key, tls, pcr_hash, tee_type, enabled) == (llm_key, cert, pcr, 0, True)
    assert registered_at == heartbeat_at > 0
    assert ohttp == (0, 0, 0, 0, b"", b"", 0)  # no Oblivious HTTP until one is set

    x25519 = bytes(range(32))
    with pytest.raises(DeployerError, match="caller is not the TEE owner"):
        Deployer(alpha, stranger).transact(registry, "TEERegistry", "setOhttpConfig", tee_id, 1, 0x20, 1, 3, x25519,
                                           b"")
    with pytest.raises(DeployerError, match="32 bytes"):
        admin.transact(registry, "TEERegistry", "setOhttpConfig", tee_id, 1, 0x20, 1, 3, b"short", b"")
    admin.transact(registry, "TEERegistry", "setOhttpConfig", tee_id, 1, 0x20, 1, 3, x25519, b"\x01config")
    key_id, kem, kdf, aead, ohttp_key, key_config, ohttp_at = admin.call(registry, "TEERegistry", "getTEE", tee_id)[10]
    assert (key_id, kem, kdf, aead, ohttp_key, key_config) == (1, 0x20, 1, 3, x25519, b"\x01config")
    assert ohttp_at >= registered_at
    assert admin.call(registry, "TEERegistry", "isTEEActive", tee_id) is True
    assert admin.call(registry, "TEERegistry", "isTEEActive", b"\x00" * 32) is False

    active = admin.call(registry, "TEERegistry", "getActiveTEEs", 0)
    assert [keccak(t[3]) for t in active] == [tee_id, second_id]
    assert [t[3] for t in admin.call(registry, "TEERegistry", "getActiveTEEs", 1)] == [validator_key]
    assert admin.call(registry, "TEERegistry", "getActiveTEEIds", 0) == (tee_id, second_id)
    assert admin.call(registry, "TEERegistry", "getEnabledTEEs", 0) == (tee_id, second_id)
    assert admin.call(registry, "TEERegistry", "getTEEsByType", 1) == (keccak(validator_key),)
    assert admin.call(registry, "TEERegistry", "teeCount") == 3

    admin.transact(registry, "TEERegistry", "heartbeat", tee_id)
    with pytest.raises(DeployerError, match="caller is not the TEE owner"):
        Deployer(alpha, stranger).transact(registry, "TEERegistry", "disableTEE", tee_id)
    with pytest.raises(DeployerError, match="unknown TEE"):
        admin.transact(registry, "TEERegistry", "disableTEE", b"\x02" * 32)
    admin.transact(registry, "TEERegistry", "disableTEE", tee_id)
    assert admin.call(registry, "TEERegistry", "isTEEActive", tee_id) is False
    assert admin.call(registry, "TEERegistry", "isTEEEnabled", tee_id) is False
    assert [keccak(t[3]) for t in admin.call(registry, "TEERegistry", "getActiveTEEs", 0)] == [second_id]
    assert admin.call(registry, "TEERegistry", "getEnabledTEEs", 0) == (second_id,)
    assert admin.call(registry, "TEERegistry", "getTEEsByType", 0) == (tee_id, second_id)
    assert admin.call(registry, "TEERegistry", "getTEE", tee_id)[7] is False
    admin.transact(registry, "TEERegistry", "enableTEE", tee_id)
    assert admin.call(registry, "TEERegistry", "isTEEActive", tee_id) is True
    with pytest.raises(DeployerError, match="unknown TEE"):
        admin.call(registry, "TEERegistry", "getTEE", b"\x02" * 32)
