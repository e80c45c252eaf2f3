"""The `opengradient` command line.

Every command exits non-zero with a one-line reason on error.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import click

import opengradient


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group()
def main() -> None:
    """OpenGradient: verifiable AI inference from the command line."""


@main.command()
def version() -> None:
    """Print the SDK version."""
    click.echo(opengradient.__version__)


@main.group()
def devnet() -> None:
    """Run the OpenGradient network on this machine."""


def _print_devnet(info: dict[str, Any], keys: list[tuple[str, str]]) -> None:
    click.echo(f"OpenGradient devnet at {info['url']}")
    click.echo(f"  Alpha chain     {info['alpha']['rpc_url']}  (chain id {info['alpha']['chain_id']})")
    click.echo(f"  payments chain  {info['payments']['rpc_url']}  (chain id {info['payments']['chain_id']})")
    click.echo(f"  Model Hub       {info['model_hub']['url']}  (user {info['model_hub']['email']})")
    click.echo("  models:")
    for model in info["models"]:
        click.echo(f"    {model['name']:<18} {model['cid']}")
    click.echo("  development accounts (test mnemonic; never use these keys on a public chain):")
    for address, key in keys:
        click.echo(f"    {address}  {key}")
    click.echo("Press Ctrl-C to stop.")


@devnet.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8645, show_default=True, help="Port (0 picks a free one).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Keep uploaded models here (default: a temporary directory).")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoints as one JSON line.")
def devnet_up(host: str, port: int, data_dir: str | None, as_json: bool) -> None:
    """Serve the devnet over HTTP until interrupted."""
    try:
        from opengradient.devnet.node import start
    except ImportError as exc:
        _fail(f"the devnet needs extra packages ({exc.name} is missing): "
              "pip install 'opengradient[devnet]'")
        return
    try:
        net = start(http=True, host=host, port=port, data_dir=data_dir)
    except (OSError, RuntimeError) as exc:
        _fail(f"could not start the devnet on {host}:{port}: {exc}")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with net:
        info = net.info()
        if as_json:
            click.echo(json.dumps(info))
        else:
            _print_devnet(info, [(a.address, a.private_key) for a in net.accounts])
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    click.echo("devnet stopped", err=True)


if __name__ == "__main__":
    main()
