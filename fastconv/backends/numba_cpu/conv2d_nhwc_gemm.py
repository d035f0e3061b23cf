"""conv2d v12_nhwc_gemm: a 1x1 convolution of a channels_last x as the plain GEMM it is, y (M x K) = x (M x C) @ w^T.

Input: x as a channels_last view (an (N, H, W, C) C-contiguous buffer seen as (N, C, H, W)), so with stride 1 its
M = N*H*W pixel rows of C channels are a row-major (M, C) matrix as they lie; with a stride the rows of the output
pixels are first copied side by side (the strided gather: one row of C channels per output pixel, in parallel).
Output: y (N, K, P, Q) as the (0, 3, 1, 2) view of a new (N, P, Q, K) buffer, the order PyTorch returns.

    conv2d_fwd_v12_nhwc_gemm  iteration = (block of MB pixel rows, group of output-channel blocks of VECS*LANES);
                              per chunk of KC input channels (w's KC x VECS*LANES micro-panel, packed [k-block, c,
                              k % (VECS*LANES)] once per call, stays in L1) every ROWS-pixel tile of the block runs
                              a ROWS x VECS register tile (6 x 4 zmm with AVX-512): per step VECS vector loads of
                              w and ROWS broadcasts of x feed ROWS*VECS FMAs; bias preloaded, partial sums resumed
                              from y between chunks, the rows past M as 1 x VECS tiles and the channels past K
                              masked. Iterations own disjoint rows and channels of y: race-free, and every sum
                              runs over c in order whatever the thread count.
Speed per layer: bench_results/late_layers.md.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...params import ConvParams
from .config import ceil_div, filled, inner, kernel, lanes
from .conv2d_blocked import ROWS, VECS, pack_weights
from .conv2d_direct import bias_or_zeros
from .simd import tile_fma, tile_load, tile_store, tile_zeros

KC = 128  # input channels per chunk: w's micro-panel of KC x 64 float32 (32 KiB) stays in L1
MB = 96  # pixel rows per iteration (16 tiles): their KC-channel slice (48 KiB) stays in L2
KG = 4  # output-channel blocks per iteration (256 channels with AVX-512)


@inner
def rows_tile(acc, x, x0, C, wp, w0, kw, c0, c1, bias, y, y0, K, k0, nk, first, lanes):
    """One tile of acc's rows (ROWS, or 1 for the rows past the last whole tile): bias (first chunk) or the sums
    in y, plus sum over c0 <= c < c1 of x[x0 + i*C + c] (broadcast) * wp[w0 + c*kw + j*lanes : +lanes], stored to
    y[y0 + i*K + k0 + ...] masked to nk channels."""
    if first:
        acc = tile_load(acc, bias, k0, 0, lanes, ROWS, VECS, lanes, nk)
    else:
        acc = tile_load(acc, y, y0 + k0, K, lanes, ROWS, VECS, lanes, nk)
    for c in range(c0, c1):
        acc = tile_fma(acc, wp, w0 + c * kw, lanes, x, x0 + c, C)
    tile_store(acc, y, y0 + k0, K, lanes, ROWS, VECS, lanes, nk)


@kernel
def nhwc_gemm(x, wp, bias, y, M, C, K, Kp, lanes):
    """y[m, k] = bias[k] + sum_c x[m, c] * wp[k // kw, c, k % kw] (kw = VECS*LANES; x (M, C), y (M, K) flat).
    Iteration (block of MB rows, group of KG k-blocks) writes only its rows' channels of the group."""
    kw = VECS * lanes
    nkb = Kp // kw
    nkg, nmb = ceil_div(nkb, KG), ceil_div(M, MB)
    for it in prange(nmb * nkg):
        kg, mb = it % nkg, it // nkg
        m0, m1 = mb * MB, min(mb * MB + MB, M)
        whole = m0 + (m1 - m0) // ROWS * ROWS
        for c0 in range(0, C, KC):
            c1 = min(c0 + KC, C)
            for kb in range(kg * KG, min(kg * KG + KG, nkb)):
                k0, w0 = kb * kw, kb * C * kw
                for m in range(m0, whole, ROWS):
                    rows_tile(tile_zeros(x, ROWS, VECS), x, m * C, C, wp, w0, kw, c0, c1, bias, y, m * K, K, k0,
                              K - k0, c0 == 0, lanes)  # fmt: skip
                for m in range(whole, m1):
                    rows_tile(tile_zeros(x, 1, VECS), x, m * C, C, wp, w0, kw, c0, c1, bias, y, m * K, K, k0,
                              K - k0, c0 == 0, lanes)  # fmt: skip


@kernel
def gather_rows(x, xs, N, H, W, C, P, Q, sh, sw):
    """xs[(n*P + p)*Q + q, :] = x[n, p*sh, q*sw, :] (x flat NHWC): one output row of pixels per iteration."""
    for npr in prange(N * P):
        n, p = npr // P, npr % P
        for q in range(Q):
            src, dst = ((n * H + p * sh) * W + q * sw) * C, (npr * Q + q) * C
            for c in range(C):  # not xs[..] = x[..]: an array assigned to a slice compiles Numba's shape message
                xs[dst + c] = x[src + c]


# ---------------------------------------------------------------------------------------------- registry op
def supports(p: ConvParams) -> bool:
    return p.channels_last and p.is_1x1 and not p.is_padded and not p.is_grouped and p.dilation == (1, 1)


def conv2d_fwd_v12_nhwc_gemm(p: ConvParams, x: np.ndarray, w: np.ndarray, b) -> np.ndarray:
    lanes_ = lanes(x.itemsize)
    wp, Kp = pack_weights(p, w, VECS * lanes_)
    xf = x.transpose(0, 2, 3, 1).reshape(-1)  # the NHWC buffer itself (dispatch guarantees the order)
    M = p.N * p.P * p.Q
    if p.is_strided:
        xs = np.empty(M * p.C, x.dtype)
        if xs.size:
            gather_rows(xf, xs, p.N, p.H, p.W, p.C, p.P, p.Q, *p.stride)
        xf = xs
    bias = np.zeros(Kp, x.dtype)
    bias[: p.K] = bias_or_zeros(p, b, x.dtype)

    def fill(y: np.ndarray) -> None:
        nhwc_gemm(xf, wp, bias, y.reshape(-1), M, p.C, p.K, Kp, lanes_)

    return filled((p.N, p.P, p.Q, p.K), x.dtype, fill).transpose(0, 3, 1, 2)
