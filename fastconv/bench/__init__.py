"""Benchmarking: the shared case tables (cases.py); the runner, results and reports build on them."""
