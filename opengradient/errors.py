"""One error hierarchy for everything the SDK raises.

Every error says what happened and, where there is one, what to do about it. Callers can catch
`OpenGradientError` for everything, or a subclass for one kind of failure. Errors that describe
bad input also subclass `ValueError`, so code written against plain Python conventions still works.
Messages never contain private keys, passwords or payment signatures.
"""

from __future__ import annotations

from typing import Any


class OpenGradientError(Exception):
    """Base class of every error raised by the SDK.

    `message` says what happened, `hint` what to do in Python terms; `arguments` names the
    `og.init`/`Client` arguments (and so the settings, see `opengradient.config`) that would fix
    it, which lets the CLI give the same advice in its own terms.
    """

    def __init__(self, message: str, *, hint: str | None = None, arguments: tuple[str, ...] = ()) -> None:
        self.message = message
        self.hint = hint
        self.arguments = arguments
        super().__init__(f"{message} ({hint})" if hint else message)


class ConfigurationError(OpenGradientError, ValueError):
    """The client was built with missing or invalid settings (a key, a URL, credentials)."""


class InvalidInputError(OpenGradientError, ValueError):
    """Input was rejected before anything was sent or paid for."""


class NetworkError(OpenGradientError):
    """A service could not be reached, or the connection broke."""


class RequestTimeoutError(NetworkError):
    """A service did not answer in time."""


class PinnedCertificateError(NetworkError):
    """A server presented a TLS certificate other than the one registered for it, so the
    connection was refused during the handshake: nothing was sent to it."""


class InvalidResponseError(OpenGradientError):
    """A service answered with something the SDK cannot read: not JSON, nested too deeply, or not
    the shape the protocol gives."""


class HTTPStatusError(OpenGradientError):
    """A service answered with an error status; `message` is the server's own explanation."""

    def __init__(self, message: str, *, status_code: int, url: str, body: Any = None,
                 hint: str | None = None, arguments: tuple[str, ...] = ()) -> None:
        self.status_code = status_code
        self.url = url
        self.body = body
        super().__init__(f"HTTP {status_code} from {url}: {message}", hint=hint, arguments=arguments)


class AuthenticationError(HTTPStatusError):
    """The service refused the credentials (wrong email/password, expired token)."""


class NotFoundError(HTTPStatusError):
    """The requested resource (model, version, file, inference) does not exist."""


class ConflictError(HTTPStatusError):
    """The resource already exists (for example a model name that is taken)."""


class RateLimitError(HTTPStatusError):
    """The service asked us to slow down."""


class RPCError(OpenGradientError):
    """A JSON-RPC node answered with an error that is not a contract revert."""

    def __init__(self, message: str, *, code: int | None = None, data: Any = None) -> None:
        self.code = code
        self.data = data
        super().__init__(message)


class ContractRevertError(OpenGradientError):
    """A contract call or transaction reverted; `reason` is the decoded revert reason."""

    def __init__(self, reason: str, *, data: str | None = None,
                 transaction_hash: str | None = None) -> None:
        self.reason = reason
        self.data = data
        self.transaction_hash = transaction_hash
        where = f" in transaction {transaction_hash}" if transaction_hash else ""
        super().__init__(f"execution reverted{where}: {reason}")


class ModelNotFoundError(ContractRevertError):
    """The inference network does not know the model CID."""


class InferenceError(OpenGradientError):
    """An inference ran but its result could not be obtained or understood."""


class TransactionError(OpenGradientError):
    """A transaction could not be sent or was not mined; `transaction_hash` names it when known."""

    def __init__(self, message: str, *, transaction_hash: str | None = None, hint: str | None = None) -> None:
        self.transaction_hash = transaction_hash
        super().__init__(message, hint=hint)


class VerificationError(OpenGradientError):
    """A proof, signature or attestation did not check out; `message` says which check failed."""


class PaymentError(OpenGradientError):
    """A paid request could not be paid for; `requirements` are the server's decoded offers."""

    def __init__(self, message: str, *, requirements: Any = None, reason: str | None = None,
                 hint: str | None = None, arguments: tuple[str, ...] = ()) -> None:
        self.requirements = requirements
        self.reason = reason
        super().__init__(message, hint=hint, arguments=arguments)


class PaymentRequiredError(PaymentError):
    """The server asks for a payment this client cannot make (no key, no matching offer)."""


class PaymentDeclinedError(PaymentError):
    """The server refused the payment that was sent; `reason` is its x402 error code."""


class SpendCapExceededError(PaymentError):
    """The price is above the client's per-request spend cap; nothing was signed."""

    def __init__(self, message: str, *, amount: int, cap: int, requirements: Any = None) -> None:
        self.amount = amount
        self.cap = cap
        super().__init__(message, requirements=requirements, arguments=("max_payment_per_request",),
                         hint="raise max_payment_per_request on the client if this price is expected")


class WorkflowSchedulingError(OpenGradientError):
    """A workflow contract was deployed but registering it with the scheduler failed.

    `contract_address` is the deployed workflow (usable at once with `run_workflow`); `reason` is
    the scheduler's revert reason or what else went wrong. The cause is chained (`__cause__`).
    """

    def __init__(self, reason: str, *, contract_address: str, transaction_hash: str | None = None) -> None:
        self.reason = reason
        self.contract_address = contract_address
        self.transaction_hash = transaction_hash
        super().__init__(f"workflow {contract_address} was deployed, but registering it with the scheduler "
                         f"failed: {reason}",
                         hint="fix the schedule and call alpha.schedule_workflow(contract_address, scheduler_params)")


class MissingExtraError(OpenGradientError, ImportError):
    """A feature needs an optional extra that is not installed; the message names the pip command.

    It is also an `ImportError`, so `except ImportError` around optional features keeps working.
    """

    def __init__(self, feature: str, extra: str, detail: str) -> None:
        self.feature = feature
        self.extra = extra
        self.command = f"pip install 'opengradient[{extra}]'"
        super().__init__(f"{feature} needs extra packages ({detail}): {self.command}")


def missing_extra(exc: ImportError, feature: str, extra: str) -> MissingExtraError:
    """`exc`, raised while importing the optional packages of `feature`, as a `MissingExtraError`.

    Use it as `raise missing_extra(exc, ...) from exc` around imports of third-party packages only.
    """
    detail = f"{exc.name} is missing" if isinstance(exc, ModuleNotFoundError) and exc.name else str(exc)
    error = MissingExtraError(feature, extra, detail)
    error.name = exc.name
    return error


class UnconfirmedTransactionError(TransactionError, NetworkError):
    """The network failed while a signed transaction was being sent: it may or may not be on chain.

    `transaction_hash` names it: look it up before retrying, or a retry could pay twice.
    """
