"""The whole OpenGradient network on one machine, offline and real.

`with og.devnet.start() as net:` runs it in-process (no sockets; `net.client` is a ready client,
`net.models` the models it ships); `opengradient devnet up` serves it over HTTP. It needs the
`devnet` extra: `pip install 'opengradient[devnet]'`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opengradient.errors import missing_extra

if TYPE_CHECKING:
    from opengradient.devnet.node import Devnet, DevnetModel, start

__all__ = ["Devnet", "DevnetModel", "start"]


def __getattr__(name: str) -> Any:
    """Load the devnet (py-evm, onnxruntime, starlette) only when it is used."""
    if name in __all__:
        try:
            from opengradient.devnet import node
        except ImportError as exc:
            raise missing_extra(exc, "the devnet", "devnet") from exc
        return getattr(node, name)
    raise AttributeError(f"module 'opengradient.devnet' has no attribute {name!r}")
