"""Launch code of linear.cu (and of conv2d_bwd.cu's bias reduction for the bias gradient), shared by the "cuda"
and "cuda-emu" backends. Each product of a linear layer is the one strided GEMM of linear.cu:
Y (M, J) = A (M, R) @ B (R, J) with A[m, r] = a[m*a_m + r*a_r] and B[r, j] = b[r*b_r + j*b_j]."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...params import LinearParams
from .conv import BWD, fits
from .launch import Launch, Launcher, ceil_div, suffix

FILE = "linear.cu"
KERNEL = "linear_gemm_v1_tiled"


def _launch(launcher: Launcher, M: int, J: int) -> Launch:
    t = launcher.tunables(FILE)
    threads = (t["LIN_BM"] // t["LIN_TM"]) * (t["LIN_BN"] // t["LIN_TN"])
    return Launch((ceil_div(J, t["LIN_BN"]), ceil_div(M, t["LIN_BM"]), 1), (threads, 1, 1))


def _product(op: str, p: LinearParams) -> tuple[int, int, int]:
    """(M, J, R) of the GEMM behind a registry op."""
    return {"linear": (p.N, p.K, p.C), "linear_bwd_data": (p.N, p.C, p.K), "linear_bwd_weight": (p.K, p.C, p.N)}[op]


def supports(launcher: Launcher, op: str, p: LinearParams) -> bool:
    M, J, _ = _product(op, p)
    return fits(_launch(launcher, max(M, 1), max(J, 1)))


def _gemm(launcher: Launcher, op: str, p: LinearParams, a: Any, b: Any, bias: Any, strides: tuple) -> Any:
    M, J, R = _product(op, p)
    y = launcher.empty((M, J), p.dtype)
    if y.size:
        bias_arg = bias if bias is not None else launcher.empty((1,), p.dtype)  # never read when has_bias is 0
        launcher.launch(
            FILE,
            f"{KERNEL}_{suffix(p.dtype)}",
            _launch(launcher, M, J),
            [
                a,
                b,
                bias_arg,
                y,
                np.int32(bias is not None),
                np.int32(M),
                np.int32(J),
                np.int32(R),
                *(np.int64(s) for s in strides),
            ],
        )
    return y


def forward(launcher: Launcher, p: LinearParams, x: Any, w: Any, b: Any) -> Any:
    return _gemm(launcher, "linear", p, x, w, b, (p.C, 1, 1, p.C))


def backward_data(launcher: Launcher, p: LinearParams, gy: Any, w: Any) -> Any:
    return _gemm(launcher, "linear_bwd_data", p, gy, w, None, (p.K, 1, p.C, 1))


def backward_weight(launcher: Launcher, p: LinearParams, gy: Any, x: Any) -> Any:
    return _gemm(launcher, "linear_bwd_weight", p, gy, x, None, (1, p.K, p.C, 1))


def backward_bias(launcher: Launcher, p: LinearParams, gy: Any) -> Any:
    """gb[k] = sum_n gy[n, k]: conv2d_bwd.cu's per-channel reduction with one pixel per channel, under its name."""
    gb = launcher.empty((p.K,), p.dtype)
    if p.K:
        cfg = Launch((p.K, 1, 1), (launcher.tunables(BWD)["BWD_REDUCE_BLOCK"], 1, 1))
        launcher.launch(
            BWD,
            f"linear_bwd_bias_v1_reduce_{suffix(p.dtype)}",
            cfg,
            [gy, gb, np.int32(p.N), np.int32(p.K), np.int32(1)],
        )
    return gb
