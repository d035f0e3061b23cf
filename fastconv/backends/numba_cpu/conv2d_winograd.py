"""conv2d v8_winograd: Winograd F(2x2, 3x3) for 3x3 kernels at stride 1 without dilation (any padding, groups).

Output tile (th, tw) is the 2x2 block y[.., 2th + a, 2tw + b]; it depends on the 4x4 patch d of the zero-padded
input at rows 2th.., columns 2tw.. (neighbouring patches overlap by 2). With the transforms of Lavin & Gray (2015)
    U[xi, k, c] = (G g[k, c] G^T)[xi]           filter transform, every call (float64 arithmetic)
    V[xi, c, t] = (B^T d[c, t] B)[xi]           input transform: xi runs over the 16 elements of the 4x4 result
    M[xi, k, t] = sum_c U[xi, k, c] V[xi, c, t]  16 independent GEMMs (Kg x Cg) @ (Cg x tiles): the FLOPs
    y[k, t]     = A^T M[:, k, t] A + bias[k]     output transform
a tile costs 16 multiply-adds per (k, c) instead of the direct 36: 2.25x fewer.

    conv2d_fwd_v8_winograd  iteration = (g, block of TB = VECS*LANES consecutive tiles, numbered row-major across
                            the whole batch), all Kg output channels, in its thread's scratch: input transform of
                            the block for all Cg channels (one vector = up to LANES tiles of one tile row, read with
                            stride-2 loads from zero-padded planes), then for each block of CB input channels, xi
                            and block of ROWS output channels the v5_rows micro-kernel (a ROWS x VECS register tile;
                            per c VECS vector loads of V + ROWS broadcasts of U feed ROWS*VECS FMAs), then the output
                            transform with bias and masked stores (odd P/Q: the tiles' missing row/column is not
                            stored). The scratch, V (16*Cg*TB) and M (16*Kp*TB elements), stays in L2 for Cg, Kg <=
                            128 or so; the filter transform is a small parallel kernel of its own.
The GEMMs run near the FMA peak; the transforms, the padded copy and the output's first touch take a large part
of the time, so the gain over v5_rows is below 2.25x (bench_results/numba_kernel_notes.md, numba_cpu.md).

Accuracy: each GEMM sums Cg terms, not 9*Cg, so the float32 error is below v5_rows's (measured in
bench_results/numba_kernel_notes.md), inside the shared tolerance. NaN propagates as in the reference: B^T and
A^T are zero exactly where an input element does not reach an output. A +-Inf input can come out as NaN where the
reference has +-Inf (Inf - Inf in a transform).
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import prange

from ...params import ConvParams
from .config import FASTMATH, TILE_ROWS, TILE_VECS, ceil_div, filled, inner, kernel, lanes, thread_slot, workspace
from .conv2d_direct import bias_or_zeros
from .conv2d_rows import Planes
from .simd import tile_bcast, tile_fma, tile_load, tile_store, tile_zeros
from .simd_lanes import tile_add, tile_sub, tile_zip, vec_lanes, vec_load

ROWS, VECS = TILE_ROWS, TILE_VECS
XI = 16  # elements of a transformed 4x4 tile
OUTPUT_TILE = 2  # outputs per tile along each axis (F(2x2, 3x3))
# input channels per GEMM cache block: CB*TB elements of V (12 KiB in float32) stay in L1 (informally:
# 64 and 128 alike, 32 slower, on C=K=128/256/512)
CB = 64


@inner(inline="always")
def bt4(d0, d1, d2, d3):
    """B^T applied to four rows (or columns) of a 4x4 patch, lane by lane."""
    return tile_sub(d0, d2), tile_add(d1, d2), tile_sub(d2, d1), tile_sub(d1, d3)


@inner(inline="always")
def at4(m0, m1, m2, m3):
    """A^T applied to four rows (or columns) of a transformed tile, lane by lane."""
    return tile_add(tile_add(m0, m1), m2), tile_sub(tile_sub(m1, m2), m3)


@inner(inline="always")
def bt_row(xt, off):
    """(d B)[r, :] for the patch row starting at xt[off] of LANES tiles side by side (stride-2 loads)."""
    return bt4(vec_load(xt, off, 2), vec_load(xt, off + 1, 2), vec_load(xt, off + 2, 2), vec_load(xt, off + 3, 2))


@inner(inline="always")
def put4(v, off, step, cols, n):
    """v[off + i*step + l] = cols[i][l] for l < n: one column of the transformed tile (xi = 4i + s)."""
    tile_store(cols[0], v, off, 0, 0, 1, 1, 0, n)
    tile_store(cols[1], v, off + step, 0, 0, 1, 1, 0, n)
    tile_store(cols[2], v, off + 2 * step, 0, 0, 1, 1, 0, n)
    tile_store(cols[3], v, off + 3 * step, 0, 0, 1, 1, 0, n)


@inner(inline="always")
def input_tiles(xt, src, Wh, v, dst, xi_step, n):
    """v[dst + xi*xi_step + l] = (B^T d_l B)[xi] for the n <= LANES tiles l of one tile row whose patches d_l start
    at xt[src + 2l] (rows Wh apart). Lanes past n are computed from the slack and not stored."""
    r0, r1 = bt_row(xt, src), bt_row(xt, src + Wh)
    r2, r3 = bt_row(xt, src + 2 * Wh), bt_row(xt, src + 3 * Wh)
    put4(v, dst, 4 * xi_step, bt4(r0[0], r1[0], r2[0], r3[0]), n)
    put4(v, dst + xi_step, 4 * xi_step, bt4(r0[1], r1[1], r2[1], r3[1]), n)
    put4(v, dst + 2 * xi_step, 4 * xi_step, bt4(r0[2], r1[2], r2[2], r3[2]), n)
    put4(v, dst + 3 * xi_step, 4 * xi_step, bt4(r0[3], r1[3], r2[3], r3[3]), n)


@inner(inline="always")
def at_col(m, off, xi_step):
    """(A^T M)[:, s] for column s of LANES transformed tiles at m[off + (4i + s)*xi_step]."""
    return at4(
        vec_load(m, off, 1),
        vec_load(m, off + 4 * xi_step, 1),
        vec_load(m, off + 8 * xi_step, 1),
        vec_load(m, off + 12 * xi_step, 1),
    )


@inner(inline="always")
def store_row(y, off, a0, a1, bias, k, n):
    """y[off + 2l + b] = a_b[l] + bias[k] for 2l + b < n: one output row of LANES tiles."""
    row = tile_zip(tile_add(a0, tile_bcast(bias, k, 0, 1, 1)), tile_add(a1, tile_bcast(bias, k, 0, 1, 1)))
    tile_store(row, y, off, 0, vec_lanes(y), 1, 2, vec_lanes(y), n)


@inner(inline="always")
def output_tiles(m, src, xi_step, bias, k, y, dst, Q, rows, n):
    """y[dst + a*Q + 2l + b] = (A^T M_l A)[a, b] + bias[k] for the tiles l of one tile row whose 16 transformed
    values lie at m[src + xi*xi_step + l], output rows a < rows and columns 2l + b < n."""
    c0, c1 = at_col(m, src, xi_step), at_col(m, src + xi_step, xi_step)
    c2, c3 = at_col(m, src + 2 * xi_step, xi_step), at_col(m, src + 3 * xi_step, xi_step)
    top = at4(c0[0], c1[0], c2[0], c3[0])
    store_row(y, dst, top[0], top[1], bias, k, n)
    if rows > 1:
        bottom = at4(c0[1], c1[1], c2[1], c3[1])
        store_row(y, dst + Q, bottom[0], bottom[1], bias, k, n)


@inner(inline="always")
def g_times(a, b, d, r):
    """Element r of G @ (a, b, d), in float64: the filter transform along one axis."""
    a, b, d = np.float64(a), np.float64(b), np.float64(d)
    return a if r == 0 else (a + b + d) * 0.5 if r == 1 else (a - b + d) * 0.5 if r == 2 else d


# In the order written (no re-association): the float64 sums of G as written, whatever LLVM's vectoriser would
# regroup (float32 results unchanged by this).
@functools.partial(kernel, fastmath=FASTMATH - {"reassoc"})
def transform_filters(w, u, G, Kg, Cg):
    """u[g, xi, k // ROWS, c, k % ROWS] = (G w[g*Kg + k, c] G^T)[xi], zero for the padded output channels
    k >= Kg. Iteration (group, block of ROWS output channels) writes its own [g, :, kb] slices."""
    nkb = ceil_div(Kg, ROWS)
    step = nkb * Cg * ROWS  # from xi to xi + 1
    for it in prange(G * nkb):
        g, kb = it // nkb, it % nkb
        for i in range(ROWS):
            k, keep = min(kb * ROWS + i, Kg - 1), kb * ROWS + i < Kg
            for c in range(Cg):
                f = w[g * Kg + k, c]
                for r in range(4):
                    h0, h1, h2 = (
                        g_times(f[0, 0], f[1, 0], f[2, 0], r),
                        g_times(f[0, 1], f[1, 1], f[2, 1], r),
                        g_times(f[0, 2], f[1, 2], f[2, 2], r),
                    )
                    at = (((g * XI + 4 * r) * nkb + kb) * Cg + c) * ROWS + i
                    for s in range(4):
                        u[at + s * step] = g_times(h0, h1, h2, s) if keep else 0


@inner
def slot_strides(Cg, Kg, lanes):
    """Elements from one xi to the next in a slot's V (Cg rows of TB tiles) and M (Kp rows): one vector more
    than the rows, so that the 16 xi of a tile do not fall into one L1 set (a multiple of 4 KiB apart)."""
    TB = VECS * lanes
    return Cg * TB + lanes, ceil_div(Kg, ROWS) * ROWS * TB + lanes


@inner
def block_gemms(u, g, v, v_xi, m, m_xi, Cg, nkb, lanes):
    """m[xi*m_xi + k*TB + j] = sum_c u[g, xi, k // ROWS, c, k % ROWS] * v[xi*v_xi + c*TB + j]: the 16 GEMMs of one
    tile block, as ROWS x VECS register tiles; input channels in blocks of CB, whose V rows (CB*TB elements) stay
    in L1 while every output-channel block passes over them (partial sums resumed from m)."""
    TB = VECS * lanes
    for c0 in range(0, Cg, CB):
        for xi in range(XI):
            for kb in range(nkb):
                out = xi * m_xi + kb * ROWS * TB
                acc = tile_zeros(v, ROWS, VECS)
                if c0 > 0:
                    acc = tile_load(acc, m, out, TB, lanes, ROWS, VECS, lanes, TB)
                ua, va = ((g * XI + xi) * nkb + kb) * Cg * ROWS, xi * v_xi
                for c in range(c0, min(c0 + CB, Cg)):
                    acc = tile_fma(acc, v, va + c * TB, lanes, u, ua + c * ROWS, 1)
                tile_store(acc, m, out, TB, lanes, ROWS, VECS, lanes, TB)


@kernel
def winograd_fwd(xt, L, Wh, u, bias, y, v_slots, m_slots, N, G, Cg, Kg, P, Q, lanes):
    """y[n, g*Kg + k] = conv of the planes xt[((n*G + g)*Cg + c)*L :] with the filters packed in u (see module
    doc). Tiles are numbered across the batch, t = (n*TP + th)*TQ + tw, so small images fill whole blocks.
    Iteration (g, tile block) writes only the outputs of its own tiles; its V and M live in the scratch slot of the
    thread running it (config.thread_slot; the workspace belongs to the calling Python thread), fully written
    before they are read."""
    TB, TP, TQ = VECS * lanes, (P + 1) // 2, (Q + 1) // 2
    T = N * TP * TQ
    ntb, nkb = ceil_div(T, TB), ceil_div(Kg, ROWS)
    v_xi, m_xi = slot_strides(Cg, Kg, lanes)
    for it in prange(G * ntb):
        tb, g = it % ntb, it // ntb
        v, m = v_slots[thread_slot()], m_slots[thread_slot()]
        t0, t1 = tb * TB, min(tb * TB + TB, T)
        if t1 - t0 < TB:  # the last block: its unused lanes are zero, not stale scratch
            for xi in range(XI):
                for c in range(Cg):
                    v[xi * v_xi + c * TB + t1 - t0 : xi * v_xi + (c + 1) * TB] = 0
        for c in range(Cg):  # one input channel at a time: its rows stream in order
            t = t0
            while t < t1:  # runs of tiles within one tile row, up to LANES at a time
                row, tw = t // TQ, t % TQ  # row = n*TP + th
                cnt = min(lanes, TQ - tw, t1 - t)
                src = ((row // TP * G + g) * Cg + c) * L + 2 * (row % TP) * Wh + 2 * tw
                input_tiles(xt, src, Wh, v, c * TB + t - t0, v_xi, cnt)
                t += cnt
        block_gemms(u, g, v, v_xi, m, m_xi, Cg, nkb, lanes)
        for k in range(Kg):  # one output channel at a time
            t = t0
            while t < t1:
                row, tw = t // TQ, t % TQ
                cnt = min(lanes, TQ - tw, t1 - t)
                n, th = row // TP, row % TP
                output_tiles(
                    m,
                    k * TB + t - t0,
                    m_xi,
                    bias,
                    g * Kg + k,
                    y,
                    ((n * G + g) * Kg + k) * P * Q + 2 * th * Q + 2 * tw,
                    Q,
                    P - 2 * th,
                    min(2 * cnt, Q - 2 * tw),
                )
                t += cnt


# ---------------------------------------------------------------------------------------------- registry ops
def supports(p: ConvParams) -> bool:
    return (p.R, p.S) == (3, 3) and not p.is_strided and not p.is_dilated


@functools.lru_cache(maxsize=1024)
def _layout(p: ConvParams, itemsize: int) -> tuple:
    """What a call on params p computes before its kernels, once per params: the zero-padded planes (every patch
    row, and the 2*LANES elements a stride-2 vector load reads, inside the plane), the scratch sizes."""
    lanes_ = lanes(itemsize)
    TP, TQ = ceil_div(p.P, 2), ceil_div(p.Q, 2)
    pl = Planes.of(p.H, p.W, p.padding, (1, 1), lanes_, 2 * TP + 2, max(2 * TQ + 2, lanes_), vecs=1)
    slots, (v_xi, m_xi) = numba.config.NUMBA_NUM_THREADS, slot_strides(p.Cg, p.Kg, lanes_)
    u_size = p.groups * XI * ceil_div(p.Kg, ROWS) * ROWS * p.Cg
    return lanes_, pl, slots, slots * XI * v_xi, slots * XI * m_xi, u_size


def conv2d_fwd_v8_winograd(p: ConvParams, x: np.ndarray, w: np.ndarray, b) -> np.ndarray:
    lanes_, pl, slots, v_size, m_size, u_size = _layout(p, x.itemsize)
    xt = pl.split(x)
    v = workspace("winograd_v", v_size, x.dtype).reshape(slots, -1)
    m = workspace("winograd_m", m_size, x.dtype).reshape(slots, -1)
    u = workspace("winograd_u", u_size, x.dtype)
    transform_filters(w, u, p.groups, p.Kg, p.Cg)
    bias = bias_or_zeros(p, b, x.dtype)
    return filled(
        p.y_shape,
        x.dtype,
        lambda y: winograd_fwd(
            xt, pl.L, pl.Wh, u, bias, y.reshape(-1), v, m, p.N, p.groups, p.Cg, p.Kg, p.P, p.Q, lanes_
        ),
    )
