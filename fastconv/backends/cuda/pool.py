"""Launch code of pool2d.cu, shared by the "cuda" and "cuda-emu" backends (signatures: fastconv.dispatch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...params import AdaptivePoolParams, PoolParams
from .launch import Launcher, suffix

FILE = "pool2d.cu"


def _geometry(p: PoolParams) -> list[np.int32]:
    """POOL_GEOMETRY_PARAMS of pool2d.cu, in order."""
    return [np.int32(v) for v in (p.N, p.C, p.H, p.W, p.P, p.Q, *p.kernel, *p.stride, *p.padding, *p.dilation)]


def _run(launcher: Launcher, kernel: str, dtype: Any, items: int, args: list) -> None:
    """A grid-stride launch over `items` elements (none when there are none)."""
    if items:
        cfg = launcher.grid_stride(items, launcher.tunables(FILE)["POOL_BLOCK"])
        launcher.launch(FILE, f"{kernel}_{suffix(dtype)}", cfg, args)


def max_pool(launcher: Launcher, p: PoolParams, x: Any, need_indices: bool) -> tuple[Any, Any]:
    y = launcher.empty(p.y_shape, p.dtype)
    idx = launcher.empty(p.y_shape if need_indices else (1,), np.int64)
    _run(launcher, "max_pool2d_fwd_v1", p.dtype, y.size, [x, y, idx, np.int32(need_indices), *_geometry(p)])
    return y, (idx if need_indices else None)


def max_pool_bwd(launcher: Launcher, p: PoolParams, gy: Any, x: Any) -> Any:
    _, idx = max_pool(launcher, p, x, True)
    gx = launcher.empty(p.x_shape, p.dtype)
    _run(launcher, "max_pool2d_bwd_v1", p.dtype, gx.size, [gy, idx, gx, *_geometry(p)])
    return gx


def avg_pool(launcher: Launcher, p: PoolParams, x: Any) -> Any:
    y = launcher.empty(p.y_shape, p.dtype)
    _run(launcher, "avg_pool2d_fwd_v1", p.dtype, y.size, [x, y, np.int32(p.count_include_pad), *_geometry(p)])
    return y


def avg_pool_bwd(launcher: Launcher, p: PoolParams, gy: Any) -> Any:
    gx = launcher.empty(p.x_shape, p.dtype)
    _run(launcher, "avg_pool2d_bwd_v1", p.dtype, gx.size, [gy, gx, np.int32(p.count_include_pad), *_geometry(p)])
    return gx


def _adaptive_sizes(p: AdaptivePoolParams) -> list[np.int32]:
    return [np.int32(v) for v in (p.N * p.C, p.H, p.W, p.P, p.Q)]


def adaptive_pool(launcher: Launcher, p: AdaptivePoolParams, x: Any) -> Any:
    y = launcher.empty(p.y_shape, p.dtype)
    _run(launcher, "adaptive_avg_pool2d_fwd_v1", p.dtype, y.size, [x, y, *_adaptive_sizes(p)])
    return y


def adaptive_pool_bwd(
    launcher: Launcher, p: AdaptivePoolParams, gy: Any, kernel: str = "adaptive_avg_pool2d_bwd_v1"
) -> Any:
    """Also the global pooling gradient (P = Q = 1: one window, the whole plane), through its own entry point."""
    gx = launcher.empty(p.x_shape, p.dtype)
    _run(launcher, kernel, p.dtype, gx.size, [gy, gx, *_adaptive_sizes(p)])
    return gx


def global_pool(launcher: Launcher, p: AdaptivePoolParams, x: Any) -> Any:
    """One warp per (n, c) plane."""
    y = launcher.empty(p.y_shape, p.dtype)
    if y.size:
        cfg = launcher.grid_stride(y.size * 32, launcher.tunables(FILE)["POOL_BLOCK"])
        launcher.launch(
            FILE, f"global_avg_pool2d_fwd_v1_{suffix(p.dtype)}", cfg, [x, y, np.int64(p.N * p.C), np.int64(p.H * p.W)]
        )
    return y
