"""Launch code of kernels/conv2d_gemm.cu: 1x1, stride-1, unpadded, ungrouped convolutions as plain GEMMs, shared
by the "cuda" and "cuda-emu" backends.

- conv2d_fwd_v15_gemm: y[n] = w (K x C) . x[n] (C x HW) + b, on the weights as they are (a (K, C) matrix).
- conv2d_bwd_data_v10_gemm: gx[n] = w^T (C x K) . gy[n] (K x HW), the same kernel on a (C, K) copy of w.
- conv2d_fwd_v16_gemm_mma: the forward on tensor cores, precision "tf32" or "bf16" on float32, sm_80+.
The kernel takes its 16-byte load path by itself where HW and the reduction length are multiples of 16 bytes and
the arrays are aligned, element loads otherwise. Split-K over the channels as the implicit GEMMs split
(igemm.split_count), reduced in split order by conv2d_fwd.cu's conv2d_fwd_splitk_reduce: deterministic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import arrays
from ...params import ConvParams, ceil_div
from . import igemm
from .launch import MAX_GRID_YZ, Launch, Launcher, suffix

FILE = "conv2d_gemm.cu"
FORWARD, DATA, MMA_FORWARD = "conv2d_fwd_v15_gemm", "conv2d_bwd_data_v10_gemm", "conv2d_fwd_v16_gemm_mma"
REQUIRES = "a 1x1 kernel, stride 1, no padding, groups 1, 32-bit pixel and tensor indices, the grid"
MMA_REQUIRES = f"precision 'tf32' or 'bf16' on float32, a device of compute capability 8.0+, and {REQUIRES}"


def tile(launcher: Launcher, algo: str, dtype: Any) -> tuple[int, int, int, int]:
    """(BM, BN, BK, threads): G1_ tiles (half each way for float64), G1T_ tensor-core tiles."""
    t = launcher.tunables(FILE)
    if algo == MMA_FORWARD:
        bm, bn, bk = t["G1T_BM"], t["G1T_BN"], t["G1T_BK"]
        return bm, bn, bk, 32 * (bm // t["G1T_WM"]) * (bn // t["G1T_WN"])
    half = 2 if np.dtype(dtype) == np.float64 else 1
    bm, bn = t["G1_BM"] // half, t["G1_BN"] // half
    return bm, bn, t["G1_BK"], (t["G1_BM"] // t["G1_TM"]) * (t["G1_BN"] // t["G1_TN"])


def _launch(launcher: Launcher, algo: str, p: ConvParams, m: int, kd: int) -> tuple[Launch, int]:
    """The launch of out (N, m, HW) = A (m x kd) . B[n] (kd x HW), and its split count."""
    bm, bn, bk, threads = tile(launcher, algo, p.dtype)
    blocks = (ceil_div(p.N * p.H * p.W, bn), ceil_div(m, bm))
    splits = igemm.split_count(launcher, blocks[0] * blocks[1], ceil_div(kd, bk))
    return Launch((*blocks, splits), (threads, 1, 1)), splits


def supports(launcher: Launcher, p: ConvParams, algo: str = FORWARD) -> bool:
    if not (p.is_pointwise and p.groups == 1):
        return False
    if algo == MMA_FORWARD and not (
        p.dtype == np.float32 and p.precision in igemm.MMA_PRECISIONS and launcher.compute_capability() >= 80
    ):
        return False
    m, kd = (p.C, p.K) if algo == DATA else (p.K, p.C)
    cfg, _ = _launch(launcher, algo, p, m, kd)
    sizes = (p.N * p.H * p.W, m * kd, max(m, kd) * p.H * p.W)
    return cfg.grid[0] < 2**31 and cfg.grid[1] <= MAX_GRID_YZ and max(sizes) < 2**31


def _run(launcher: Launcher, algo: str, p: ConvParams, a: Any, bm: Any, bias: Any, out: Any, m: int, kd: int) -> None:
    """out (N, m, H, W) = a (m x kd) . bm[n] (kd x H*W) (+ bias), split-K through a workspace where the shape asks."""
    cfg, splits = _launch(launcher, algo, p, m, kd)
    name = f"{algo}_{p.precision}_f32" if algo == MMA_FORWARD else f"{algo}_{suffix(p.dtype)}"
    hw = p.H * p.W
    fast = list(igemm.fast_divisor(hw))
    sizes = [np.int32(v) for v in (p.N, m, kd, hw, splits)]
    no_bias = launcher.empty((1,), p.dtype)  # never read when has_bias is 0
    if splits == 1:
        args = [a, bm, bias if bias is not None else no_bias, out, np.int32(bias is not None)]
        launcher.launch(FILE, name, cfg, [*args, *sizes, np.int64(0), *fast])
        return
    part = launcher.empty((splits, *out.shape), p.dtype)
    launcher.launch(FILE, name, cfg, [a, bm, no_bias, part, np.int32(0), *sizes, np.int64(out.size), *fast])
    igemm._reduce(launcher, igemm.FWD, part, bias, out, splits, p.N * m, hw, m, "V1_BLOCK")


def forward(launcher: Launcher, p: ConvParams, x: Any, w: Any, b: Any, algo: str = FORWARD) -> Any:
    y = launcher.empty(p.y_shape, p.dtype)
    if y.size:
        _run(launcher, algo, p, w, x, b, y, p.K, p.C)  # w (K, C, 1, 1) is the (K, C) matrix as it is
    return y


def backward_data(launcher: Launcher, p: ConvParams, gy: Any, w: Any, algo: str = DATA) -> Any:
    gx = launcher.empty(p.x_shape, p.dtype)
    if gx.size:
        wt = arrays.array_module(launcher.kind).ascontiguousarray(w.reshape(p.K, p.C).T)  # (C, K)
        _run(launcher, algo, p, wt, gy, None, gx, p.C, p.K)
    return gx
