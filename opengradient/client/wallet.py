"""A private key that never shows itself.

The key lives in one private attribute; `repr`, `str` and errors mention only the address, so a
wallet printed in a log or a traceback leaks nothing.
"""

from __future__ import annotations

from typing import Any

from opengradient.errors import ConfigurationError


class Wallet:
    """Signs transactions and typed data for one account."""

    __slots__ = ("__key", "_account", "address")

    def __init__(self, private_key: str, *, role: str = "private_key") -> None:
        key = private_key.strip() if isinstance(private_key, str) else private_key
        if not isinstance(key, str):
            raise ConfigurationError(f"{role} must be a hex string, got {type(private_key).__name__}")
        body = key[2:] if key.startswith(("0x", "0X")) else key
        if len(body) != 64 or any(c not in "0123456789abcdefABCDEF" for c in body):
            raise ConfigurationError(
                f"{role} is not a valid private key",
                hint="expected 32 bytes as 64 hex characters, optionally prefixed with 0x")
        from eth_account import Account

        try:
            account = Account.from_key("0x" + body)
        except Exception:  # e.g. zero or out-of-range key; `from None` keeps the key out of tracebacks
            raise ConfigurationError(f"{role} is not a valid secp256k1 private key") from None
        self.__key = "0x" + body.lower()
        self._account = account
        self.address: str = account.address

    def sign_transaction(self, tx: dict[str, Any]) -> tuple[bytes, str]:
        """Sign a transaction dict; returns the raw bytes and the 0x transaction hash."""
        signed = self._account.sign_transaction(tx)
        return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()

    def sign_typed_data(self, full_message: dict[str, Any]) -> bytes:
        """Sign EIP-712 typed data; returns the 65-byte r‖s‖v signature."""
        signed = self._account.sign_typed_data(full_message=full_message)
        return bytes(signed.signature)

    def secret(self) -> str:
        """The key itself, for libraries that need it (x402's signer); never log it."""
        return self.__key

    def __repr__(self) -> str:
        return f"Wallet(address={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Wallet cannot be pickled: it holds a private key")
