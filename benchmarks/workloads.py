"""Benchmark workloads over the shared problems of fastconv.bench.cases, reusable outside pytest-benchmark.

A workload builds float32 inputs for one problem, checks every implementation once against the float64 NumPy reference
(raising AssertionError on a wrong answer, before anything is timed) and returns the callables to time, with the FLOPs
(2 per multiply-add) and the minimal bytes moved (each input read once, each output written once) that turn a time into
GFLOP/s and GB/s. Implementations: numba (each conv algorithm and auto), the numpy reference, and torch.nn.functional on
NCHW and channels_last tensors when torch is installed; the conv forward also times numba's conv2d_fwd_v9_nhwc on the
channels_last x it is made for and, against it, that x copied to NCHW for auto's NCHW choice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import fastconv as fc
from fastconv import dispatch
from fastconv.bench.cases import ConvProblem, NormProblem, PoolProblem

try:
    import torch
except ImportError:  # torch is an optional comparison
    torch = None

F64 = np.float64


@dataclass
class Workload:
    name: str
    flops: float
    bytes: float
    fns: dict[str, Callable[[], object]] = field(default_factory=dict)


def _check(name: str, got, ref, tol: float = 2e-4) -> None:
    got, ref = np.asarray(got, dtype=F64), np.asarray(ref)
    err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)
    assert err <= tol, f"{name}: relative max error {err:.3g} against the float64 reference"


def _inputs(shape_x, shape_w, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape_x).astype(np.float32)
    w = (rng.standard_normal(shape_w) / np.sqrt(np.prod(shape_w[1:]))).astype(np.float32)
    return rng, x, w


def _torch_tensors(*arrays, channels_last=False):
    out = [torch.from_numpy(a) for a in arrays]
    if channels_last:
        out = [t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 else t for t in out]
    return out


# A channels_last x either read in place by conv2d_fwd_v9_nhwc or copied to NCHW for the NCHW table's choice: the
# evidence for how auto treats channels_last inputs (numba_cpu/selection.py).
NHWC_ON_CL = "numba/conv2d_fwd_v9_nhwc (channels_last x)"
NCHW_ON_CL = "numba/auto after a copy to NCHW (channels_last x)"


def conv_forward(pr: ConvProblem, algos: list[str] | None = None) -> Workload:
    """y = conv2d(x, w, b): every numba conv algorithm that supports the problem, auto, numpy, torch."""
    rng, x, w = _inputs(pr.x_shape, pr.w_shape)
    b = rng.standard_normal(pr.K).astype(np.float32)
    ref = fc.conv2d(x.astype(F64), w.astype(F64), b.astype(F64), backend="numpy", **pr.kwargs)
    macs = ref.size * np.prod(pr.w_shape[1:])
    wl = Workload(pr.name, 2.0 * macs, 4.0 * (x.size + w.size + ref.size))
    names = algos if algos is not None else dispatch.algos("conv2d", "numba")
    for algo in ["auto", *names]:
        try:
            fc.select(fc.conv2d, x, w, b, algo=algo, **pr.kwargs)
        except ValueError:  # the algorithm does not support this problem
            continue
        wl.fns[f"numba/{algo}"] = lambda a=algo: fc.conv2d(x, w, b, algo=a, **pr.kwargs)
    wl.fns["numpy"] = lambda: fc.conv2d(x, w, b, backend="numpy", **pr.kwargs)
    x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # as torch's channels_last
    wl.fns[NHWC_ON_CL] = lambda: fc.conv2d(x_cl, w, b, algo="conv2d_fwd_v9_nhwc", **pr.kwargs)
    wl.fns[NCHW_ON_CL] = lambda: fc.conv2d(np.ascontiguousarray(x_cl), w, b, **pr.kwargs)
    if torch is not None:
        for layout, cl in (("nchw", False), ("channels_last", True)):
            tx, tw, tb = _torch_tensors(x, w, b, channels_last=cl)
            wl.fns[f"torch/{layout}"] = lambda tx=tx, tw=tw, tb=tb: torch.nn.functional.conv2d(tx, tw, tb, **pr.kwargs)
    for name, fn in wl.fns.items():
        _check(f"{pr.name} {name}", np.asarray(fn()), ref)
    return wl


def conv_backward(pr: ConvProblem) -> Workload:
    """(grad_x, grad_w) of conv2d: numba auto, numpy, and torch autograd (backward only: the forward is timed
    separately and its time is not included)."""
    rng, x, w = _inputs(pr.x_shape, pr.w_shape)
    y = fc.conv2d(x.astype(F64), w.astype(F64), backend="numpy", **pr.kwargs)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    ref = fc.conv2d_backward(
        gy.astype(F64), x.astype(F64), w.astype(F64), backend="numpy", need_bias=False, **pr.kwargs
    )
    wl = Workload(f"{pr.name}_bwd", 2 * 2.0 * y.size * np.prod(pr.w_shape[1:]), 4.0 * 2 * (x.size + w.size + gy.size))
    kw = dict(need_bias=False, **pr.kwargs)
    wl.fns["numba/auto"] = lambda: fc.conv2d_backward(gy, x, w, **kw)[:2]
    wl.fns["numpy"] = lambda: fc.conv2d_backward(gy, x, w, backend="numpy", **kw)[:2]
    if torch is not None:
        for layout, cl in (("nchw", False), ("channels_last", True)):
            tx, tw, tg = _torch_tensors(x, w, gy, channels_last=cl)
            tx.requires_grad_(True)
            tw.requires_grad_(True)
            ty = torch.nn.functional.conv2d(tx, tw, **pr.kwargs)
            wl.fns[f"torch/{layout}"] = lambda ty=ty, tx=tx, tw=tw, tg=tg: torch.autograd.grad(
                ty, (tx, tw), tg, retain_graph=True
            )
    for name, fn in wl.fns.items():
        for got, want in zip(fn(), ref):
            _check(f"{wl.name} {name}", np.asarray(got.detach() if hasattr(got, "detach") else got), want)
    return wl


def conv_bwd_weight(pr: ConvProblem) -> Workload:
    """grad_weight alone: every numba bwd-weight algorithm that supports the problem (the evidence for its
    selection rule), auto, numpy and torch autograd with respect to the weight only."""
    rng, x, w = _inputs(pr.x_shape, pr.w_shape)
    y = fc.conv2d(x.astype(F64), w.astype(F64), backend="numpy", **pr.kwargs)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    kw = dict(need_input=False, need_bias=False, **pr.kwargs)
    ref = fc.conv2d_backward(gy.astype(F64), x.astype(F64), w.astype(F64), backend="numpy", **kw)[1]
    wl = Workload(f"{pr.name}_bwd_weight", 2.0 * y.size * np.prod(pr.w_shape[1:]), 4.0 * (x.size + w.size + gy.size))
    for algo in ["auto", *dispatch.algos("conv2d_bwd_weight", "numba")]:
        try:
            fc.select(fc.conv2d_backward, gy, x, w, algo=algo, **kw)
        except ValueError:  # the algorithm does not support this problem
            continue
        wl.fns[f"numba/{algo}"] = lambda a=algo: fc.conv2d_backward(gy, x, w, algo=a, **kw)[1]
    wl.fns["numpy"] = lambda: fc.conv2d_backward(gy, x, w, backend="numpy", **kw)[1]
    if torch is not None:
        for layout, cl in (("nchw", False), ("channels_last", True)):
            tx, tw, tg = _torch_tensors(x, w, gy, channels_last=cl)
            tw.requires_grad_(True)
            ty = torch.nn.functional.conv2d(tx, tw, **pr.kwargs)
            wl.fns[f"torch/{layout}"] = lambda ty=ty, tw=tw, tg=tg: torch.autograd.grad(ty, tw, tg, retain_graph=True)[
                0
            ]
    for name, fn in wl.fns.items():
        got = fn()
        _check(f"{wl.name} {name}", np.asarray(got.detach() if hasattr(got, "detach") else got), ref)
    return wl


def max_pool(pr: PoolProblem) -> Workload:
    x = np.random.default_rng(0).standard_normal((pr.N, pr.C, pr.H, pr.W)).astype(np.float32)
    ref = fc.max_pool2d(x.astype(F64), **pr.kwargs, backend="numpy")
    wl = Workload(pr.name, 0.0, 4.0 * (x.size + ref.size))
    wl.fns["numba/auto"] = lambda: fc.max_pool2d(x, **pr.kwargs)
    wl.fns["numpy"] = lambda: fc.max_pool2d(x, **pr.kwargs, backend="numpy")
    if torch is not None:
        for layout, cl in (("nchw", False), ("channels_last", True)):
            (tx,) = _torch_tensors(x, channels_last=cl)
            wl.fns[f"torch/{layout}"] = lambda tx=tx: torch.nn.functional.max_pool2d(tx, **pr.kwargs)
    for name, fn in wl.fns.items():
        _check(f"{pr.name} {name}", np.asarray(fn()), ref, 0.0)
    return wl


def batch_norm_train(pr: NormProblem) -> Workload:
    """Training-mode forward (batch statistics, running-stat update) then backward: x and gy read, y and gx
    written, as the minimal traffic."""
    rng = np.random.default_rng(0)
    shape = (pr.N, pr.C, pr.H, pr.W)
    x, gy = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)
    w, b = rng.standard_normal(pr.C).astype(np.float32), rng.standard_normal(pr.C).astype(np.float32)
    ref = fc.batch_norm_backward(gy.astype(F64), x.astype(F64), None, None, w.astype(F64), True, backend="numpy")
    wl = Workload(pr.name, 0.0, 4.0 * 4 * x.size)

    def ours(backend=None):
        rm, rv = np.zeros(pr.C, np.float32), np.ones(pr.C, np.float32)
        fc.batch_norm(x, rm, rv, w, b, training=True, backend=backend)
        return fc.batch_norm_backward(gy, x, rm, rv, w, True, backend=backend)[0]

    wl.fns["numba/auto"] = ours
    wl.fns["numpy"] = lambda: ours("numpy")
    if torch is not None:
        for layout, cl in (("nchw", False), ("channels_last", True)):
            tx, tg = _torch_tensors(x, gy, channels_last=cl)
            tw, tb = torch.from_numpy(w), torch.from_numpy(b)

            def theirs(tx=tx, tg=tg, tw=tw, tb=tb):
                xx = tx.detach().requires_grad_(True)
                y = torch.nn.functional.batch_norm(xx, tw, tb, torch.zeros(pr.C), torch.ones(pr.C), training=True)
                return torch.autograd.grad(y, xx, tg)[0]

            wl.fns[f"torch/{layout}"] = theirs
    for name, fn in wl.fns.items():
        got = fn()
        _check(f"{pr.name} {name}", np.asarray(got.detach() if hasattr(got, "detach") else got), ref[0], 1e-3)
    return wl


def relu(pr: NormProblem) -> Workload:
    """relu(x) on the batch-norm problem's shape: x read, y written (the copy's traffic)."""
    x = np.random.default_rng(0).standard_normal((pr.N, pr.C, pr.H, pr.W)).astype(np.float32)
    ref = fc.relu(x.astype(F64), backend="numpy")
    wl = Workload(f"relu_{pr.N}x{pr.C}x{pr.H}x{pr.W}", 0.0, 4.0 * 2 * x.size)
    wl.fns["numba/auto"] = lambda: fc.relu(x)
    wl.fns["numpy"] = lambda: fc.relu(x, backend="numpy")
    if torch is not None:
        for layout, cl in (("nchw", False), ("channels_last", True)):
            (tx,) = _torch_tensors(x, channels_last=cl)
            wl.fns[f"torch/{layout}"] = lambda tx=tx: torch.relu(tx)
    for name, fn in wl.fns.items():
        _check(f"{wl.name} {name}", np.asarray(fn()), ref, 0.0)
    return wl


# ---------------------------------------------------------------------------------------------- ceilings
_SGEMM = """
import time, numpy as np
n = 2048
a, b = np.random.rand(n, n).astype(np.float32), np.random.rand(n, n).astype(np.float32)
a @ b
ts = []
for _ in range({reps}):
    t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)
print(2 * n**3 / np.median(ts) / 1e9)
"""


def sgemm_gflops(threads: int, reps: int = 7) -> float:
    """Median SGEMM GFLOP/s of numpy's BLAS (2048^3) in a fresh process with `threads` threads and
    OPENBLAS_CORETYPE unset (set, it selects a slower kernel on these machines)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run(
        [sys.executable, "-c", _SGEMM.format(reps=reps)], env=env, check=True, capture_output=True, text=True
    ).stdout
    return float(out.strip())


def _copy_kernel():
    from numba import njit, prange  # noqa: PLC0415 - numba is loaded with the backend anyway

    @njit(parallel=True)
    def copy(src, dst, chunk):
        for i in prange((src.size + chunk - 1) // chunk):
            a, b = src[i * chunk : (i + 1) * chunk], dst[i * chunk : (i + 1) * chunk]
            for j in range(a.size):
                b[j] = a[j]

    return copy


def copy_gbs(threads: int, reps: int = 9, mb: int = 64) -> float:
    """Median copy bandwidth (bytes read + bytes written per second) of a parallel copy of `mb` MiB."""
    import numba  # noqa: PLC0415

    copy = _copy_kernel()
    src = np.random.default_rng(0).random(mb << 18, np.float32)
    dst = np.empty_like(src)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        copy(src, dst, 1 << 16)
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            copy(src, dst, 1 << 16)
            ts.append(time.perf_counter() - t)
    finally:
        numba.set_num_threads(before)
    return 2 * src.nbytes / float(np.median(ts)) / 1e9
