"""A `_ToolCore` in each framework's shape. Each builder imports its framework when called."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from opengradient import bounded_json
from opengradient.alphasense._core import refusal_message, validation_message
from opengradient.errors import missing_extra

if TYPE_CHECKING:
    from pydantic import BaseModel

    from opengradient.alphasense._core import _ToolCore


def _empty_schema(core: _ToolCore) -> type[BaseModel]:
    from pydantic import ConfigDict, create_model

    title = "".join(part.capitalize() for part in core.name.replace("-", "_").split("_")) or "Tool"
    return create_model(f"{title}Input", __config__=ConfigDict(extra="ignore"))


def langchain_tool(core: _ToolCore) -> Any:
    """A `StructuredTool` answering `(text, proof)` (`response_format="content_and_artifact"`).

    Refused input is a `ToolException`, which the tool turns into a `ToolMessage` with the message,
    `status="error"` and no artifact.
    """
    try:
        from langchain_core.tools import StructuredTool, ToolException
    except ImportError as exc:
        raise missing_extra(exc, "an AlphaSense LangChain tool", "langchain") from exc

    def func(**kwargs: Any) -> tuple[str, Any]:
        outcome = core.run(kwargs)
        if not outcome.ok:
            raise ToolException(outcome.text)
        return outcome.text, outcome.proof

    async def coroutine(**kwargs: Any) -> tuple[str, Any]:
        outcome = await core.arun(kwargs)
        if not outcome.ok:
            raise ToolException(outcome.text)
        return outcome.text, outcome.proof

    func.__name__ = coroutine.__name__ = core.name
    func.__doc__ = coroutine.__doc__ = core.description
    return StructuredTool(
        name=core.name,
        description=core.description,
        args_schema=core.schema or _empty_schema(core),
        func=func,
        coroutine=coroutine,
        response_format="content_and_artifact",
        handle_tool_error=True,
        handle_validation_error=lambda error: validation_message(core.name, error),
    )


def _params_schema(core: _ToolCore) -> dict[str, Any]:
    if core.schema is None:
        return {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    return core.schema.model_json_schema()


def openai_agents_tool(core: _ToolCore) -> Any:
    """An `agents.FunctionTool` whose `on_invoke_tool` is async; proofs go to `tool.proofs`
    (the core's `ProofLog`) under the tool call id."""
    try:
        from agents import FunctionTool
    except ImportError as exc:
        raise missing_extra(exc, "an AlphaSense OpenAI Agents tool", "agents") from exc

    async def on_invoke_tool(context: Any, arguments: str) -> str:
        try:
            args = bounded_json.loads(arguments) if arguments and arguments.strip() else {}
        except ValueError:
            return refusal_message(core.name, f"the arguments are not valid JSON: {arguments[:200]!r}")
        if not isinstance(args, dict):
            return refusal_message(core.name, "the arguments must be a JSON object")
        call_id = getattr(context, "tool_call_id", None)
        outcome = await core.arun(args, call_id=call_id if isinstance(call_id, str) else None)
        return outcome.text

    params = _params_schema(core)
    try:
        tool = FunctionTool(name=core.name, description=core.description, params_json_schema=params,
                            on_invoke_tool=on_invoke_tool, strict_json_schema=True)
    except Exception:  # a schema strict mode cannot express: send it as it is
        tool = FunctionTool(name=core.name, description=core.description, params_json_schema=params,
                            on_invoke_tool=on_invoke_tool, strict_json_schema=False)
    tool.proofs = core.proof_log  # type: ignore[attr-defined]
    return tool


def swarm_function(core: _ToolCore) -> Any:
    """A plain sync function named `tool_name`, documented by `tool_description`, with one annotated
    keyword parameter per schema field; it returns text and keeps proofs in `fn.proofs`."""

    def tool(**kwargs: Any) -> str:
        return core.run(kwargs).text

    parameters = []
    annotations: dict[str, Any] = {}
    if core.schema is not None:
        for name, field in core.schema.model_fields.items():
            default = inspect.Parameter.empty if field.is_required() else field.get_default(
                call_default_factory=True)
            annotation = field.annotation if field.annotation is not None else Any
            parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                                annotation=annotation))
            annotations[name] = annotation
    annotations["return"] = str
    tool.__name__ = tool.__qualname__ = core.name
    tool.__doc__ = core.description
    tool.__signature__ = inspect.Signature(parameters, return_annotation=str)  # type: ignore[attr-defined]
    tool.__annotations__ = annotations
    tool.proofs = core.proof_log  # type: ignore[attr-defined]
    return tool
