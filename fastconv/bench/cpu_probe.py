"""Measure this CPU's GEMM peak and copy bandwidth; run as a script in a child process (see ceilings.py).

A child process, because NumPy's BLAS reads its settings (OPENBLAS_CORETYPE, OPENBLAS_NUM_THREADS) when it is
loaded: the parent chooses the environment, this script measures under it and prints one JSON object.
Needs only NumPy and the standard library, so it runs by path without fastconv on sys.path.

    python cpu_probe.py --threads 2 --dtype float32 --gemm-n 2048 --copy-mib 256 --min-time 0.5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def _best_and_median(run, work: float, repeats: int, min_time: float) -> tuple[float, float]:
    """Rates (work / seconds) of repeated runs after one warm-up: the best and the median."""
    run()
    times, spent = [], 0.0
    while len(times) < repeats or spent < min_time:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    return work / min(times), work / statistics.median(times)


def gemm_rate(n: int, dtype: str, repeats: int = 5, min_time: float = 0.5) -> tuple[float, float]:
    """GFLOP/s of numpy.matmul on n x n matrices (2 n^3 FLOPs), best and median."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
    c = np.empty((n, n), dtype)
    return _best_and_median(lambda: np.matmul(a, b, out=c), 2 * n**3 / 1e9, repeats, min_time)


def copy_rate(nbytes: int, threads: int, repeats: int = 5, min_time: float = 0.5) -> tuple[float, float]:
    """GB/s of copying `nbytes` between two buffers, split over `threads` threads (NumPy releases the GIL in
    copyto), counting each byte read and written: 2 * nbytes per copy."""
    src = np.ones(nbytes // 4, np.float32)
    dst = np.zeros_like(src)
    bounds = np.linspace(0, src.size, threads + 1).astype(int)
    parts = [(dst[lo:hi], src[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(threads) as pool:
        return _best_and_median(
            lambda: list(pool.map(lambda p: np.copyto(*p), parts)), 2 * nbytes / 1e9, repeats, min_time
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--gemm-n", type=int, default=2048)
    parser.add_argument("--copy-mib", type=int, default=256, help="0: skip the copy measurement")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds of repeats per measurement")
    args = parser.parse_args()
    gemm = gemm_rate(args.gemm_n, args.dtype, min_time=args.min_time)
    copy = copy_rate(args.copy_mib << 20, args.threads, min_time=args.min_time) if args.copy_mib else None
    print(json.dumps({"gemm": gemm, "copy": copy}))


if __name__ == "__main__":
    main()
