"""conv2d v9_nhwc: v7_blocked's channel-vectorised forward reading a channels_last x in place, writing y likewise.

Input: x given as a channels_last view (an (N, H, W, C) C-contiguous buffer seen as (N, C, H, W), as PyTorch's
torch.channels_last; the plan passes it uncopied because this algorithm's traits say it reads that order).
Output: y (N, K, P, Q) as the (0, 3, 1, 2) view of a new (N, P, Q, K) buffer, the order PyTorch returns for a
channels_last input. No padded copy of x and no transpose of y: zero padding is handled by bounds.

    conv2d_fwd_v9_nhwc  iteration = (n, output row p, group, block of VECS*LANES output channels), as v7_blocked;
                        taps whose input row lies outside x are skipped. Interior pixels (every tap's column inside
                        x) run in tiles of ROWS consecutive pixels x VECS vectors of output channels (v7_blocked's
                        tile loop, `tap_sum`); the border pixels and the interior's last partial tile run one pixel
                        at a time (a 1 x VECS tile) over their own range of tap columns. Bias preloaded, the masked
                        channel tail in the epilogue. The interior tile's inner loop is ROWS*VECS FMAs with no
                        spills (a test inspects the assembly); the tap columns are computed per tile even where
                        they are (0, S): passing those constants let LLVM restructure the loop and spill the tile.
Against a copy to NCHW and the NCHW algorithm: bench_results/numba_cpu.md (selection_channels_last) and
bench_results/numba_kernel_notes.md.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...params import ConvParams
from .config import ceil_div, filled, inner, kernel, lanes
from .conv2d_blocked import ROWS, VECS, pack_weights, tap_sum
from .conv2d_direct import bias_or_zeros
from .simd import tile_load, tile_store, tile_zeros


@inner
def tap_range(o, stride, pad, dil, k, size):
    """Taps [lo, hi) of a k-tap window whose input index o*stride - pad + t*dil lies in [0, size)."""
    first = o * stride - pad
    lo = 0 if first >= 0 else min(k, (dil - 1 - first) // dil)
    hi = min(k, (size - 1 - first) // dil + 1)
    return lo, max(lo, hi)


@inner
def pixel_tile(acc, xh, x0, wp, w0, bias, y, y0, k0, nk, q, r0, r1, geo, lanes):
    """Output pixels q, q+1, ... of one row (acc: ROWS x VECS, or 1 x VECS for a lone pixel): bias, then tap rows
    r0 <= r < r1 and the tap columns of pixel q that lie inside x (all S for an interior tile) through `tap_sum`,
    stored masked to the nk channels left in the group. geo: (W, C, K, S, Cg, sw, dw, dh, pl)."""
    W, C, K, S, Cg, sw, dw, dh, pl = geo
    s0, s1 = tap_range(q, sw, pl, dw, S, W)
    acc = tile_load(acc, bias, k0, 0, lanes, ROWS, VECS, lanes, nk)
    acc = tap_sum(
        acc, wp, w0, xh, x0 + q * sw * C, sw * C, r0, r1, s0, s1, dh * W * C, dw * C, S, Cg, VECS * lanes, lanes
    )
    tile_store(acc, y, y0 + q * K, K, lanes, ROWS, VECS, lanes, nk)


@kernel
def nhwc_fwd(xh, wp, bias, y, shape, groups, window, interior, lanes):
    """shape = (N, H, W, C, P, Q), groups = (G, Cg, Kg, Kp_g), window = (sh, sw, dh, dw, pt, pl, R, S),
    interior = (q_lo, q_hi). y[n, p, q, g*Kg + k] = bias + sum over taps (r, s) inside x and c < Cg of
    xh[n, p*sh - pt + r*dh, q*sw - pl + s*dw, g*Cg + c] * w[g*Kg + k, c, r, s] (zero padding: taps outside x
    add nothing). Iteration (n, p, g, k-block) writes only y[n, p, :, its channels]: disjoint. Pixels
    q_lo <= q < q_hi have all S tap columns inside x and run in ROWS-pixel tiles; the others one by one with their
    own tap columns."""
    N, H, W, C, P, Q = shape
    G, Cg, Kg, Kp_g = groups
    sh, sw, dh, dw, pt, pl, R, S = window
    q_lo, q_hi = interior
    nkb = Kp_g // (VECS * lanes)
    q_tail = q_lo + (q_hi - q_lo) // ROWS * ROWS
    geo = (W, C, G * Kg, S, Cg, sw, dw, dh, pl)
    for it in prange(N * P * G * nkb):
        kb, g = it % nkb, (it // nkb) % G
        p, n = (it // (nkb * G)) % P, it // (nkb * G * P)
        r0, r1 = tap_range(p, sh, pt, dh, R, H)
        k0, nk = g * Kg + kb * VECS * lanes, Kg - kb * VECS * lanes  # first channel of the block; channels left
        x0 = ((n * H + p * sh - pt) * W - pl) * C + g * Cg  # x[n, row of tap r = 0, column -pl, first channel]
        w0, y0 = (g * nkb + kb) * R * S * Cg * VECS * lanes, (n * P + p) * Q * G * Kg + k0
        for q in range(q_lo, q_tail, ROWS):
            pixel_tile(tile_zeros(xh, ROWS, VECS), xh, x0, wp, w0, bias, y, y0, k0, nk, q, r0, r1, geo, lanes)
        for q in range(Q):
            if not q_lo <= q < q_tail:
                pixel_tile(tile_zeros(xh, 1, VECS), xh, x0, wp, w0, bias, y, y0, k0, nk, q, r0, r1, geo, lanes)


# ---------------------------------------------------------------------------------------------- registry op
def supports(p: ConvParams) -> bool:
    return p.channels_last


def interior(p: ConvParams) -> tuple[int, int]:
    """Output columns [q_lo, q_hi) whose S taps all read columns inside x (the rest touch the zero padding)."""
    pl, sw, dw = p.padding[1][0], p.stride[1], p.dilation[1]
    q_lo = min(ceil_div(pl, sw), p.Q)
    q_hi = min(max((p.W - 1 - (p.S - 1) * dw + pl) // sw + 1, q_lo), p.Q)
    return q_lo, q_hi


def conv2d_fwd_v9_nhwc(p: ConvParams, x: np.ndarray, w: np.ndarray, b) -> np.ndarray:
    lanes_ = lanes(x.itemsize)
    wp, Kp_g = pack_weights(p, w, VECS * lanes_)
    xh = x.transpose(0, 2, 3, 1).reshape(-1)  # the NHWC buffer itself (dispatch guarantees the order)
    bias = bias_or_zeros(p, b, x.dtype)

    def fill(y: np.ndarray) -> None:
        nhwc_fwd(
            xh,
            wp,
            bias,
            y.reshape(-1),
            (p.N, p.H, p.W, p.C, p.P, p.Q),
            (p.groups, p.Cg, p.Kg, Kp_g),
            (*p.stride, *p.dilation, p.padding[0][0], p.padding[1][0], p.R, p.S),
            interior(p),
            lanes_,
        )

    return filled((p.N, p.P, p.Q, p.K), x.dtype, fill).transpose(0, 3, 1, 2)  # y (N, P, Q, K) seen as NCHW
