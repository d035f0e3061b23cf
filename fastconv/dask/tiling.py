"""Spatial tiling of windowed ops (conv, pooling) over dask arrays.

Along one axis of length L, a windowed op with window span `span`, stride `s` and padding (before, after) computes
output p from the input rows [p*s - before, p*s - before + span) (rows outside [0, L) are padding). The axis is cut
into blocks [b_j, b_j+1) whose starts are multiples of s*align; block j computes the outputs whose windows *start*
inside it. Those windows reach at most span - 1 rows past the block's end, so each block is extended by that halo
after it (dask's overlap, the first half of map_overlap; nothing before), and the block's op is the very same
kernel called on the rows it needs with only the padding that falls on that block: the first block gets the
`before` padding, the last one whatever its windows reach beyond L. Interior blocks need no padding and no copy of
the input is padded; user chunks that already fall on the grid are not moved.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import dask.array as da

from ..params import ceil_div


class AxisPlan(NamedTuple):
    in_chunks: tuple[int, ...]
    out_chunks: tuple[int, ...]
    halo: int
    rows: tuple[tuple[int, int, int, int], ...]  # per block: rows [start, stop) of its extended block, pads (b, a)


def plan_axis(
    chunks: tuple[int, ...], span: int, stride: int, pads: tuple[int, int], out: int, align: int, out_align: int = 1
) -> AxisPlan:
    """Blocks for one spatial axis of the input (sizes `chunks` as given by the user). With out_align > 1 every
    block's first output is a multiple of it (the grid is shifted by the padding to make it so)."""
    total, before = sum(chunks), pads[0]
    halo = span - 1
    step = stride * math.lcm(align, out_align)
    size = max(step, ceil_div(max(chunks), step) * step, ceil_div(halo, step) * step)
    # with out_align > 1, b + before is a multiple of stride*out_align for every start b > 0
    shift = -before % (stride * out_align) if out_align > 1 else 0

    def first_output(b: int) -> int:  # the first output whose window starts in a block starting at b
        return 0 if b == 0 else ceil_div(b + before, stride)

    starts = [0, *range(size + shift, total, size)]
    # a trailing block must start a window of its own and be able to lend the previous block its halo
    while len(starts) > 1 and (first_output(starts[-1]) >= out or total - starts[-1] < halo):
        starts.pop()
    firsts = [first_output(b) for b in starts] + [out]
    rows = []
    for b, p0, p1 in zip(starts, firsts, firsts[1:]):
        r0, r1 = p0 * stride - before, (p1 - 1) * stride - before + span  # input rows the block's windows read
        lo = min(max(r0, 0), total)
        hi = max(min(r1, total), lo)  # [lo, hi): the part inside the input; the rest is padding
        rows.append((lo - b, hi - b, max(min(r1, 0) - r0, 0), max(r1 - max(r0, total), 0)))
    in_chunks = tuple(b - a for a, b in zip(starts, [*starts[1:], total]))
    return AxisPlan(in_chunks, tuple(p1 - p0 for p0, p1 in zip(firsts, firsts[1:])), halo, tuple(rows))


def _tile(block, *args, fn: Callable, plans: tuple[AxisPlan, AxisPlan], block_info=None):
    """Run fn on the rows and columns one extended block's windows read, with that block's padding."""
    j, i = block_info[0]["chunk-location"][2:4]
    (h0, h1, top, bottom), (w0, w1, left, right) = plans[0].rows[j], plans[1].rows[i]
    return fn(block[:, :, h0:h1, w0:w1], *args, pads=((top, bottom), (left, right)))


def windowed(
    x: da.Array,
    fn: Callable,
    args: tuple,
    spans: tuple[int, int],
    strides: tuple[int, int],
    pads: tuple[tuple[int, int], tuple[int, int]],
    outs: tuple[int, int],
    out_channels: int,
    align: int,
    out_align: int = 1,
) -> da.Array:
    """Apply a windowed op to an (N, C, H, W) dask array block by block (see the module docstring); out_align:
    see plan_axis.

    Channels are gathered into one chunk; the batch keeps its chunks. fn(rows, *args, pads=((t, b), (l, r)))
    computes the op's outputs on the rows handed to it with that padding; `args` (weights) enter the graph once,
    as Delayed objects.
    """
    plans = tuple(plan_axis(x.chunks[2 + d], spans[d], strides[d], pads[d], outs[d], align, out_align) for d in (0, 1))
    x = x.rechunk({1: -1, 2: plans[0].in_chunks, 3: plans[1].in_chunks})
    extended = da.overlap.overlap(
        x, depth={2: (0, plans[0].halo), 3: (0, plans[1].halo)}, boundary="none", allow_rechunk=False
    )
    return da.map_blocks(
        _tile,
        extended,
        *args,
        fn=fn,
        plans=plans,
        chunks=(x.chunks[0], (out_channels,), plans[0].out_chunks, plans[1].out_chunks),
        dtype=x.dtype,
        meta=x._meta,
    )


def whole_planes(x: da.Array, block_fn: Callable, args: tuple, out_hw: tuple[int, int]) -> da.Array:
    """Apply an op that needs whole (H, W) planes of all channels: chunked along the batch only."""
    x = x.rechunk({1: -1, 2: -1, 3: -1})
    return da.map_blocks(
        block_fn, x, *args, chunks=(x.chunks[0], x.chunks[1], (out_hw[0],), (out_hw[1],)), dtype=x.dtype, meta=x._meta
    )
