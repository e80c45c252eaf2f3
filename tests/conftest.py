"""Shared fixtures: one in-process devnet and one served over loopback HTTP per test session.

The user's own settings never reach a test: `OG_CONFIG_FILE` points at an empty settings file and
the settings' `OG_*` variables are removed, for the session and every process it starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

import opengradient as og
from opengradient import config

if TYPE_CHECKING:
    from opengradient.devnet.node import Devnet


@pytest.fixture(scope="session", autouse=True)
def no_user_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests see no config file and no settings from the environment, whoever runs them."""
    empty = tmp_path_factory.mktemp("settings") / "config.json"
    empty.write_text("{}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OG_CONFIG_FILE", str(empty))
        for variable in config.ENV.values():
            patch.delenv(variable, raising=False)
        yield


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
