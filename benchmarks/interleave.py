"""The timing loop shared by the benchmarks that compare implementations on this shared machine.

Implementations of one problem are timed *interleaved*: one benchmark round gives each of them a turn, in an order
that rotates every round, so load from other processes hits all of them alike and their ratios hold. A turn is a
pause (the previous turn's thread pools stop spinning: OpenMP and OpenBLAS spin-wait after a call) and then a burst
of calls back to back, timed per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def interleaved(benchmark, fns: dict[str, Callable], rounds: int, burst: int, pause: float) -> dict[str, list]:
    """Seconds per call of each of `fns` in each of `rounds` rounds, after one warm-up round (dropped). Under
    --benchmark-disable pytest-benchmark runs a single round and no warm-up: that round is kept."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)

    def one_round():
        order.append(order.pop(0))
        for k in order:
            time.sleep(pause)
            t = time.perf_counter()
            for _ in range(burst):
                fns[k]()
            times[k].append((time.perf_counter() - t) / burst)

    benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=1, iterations=1)
    if benchmark.enabled:
        for ts in times.values():
            del ts[0]
    return times


def stats(ts: list[float]) -> dict:
    """Median, interquartile range and minimum of per-call times (seconds), and how many there were."""
    q1, med, q3 = np.percentile(ts, [25, 50, 75])
    return {"median_s": float(med), "iqr_s": float(q3 - q1), "min_s": float(min(ts)), "rounds": len(ts)}
