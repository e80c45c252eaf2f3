"""What an upstream model is to the devnet's gateway: the names it knows, the answer types, the
`Upstream` protocol and its errors. The reference model and the OpenAI-compatible upstream both
produce these; the gateway, the twins API and the legacy LLM precompile consume them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from opengradient.types import LLM, TEE_LLM

__all__ = ["KNOWN_MODELS", "LEGACY_MODELS", "Completion", "Delta", "UnknownModelError", "Upstream", "UpstreamError",
           "Usage"]

#: Older names the seed documents use, still accepted.
LEGACY_MODELS: tuple[str, ...] = (
    "openai/gpt-4.1",
    "openai/gpt-4",
    "anthropic/claude-3-opus",
    "google/gemini-2.5-flash-preview",
    "google/gemini-2.5-pro-preview",
)

#: Every `provider/model` name the devnet knows.
KNOWN_MODELS: tuple[str, ...] = (
    *(m.value for m in TEE_LLM),
    *(m.value for m in LLM),
    *LEGACY_MODELS,
)


@dataclass(frozen=True)
class Usage:
    """Token counts of one answer."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    def to_dict(self) -> dict[str, int]:
        """The OpenAI `usage` object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class Completion:
    """One finished upstream answer.

    `tool_calls` are in OpenAI's message form:
    `{"id": "call_…", "type": "function", "function": {"name": …, "arguments": "<JSON text>"}}`.
    """

    content: str | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str
    usage: Usage
    images: list[str] | None = None  # generated images as data: URIs (not part of the signed output)


@dataclass(frozen=True)
class Delta:
    """One streamed piece of an answer.

    `tool_call` is in OpenAI's chunk form: `{"index", "id"?, "type"?, "function": {"name"?,
    "arguments"?}}`. `finish_reason` and `usage` are set on the last delta only.
    """

    content: str | None = None
    tool_call: dict[str, Any] | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    images: list[str] | None = None  # generated images (data: URIs), on the last delta


class UpstreamError(Exception):
    """The upstream model is unreachable or failed (the gateway answers 503).

    `status` is the upstream's HTTP status when it answered at all.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UnknownModelError(LookupError):
    """No upstream serves the requested model (the gateway answers 400)."""


class Upstream(Protocol):
    """Something that answers OpenAI-shaped chat and completion requests.

    `request` is the OpenAI request body with `model` the bare name (`gpt-4o`).
    """

    def supports(self, model: str) -> bool:
        """Whether this upstream serves the bare model name `model`."""
        ...

    async def chat(self, request: dict[str, Any]) -> Completion:
        """Answer a chat request."""
        ...

    def stream_chat(self, request: dict[str, Any]) -> AsyncIterator[Delta]:
        """Answer a chat request piece by piece; the last delta has `finish_reason` and `usage`."""
        ...

    async def complete(self, request: dict[str, Any]) -> Completion:
        """Continue `request["prompt"]`; the text is the completion's `content`."""
        ...

    def stream_complete(self, request: dict[str, Any]) -> AsyncIterator[Delta]:
        """Continue a prompt piece by piece; the last delta has `finish_reason` and `usage`."""
        ...
