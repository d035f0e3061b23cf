"""Launch code of batchnorm.cu and relu.cu, shared by the "cuda" and "cuda-emu" backends."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...params import BatchNormParams, EltwiseParams
from .launch import Launch, Launcher, suffix

BN, RELU = "batchnorm.cu", "relu.cu"


def _stats(launcher: Launcher, p: BatchNormParams, x: Any) -> tuple[Any, Any]:
    """Batch mean and biased variance per channel."""
    mean, var = launcher.empty((p.C,), p.dtype), launcher.empty((p.C,), p.dtype)
    cfg = Launch((p.C, 1, 1), (launcher.tunables(BN)["BN_BLOCK"], 1, 1))
    launcher.launch(
        BN, f"batch_norm_stats_v1_{suffix(p.dtype)}", cfg, [x, mean, var, np.int32(p.N), np.int32(p.C), np.int64(p.M)]
    )
    return mean, var


def batch_norm(launcher: Launcher, p: BatchNormParams, x: Any, w: Any, b: Any, rm: Any, rv: Any):
    y = launcher.empty(p.shape, p.dtype)
    if not y.size:
        return y, None, None
    mean, var = _stats(launcher, p, x) if p.training else (rm, rv)
    cfg = launcher.grid_stride(y.size, launcher.tunables(BN)["BN_BLOCK"])
    launcher.launch(
        BN,
        f"batch_norm_fwd_v1_{suffix(p.dtype)}",
        cfg,
        [x, mean, var, w, b, y, p.dtype.type(p.eps), np.int64(y.size), np.int32(p.C), np.int64(p.M)],
    )
    return y, (mean if p.training else None), (var if p.training else None)


def batch_norm_bwd(launcher: Launcher, p: BatchNormParams, gy: Any, x: Any, w: Any, rm: Any, rv: Any):
    gx, gw, gb = (launcher.empty(shape, p.dtype) for shape in (p.shape, (p.C,), (p.C,)))
    if not gx.size:
        gw[...], gb[...] = 0, 0
        return gx, gw, gb
    mean, var = _stats(launcher, p, x) if p.training else (rm, rv)
    eps, block = p.dtype.type(p.eps), launcher.tunables(BN)["BN_BLOCK"]
    launcher.launch(
        BN,
        f"batch_norm_bwd_reduce_v1_{suffix(p.dtype)}",
        Launch((p.C, 1, 1), (block, 1, 1)),
        [gy, x, mean, var, gw, gb, eps, np.int32(p.N), np.int32(p.C), np.int64(p.M)],
    )
    launcher.launch(
        BN,
        f"batch_norm_bwd_data_v1_{suffix(p.dtype)}",
        launcher.grid_stride(gx.size, block),
        [gy, x, mean, var, w, gw, gb, gx, eps, np.int32(p.training), np.int64(gx.size), np.int32(p.C), np.int64(p.M)],
    )
    return gx, gw, gb


def _eltwise(launcher: Launcher, kernel: str, p: EltwiseParams, args: list) -> Any:
    out = launcher.empty(p.shape, p.dtype)
    if out.size:
        cfg = launcher.grid_stride(out.size, launcher.tunables(RELU)["ELTWISE_BLOCK"])
        launcher.launch(RELU, f"{kernel}_{suffix(p.dtype)}", cfg, [*args, out, np.int64(out.size)])
    return out


def relu(launcher: Launcher, p: EltwiseParams, x: Any) -> Any:
    return _eltwise(launcher, "relu_fwd_v1", p, [x])


def relu_bwd(launcher: Launcher, p: EltwiseParams, gy: Any, y: Any) -> Any:
    return _eltwise(launcher, "relu_bwd_v1", p, [gy, y])
