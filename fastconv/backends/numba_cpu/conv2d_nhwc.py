"""conv2d nhwc_v7: blocked_v5's channel-vectorised forward reading a channels_last x in place, writing y likewise.

Input: x given as a channels_last view (an (N, H, W, C) C-contiguous buffer seen as (N, C, H, W), as PyTorch's
torch.channels_last; dispatch passes it uncopied because this algorithm is registered with channels_last=True).
Output: y (N, K, P, Q) as the (0, 3, 1, 2) view of a new (N, P, Q, K) buffer, the order PyTorch returns for a
channels_last input. No padded copy of x and no transpose of y: zero padding is handled by bounds.

    nhwc_v7   iteration = (n, output row p, group, block of VECS*LANES output channels), as blocked_v5; taps whose
              input row lies outside x are skipped. Interior pixels (every tap's column inside x) run in tiles of
              ROWS consecutive pixels x VECS vectors of output channels (blocked_v5's tile loop, `tap_sum`); the
              border pixels and the interior's last partial tile run one pixel at a time (a 1 x VECS tile) over
              their own range of tap columns. Bias preloaded, ReLU and the masked channel tail in the epilogue.
Informal timing, 2026-11-23 (not from the benchmark suite: median of 20 interleaved calls, float32, on a 2-core VM
shared with other jobs, where repeated runs differed by up to 1.5x; only same-run ratios mean much). Case a:
x (8, 64, 56, 56), w (64, 64, 3, 3), padding=1, nhwc_v7 on a channels_last x, the others on the same data in NCHW
(and rows_v2 on the channels_last x, which it copies first):
    2 threads: nhwc_v7 11.3 ms, blocked_v5 12.6 ms, rows_v2 11.0 ms (on the channels_last x: 13.4 ms)
    1 thread:  nhwc_v7 19.5 ms, blocked_v5 21.2 ms, rows_v2 18.1 ms (on the channels_last x: 21.1 ms)
(an earlier, busier run: 1 thread 20.2 / 30.7 / 25.0 ms). At 2 threads (10 calls), nhwc_v7 on the channels_last x
against the copy + NCHW algorithm auto would run without it: case b (1x1, C=256) 16-24 ms vs 86 ms (pointwise_v3;
24 ms on NCHW data), c (3x3 s2) 4.6 vs 6.0 ms, d (7x7 s2, C=3) 43 vs 54 ms (rows_v2).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...params import ConvParams
from .config import filled, inner, kernel, lanes
from .conv2d_blocked import ROWS, VECS, pack_weights, tap_sum
from .conv2d_direct import bias_or_zeros
from .simd import tile_load, tile_relu, tile_store, tile_zeros


@inner
def tap_range(o, stride, pad, dil, k, size):
    """Taps [lo, hi) of a k-tap window whose input index o*stride - pad + t*dil lies in [0, size)."""
    first = o * stride - pad
    lo = 0 if first >= 0 else min(k, (dil - 1 - first) // dil)
    hi = min(k, (size - 1 - first) // dil + 1)
    return lo, max(lo, hi)


@inner
def pixel_tile(acc, xh, x0, wp, w0, bias, y, y0, k0, nk, taps, steps, relu, lanes):
    """One tile of output pixels in a row (acc: ROWS x VECS, or 1 x VECS for a lone pixel): bias, then the taps
    (r0, r1, s0, s1) through `tap_sum`, ReLU if asked, stored to the tile's rows of y masked to the nk channels
    left in the group. steps: (pixel, tap row, tap column) strides in xh, S, Cg, K."""
    x_step, r_step, s_step, S, Cg, K = steps
    kb_w = VECS * lanes
    acc = tile_load(acc, bias, k0, 0, lanes, ROWS, VECS, lanes, nk)
    acc = tap_sum(acc, wp, w0, xh, x0, x_step, taps[0], taps[1], taps[2], taps[3], r_step, s_step, S, Cg, kb_w,
                  lanes)
    if relu:
        acc = tile_relu(acc)
    tile_store(acc, y, y0, K, lanes, ROWS, VECS, lanes, nk)


@kernel
def nhwc_fwd(xh, wp, bias, y, N, H, W, C, P, Q, G, Cg, Kg, Kp_g, sh, sw, dh, dw, pt, pl, R, S, q_lo, q_hi, relu,
             lanes):
    """y[n, p, q, g*Kg + k] = bias + sum over taps (r, s) inside x and c < Cg of xh[n, p*sh - pt + r*dh,
    q*sw - pl + s*dw, g*Cg + c] * w[g*Kg + k, c, r, s] (zero padding: taps outside x add nothing). Iteration
    (n, p, g, k-block) writes only y[n, p, :, its channels]: disjoint. Pixels q_lo <= q < q_hi have all S tap
    columns inside x and run in ROWS-pixel tiles; the others one by one with their own tap columns."""
    nkb = Kp_g // (VECS * lanes)
    q_tail = q_lo + (q_hi - q_lo) // ROWS * ROWS
    steps = (sw * C, dh * W * C, dw * C, S, Cg, G * Kg)
    for it in prange(N * P * G * nkb):
        kb, g = it % nkb, (it // nkb) % G
        p, n = (it // (nkb * G)) % P, it // (nkb * G * P)
        r0, r1 = tap_range(p, sh, pt, dh, R, H)
        k0, nk = g * Kg + kb * VECS * lanes, Kg - kb * VECS * lanes  # first channel of the block; channels left
        x0 = ((n * H + p * sh - pt) * W - pl) * C + g * Cg  # x[n, row of tap r = 0, column -pl, first channel]
        w0, y0 = (g * nkb + kb) * R * S * Cg * VECS * lanes, (n * P + p) * Q * G * Kg + k0
        for q in range(q_lo, q_tail, ROWS):
            pixel_tile(tile_zeros(xh, ROWS, VECS), xh, x0 + q * sw * C, wp, w0, bias, y, y0 + q * G * Kg, k0, nk,
                       (r0, r1, 0, S), steps, relu, lanes)
        for q in range(Q):
            if not q_lo <= q < q_tail:
                s0, s1 = tap_range(q, sw, pl, dw, S, W)
                pixel_tile(tile_zeros(xh, 1, VECS), xh, x0 + q * sw * C, wp, w0, bias, y, y0 + q * G * Kg, k0, nk,
                           (r0, r1, s0, s1), steps, relu, lanes)


# ---------------------------------------------------------------------------------------------- registry op
def supports(p: ConvParams) -> bool:
    return p.channels_last


def interior(p: ConvParams) -> tuple[int, int]:
    """Output columns [q_lo, q_hi) whose S taps all read columns inside x (the rest touch the zero padding)."""
    pl, sw, dw = p.padding[1][0], p.stride[1], p.dilation[1]
    q_lo = min(-(-pl // sw), p.Q)
    q_hi = min(max((p.W - 1 - (p.S - 1) * dw + pl) // sw + 1, q_lo), p.Q)
    return q_lo, q_hi


def conv2d_nhwc_v7(p: ConvParams, x: np.ndarray, w: np.ndarray, b, relu: bool = False) -> np.ndarray:
    lanes_ = lanes(x.itemsize)
    wp, Kp_g = pack_weights(p, w, VECS * lanes_)
    xh = x.transpose(0, 2, 3, 1).reshape(-1)  # the NHWC buffer itself (dispatch guarantees the order)
    bias = bias_or_zeros(p, b, x.dtype)
    fill = lambda y: nhwc_fwd(xh, wp, bias, y.reshape(-1), p.N, p.H, p.W, p.C, p.P, p.Q, p.groups, p.Cg,  # noqa: E731
                              p.Kg, Kp_g, *p.stride, *p.dilation, p.padding[0][0], p.padding[1][0], p.R, p.S,
                              *interior(p), relu, lanes_)
    return filled((p.N, p.P, p.Q, p.K), x.dtype, fill).transpose(0, 3, 1, 2)
