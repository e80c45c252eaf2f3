"""Benchmarks for the performance targets; run `python -m bench` from the repository root."""
