"""What every AlphaSense tool does, whatever the framework: validate, run or read, format, prove.

A `_ToolCore` turns the arguments an agent sent into an `Outcome`: the text the agent reads and
the proof behind it. Input that is refused (schema validation, a provider's `ValueError`/
`InvalidInputError`, a tensor the codec rejects, a model that refuses the input at gas estimation)
becomes an `Outcome` with `ok=False` and a message saying nothing was sent; configuration errors
(no client) and failures of the network raise.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from opengradient.alphasense.formatting import to_text
from opengradient.alphasense.proofs import ProofLog
from opengradient.errors import ConfigurationError, ContractRevertError, InvalidInputError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from opengradient.proof import Proof
    from opengradient.types import InferenceMode

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NOTHING_SENT = "Nothing was run and no transaction was sent."


@dataclass(frozen=True)
class Outcome:
    """A tool's answer: the text for the agent, the proof (None when refused), and whether it ran."""

    text: str
    proof: Proof | None
    ok: bool


class RefusedInputError(Exception):
    """Input the tool refuses; the message goes to the agent."""


def check_tool_name(name: Any) -> str:
    """A tool name every framework accepts: 1–64 letters, digits, `_` or `-`."""
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise InvalidInputError(f"tool_name must be 1-64 letters, digits, '_' or '-', got {name!r}",
                                hint="for example 'eth_volatility_forecast'")
    return name


def check_description(description: Any) -> str:
    if not isinstance(description, str) or not description.strip():
        raise InvalidInputError(f"tool_description must be a non-empty string, got {description!r}",
                                hint="say what the tool returns; the agent chooses tools by it")
    return description.strip()


def check_schema(schema: Any) -> type[BaseModel] | None:
    """`tool_input_schema`: None (a tool without arguments) or a pydantic model class."""
    if schema is None:
        return None
    from pydantic import BaseModel

    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise InvalidInputError(f"tool_input_schema must be a pydantic BaseModel class, got {schema!r}",
                                hint="class Input(BaseModel): symbol: str = Field(description=...)")
    return schema


def check_callable(value: Any, what: str) -> Callable[..., Any]:
    if not callable(value):
        raise InvalidInputError(f"{what} must be callable, got {type(value).__name__}")
    return value


def _describe_validation(error: Any) -> str:
    """A pydantic `ValidationError` in one line: `field: message; …`."""
    try:
        parts = []
        for item in error.errors():
            where = ".".join(str(p) for p in item.get("loc", ())) or "input"
            parts.append(f"{where}: {item.get('msg', 'invalid')}")
        return "; ".join(parts) or str(error)
    except Exception:
        return str(error)


def refusal_message(tool_name: str, detail: Any) -> str:
    """The message an agent gets for input the tool refused (`detail`: text or an exception)."""
    if callable(getattr(detail, "errors", None)):  # a pydantic ValidationError: one line per field
        detail = _describe_validation(detail)
    detail = str(detail).strip().rstrip(".")
    return f"Invalid input for tool {tool_name}: {detail}. {NOTHING_SENT}"


def validation_message(tool_name: str, error: Any) -> str:
    """The message for arguments that do not match the tool's schema."""
    return refusal_message(tool_name, _describe_validation(error))


def _namespace(given: Any, method: str, what: str, tool_name: str) -> Any:
    """`given` (a client's `alpha`, or a client), else `og.global_client.alpha` — at call time."""
    if given is None:
        import opengradient

        client = opengradient.global_client
        if client is None:
            raise ConfigurationError(f"AlphaSense tool {tool_name!r} has no client",
                                     hint=f"pass {what}=client.alpha when creating the tool, or call "
                                          "og.init(private_key=...) first")
        return client.alpha
    if not hasattr(given, method) and hasattr(given, "alpha"):
        return given.alpha
    return given


def check_namespace(given: Any, method: str, what: str) -> Any:
    """At creation: `given` is None, a client, or something with `method` (a client's `alpha`)."""
    if given is None or hasattr(given, method) or hasattr(getattr(given, "alpha", None), method):
        return given
    raise ConfigurationError(f"{what} must be a client's alpha namespace (client.alpha) or a client, "
                             f"got {type(given).__name__}")


class _ToolCore:
    """Shared by both tool kinds: name, description, argument schema, proof log."""

    def __init__(self, name: str, description: str, schema: type[BaseModel] | None,
                 proof_log: ProofLog | None) -> None:
        self.name = name
        self.description = description
        self.schema = schema
        self.proof_log = proof_log if proof_log is not None else ProofLog()

    def arguments(self, args: Mapping[str, Any] | None) -> dict[str, Any]:
        """Validate the agent's arguments against the schema; `RefusedInputError` with the reasons."""
        args = dict(args or {})
        if self.schema is None:
            return {}
        from pydantic import ValidationError

        try:
            model = self.schema.model_validate(args)
        except ValidationError as exc:
            raise RefusedInputError(validation_message(self.name, exc)) from exc
        return {name: getattr(model, name) for name in type(model).model_fields}

    def _record(self, outcome: Outcome, call_id: str | None) -> Outcome:
        if outcome.proof is not None:
            self.proof_log.add(self.name, outcome.proof, call_id=call_id, output=outcome.text)
        return outcome

    def run(self, args: Mapping[str, Any] | None, call_id: str | None = None) -> Outcome:
        try:
            outcome = self._run(self.arguments(args))
        except RefusedInputError as refused:
            return Outcome(str(refused), None, False)
        return self._record(outcome, call_id)

    async def arun(self, args: Mapping[str, Any] | None, call_id: str | None = None) -> Outcome:
        try:
            outcome = await self._arun(self.arguments(args))
        except RefusedInputError as refused:
            return Outcome(str(refused), None, False)
        return self._record(outcome, call_id)

    def _run(self, kwargs: dict[str, Any]) -> Outcome:
        raise NotImplementedError

    async def _arun(self, kwargs: dict[str, Any]) -> Outcome:
        raise NotImplementedError


class RunModelCore(_ToolCore):
    """Arguments → `model_input_provider` → `alpha.infer` → `model_output_formatter`."""

    def __init__(self, *, name: str, description: str, schema: type[BaseModel] | None, proof_log: ProofLog | None,
                 model_cid: str, mode: InferenceMode, provider: Callable[..., Any],
                 formatter: Callable[[Any], Any], inference: Any) -> None:
        super().__init__(name, description, schema, proof_log)
        self.model_cid = model_cid
        self.mode = mode
        self.provider = provider
        self.formatter = formatter
        self.inference = inference

    def _provide(self, kwargs: dict[str, Any]) -> Any:
        try:
            return self.provider(**kwargs)
        except ValueError as exc:  # InvalidInputError and pydantic's ValidationError are ValueErrors
            raise RefusedInputError(refusal_message(self.name, exc)) from exc

    def _refuse_failed_inference(self, exc: Exception) -> NoReturn:
        """Input errors of `infer` become refusals; anything else is re-raised."""
        if isinstance(exc, InvalidInputError):
            raise RefusedInputError(refusal_message(self.name, exc)) from exc
        if isinstance(exc, ContractRevertError) and exc.transaction_hash is None:
            # Refused at gas estimation: the model does not exist or does not take this input.
            raise RefusedInputError(f"The model refused the input of tool {self.name}: {exc.reason}. "
                                    "No transaction was sent.") from exc
        raise exc

    def _outcome(self, result: Any) -> Outcome:
        return Outcome(to_text(self.formatter(result)), result.proof, True)

    def _run(self, kwargs: dict[str, Any]) -> Outcome:
        alpha = _namespace(self.inference, "infer", "inference", self.name)
        model_input = self._provide(kwargs)
        if inspect.isawaitable(model_input):
            close = getattr(model_input, "close", None)
            if callable(close):
                close()
            raise ConfigurationError(f"the model_input_provider of tool {self.name!r} is async",
                                     hint="call the tool asynchronously (ainvoke), or give a sync provider")
        try:
            result = alpha.infer(self.model_cid, self.mode, model_input)
        except (InvalidInputError, ContractRevertError) as exc:
            self._refuse_failed_inference(exc)
        return self._outcome(result)

    async def _arun(self, kwargs: dict[str, Any]) -> Outcome:
        alpha = _namespace(self.inference, "ainfer", "inference", self.name)
        model_input = self._provide(kwargs)
        if inspect.isawaitable(model_input):
            try:
                model_input = await model_input
            except ValueError as exc:
                raise RefusedInputError(refusal_message(self.name, exc)) from exc
        try:
            result = await alpha.ainfer(self.model_cid, self.mode, model_input)
        except (InvalidInputError, ContractRevertError) as exc:
            self._refuse_failed_inference(exc)
        return self._outcome(result)


class ReadWorkflowCore(_ToolCore):
    """No arguments → the workflow's latest result and its `WorkflowResultProof` → `output_formatter`."""

    def __init__(self, *, name: str, description: str, proof_log: ProofLog | None, address: str,
                 formatter: Callable[[Any], Any], alpha: Any) -> None:
        super().__init__(name, description, None, proof_log)
        self.address = address
        self.formatter = formatter
        self.alpha = alpha

    def _no_result(self) -> Outcome:
        return Outcome(f"Workflow {self.address} has no result yet; try again after its next scheduled run.",
                       None, False)

    def _run(self, kwargs: dict[str, Any]) -> Outcome:
        from opengradient.alphasense.proofs import _NoResultYetError, read_with_proof_flow

        alpha = _namespace(self.alpha, "read_workflow_result", "alpha", self.name)
        try:
            if hasattr(alpha, "_sync"):
                output, proof = alpha._sync.run(read_with_proof_flow(self.address, alpha.network))
            else:  # a stand-in without the chain driver: the value, without a proof
                output, proof = alpha.read_workflow_result(self.address), None
        except _NoResultYetError:
            return self._no_result()
        return Outcome(to_text(self.formatter(output)), proof, True)

    async def _arun(self, kwargs: dict[str, Any]) -> Outcome:
        from opengradient.alphasense.proofs import _NoResultYetError, read_with_proof_flow

        alpha = _namespace(self.alpha, "aread_workflow_result", "alpha", self.name)
        try:
            if hasattr(alpha, "_async"):
                output, proof = await alpha._async.run(read_with_proof_flow(self.address, alpha.network))
            else:
                output, proof = await alpha.aread_workflow_result(self.address), None
        except _NoResultYetError:
            return self._no_result()
        return Outcome(to_text(self.formatter(output)), proof, True)
