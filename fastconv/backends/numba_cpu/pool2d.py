"""Pooling kernels: max (with indices), average (PyTorch's divisor rules), adaptive and global average, fwd + bwd.

x (N,C,H,W) -> y (N,C,P,Q); window (p, q) covers rows p*sh - ph + r*dh (r < kh) and columns likewise, clipped to
the input. Every kernel runs one (n, c) plane per prange iteration, so no two iterations touch the same element, and
within a plane the order of work is fixed (deterministic for any thread count). Max pooling keeps the first maximum
in row-major tap order; NaN counts as the maximum and propagates. Sums accumulate in float64.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...arrays import empty
from ...params import AdaptivePoolParams, PoolParams, adaptive_windows
from .config import PREFETCH_BYTES, ceil_div, filled, inner, kernel, lanes
from .simd import tile_bcast, tile_load, tile_store, tile_zeros
from .simd_lanes import prefetch, tile_argmax, tile_max, vec_lanes, vec_load


@inner
def _argmax_row(xf, top, W, hn, dh, hkey, h, vm, vk, pw, like, prows):
    """vm[pw + w], vk[pw + w] = the first maximum of column w over rows h, h + dh, ... (hn of them, starting at
    element `top` of xf) and its row (as a float key); LANES columns per step, masked past W. Prefetches as
    max_pool_rows."""
    L = vec_lanes(xf)
    ahead = PREFETCH_BYTES // xf.itemsize
    for v in range(ceil_div(W, L)):
        for r in range(prows):
            prefetch(xf, top + r * W + v * L + ahead)
        acc = tile_load(like, xf, top + v * L, 0, L, 1, 1, L, W - v * L)
        key = tile_bcast(hkey, h, 0, 1, 1)
        for t in range(1, hn):
            cand = tile_load(like, xf, top + t * dh * W + v * L, 0, L, 1, 1, L, W - v * L)
            acc, key, _ = tile_argmax(
                acc, key, key, cand, tile_bcast(hkey, h + t * dh, 0, 1, 1), tile_bcast(hkey, h + t * dh, 0, 1, 1)
            )
        tile_store(acc, vm, pw + v * L, 0, L, 1, 1, L, W - v * L)
        tile_store(key, vk, pw + v * L, 0, L, 1, 1, L, W - v * L)


@kernel
def max_pool_index_rows(x, y, idx, gy, gx, backward, h0, hn, dh, sw, pw, dw, kw, span, prows, keys):
    """Each window's first maximum in row-major tap order (NaN counts as the maximum; -1 for a window holding no
    input). Forward: y = that max, idx = its h*W + w. Backward: gx = 0, then gy is added at each window's max.
    One (n, c) plane per iteration (disjoint outputs; within it a fixed order). Separable as max_pool_rows,
    carrying the winner's row (keys[h] = h, float) and tap through both passes: a column's first max is its
    topmost, then among columns the topmost wins ties and, in tap order, the leftmost. Padding has key H, so
    any input element, even -inf, beats it."""
    N, C, H, W = x.shape
    P, Q = gy.shape[2], gy.shape[3]
    xf, yf, gyf, gxf = x.reshape(-1), y.reshape(-1), gy.reshape(-1), gx.reshape(-1)
    L = vec_lanes(x)
    nq = ceil_div(Q, L)
    for nc in prange(N * C):
        vm, vk = np.empty(span, x.dtype), np.empty(span, x.dtype)
        vm[:pw], vk[:pw] = -np.inf, H
        vm[pw + W :], vk[pw + W :] = -np.inf, H
        rk, rt = np.empty(nq * L, x.dtype), np.empty(nq * L, x.dtype)
        like = tile_zeros(x, 1, 1)
        if backward:
            gxf[nc * H * W : (nc + 1) * H * W] = 0
        for i in range(P):
            if hn[i] == 0:
                vm[pw : pw + W], vk[pw : pw + W] = -np.inf, H
            else:
                _argmax_row(xf, (nc * H + h0[i]) * W, W, hn[i], dh, keys, h0[i], vm, vk, pw, like, prows)
            out = (nc * P + i) * Q
            for u in range(nq):
                acc, key, tap = vec_load(vm, u * L * sw, sw), vec_load(vk, u * L * sw, sw), tile_bcast(keys, 0, 0, 1, 1)
                for s in range(1, kw):
                    at = u * L * sw + s * dw
                    acc, key, tap = tile_argmax(
                        acc, key, tap, vec_load(vm, at, sw), vec_load(vk, at, sw), tile_bcast(keys, s, 0, 1, 1)
                    )
                if not backward:
                    tile_store(acc, yf, out + u * L, 0, L, 1, 1, L, Q - u * L)
                tile_store(key, rk, u * L, 0, L, 1, 1, L, L)
                tile_store(tap, rt, u * L, 0, L, 1, 1, L, L)
            for j in range(Q):
                h = int(rk[j])
                at = -1 if h >= H else h * W + j * sw - pw + int(rt[j]) * dw
                if backward:
                    if at >= 0:
                        gxf[nc * H * W + at] += gyf[out + j]
                else:
                    idx[nc * P + i, j] = at


@inner
def _column_max(xf, at, step, n, left, like):
    """The max of xf[at + t*step : +LANES] over the n >= 1 rows t (lanes past `left` masked): straight-line code for
    the usual two or three rows, a loop past them."""
    L = vec_lanes(xf)
    acc = tile_load(like, xf, at, 0, L, 1, 1, L, left)
    if n > 1:
        acc = tile_max(acc, tile_load(like, xf, at + step, 0, L, 1, 1, L, left))
    if n > 2:
        acc = tile_max(acc, tile_load(like, xf, at + 2 * step, 0, L, 1, 1, L, left))
    for t in range(3, n):
        acc = tile_max(acc, tile_load(like, xf, at + t * step, 0, L, 1, 1, L, left))
    return acc


@kernel
def max_pool_rows(x, y, h0, hn, dh, sw, pw, dw, kw, span, prows):
    """y[n, c, i, j] = max of x over rows h0[i] + t*dh (t < hn[i], clipped to the input) and columns
    j*sw - pw + s*dw (s < kw); NaN propagates, an empty window gives -inf. One (n, c) plane per iteration (disjoint
    outputs). Separable, in SIMD registers: per output row, the vertical max of its input rows (LANES columns per
    vector) goes to a row buffer vm padded with -inf (pw on the left, to `span` on the right), then LANES outputs at
    a time take the max over the kw taps of vm read at stride sw. Only the buffer's pads stand for padding. The
    prows input rows that the window moves down by per output row are prefetched PREFETCH_BYTES ahead."""
    N, C, H, W = x.shape
    P, Q = y.shape[2], y.shape[3]
    xf, yf = x.reshape(-1), y.reshape(-1)
    L = vec_lanes(x)
    nw, nq = ceil_div(W, L), ceil_div(Q, L)
    ahead = PREFETCH_BYTES // x.itemsize
    for nc in prange(N * C):
        vm = np.empty(span, x.dtype)
        vm[:pw] = -np.inf
        vm[pw + W :] = -np.inf
        like = tile_zeros(x, 1, 1)
        for i in range(P):
            top, n = (nc * H + h0[i]) * W, hn[i]
            if n == 0:  # every row of the window lies in the padding
                vm[pw : pw + W] = -np.inf
            for r in range(prows if n else 0):
                for v in range(nw):
                    prefetch(xf, top + r * W + v * L + ahead)
            for v in range(nw if n else 0):  # masked loads and stores past W
                acc = _column_max(xf, top + v * L, dh * W, n, W - v * L, like)
                tile_store(acc, vm, pw + v * L, 0, L, 1, 1, L, W - v * L)
            for u in range(nq):
                acc = vec_load(vm, u * L * sw, sw)
                for s in range(1, kw):
                    acc = tile_max(acc, vec_load(vm, u * L * sw + s * dw, sw))
                tile_store(acc, yf, (nc * P + i) * Q + u * L, 0, L, 1, 1, L, Q - u * L)


@kernel
def separable_avg(x, y, h0, hn, w0, wn, div_h, div_w):
    """y[n, c, i, j] = sum of x over rows [h0[i], h0[i] + hn[i]) and columns [w0[j], w0[j] + wn[j]) /
    (div_h[i] * div_w[j]): average and adaptive pooling. Separable as max_pool_rows (rows first, then columns),
    summing in float64."""
    N, C, H, W = x.shape
    P, Q = y.shape[2], y.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        v = np.zeros((P, W))
        for i in range(P):
            vi = v[i]
            for t in range(hn[i]):
                row = x[n, c, h0[i] + t]
                for w in range(W):
                    vi[w] += row[w]
        for i in range(P):
            yi, vi = y[n, c, i], v[i]
            for j in range(Q):
                acc = 0.0
                for t in range(wn[j]):
                    acc += vi[w0[j] + t]
                yi[j] = acc / (div_h[i] * div_w[j])


@kernel
def separable_avg_bwd(gy, gx, h0, hn, w0, wn, div_h, div_w):
    """The adjoint of separable_avg: spread gy / divisor over each window's columns into a float64
    (P, W) scratch, then add its rows into the window rows of gx. One plane per iteration, fixed order."""
    N, C, H, W = gx.shape
    P, Q = gy.shape[2], gy.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        v = np.zeros((P, W))
        for i in range(P):
            gi, vi = gy[n, c, i], v[i]
            for j in range(Q):
                share = gi[j] / (div_h[i] * div_w[j])
                for t in range(wn[j]):
                    vi[w0[j] + t] += share
        for h in range(H):
            gxh = gx[n, c, h]
            for w in range(W):
                gxh[w] = 0
        for i in range(P):
            vi = v[i]
            for t in range(hn[i]):
                gxh = gx[n, c, h0[i] + t]
                for w in range(W):
                    gxh[w] += vi[w]


# ---------------------------------------------------------------------------------------------- registry ops
def _taps(n: int, k: int, s: int, pad: int, d: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output index along one dim: the position of its first in-input tap and its number of in-input taps."""
    start = np.arange(out) * s - pad
    first = np.where(start >= 0, 0, (d - 1 - start) // d)  # ceil(-start / d): first tap at a position >= 0
    end = np.minimum(k, np.maximum(n - start + d - 1, 0) // d)  # taps t with start + t*d < n
    return (start + first * d).astype(np.int64), np.maximum(end - first, 0).astype(np.int64)


def max_pool2d_fwd_v2_separable(p: PoolParams, x: np.ndarray, need_indices: bool):
    if not need_indices:
        return filled(p.y_shape, x.dtype, lambda y: max_pool_rows(x, y, *_geometry(p, x.dtype))), None
    idx = empty(p.y_shape, np.int64)
    y = filled(
        p.y_shape,
        x.dtype,
        lambda y: max_pool_index_rows(x, y, idx.reshape(-1, p.Q), y, y, False, *_index_geometry(p, x.dtype)),
    )
    return y, idx


def max_pool2d_bwd_v2_separable(p: PoolParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    none = np.empty((1, 1), np.int64)
    return filled(
        p.x_shape, x.dtype, lambda gx: max_pool_index_rows(x, gy, none, gy, gx, True, *_index_geometry(p, x.dtype))
    )


def _geometry(p: PoolParams, dtype) -> tuple:
    """max_pool_rows' geometry arguments: first rows and row counts of the windows, strides, the buffer span, the
    rows to prefetch per output row (those the window moves down by, unless it skips rows)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = p.kernel, p.stride, p.padding, p.dilation
    h0, hn = _taps(p.H, kh, sh, ph, dh, p.P)
    L = lanes(np.dtype(dtype).itemsize)
    span = max(ceil_div(p.Q, L) * L * sw + (kw - 1) * dw + sw, pw + p.W)  # every vector read of the row buffers
    return h0, hn, dh, sw, pw, dw, kw, span, min(sh, (kh - 1) * dh + 1)


def _index_geometry(p: PoolParams, dtype) -> tuple:
    """_geometry plus the float keys 0 .. max(H, kw) - 1 (rows and taps)."""
    return *_geometry(p, dtype), np.arange(max(p.H, p.kernel[1]), dtype=dtype)


def _avg_windows(n: int, k: int, s: int, pad: int, out: int, include_pad: bool) -> tuple[np.ndarray, ...]:
    """Window start and size along one dim clipped to the input, and PyTorch's divisor: the window clipped to the
    padded input, or to the input when padding is excluded."""
    start = np.arange(out) * s - pad
    end = np.minimum(start + k, n + pad)
    lo, hi = np.maximum(start, 0), np.minimum(end, n)
    return lo, hi - lo, (end - start) if include_pad else (hi - lo)


def _avg_bounds(p: PoolParams) -> tuple[np.ndarray, ...]:
    h0, hn, dh = _avg_windows(p.H, p.kernel[0], p.stride[0], p.padding[0], p.P, p.count_include_pad)
    w0, wn, dw = _avg_windows(p.W, p.kernel[1], p.stride[1], p.padding[1], p.Q, p.count_include_pad)
    return tuple(a.astype(np.int64) for a in (h0, hn, w0, wn, dh, dw))


def _adaptive_bounds(p: AdaptivePoolParams) -> tuple[np.ndarray, ...]:
    hs, he = adaptive_windows(p.H, p.P)
    ws, we = adaptive_windows(p.W, p.Q)
    return tuple(a.astype(np.int64) for a in (hs, he - hs, ws, we - ws, he - hs, we - ws))


def _avg(x: np.ndarray, shape: tuple, bounds: tuple) -> np.ndarray:
    h0, hn, w0, wn, div_h, div_w = bounds
    return filled(
        shape,
        x.dtype,
        lambda y: separable_avg(x, y, h0, hn, w0, wn, div_h.astype(np.float64), div_w.astype(np.float64)),
    )


def _avg_bwd(gy: np.ndarray, shape: tuple, bounds: tuple) -> np.ndarray:
    h0, hn, w0, wn, div_h, div_w = bounds
    return filled(
        shape,
        gy.dtype,
        lambda gx: separable_avg_bwd(gy, gx, h0, hn, w0, wn, div_h.astype(np.float64), div_w.astype(np.float64)),
    )


def avg_pool2d_fwd_v2_separable(p: PoolParams, x: np.ndarray) -> np.ndarray:
    return _avg(x, p.y_shape, _avg_bounds(p))


def avg_pool2d_bwd_v2_separable(p: PoolParams, gy: np.ndarray) -> np.ndarray:
    return _avg_bwd(gy, p.x_shape, _avg_bounds(p))


def adaptive_avg_pool2d_fwd_v2_separable(p: AdaptivePoolParams, x: np.ndarray) -> np.ndarray:
    return _avg(x, p.y_shape, _adaptive_bounds(p))


def adaptive_avg_pool2d_bwd_v2_separable(p: AdaptivePoolParams, gy: np.ndarray) -> np.ndarray:
    return _avg_bwd(gy, p.x_shape, _adaptive_bounds(p))


def global_avg_pool2d_fwd_v2_separable(p: AdaptivePoolParams, x: np.ndarray) -> np.ndarray:
    """The adaptive kernel with a 1x1 output."""
    return adaptive_avg_pool2d_fwd_v2_separable(p, x)


def global_avg_pool2d_bwd_v2_separable(p: AdaptivePoolParams, gy: np.ndarray) -> np.ndarray:
    """The adaptive kernel's gradient with a 1x1 output."""
    return adaptive_avg_pool2d_bwd_v2_separable(p, gy)
