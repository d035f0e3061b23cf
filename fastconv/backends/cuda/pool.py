"""Launch code of pool2d.cu, shared by the "cuda" and "cuda-emu" backends (signatures: fastconv.dispatch).

v1: grid-stride, one thread per element. v3 (max/avg pool forward and backward): blocks of POOL_BLOCK threads as
planes x rows x columns tiles of powers of two (`_tile`), the backward with its windows in dynamic shared memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...params import AdaptivePoolParams, PoolParams, ceil_div
from .launch import Launch, Launcher, suffix

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


# ---------------------------------------------------------------------------------------------- v3
V3_REQUIRES = "POOL_BLOCK a power of two, planes below 2^31 elements, the grid and 48 KiB of shared memory"
_SMEM = 48 * 1024


def _tile(block: int, rows: int, cols: int) -> tuple[int, int, int]:
    """(lw, lh, planes): a tile of `block` threads as planes x 2^lh rows x 2^lw columns, at most 32 columns, rows
    and columns no more than the next powers of two of the sizes, the rest of the block in planes."""
    lb = block.bit_length() - 1
    lw = min(5, lb, (cols - 1).bit_length())
    lh = min(lb - lw, (rows - 1).bit_length())
    return lw, lh, block >> (lw + lh)


def _launch_v3(launcher: Launcher, p: PoolParams, rows: int, cols: int, smem: Any = None) -> tuple[Launch, list]:
    """The v3 launch over a rows x cols plane (the output for forwards, the input for backwards) and the tile
    arguments (lw, lh, and with `smem` the window counts WPS, WQS the shared arrays hold per plane)."""
    block = launcher.tunables(FILE)["POOL_BLOCK"]
    lw, lh, planes = _tile(block, rows, cols)
    grid = (ceil_div(p.N * p.C, planes), ceil_div(rows, 1 << lh), ceil_div(cols, 1 << lw))
    extra, shared = [np.int32(lw), np.int32(lh)], 0
    if smem is not None:
        wps, wqs, shared = _windows(p, lw, lh, planes)
        extra += [np.int32(wps), np.int32(wqs)]
    return Launch(grid, (block, 1, 1), shared), extra


def _windows(p: PoolParams, lw: int, lh: int, planes: int) -> tuple[int, int, int]:
    """Most windows covering 2^lh input rows (2^lw columns), and the backward's shared memory in bytes."""
    (kh, kw), (sh, sw), (dh, dw) = p.kernel, p.stride, p.dilation
    wps, wqs = ((1 << lh) - 1 + (kh - 1) * dh) // sh + 1, ((1 << lw) - 1 + (kw - 1) * dw) // sw + 1
    return wps, wqs, planes * wps * wqs * (p.dtype.itemsize + 4) + ((1 << lh) * kh + (1 << lw) * kw) * 4


def supports_v3(launcher: Launcher, p: PoolParams, backward: bool = False) -> bool:
    block = launcher.tunables(FILE)["POOL_BLOCK"]
    rows, cols = (p.H, p.W) if backward else (p.P, p.Q)
    lw, lh, planes = _tile(block, max(rows, 1), max(cols, 1))
    fits = ceil_div(rows, 1 << lh) <= 65535 and ceil_div(cols, 1 << lw) <= 65535 and p.N * p.C < 2**31 * planes
    small = p.H * p.W < 2**31 and p.P * p.Q < 2**31
    return block & (block - 1) == 0 and fits and small and (not backward or _windows(p, lw, lh, planes)[2] <= _SMEM)


def max_pool_v3(launcher: Launcher, p: PoolParams, x: Any, need_indices: bool) -> tuple[Any, Any]:
    y = launcher.empty(p.y_shape, p.dtype)
    idx = launcher.empty(p.y_shape if need_indices else (1,), np.int64)
    if y.size:
        cfg, tile = _launch_v3(launcher, p, p.P, p.Q)
        args = [x, y, idx, np.int32(need_indices), *tile, *_geometry(p)]
        launcher.launch(FILE, f"max_pool2d_fwd_v3_tiles_{suffix(p.dtype)}", cfg, args)
    return y, (idx if need_indices else None)


def max_pool_bwd_v3(launcher: Launcher, p: PoolParams, gy: Any, x: Any) -> Any:
    """Recomputes each window's argmax in the backward (no indices reach it), once per window and block."""
    gx = launcher.empty(p.x_shape, p.dtype)
    if gx.size:
        cfg, tile = _launch_v3(launcher, p, p.H, p.W, smem=True)
        launcher.launch(FILE, f"max_pool2d_bwd_v3_tiles_{suffix(p.dtype)}", cfg, [gy, x, gx, *tile, *_geometry(p)])
    return gx


def avg_pool_v3(launcher: Launcher, p: PoolParams, x: Any) -> Any:
    y = launcher.empty(p.y_shape, p.dtype)
    if y.size:
        cfg, tile = _launch_v3(launcher, p, p.P, p.Q)
        args = [x, y, np.int32(p.count_include_pad), *tile, *_geometry(p)]
        launcher.launch(FILE, f"avg_pool2d_fwd_v3_tiles_{suffix(p.dtype)}", cfg, args)
    return y


def avg_pool_bwd_v3(launcher: Launcher, p: PoolParams, gy: Any) -> Any:
    gx = launcher.empty(p.x_shape, p.dtype)
    if gx.size:
        cfg, tile = _launch_v3(launcher, p, p.H, p.W, smem=True)
        args = [gy, gx, np.int32(p.count_include_pad), *tile, *_geometry(p)]
        launcher.launch(FILE, f"avg_pool2d_bwd_v3_tiles_{suffix(p.dtype)}", cfg, args)
    return gx
