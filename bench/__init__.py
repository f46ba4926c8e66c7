"""Benchmark harness (run by hand; `python -m bench --quick` is smoke-run by the tests)."""
