"""The seven forecast readers, their descriptors, and the scalar-to-percentage formatting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from opengradient.errors import ConfigurationError, InferenceError, InvalidInputError

if TYPE_CHECKING:
    from opengradient.client.client import Client
    from opengradient.networks import Network
    from opengradient.types import ModelOutput


class WorkflowReads(Protocol):
    """What the readers need of `client.alpha`."""

    @property
    def network(self) -> Network: ...

    def read_workflow_result(self, contract_address: str) -> ModelOutput: ...

    async def aread_workflow_result(self, contract_address: str) -> ModelOutput: ...

_DECIMALS = Decimal("1e-10")


@dataclass(frozen=True)
class WorkflowModelOutput:
    """A forecast: the value as a percentage with 10 decimals, and the contract's explorer link."""

    result: str
    block_explorer_link: str


@dataclass(frozen=True)
class WorkflowModel:
    """One hard-coded workflow: where it lives, which tensor it reads, and its readers."""

    name: str
    contract_address: str
    output_tensor: str
    description: str
    reader: Callable[..., WorkflowModelOutput]
    async_reader: Callable[..., Awaitable[WorkflowModelOutput]]

    def read(self, alpha: WorkflowReads | Client | None = None) -> WorkflowModelOutput:
        """Read the latest forecast (see `read_workflow_scalar`)."""
        return read_workflow_scalar(self.contract_address, self.output_tensor, alpha)

    async def aread(self, alpha: WorkflowReads | Client | None = None) -> WorkflowModelOutput:
        """Async twin of `read`."""
        return await aread_workflow_scalar(self.contract_address, self.output_tensor, alpha)


def format_percentage(value: Any) -> str:
    """A fraction as a percentage with 10 decimals: 0.0123 -> "1.2300000000%".

    Floats go through their shortest decimal text, so what is printed is the decimal the value
    stands for (0.0123 is not 0.012299999999999999…).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise InferenceError(f"the forecast {value!r} is not a number") from None
    number = Decimal(float.__repr__(float(value))) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        raise InferenceError(f"the forecast is {value!r}, not a finite number")
    return f"{(number * 100).quantize(_DECIMALS):f}%"


def _alpha(alpha: Any) -> WorkflowReads:
    if alpha is None:
        import opengradient

        client = opengradient.global_client
        if client is None:
            raise ConfigurationError("no client to read the workflow with",
                                     hint="call og.init(private_key=...) first, or pass alpha=client.alpha")
        return client.alpha
    if hasattr(alpha, "read_workflow_result"):
        return alpha
    if hasattr(alpha, "alpha"):
        return alpha.alpha
    raise ConfigurationError(f"alpha must be a client's alpha namespace (client.alpha), got {type(alpha).__name__}")


def _tensor_name(output_tensor: Any) -> str:
    if not isinstance(output_tensor, str) or not output_tensor.strip():
        raise InvalidInputError(f"output_tensor must be a non-empty string, got {output_tensor!r}",
                                hint="the name of the workflow model's output tensor, e.g. 'Y'")
    return output_tensor.strip()


def _scalar(output: ModelOutput, address: str, tensor: str) -> Any:
    values = output.numbers.get(tensor)
    if values is None:
        found = ", ".join(sorted(output.numbers)) or "none"
        raise InferenceError(f"workflow {address} has no output tensor {tensor!r} (its number tensors: {found})",
                             hint="check the output tensor name of this workflow's model")
    if values.size != 1:
        raise InferenceError(f"output tensor {tensor!r} of workflow {address} holds {values.size} values, "
                             "not one")
    return values.reshape(()).item()


def read_workflow_scalar(contract_address: str, output_tensor: str,
                         alpha: WorkflowReads | Client | None = None) -> WorkflowModelOutput:
    """Read the single value of `output_tensor` in a workflow's latest result, as a percentage.

    Raises `ConfigurationError` without a client, `InvalidInputError` for a bad address or tensor
    name (before any request), and `InferenceError` when the workflow has no result yet or its
    result lacks that tensor.
    """
    from opengradient.client.workflows import parse_address

    address, tensor, namespace = parse_address(contract_address), _tensor_name(output_tensor), _alpha(alpha)
    output = namespace.read_workflow_result(address)
    return WorkflowModelOutput(result=format_percentage(_scalar(output, address, tensor)),
                               block_explorer_link=namespace.network.address_url(address))


async def aread_workflow_scalar(contract_address: str, output_tensor: str,
                                alpha: WorkflowReads | Client | None = None) -> WorkflowModelOutput:
    """Async twin of `read_workflow_scalar`."""
    from opengradient.client.workflows import parse_address

    address, tensor, namespace = parse_address(contract_address), _tensor_name(output_tensor), _alpha(alpha)
    output = await namespace.aread_workflow_result(address)
    return WorkflowModelOutput(result=format_percentage(_scalar(output, address, tensor)),
                               block_explorer_link=namespace.network.address_url(address))


def _readers(address: str, tensor: str, name: str) -> tuple[Callable[..., WorkflowModelOutput],
                                                            Callable[..., Awaitable[WorkflowModelOutput]]]:
    def read(alpha: WorkflowReads | Client | None = None) -> WorkflowModelOutput:
        return read_workflow_scalar(address, tensor, alpha)

    async def aread(alpha: WorkflowReads | Client | None = None) -> WorkflowModelOutput:
        return await aread_workflow_scalar(address, tensor, alpha)

    read.__name__ = read.__qualname__ = f"read_{name}"
    aread.__name__ = aread.__qualname__ = f"aread_{name}"
    return read, aread


def _model(name: str, address: str, tensor: str, description: str) -> WorkflowModel:
    read, aread = _readers(address, tensor, name)
    read.__doc__ = f"{description} Reads workflow {address}, tensor {tensor!r}."
    aread.__doc__ = f"Async twin of `read_{name}`."
    return WorkflowModel(name, address, tensor, description, read, aread)


ETH_USDT_ONE_HOUR_VOLATILITY_FORECAST = _model(
    "eth_usdt_one_hour_volatility_forecast", "0xD5629A5b95dde11e4B5772B5Ad8a13B933e33845", "Y",
    "Forecast of ETH/USDT volatility over the next hour (standard deviation of the hourly return).")
BTC_1_HOUR_PRICE_FORECAST = _model(
    "btc_1_hour_price_forecast", "0xb4146E095c2CD2a7aA497EdfB513F1cB868Dcc3D", "regression_output",
    "Forecast of the BTC/USDT price change (return) over the next hour.")
ETH_1_HOUR_PRICE_FORECAST = _model(
    "eth_1_hour_price_forecast", "0x58826c6dc9A608238d9d57a65bDd50EcaE27FE99", "regression_output",
    "Forecast of the ETH/USDT price change (return) over the next hour.")
SOL_1_HOUR_PRICE_FORECAST = _model(
    "sol_1_hour_price_forecast", "0xaE12EC7314e91A612CF4Fa4DC07dC02cfCc4dF95", "regression_output",
    "Forecast of the SOL/USDT price change (return) over the next hour.")
SUI_1_HOUR_PRICE_FORECAST = _model(
    "sui_1_hour_price_forecast", "0x90FE6434C46838c96E9ACb8d394C0fdfe38C6182", "regression_output",
    "Forecast of the SUI/USDT price change (return) over the next hour.")
SUI_USDT_30_MIN_PRICE_FORECAST = _model(
    "sui_usdt_30_min_price_forecast", "0xD85BA71f5701dc4C5BDf9780189Db49C6F3708D2", "destandardized_prediction",
    "Forecast of the SUI/USDT price change (return) over the next 30 minutes.")
SUI_USDT_6_HOUR_PRICE_FORECAST = _model(
    "sui_usdt_6_hour_price_forecast", "0x3C2E4DbD653Bd30F1333d456480c1b7aB122e946", "destandardized_prediction",
    "Forecast of the SUI/USDT price change (return) over the next 6 hours.")

#: Every hard-coded workflow model, in the order SDK 0.7.4 lists them.
WORKFLOW_MODELS: tuple[WorkflowModel, ...] = (
    ETH_USDT_ONE_HOUR_VOLATILITY_FORECAST, BTC_1_HOUR_PRICE_FORECAST, ETH_1_HOUR_PRICE_FORECAST,
    SOL_1_HOUR_PRICE_FORECAST, SUI_1_HOUR_PRICE_FORECAST, SUI_USDT_30_MIN_PRICE_FORECAST,
    SUI_USDT_6_HOUR_PRICE_FORECAST)


def workflow_model(name: str) -> WorkflowModel:
    """A workflow model by name (with or without the `read_` prefix); KeyError lists the names."""
    key = name.removeprefix("read_")
    for model in WORKFLOW_MODELS:
        if model.name == key:
            return model
    raise KeyError(f"no workflow model {name!r}; known: {', '.join(m.name for m in WORKFLOW_MODELS)}")


read_eth_usdt_one_hour_volatility_forecast = ETH_USDT_ONE_HOUR_VOLATILITY_FORECAST.reader
aread_eth_usdt_one_hour_volatility_forecast = ETH_USDT_ONE_HOUR_VOLATILITY_FORECAST.async_reader
read_btc_1_hour_price_forecast = BTC_1_HOUR_PRICE_FORECAST.reader
aread_btc_1_hour_price_forecast = BTC_1_HOUR_PRICE_FORECAST.async_reader
read_eth_1_hour_price_forecast = ETH_1_HOUR_PRICE_FORECAST.reader
aread_eth_1_hour_price_forecast = ETH_1_HOUR_PRICE_FORECAST.async_reader
read_sol_1_hour_price_forecast = SOL_1_HOUR_PRICE_FORECAST.reader
aread_sol_1_hour_price_forecast = SOL_1_HOUR_PRICE_FORECAST.async_reader
read_sui_1_hour_price_forecast = SUI_1_HOUR_PRICE_FORECAST.reader
aread_sui_1_hour_price_forecast = SUI_1_HOUR_PRICE_FORECAST.async_reader
read_sui_usdt_30_min_price_forecast = SUI_USDT_30_MIN_PRICE_FORECAST.reader
aread_sui_usdt_30_min_price_forecast = SUI_USDT_30_MIN_PRICE_FORECAST.async_reader
read_sui_usdt_6_hour_price_forecast = SUI_USDT_6_HOUR_PRICE_FORECAST.reader
aread_sui_usdt_6_hour_price_forecast = SUI_USDT_6_HOUR_PRICE_FORECAST.async_reader
