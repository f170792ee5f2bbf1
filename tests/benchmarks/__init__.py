"""Benchmarks: run with ./scripts/bench (not collected by the test suite)."""
