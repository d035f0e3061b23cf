"""conv2d v4_depthwise: one input channel per group (groups == C), each feeding K/C output channels.

y[n, k, p, q] = b[k] + sum_{r,s} w[k, 0, r, s] * xpad[n, k // M, p*sh + r*dh, q*sw + s*dw], M = K/C. At 2*R*S
FLOPs per output this is memory-bound, so the kernel touches x and y once each: every iteration stages one padded,
stride-phase-split input plane (see conv2d_rows) in a private buffer that stays in cache and writes its M output
planes straight into y.

    conv2d_fwd_v4_depthwise  iteration = (n, c); per output plane, tiles of DW_VECS output rows x LANES columns
                             accumulate over the R*S taps (DW_VECS vector loads, one weight broadcast, DW_VECS FMAs
                             per tap); masked stores at the edges.
Speed (the depthwise case e): bench_results/numba_cpu.md.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...params import ConvParams
from .config import ceil_div, filled, kernel, lanes
from .conv2d_direct import bias_or_zeros
from .conv2d_rows import Planes, split_plane, tap_offsets
from .simd import tile_bcast, tile_fma, tile_store

DW_VECS = 8  # output rows per tile: 8 independent accumulators cover the FMA latency


@kernel
def depthwise_planes(x, w, bias, y, offs, sh, sw, pt, pl, Hh, Wh, L, lanes):
    """Iteration (n, c) stages input plane c, then writes output planes k = c*M .. c*M + M - 1 of image n:
    disjoint across iterations. w is (K, T) flat, offs the T tap offsets into the staged plane."""
    N, C = x.shape[0], x.shape[1]
    K, P, Q = y.shape[1], y.shape[2], y.shape[3]
    M, T = K // C, offs.size
    npb, nqc = ceil_div(P, DW_VECS), ceil_div(Q, lanes)
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        plane = np.empty(L, x.dtype)
        split_plane(x, n, c, plane, sh, sw, pt, pl, Hh, Wh)
        for k in range(c * M, (c + 1) * M):
            for pb in range(npb):
                for qc in range(nqc):
                    p0, q0 = pb * DW_VECS, qc * lanes
                    acc = tile_bcast(bias, k, 1, 1, DW_VECS)
                    for t in range(T):
                        acc = tile_fma(acc, plane, offs[t] + p0 * Wh + q0, Wh, w, k * T + t, 1)
                    tile_store(acc, y, ((n * K + k) * P + p0) * Q + q0, 0, Q, 1, P - p0, 0, Q - q0)


def supports(p: ConvParams) -> bool:
    return p.is_depthwise


def conv2d_fwd_v4_depthwise(p: ConvParams, x: np.ndarray, w: np.ndarray, b) -> np.ndarray:
    pl = Planes.of(p.H, p.W, p.padding, p.stride, lanes(x.itemsize), vecs=DW_VECS)
    return filled(
        p.y_shape,
        x.dtype,
        lambda y: depthwise_planes(
            x,
            w.reshape(-1),
            bias_or_zeros(p, b, x.dtype),
            y,
            tap_offsets(p, pl),
            pl.sh,
            pl.sw,
            pl.pt,
            pl.pl,
            pl.Hh,
            pl.Wh,
            pl.L,
            lanes(x.itemsize),
        ),
    )
