"""conv2d v6_pointwise: 1x1, stride 1, unpadded convolution as a register-blocked GEMM on the NCHW data itself.

For each image and group, y[g*Kg + k, f] = b[k] + sum_{c < Cg} w[g*Kg + k, c] * x[g*Cg + c, f] over the F = H*W
pixels f: a (Kg x Cg) @ (Cg x F) product with no layout change at all (x and y are read and written in place).

    conv2d_fwd_v6_pointwise         iteration = (n, g, TP-pixel block, TP = VECS*LANES); for each block of ROWS
                                    output channels a ROWS x VECS tile sums over c: VECS contiguous vector loads of
                                    x + ROWS broadcast weights feed ROWS*VECS FMAs; the last pixel block loads and
                                    stores masked, so nothing past F is touched.
    conv2d_bwd_data_v3_pointwise    the same GEMM with w transposed.
    conv2d_bwd_weight_v3_pointwise  gw[k, c] = sum over images and pixels of gy[n, k, f] * x[n, c, f], a GEMM whose
                                    reduction runs along the contiguous pixels of both NCHW arrays: a DOT_ROWS x
                                    DOT_COLS tile of lane-wise partial dot products (4 x 6 zmm), per step DOT_ROWS +
                                    DOT_COLS vector loads feed DOT_ROWS*DOT_COLS FMAs; no layout change. Iteration =
                                    (n, g, block of DOT_COLS input channels), into that image's slot of a partial
                                    buffer summed over n in a fixed order afterwards.
Speed per layer: bench_results/numba_cpu.md.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...params import ConvParams
from .config import FASTMATH, TILE_ROWS, TILE_VECS, VECTOR_BYTES, ceil_div, filled, inner, kernel, lanes, workspace
from .conv2d_rows import bias_blocks, pack
from .simd import tile_bcast, tile_fma, tile_fma_tail, tile_store, tile_store_add, tile_zeros
from .simd_lanes import prefetch, tile_dot, tile_dot_tail, vec_lanes

ROWS, VECS = TILE_ROWS, TILE_VECS
# Weight gradient: DOT_ROWS output channels x DOT_COLS input channels of lane-wise dot products (AVX-512: 24
# accumulators and 6 + 1 loaded vectors, 31 of the 32 zmm registers; AVX2: 10 + 5 + 1 of 16 ymm); FB pixels per
# chunk, so the DOT_COLS x rows of a chunk (12 KiB in float32) stay in L1 while every output-channel block passes
# over them (measured: 512 beat 256, 1024, 2048 and the whole plane on case b, 1 thread).
DOT_ROWS, DOT_COLS = (4, 6) if VECTOR_BYTES == 64 else (2, 5)
FB = 512
# Forward: the pixel blocks PF_TILES ahead are prefetched, row by row, while the first output-channel block runs
# over this one: the Cg rows of a block lie F apart, more streams than the hardware prefetchers follow. Measured
# on case b (C=256 -> K=64, 56x56, batch 8): 2 blocks ahead 18-20% faster than none, 1 or 4 ahead less
# (bench_results/numba_kernel_notes.md).
PF_TILES = 2


@kernel
def pointwise_gemm(x, wt, bias, y, N, F, G, Cg, Kg, lanes):
    """y[n, g*Kg + k, f] = bias + sum_{c < Cg} wt[g, k // ROWS, c, k % ROWS] * x[n, g*Cg + c, f]. One iteration =
    one (n, g, pixel block) for all Kg output channels of the group: iterations write disjoint outputs. A
    prefetch is only a hint (past the end of x it does nothing): the results do not change."""
    tp = VECS * lanes
    nft, nkb = ceil_div(F, tp), ceil_div(Kg, ROWS)
    for it in prange(N * G * nft):
        ft, g, n = it % nft, (it // nft) % G, it // (nft * G)
        f0 = ft * tp
        left = F - f0
        xbase = (n * G + g) * Cg * F + f0
        for kb in range(nkb):
            acc = tile_bcast(bias, (g * nkb + kb) * ROWS, 1, ROWS, VECS)
            wbase = (g * nkb + kb) * Cg * ROWS
            if left >= tp and kb == 0:  # the first pass over the block also prefetches the one PF_TILES ahead
                for c in range(Cg):
                    acc = tile_fma(acc, x, xbase + c * F, lanes, wt, wbase + c * ROWS, 1)
                    for v in range(VECS):
                        prefetch(x, xbase + c * F + PF_TILES * tp + v * lanes)
            elif left >= tp:
                for c in range(Cg):
                    acc = tile_fma(acc, x, xbase + c * F, lanes, wt, wbase + c * ROWS, 1)
            else:
                for c in range(Cg):
                    acc = tile_fma_tail(acc, x, xbase + c * F, lanes, wt, wbase + c * ROWS, 1, left)
            ybase = (n * G * Kg + g * Kg + kb * ROWS) * F + f0
            tile_store(acc, y, ybase, F, lanes, Kg - kb * ROWS, VECS, lanes, left)


@kernel
def pointwise_bwd_weight(gy, x, part, N, F, G, Cg, Kg, lanes):
    """part[n, g, k, c] = sum_f gy[n, g*Kg + k, f] * x[n, g*Cg + c, f]. Iteration (n, g, block of DOT_COLS input
    channels) owns those columns of part[n, g] (disjoint writes): per chunk of FB pixels, for every block of
    DOT_ROWS output channels, a tile of lane-wise partial sums is added into `sums`, whose lanes are added up at
    the end in a fixed order. Edge blocks start at Kg - DOT_ROWS or Cg - DOT_COLS, overlapping their neighbour,
    and write only what they own (needs Kg >= DOT_ROWS, Cg >= DOT_COLS); the last pixels load masked."""
    ncb, nkb = ceil_div(Cg, DOT_COLS), ceil_div(Kg, DOT_ROWS)
    blk = DOT_ROWS * DOT_COLS * lanes
    for it in prange(N * G * ncb):
        cb, g, n = it % ncb, (it // ncb) % G, it // (ncb * G)
        c0 = min(cb * DOT_COLS, Cg - DOT_COLS)
        sums = np.zeros(nkb * blk, x.dtype)
        for f0 in range(0, F, FB):
            fn = min(FB, F - f0)
            b = ((n * G + g) * Cg + c0) * F + f0
            for kb in range(nkb):
                a = ((n * G + g) * Kg + min(kb * DOT_ROWS, Kg - DOT_ROWS)) * F + f0
                acc = tile_zeros(x, DOT_ROWS, DOT_COLS)
                f = 0
                while f + lanes <= fn:
                    acc = tile_dot(acc, gy, a + f, F, x, b + f, F)
                    f += lanes
                if f < fn:
                    acc = tile_dot_tail(acc, gy, a + f, F, DOT_ROWS, x, b + f, F, DOT_COLS, fn - f)
                tile_store_add(acc, sums, kb * blk, DOT_COLS * lanes, lanes, DOT_ROWS, DOT_COLS, 0, lanes)
        for kb in range(nkb):
            k0 = min(kb * DOT_ROWS, Kg - DOT_ROWS)
            for i in range(DOT_ROWS):
                row = ((n * G + g) * Kg + k0 + i) * Cg + c0
                for j in range(cb * DOT_COLS - c0, DOT_COLS):
                    lane0 = kb * blk + (i * DOT_COLS + j) * lanes
                    part[row + j] = lane_sum(sums, lane0, vec_lanes(x))


@inner(fastmath=set(FASTMATH - {"reassoc"}))
def lane_sum(a, lo, n):
    """a[lo] + a[lo + 1] + ... + a[lo + n - 1], added in that order: LLVM may not regroup it (np.sum under
    re-association was regrouped differently in the parallel and the serial compilation, so their bits differed)."""
    total = a[lo]
    for i in range(lo + 1, lo + n):
        total += a[i]
    return total


def supports(p: ConvParams) -> bool:
    return p.is_pointwise


def supports_bwd_weight(p: ConvParams) -> bool:
    return p.is_pointwise and p.Kg >= DOT_ROWS and p.Cg >= DOT_COLS


def conv2d_fwd_v6_pointwise(p: ConvParams, x: np.ndarray, w: np.ndarray, b) -> np.ndarray:
    wt = pack(w.reshape(p.groups, p.Kg, p.Cg, 1))
    return filled(
        p.y_shape,
        x.dtype,
        lambda y: pointwise_gemm(
            x.reshape(-1),
            wt,
            bias_blocks(p, b, x.dtype),
            y.reshape(-1),
            p.N,
            p.H * p.W,
            p.groups,
            p.Cg,
            p.Kg,
            lanes(x.itemsize),
        ),
    )


def conv2d_bwd_data_v3_pointwise(p: ConvParams, gy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """gx[n, g*Cg + c, f] = sum_k w[g*Kg + k, c] * gy[n, g*Kg + k, f]: the same GEMM with w transposed."""
    wt = pack(np.ascontiguousarray(w.reshape(p.groups, p.Kg, p.Cg).transpose(0, 2, 1))[..., None])
    zeros = np.zeros(p.groups * ceil_div(p.Cg, ROWS) * ROWS, gy.dtype)
    return filled(
        p.x_shape,
        gy.dtype,
        lambda gx: pointwise_gemm(
            gy.reshape(-1), wt, zeros, gx.reshape(-1), p.N, p.H * p.W, p.groups, p.Kg, p.Cg, lanes(gy.itemsize)
        ),
    )


def conv2d_bwd_weight_v3_pointwise(p: ConvParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The per-image partials of pointwise_bwd_weight summed over n in order."""
    part = workspace("weight_partials", p.N * p.K * p.Cg, x.dtype)
    if part.size:
        pointwise_bwd_weight(
            gy.reshape(-1), x.reshape(-1), part, p.N, p.H * p.W, p.groups, p.Cg, p.Kg, lanes(x.itemsize)
        )
    summed = part.reshape(p.N, p.K, p.Cg).sum(axis=0) if p.N else np.zeros((p.K, p.Cg))
    gw = filled(p.w_shape, x.dtype, lambda gw: None)
    gw[...] = summed.reshape(p.w_shape)
    return gw
