"""Benchmarks for the DESIGN.md targets; run `python -m bench` from the repository root."""
