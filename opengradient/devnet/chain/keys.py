"""Well-known development keys for the devnet.

The keys come from the widely published test mnemonic, so every developer tool already knows
them (and knows they are worthless): account 0 is ``0xf39F…2266``. They must never hold value on a
public chain; the devnet's chain ids differ from public ones so signatures made here cannot be
replayed elsewhere.
"""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from dataclasses import dataclass, field

from eth_account.hdaccount import key_from_seed
from eth_keys import keys as eth_keys

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_HD_PATH = "m/44'/60'/0'/0"

_lock = threading.Lock()
_seed: bytes | None = None
_cache: list[DevAccount] = []


@dataclass(frozen=True)
class DevAccount:
    """One funded development account; the key is hidden from reprs so logs never carry it."""

    address: str
    private_key: str = field(repr=False)


def _bip39_seed(mnemonic: str, passphrase: str = "") -> bytes:
    """BIP-39 seed with hashlib's C PBKDF2 (eth-account's pure-Python path takes ~0.4 s)."""
    words = unicodedata.normalize("NFKD", mnemonic).encode("utf-8")
    salt = ("mnemonic" + unicodedata.normalize("NFKD", passphrase)).encode("utf-8")
    return hashlib.pbkdf2_hmac("sha512", words, salt, 2048)


def dev_accounts(n: int = 10) -> list[DevAccount]:
    """The first ``n`` accounts of ``DEV_MNEMONIC`` at m/44'/60'/0'/0/i, derived once per process."""
    global _seed
    if n < 0:
        raise ValueError("n must be >= 0")
    with _lock:
        if len(_cache) < n:
            if _seed is None:
                _seed = _bip39_seed(DEV_MNEMONIC)
            for i in range(len(_cache), n):
                key = eth_keys.PrivateKey(key_from_seed(_seed, f"{DEV_HD_PATH}/{i}"))
                _cache.append(
                    DevAccount(
                        address=key.public_key.to_checksum_address(),
                        private_key=key.to_hex(),
                    )
                )
        return list(_cache[:n])
