"""Agent framework adapters: a LangChain chat model and an OpenAI Agents model provider.

Both run every model call through `client.llm` (x402-paid, TEE-verified) and hand back the
proof of each answer:

- LangChain (`pip install 'opengradient[langchain]'`): `OpenGradientChatModel`, a
  `BaseChatModel` that LangChain and LangGraph use like any other chat model (`create_agent`
  takes it as its model), `init_chat_model(...)`, LangChain's `init_chat_model` that also knows
  `"opengradient:<model>"`, and `langchain_adapter(...)`, the 0.7.4 factory that returns one.
- OpenAI Agents (`pip install 'opengradient[agents]'`): `OpenGradientModel`, an `agents.Model`,
  and `OpenGradientModelProvider`, an `agents.ModelProvider` for
  `RunConfig(model_provider=...)`. No OpenAI key is needed.

Nothing here is imported until it is used, so `import opengradient` never loads LangChain or the
Agents SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opengradient.agents.langchain_model import OpenGradientChatModel, init_chat_model, langchain_adapter
    from opengradient.agents.openai_agents import (
        OpenGradientModel,
        OpenGradientModelProvider,
        openai_agents_model,
    )

_LAZY = {
    "OpenGradientChatModel": "opengradient.agents.langchain_model",
    "init_chat_model": "opengradient.agents.langchain_model",
    "langchain_adapter": "opengradient.agents.langchain_model",
    "OpenGradientModel": "opengradient.agents.openai_agents",
    "OpenGradientModelProvider": "opengradient.agents.openai_agents",
    "openai_agents_model": "opengradient.agents.openai_agents",
}


def __getattr__(name: str) -> Any:
    """Import an adapter (and its framework) on first access."""
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'opengradient.agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


__all__ = ["OpenGradientChatModel", "OpenGradientModel", "OpenGradientModelProvider", "init_chat_model",
           "langchain_adapter", "openai_agents_model"]
