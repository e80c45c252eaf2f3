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

// ---- Legacy LLM entry points (PROTOCOL.md section 5, "Legacy LLM entry points") ----
// The tuple shapes below fix the selectors of runLLMChat (0xe39aa7e7) and runLLMCompletion
// (0x14800c61) and the topics of LLMChatResult and LLMCompletionResult: do not change them.

/// @notice A tool call of an assistant message; `arguments` is JSON text.
struct ToolCall {
    string id;
    string name;
    string arguments;
}

/// @notice One chat message. Empty strings stand for absent fields.
struct ChatMessage {
    string role;
    string content;
    string name;
    string tool_call_id;
    ToolCall[] tool_calls;
}

/// @notice A function the model may call; `parameters` is a JSON schema as text.
struct ToolDefinition {
    string description;
    string name;
    string parameters;
}

/// @notice A chat request. mode: VANILLA 0, TEE 1. temperature is scaled by 100 (0.7 -> 70);
/// max_tokens 0 leaves the length to the model; tool_choice is "", "auto", "none", "required"
/// or a tool name.
struct LLMChatRequest {
    uint8 mode;
    string modelCID;
    ChatMessage[] messages;
    ToolDefinition[] tools;
    string tool_choice;
    uint32 max_tokens;
    string[] stop_sequence;
    uint32 temperature;
}

/// @notice The answer to a chat request: why it stopped and the assistant message.
struct LLMChatResponse {
    string finish_reason;
    ChatMessage message;
}

/// @notice A text-completion request (same conventions as LLMChatRequest).
struct LLMCompletionRequest {
    uint8 mode;
    string modelCID;
    string prompt;
    uint32 max_tokens;
    string[] stop_sequence;
    uint32 temperature;
}

/// @notice The answer to a completion request.
struct LLMCompletionResponse {
    string answer;
}

/// @dev Address of the native LLM precompile (the devnet's; separate from the ONNX one).
address constant LLM_PRECOMPILE = 0x00000000000000000000000000000000000000f6;

/// @dev Highest valid LLM inference mode (TEE).
uint8 constant MAX_LLM_INFERENCE_MODE = 1;

/// @notice The native LLM precompile at 0x...F6, implemented by the chain.
interface ILLMPrecompile {
    /// @notice Answers a chat request.
    function runLLMChat(LLMChatRequest memory request) external returns (LLMChatResponse memory);

    /// @notice Answers a completion request.
    function runLLMCompletion(LLMCompletionRequest memory request) external returns (LLMCompletionResponse memory);
}
