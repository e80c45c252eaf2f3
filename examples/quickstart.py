"""API reference, "Quick Start": every call of the sample, run against a local devnet.

The sample's code with two changes: `og.init` is pointed at a devnet (`network=net.network`) and
paid by a funded development key, and "your_model_cid" is a real CID — a tiny ONNX model taking
the sample's input tensor `input` (3 floats) is built and published to the devnet's Model Hub
first. Everything else is the sample: OPG approval, a TEE-verified chat, a streamed chat, and an
on-chain ONNX inference.

Run: python examples/quickstart.py
"""

from __future__ import annotations

import opengradient as og
from opengradient.client.llm import TextGenerationStream


def build_your_model() -> bytes:
    """An ONNX model with one float input `input` [3] and output `output` = input × 2."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["input", "two"], ["output"])],
        "your_model",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [3])],
        initializer=[helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="quickstart")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def main() -> None:
    with og.devnet.start(http=True) as net:
        your_model_cid = net.hub.publish("your-model", build_your_model(), filename="model.onnx")

        # Initialize the client
        client = og.init(private_key=net.accounts[0].private_key, network=net.network)

        # One-time approval (idempotent — skips if allowance is already sufficient)
        approval = client.llm.ensure_opg_approval(opg_amount=5)
        print(f"OPG allowance for Permit2: {approval.allowance_after / 10**18:g} OPG "
              f"(approval transaction: {approval.transaction_hash})")

        # Chat with an LLM (TEE-verified)
        response = client.llm.chat(
            model=og.TEE_LLM.CLAUDE_3_5_HAIKU,
            messages=[{"role": "user", "content": "Hello!"}],
            max_tokens=200,
        )
        assert not isinstance(response, TextGenerationStream)
        print(response.chat_output)

        # Stream a response
        stream = client.llm.chat(
            model=og.TEE_LLM.GPT_4O,
            messages=[{"role": "user", "content": "Explain TEE in one paragraph."}],
            max_tokens=300,
            stream=True,
        )
        assert isinstance(stream, TextGenerationStream)
        for chunk in stream:
            if chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="")
        print()

        # Run on-chain ONNX model inference
        result = client.alpha.infer(
            model_cid=your_model_cid,
            inference_mode=og.InferenceMode.VANILLA,
            model_input={"input": [1.0, 2.0, 3.0]},
        )
        print(result.model_output)


if __name__ == "__main__":
    main()
