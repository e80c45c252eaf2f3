"""A small deterministic tokenizer for the devnet's usage numbers.

It is not any provider's tokenizer: it splits text into words (at most 12 letters), groups of at most
three digits, runs of at most three punctuation characters and single other characters, with the
whitespace before a token attached to it (a trailing run of whitespace is a token of its own). The
pieces always join back to the text, so a stream of tokens reassembles the exact output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["count_tokens", "tokenize", "count_chat_prompt_tokens", "message_text"]

_TOKEN_RE = re.compile(r"\s*(?:[^\W\d_]{1,12}|\d{1,3}|[^\w\s]{1,3}|\S)|\s+")

#: Tokens every chat message costs on top of its text (role and separators).
MESSAGE_OVERHEAD = 4
#: Tokens that prime the assistant's reply.
REPLY_PRIMING = 3
#: Flat cost of a non-text content part (an image, an audio clip, a file).
MEDIA_PART_TOKENS = 85


def tokenize(text: str) -> list[str]:
    """Split `text` into tokens; `"".join(tokenize(text)) == text` always holds."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """How many tokens `text` is."""
    return len(_TOKEN_RE.findall(text))


def message_text(content: Any) -> str:
    """The text of a chat message's `content`: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return ""


def _media_parts(content: Any) -> int:
    if not isinstance(content, list):
        return 0
    return sum(1 for part in content if isinstance(part, Mapping) and not isinstance(part.get("text"), str))


def _json_tokens(value: Any) -> int:
    try:
        return count_tokens(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        return count_tokens(str(value))


def count_chat_prompt_tokens(messages: Any, tools: Any = None, response_format: Any = None) -> int:
    """Prompt tokens of a chat request: each message's text plus a fixed overhead, the tool
    schemas and a response-format schema as JSON, and the reply priming."""
    total = REPLY_PRIMING
    if isinstance(messages, Iterable) and not isinstance(messages, str | bytes | Mapping):
        for message in messages:
            total += MESSAGE_OVERHEAD
            if not isinstance(message, Mapping):
                total += count_tokens(str(message))
                continue
            for key in ("role", "name", "tool_call_id"):
                value = message.get(key)
                if isinstance(value, str):
                    total += count_tokens(value)
            content = message.get("content")
            total += count_tokens(message_text(content)) + MEDIA_PART_TOKENS * _media_parts(content)
            if message.get("tool_calls"):
                total += _json_tokens(message["tool_calls"])
    if tools:
        total += _json_tokens(tools)
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        total += _json_tokens(response_format.get("json_schema"))
    return total
