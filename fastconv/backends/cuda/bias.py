"""Launch code of kernels/bias_grad.cu: the conv2d and linear bias gradients as two-stage reductions over 2-D grids
(channel x chunk for conv, column tile x row chunk for linear), shared by the "cuda" and "cuda-emu" backends.

The chunks are a pure function of the shape and the tunables (BIAS_GRID blocks aimed at, none empty), and the
second stage adds them in chunk order, so the result repeats bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...params import ConvParams, LinearParams, ceil_div
from .launch import MAX_GRID_YZ, Launch, Launcher, suffix

FILE = "bias_grad.cu"
CONV, LINEAR = "conv2d_bwd_bias_v3_chunks", "linear_bwd_bias_v3_chunks"
REQUIRES = "fewer than 2^31 elements per channel and a grid within CUDA's limits"


def conv_chunks(launcher: Launcher, K: int, count: int) -> tuple[int, int]:
    """(chunk, chunks): channel k's `count` gradients in chunks of a whole number of 4-element packs per thread
    of a block, at least one tile (BIAS_BLOCK x 4 elements), enough that K x chunks ~ BIAS_GRID."""
    block, grid = launcher.tunables(FILE)["BIAS_BLOCK"], launcher.tunables("launch")["BIAS_GRID"]
    tile = 4 * block
    chunk = max(tile, ceil_div(ceil_div(count, max(1, ceil_div(grid, max(K, 1)))), tile) * tile)
    return chunk, ceil_div(count, chunk)


def linear_chunks(launcher: Launcher, N: int, K: int) -> tuple[int, int]:
    """(rows, chunks): row chunks of at least BIAS_BLOCK / 2 rows, enough that column tiles x chunks ~ BIAS_GRID."""
    block, grid = launcher.tunables(FILE)["BIAS_BLOCK"], launcher.tunables("launch")["BIAS_GRID"]
    rows = max(block // 2, ceil_div(N, max(1, ceil_div(grid, max(ceil_div(K, 32), 1)))))
    return rows, ceil_div(N, rows)


def conv_supports(launcher: Launcher, p: ConvParams) -> bool:
    count = p.N * p.P * p.Q
    chunks = conv_chunks(launcher, p.K, max(count, 1))[1]
    return count < 2**31 and chunks <= MAX_GRID_YZ and _reduce_fits(launcher, p.K)


def linear_supports(launcher: Launcher, p: LinearParams) -> bool:
    chunks = linear_chunks(launcher, max(p.N, 1), p.K)[1]
    return p.N < 2**31 and chunks <= MAX_GRID_YZ and _reduce_fits(launcher, p.K)


def _reduce_fits(launcher: Launcher, K: int) -> bool:
    return ceil_div(K, launcher.tunables(FILE)["BIAS_BLOCK"]) <= MAX_GRID_YZ


def _finish(launcher: Launcher, part: Any, gb: Any, chunks: int) -> None:
    """gb[k] = part[0, k] + part[1, k] + ... (bias_grad_v3_reduce, chunk order)."""
    block, K = launcher.tunables(FILE)["BIAS_BLOCK"], gb.size
    args = [part, launcher.empty((1,), gb.dtype), gb, np.int32(0), np.int32(chunks), np.int64(K), np.int32(K)]
    cfg = Launch((1, ceil_div(K, block), 1), (block, 1, 1))
    launcher.launch(FILE, f"bias_grad_v3_reduce_{suffix(gb.dtype)}", cfg, [*args, np.int32(1)])


def conv_bias(launcher: Launcher, p: ConvParams, gy: Any) -> Any:
    chunk, chunks = conv_chunks(launcher, p.K, p.N * p.P * p.Q)
    sizes = (p.N, p.K, p.P * p.Q, chunk)
    return _two_stages(launcher, CONV, p.K, p.dtype, gy, (p.K, chunks, 1), sizes)


def linear_bias(launcher: Launcher, p: LinearParams, gy: Any) -> Any:
    rows, chunks = linear_chunks(launcher, p.N, p.K)
    return _two_stages(launcher, LINEAR, p.K, p.dtype, gy, (ceil_div(p.K, 32), chunks, 1), (p.N, p.K, rows))


def _two_stages(launcher: Launcher, kernel: str, K: int, dtype: Any, gy: Any, grid: tuple, sizes: tuple) -> Any:
    """gb (K): the first stage's grid (.., chunks, 1) of partial sums into a (chunks, K) workspace, then `_finish`."""
    gb = launcher.empty((K,), dtype)
    if gb.size and not gy.size:
        gb[...] = 0
    if gb.size and gy.size:
        part = launcher.empty((grid[1], K), dtype)
        cfg = Launch(grid, (launcher.tunables(FILE)["BIAS_BLOCK"], 1, 1))
        launcher.launch(FILE, f"{kernel}_{suffix(dtype)}", cfg, [gy, part, *(np.int32(v) for v in sizes)])
        _finish(launcher, part, gb, grid[1])
    return gb
