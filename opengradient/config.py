"""The settings `og.init()` and the CLI share: a 0600 JSON file, overridden by `OG_*` environment variables.

Both read them the same way (`client_arguments`): an explicit argument or CLI option first, then
the environment variable, then the file (`opengradient config init` writes it; the 0.7.4 file
`~/.opengradient_config.json` is still read when no new file exists), then, on a devnet, the
development credentials it publishes. Secrets are masked whenever settings are shown.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opengradient import bounded_json
from opengradient.errors import ConfigurationError

KEYS = ("private_key", "alpha_private_key", "email", "password", "twins_api_key", "network", "devnet_url")
#: The settings that are `Client` credentials (the others choose the network).
CREDENTIALS = ("private_key", "alpha_private_key", "email", "password", "twins_api_key")
SECRET_KEYS = {"private_key", "alpha_private_key", "password", "twins_api_key"}
ENV = {key: f"OG_{key.upper()}" for key in KEYS}
LEGACY_PATH = Path.home() / ".opengradient_config.json"


def config_path() -> Path:
    """Where settings live: `$OG_CONFIG_FILE`, else the platform's user config directory."""
    override = os.environ.get("OG_CONFIG_FILE")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("opengradient")) / "config.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = bounded_json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the config file {path}: {exc}",
                                 hint="fix it or run `opengradient config clear`") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"the config file {path} does not hold a JSON object")
    return {k: v for k, v in data.items() if k in KEYS and v not in (None, "")}


def load(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings from the file (or the legacy file), with `OG_*` environment variables on top."""
    environ = os.environ if environ is None else environ
    path = config_path()
    settings = _read(path) if path.exists() else _read(LEGACY_PATH)
    for key, variable in ENV.items():
        if environ.get(variable):
            settings[key] = environ[variable]
    return settings


def client_arguments(explicit: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for `Client`: the `explicit` ones (None counts as not given) over the settings.

    `devnet_url` (explicit or a setting) is asked for its network, and the development credentials
    it publishes fill what is still unset; an explicit `network` wins over both `devnet_url` and
    the `network` setting. Other explicit arguments pass through to `Client` untouched.
    """
    settings = load(environ)
    arguments = {k: v for k, v in explicit.items() if v is not None}
    for key in CREDENTIALS:
        if key not in arguments and key in settings:
            arguments[key] = settings[key]
    devnet_url = arguments.pop("devnet_url", None) or settings.get("devnet_url")
    if "network" in arguments:
        return arguments
    if devnet_url:
        from opengradient.client.discovery import discover_devnet

        devnet = discover_devnet(devnet_url)
        arguments["network"] = devnet.network
        for key, value in devnet.credentials.items():
            arguments.setdefault(key, value)
    elif "network" in settings:
        arguments["network"] = settings["network"]
    return arguments


def save(settings: Mapping[str, Any]) -> Path:
    """Write settings to the config file, readable by the owner only (0600 from the first byte)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in settings.items() if k in KEYS and v not in (None, "")}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(clean, handle, indent=2, sort_keys=True)
    os.chmod(tmp, stat.S_IRUSR | stat.S_IWUSR)
    tmp.replace(path)
    return path


def clear() -> bool:
    """Delete the config file; True if there was one."""
    path = config_path()
    if path.exists():
        path.unlink()
        return True
    return False


def mask(key: str, value: Any) -> Any:
    """A secret shown as its first and last characters only."""
    if key not in SECRET_KEYS or not isinstance(value, str):
        return value
    return value[:4] + "…" + value[-4:] if len(value) > 12 else "****"
