// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Shared types of the Alpha chain's on-chain ONNX inference (PROTOCOL.md section 5).
// Field order and types are part of the wire format: the function selectors and event topics
// the SDK relies on are derived from them, so do not reorder, rename types or add fields.

/// @notice A fixed-point decimal: the number is value / 10**decimals.
struct Number {
    int128 value;
    int128 decimals;
}

/// @notice A numeric tensor, flattened row-major, with its shape.
struct MultiDimensionalNumberTensor {
    string name;
    Number[] values;
    uint32[] shape;
}

/// @notice A one-dimensional tensor of strings.
struct StringTensor {
    string name;
    string[] values;
}

/// @notice A named model output whose value is JSON text.
struct JsonScalar {
    string name;
    string value;
}

/// @notice The named input tensors of one inference.
struct ModelInput {
    MultiDimensionalNumberTensor[] numbers;
    StringTensor[] strings;
}

/// @notice The named output tensors of one inference. Empty when the chain runs the model
/// asynchronously; the result is then read by inference id.
struct ModelOutput {
    MultiDimensionalNumberTensor[] numbers;
    StringTensor[] strings;
    JsonScalar[] jsons;
    bool is_simulation_result;
}

/// @notice What the inference precompile is asked to run. mode: VANILLA 0, ZKML 1, TEE 2.
struct ModelInferenceRequest {
    uint8 mode;
    string modelCID;
    ModelInput input;
}

/// @dev Address of the native inference precompile.
address constant INFERENCE_PRECOMPILE = 0x00000000000000000000000000000000000000F4;

/// @dev Highest valid inference mode (TEE).
uint8 constant MAX_INFERENCE_MODE = 2;

/// @notice The native inference precompile at 0x...F4. It is implemented by the chain, not in
/// Solidity; this interface exists so its selector and event ABI are in the artifacts.
interface IInferencePrecompile {
    /// @notice Emitted by the precompile for every inference; inferenceID identifies the result
    /// of an asynchronous run.
    event ModelInferenceEvent(string inferenceID, ModelInferenceRequest request, ModelOutput response);

    /// @notice Runs an ONNX model. Selector 0x7289e9c2.
    function runModelInference(ModelInferenceRequest memory request) external returns (ModelOutput memory);
}
