"""Whole-chain snapshots: what `evm_snapshot`/`evm_revert`, `anvil_reset` and state files hold.

A devnet chain is py-evm's in-memory key/value database (headers, blocks, receipts, state tries)
plus the JSON-RPC layer's own indexes (transactions and receipts as served, logs per block) and
its clock (the offset `evm_increaseTime` added, a timestamp `evm_setNextBlockTimestamp` fixed).
Copying all of it is cheap (tens of thousands of small entries at most) and makes a revert exact:
nothing has to be replayed or undone.

`ChainImage.to_json()`/`from_json()` turn a snapshot into a JSON document and back, so the same
capture serves a state file that survives restarts and a cached genesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI

__all__ = ["CHAIN_IMAGE_FORMAT", "ChainImage", "ChainImageError"]

#: Version of the JSON form of a chain image; a reader refuses any other.
CHAIN_IMAGE_FORMAT = 1


class ChainImageError(ValueError):
    """A chain image that cannot be loaded (another format, another chain, damaged)."""


@dataclass(frozen=True)
class ChainImage:
    """Everything a chain needs to continue exactly where it was."""

    chain_id: int
    kv: dict[bytes, bytes]
    block_hashes: list[bytes]
    block_logs: list[list[dict[str, Any]]]
    txs: dict[bytes, dict[str, Any]]
    receipts: dict[bytes, dict[str, Any]]
    pending_header: bytes  # RLP of the header the next block is built on
    time_offset: int
    next_timestamp: int | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready document (hex strings for bytes)."""
        return {
            "format": CHAIN_IMAGE_FORMAT,
            "chain_id": self.chain_id,
            "kv": [[k.hex(), v.hex()] for k, v in self.kv.items()],
            "blocks": [h.hex() for h in self.block_hashes],
            "block_logs": self.block_logs,
            "txs": [[k.hex(), v] for k, v in self.txs.items()],
            "receipts": [[k.hex(), v] for k, v in self.receipts.items()],
            "pending_header": self.pending_header.hex(),
            "time_offset": self.time_offset,
            "next_timestamp": self.next_timestamp,
        }

    @classmethod
    def from_json(cls, doc: Any) -> ChainImage:
        """Parse `to_json()`'s output; `ChainImageError` says what is wrong with anything else."""
        if not isinstance(doc, dict):
            raise ChainImageError("a chain image is a JSON object")
        if doc.get("format") != CHAIN_IMAGE_FORMAT:
            raise ChainImageError(f"chain image format {doc.get('format')!r} is not supported "
                                  f"(this devnet reads format {CHAIN_IMAGE_FORMAT})")
        try:
            return cls(
                chain_id=int(doc["chain_id"]),
                kv={bytes.fromhex(k): bytes.fromhex(v) for k, v in doc["kv"]},
                block_hashes=[bytes.fromhex(h) for h in doc["blocks"]],
                block_logs=list(doc["block_logs"]),
                txs={bytes.fromhex(k): v for k, v in doc["txs"]},
                receipts={bytes.fromhex(k): v for k, v in doc["receipts"]},
                pending_header=bytes.fromhex(doc["pending_header"]),
                time_offset=int(doc["time_offset"]),
                next_timestamp=None if doc["next_timestamp"] is None else int(doc["next_timestamp"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainImageError(f"damaged chain image: {type(exc).__name__}: {exc}") from None


def encode_header(header: BlockHeaderAPI) -> bytes:
    """RLP of a header (the pending one, which is in no database)."""
    return bytes(rlp.encode(header))


def decode_header(header_class: Any, raw: bytes) -> BlockHeaderAPI:
    """Inverse of `encode_header` for the chain's header class."""
    return rlp.decode(raw, sedes=header_class)
