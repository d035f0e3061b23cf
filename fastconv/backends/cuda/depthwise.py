"""Launch code of kernels/conv2d_depthwise.cu (groups == C, K = m*C), shared by the "cuda" and "cuda-emu" backends.

- conv2d_fwd_v14_depthwise_halo, conv2d_bwd_data_v9_depthwise_halo: a grid (plane groups, row tiles, column tiles)
  over the output (the forward) or the input (the data gradient) planes.
- conv2d_bwd_weight_v5_depthwise_halo: a grid (channel groups, chunks) of partial sums, then the fixed-order
  reduction over the chunks (deterministic; no atomics).
A block of up to DW_THREADS threads is `planes` slots of 2^lp x 2^lq threads (`tile`); each slot owns one plane's
tile of 2^lq columns x 2^lp * DW_ROWS rows and stages its input halo (IH x IW) and filters in dynamic shared memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...params import ConvParams, ceil_div
from .conv import geometry
from .igemm import fast_divisor
from .launch import MAX_GRID_YZ, Launch, Launcher, suffix

FILE = "conv2d_depthwise.cu"
FORWARD, DATA, WEIGHT = (
    "conv2d_fwd_v14_depthwise_halo",
    "conv2d_bwd_data_v9_depthwise_halo",
    "conv2d_bwd_weight_v5_depthwise_halo",
)
SMEM = 48 * 1024  # dynamic shared memory without the opt-in
REQUIRES = (
    "groups == C (depthwise), planes below 2^31 elements, the grid and a halo tile within 48 KiB of shared memory"
)


def tile(launcher: Launcher, rows: int, cols: int) -> tuple[int, int, int]:
    """(lq, lp, planes) for a rows x cols plane: 2^lq threads along the columns (the next power of two of cols, at
    most DW_TQ_MAX), 2^lp along the rows (DW_ROWS rows each, at most the block), the rest of the block in planes."""
    threads, per = launcher.tunables(FILE)["DW_THREADS"], launcher.tunables(FILE)["DW_ROWS"]
    lt = threads.bit_length() - 1
    lq = min(lt, launcher.tunables("launch")["DW_TQ_MAX"].bit_length() - 1, (max(cols, 1) - 1).bit_length())
    lp = min(lt - lq, (ceil_div(max(rows, 1), per) - 1).bit_length())
    return lq, lp, threads >> (lq + lp)


def _halo(launcher: Launcher, p: ConvParams, op: str) -> tuple[int, int, int, int, int, int]:
    """(lq, lp, planes, IH, IW, shared bytes): the tile and its halo, gy's for the data gradient (every gy row a tap
    of the 2^lp * DW_ROWS gx rows reaches, at any alignment of the tile), x's otherwise; halving the planes (and
    the block) until the halos fit 48 KiB, where they can."""
    rows, cols = (p.H, p.W) if op == DATA else (p.P, p.Q)
    lq, lp, planes = tile(launcher, rows, cols)
    tp, tq = (1 << lp) * launcher.tunables(FILE)["DW_ROWS"], 1 << lq
    (sh, sw), (dh, dw) = p.stride, p.dilation
    if op == DATA:
        ih, iw = (tp - 1 + (p.R - 1) * dh) // sh + 2, (tq - 1 + (p.S - 1) * dw) // sw + 2
    else:
        ih, iw = (tp - 1) * sh + (p.R - 1) * dh + 1, (tq - 1) * sw + (p.S - 1) * dw + 1
    while True:  # the halos, then the filters (fwd, dgrad) or the reduction over the block's threads (wgrad)
        extra = planes << (lq + lp) if op == WEIGHT else planes * p.Kg * p.R * p.S
        shared = (planes * ih * iw + extra) * p.dtype.itemsize
        if shared <= SMEM or planes == 1:
            return lq, lp, planes, ih, iw, shared
        planes //= 2


def _plane_launch(launcher: Launcher, p: ConvParams, op: str) -> tuple[Launch, list[np.int32]]:
    lq, lp, planes, ih, iw, shared = _halo(launcher, p, op)
    rows, cols = (p.H, p.W) if op == DATA else (p.P, p.Q)
    rows_per_tile = (1 << lp) * launcher.tunables(FILE)["DW_ROWS"]
    grid = (ceil_div(p.N * p.C, planes), ceil_div(rows, rows_per_tile), ceil_div(cols, 1 << lq))
    return Launch(grid, (planes << (lq + lp), 1, 1), shared), [np.int32(v) for v in (lq, lp, ih, iw)]


def _weight_launch(launcher: Launcher, p: ConvParams) -> tuple[Launch, list, int]:
    """The wgrad's first stage: (launch, its extra arguments, chunks). Chunks of (image, tile) units such that
    channel groups x chunks ~ DW_GRID blocks, none empty; a pure function of the shape (fixed reduction order)."""
    lq, lp, planes, ih, iw, shared = _halo(launcher, p, WEIGHT)
    tiles_p = ceil_div(p.P, (1 << lp) * launcher.tunables(FILE)["DW_ROWS"])
    tiles_q = ceil_div(p.Q, 1 << lq)
    units, groups = p.N * tiles_p * tiles_q, ceil_div(p.K, planes)
    want = max(1, min(units, ceil_div(launcher.tunables("launch")["DW_GRID"], groups), MAX_GRID_YZ))
    per = ceil_div(units, want)
    chunks = ceil_div(units, per)
    cfg = Launch((groups, chunks, 1), (planes << (lq + lp), 1, 1), shared)
    return cfg, [np.int32(v) for v in (lq, lp, ih, iw, tiles_p, tiles_q, per)], chunks


def supports(launcher: Launcher, p: ConvParams, op: str = FORWARD) -> bool:
    """Depthwise, every plane and index within 32 bits, the grid within CUDA's limits, the shared memory within 48
    KiB (large strides or dilations with big filters can exceed it: the older kernels take those)."""
    if not p.is_depthwise or max(p.H * p.W, p.P * p.Q, p.N * p.K, p.N * p.C) >= 2**31:
        return False
    if p.N * p.P * p.Q == 0 or p.N * p.H * p.W == 0:
        return True  # nothing is launched
    cfg = _weight_launch(launcher, p)[0] if op == WEIGHT else _plane_launch(launcher, p, op)[0]
    reduce_blocks = ceil_div(p.K * p.R * p.S, launcher.tunables(FILE)["DW_THREADS"])
    fits = cfg.grid[0] < 2**31 and max(*cfg.grid[1:], reduce_blocks) <= MAX_GRID_YZ
    return fits and cfg.shared_bytes <= SMEM


def forward(launcher: Launcher, p: ConvParams, x: Any, w: Any, b: Any) -> Any:
    y = launcher.empty(p.y_shape, p.dtype)
    if y.size:
        cfg, extra = _plane_launch(launcher, p, FORWARD)
        bias = b if b is not None else launcher.empty((1,), p.dtype)  # never read when has_bias is 0
        args = [x, w, bias, y, np.int32(b is not None), *geometry(p), *extra]
        launcher.launch(FILE, f"{FORWARD}_{suffix(p.dtype)}", cfg, args)
    return y


def backward_data(launcher: Launcher, p: ConvParams, gy: Any, w: Any) -> Any:
    gx = launcher.empty(p.x_shape, p.dtype)
    if gx.size:
        if not gy.size:
            gx[...] = 0
            return gx
        cfg, extra = _plane_launch(launcher, p, DATA)
        fast = [*fast_divisor(p.stride[0]), *fast_divisor(p.stride[1])]
        launcher.launch(FILE, f"{DATA}_{suffix(p.dtype)}", cfg, [gy, w, gx, *geometry(p), *extra, *fast])
    return gx


def backward_weight(launcher: Launcher, p: ConvParams, gy: Any, x: Any) -> Any:
    gw, done = launcher.reduction_output(p.w_shape, p.dtype, gy.size)
    if done:
        return gw
    cfg, extra, chunks = _weight_launch(launcher, p)
    part = launcher.empty((chunks, *p.w_shape), p.dtype)
    launcher.launch(FILE, f"{WEIGHT}_{suffix(p.dtype)}", cfg, [gy, x, part, *geometry(p), *extra])
    block = launcher.tunables(FILE)["DW_THREADS"]
    reduce = Launch((1, ceil_div(gw.size, block), 1), (block, 1, 1))
    args = [part, launcher.empty((1,), p.dtype), gw, np.int32(0), np.int32(chunks), np.int64(gw.size)]
    launcher.launch(FILE, f"{WEIGHT}_reduce_{suffix(p.dtype)}", reduce, [*args, np.int32(gw.size), np.int32(1)])
    return gw
