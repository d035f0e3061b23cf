"""conv2d v7_blocked: channel-vectorised kernels on a channels-last copy of the input, forward and weight gradient.

Layout: xh (N, Hp, Wx, C), the zero-padded input with channels innermost (Wx = Wp + slack columns), so the C
channels of one pixel are contiguous; the layout change is part of every call (and of its timing).

    conv2d_fwd_v7_blocked         iteration = (n, output row p, block of VECS*LANES output channels); a tile of ROWS
                                  consecutive output pixels x VECS vectors of output channels sums over taps and
                                  input channels: per step VECS vector loads of weights packed as [t, c, k] + ROWS
                                  broadcasts of input pixels feed ROWS*VECS FMAs. Results go to a channels-last
                                  buffer that is transposed back to NCHW (bias in that pass).
    conv2d_bwd_weight_v4_blocked  iteration = (n, group, block of ROWS output channels) into its own partial slot:
                                  gw_n[k, t, c] = sum_{p,q} gy[n, k, p, q] * xh[n, p*sh + r*dh, q*sw + s*dw, c], a
                                  tile of ROWS output channels (broadcast gy) x VECS vectors of input channels,
                                  flushed every PB rows; the N partials are summed in a fixed order afterwards.
A 64-wide channel vector holds few useful channels in small groups, so grouped convs are not its ground
(bench_results/numba_cpu.md).
"""

from __future__ import annotations

import functools

import numpy as np
from numba import prange

from ...arrays import empty
from ...params import ConvParams
from .config import BLOCKED_ROWS, BLOCKED_VECS, FASTMATH, ceil_div, filled, inner, kernel, lanes, workspace
from .conv2d_direct import bias_or_zeros
from .simd import tile_fma, tile_fma_tail, tile_store, tile_store_add, tile_zeros
from .simd_lanes import vec_lanes, vec_load

ROWS, VECS = BLOCKED_ROWS, BLOCKED_VECS
PB = 4  # output rows accumulated in registers between flushes of the weight-gradient tile
#: The weight gradient splits its work over the images too, into per-image partials summed afterwards, except for
#: output planes of at most WHOLE_BATCH_PLANE pixels with at least WHOLE_BATCH_BLOCKS (group, output-channel block)
#: iterations: there the partials cost as much as the products (N8 C512 7x7 3x3: 15.7 -> 9.2 ms without them), while
#: larger planes keep each image's x in cache across the blocks of one image (28x28 and 14x14 layers measured
#: 1.2x slower without the split). A shape-only rule, so the result never depends on the thread count.
WHOLE_BATCH_PLANE, WHOLE_BATCH_BLOCKS = 64, 16


@kernel
def to_channels_last(x, xh, pads, Hp, Wx, cw, sub):
    """xh[n, b, i, j, c - b*cw] = x[n, c, (i - pt)*sh, (j - pl)*sw] for the channel blocks b of cw channels (cw = C:
    one block, plain channels-last), pads = (pt, pl), sub = (sh, sw) (1, 1: every pixel; a 1x1 strided conv
    copies only the pixels it reads), zero outside x and past C in the last block. One (n, i) row of every block
    per iteration: per pixel, whole vectors of channels read H*W apart (vec_load) and stored as one vector, the
    rest element by element."""
    N, C, H, W = x.shape
    (pt, pl), (sh, sw) = pads, sub
    Hs, Ws = ceil_div(H, sh), ceil_div(W, sw)
    xf, lanes, nb = x.reshape(-1), vec_lanes(xh), ceil_div(C, cw)
    for ni in prange(N * Hp):
        n, i = ni // Hp, ni % Hp
        h = i - pt
        for b in range(nb):
            row = ((n * nb + b) * Hp + i) * Wx * cw
            if not 0 <= h < Hs:
                xh[row : row + Wx * cw] = 0
                continue
            xh[row : row + pl * cw] = 0
            xh[row + (pl + Ws) * cw : row + Wx * cw] = 0
            c0, c1 = b * cw, min(C, b * cw + cw)
            src, cv = (n * C * H + h * sh) * W, c1 - (c1 - c0) % lanes
            for w in range(Ws):
                dst = row + (w + pl) * cw - c0
                for c in range(c0, cv, lanes):
                    tile_store(vec_load(xf, src + c * H * W + w * sw, H * W), xh, dst + c, 0, 0, 1, 1, lanes, lanes)
                for c in range(c1, c0 + cw):
                    xh[dst + c] = 0
            for c in range(cv, c1):
                for w in range(Ws):
                    xh[row + (w + pl) * cw + c - c0] = x[n, c, h * sh, w * sw]


@kernel
def from_channels_last(yh, y, bias, Kp):
    """y[n, k, p, q] = yh[n, p, q, k] + bias[k]; one (n, k) plane per iteration."""
    N, K, P, Q = y.shape
    for nk in prange(N * K):
        n, k = nk // K, nk % K
        for p in range(P):
            base = ((n * P + p) * Q) * Kp + k
            for q in range(Q):
                y[n, k, p, q] = yh[base + q * Kp] + bias[k]


@inner
def tap_sum(acc, wp, w0, xh, x0, x_step, r0, r1, s0, s1, r_step, s_step, S, Cg, kb_w, lanes):
    """The tile loop of the channel-vectorised kernels (here and in conv2d_nhwc): acc[i][j] += sum over taps
    r0 <= r < r1, s0 <= s < s1 and channels c < Cg of xh[x0 + i*x_step + r*r_step + s*s_step + c] (broadcast) *
    wp[w0 + ((r*S + s)*Cg + c)*kb_w + j*lanes : +lanes], wp packed by `pack_weights`."""
    for r in range(r0, r1):
        for s in range(s0, s1):
            xa, wa = x0 + r * r_step + s * s_step, w0 + (r * S + s) * Cg * kb_w
            for c in range(Cg):
                acc = tile_fma(acc, wp, wa + c * kb_w, lanes, xh, xa + c, x_step)
    return acc


@kernel
def blocked_fwd(xh, wp, yh, N, P, Q, Hx, Wx, C, G, Cg, Kp_g, sh, sw, dh, dw, R, S, lanes):
    """yh[n, p, q, g*Kp_g + k] = sum_{t, c} wp[g, k // KB, t, c, k % KB] * xh[n, p*sh + r*dh, q*sw + s*dw,
    g*Cg + c] with KB = VECS*LANES. Iteration (n, p, g, k-block) owns its output row segment."""
    kb_w = VECS * lanes
    nkb = Kp_g // kb_w
    nqt = ceil_div(Q, ROWS)
    for it in prange(N * P * G * nkb):
        kb, g = it % nkb, (it // nkb) % G
        p, n = (it // (nkb * G)) % P, it // (nkb * G * P)
        for qt in range(nqt):
            q0 = qt * ROWS
            xrow = ((n * Hx + p * sh) * Wx + q0 * sw) * C + g * Cg
            acc = tap_sum(
                tile_zeros(xh, ROWS, VECS),
                wp,
                (g * nkb + kb) * R * S * Cg * kb_w,
                xh,
                xrow,
                sw * C,
                0,
                R,
                0,
                S,
                dh * Wx * C,
                dw * C,
                S,
                Cg,
                kb_w,
                lanes,
            )
            ybase = ((n * P + p) * Q + q0) * G * Kp_g + g * Kp_g + kb * kb_w
            tile_store(acc, yh, ybase, G * Kp_g, lanes, Q - q0, VECS, lanes, kb_w)


@kernel
def blocked_bwd_weight(xh, gy, part, Hx, Wx, C, G, Cg, Kg, sh, sw, dh, dw, R, S, lanes, per_image):
    """With per_image: part[n, g*Kg + k, t, c] = sum_{p,q} gy[n, g*Kg + k, p, q] * xh[n, p*sh + r*dh, q*sw + s*dw,
    g*Cg + c], iteration (n, g, block of ROWS output channels) writing only its own rows of part[n]. Without:
    part[0] holds the sum over n as well, iteration (g, block) running the images in order n = 0..N-1."""
    N, K, P, Q = gy.shape
    T, cw = R * S, VECS * lanes
    nkb, ncb = ceil_div(Kg, ROWS), ceil_div(Cg, cw)
    slots = N if per_image else 1
    for it in prange(slots * G * nkb):
        kb, g, slot = it % nkb, (it // nkb) % G, it // (nkb * G)
        k0 = g * Kg + kb * ROWS
        nk = min(ROWS, Kg - kb * ROWS)
        rows = np.zeros((ROWS, P * Q), gy.dtype)  # this block's gy planes, zero past the group's channels
        out = (slot * K + k0) * T * Cg
        part[out : out + nk * T * Cg] = 0
        n0, n1 = (slot, slot + 1) if per_image else (0, N)
        for n in range(n0, n1):
            for i in range(nk):  # element by element: an array assigned to a row compiles Numba's shape message
                for pq in range(P * Q):
                    rows[i, pq] = gy[n, k0 + i, pq // Q, pq % Q]
            _image_bwd_weight(xh, rows, part, out, n, Hx, Wx, C, g, Cg, P, Q, sh, sw, dh, dw, S, T, nk, ncb, lanes)


@inner
def _image_bwd_weight(xh, rows, part, out, n, Hx, Wx, C, g, Cg, P, Q, sh, sw, dh, dw, S, T, nk, ncb, lanes):
    """Add image n's contribution to one block's rows of part (at `out`), tile by tile."""
    cw = VECS * lanes
    for p0 in range(0, P, PB):
        for t in range(T):
            for cb in range(ncb):
                c0 = cb * cw
                acc = tile_zeros(xh, ROWS, VECS)
                for p in range(p0, min(p0 + PB, P)):
                    xrow = ((n * Hx + p * sh + (t // S) * dh) * Wx + (t % S) * dw) * C + g * Cg + c0
                    if Cg - c0 >= cw:
                        for q in range(Q):
                            acc = tile_fma(acc, xh, xrow + q * sw * C, lanes, rows, p * Q + q, P * Q)
                    else:
                        for q in range(Q):
                            acc = tile_fma_tail(acc, xh, xrow + q * sw * C, lanes, rows, p * Q + q, P * Q, Cg - c0)
                tile_store_add(acc, part, out + t * Cg + c0, T * Cg, lanes, nk, VECS, lanes, Cg - c0)


# ---------------------------------------------------------------------------------------------- registry ops
def channels_last(
    p: ConvParams, x: np.ndarray, slack: int, block: int = 0, sub: tuple = (1, 1)
) -> tuple[np.ndarray, int, int]:
    """The padded channels-last copy of x (flat, in a reused workspace), its row count and row width; with a
    `block`, in blocks of that many channels, with `sub`, of every sh-th row and sw-th column (to_channels_last)."""
    (pt, pb), (pl, pr) = p.padding
    Hp, Wx = ceil_div(p.H, sub[0]) + pt + pb, ceil_div(p.W, sub[1]) + pl + pr + slack
    cw = block or p.C
    xh = workspace("channels_last", p.N * Hp * Wx * ceil_div(p.C, cw) * cw, x.dtype)
    if xh.size:
        to_channels_last(np.ascontiguousarray(x), xh, (pt, pl), Hp, Wx, cw, sub)
    return xh, Hp, Wx


def pack_weights(p: ConvParams, w: np.ndarray, kb_w: int) -> tuple[np.ndarray, int]:
    """w (K, Cg, R, S) packed flat as [g, k-block, t, c, k % kb_w] for `tap_sum`, each group's Kg output channels
    zero-padded to Kp_g (a multiple of kb_w); returns (wp, Kp_g)."""
    Kp_g = ceil_div(p.Kg, kb_w) * kb_w
    wp = np.zeros((p.groups, Kp_g, p.R * p.S, p.Cg), w.dtype)
    wp[:, : p.Kg] = w.reshape(p.groups, p.Kg, p.Cg, p.R * p.S).transpose(0, 1, 3, 2)
    wp = wp.reshape(p.groups, Kp_g // kb_w, kb_w, p.R * p.S, p.Cg).transpose(0, 1, 3, 4, 2)
    return np.ascontiguousarray(wp).reshape(-1), Kp_g


def conv2d_fwd_v7_blocked(p: ConvParams, x: np.ndarray, w: np.ndarray, b) -> np.ndarray:
    lanes_ = lanes(x.itemsize)
    xh, Hp, Wx = channels_last(p, x, ROWS * p.stride[1])
    wp, Kp_g = pack_weights(p, w, VECS * lanes_)
    yh = workspace("channels_last_out", p.N * p.P * p.Q * p.groups * Kp_g, x.dtype)
    if yh.size:
        blocked_fwd(
            xh, wp, yh, p.N, p.P, p.Q, Hp, Wx, p.C, p.groups, p.Cg, Kp_g, *p.stride, *p.dilation, p.R, p.S, lanes_
        )
    padded_k = np.zeros(p.groups * Kp_g, x.dtype)
    padded_k.reshape(p.groups, Kp_g)[:, : p.Kg] = bias_or_zeros(p, b, x.dtype).reshape(p.groups, p.Kg)
    keep = (np.arange(p.groups)[:, None] * Kp_g + np.arange(p.Kg)[None, :]).reshape(-1)
    return filled(p.y_shape, x.dtype, lambda y: _unpack(yh, y, padded_k, keep, p.groups * Kp_g))


def _unpack(yh, y, bias_padded, keep, Kp):
    """from_channels_last, skipping the zero-padded output channels of each group (none when Kg fills blocks)."""
    if len(keep) == Kp:
        return from_channels_last(yh, y, bias_padded, Kp)
    full = np.empty((y.shape[0], Kp) + y.shape[2:], y.dtype)
    from_channels_last(yh, full, bias_padded, Kp)
    y[...] = full[:, keep]
    return None


def conv2d_bwd_weight_v4_blocked(p: ConvParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    lanes_ = lanes(x.itemsize)
    xh, Hp, Wx = channels_last(p, x, 0)
    per_image = p.P * p.Q > WHOLE_BATCH_PLANE or p.groups * ceil_div(p.Kg, ROWS) < WHOLE_BATCH_BLOCKS
    slots = p.N if per_image else min(p.N, 1)
    part = workspace("weight_partials", slots * p.K * p.R * p.S * p.Cg, x.dtype)
    if part.size:
        blocked_bwd_weight(
            xh, gy, part, Hp, Wx, p.C, p.groups, p.Cg, p.Kg, *p.stride, *p.dilation, p.R, p.S, lanes_, per_image
        )
    gw = empty(p.w_shape, x.dtype)
    sum_partials(part.reshape(slots, p.K, p.R * p.S, p.Cg), gw.reshape(p.K, p.Cg, p.R * p.S))
    return gw


@functools.partial(kernel, fastmath=FASTMATH - {"reassoc"})
def sum_partials(part, gw):
    """gw[k, c, t] = sum of part[n, k, t, c] over n in order n = 0..N-1 (in order: no re-association), one output
    channel k per iteration: per tap the partials' rows are added a contiguous run of Cg at a time (vectorised
    across c; each element still sums its n in order), then written transposed into gw."""
    N, K, T, Cg = part.shape
    for k in prange(K):
        acc = np.empty(Cg)  # float64, as the partials have always been summed
        for t in range(T):
            for c in range(Cg):  # element by element: an array assigned to a slice compiles Numba's shape message
                acc[c] = part[0, k, t, c] if N else 0.0
            for n in range(1, N):
                row = part[n, k, t]
                for c in range(Cg):
                    acc[c] += row[c]
            for c in range(Cg):
                gw[k, c, t] = acc[c]
