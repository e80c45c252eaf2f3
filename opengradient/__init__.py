"""OpenGradient: verifiable AI inference for agent builders.

`og.init(private_key=…)` returns a `Client` whose namespaces reach the network: `alpha` (on-chain
ONNX inference) and `model_hub`. `og.devnet.start()` runs the whole network on this machine.

Importing this package is cheap: the client, web3-style libraries, numpy and the devnet load on
first use.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from opengradient.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    ContractRevertError,
    HTTPStatusError,
    InferenceError,
    InvalidInputError,
    InvalidResponseError,
    MissingExtraError,
    ModelNotFoundError,
    NetworkError,
    NotFoundError,
    OpenGradientError,
    PaymentDeclinedError,
    PaymentError,
    PaymentRequiredError,
    RateLimitError,
    RequestTimeoutError,
    RPCError,
    SpendCapExceededError,
    TransactionError,
    UnconfirmedTransactionError,
    VerificationError,
    WorkflowSchedulingError,
)
from opengradient.types import (
    LLM,
    TEE_LLM,
    CandleOrder,
    CandleType,
    FileUploadResult,
    HistoricalInputQuery,
    InferenceMode,
    InferenceResult,
    LlmInferenceMode,
    ModelOutput,
    ModelRepository,
    SchedulerParams,
    StreamChunk,
    TextGenerationOutput,
    Usage,
    x402SettlementMode,
)

if TYPE_CHECKING:
    from opengradient import devnet, workflow_models
    from opengradient.client import Client
    from opengradient.client.confidential import ConfidentialLLM
    from opengradient.legacy import new_client
    from opengradient.proof import Proof

__version__ = "0.8.0.dev0"

# A library leaves logging to the application: without its own configuration, nothing is printed.
logging.getLogger("opengradient").addHandler(logging.NullHandler())

#: The client created by the last `init` call.
global_client: Client | None = None

_LAZY = {
    "Client": ("opengradient.client.client", "Client"),
    "ConfidentialLLM": ("opengradient.client.confidential", "ConfidentialLLM"),
    "Proof": ("opengradient.proof", "Proof"),
    "devnet": ("opengradient.devnet", None),
    "new_client": ("opengradient.legacy", "new_client"),
    "workflow_models": ("opengradient.workflow_models", None),
}


def __getattr__(name: str) -> Any:
    """Load heavy parts on first access, so `import opengradient` stays fast."""
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'opengradient' has no attribute {name!r}")


def init(private_key: str | None = None, alpha_private_key: str | None = None,
         email: str | None = None, password: str | None = None, **kwargs: Any) -> Client:
    """Create a `Client`, remember it as `og.global_client`, and return it.

    What is not passed is read from the settings, exactly as the CLI reads them: the `OG_*`
    environment variables (`OG_PRIVATE_KEY`, …), then the config file that `opengradient config
    init` writes. `devnet_url=` (or `OG_DEVNET_URL`) points the client at a devnet served over
    HTTP. Other `kwargs` go to `Client` (URLs, `network=`, `timeout=`, `transport=`, …).
    """
    from opengradient import config
    from opengradient.client.client import Client

    global global_client
    global_client = Client(**config.client_arguments(
        {"private_key": private_key, "alpha_private_key": alpha_private_key, "email": email,
         "password": password, **kwargs}))
    return global_client


__all__ = [
    "LLM", "TEE_LLM", "AuthenticationError", "CandleOrder", "CandleType", "Client", "ConfidentialLLM",
    "ConfigurationError", "ConflictError", "ContractRevertError", "FileUploadResult",
    "HTTPStatusError", "HistoricalInputQuery", "InferenceError", "InferenceMode", "InferenceResult",
    "InvalidInputError", "InvalidResponseError", "LlmInferenceMode", "MissingExtraError", "ModelNotFoundError",
    "ModelOutput",
    "ModelRepository",
    "NetworkError", "NotFoundError", "OpenGradientError", "Proof", "RPCError", "RateLimitError",
    "PaymentDeclinedError", "PaymentError", "PaymentRequiredError", "SpendCapExceededError", "StreamChunk",
    "TextGenerationOutput", "Usage", "RequestTimeoutError", "SchedulerParams", "TransactionError",
    "UnconfirmedTransactionError",
    "VerificationError", "WorkflowSchedulingError", "devnet", "workflow_models",
    "global_client", "init", "new_client", "x402SettlementMode",
]
