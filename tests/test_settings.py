"""`og.init()` and the CLI read the same settings the same way (`opengradient.config`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import opengradient as og
from opengradient import config
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.hub import DEV_EMAIL, DEV_PASSWORD

KEY, OTHER, THIRD = "0x" + "11" * 32, "0x" + "22" * 32, "0x" + "33" * 32


def _address(key: str) -> str:
    return og.Client(key).address or ""


@pytest.fixture
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.json"
    monkeypatch.setenv("OG_CONFIG_FILE", str(path))
    return path


def test_init_reads_og_private_key(settings_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OG_PRIVATE_KEY", KEY)
    assert og.init().address == _address(KEY)
    assert og.global_client is not None and og.global_client.address == _address(KEY)


def test_explicit_arguments_then_environment_then_file(settings_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config.save({"private_key": THIRD, "alpha_private_key": THIRD, "network": "public-base-mainnet"})
    client = og.init()
    assert client.address == _address(THIRD) and client.network.name == "public-base-mainnet"
    monkeypatch.setenv("OG_PRIVATE_KEY", OTHER)
    monkeypatch.setenv("OG_NETWORK", "public")
    client = og.init()
    assert client.address == _address(OTHER) and client.alpha_address == _address(THIRD)
    assert client.network.name == "public"
    assert og.init(private_key=KEY).address == _address(KEY)
    assert og.init(network="public-base-mainnet").network.name == "public-base-mainnet"


def test_an_unknown_network_setting_is_refused(settings_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OG_NETWORK", "moon")
    with pytest.raises(og.ConfigurationError, match="unknown network preset 'moon'"):
        og.init(private_key=KEY)


def test_devnet_url_brings_its_network_and_published_credentials(devnet_http: Devnet, settings_file: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    url = devnet_http.info()["url"]
    arguments = config.client_arguments({"devnet_url": url, "private_key": KEY})
    assert arguments["network"].rpc_url == f"{url}/rpc/alpha" and arguments["private_key"] == KEY
    assert (arguments["email"], arguments["password"]) == (DEV_EMAIL, DEV_PASSWORD)
    assert arguments["twins_api_key"]
    monkeypatch.setenv("OG_DEVNET_URL", url)
    monkeypatch.setenv("OG_EMAIL", "me@example.com")
    client = og.init(private_key=devnet_http.accounts[6].private_key)
    assert client.network.name == "devnet" and client.model_hub.email == "me@example.com"
    assert og.init(network="public").network.name == "public"  # an explicit network wins over the devnet


def test_the_cli_sees_what_init_sees(settings_file: Path) -> None:
    config.save({"private_key": KEY, "email": "me@example.com"})
    env = {"OG_CONFIG_FILE": str(settings_file), "OG_PRIVATE_KEY": OTHER, "PATH": ""}
    shown = subprocess.run([sys.executable, "-m", "opengradient.cli", "--json", "config", "show"],
                           capture_output=True, text=True, timeout=60, env=env, check=True)
    assert json.loads(shown.stdout) == {"private_key": config.mask("private_key", OTHER), "email": "me@example.com"}
    assert config.client_arguments({}, environ=env) == {"private_key": OTHER, "email": "me@example.com"}


def test_readme_table_lists_every_setting() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for key, variable in config.ENV.items():
        assert f"| `{key}` |" in readme and f"`{variable}`" in readme, key
