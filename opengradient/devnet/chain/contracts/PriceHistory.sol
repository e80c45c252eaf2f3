// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ModelOutput, Number} from "./InferenceTypes.sol";

/// @notice Which candles a workflow feeds its model. order: ASCENDING 0, DESCENDING 1;
/// candle_types: HIGH 0, LOW 1, OPEN 2, CLOSE 3, VOLUME 4. Field order and types are part of the
/// wire format (the precompile's selectors and the workflow constructor depend on them).
struct HistoricalInputQuery {
    string base;
    string quote;
    uint32 total_candles;
    uint32 candle_duration_in_mins;
    uint8 order;
    uint8[] candle_types;
}

/// @dev The Alpha chain's price-history precompile, where the public `PriceHistoryInference`
/// contract reads its candles.
address constant PRICE_HISTORY_PRECOMPILE = 0x00000000000000000000000000000000000000F5;

/// @notice The price-history precompile at 0x…F5: the chain's own OHLCV price feed.
interface IPriceHistoryPrecompile {
    /// @notice The latest `total_candles` closed candles of `base`/`quote`, flattened row-major:
    /// per candle (oldest first for ASCENDING, newest first for DESCENDING) one number per entry
    /// of `candle_types`. Selector 0xf2f08e63.
    function queryHistoricalCandles(HistoricalInputQuery memory query) external returns (Number[] memory);

    /// @notice Runs ONNX model `modelId` (VANILLA) on those candles, fed as tensor `inputName` of
    /// shape [1, total_candles, candle_types.length]. Selector 0xa192a0f9.
    function runInferenceOnPriceFeed(string memory modelId, string memory inputName, HistoricalInputQuery memory query)
        external
        returns (ModelOutput memory);
}
