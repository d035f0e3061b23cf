"""bfloat16 convolution as gemm_amx.py's cache-blocked GEMM (precision="bf16", float32 in and out, fp32 sums).

    conv2d_fwd_v17_amx_gemm        any ungrouped conv (stride, dilation, zero padding): per sample n,
                                   y[n] (K, P*Q) = w (K, R*S*C) @ B[n]^T + bias, B[n] (P*Q, R*S*C) the im2col
                                   matrix, reduction index (r, s, c) with c fastest
    conv2d_bwd_data_v11_amx_gemm   the data gradient of a stride-1 conv: the same kernel over grad_out with the
                                   flipped weights read as (C, K, R, S) (pads beyond the kernel's reach, or a
                                   stride, stay with the emulated rung)

A 1x1 stride-1 conv without padding needs no im2col: B[n] = x[n] seen as (H*W, C), packed by gemm_amx.pack
straight from x. Otherwise x is packed once per call into zero-padded planes of bfloat16 channel pairs,
xv[n, i, h, w] = (x[n, 2i, h, w], x[n, 2i + 1, h, w]) as one uint32, so that one VNNI element of B (two
consecutive reduction values: two channels at one tap and pixel) is one 32-bit load; pack_im2col then fills B's
tile-ordered panels (gemm_amx's layout) from xv: per panel row (one channel pair at one tap) and 16 output
pixels, a 64-byte copy where the 16 pixels are consecutive in one output row and the stride is 1, a gather
through per-pixel offsets otherwise. The weights are rounded and packed per call as gemm_amx's A panels (K, R*S*C
with C padded to even, pads zero). One parallel iteration of the packers owns one output block; the GEMM's sums
run in an order fixed by the shape, so the thread count never changes a result.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...params import ConvParams, ceil_div
from . import gemm_amx
from .config import kernel
from .conv2d_amx import conv_entries, to_bf16

B32, A_TILE = gemm_amx.B32, gemm_amx.A_TILE
MIN_MACS_PER_INPUT = 32  # auto: below it (or below MIN_MACS) the emulated rung or v10/v4 (priority)
MIN_MACS = 1 << 21


def plain(p: ConvParams) -> bool:
    """A 1x1 stride-1 conv without padding: B[n] is x[n] itself (no im2col)."""
    return p.R == p.S == 1 and p.stride == (1, 1) and p.padding == ((0, 0), (0, 0))


def priority(p: ConvParams) -> float:
    """Ahead of conv2d_fwd_v10_amx (100) and the emulated rung for plain 1x1 convs with the work to pay for the
    packing: measured here (benchmarks/bf16_cpu.py; 1x1 layers from 7x7 to 56x56, 32 to 1024 channels) it wins
    from about 32 multiply-adds per input element and 2^21 in all (N1 C256 7x7 K256: 105 vs 235 us the emulated
    rung's, 134 v10's; N1 C64 14x14 K64: 69 vs 67 us). With a window, v10 and v21 (conv2d_amx_rows) read x in
    place and the im2col panels here cost more than they save (N8 C64 56x56 K64 3x3: 6.7 vs 3.4 ms v10's), so it
    stays behind them."""
    big = p.macs >= max(MIN_MACS, MIN_MACS_PER_INPUT * p.N * p.C * p.H * p.W)
    return 120 if plain(p) and big else -120


def priority_bwd_data(p: ConvParams) -> float:
    """As priority, the input being grad_out (N, K, P, Q)."""
    big = p.macs >= max(MIN_MACS, MIN_MACS_PER_INPUT * p.N * p.K * p.P * p.Q)
    return 120 if plain(p) and big else -120


@kernel
def pack_pairs(xu, xv, top, left):
    """xv[n, i, h, w] = the bfloat16 pair (x[n, 2i], x[n, 2i + 1]) at padded position (h, w), zero in the padding
    and for the channel past an odd C (xu: x's float32 bits, any strides); every element of xv is written."""
    N, C, H, W = xu.shape
    pairs, Hp = xv.shape[1], xv.shape[2]
    for t in prange(N * pairs):
        n, i = t // pairs, t % pairs
        two = 2 * i + 1 < C
        for h in range(Hp):
            out = xv[n, i, h]
            if h < top or h >= top + H:
                out[:] = 0
                continue
            lo, hi = xu[n, 2 * i, h - top], xu[n, 2 * i + 1 if two else 2 * i, h - top]
            out[:left] = 0
            out[left + W :] = 0
            for w in range(W):
                pair = to_bf16(lo[w])
                if two:
                    pair |= to_bf16(hi[w]) << np.uint32(16)
                out[left + w] = pair


@kernel
def pack_weights(wu, ap, c2):
    """ap = gemm_amx's A panels of w (K, C, R, S) read as (K, R*S*c2): ap[kb, kt, h, r, c] = bfloat16 bits of
    w[k, ch, tap // S, tap % S] with k = 32 kb + 16 h + r and 32 kt + c = tap*c2 + ch (c2 >= C: C rounded up to
    even here, to 32 in conv2d_amx_rows), zero for k >= K, ch >= C and past the last tap; wu: w's float32 bits,
    any strides."""
    K, C, R, S = wu.shape
    blocks, steps = ap.shape[0], ap.shape[1]
    flat = ap.reshape(blocks, steps * B32 * B32)
    for kb in prange(blocks):
        out = flat[kb]
        out[:] = 0
        for row in range(min(B32, K - kb * B32)):
            k = kb * B32 + row
            for tap in range(R * S):
                r, s = tap // S, tap % S
                for c in range(C):
                    idx = tap * c2 + c  # reduction index: step idx // 32, column idx % 32
                    at = ((idx // B32) * 2 + row // 16) * A_TILE + (row % 16) * B32 + idx % B32
                    out[at] = to_bf16(wu[k, c, r, s])


@kernel
def pack_im2col(xv, bp, R, S, sh, sw, dh, dw, P, Q):
    """bp[n, nb, kt, h, i, j] = B[n]'s VNNI pair (reduction pair 16 kt + i = (r*S + s)*pairs + channel pair, output
    pixel 32 nb + 16 h + j), read from xv at (p*sh + r*dh, q*sw + s*dw); zero past the pixels and the pairs.
    Flat indices throughout: the copy of one 64-byte row is a plain loop."""
    N, pairs, Hp, Wp = xv.shape
    blocks, steps = bp.shape[1], bp.shape[2]
    src, dst = xv.reshape(-1), bp.reshape(-1)
    taps = R * S * pairs
    for t in prange(N * blocks):
        n, nb = t // blocks, t % blocks
        off = np.empty(B32, np.int64)  # each pixel's offset in a plane, -1 past the last pixel
        for j in range(B32):
            f = nb * B32 + j
            off[j] = (f // Q) * sh * Wp + (f % Q) * sw if f < P * Q else -1
        run = np.empty(2, np.bool_)  # half h: 16 valid pixels in one output row, stride 1 (consecutive offsets)
        for h in range(2):
            o0, o1 = off[h * 16], off[h * 16 + 15]
            run[h] = sw == 1 and o0 >= 0 and o1 >= 0 and o1 - o0 == 15
        for kt in range(steps):
            tile = t * steps + kt  # (n, nb, kt): consecutive in bp
            for i in range(16):
                pair = kt * 16 + i
                rs, c = pair // pairs, pair % pairs
                base = ((n * pairs + c) * Hp + (rs // S) * dh) * Wp + (rs % S) * dw
                for h in range(2):
                    at = ((tile * 2 + h) * 16 + i) * 16
                    if pair >= taps:
                        for j in range(16):
                            dst[at + j] = 0
                    elif run[h]:
                        first = base + off[h * 16]
                        for j in range(16):
                            dst[at + j] = src[first + j]
                    else:
                        for j in range(16):
                            o = off[h * 16 + j]
                            dst[at + j] = src[base + o] if o >= 0 else np.uint32(0)


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, y: np.ndarray, p: ConvParams) -> None:
    """y (N, K, P, Q), C-contiguous, = the conv of p over x (N, C, H, W) and w (K, C, R, S), any strides."""
    (top, bottom), (left, right) = p.padding
    steps = ceil_div(p.R * p.S * ceil_div(p.C, 2) * 2, B32)
    k_blocks = ceil_div(p.K, B32)
    init = np.zeros((k_blocks * B32, B32), np.float32)  # row k = the bias of output channel k
    if b is not None:
        init[: p.K] = b[:, None]
    if plain(p):  # B[n] = x[n] as (H*W, C): no im2col
        ap, bp = gemm_amx.pack(w.reshape(p.K, p.C), x.reshape(p.N, p.C, p.H * p.W).transpose(0, 2, 1))
    else:
        c2 = ceil_div(p.C, 2) * 2
        ap = gemm_amx.aligned("amx_gemm_a", (k_blocks, steps, 2, 16, B32), np.uint16)
        pack_weights(w.view(np.uint32), ap, c2)
        hp, wp = p.H + top + bottom, p.W + left + right
        xv = gemm_amx.aligned("amx_conv_x", (p.N, c2 // 2, hp, wp), np.uint32)
        pack_pairs(x.view(np.uint32), xv, top, left)
        bp = gemm_amx.aligned("amx_gemm_b", (p.N, ceil_div(p.P * p.Q, B32), steps, 2, 16, 16), np.uint32)
        pack_im2col(xv, bp, p.R, p.S, *p.stride, *p.dilation, p.P, p.Q)
    gemm_amx.run_gemm(ap, bp, y.reshape(p.N, p.K, p.P * p.Q), init.reshape(-1), B32, 0)


conv2d_fwd_v17_amx_gemm, conv2d_bwd_data_v11_amx_gemm = conv_entries(
    _conv, "conv2d_fwd_v17_amx_gemm", "conv2d_bwd_data_v11_amx_gemm"
)
