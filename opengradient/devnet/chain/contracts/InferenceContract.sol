// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {
    IInferencePrecompile,
    ILLMPrecompile,
    INFERENCE_PRECOMPILE,
    LLM_PRECOMPILE,
    LLMChatRequest,
    LLMChatResponse,
    LLMCompletionRequest,
    LLMCompletionResponse,
    MAX_INFERENCE_MODE,
    MAX_LLM_INFERENCE_MODE,
    ModelInferenceRequest,
    ModelInput,
    ModelOutput
} from "./InferenceTypes.sol";

/// @title OGInference
/// @notice The Alpha chain's inference entry point: forwards a request to the native inference
/// precompile and publishes the output as an event the SDK decodes from the receipt.
/// @dev Installed at genesis by placing its runtime bytecode at a fixed address, so it must not
/// rely on a constructor, immutables or initialised storage.
contract OGInference {
    /// @notice The model output of one run(); empty when the chain runs the model asynchronously.
    event InferenceResult(ModelOutput output);

    /// @notice The answer of one runLLMChat().
    event LLMChatResult(LLMChatResponse response);

    /// @notice The answer of one runLLMCompletion().
    event LLMCompletionResult(LLMCompletionResponse response);

    /// @notice Runs model `modelId` in `inferenceMode` (VANILLA 0, ZKML 1, TEE 2). Selector 0xcbf09d80.
    /// @dev The precompile is called with a low-level call because it has no code (a high-level
    /// call would revert on the extcodesize check); its revert data is bubbled up unchanged.
    function run(string calldata modelId, uint8 inferenceMode, ModelInput calldata modelInput)
        external
        returns (ModelOutput memory output)
    {
        require(
            inferenceMode <= MAX_INFERENCE_MODE,
            "invalid inference mode: expected 0 (VANILLA), 1 (ZKML) or 2 (TEE)"
        );
        ModelInferenceRequest memory request = ModelInferenceRequest({
            mode: inferenceMode,
            modelCID: modelId,
            input: modelInput
        });
        (bool ok, bytes memory returned) =
            INFERENCE_PRECOMPILE.call(abi.encodeCall(IInferencePrecompile.runModelInference, (request)));
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(returned, 0x20), mload(returned))
            }
        }
        // A call to an address without code succeeds with no data: the chain lacks the precompile.
        require(returned.length != 0, "inference precompile returned no data");
        output = abi.decode(returned, (ModelOutput));
        emit InferenceResult(output);
    }

    /// @notice Legacy LLM chat (mode VANILLA 0 or TEE 1) answered by the LLM precompile.
    /// Selector 0xe39aa7e7.
    function runLLMChat(LLMChatRequest calldata request) external returns (LLMChatResponse memory response) {
        require(request.mode <= MAX_LLM_INFERENCE_MODE, "invalid LLM inference mode: expected 0 (VANILLA) or 1 (TEE)");
        bytes memory returned = _callLLM(abi.encodeCall(ILLMPrecompile.runLLMChat, (request)));
        response = abi.decode(returned, (LLMChatResponse));
        emit LLMChatResult(response);
    }

    /// @notice Legacy LLM text completion (mode VANILLA 0 or TEE 1) answered by the LLM precompile.
    /// Selector 0x14800c61.
    function runLLMCompletion(LLMCompletionRequest calldata request)
        external
        returns (LLMCompletionResponse memory response)
    {
        require(request.mode <= MAX_LLM_INFERENCE_MODE, "invalid LLM inference mode: expected 0 (VANILLA) or 1 (TEE)");
        bytes memory returned = _callLLM(abi.encodeCall(ILLMPrecompile.runLLMCompletion, (request)));
        response = abi.decode(returned, (LLMCompletionResponse));
        emit LLMCompletionResult(response);
    }

    /// @dev Low-level call to the LLM precompile (no code, so no high-level call); reverts bubble up.
    function _callLLM(bytes memory data) private returns (bytes memory returned) {
        bool ok;
        (ok, returned) = LLM_PRECOMPILE.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(returned, 0x20), mload(returned))
            }
        }
        require(returned.length != 0, "LLM precompile returned no data");
    }
}
