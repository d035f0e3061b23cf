#!/usr/bin/env bash
# One-command GPU proof of the cuda backend: gpu tests at small and production tunables, compute-sanitizer,
# fastconv bench against cuDNN (fp32 and TF32), the memory-bound ops against the device copy bandwidth, and the
# CPU quick suite on the host cores; everything into bench_results/gpu/<machine>-<time>/ (or --out DIR), with a
# summary. For a machine with CuPy, PyTorch, Numba and pytest installed and no package registry: it runs from a
# copied checkout, needs no install, and finishes in under 8 minutes. Options: `--help`; `--dry-run` lists the plan.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-$(command -v python || command -v python3)}"
exec "$PY" -m fastconv gpu-check "$@"
