"""fastconv.linear (forward) and linear_backward (all three gradients) on the numba backend vs NumPy's matmul
(OpenBLAS) and torch, float32, at 1 and 2 threads, on four layer shapes: ResNet's classifier at N=1
(512 -> 1000), a wide GEMV-like batch (N=8, 2048 -> 1000), LeNet-5's first FC layer at batch 64 (400 -> 120) and
a large GEMM (N=256, 4096 -> 4096).

    OMP_WAIT_POLICY=PASSIVE pytest benchmarks/test_bench_linear.py --benchmark-only --benchmark-json=run.json
    python benchmarks/burst_report.py run.json > bench_results/linear.md

Checked first: every implementation's outputs equal the float64 NumPy reference to float32 tolerance. Timed
interleaved, as benchmarks/test_bench_models.py: one benchmark round runs every implementation once, in an order
that rotates every round, each after a pause long enough for the previous one's threads to go idle (OpenBLAS
spins ~0.1 s after a call); a timing is a burst of back-to-back calls (per call in extra_info). Threads: numba's,
torch's and (threadpoolctl) the BLAS's set to the same count. The numba forward is timed with algo="auto" and with
each algorithm, which is what auto's switch between them (fastconv/backends/numba_cpu/linear.py) is read from.
"""

from __future__ import annotations

import os
import time

import numba
import numpy as np
import pytest
from interleave import interleaved, stats

import fastconv as fc

torch = pytest.importorskip("torch")
threadpoolctl = pytest.importorskip("threadpoolctl")

SHAPES = [(1, 512, 1000), (8, 2048, 1000), (64, 400, 120), (256, 4096, 4096)]  # (N, in, out)
PAUSE = 0.15  # s before each timed burst
TARGET_S = 0.01  # a burst lasts about this long


def _forward(x, w, b) -> dict:
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    fns = {
        f"numba/{a}": (lambda a=a: fc.linear(x, w, b, backend="numba", algo=a))
        for a in ("auto", "linear_dot_v2_rows", "linear_gemm_v3_packed")
    }
    fns["numpy"] = lambda: x @ w.T + b
    fns["torch"] = lambda: torch.nn.functional.linear(tx, tw, tb).numpy()
    return {k: (lambda f=f: (f(),)) for k, f in fns.items()}


def _backward(gy, x, w) -> dict:
    tgy, tx, tw = (torch.from_numpy(a) for a in (gy, x, w))
    return {
        "numba/auto": lambda: fc.linear_backward(gy, x, w, backend="numba"),
        "numpy": lambda: (gy @ w, gy.T @ x, gy.sum(axis=0)),
        "torch": lambda: tuple(t.numpy() for t in (tgy @ tw, tgy.T @ tx, tgy.sum(0))),  # what autograd runs
    }


@pytest.mark.parametrize("nthreads", [2, 1])
@pytest.mark.parametrize("op", ["fwd", "bwd"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"N{n}-{c}to{k}" for n, c, k in SHAPES])
def test_linear(benchmark, shape, op, nthreads):
    n, c, k = shape
    rng = np.random.default_rng(0)
    x, w, b, gy = (rng.standard_normal(s).astype(np.float32) for s in ((n, c), (k, c), (k,), (n, k)))
    f64 = [a.astype(np.float64) for a in (x, w, b, gy)]
    if op == "fwd":
        fns, ref = _forward(x, w, b), (fc.linear(*f64[:3], backend="numpy"),)
    else:
        fns, ref = _backward(gy, x, w), fc.linear_backward(f64[3], *f64[:2], backend="numpy")
    before = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(nthreads)
    torch.set_num_threads(nthreads)
    try:
        with threadpoolctl.threadpool_limits(nthreads, user_api="blas"):
            times, burst = _time(benchmark, fns, ref, 2 * n * c * k)
    finally:
        numba.set_num_threads(before[0])
        torch.set_num_threads(before[1])
    benchmark.group = f"linear {op} N={n} {c}->{k}"
    benchmark.extra_info.update(
        {
            "N": n,
            "in": c,
            "out": k,
            "op": op,
            "threads": nthreads,
            "flops": 2 * n * c * k * (1 if op == "fwd" else 2),
            "auto": [
                s.algo
                for s in (fc.select(fc.linear, x, w, b) if op == "fwd" else fc.select(fc.linear_backward, gy, x, w))
            ],
            "burst": burst,
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
            "torch": torch.__version__,
            "times": {name: stats(ts) for name, ts in times.items()},
        }
    )


def _time(benchmark, fns: dict, ref: tuple, flops: int) -> tuple[dict, int]:
    for name, f in fns.items():  # check first (this also compiles and warms up)
        for got, want in zip(f(), ref):
            err = float(np.abs(got - want).max(initial=0) / max(np.abs(want).max(initial=0), 1e-30))
            assert err < 1e-4, f"{name}: relative error {err:.2e} against the float64 reference"
    start = time.perf_counter()
    fns["numpy"]()
    burst = max(1, int(TARGET_S / max(time.perf_counter() - start, 1e-6)))
    return interleaved(benchmark, fns, 8 if flops < 1e9 else 5, burst, PAUSE), burst
