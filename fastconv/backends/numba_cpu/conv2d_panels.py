"""conv2d v11_panels: an implicit GEMM over the whole batch on gathered pixel panels, for NCHW inputs, groups 1.

y (K x M) = w (K x C*R*S) @ X (C*R*S x M), M = N*P*Q output pixels of every image side by side, X the im2col
matrix (X[(c, t), m] = xpad[n, c, p*sh + r*dh, q*sw + s*dw] for m = (n, p, q), tap t = (r, s)), never built
whole: panels of NR = VECS*LANES consecutive pixels times the taps of CB input channels are gathered into a
scratch buffer (one panel at most PANEL_BYTES, so it stays in L1 while every output-channel block runs over it),
then a ROWS x VECS register tile (8 x 3 zmm with AVX-512) per block of ROWS output channels: per reduction step
VECS vector loads of the panel and ROWS broadcasts of w feed ROWS*VECS FMAs. w is read in place: its rows
(k, c*R*S + t) are already in the panel's reduction order, ROWS of them streamed side by side (a copy only when
K is not a multiple of ROWS), so no call repacks the weights.

    conv2d_fwd_v11_panels  iteration = (group of at most MAX_PANELS panels, group of KG output-channel blocks).
                           Pixels of a panel may come from several images (a 7x7 plane has 49), so small planes
                           fill whole tiles; K is split when the pixel groups alone are fewer than TARGET
                           iterations, but never below MIN_KB blocks per group (each gathered element must meet
                           enough output channels to pay for its gather): both from the shape alone. Per chunk of
                           CB input channels: gather (runs of one output row copied by vector moves; pixels past
                           M zero), then for each panel every block's tile, its sums resting in a per-iteration
                           buffer between chunks (bias preloaded), scattered to y at the end. Iterations own
                           disjoint (pixels, channels) of y: race-free, and no sum's order depends on threads.
                           Padded or strided: the input read from v5_rows's zero-padded phase planes, where every
                           tap is a constant offset and a run of outputs reads consecutive elements; unpadded
                           stride 1: x itself (a 1x1 conv as the 1 x H*W problem: one run per image); unpadded
                           strided: x itself, runs read with that stride.
Speed per layer: bench_results/late_layers.md.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...params import ConvParams
from .config import TILE_ROWS, TILE_VECS, ceil_div, filled, inner, kernel, lanes
from .conv2d_rows import Planes, bias_blocks, tap_offsets
from .simd import tile_bcast, tile_fma, tile_load, tile_store
from .simd_lanes import vec_copy, vec_load

ROWS, VECS = TILE_ROWS, TILE_VECS
PANEL_BYTES = 32 << 10  # one gathered panel: CB*R*S rows of NR pixels (192 bytes each with AVX-512)
MAX_PANELS = 16  # panels per iteration: a chunk of them (<= 512 KiB) and their sums stay in L2
MIN_KB = 16  # output-channel blocks per K-group at least
TARGET = 2  # K-groups when the pixels make one group (shape-only: never the thread count)


@inner
def panel_columns(m0, mn, P, Q, nr, steps, runs):
    """Runs of the pixels m = m0 + j, j < mn (m = (n*P + p)*Q + q) inside one output row and one panel of nr:
    runs[u] = (panel, first column in it, input offset n*nc + p*row + q*col of its first pixel at tap offset 0,
    length, negated for the last run) for steps = (nc, row, col). Returns the number of runs."""
    nc, row, col = steps
    u, j = 0, 0
    while j < mn:
        m = m0 + j
        q, pr = m % Q, m // Q
        take = min(mn - j, Q - q, nr - j % nr)
        runs[u, 0], runs[u, 1], runs[u, 2] = j // nr, j % nr, (pr // P) * nc + (pr % P) * row + q * col
        runs[u, 3] = take if j + take < mn else -take  # the last run: negative
        u += 1
        j += take
    return u


@inner
def gather(xt, panels, runs, nruns, mn, c0, cn, offs, L, col, nr, lanes):
    """panels[((g*cn + c)*T + t)*nr + j] = xt[(c0 + c)*L + offs[t] + the input offset of column g*nr + j] for
    channel c < cn, tap t and columns below mn (consecutive pixels of a run `col` elements apart); the columns of
    the last panel past mn are zero. Runs go in column order, so a run may copy whole vectors where they end
    inside its panel row: what it writes past its end a later run overwrites (except after the last run, which
    is masked). Strided runs load 2*LANES elements per vector; no load passes the buffer's end."""
    T = offs.size
    npan = ceil_div(mn, nr)
    if mn < npan * nr:
        for e in range((npan - 1) * cn * T * nr, npan * cn * T * nr):
            panels[e] = 0
    reach = (cn - 1) * L + offs.max()  # past the start of a run at tap offset 0, for any c, t
    for u in range(nruns):  # per run, every (channel, tap) row: the run's parameters stay in registers
        g, j, src0, take = runs[u, 0], runs[u, 1], runs[u, 2] + c0 * L, runs[u, 3]
        last, take = take < 0, abs(take)
        if col == 1 and not last and take <= lanes and j + lanes <= nr and src0 + reach + lanes <= xt.size:
            for c in range(cn):  # the common short run: one whole vector per row
                for t in range(T):
                    vec_copy(panels, ((g * cn + c) * T + t) * nr + j, xt, src0 + c * L + offs[t], lanes)
            continue
        for c in range(cn):
            for t in range(T):
                dst, src = ((g * cn + c) * T + t) * nr + j, src0 + c * L + offs[t]
                if col == 1:  # whole vectors where a later run overwrites the excess, else masked
                    for v in range(0, take, lanes):
                        whole = not last and j + v + lanes <= nr and src + v + lanes <= xt.size
                        vec_copy(panels, dst + v, xt, src + v, lanes if whole else take - v)
                elif col == 2 and src + 2 * (take + lanes) <= xt.size:
                    for v in range(0, take, lanes):
                        tile_store(vec_load(xt, src + 2 * v, 2), panels, dst + v, 0, 0, 1, 1, lanes, take - v)
                else:
                    for v in range(take):
                        panels[dst + v] = xt[src + v * col]


@kernel
def panels_fwd(xt, w, bias, y, shape, layout, offs, blocking, lanes):
    """shape = (N, C, K, P, Q); layout = (L, row, col): channel c of image n at xt[(n*C + c)*L], output (p, q) of
    tap t reading xt[... + p*row + q*col + offs[t]]; blocking = (CB, PG, KG). y[n, k, p, q] = bias[k] + sum over
    c, t of w[k, c*T + t] * that element (w flat (K', C*T), K' = K rounded up to ROWS). Iteration (group of PG
    panels, group of KG output-channel blocks) writes only its pixels' outputs of its channels."""
    N, C, K, P, Q = shape
    L, row, col = layout
    CB, PG, KG = blocking
    T, nr, PQ = offs.size, VECS * lanes, P * Q
    M, CT = N * PQ, C * offs.size
    npg, nkb = ceil_div(ceil_div(M, nr), PG), ceil_div(K, ROWS)
    nkg = ceil_div(nkb, KG)
    for it in prange(npg * nkg):
        kg, pg = it % nkg, it // nkg
        m0 = pg * PG * nr
        mn = min(PG * nr, M - m0)
        npan = ceil_div(mn, nr)
        kb0, kb1 = kg * KG, min(kg * KG + KG, nkb)
        nk = kb1 - kb0
        runs = np.empty((2 * PG * nr + 1, 4), np.int64)
        nruns = panel_columns(m0, mn, P, Q, nr, (C * L, row, col), runs)
        panels = np.empty(npan * min(CB, C) * T * nr, xt.dtype)
        sums = np.empty(npan * nk * ROWS * nr, xt.dtype)
        for c0 in range(0, C, CB):
            cn = min(CB, C - c0)
            gather(xt, panels, runs, nruns, mn, c0, cn, offs, L, col, nr, lanes)
            for g in range(npan):
                for kb in range(kb0, kb1):
                    so = (g * nk + kb - kb0) * ROWS * nr
                    acc = tile_bcast(bias, kb * ROWS, 1, ROWS, VECS)
                    if c0 > 0:  # resume the sums of the previous chunks
                        acc = tile_load(acc, sums, so, nr, lanes, ROWS, VECS, lanes, nr)
                    pa, wa = g * cn * T * nr, kb * ROWS * CT + c0 * T
                    for rc in range(cn * T):
                        acc = tile_fma(acc, panels, pa + rc * nr, lanes, w, wa + rc, CT)
                    tile_store(acc, sums, so, nr, lanes, ROWS, VECS, lanes, nr)
        k0, kn = kb0 * ROWS, min(kb1 * ROWS, K) - kb0 * ROWS
        for g in range(npan):
            scatter(sums[g * nk * ROWS * nr :], y, m0 + g * nr, min(nr, mn - g * nr), k0, kn, K, PQ, nr, lanes)


@inner
def scatter(sums, y, m0, mn, k0, kn, K, PQ, nr, lanes):
    """y[n, k0 + k, pq] = sums[k*nr + j] for pixels m0 + j = n*PQ + pq, j < mn, k < kn: vector moves per image."""
    j = 0
    while j < mn:
        m = m0 + j
        n, pq = m // PQ, m % PQ
        take = min(mn - j, PQ - pq)
        for k in range(kn):
            dst, src = (n * K + k0 + k) * PQ + pq, k * nr + j
            for v in range(0, take, lanes):
                vec_copy(y, dst + v, sums, src + v, take - v)
        j += take


# ---------------------------------------------------------------------------------------------- registry op
def supports(p: ConvParams) -> bool:
    return not p.is_grouped


def blocking(p: ConvParams, itemsize: int) -> tuple[int, int, int]:
    """(CB input channels per chunk, PG panels and KG output-channel blocks per iteration) from the shape alone:
    even chunks of at most PANEL_BYTES per panel; even groups of at most MAX_PANELS panels, an even number of
    them while they are few (two or four iterations balance over a few cores); K split into TARGET groups of at
    least MIN_KB blocks where the pixels make one group."""
    nr = VECS * lanes(itemsize)
    cb = max(1, PANEL_BYTES // (p.R * p.S * nr * itemsize))
    cb = ceil_div(p.C, ceil_div(p.C, cb))
    npan, nkb = ceil_div(p.N * p.P * p.Q, nr), ceil_div(p.K, ROWS)
    npg = ceil_div(npan, MAX_PANELS)
    if 1 < npg < 8 and npg % 2 and npg < npan:
        npg += 1
    nkg = min(max(1, nkb // MIN_KB), max(1, ceil_div(TARGET, npg)))
    return cb, ceil_div(npan, npg), ceil_div(nkb, nkg)


def layout(p: ConvParams, x: np.ndarray, lanes_: int) -> tuple[np.ndarray, tuple, np.ndarray, int]:
    """(input buffer, (L, row, col), tap offsets, Q as the kernel sees it): see the module doc."""
    (sh, sw), (dh, dw) = p.stride, p.dilation
    if p.is_padded:  # zero-padded phase planes: unit-stride runs
        pl = Planes.of(p.H, p.W, p.padding, p.stride, lanes_)
        return pl.split(x), (pl.L, pl.Wh, 1), tap_offsets(p, pl), p.Q
    offs = np.array([r * dh * p.W + s * dw for r in range(p.R) for s in range(p.S)], np.int64)
    if p.is_pointwise:
        return x.reshape(-1), (p.H * p.W, 0, 1), offs, p.P * p.Q
    return x.reshape(-1), (p.H * p.W, sh * p.W, sw), offs, p.Q


def conv2d_fwd_v11_panels(p: ConvParams, x: np.ndarray, w: np.ndarray, b) -> np.ndarray:
    lanes_ = lanes(x.itemsize)
    wf = np.ascontiguousarray(w).reshape(p.K, -1)
    if p.K % ROWS:  # the last block's rows past K read zeros
        wf = np.concatenate([wf, np.zeros((ROWS - p.K % ROWS, wf.shape[1]), w.dtype)])
    xt, steps, offs, Q = layout(p, x, lanes_)
    return filled(
        p.y_shape,
        x.dtype,
        lambda y: panels_fwd(
            xt,
            wf.reshape(-1),
            bias_blocks(p, b, x.dtype),
            y.reshape(-1),
            (p.N, p.C, p.K, p.P * p.Q // Q, Q),
            steps,
            offs,
            blocking(p, x.itemsize),
            lanes_,
        ),
    )
