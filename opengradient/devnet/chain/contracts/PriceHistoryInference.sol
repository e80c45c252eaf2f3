// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ModelOutput} from "./InferenceTypes.sol";
import {HistoricalInputQuery, IPriceHistoryPrecompile, PRICE_HISTORY_PRECOMPILE} from "./PriceHistory.sol";

/// @title PriceHistoryInference
/// @notice A workflow: each run() has the chain's price-history precompile (0x…F5) run an ONNX
/// model on the latest candles of one market, and keeps the output.
/// @dev The public ABI of the network's PriceHistoryInference, function for function (the
/// `inputQuery` getter returns the query without `candle_types`, as a public struct getter does;
/// `candleTypes()` has them). Additions: set-up runs the model once, so a wrong model, input name
/// or query fails the deployment itself (at gas estimation, before anything is sent) and a new
/// workflow has a result at once; `resultCount()`; and `initialize()`, callable once, which sets
/// up a copy installed by placing runtime code (the devnet's genesis workflows).
contract PriceHistoryInference {
    /// @notice Emitted by every run with the model's output.
    event InferenceResultEmitted(address indexed caller, ModelOutput result);

    string public modelId;
    string public inputName;
    HistoricalInputQuery public inputQuery;
    bool private _initialized;
    /// @dev ABI-encoded ModelOutput of each run, oldest first.
    bytes[] private _results;

    constructor(string memory modelId_, string memory inputName_, HistoricalInputQuery memory query_) {
        _setUp(modelId_, inputName_, query_);
    }

    /// @notice Sets up a copy installed without its constructor; fails once set up.
    function initialize(string calldata modelId_, string calldata inputName_, HistoricalInputQuery calldata query_)
        external
    {
        require(!_initialized, "workflow: already initialized");
        _setUp(modelId_, inputName_, query_);
    }

    /// @notice Runs the model on the latest candles, stores and emits the output.
    function run() external {
        require(_initialized, "workflow: not initialized");
        _infer();
    }

    /// @notice The output of the latest run (empty before the first).
    function getInferenceResult() external view returns (ModelOutput memory empty) {
        uint256 n = _results.length;
        if (n == 0) {
            return empty;
        }
        bytes memory encoded = _results[n - 1];
        assembly ("memory-safe") {
            return(add(encoded, 0x20), mload(encoded))
        }
    }

    /// @notice The outputs of the latest `num` runs, newest first (fewer if there were fewer).
    function getLastInferenceResults(uint256 num) external view returns (ModelOutput[] memory outputs) {
        uint256 n = _results.length;
        uint256 count = num < n ? num : n;
        outputs = new ModelOutput[](count);
        for (uint256 i = 0; i < count; i++) {
            outputs[i] = abi.decode(_results[n - 1 - i], (ModelOutput));
        }
    }

    /// @notice How many runs produced a result.
    function resultCount() external view returns (uint256) {
        return _results.length;
    }

    /// @notice The candle types of the query, in tensor order (the getter `inputQuery` omits them).
    function candleTypes() external view returns (uint8[] memory) {
        return inputQuery.candle_types;
    }

    /// @notice Where the candles come from: the price-history precompile.
    function historicalContract() external pure returns (IPriceHistoryPrecompile) {
        return IPriceHistoryPrecompile(PRICE_HISTORY_PRECOMPILE);
    }

    function _setUp(string memory modelId_, string memory inputName_, HistoricalInputQuery memory query_) private {
        require(bytes(modelId_).length != 0, "workflow: modelId is empty");
        require(bytes(inputName_).length != 0, "workflow: inputName is empty");
        require(query_.total_candles != 0, "workflow: total_candles must be positive");
        require(query_.candle_types.length != 0, "workflow: candle_types is empty");
        modelId = modelId_;
        inputName = inputName_;
        inputQuery = query_;
        _initialized = true;
        _infer();
    }

    /// @dev The precompile returns the output ABI-encoded as `(ModelOutput)`, which is also what
    /// getInferenceResult() returns and the event's data: it is stored and passed on as is, never
    /// decoded and re-encoded.
    function _infer() private {
        (bool ok, bytes memory returned) = PRICE_HISTORY_PRECOMPILE.call(
            abi.encodeCall(IPriceHistoryPrecompile.runInferenceOnPriceFeed, (modelId, inputName, inputQuery))
        );
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(returned, 0x20), mload(returned))
            }
        }
        require(returned.length != 0, "price-history precompile returned no data");
        // A (ModelOutput) encoding starts with the offset 0x20 and holds at least its 4-word head.
        require(
            returned.length >= 0xa0 && uint256(bytes32(returned)) == 0x20,
            "price-history precompile returned a malformed output"
        );
        _results.push(returned);
        bytes32 topic = InferenceResultEmitted.selector;
        assembly ("memory-safe") {
            log2(add(returned, 0x20), mload(returned), topic, caller())
        }
    }
}
