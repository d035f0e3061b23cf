"""fastconv.bench: the benchmark tool behind `fastconv bench` (fastconv/bench/cli.py).

cases (the shared problems, the quick suite) · descriptor (oneDNN benchdnn problem descriptors) · suites (quick and
architecture suites derived from fastconv.models) · ops (inputs, calls, FLOPs and bytes per op) · impls (fastconv
backends and the NumPy/torch baselines) · runner (check, then time) · timing · machine (fingerprint) · ceilings and
cpu_probe (GEMM peak, copy bandwidth) · schema and results (the JSON files) · tables, report, plots, compare.
"""
