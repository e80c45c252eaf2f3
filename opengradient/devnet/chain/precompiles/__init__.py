"""Precompiles of the Alpha chain: ONNX inference at `0x…F4`, price history at `0x…F5`, the legacy
LLM entry points at `0x…F6`."""
