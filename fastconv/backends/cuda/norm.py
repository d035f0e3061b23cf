"""Launch code of batchnorm.cu (v1), batchnorm_chunks.cu (v3) and relu.cu, shared by "cuda" and "cuda-emu".

v1: one block per channel for the reductions, grid-stride elementwise kernels. v3 (batch_norm_fwd_v3_chunks,
batch_norm_bwd_v3_chunks): grids (C, S) over S chunks of each channel (`_chunks`), per-block partial moments in a
workspace of 4 * C * S values, merged in a fixed order by the elementwise kernels that follow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...params import BatchNormParams, EltwiseParams, ceil_div
from .launch import Launch, Launcher, suffix

BN, BN_CHUNKS, RELU = "batchnorm.cu", "batchnorm_chunks.cu", "relu.cu"


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


def _eltwise_v3(launcher: Launcher, kernel: str, p: EltwiseParams, args: list) -> Any:
    """A launch of one block per tile of ELTWISE_BLOCK x ELTWISE_ITEMS 16-byte packs, at most MAX_BLOCKS."""
    out = launcher.empty(p.shape, p.dtype)
    if out.size:
        t = launcher.tunables(RELU)
        tile = t["ELTWISE_BLOCK"] * t["ELTWISE_ITEMS"] * (16 // p.dtype.itemsize)
        blocks = min(ceil_div(out.size, tile), launcher.tunables("launch")["MAX_BLOCKS"])
        cfg = Launch((blocks, 1, 1), (t["ELTWISE_BLOCK"], 1, 1))
        launcher.launch(RELU, f"{kernel}_{suffix(p.dtype)}", cfg, [*args, out, np.int64(out.size)])
    return out


def relu(launcher: Launcher, p: EltwiseParams, x: Any, kernel: str = "relu_fwd_v1") -> Any:
    return (_eltwise if kernel == "relu_fwd_v1" else _eltwise_v3)(launcher, kernel, p, [x])


def relu_bwd(launcher: Launcher, p: EltwiseParams, gy: Any, y: Any, kernel: str = "relu_bwd_v1") -> Any:
    return (_eltwise if kernel == "relu_bwd_v1" else _eltwise_v3)(launcher, kernel, p, [gy, y])


# ---------------------------------------------------------------------------------------------- v3
V3_REQUIRES = "N * prod(spatial) + one chunk below 2^31 (32-bit indices per channel)"


def _chunks(launcher: Launcher, p: BatchNormParams) -> tuple[int, int]:
    """(S, chunk): each channel's N*M elements as S chunks of `chunk` elements (the last may be shorter), chunk a
    whole number of tiles of BN_BLOCK x BN_ITEMS 16-byte packs, C * S close to BN_GRID blocks, no chunk empty."""
    t = launcher.tunables(BN_CHUNKS)
    tile = t["BN_BLOCK"] * t["BN_ITEMS"] * (16 // p.dtype.itemsize)
    tiles = max(1, ceil_div(p.N * p.M, tile))
    split = min(tiles, ceil_div(t["BN_GRID"], max(p.C, 1)), 65535)
    per = ceil_div(tiles, split)
    return ceil_div(tiles, per), per * tile


def supports_v3(launcher: Launcher, p: BatchNormParams) -> bool:
    return p.N * p.M + _chunks(launcher, p)[1] < 2**31 and p.C < 2**31


def _grid(launcher: Launcher, p: BatchNormParams) -> tuple[Launch, list]:
    """The (C, S) grid of every v3 kernel of a call and the size arguments they all end with."""
    S, chunk = _chunks(launcher, p)
    cfg = Launch((p.C, S, 1), (launcher.tunables(BN_CHUNKS)["BN_BLOCK"], 1, 1))
    return cfg, [np.int32(p.N), np.int32(p.C), np.int32(p.M), np.int32(chunk)]


def _moments(launcher: Launcher, p: BatchNormParams, kernel: str, arrays: list) -> Any:
    """The partials workspace (4 * C * S values) written by `kernel`: batch_norm_stats_v3_chunks or
    batch_norm_bwd_reduce_v3_chunks."""
    cfg, sizes = _grid(launcher, p)
    ws = launcher.empty((4 * cfg.grid[0] * cfg.grid[1],), p.dtype)
    launcher.launch(BN_CHUNKS, f"{kernel}_{suffix(p.dtype)}", cfg, [*arrays, ws, *sizes])
    return ws


def batch_norm_v3(launcher: Launcher, p: BatchNormParams, x: Any, w: Any, b: Any, rm: Any, rv: Any):
    y = launcher.empty(p.shape, p.dtype)
    if not y.size:
        return y, None, None
    cfg, sizes = _grid(launcher, p)
    if p.training:  # batch statistics out; the running ones are not read
        ws, rm, rv = _moments(launcher, p, "batch_norm_stats_v3_chunks", [x]), w, w
        mean, var = launcher.empty((p.C,), p.dtype), launcher.empty((p.C,), p.dtype)
    else:  # no workspace read, no statistics written
        ws, mean = w, launcher.empty((1,), p.dtype)
        var = mean
    args = [x, ws, rm, rv, w, b, y, mean, var, p.dtype.type(p.eps), np.int32(p.training), *sizes]
    launcher.launch(BN_CHUNKS, f"batch_norm_fwd_v3_chunks_{suffix(p.dtype)}", cfg, args)
    return y, (mean if p.training else None), (var if p.training else None)


def batch_norm_bwd_v3(launcher: Launcher, p: BatchNormParams, gy: Any, x: Any, w: Any, rm: Any, rv: Any):
    gx, gw, gb = (launcher.empty(shape, p.dtype) for shape in (p.shape, (p.C,), (p.C,)))
    if not gx.size:
        gw[...], gb[...] = 0, 0
        return gx, gw, gb
    cfg, sizes = _grid(launcher, p)
    ws = _moments(launcher, p, "batch_norm_bwd_reduce_v3_chunks", [gy, x])
    rm, rv = (w, w) if p.training else (rm, rv)  # the running statistics are not read in training
    args = [gy, x, ws, rm, rv, w, gx, gw, gb, p.dtype.type(p.eps), np.int32(p.training), *sizes]
    launcher.launch(BN_CHUNKS, f"batch_norm_bwd_data_v3_chunks_{suffix(p.dtype)}", cfg, args)
    return gx, gw, gb
