"""Sums along the planes of a channel, in SIMD registers: the statistics of batch norm and the conv bias gradient.

A plane is summed VECS vectors at a time in x's dtype over blocks of BLOCK elements, each block's total added in
float64, so the rounding of a long sum stays that of a float64 sum of BLOCK-element partials; the sums never
depend on the thread count (one channel per parallel iteration, its planes in order n = 0..N-1).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .config import PREFETCH_BYTES, inner, kernel
from .simd import tile_bcast, tile_fma, tile_zeros
from .simd_lanes import prefetch, tile_mul_add, tile_store_sums, vec_lanes

VECS = 4  # vectors per step, here and in the elementwise passes that stream through the same planes
BLOCK = 1024  # elements summed in x's dtype (16 a lane with 16 float32 lanes) before the block total goes to float64


@inner
def block_sums(xs, gs, squares, with_grad, coef, part, out):
    """out = (sum(d), sum(d*d) if squares, sum(g), sum(g*d) if with_grad) over one plane with d = x - K and
    coef = (1, -K, ...) in x's dtype. VECS vectors of lanes are summed in x's dtype over BLOCK elements, each
    block's total is added in float64; the tail in float64. Taking the deviations from a K near the plane's values
    keeps the block sums small, so their rounding stays far below the spread of x."""
    L = vec_lanes(xs)
    step = VECS * L
    M = xs.size
    full = M - M % step
    s, d2, sg, sgd = 0.0, 0.0, 0.0, 0.0
    ahead = PREFETCH_BYTES // xs.itemsize
    for b0 in range(0, full, BLOCK):
        a_d, a_d2, a_g, a_gd = (
            tile_zeros(xs, 1, VECS),
            tile_zeros(xs, 1, VECS),
            tile_zeros(xs, 1, VECS),
            tile_zeros(xs, 1, VECS),
        )
        one = tile_bcast(coef, 0, 0, 1, VECS)
        for m in range(b0, min(b0 + BLOCK, full), step):
            for j in range(VECS):
                prefetch(xs, m + ahead + j * L)
                if with_grad:
                    prefetch(gs, m + ahead + j * L)
            d = tile_fma(tile_bcast(coef, 1, 0, 1, VECS), xs, m, L, coef, 0, 0)  # x - K
            a_d = tile_mul_add(a_d, d, one)
            if squares:
                a_d2 = tile_mul_add(a_d2, d, d)
            if with_grad:
                g = tile_fma(tile_zeros(xs, 1, VECS), gs, m, L, coef, 0, 0)
                a_g = tile_mul_add(a_g, g, one)
                a_gd = tile_mul_add(a_gd, g, d)
        s += lane_total(a_d, part)
        d2 += lane_total(a_d2, part)
        sg += lane_total(a_g, part)
        sgd += lane_total(a_gd, part)
    K = -np.float64(coef[1])
    for m in range(full, M):
        d = xs[m] - K
        s += d
        if squares:
            d2 += d * d
        if with_grad:
            sg += gs[m]
            sgd += gs[m] * d
    out[0], out[1], out[2], out[3] = s, d2, sg, sgd


@inner
def lane_total(acc, part):
    """The sum of all lanes of a one-row tile, in float64 (each vector's lanes first, in x's dtype)."""
    tile_store_sums(acc, part, 0, 0, 1, 1, VECS)
    total = 0.0
    for j in range(VECS):
        total += part[j]
    return total


@kernel
def channel_sums(x3, out):
    """out[c] = sum of x3[:, c] in float64, the plane sums added in order n = 0..N-1 (the conv bias gradient).
    One channel per iteration."""
    N, C, M = x3.shape
    for c in prange(C):
        part, coef, sums = np.empty(VECS, x3.dtype), np.zeros(2, x3.dtype), np.empty(4)
        coef[0] = 1
        total = 0.0
        for n in range(N):
            block_sums(x3[n, c], x3[n, c], False, False, coef, part, sums)
            total += sums[0]
        out[c] = total
