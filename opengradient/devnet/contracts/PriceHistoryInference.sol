// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {
    IInferencePrecompile,
    INFERENCE_PRECOMPILE,
    ModelInferenceRequest,
    ModelInput,
    ModelOutput,
    MultiDimensionalNumberTensor,
    Number,
    StringTensor
} from "./InferenceTypes.sol";
import {IPriceHistoryOracle, PRICE_HISTORY_ORACLE} from "./PriceHistoryOracle.sol";

/// @notice Which candles a workflow feeds its model (PROTOCOL.md section 5). order: ASCENDING 0,
/// DESCENDING 1; candle_types: HIGH 0, LOW 1, OPEN 2, CLOSE 3, VOLUME 4.
struct HistoricalInputQuery {
    string base;
    string quote;
    uint32 total_candles;
    uint32 candle_duration_in_mins;
    uint8 order;
    uint8[] candle_types;
}

/// @title PriceHistoryInference
/// @notice A workflow: each run() reads the latest candles from the price-history oracle, feeds
/// them to an ONNX model as one tensor and keeps the output.
/// @dev The input tensor is `inputName` with shape [1, total_candles, candle_types.length],
/// row-major (per candle, one value per candle type). Setting up runs the model once, so a wrong
/// model, input name or query fails the deployment itself (at gas estimation, before anything is
/// sent) and a new workflow has a result at once. Contracts installed by placing runtime code are
/// set up with initialize(), callable once, instead of the constructor.
contract PriceHistoryInference {
    /// @notice Emitted by every run with the model's output.
    event InferenceResultEmitted(address indexed caller, ModelOutput result);

    uint8 private constant VANILLA = 0;

    string private _modelId;
    string private _inputName;
    HistoricalInputQuery private _query;
    bool private _initialized;
    /// @dev ABI-encoded ModelOutput of each run, oldest first.
    bytes[] private _results;
    /// @dev Fixed by the set-up, so each run only splices the latest candle values in: the
    /// oracle's getCandles call data, and the precompile's call data before and after the values.
    bytes private _oracleCall;
    bytes private _requestHead;
    bytes private _requestTail;

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

    /// @notice Reads the latest candles, runs the model, stores and emits the output.
    function run() external returns (ModelOutput memory) {
        require(_initialized, "workflow: not initialized");
        bytes memory encoded = _run();
        assembly ("memory-safe") {
            return(add(encoded, 0x20), mload(encoded))
        }
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

    function inputQuery() external view returns (HistoricalInputQuery memory) {
        return _query;
    }

    function modelId() external view returns (string memory) {
        return _modelId;
    }

    function inputName() external view returns (string memory) {
        return _inputName;
    }

    function historicalContract() external pure returns (address) {
        return PRICE_HISTORY_ORACLE;
    }

    function _setUp(string memory modelId_, string memory inputName_, HistoricalInputQuery memory query_) private {
        require(bytes(modelId_).length != 0, "workflow: modelId is empty");
        require(bytes(inputName_).length != 0, "workflow: inputName is empty");
        require(query_.total_candles != 0, "workflow: total_candles must be positive");
        require(query_.candle_types.length != 0, "workflow: candle_types is empty");
        _modelId = modelId_;
        _inputName = inputName_;
        _query = query_;
        _initialized = true;
        _oracleCall = abi.encodeCall(
            IPriceHistoryOracle.getCandles,
            (query_.base, query_.quote, query_.total_candles, query_.candle_duration_in_mins, query_.order,
                query_.candle_types)
        );
        bytes memory candles = _fetchCandles(); // first, so a query the oracle refuses fails cheaply
        // The request with zeros for values; its layout is fixed, so cut it around the values.
        uint256 count = uint256(query_.total_candles) * query_.candle_types.length;
        uint32[] memory shape = new uint32[](3);
        shape[0] = 1;
        shape[1] = query_.total_candles;
        shape[2] = uint32(query_.candle_types.length);
        ModelInput memory input;
        input.numbers = new MultiDimensionalNumberTensor[](1);
        input.numbers[0] =
            MultiDimensionalNumberTensor({name: inputName_, values: new Number[](count), shape: shape});
        input.strings = new StringTensor[](0);
        bytes memory request = abi.encodeCall(
            IInferencePrecompile.runModelInference,
            (ModelInferenceRequest({mode: VANILLA, modelCID: modelId_, input: input}))
        );
        // selector, offset of the request, request head (3 words), modelCID, ModelInput head
        // (2 words), numbers length and offset of tensor 0, tensor head (3 words), name, values length
        uint256 start = 4 + 0x20 + 0x60 + _encodedLength(modelId_) + 0x40 + 0x40 + 0x60
            + _encodedLength(inputName_) + 0x20;
        uint256 size = count * 0x40;
        uint256 lengthWord;
        assembly ("memory-safe") {
            lengthWord := mload(add(request, start))
        }
        require(lengthWord == count, "workflow: unexpected request layout");
        _requestHead = _slice(request, 0, start);
        _requestTail = _slice(request, start + size, request.length - start - size);
        _infer(candles);
    }

    function _run() private returns (bytes memory) {
        return _infer(_fetchCandles());
    }

    /// @dev The oracle's answer, abi.encode(Number[]): the offset, the length, then the values.
    function _fetchCandles() private view returns (bytes memory candles) {
        bool ok;
        (ok, candles) = PRICE_HISTORY_ORACLE.staticcall(_oracleCall);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(candles, 0x20), mload(candles))
            }
        }
    }

    /// @dev Returns the output ABI-encoded as `(ModelOutput)`, which is also what the precompile
    /// returns, what run() and getInferenceResult() return and the event's data: it is stored and
    /// passed on as is, never decoded and re-encoded.
    function _infer(bytes memory candles) private returns (bytes memory returned) {
        bytes memory head = _requestHead;
        bytes memory tail = _requestTail;
        HistoricalInputQuery storage q = _query;
        uint256 size = uint256(q.total_candles) * q.candle_types.length * 0x40;
        require(candles.length == 0x40 + size, "workflow: the oracle returned an unexpected number of values");
        bool ok;
        bytes memory request = new bytes(head.length + size + tail.length);
        assembly ("memory-safe") {
            let out := add(request, 0x20)
            mcopy(out, add(head, 0x20), mload(head))
            out := add(out, mload(head))
            mcopy(out, add(candles, 0x60), size)
            mcopy(add(out, size), add(tail, 0x20), mload(tail))
        }
        (ok, returned) = INFERENCE_PRECOMPILE.call(request);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(returned, 0x20), mload(returned))
            }
        }
        require(returned.length != 0, "inference precompile returned no data");
        // A (ModelOutput) encoding starts with the offset 0x20 and holds at least its 4-word head.
        require(
            returned.length >= 0xa0 && uint256(bytes32(returned)) == 0x20,
            "inference precompile returned a malformed output"
        );
        _results.push(returned);
        bytes32 topic = InferenceResultEmitted.selector;
        assembly ("memory-safe") {
            log2(add(returned, 0x20), mload(returned), topic, caller())
        }
    }

    /// @dev Bytes of a string's ABI encoding after its offset: the length word and padded data.
    function _encodedLength(string memory text) private pure returns (uint256) {
        return 0x20 + ((bytes(text).length + 31) / 32) * 32;
    }

    function _slice(bytes memory data, uint256 start, uint256 length) private pure returns (bytes memory out) {
        out = new bytes(length);
        assembly ("memory-safe") {
            mcopy(add(out, 0x20), add(add(data, 0x20), start), length)
        }
    }
}
