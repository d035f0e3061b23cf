"""conv2d bwd weight v8_chunks: the weight gradient as one GEMM over the whole batch, its reduction cut into chunks.

gw[k, c, r, s] = sum over m = (n, p, q) of gy[n, k, p, q] * xb[n, c // cw, p*sh + r*dh, q*sw + s*dw, c % cw]: M = K
rows, C*R*S columns, a reduction of N*P*Q steps. x is read from v7_blocked's zero-padded channels-last copy cut into
blocks of cw = VECS*LANES channels (xb, to_channels_last with a block; channels past C are zero, so every load is a
whole vector), where one block's channels of one pixel are a vector run and consecutive pixels lie cw apart: a
chunk's x of one block is one contiguous stretch. gy is read in place (NCHW: step m of output channel k at
(n*K + k)*P*Q + p*Q + q).

    conv2d_bwd_weight_v8_chunks  iteration = (reduction chunk, group of output-channel blocks, block of cw input
                                 channels). A chunk is a run of consecutive output rows (n, p) of the batch (it
                                 may span images); chunk and group sizes come from the shape alone (blocking):
                                 chunks short enough that one block's x of a chunk stays in L2 while every tap and
                                 output-channel block of the group passes over it, then more chunks (down to
                                 MIN_STEPS pixels) and only then K groups until there are TARGET iterations. Per
                                 (tap, block of ROWS output channels) a ROWS x VECS register tile (6 x 4 zmm with
                                 AVX-512) sums the whole chunk: per output pixel VECS vector loads of xb and ROWS
                                 broadcasts of gy (ROWS planes P*Q apart) feed ROWS*VECS FMAs; it is stored once,
                                 into the chunk's slot of a partial buffer. A last block of fewer than ROWS
                                 channels runs over the planes K-1, K-2, ... (negative steps), overlapping its
                                 neighbour and storing only its own rows, so no gy plane is copied or padded. The
                                 slots are summed in chunk order afterwards (conv2d_blocked.sum_partials):
                                 iterations write disjoint (slot, rows, columns), and no sum's order depends on
                                 the thread count.
Groups stay on v4_blocked (supports).
Speed per layer: bench_results/bwd_weight.md.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...arrays import empty
from ...params import ConvParams
from .config import BLOCKED_ROWS, BLOCKED_VECS, ceil_div, kernel, lanes, workspace
from .conv2d_blocked import channels_last, sum_partials
from .simd import tile_fma, tile_store, tile_zeros

ROWS, VECS = BLOCKED_ROWS, BLOCKED_VECS
MAX_STEPS, MIN_STEPS = 2048, 256  # output pixels per chunk (the tile is stored once per chunk)
TARGET = 32  # iterations at least, where the shape allows (from the shape: never the thread count)


@kernel
def chunks_bwd_weight(xh, gy, part, shape, geometry, blocking, lanes):
    """shape = (N, K, P, Q, C); geometry = (Hx, Wx, sh, sw, dh, dw, R, S); blocking = (rpc, KG). part[ch, k, t, c]
    = sum over the output rows u = n*P + p of chunk ch (rpc rows) and q of gy[n, k, p, q] * xh[n, p*sh + r*dh,
    q*sw + s*dw, c]. Iteration (chunk, group of KG output-channel blocks, block of VECS*LANES input channels)
    writes only its rows and columns of its chunk's slot."""
    N, K, P, Q, C = shape
    Hx, Wx, sh, sw, dh, dw, R, S = geometry
    rpc, KG = blocking
    T, PQ, cw = R * S, P * Q, VECS * lanes
    nkb, ncb, nch = ceil_div(K, ROWS), ceil_div(C, cw), ceil_div(N * P, rpc)
    nkg = ceil_div(nkb, KG)
    for it in prange(nch * nkg * ncb):
        cb, kg, ch = it % ncb, (it // ncb) % nkg, it // (ncb * nkg)
        u0, u1, c0 = ch * rpc, min(ch * rpc + rpc, N * P), cb * cw
        for t in range(T):  # the chunk's x of this channel block stays in L2 across the taps and blocks
            for kb in range(kg * KG, min(kg * KG + KG, nkb)):
                k0, step, nk = kb * ROWS, 1, ROWS
                if k0 + ROWS > K:  # the last, partial block: planes K-1, K-2, ..., owning the first K - k0
                    k0, step, nk = K - 1, -1, K - k0
                acc = tile_zeros(xh, ROWS, VECS)
                for u in range(u0, u1):
                    n, p = u // P, u % P
                    xa = (((n * ncb + cb) * Hx + p * sh + (t // S) * dh) * Wx + (t % S) * dw) * cw
                    ga = (n * K + k0) * PQ + p * Q
                    for q in range(Q):
                        acc = tile_fma(acc, xh, xa + q * sw * cw, lanes, gy, ga + q, step * PQ)
                out = ((ch * K + k0) * T + t) * C + c0
                tile_store(acc, part, out, step * T * C, lanes, nk, VECS, lanes, C - c0)


# ---------------------------------------------------------------------------------------------- registry op
def supports(p: ConvParams) -> bool:
    return not p.is_grouped and p.K >= ROWS


def blocking(p: ConvParams, itemsize: int) -> tuple[int, int]:
    """(output rows per chunk, output-channel blocks per iteration) from the shape alone. Chunks of at most
    MAX_STEPS pixels (one channel block's x of a chunk stays in L2), cut smaller, down to MIN_STEPS pixels, while
    chunks x channel blocks give fewer than TARGET iterations; only then is K split into groups."""
    rows, nkb = max(1, p.N * p.P), ceil_div(p.K, ROWS)
    ncb, steps = ceil_div(p.C, VECS * lanes(itemsize)), p.N * p.P * p.Q
    chunks = min(rows, max(ceil_div(steps, MAX_STEPS), min(ceil_div(TARGET, ncb), steps // MIN_STEPS)))
    chunks = max(1, ceil_div(rows, ceil_div(rows, chunks)))
    nkg = min(nkb, ceil_div(TARGET, ncb * chunks))
    return ceil_div(rows, chunks), ceil_div(nkb, nkg)


def conv2d_bwd_weight_v8_chunks(p: ConvParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    sub = p.stride if p.is_1x1 and not p.is_padded else (1, 1)  # a strided 1x1: copy the pixels it reads
    xh, Hp, Wx = channels_last(p, x, 0, VECS * lanes(x.itemsize), sub)
    rpc, kg = blocking(p, x.itemsize)
    slots = ceil_div(p.N * p.P, rpc)
    part = workspace("weight_partials", slots * p.K * p.R * p.S * p.C, x.dtype)
    if part.size:
        chunks_bwd_weight(
            xh,
            np.ascontiguousarray(gy).reshape(-1),
            part,
            (p.N, p.K, p.P, p.Q, p.C),
            (Hp, Wx, p.stride[0] // sub[0], p.stride[1] // sub[1], *p.dilation, p.R, p.S),
            (rpc, kg),
            lanes(x.itemsize),
        )
    gw = empty(p.w_shape, x.dtype)
    sum_partials(part.reshape(slots, p.K, p.R * p.S, p.C), gw.reshape(p.K, p.C, p.R * p.S))
    return gw
