"""Fixtures of the reliability suite: fault proxies, mutating transports, chain views.

The session devnets of `tests/conftest.py` serve most tests (`devnet` in-process, `devnet_http` on
loopback). Tests that must see a quiet chain (the request fuzzer, the load test) start their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opengradient.devnet.node import Devnet
from tests.reliability.proxy import FaultProxy, proxy_for

#: Client timeout in the fault tests: short, so a black hole costs a second, never a hang.
CLIENT_TIMEOUT = 2.0


@pytest.fixture
def proxy(devnet_http: Devnet) -> Iterator[FaultProxy]:
    """A fault proxy in front of the HTTP devnet (no rules: it relays everything)."""
    with proxy_for(devnet_http.url) as running:
        yield running
