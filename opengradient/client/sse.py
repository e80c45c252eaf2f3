"""Server-Sent Events parsing and assembly of streamed chat completions.

Both halves are plain state machines fed line by line, so the sync and async streams share them.
The decoder follows the SSE rules that matter here: `data:` fields (several lines join with
newlines), comment lines, CRLF, blank-line event boundaries, and the `[DONE]` sentinel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from opengradient import bounded_json
from opengradient.errors import InferenceError, VerificationError
from opengradient.types import StreamChoice, StreamChunk, StreamDelta, ToolCallDelta, Usage

DONE = "[DONE]"


class SSEDecoder:
    """Turns lines into event payloads (the joined `data` of each event)."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """Feed one line (without its newline); returns an event's data when one completes."""
        line = line.rstrip("\r")
        if line == "":
            if not self._data:
                return None
            data, self._data = "\n".join(self._data), []
            return data
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def flush(self) -> str | None:
        """The last event, if the stream ended without a blank line."""
        return self.feed("")


@dataclass
class _ToolCall:
    id: str | None = None
    type: str = "function"
    name: str = ""
    arguments: str = ""


@dataclass
class StreamAssembler:
    """Accumulates chunks into the final message, usage and TEE fields."""

    content: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCall] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    id: str | None = None
    model: str | None = None
    tee: dict[str, Any] = field(default_factory=dict)
    #: What the final event reports about data settlement (not signed: outside the output hash).
    settlement: dict[str, Any] = field(default_factory=dict)
    done: bool = False
    #: Generated images the final event carries (data: URIs; not signed).
    images: list[Any] | None = None

    def chunk(self, data: str) -> StreamChunk | None:
        """Parse one event's data into a typed chunk and record what it adds."""
        if data.strip() == DONE:
            self.done = True
            return None
        try:
            event = bounded_json.loads(data)
        except json.JSONDecodeError as exc:
            raise InferenceError(f"the stream sent an event that is not JSON: {data[:120]!r}") from exc
        if not isinstance(event, dict):
            raise InferenceError(f"the stream sent an unexpected event: {data[:120]!r}")
        if "error" in event:
            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise InferenceError(f"the server reported an error mid-stream: {message}")
        for key in ("tee_signature", "tee_request_hash", "tee_output_hash", "tee_timestamp", "tee_id"):
            if event.get(key) is not None:
                if key in self.tee and self.tee[key] != event[key]:
                    raise VerificationError(f"the stream carries two different values of {key}")
                self.tee[key] = event[key]
        for key in ("data_settlement_transaction_hash", "data_settlement_blob_id"):
            if isinstance(event.get(key), str):
                self.settlement[key] = event[key]
        try:
            return self._event(event)
        except (AttributeError, TypeError, ValueError, OverflowError) as exc:
            raise InferenceError(f"the stream sent a malformed event ({exc}): {data[:120]!r}") from exc

    def _event(self, event: dict[str, Any]) -> StreamChunk:
        self.id = self.id or event.get("id")
        self.model = self.model or event.get("model")
        usage = Usage.from_dict(event.get("usage"))
        if usage is not None:
            self.usage = usage
        choices = [self._choice(c) for c in event.get("choices") or [] if isinstance(c, dict)]
        is_final = any(c.finish_reason for c in choices)
        images = event.get("images")
        if isinstance(images, list):
            self.images = images
        return StreamChunk(choices=choices or [StreamChoice()], id=event.get("id"),
                           model=event.get("model"), usage=usage, is_final=is_final,
                           images=images if isinstance(images, list) else None)

    def _choice(self, raw: dict[str, Any]) -> StreamChoice:
        delta = raw.get("delta") or {}
        text = delta.get("content")
        if text is None and isinstance(raw.get("text"), str):
            text = raw["text"]  # text_completion chunks
        if text:
            self.content.append(text)
        calls = []
        for position, part in enumerate(delta.get("tool_calls") or []):
            function = part.get("function") or {}
            index = int(part.get("index", position))
            call = self.tool_calls.setdefault(index, _ToolCall())
            call.id = call.id or part.get("id")
            call.type = part.get("type") or call.type
            call.name += function.get("name") or ""
            call.arguments += function.get("arguments") or ""
            calls.append(ToolCallDelta(index=index, id=part.get("id"), type=part.get("type"),
                                       name=function.get("name"), arguments=function.get("arguments")))
        if raw.get("finish_reason"):
            self.finish_reason = raw["finish_reason"]
        return StreamChoice(index=int(raw.get("index", 0)),
                            delta=StreamDelta(role=delta.get("role"), content=text, tool_calls=calls),
                            finish_reason=raw.get("finish_reason"))

    @property
    def text(self) -> str:
        """The streamed text so far."""
        return "".join(self.content)

    def message_tool_calls(self) -> list[dict[str, Any]]:
        """The assembled tool calls in OpenAI's message form."""
        return [{"id": c.id, "type": c.type, "function": {"name": c.name, "arguments": c.arguments}}
                for _, c in sorted(self.tool_calls.items())]
