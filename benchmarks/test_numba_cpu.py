"""pytest-benchmark suite of the numba backend against the NumPy reference and torch, on the shared problems.

    env -u OPENBLAS_CORETYPE pytest benchmarks/test_numba_cpu.py --benchmark-only --benchmark-json=run.json
    python benchmarks/numba_report.py run.json     # -> bench_results/numba_cpu.json + numba_cpu.md

float32; every problem at 2 and 1 threads (numba.set_num_threads and torch.set_num_threads). Each implementation is
checked against the float64 reference when its workload is built, before anything is timed. The machine is shared,
so the implementations of one problem are timed *interleaved*: one benchmark round runs each of them once, in
turn, and its per-implementation times go to extra_info (median, IQR, min over the rounds), so load that comes and
goes hits all of them alike and their ratios hold; the order rotates every round and a short pause precedes each
implementation's turn, so none pays for the spinning threads of the one before it. A turn is a burst of calls
back to back lasting about BURST_S (the same number of calls for every implementation of a problem, from the
checked numba/auto call's time), timed per call, as layers run in a network and as the copy ceiling is measured: a
single call after the pause also pays for waking the VM's idle cores, which dominates a millisecond call (a
2-thread parallel copy of 26 MB measured 7.5 GB/s that way against 24 GB/s back to back). The slow ones (over
SLOW_S per call: the NumPy reference, conv2d_fwd_v1_naive, an algorithm far from its ground) are timed twice beforehand.
The machine ceilings (SGEMM, copy bandwidth) are measured in the same run.
"""

from __future__ import annotations

import functools
import time

import numba
import pytest
import workloads as wl
from interleave import interleaved, stats

from fastconv.bench.cases import CPU_BATCH_NORM, CPU_CONV, CPU_CONV_BACKWARD, CPU_MAX_POOL

THREADS = (2, 1)
ROUNDS = 7
PAUSE = 0.02  # s before each implementation's turn: the previous one's thread pool (OpenMP spin-waits) goes idle
BURST_S = 0.02  # about this long per turn
SLOW_S = 0.25  # an implementation slower than this per call is timed twice, outside the rounds


@functools.cache
def _workload(kind: str, name: str) -> wl.Workload:
    if kind == "conv":
        return wl.conv_forward(next(p for p in CPU_CONV if p.name == name))
    if kind == "conv_bwd":
        return wl.conv_backward(next(p for p in CPU_CONV_BACKWARD if p.name == name))
    if kind == "conv_bwd_weight":
        return wl.conv_bwd_weight(next(p for p in CPU_CONV_BACKWARD if p.name == name))
    if kind == "relu":
        return wl.relu(CPU_BATCH_NORM)
    return wl.max_pool(CPU_MAX_POOL) if kind == "pool" else wl.batch_norm_train(CPU_BATCH_NORM)


CASES = (
    [("conv", p.name) for p in CPU_CONV]
    + [("conv_bwd", p.name) for p in CPU_CONV_BACKWARD]
    + [("conv_bwd_weight", p.name) for p in CPU_CONV_BACKWARD]
    + [("pool", CPU_MAX_POOL.name), ("bn", CPU_BATCH_NORM.name), ("relu", CPU_BATCH_NORM.name)]
)


@pytest.fixture
def threads():
    torch = wl.torch
    before = numba.get_num_threads(), torch.get_num_threads() if torch else None

    def use(n):
        numba.set_num_threads(n)
        if torch:
            torch.set_num_threads(n)

    yield use
    numba.set_num_threads(before[0])
    if torch:
        torch.set_num_threads(before[1])


@pytest.mark.parametrize("nthreads", THREADS)
@pytest.mark.parametrize("kind, name", CASES, ids=[n if k == "conv" else f"{n}-{k}" for k, n in CASES])
def test_numba_cpu(benchmark, threads, kind, name, nthreads):
    work = _workload(kind, name)
    threads(nthreads)
    first = {}
    for k, f in work.fns.items():  # one call each at this thread count: warms up, sorts out the slow ones
        t = time.perf_counter()
        f()
        first[k] = time.perf_counter() - t
    slow = {k: f for k, f in work.fns.items() if first[k] > SLOW_S}
    fast = {k: f for k, f in work.fns.items() if k not in slow}
    times: dict[str, list[float]] = {k: [] for k in slow}
    for k, f in slow.items():
        for _ in range(2):
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)

    burst = max(1, round(BURST_S / first["numba/auto"]))
    benchmark.group = kind
    times |= interleaved(benchmark, fast, ROUNDS, burst, PAUSE)
    benchmark.extra_info.update(
        kind=kind,
        case=work.name,
        threads=nthreads,
        flops=work.flops,
        bytes=work.bytes,
        burst=burst,
        impls={k: stats(v) for k, v in times.items()},
    )


@pytest.mark.parametrize("nthreads", THREADS)
def test_ceilings(benchmark, nthreads):
    """SGEMM (numpy BLAS, OPENBLAS_CORETYPE unset, fresh process) and parallel copy bandwidth."""
    benchmark.group = "ceilings"
    benchmark.extra_info.update(
        kind="ceiling", threads=nthreads, sgemm_gflops=wl.sgemm_gflops(nthreads), copy_gbs=wl.copy_gbs(nthreads)
    )
    benchmark.pedantic(lambda: None, rounds=1)
