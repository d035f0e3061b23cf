"""conv2d pointwise_v3: 1x1, stride 1, unpadded convolution as a register-blocked GEMM on the NCHW data itself.

For each image and group, y[g*Kg + k, f] = b[k] + sum_{c < Cg} w[g*Kg + k, c] * x[g*Cg + c, f] over the F = H*W
pixels f: a (Kg x Cg) @ (Cg x F) product with no layout change at all (x and y are read and written in place).

    pointwise_v3   iteration = (n, g, TP-pixel block, TP = VECS*LANES); for each block of ROWS output channels a
                   ROWS x VECS tile sums over c: VECS contiguous vector loads of x + ROWS broadcast weights feed
                   ROWS*VECS FMAs; the last pixel block loads and stores masked, so nothing past F is touched.
                   Measured (bench_results/numba_cpu.md, float32): 49-57 GFLOP/s with 2 threads, 42 with 1 thread
                   on case b (C=256 -> K=64, 56x56); rows_v2 does 29 there (2 threads).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...params import ConvParams
from .config import TILE_ROWS, TILE_VECS, filled, kernel, lanes
from .conv2d_rows import bias_blocks, pack
from .simd import tile_bcast, tile_fma, tile_fma_tail, tile_relu, tile_store

ROWS, VECS = TILE_ROWS, TILE_VECS


@kernel
def pointwise_gemm(x, wt, bias, y, N, F, G, Cg, Kg, relu, lanes):
    """y[n, g*Kg + k, f] = bias + sum_{c < Cg} wt[g, k // ROWS, c, k % ROWS] * x[n, g*Cg + c, f]. One iteration =
    one (n, g, pixel block) for all Kg output channels of the group: iterations write disjoint outputs."""
    tp = VECS * lanes
    nft, nkb = (F + tp - 1) // tp, (Kg + ROWS - 1) // ROWS
    for it in prange(N * G * nft):
        ft, g, n = it % nft, (it // nft) % G, it // (nft * G)
        f0 = ft * tp
        left = F - f0
        xbase = (n * G + g) * Cg * F + f0
        for kb in range(nkb):
            acc = tile_bcast(bias, (g * nkb + kb) * ROWS, 1, ROWS, VECS)
            wbase = (g * nkb + kb) * Cg * ROWS
            if left >= tp:
                for c in range(Cg):
                    acc = tile_fma(acc, x, xbase + c * F, lanes, wt, wbase + c * ROWS, 1)
            else:
                for c in range(Cg):
                    acc = tile_fma_tail(acc, x, xbase + c * F, lanes, wt, wbase + c * ROWS, 1, left)
            if relu:
                acc = tile_relu(acc)
            ybase = (n * G * Kg + g * Kg + kb * ROWS) * F + f0
            tile_store(acc, y, ybase, F, lanes, Kg - kb * ROWS, VECS, lanes, left)


def supports(p: ConvParams) -> bool:
    return p.is_pointwise


def conv2d_pointwise_v3(p: ConvParams, x: np.ndarray, w: np.ndarray, b, relu: bool = False) -> np.ndarray:
    wt = pack(w.reshape(p.groups, p.Kg, p.Cg, 1))
    return filled(p.y_shape, x.dtype, lambda y: pointwise_gemm(
        x.reshape(-1), wt, bias_blocks(p, b, x.dtype), y.reshape(-1), p.N, p.H * p.W, p.groups, p.Cg, p.Kg, relu,
        lanes(x.itemsize)))


def conv2d_bwd_data_pointwise_v3(p: ConvParams, gy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """gx[n, g*Cg + c, f] = sum_k w[g*Kg + k, c] * gy[n, g*Kg + k, f]: the same GEMM with w transposed."""
    wt = pack(np.ascontiguousarray(w.reshape(p.groups, p.Kg, p.Cg).transpose(0, 2, 1))[..., None])
    zeros = np.zeros(p.groups * -(-p.Cg // ROWS) * ROWS, gy.dtype)
    return filled(p.x_shape, gy.dtype, lambda gx: pointwise_gemm(
        gy.reshape(-1), wt, zeros, gx.reshape(-1), p.N, p.H * p.W, p.groups, p.Kg, p.Cg, False, lanes(gy.itemsize)))
