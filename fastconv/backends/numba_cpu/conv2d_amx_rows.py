"""bfloat16 convolution as an implicit GEMM on AMX tiles with the pixels as the A operand, read in place.

    conv2d_fwd_v21_amx_rows        any ungrouped conv (stride, dilation, zero padding): y[n, k, p, q] = b[k] +
                                   sum over (r, s, c) of w[k, c, r, s] * x[n, c, p*sh + r*dh - top, q*sw + s*dw - left]
    conv2d_bwd_data_v12_amx_rows   the data gradient of a stride-1 conv: the same kernel over grad_out with the
                                   flipped weights (conv2d_amx.data_gradient)

x is packed once per call, channels last in blocks of 32: xa[n, h, cb, phase, j, c] = bfloat16 of
x[n, 32 cb + c, h - top, j*sw + phase - left] (zero outside x and past C), so one pixel's 32 channels of a block
are one 64-byte row and the pixels of one phase (column mod sw) of one padded row follow each other. A tdpbf16ps A
tile (16 output pixels q0..q0+15 of output row p x 32 channels, at tap (r, s)) is then 1 KiB of consecutive,
aligned bytes read in place: row p*sh + r*dh, phase (s*dw) mod sw, from column q0 + (s*dw) div sw. No im2col
copy (v17) and no tile row a plane away from the next or straddling two cache lines (v10). The weights are the B
operand, packed per call into VNNI tiles: wb[kb, step, half, i, col] = (w[k, c, r, s], w[k, c + 1, r, s]),
k = 32 kb + 16 half + col, c = 32 cb + 2i, step = (r*S + s) * blocks + cb.

One parallel iteration computes 32 output channels (kb) of a group of output tiles of one sample n (groups so
that there are about TASKS iterations): for each pair of 16-pixel output tiles (tiles run along output rows,
ceil(Q/16) per row; an odd last tile is paired with itself and stored once) a 2 x 2 block of accumulators
(tmm0..tmm3: pixels x channels) starts from the bias and takes R*S*C/32 steps of amx.amx_step_at (2 A tiles from
xa, 2 B tiles from the iteration's weight panel, which stays in cache across the pairs), then goes through a
32 x 32 scratch into y, transposed: the scratch read in order, each pixel's channels a column of y. For short
reductions this store costs as much as the tile loop (N8 C64 56x56 3x3: 1.3 ms without it, 2.6-3.0 with it,
3.5-3.7 reading the scratch down its columns instead). Every output is owned by one iteration and summed in a
fixed order, so the thread count never changes a bit.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...params import ConvParams, ceil_div
from . import amx, gemm_amx
from .config import kernel
from .conv2d_amx import conv_entries, to_bf16

B32, B_TILE = gemm_amx.B32, gemm_amx.B_TILE
TASKS = 32  # parallel iterations to aim for (tile pairs of a sample split into groups): a shape-only rule
MIN_MACS_PER_INPUT, MIN_PIXELS = 256, 1024  # auto (priority): v10's work rule, and outputs per weight element


def priority(p: ConvParams) -> float:
    """Ahead of conv2d_fwd_v10_amx (100) for convs with a window where the activations outweigh the weights
    (packed per call, about 1 ns per weight element here): measured (benchmarks/bf16_cpu.py and single cases, 2
    threads, under load) N8 C64 56x56 K64 3x3 3.07 vs v10 3.44 ms, N8 C128 28x28 3x3 s2 1.02 vs 1.85, N8 C128
    28x28 3x3 3.95 vs 4.67, N2 C3 224x224 7x7 s2 2.98 vs 3.35; behind where N*P*Q is small (N1 C256 14x14 K256
    3x3: 1.18 vs 0.84 ms, the late layer N8 7x7 ties) and for 1x1 (v17)."""
    windowed = p.R * p.S > 1 and p.N * p.P * p.Q >= MIN_PIXELS
    return 110 if windowed and p.macs >= MIN_MACS_PER_INPUT * p.N * p.C * p.H * p.W else -110


def priority_bwd_data(p: ConvParams) -> float:
    """As priority, for the forward over grad_out (N, K, P, Q) into the N*H*W pixels of grad_x."""
    windowed = p.R * p.S > 1 and p.N * p.H * p.W >= MIN_PIXELS
    return 110 if windowed and p.macs >= MIN_MACS_PER_INPUT * p.N * p.K * p.P * p.Q else -110


@kernel
def pack_rows(xu, xa, top, left, sw):
    """xa[n, h, cb, ph, j, c] = bfloat16 bits of x[n, 32 cb + c, h - top, j*sw + ph - left], zero outside x and
    past C (xu: x's float32 bits, any strides); every element is written."""
    N, C, H, W = xu.shape
    hp, blocks, phases, wq = xa.shape[1], xa.shape[2], xa.shape[3], xa.shape[4]
    for t in prange(N * hp):
        n, h = t // hp, t % hp
        hx = h - top
        tmp = np.empty((B32, 16), np.uint16)
        for cb in range(blocks):
            for ph in range(phases):
                out = xa[n, h, cb, ph]
                out[:] = 0
                if hx < 0 or hx >= H:
                    continue
                cn = min(B32, C - cb * B32)
                j0, j1 = max(0, ceil_div(left - ph, sw)), min(wq, ceil_div(W + left - ph, sw))  # inside x
                for jb in range(j0, j1, 16):  # 16 columns of 32 channel rows rounded side by side, then transposed
                    jn = min(16, j1 - jb)
                    for c in range(cn):
                        src = xu[n, cb * B32 + c, hx]
                        for j in range(jn):
                            tmp[c, j] = to_bf16(src[(jb + j) * sw + ph - left])
                    for j in range(jn):
                        run = out[jb + j]
                        for c in range(cn):
                            run[c] = tmp[c, j]


@kernel
def pack_weight_pairs(wu, wb):
    """wb[kb, step, half, i, col] = the bfloat16 pair (w[k, c, r, s], w[k, c + 1, r, s]) as one uint32, low half
    first, k = 32 kb + 16 half + col, c = 32 cb + 2i, step = (r*S + s) * blocks + cb; zero past K and C. Per step
    a 32 x 32 block of w is rounded into L1 scratch, then written out as one 2 KiB run."""
    K, C, R, S = wu.shape
    k_blocks, steps = wb.shape[0], wb.shape[1]
    blocks = steps // (R * S)
    for kb in prange(k_blocks):
        tmp = np.empty((B32, B32), np.uint32)  # [k][c]
        for cb in range(blocks):
            for tap in range(R * S):
                r, s = tap // S, tap % S
                whole = (kb + 1) * B32 <= K and (cb + 1) * B32 <= C
                for kk in range(B32):
                    k = kb * B32 + kk
                    if whole:
                        for cc in range(B32):
                            tmp[kk, cc] = to_bf16(wu[k, cb * B32 + cc, r, s])
                        continue
                    for cc in range(B32):
                        c = cb * B32 + cc
                        tmp[kk, cc] = to_bf16(wu[k, c, r, s]) if k < K and c < C else np.uint32(0)
                for half in range(2):
                    for i in range(16):
                        out = wb[kb, tap * blocks + cb, half, i]
                        for col in range(16):
                            out[col] = tmp[half * 16 + col, 2 * i] | (tmp[half * 16 + col, 2 * i + 1] << np.uint32(16))


@kernel
def conv_rows(xa, wb, init, y, cfg, R, S, sh, sw, dh, dw, qt, tasks):
    """y (N, K, P, Q) from xa, the packed weights wb and the padded bias init (see the module docstring)."""
    N, K, P, Q = y.shape
    hp, blocks, phases, wq = xa.shape[1], xa.shape[2], xa.shape[3], xa.shape[4]
    k_blocks, tiles = ceil_div(K, B32), P * qt
    run = phases * wq * B32  # uint16 elements of one channel block of one padded input row
    steps, pairs = R * S * blocks, ceil_div(tiles, 2)
    groups = min(pairs, ceil_div(tasks, N * k_blocks))  # of the tile pairs of one sample: enough iterations
    per = ceil_div(pairs, groups)
    flat = xa.reshape(-1)
    for t in prange(N * k_blocks * groups):
        n, kb, g = t // (k_blocks * groups), t // groups % k_blocks, t % groups
        c = np.empty(B32 * B32, np.float32)
        amx.amx_configure(cfg)
        for u in range(g * per, min(pairs, (g + 1) * per)):
            t1 = min(2 * u + 1, tiles - 1)
            p0, q0, p1, q1 = 2 * u // qt, (2 * u % qt) * 16, t1 // qt, (t1 % qt) * 16
            amx.amx_begin(init, kb * B32, 0)
            b_at = kb * steps * 2 * B_TILE
            for r in range(R):
                base0 = ((n * hp + p0 * sh + r * dh) * blocks * run) + q0 * B32
                base1 = ((n * hp + p1 * sh + r * dh) * blocks * run) + q1 * B32
                for s in range(S):
                    shift = ((s * dw % sw) * wq + s * dw // sw) * B32
                    for cb in range(blocks):
                        off = cb * run + shift
                        amx.amx_step_at(flat, base0 + off, base1 + off, B32, wb, b_at, b_at + B_TILE, 16)
                        b_at += 2 * B_TILE
            amx.amx_end(c, 0, B32)
            kn = min(B32, K - kb * B32)  # read the scratch in order, each pixel's channels a column of y
            for j in range(min(16, Q - q0)):
                for i in range(kn):
                    y[n, kb * B32 + i, p0, q0 + j] = c[j * B32 + i]
            if 2 * u + 1 < tiles:
                for j in range(min(16, Q - q1)):
                    for i in range(kn):
                        y[n, kb * B32 + i, p1, q1 + j] = c[(16 + j) * B32 + i]
        amx.amx_release()


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, y: np.ndarray, p: ConvParams) -> None:
    """y (N, K, P, Q), any strides, = the conv of p over x (N, C, H, W) and w (K, C, R, S), any strides."""
    (top, bottom), (left, right) = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    blocks, k_blocks, qt = ceil_div(p.C, B32), ceil_div(p.K, B32), ceil_div(p.Q, 16)
    wq = 16 * qt + (p.S - 1) * dw // sw  # every tile's columns
    xa = gemm_amx.aligned("amx_conv_x", (p.N, p.H + top + bottom, blocks, sw, wq, B32), np.uint16)
    pack_rows(x.view(np.uint32), xa, top, left, sw)
    wb = gemm_amx.aligned("amx_gemm_b", (k_blocks, p.R * p.S * blocks, 2, 16, 16), np.uint32)
    pack_weight_pairs(w.view(np.uint32), wb)
    init = np.zeros(k_blocks * B32, np.float32)  # the bias, a row of every accumulator tile
    if b is not None:
        init[: p.K] = b
    conv_rows(xa, wb.reshape(-1), init, y, amx.tile_config(), p.R, p.S, sh, sw, dh, dw, qt, TASKS)


conv2d_fwd_v21_amx_rows, conv2d_bwd_data_v12_amx_rows = conv_entries(
    _conv, "conv2d_fwd_v21_amx_rows", "conv2d_bwd_data_v12_amx_rows"
)
