"""Shared fixtures: one in-process devnet and one served over loopback HTTP per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import opengradient as og
from opengradient.devnet.node import Devnet


@pytest.fixture(scope="session")
def devnet() -> Iterator[Devnet]:
    """The in-process devnet: no sockets, the fast path for tests."""
    with og.devnet.start() as net:
        yield net


@pytest.fixture(scope="session")
def devnet_http() -> Iterator[Devnet]:
    """A devnet served over HTTP on 127.0.0.1, for tests that must cross a real socket."""
    with og.devnet.start(http=True) as net:
        yield net
