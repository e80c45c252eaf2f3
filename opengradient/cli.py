"""The `opengradient` command line.

Settings come from `opengradient config init` (a 0600 file) and `OG_*` environment variables,
read exactly as `og.init()` reads them; `--devnet URL` (or `OG_DEVNET_URL`) points a command at a
devnet, whose published development credentials (Model Hub user, twins key) fill in what the
settings leave unset. `completion` and `chat` run through the TEE gateway (x402) by default;
`--mode VANILLA` takes the legacy on-chain path (`runLLMCompletion` / `runLLMChat` on the Alpha
chain).

Exit codes: 0 success, 1 the command failed, 2 the command line is wrong (usage), 130
interrupted. An error is one line on stderr, `error: <message> (<hint>)`; under `--json` it is one
JSON document on stderr, `{"error": {"type", "message", "hint", "exit_code"}}`, and stdout stays
empty. Hints speak CLI: the option, command or environment variable that fixes the problem.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

import opengradient
from opengradient import bounded_json, config

if TYPE_CHECKING:
    from opengradient.client import Client
    from opengradient.types import TextGenerationOutput

EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
_OPG = Decimal(10) ** 18

#: What the CLI says for each `og.init`/`Client` argument an SDK error names in `arguments`.
_OPTION_ADVICE = {
    "tee_trust": "pass --tee-trust gateway to trust the gateway's published key (or --tee-trust off)",
    "max_payment_per_request": "pass --max-payment with the most OPG you will pay per request",
    "timeout": "retry later",
}


class CliError(click.ClickException):
    """A failure the CLI words itself, with CLI advice; `kind` is the error type it reports."""

    def __init__(self, message: str, hint: str | None = None, kind: str = "CliError") -> None:
        super().__init__(message)
        self.hint = hint
        self.kind = kind


def settings_advice(keys: Sequence[str]) -> str:
    """How to provide settings from the command line: their environment variables or the config file."""
    return f"set {' and '.join(config.ENV[key] for key in keys)}, or run `opengradient config init`"


def _advice(exc: opengradient.OpenGradientError) -> str | None:
    """The CLI's hint for an SDK error: settings and options in CLI terms, else the SDK's own hint."""
    settings = [key for key in exc.arguments if key in config.ENV]
    if settings:
        return settings_advice(settings)
    options = [_OPTION_ADVICE[key] for key in exc.arguments if key in _OPTION_ADVICE]
    return "; ".join(options) if options else exc.hint


def _wants_json(argv: Sequence[str]) -> bool:
    """Whether `--json` is among the global options (those before the command)."""
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        if argv[index] == "--json":
            return True
        index += 2 if argv[index] == "--devnet" else 1
    return False


def _report(as_json: bool, kind: str, message: str, hint: str | None, exit_code: int) -> NoReturn:
    """Print one error (a line, or a JSON document under --json) on stderr and exit."""
    message = " ".join(message.split())
    if as_json:
        click.echo(json.dumps({"error": {"type": kind, "message": message, "hint": hint, "exit_code": exit_code}}),
                   err=True)
    else:
        click.echo(f"error: {message}" + (f" ({hint})" if hint else ""), err=True)
    sys.exit(exit_code)


class _Group(click.Group):
    """Runs a command and turns every SDK, file, JSON and usage error into one report and an exit code."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        as_json = _wants_json(argv)
        try:
            code = super().main(argv, prog_name or "opengradient", complete_var, standalone_mode=False, **extra)
        except CliError as exc:
            _report(as_json, exc.kind, exc.format_message(), exc.hint, EXIT_FAILURE)
        except click.UsageError as exc:
            path = exc.ctx.command_path if exc.ctx is not None else "opengradient"
            _report(as_json, "UsageError", exc.format_message(), f"see `{path} --help`", EXIT_USAGE)
        except click.ClickException as exc:
            _report(as_json, type(exc).__name__, exc.format_message(), None, exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            _report(as_json, "Interrupted", "interrupted", None, EXIT_INTERRUPTED)
        except opengradient.OpenGradientError as exc:
            _report(as_json, type(exc).__name__, exc.message, _advice(exc), EXIT_FAILURE)
        except (OSError, ValueError) as exc:
            _report(as_json, type(exc).__name__, f"{type(exc).__name__}: {exc}", None, EXIT_FAILURE)
        if standalone_mode:
            sys.exit(code or 0)
        return code


class _Settings:
    """What every command needs: output mode and a lazily built client."""

    def __init__(self, as_json: bool, devnet_url: str | None) -> None:
        self.as_json = as_json
        self.devnet_url = devnet_url
        self._client: Client | None = None

    def client(self, *, needs: Sequence[str] = (), **options: Any) -> Client:
        """The client from the settings (as `og.init()` builds it) and `options`.

        `needs` lists private-key settings of which one must be set: checked before anything is sent.
        """
        if self._client is None:
            if needs and not any(config.load().get(key) for key in needs):
                command = click.get_current_context().command_path
                raise CliError(f"{command} needs a private key and none is set", hint=settings_advice(needs[-1:]),
                               kind="ConfigurationError")
            arguments = config.client_arguments({"devnet_url": self.devnet_url, **options})
            self._client = opengradient.Client(**arguments)
        return self._client

    def emit(self, data: Any, text: str) -> None:
        click.echo(json.dumps(data, default=str) if self.as_json else text)


pass_settings = click.make_pass_decorator(_Settings)


@click.group(cls=_Group)
@click.version_option(opengradient.__version__, "--version", prog_name="opengradient", message="%(prog)s %(version)s")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (errors too, on stderr).")
@click.option("--devnet", "devnet_url", envvar="OG_DEVNET_URL", default=None, metavar="URL",
              help="Use the devnet served at URL (see `opengradient devnet up`).")
@click.pass_context
def main(ctx: click.Context, as_json: bool, devnet_url: str | None) -> None:
    """OpenGradient: verifiable AI inference from the command line."""
    ctx.obj = _Settings(as_json, devnet_url)


@main.command()
@pass_settings
def version(settings: _Settings) -> None:
    """Print the SDK version."""
    settings.emit({"version": opengradient.__version__}, opengradient.__version__)


# -- config ----------------------------------------------------------------------------------------


@main.group("config")
def config_group() -> None:
    """Show, create or clear the saved settings."""


@config_group.command("init")
@click.option("--private-key", prompt="Private key (pays for LLM requests)", hide_input=True)
@click.option("--alpha-private-key", default="", help="Key for Alpha-chain gas (defaults to --private-key).")
@click.option("--email", default="", help="Model Hub email.")
@click.option("--password", default="", hide_input=True, help="Model Hub password.")
@click.option("--twins-api-key", default="", help="API key of the digital-twins service.")
@click.option("--network", default="public", show_default=True, help="Network preset.")
@click.option("--devnet-url", default="", help="Use a devnet at this URL instead of a preset.")
@pass_settings
def config_init(settings: _Settings, private_key: str, alpha_private_key: str, email: str, password: str,
                twins_api_key: str, network: str, devnet_url: str) -> None:
    """Save settings (the file is readable by you only)."""
    from opengradient.client.wallet import Wallet
    from opengradient.networks import PRESETS

    Wallet(private_key)  # validate before saving
    if alpha_private_key:
        Wallet(alpha_private_key, role="alpha_private_key")
    if network not in PRESETS:
        raise click.UsageError(f"unknown network {network!r}; choose one of {', '.join(sorted(PRESETS))}")
    path = config.save({"private_key": private_key, "alpha_private_key": alpha_private_key, "email": email,
                        "password": password, "twins_api_key": twins_api_key, "network": network,
                        "devnet_url": devnet_url})
    settings.emit({"path": str(path)}, f"saved settings to {path}")


@config_group.command("show")
@pass_settings
def config_show(settings: _Settings) -> None:
    """Print the settings in effect, secrets masked."""
    shown = {k: config.mask(k, v) for k, v in config.load().items()}
    settings.emit(shown, "\n".join(f"{k}: {v}" for k, v in sorted(shown.items())) or "no settings saved")


@config_group.command("clear")
@pass_settings
def config_clear(settings: _Settings) -> None:
    """Delete the saved settings."""
    removed = config.clear()
    settings.emit({"removed": removed}, "settings removed" if removed else "no settings to remove")


@main.command("create-account")
@click.option("--save", is_flag=True, help="Store the new key in the config file.")
@click.option("--force", is_flag=True, help="With --save, replace a key that is already saved.")
@pass_settings
def create_account(settings: _Settings, save: bool, force: bool) -> None:
    """Create a new wallet key."""
    from eth_account import Account

    saved = config.load(environ={})  # the file alone: environment overrides are not written into it
    if save and saved.get("private_key") and not force:
        raise click.UsageError("a private key is already saved; pass --force to replace it (it will be lost)")
    account = Account.create()
    key = "0x" + bytes(account.key).hex()
    if save:
        config.save({**saved, "private_key": key})
    settings.emit({"address": account.address, "private_key": key, "saved": save},
                  f"address: {account.address}\nprivate key: {key}\n"
                  + ("saved to the config file" if save else "not saved (pass --save to keep it)"))


# -- Model Hub -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _hub_advice() -> Iterator[None]:
    """A model or version the hub does not know: say which commands create them."""
    try:
        yield
    except opengradient.NotFoundError as exc:
        raise CliError(exc.message, kind=type(exc).__name__,
                       hint="check --repo and --version; `opengradient create-model-repo` and "
                            "`opengradient create-version` create them") from exc


@main.command("create-model-repo")
@click.option("--repo", "--name", "repo", required=True, help="Model name.")
@click.option("--description", default="", help="What the model does.")
@pass_settings
def create_model_repo(settings: _Settings, repo: str, description: str) -> None:
    """Create a model repository (and its first version)."""
    with _hub_advice():
        result = settings.client().model_hub.create_model(repo, description)
    settings.emit({"name": result.name, "version": result.initialVersion},
                  f"created model {result.name!r} with version {result.initialVersion}")


@main.command("create-version")
@click.option("--repo", required=True, help="Model name.")
@click.option("--notes", default="", help="Release notes.")
@click.option("--major", is_flag=True, help="Bump the major version.")
@pass_settings
def create_version(settings: _Settings, repo: str, notes: str, major: bool) -> None:
    """Create a new version of a model."""
    with _hub_advice():
        result = settings.client().model_hub.create_version(repo, notes, major)
    settings.emit(dict(result), f"created version {result['versionString']} of {repo!r}")


@main.command("upload-file")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--repo", required=True, help="Model name.")
@click.option("--version", "version_", required=True, help="Version, e.g. 1.00.")
@pass_settings
def upload_file(settings: _Settings, file: Path, repo: str, version_: str) -> None:
    """Upload a model file; prints its CID (what `infer --model` runs)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    hub = settings.client().model_hub
    console = Console(stderr=True)  # stdout carries the result only
    with _hub_advice(), Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), transient=True,
                                 disable=settings.as_json or not console.is_terminal, console=console) as bar:
        task = bar.add_task(f"uploading {file.name}", total=None)
        result = hub.upload(file, repo, version_, progress=lambda sent, total: bar.update(
            task, completed=sent, total=total))
    settings.emit({"modelCid": result.modelCid, "size": result.size},
                  f"uploaded {file.name}: CID {result.modelCid} ({result.size} bytes)")


@main.command("list-files")
@click.option("--repo", required=True, help="Model name.")
@click.option("--version", "version_", required=True, help="Version.")
@pass_settings
def list_files(settings: _Settings, repo: str, version_: str) -> None:
    """List the files of a model version."""
    with _hub_advice():
        files = settings.client().model_hub.list_files(repo, version_)
    lines = [f"{f['name']}  {f['size']} bytes  {f.get('ipfsCid', '')}" for f in files]
    settings.emit(files, "\n".join(lines) or "no files")


# -- inference -------------------------------------------------------------------------------------


def _json_option(value: str | None, file: Path | None, what: str) -> Any:
    if value is not None and file is not None:
        raise click.UsageError(f"give {what} inline or as a file, not both")
    text = file.read_text() if file is not None else value
    if text is None:
        return None
    try:
        return bounded_json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{what} is not valid JSON: {exc}") from exc


class _UpperChoice(click.Choice):
    """Choices documented (and shown in help) in upper case, accepted in any case."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return super().convert(value.upper() if isinstance(value, str) else value, param, ctx)


#: Settings that can pay Alpha-chain gas, the one to advise last.
_ALPHA_KEYS = ("alpha_private_key", "private_key")


@main.command()
@click.option("--model", "-m", "model_cid", required=True, help="Model CID (what `upload-file` prints).")
@click.option("--mode", type=_UpperChoice(["VANILLA", "ZKML", "TEE"]), default="VANILLA", show_default=True,
              help="How the result is proven: VANILLA (on chain), ZKML (a zero-knowledge proof) or TEE.")
@click.option("--input", "-d", "input_", default=None, help="Input tensors as JSON.")
@click.option("--input-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A file holding the input tensors as JSON (instead of --input).")
@pass_settings
def infer(settings: _Settings, model_cid: str, mode: str, input_: str | None, input_file: Path | None) -> None:
    """Run an ONNX model on chain."""
    model_input = _json_option(input_, input_file, "--input")
    if model_input is None:
        raise click.UsageError("give the model input with --input or --input-file")
    result = settings.client(needs=_ALPHA_KEYS).alpha.infer(model_cid, mode, model_input)
    output = {k: v.tolist() for k, v in result.model_output.items()}
    proof = result.proof.to_dict() if result.proof else None
    settings.emit({"transaction_hash": result.transaction_hash, "model_output": output, "proof": proof},
                  f"transaction: {result.transaction_hash}\noutput: {json.dumps(output)}")


def _llm_summary(result: TextGenerationOutput) -> dict[str, Any]:
    return {"finish_reason": result.finish_reason, "payment_hash": result.payment_hash,
            "tee_verified": result.tee_verified, "usage": vars(result.usage) if result.usage else None,
            "proof": result.proof.to_dict() if result.proof else None}


_SETTLEMENT = click.option("--x402-settlement-mode", "--settlement-mode", "settlement_mode", default="settle",
                           type=click.Choice(["settle", "settle-metadata", "settle-batch"], case_sensitive=False),
                           show_default=True)
_LLM_MODE = click.option("--mode", "llm_mode", type=_UpperChoice(["TEE", "VANILLA"]),
                         default="TEE", show_default=True,
                         help="TEE: the verified gateway, paid with x402. VANILLA: the legacy on-chain path "
                              "(runLLMChat/runLLMCompletion on the Alpha chain, paid as gas).")


_TEE_TRUST = click.option("--tee-trust", type=click.Choice(["registry", "gateway", "off"]), default=None,
                          help="Whose enclave keys verify answers: the TEE registry (the default where the "
                               "network has one), the gateway's published key, or none.")
_MAX_PAYMENT = click.option("--max-payment", default=None, metavar="OPG",
                            help="Refuse to pay more than this per request, in OPG (default 0.05).")


def _llm_client(settings: _Settings, llm_mode: str, tee_trust: str | None, max_payment: str | None) -> Client:
    """The client for an LLM command; the key it pays with is checked before anything is sent."""
    if llm_mode == "VANILLA":
        return settings.client(needs=_ALPHA_KEYS)
    options: dict[str, Any] = {"tee_trust": tee_trust}
    if max_payment is not None:
        try:
            cap = int(Decimal(max_payment) * _OPG)
        except (InvalidOperation, ValueError, OverflowError):  # not a number, NaN, infinity
            cap = 0
        if cap <= 0:
            raise click.BadParameter(f"{max_payment!r} is not a positive amount of OPG", param_hint="--max-payment")
        options["max_payment_per_request"] = cap
    return settings.client(needs=("private_key",), **options)


def _onchain_summary(result: TextGenerationOutput) -> dict[str, Any]:
    return {"finish_reason": result.finish_reason, "transaction_hash": result.transaction_hash, "mode": "VANILLA"}


@main.command()
@click.option("--model", "-m", required=True, help="Model, e.g. openai/gpt-4o.")
@click.option("--prompt", "-p", required=True)
@click.option("--max-tokens", default=100, show_default=True)
@click.option("--stop-sequence", multiple=True)
@click.option("--temperature", default=0.0, show_default=True)
@_SETTLEMENT
@_LLM_MODE
@_TEE_TRUST
@_MAX_PAYMENT
@pass_settings
def completion(settings: _Settings, model: str, prompt: str, max_tokens: int, stop_sequence: tuple[str, ...],
               temperature: float, settlement_mode: str, llm_mode: str, tee_trust: str | None,
               max_payment: str | None) -> None:
    """Complete a prompt with a TEE-verified LLM (paid with x402), or on chain with --mode VANILLA."""
    client = _llm_client(settings, llm_mode, tee_trust, max_payment)
    if llm_mode == "VANILLA":
        onchain = client.llm_completion(model, prompt, "VANILLA", max_tokens, temperature,
                                                   list(stop_sequence) or None)
        settings.emit({"completion": onchain.completion_output, **_onchain_summary(onchain)},
                      f"{onchain.completion_output}\n[on chain, transaction {onchain.transaction_hash}]")
        return
    result = client.llm.completion(model, prompt, max_tokens, list(stop_sequence) or None,
                                              temperature, settlement_mode)
    settings.emit({"completion": result.completion_output, **_llm_summary(result)},
                  f"{result.completion_output}\n[payment {result.payment_hash}, TEE verified: "
                  f"{result.tee_verified}]")


@main.command()
@click.option("--model", "-m", required=True, help="Model, e.g. openai/gpt-4o.")
@click.option("--messages", default=None, help="Messages as a JSON list.")
@click.option("--messages-file", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--tools", default=None, help="Tools as a JSON list.")
@click.option("--tools-file", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--tool-choice", default=None)
@click.option("--max-tokens", default=100, show_default=True)
@click.option("--stop-sequence", multiple=True)
@click.option("--temperature", default=0.0, show_default=True)
@click.option("--stream", is_flag=True, help="Print tokens as they arrive.")
@_SETTLEMENT
@_LLM_MODE
@_TEE_TRUST
@_MAX_PAYMENT
@pass_settings
def chat(settings: _Settings, model: str, messages: str | None, messages_file: Path | None, tools: str | None,
         tools_file: Path | None, tool_choice: str | None, max_tokens: int, stop_sequence: tuple[str, ...],
         temperature: float, stream: bool, settlement_mode: str, llm_mode: str, tee_trust: str | None,
         max_payment: str | None) -> None:
    """Chat with a TEE-verified LLM (paid with x402), or on chain with --mode VANILLA."""
    from opengradient.client.llm import TextGenerationStream

    parsed = _json_option(messages, messages_file, "--messages")
    if parsed is None:
        raise click.UsageError("give the conversation with --messages or --messages-file")
    parsed_tools = _json_option(tools, tools_file, "--tools")
    if llm_mode == "VANILLA" and stream:
        raise click.UsageError("--stream needs --mode TEE: on-chain answers arrive in one transaction")
    client = _llm_client(settings, llm_mode, tee_trust, max_payment)
    if llm_mode == "VANILLA":
        onchain = client.llm_chat(model, parsed, "VANILLA", max_tokens, temperature,
                                             list(stop_sequence) or None, parsed_tools, tool_choice)
        reply = onchain.chat_output or {}
        shown = reply.get("content") or json.dumps(reply.get("tool_calls"))
        settings.emit({"message": reply, **_onchain_summary(onchain)},
                      f"{shown}\n[on chain, transaction {onchain.transaction_hash}]")
        return
    llm, stops = client.llm, list(stop_sequence) or None
    result: TextGenerationOutput | TextGenerationStream
    if stream:
        result = llm.chat(model, parsed, max_tokens, stops, temperature, parsed_tools, tool_choice, settlement_mode,
                          stream=True)
    else:
        result = llm.chat(model, parsed, max_tokens, stops, temperature, parsed_tools, tool_choice, settlement_mode)
    if isinstance(result, TextGenerationStream):
        printed = False
        for chunk in result:
            if chunk.choices[0].delta.content and not settings.as_json:
                click.echo(chunk.choices[0].delta.content, nl=False)
                printed = True
        if printed:
            click.echo()
        assert result.result is not None
        final = result.result
    else:
        final = result
    message = final.chat_output or {}
    text = message.get("content") or json.dumps(message.get("tool_calls"))
    summary = f"[payment {final.payment_hash}, TEE verified: {final.tee_verified}]"
    streamed_text = stream and bool(message.get("content"))  # a streamed tool call has printed nothing yet
    settings.emit({"message": message, **_llm_summary(final)}, summary if streamed_text else f"{text}\n{summary}")


@main.command()
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@pass_settings
def verify(settings: _Settings, file: Path) -> None:
    """Verify a proof saved as JSON (or a saved `--json` response holding a `proof`).

    The network comes from the proof's chain id: a devnet's proof is checked on the devnet named by
    --devnet / OG_DEVNET_URL, or else the default local one (http://127.0.0.1:8645); the output
    says which network was used.
    """
    try:
        data = bounded_json.loads(file.read_text())
    except ValueError as exc:
        raise click.UsageError(f"{file} is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("proof"), dict):
        data = data["proof"]
    if not isinstance(data, dict) or "kind" not in data:
        raise click.UsageError(f"{file} holds no proof")
    proof = opengradient.Proof.from_dict(data)
    from opengradient.client.discovery import discover_devnet
    from opengradient.proof_networks import choose_network

    named = settings.devnet_url or config.load().get("devnet_url")
    choice = choose_network(proof.chain_id, devnet_url=named,
                            discover=lambda url: discover_devnet(url, timeout=5.0))
    if choice.kind == "devnet":
        client = settings.client(devnet_url=choice.devnet_url)
    elif choice.kind == "public":
        client = settings.client(network=choice.network)
    else:
        client = settings.client()
    proof.verify(client)
    subject = f"{proof.transaction_hash or proof.payment_hash or ''}".strip()
    settings.emit({"verified": True, "network": choice.description, "proof": proof.to_dict()},
                  f"verified: {proof.kind} proof {subject} on {choice.description}".replace("  ", " "))


# -- devnet ----------------------------------------------------------------------------------------


@main.group()
def devnet() -> None:
    """Run the OpenGradient network on this machine."""


def _print_devnet(info: dict[str, Any], keys: list[tuple[str, str]]) -> None:
    click.echo(f"OpenGradient devnet at {info['url']}")
    click.echo(f"  Alpha chain     {info['alpha']['rpc_url']}  (chain id {info['alpha']['chain_id']})")
    payments = info["payments"]
    mode = payments.get("mode", "devnet")
    click.echo(f"  payments chain  {payments['rpc_url']}  (chain id {payments['chain_id']}"
               f"{'' if mode == 'devnet' else f', {mode} in form'}; OPG {payments['opg_token']})")
    if mode != "devnet":
        from opengradient.devnet.chain.payments_chain import PAYMENTS_CHAIN_WARNING

        click.echo(f"  WARNING: {PAYMENTS_CHAIN_WARNING}")
    for enclave in info.get("llm", {}).get("enclaves", []):
        click.echo(f"  LLM enclave     {enclave['endpoint']}  (tee id {enclave['tee_id'][:14]}…, in the TEE registry "
                   f"{info['alpha'].get('tee_registry')})")
    click.echo(f"  LLM gateway     {info['url']}/v1/chat/completions  (x402 payments on the payments chain; "
               f"facilitator {info['url']}/facilitator)")
    if info.get("relay"):
        click.echo(f"  OHTTP relay     {info['url']}{info['relay']['path']}  (Authorization: Bearer "
                   f"{info['relay']['api_key']})")
    click.echo(f"  ZKML proofs     {info['url']}/zkml/proof/<inference id>")
    click.echo(f"  Model Hub       {info['model_hub']['url']}  (user {info['model_hub']['email']}, "
               f"password {info['model_hub'].get('password', '?')})")
    if info.get("twins"):
        click.echo(f"  Twins           {info['twins']['url']}  (X-API-Key {info['twins']['api_key']}; "
                   f"twins {', '.join(info['twins']['twins'])})")
    click.echo("  models:")
    for model in info["models"]:
        click.echo(f"    {model['name']:<18} {model['cid']}")
    click.echo("  development accounts (test mnemonic; never use these keys on a public chain):")
    for address, key in keys:
        click.echo(f"    {address}  {key}")
    click.echo(f"Use it: opengradient --devnet {info['url']} …   Press Ctrl-C to stop.")


def _log_requests() -> None:
    """One line per HTTP call on stderr (the devnet's access log, and JSON-RPC method names)."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    for name in ("opengradient.devnet.access",):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False


@devnet.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8645, show_default=True, help="Port (0 picks a free one).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Keep the Model Hub here across restarts: model files and the hub's index (users, "
                   "models, versions, file listings). Chains, balances, upto sessions, workflows and "
                   "sign-in tokens start afresh each time. Default: a temporary directory.")
@click.option("--payments-chain", type=click.Choice(["devnet", "base-sepolia", "base"]), default="devnet",
              show_default=True,
              help="devnet: chain ids no public chain has, so nothing signed here is valid elsewhere. "
                   "base-sepolia / base: the public chain id, OPG address and EIP-712 domain, for "
                   "clients that hard-code them; payments signed in these modes are valid in form on "
                   "the public chain's domain, so use the development keys only.")
@click.option("--block-time", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Mine a block every SECONDS (sends answer at once; receipts follow). Default: automine, "
                   "a block as soon as transactions arrive, concurrent ones sharing it.")
@click.option("--accounts", type=click.IntRange(min=10), default=10, show_default=True, metavar="N",
              help="How many funded development accounts (the first ten have devnet roles; "
                   "eth_sendTransaction from any of them is signed by the devnet, as anvil's).")
@click.option("-q", "--quiet", is_flag=True, help="No request log (by default one line per HTTP call).")
@pass_settings
def devnet_up(settings: _Settings, host: str, port: int, data_dir: str | None, payments_chain: str,
              block_time: float | None, accounts: int, quiet: bool) -> None:
    """Serve the devnet over HTTP until interrupted."""
    start = opengradient.devnet.start  # a MissingExtraError names the pip command
    if not quiet:
        _log_requests()
    try:
        net = start(http=True, host=host, port=port, data_dir=data_dir, payments_chain=payments_chain,
                    block_time=block_time, accounts=accounts)
    except ValueError as exc:  # an unreadable --data-dir: the message says what to do
        raise CliError(f"could not start the devnet: {exc}") from exc
    except (OSError, RuntimeError) as exc:
        raise CliError(f"could not start the devnet on {host}:{port}: {exc}",
                       hint="pick another --port (0 picks a free one)") from exc
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with net:
        info = net.info()
        if settings.as_json:
            click.echo(json.dumps(info), nl=True)
            sys.stdout.flush()
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
