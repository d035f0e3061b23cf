"""Spatial tiling of windowed ops (conv, pooling) over dask arrays.

A windowed op with window span `span` and stride `s` over an (already padded) axis of length L computes output
p from input rows [p*s, p*s + span). If every block of that axis starts on a multiple of s, the outputs whose
windows start inside a block [a, b) are p in [a/s, b/s), and they need rows up to b + (span - s): a halo of
max(span - s, 0) rows *after* the block, none before. So each block, extended by that halo (dask's map_overlap
with depth (0, halo) and boundary 'none'), yields its own outputs with a 'valid' call of the very same op.
Block starts are multiples of s*align, so tiled kernels see every tile at the same phase as in one big call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import dask.array as da


class AxisPlan(NamedTuple):
    in_chunks: tuple[int, ...]
    out_chunks: tuple[int, ...]
    halo: int


def plan_axis(chunks: tuple[int, ...], span: int, stride: int, out: int, align: int) -> AxisPlan:
    """Block boundaries for one padded spatial axis (sizes `chunks` as given by the user)."""
    total = sum(chunks)
    halo = max(span - stride, 0)
    step = stride * align
    size = max(step, -(-max(chunks) // step) * step, -(-halo // step) * step)
    starts = list(range(0, total, size))
    # a trailing block must hold at least one window start and cover the previous block's halo
    while len(starts) > 1 and (starts[-1] // stride >= out or total - starts[-1] < halo):
        starts.pop()
    bounds = [*starts, total]
    in_chunks = tuple(b - a for a, b in zip(bounds, bounds[1:]))
    out_chunks = tuple(min(-(-b // stride), out) - a // stride for a, b in zip(bounds, bounds[1:]))
    return AxisPlan(in_chunks, out_chunks, halo)


def windowed(x: da.Array, block_fn: Callable, args: tuple, spans: tuple[int, int], strides: tuple[int, int],
             outs: tuple[int, int], out_channels: int, align: int) -> da.Array:
    """Apply a 'valid' windowed op to a padded (N, C, Hp, Wp) dask array, block by block.

    Channels are gathered into one chunk; the batch keeps its chunks; H and W are re-blocked per `plan_axis` and
    each block is extended by its halo (dask's overlap, the first half of map_overlap). block_fn(block, *args)
    computes the op on one extended block with no padding; `args` (weights) enter the graph once, as Delayed.
    """
    ph = plan_axis(x.chunks[2], spans[0], strides[0], outs[0], align)
    pw = plan_axis(x.chunks[3], spans[1], strides[1], outs[1], align)
    x = x.rechunk({1: -1, 2: ph.in_chunks, 3: pw.in_chunks})
    extended = da.overlap.overlap(x, depth={2: (0, ph.halo), 3: (0, pw.halo)}, boundary="none",
                                  allow_rechunk=False)
    return da.map_blocks(block_fn, extended, *args,
                         chunks=(x.chunks[0], (out_channels,), ph.out_chunks, pw.out_chunks), dtype=x.dtype,
                         meta=x._meta)


def whole_planes(x: da.Array, block_fn: Callable, args: tuple, out_hw: tuple[int, int]) -> da.Array:
    """Apply an op that needs whole (H, W) planes of all channels: chunked along the batch only."""
    x = x.rechunk({1: -1, 2: -1, 3: -1})
    return da.map_blocks(block_fn, x, *args, chunks=(x.chunks[0], x.chunks[1], (out_hw[0],), (out_hw[1],)),
                         dtype=x.dtype, meta=x._meta)
