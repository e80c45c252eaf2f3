"""Hard-coded forecast workflows on the Alpha chain, read in one call.

Each reader reads the latest result of one `PriceHistoryInference` workflow on the Alpha chain,
takes its single output value and returns it as a percentage with 10 decimals, with the
contract's block-explorer link::

    import opengradient as og
    from opengradient.workflow_models import read_eth_usdt_one_hour_volatility_forecast

    og.init(private_key=...)
    print(read_eth_usdt_one_hour_volatility_forecast().result)   # e.g. "1.5593183100%"

`alpha` defaults to `og.global_client.alpha`; pass a client's `alpha` (or the client) to use
another. Every reader has an async twin prefixed with `a`. `WORKFLOW_MODELS` describes them all
for discovery (name, contract address, output tensor, description, reader).
"""

from __future__ import annotations

from opengradient.workflow_models.readers import (
    BTC_1_HOUR_PRICE_FORECAST,
    ETH_1_HOUR_PRICE_FORECAST,
    ETH_USDT_ONE_HOUR_VOLATILITY_FORECAST,
    SOL_1_HOUR_PRICE_FORECAST,
    SUI_1_HOUR_PRICE_FORECAST,
    SUI_USDT_6_HOUR_PRICE_FORECAST,
    SUI_USDT_30_MIN_PRICE_FORECAST,
    WORKFLOW_MODELS,
    WorkflowModel,
    WorkflowModelOutput,
    aread_btc_1_hour_price_forecast,
    aread_eth_1_hour_price_forecast,
    aread_eth_usdt_one_hour_volatility_forecast,
    aread_sol_1_hour_price_forecast,
    aread_sui_1_hour_price_forecast,
    aread_sui_usdt_6_hour_price_forecast,
    aread_sui_usdt_30_min_price_forecast,
    aread_workflow_scalar,
    format_percentage,
    read_btc_1_hour_price_forecast,
    read_eth_1_hour_price_forecast,
    read_eth_usdt_one_hour_volatility_forecast,
    read_sol_1_hour_price_forecast,
    read_sui_1_hour_price_forecast,
    read_sui_usdt_6_hour_price_forecast,
    read_sui_usdt_30_min_price_forecast,
    read_workflow_scalar,
    workflow_model,
)

__all__ = [
    "BTC_1_HOUR_PRICE_FORECAST",
    "ETH_1_HOUR_PRICE_FORECAST",
    "ETH_USDT_ONE_HOUR_VOLATILITY_FORECAST",
    "SOL_1_HOUR_PRICE_FORECAST",
    "SUI_1_HOUR_PRICE_FORECAST",
    "SUI_USDT_30_MIN_PRICE_FORECAST",
    "SUI_USDT_6_HOUR_PRICE_FORECAST",
    "WORKFLOW_MODELS",
    "WorkflowModel",
    "WorkflowModelOutput",
    "aread_btc_1_hour_price_forecast",
    "aread_eth_1_hour_price_forecast",
    "aread_eth_usdt_one_hour_volatility_forecast",
    "aread_sol_1_hour_price_forecast",
    "aread_sui_1_hour_price_forecast",
    "aread_sui_usdt_30_min_price_forecast",
    "aread_sui_usdt_6_hour_price_forecast",
    "aread_workflow_scalar",
    "format_percentage",
    "read_btc_1_hour_price_forecast",
    "read_eth_1_hour_price_forecast",
    "read_eth_usdt_one_hour_volatility_forecast",
    "read_sol_1_hour_price_forecast",
    "read_sui_1_hour_price_forecast",
    "read_sui_usdt_30_min_price_forecast",
    "read_sui_usdt_6_hour_price_forecast",
    "read_workflow_scalar",
    "workflow_model",
]
