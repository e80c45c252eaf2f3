"""The client and its namespaces: `llm`, `alpha`, `model_hub`, `twins`."""

from opengradient.client.client import Client

__all__ = ["Client"]
