"""Benchmarks: `make bench` and `make bench-quality`."""
