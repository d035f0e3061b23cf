"""linear (fully connected, as torch.nn.functional.linear): y (N, K) = x (N, C) @ w (K, C)^T + b (K), and its
gradients gx = gy @ w, gw = gy^T @ x, gb = sum_n gy[n]. x, w, y are row-major; nothing is transposed in place.

    linear_dot_v2_rows          forward as N*K dot products along the contiguous rows of x and w: iteration =
                                DOT_FEATURES output features for all rows (parallel over features: the large
                                dimension of a GEMV-like call); a 4 x 4 tile of dot-product accumulators (4 rows of
                                x against 4 rows of w: 8 vector loads feed 16 FMAs, simd_lanes.tile_dot), leftover
                                rows 1 x 8, lane sums in a fixed tree at the end. w is read in place, never
                                repacked, so it wins while the batch is small (bench_results/linear.md: auto's
                                switch at GEMM_MIN_N = 128 comes from there).
    linear_gemm_v3_packed       all three products as Y[m, j] = sum_r A[m, r] * B[r, j] with A read as broadcast
                                scalars and B as vectors along j, each addressed through strides so that only the
                                forward's B = w^T needs a copy:
                                    forward   Y = y (N, K),  A = x,     B = w^T packed into zero-padded NR panels
                                    grad x    Y = gx (N, C), A = gy,    B = w read in place (NR-column slices)
                                    grad w    Y = gw (K, C), A = gy^T,  B = x in place; reduction over the batch
                                iteration = (reduction chunk, block of at most MB rows of Y, group of NR-column
                                panels): per KC-deep slice (B's KC x NR micro-panel stays in L1) a ROWS x VECS tile
                                of LANES-wide accumulators (8 x 3 zmm with AVX-512, NR = 48 float32): per step VECS
                                vector loads of B + ROWS broadcasts of A feed ROWS*VECS FMAs (simd.tile_fma); rows
                                left over after whole ROWS groups take a 1 x VECS tile, so no row past the end is
                                read; bias preloaded, partial sums resumed from Y between slices, masked edge
                                stores. Parallel over rows for a large batch, over panels for a small one (`split`:
                                about TARGET iterations, from the shape alone). The weight gradient of a small layer
                                on a large batch also cuts the batch into chunks summed into partial buffers that
                                are added in chunk order: the same bits with any thread count.
    linear_bwd_bias_v2_columns  the column sums of gy, rows added in order.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...arrays import empty
from ...params import LinearParams
from .config import TILE_ROWS, TILE_VECS, ceil_div, filled, inner, kernel, lanes, workspace
from .simd import tile_fma, tile_fma_tail, tile_load, tile_store, tile_zeros
from .simd_lanes import tile_dot, tile_dot_tail, tile_store_sums

ROWS, VECS = TILE_ROWS, TILE_VECS
KC = 128  # reduction depth per cache block: a KC x NR panel of B (24 KiB) stays in L1
MB = 128  # rows of Y per parallel iteration: A's MB x KC block (64 KiB float32) stays in L2
TARGET = 16  # parallel iterations to aim for (a shape-only rule: never the thread count)
PACK_ROWS = 16  # rows per block of pack_panels
DOT_ROWS, DOT_VECS = 4, 4  # linear_dot_v2_rows's register tile: 4 rows of x x 4 rows of w (16 accumulators, 8 loads)
DOT_WIDE = 2 * DOT_VECS  # linear_dot_v2_rows's tile for single rows: 1 x 8 rows of w
GEMM_MIN_N = (
    128  # algo="auto": the forward takes linear_gemm_v3_packed from this many rows on, linear_dot_v2_rows below
)
DOT_FEATURES = 16  # output features per linear_dot_v2_rows iteration


@inner
def dot_tile(acc, x, x_off, m, w, w_off, nk, C, whole, lanes):
    """acc[i][j] += the lanes of x row i times w row j over c < C (rows x[x_off + i*C ...], w[w_off + j*C ...]),
    for i < m, j < nk: unmasked vector steps if the tile is `whole` (m and nk fill it), masked ones after."""
    c = 0
    if whole:
        while c + lanes <= C:
            acc = tile_dot(acc, x, x_off + c, C, w, w_off + c, C)
            c += lanes
    while c < C:
        acc = tile_dot_tail(acc, x, x_off + c, C, m, w, w_off + c, C, nk, C - c)
        c += lanes
    return acc


@kernel
def linear_dot(x, w, bias, y, N, C, K, kb, lanes):
    """y[n, k] = bias[k] + sum_c x[n, c] * w[k, c] (x, w, y flat, row-major). Iteration = kb consecutive output
    features for every row n, so iterations write disjoint columns of y. Rows go in groups of DOT_ROWS with a
    DOT_ROWS x DOT_VECS tile of dot products (each x vector meets DOT_VECS rows of w), leftover rows one at a time
    with a 1 x DOT_WIDE tile; features past K and lanes past C are masked."""
    for it in prange(ceil_div(K, kb)):
        for k0 in range(it * kb, min(it * kb + kb, K), DOT_WIDE):
            nk = min(DOT_WIDE, K - k0)
            n0 = 0
            while n0 + DOT_ROWS <= N:
                for kk in range(k0, k0 + nk, DOT_VECS):
                    nkk = min(DOT_VECS, K - kk)
                    acc = dot_tile(
                        tile_zeros(x, DOT_ROWS, DOT_VECS),
                        x,
                        n0 * C,
                        DOT_ROWS,
                        w,
                        kk * C,
                        nkk,
                        C,
                        nkk == DOT_VECS,
                        lanes,
                    )
                    tile_store_sums(acc, y, n0 * K + kk, K, 1, DOT_ROWS, nkk)
                n0 += DOT_ROWS
            for n in range(n0, N):
                row = dot_tile(tile_zeros(x, 1, DOT_WIDE), x, n * C, 1, w, k0 * C, nk, C, nk == DOT_WIDE, lanes)
                tile_store_sums(row, y, n * K + k0, K, 1, 1, nk)
            for n in range(N):
                for j in range(k0, k0 + nk):
                    y[n * K + j] += bias[j]


@inner
def panel_tile(acc, a, a_off, a_m, a_k, b, b_off, b_k, bias, y, y_off, J, m, left, r0, r1, resume, lanes):
    """One register tile of gemm_tiles (its shape is acc's): start from the partial sums in y (resume), else the
    bias (or zero); add A rows (a[a_off + i*a_m + r*a_k]) times B micro-panel rows (b[b_off + r*b_k : +NR]) for
    r0 <= r < r1; store rows i < m and columns < left of it at y[y_off + i*J ...]."""
    if resume:
        acc = tile_load(acc, y, y_off, J, lanes, m, VECS, lanes, left)
    elif bias.size:
        acc = tile_load(acc, bias, y_off % J, 0, lanes, m, VECS, lanes, left)  # y_off % J: the first column
    if left >= VECS * lanes:
        for r in range(r0, r1):
            acc = tile_fma(acc, b, b_off + r * b_k, lanes, a, a_off + r * a_k, a_m)
    else:
        for r in range(r0, r1):
            acc = tile_fma_tail(acc, b, b_off + r * b_k, lanes, a, a_off + r * a_k, a_m, left)
    tile_store(acc, y, y_off, J, lanes, m, VECS, lanes, left)


@kernel
def gemm_tiles(a, a_m, a_k, b, b_panel, b_k, bias, y, M, J, R, chunk, mb, jg, lanes):
    """y[s*M*J + m*J + j] = bias[j] + sum over r in chunk s (r < R) of a[m*a_m + r*a_k] * b[(j // NR)*b_panel +
    r*b_k + j % NR] for rows m < M and columns j < J; an empty bias (size 0) adds nothing. Iteration = (chunk s,
    block of mb rows, group of jg panels): iterations write disjoint tiles of y, each summing its KC-deep slices
    in order. Whole groups of ROWS rows take the ROWS x VECS tile, the rows left over a 1 x VECS tile each, so
    no row past M is read."""
    nr = VECS * lanes
    nmb, npanel, ns = ceil_div(M, mb), ceil_div(J, nr), max(1, ceil_div(R, chunk))
    njg = ceil_div(npanel, jg)
    for it in prange(ns * nmb * njg):
        g, blk, s = it % njg, (it // njg) % nmb, it // (njg * nmb)
        r_first, r_end = s * chunk, min(s * chunk + chunk, R)
        m_end = min(blk * mb + mb, M)
        for r0 in range(r_first, max(r_end, r_first + 1), KC):  # at least once: R = 0 stores the bias
            r1 = min(r0 + KC, r_end)
            for jp in range(g * jg, min(g * jg + jg, npanel)):
                j0 = jp * nr
                m0 = blk * mb
                while m0 < m_end:
                    y_off = (s * M + m0) * J + j0
                    if m_end - m0 >= ROWS:
                        panel_tile(
                            tile_zeros(y, ROWS, VECS),
                            a,
                            m0 * a_m,
                            a_m,
                            a_k,
                            b,
                            jp * b_panel,
                            b_k,
                            bias,
                            y,
                            y_off,
                            J,
                            ROWS,
                            J - j0,
                            r0,
                            r1,
                            r0 > r_first,
                            lanes,
                        )
                        m0 += ROWS
                    else:
                        panel_tile(
                            tile_zeros(y, 1, VECS),
                            a,
                            m0 * a_m,
                            a_m,
                            a_k,
                            b,
                            jp * b_panel,
                            b_k,
                            bias,
                            y,
                            y_off,
                            J,
                            1,
                            J - j0,
                            r0,
                            r1,
                            r0 > r_first,
                            lanes,
                        )
                        m0 += 1


@kernel
def pack_panels(src, s_r, s_j, R, J, bp, nr):
    """bp[(jp*R + r)*nr + jj] = src[r*s_r + (jp*nr + jj)*s_j]: B (R x J, element strides s_r and s_j) cut into
    panels of nr columns, zero past column J. One panel per iteration (disjoint writes); rows go in blocks of
    PACK_ROWS so that a block's source lines and its slice of the panel stay in L1 whichever stride is 1."""
    for jp in prange(ceil_div(J, nr)):
        for r0 in range(0, R, PACK_ROWS):
            r1 = min(r0 + PACK_ROWS, R)
            for jj in range(nr):
                j = jp * nr + jj
                for r in range(r0, r1):
                    bp[(jp * R + r) * nr + jj] = src[r * s_r + j * s_j] if j < J else 0


@kernel
def column_sums(g, out, kb):
    """out[k] = sum_n g[n, k], rows added in order. One block of kb columns per iteration."""
    N, K = g.shape
    for it in prange(ceil_div(K, kb)):
        k0, k1 = it * kb, min(it * kb + kb, K)
        for k in range(k0, k1):
            out[k] = 0
        for n in range(N):
            for k in range(k0, k1):
                out[k] += g[n, k]


# ---------------------------------------------------------------------------------------------- launch
def split(M: int, J: int, R: int, nr: int, chunked: bool) -> tuple[int, int, int]:
    """(mb, jg, chunk) of gemm_tiles from the shape alone: about TARGET iterations (blocks of at most MB rows,
    panel groups), and when that leaves too few, the reduction cut into chunks at least KC deep."""
    mtiles, npanel = max(1, ceil_div(M, ROWS)), max(1, ceil_div(J, nr))
    nmb = max(ceil_div(M, MB), min(mtiles, ceil_div(TARGET, npanel)))
    mb = ROWS * ceil_div(mtiles, nmb)
    nmb = ceil_div(mtiles * ROWS, mb)
    jg = ceil_div(npanel, min(npanel, ceil_div(TARGET, nmb)))
    tiles = nmb * ceil_div(npanel, jg)
    chunks = min(ceil_div(TARGET, tiles), max(1, R // KC)) if chunked else 1
    return mb, jg, max(1, ceil_div(R, chunks))


def gemm(a, a_m: int, a_k: int, b, s_r: int, s_j: int, bias, y, M: int, J: int, R: int, chunked: bool = False) -> None:
    """y (M, J) = A @ B (+ bias[j]) with gemm_tiles: A[m, r] = a[m*a_m + r*a_k], B[r, j] = b[r*s_r + j*s_j].
    B is packed into panels when its rows are not contiguous (s_j != 1), else read in place (packing B with
    contiguous rows measured no faster, even at N=256, 4096 -> 4096). chunked: partial sums per chunk of the
    reduction, added in chunk order."""
    lanes_ = lanes(y.itemsize)
    nr = VECS * lanes_
    mb, jg, chunk = split(M, J, R, nr, chunked)
    a, b = a.reshape(-1), b.reshape(-1)
    b_panel, b_k = nr, s_r
    if s_j != 1:
        bp = workspace("linear_panels", ceil_div(J, nr) * nr * R, y.dtype)
        if bp.size:
            pack_panels(b, s_r, s_j, R, J, bp, nr)
        b, b_panel, b_k = bp, R * nr, nr
    bias = np.zeros(0, y.dtype) if bias is None else bias
    chunks = max(1, ceil_div(R, chunk))
    out = y.reshape(-1) if chunks == 1 else workspace("linear_partials", chunks * M * J, y.dtype)
    gemm_tiles(a, a_m, a_k, b, b_panel, b_k, bias, out, M, J, R, chunk, mb, jg, lanes_)
    if chunks > 1:
        np.sum(out.reshape(chunks, M, J), axis=0, out=y.reshape(M, J))


# ---------------------------------------------------------------------------------------------- registry ops
def priority(algo: str):
    """algo="auto": for the forward linear_dot_v2_rows below GEMM_MIN_N rows, linear_gemm_v3_packed from there
    (the backward ops have one algorithm each)."""
    return lambda p: (p.N < GEMM_MIN_N) == (algo == "linear_dot_v2_rows")


def linear_dot_v2_rows(p: LinearParams, x: np.ndarray, w: np.ndarray, b) -> np.ndarray:
    bias = np.zeros(p.K, x.dtype) if b is None else b
    return filled(
        (p.N, p.K),
        x.dtype,
        lambda y: linear_dot(
            x.reshape(-1), w.reshape(-1), bias, y.reshape(-1), p.N, p.C, p.K, DOT_FEATURES, lanes(x.itemsize)
        ),
    )


def linear_gemm_v3_packed(p: LinearParams, x: np.ndarray, w: np.ndarray, b) -> np.ndarray:
    """y = x @ w^T: A = x, B = w^T (packed)."""
    return filled((p.N, p.K), x.dtype, lambda y: gemm(x, p.C, 1, w, 1, p.C, b, y, p.N, p.K, p.C))


def linear_gemm_v3_packed_bwd_data(p: LinearParams, gy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """gx = gy @ w: A = gy, B = w."""
    return filled((p.N, p.C), gy.dtype, lambda gx: gemm(gy, p.K, 1, w, p.C, 1, None, gx, p.N, p.C, p.K))


def linear_gemm_v3_packed_bwd_weight(p: LinearParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """gw = gy^T @ x: A = gy^T (strides 1, K), B = x; the batch is the reduction."""
    return filled((p.K, p.C), gy.dtype, lambda gw: gemm(gy, 1, p.K, x, p.C, 1, None, gw, p.K, p.C, p.N, chunked=True))


def linear_bwd_bias_v2_columns(p: LinearParams, gy: np.ndarray) -> np.ndarray:
    gb = empty((p.K,), gy.dtype)
    if p.K:
        column_sums(gy, gb, 256)
    return gb
