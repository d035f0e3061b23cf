"""conv2d bwd weight v8_chunks: the weight gradient as one GEMM over the whole batch, its reduction cut into chunks.

gw[k, c, r, s] = sum over m = (n, p, q) of gy[n, k, p, q] * xh[n, p*sh + r*dh, q*sw + s*dw, c]: M = K rows, C*R*S
columns, a reduction of N*P*Q steps. x is read from v7_blocked's zero-padded channels-last copy xh, where the C
channels of one pixel are contiguous, so the im2col row of step m at tap t is a run of consecutive elements; gy is
read in place (NCHW: step m of output channel k at (n*K + k)*P*Q + p*Q + q).

    conv2d_bwd_weight_v8_chunks  iteration = (reduction chunk, block of ROWS output channels). A chunk is a run of
                                 consecutive output rows (n, p) of the batch (it may span images), their number
                                 set by the shape alone (chunk_rows). Per (block of VECS*LANES input channels,
                                 tap) a ROWS x VECS register tile sums the whole chunk: per output pixel VECS vector
                                 loads of xh and ROWS broadcasts of gy (ROWS planes P*Q apart) feed ROWS*VECS
                                 FMAs; the tile is stored once, into the chunk's slot of a partial buffer. A last
                                 block of fewer than ROWS channels runs over the planes K-1, K-2, ... (negative
                                 steps), overlapping its neighbour and storing only its own rows, so no gy plane
                                 is copied or padded. The slots are summed in chunk order afterwards
                                 (conv2d_blocked.sum_partials): iterations write disjoint (slot, rows), and no
                                 sum's order depends on the thread count.
Input channels past the last whole vector block load masked. Groups stay on v4_blocked (supports).
Speed per layer: bench_results/bwd_weight.md.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...arrays import empty
from ...params import ConvParams
from .config import BLOCKED_ROWS, BLOCKED_VECS, ceil_div, kernel, lanes, workspace
from .conv2d_blocked import channels_last, sum_partials
from .simd import tile_fma, tile_fma_tail, tile_store, tile_zeros

ROWS, VECS = BLOCKED_ROWS, BLOCKED_VECS
CHUNK_STEPS = 1024  # output pixels per chunk at least (the tile is stored once per chunk)
TARGET = 16  # iterations at least, where the rows allow (from the shape: never the thread count)


@kernel
def chunks_bwd_weight(xh, gy, part, shape, geometry, rpc, lanes):
    """shape = (N, K, P, Q, C); geometry = (Hx, Wx, sh, sw, dh, dw, R, S). part[ch, k, t, c] = sum over the output
    rows u = n*P + p of chunk ch (rpc rows) and q of gy[n, k, p, q] * xh[n, p*sh + r*dh, q*sw + s*dw, c]."""
    N, K, P, Q, C = shape
    Hx, Wx, sh, sw, dh, dw, R, S = geometry
    T, PQ, cw = R * S, P * Q, VECS * lanes
    nkb, ncb, nch = ceil_div(K, ROWS), ceil_div(C, cw), ceil_div(N * P, rpc)
    for it in prange(nch * nkb):
        kb, ch = it % nkb, it // nkb
        u0, u1 = ch * rpc, min(ch * rpc + rpc, N * P)
        k0, step, nk = kb * ROWS, 1, ROWS
        if k0 + ROWS > K:  # the last, partial block: planes K-1, K-2, ... of which it owns the first K - k0
            k0, step, nk = K - 1, -1, K - k0
        out = (ch * K + k0) * T * C
        for cb in range(ncb):
            c0 = cb * cw
            for t in range(T):
                acc = tile_zeros(xh, ROWS, VECS)
                for u in range(u0, u1):
                    n, p = u // P, u % P
                    xa = ((n * Hx + p * sh + (t // S) * dh) * Wx + (t % S) * dw) * C + c0
                    ga = (n * K + k0) * PQ + p * Q
                    if C - c0 >= cw:
                        for q in range(Q):
                            acc = tile_fma(acc, xh, xa + q * sw * C, lanes, gy, ga + q, step * PQ)
                    else:
                        for q in range(Q):
                            acc = tile_fma_tail(acc, xh, xa + q * sw * C, lanes, gy, ga + q, step * PQ, C - c0)
                tile_store(acc, part, out + t * C + c0, step * T * C, lanes, nk, VECS, lanes, C - c0)


# ---------------------------------------------------------------------------------------------- registry op
def supports(p: ConvParams) -> bool:
    return not p.is_grouped and p.K >= ROWS


def chunk_rows(p: ConvParams) -> int:
    """Output rows per chunk: at least CHUNK_STEPS pixels each, more chunks where that leaves fewer than TARGET
    iterations (at most one row each)."""
    rows = max(1, p.N * p.P)
    chunks = max(1, min(rows, p.N * p.P * p.Q // CHUNK_STEPS))
    chunks = max(chunks, min(rows, ceil_div(TARGET, ceil_div(p.K, ROWS))))
    return ceil_div(rows, chunks)


def conv2d_bwd_weight_v8_chunks(p: ConvParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    xh, Hp, Wx = channels_last(p, x, 0)
    rpc = chunk_rows(p)
    slots = ceil_div(p.N * p.P, rpc)
    part = workspace("weight_partials", slots * p.K * p.R * p.S * p.C, x.dtype)
    if part.size:
        chunks_bwd_weight(
            xh,
            np.ascontiguousarray(gy).reshape(-1),
            part,
            (p.N, p.K, p.P, p.Q, p.C),
            (Hp, Wx, *p.stride, *p.dilation, p.R, p.S),
            rpc,
            lanes(x.itemsize),
        )
    gw = empty(p.w_shape, x.dtype)
    sum_partials(part.reshape(slots, p.K, p.R * p.S, p.C), gw.reshape(p.K, p.C, p.R * p.S))
    return gw
