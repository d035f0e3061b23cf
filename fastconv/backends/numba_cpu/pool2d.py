"""Pooling kernels: max (with indices), average (PyTorch's divisor rules), adaptive and global average, fwd + bwd.

x (N,C,H,W) -> y (N,C,P,Q); window (p, q) covers rows p*sh - ph + r*dh (r < kh) and columns likewise, clipped to
the input. Every kernel runs one (n, c) plane per prange iteration, so no two iterations touch the same element, and
within a plane the order of work is fixed (deterministic for any thread count). Max pooling keeps the first maximum
in row-major tap order; NaN counts as the maximum and propagates. Sums accumulate in float64.
"""

from __future__ import annotations

import numpy as np
from numba import prange, uintp

from ...arrays import empty
from ...params import AdaptivePoolParams, PoolParams, adaptive_windows
from .config import filled, inner, kernel


@inner
def _window(i, stride, pad, dil, k, n):
    """First tap, tap count and first input position of window i along one dim, clipped to [0, n)."""
    start = i * stride - pad
    t0 = 0
    while t0 < k and start + t0 * dil < 0:
        t0 += 1
    t1 = k
    while t1 > t0 and start + (t1 - 1) * dil >= n:
        t1 -= 1
    return t0, t1, start


@kernel
def max_pool_planes(x, y, idx, want_idx, gy, gx, backward, sh, sw, ph, pw, dh, dw, kh, kw):
    """Find each window's first maximum (NaN wins). Forward: y[n,c,p,q] = that max, idx = its h*W + w (-1 for a
    window holding no input). Backward: gx[n,c] = 0, then gy[n,c,p,q] is added at the max of window (p, q).
    One (n, c) plane per iteration, so iterations touch disjoint planes; within one the order is fixed."""
    N, C, H, W = x.shape
    P, Q = (gy.shape[2], gy.shape[3]) if backward else (y.shape[2], y.shape[3])
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        if backward:
            gx[n, c] = 0
        for p in range(P):
            r0, r1, h0 = _window(p, sh, ph, dh, kh, H)
            for q in range(Q):
                s0, s1, w0 = _window(q, sw, pw, dw, kw, W)
                best, at = -np.inf, -1
                for r in range(r0, r1):
                    h = h0 + r * dh
                    for s in range(s0, s1):
                        v = x[n, c, h, w0 + s * dw]
                        if at < 0 or v > best or (v != v and best == best):
                            best, at = v, h * W + w0 + s * dw
                if backward:
                    if at >= 0:
                        gx[n, c, at // W, at % W] += gy[n, c, p, q]
                else:
                    y[n, c, p, q] = best
                    if want_idx:
                        idx[n, c, p, q] = at


@inner
def _nanmax(a, b):
    return b if ((b > a) | (b != b)) else a


@inner
def _clipped_max(yi, vi, j, w0, wn, dw):
    for t in range(wn[j]):
        yi[j] = _nanmax(yi[j], vi[w0[j] + t * dw])


@kernel
def separable_max(x, y, h0, hn, dh, w0, wn, dw, sw, pw, kw, j0, j1):
    """y[n, c, i, j] = max of x over rows h0[i] + t*dh (t < hn[i]) and columns w0[j] + t*dw (t < wn[j]), taps
    already clipped to the input; NaN propagates, an empty window gives -inf. Separable: a vertical pass over whole
    contiguous rows into a (P, W) scratch, then a horizontal pass (columns j0 <= j < j1 have all kw taps inside,
    at j*sw - pw + t*dw). One (n, c) plane per iteration."""
    N, C, H, W = x.shape
    P, Q = y.shape[2], y.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        v = np.empty((P, W), x.dtype)
        for i in range(P):
            vi = v[i]
            for w in range(W):
                vi[w] = -np.inf
            for t in range(hn[i]):
                row = x[n, c, h0[i] + t * dh]
                for w in range(W):
                    vi[w] = _nanmax(vi[w], row[w])
        for i in range(P):
            yi, vi = y[n, c, i], v[i]
            for j in range(Q):
                yi[j] = -np.inf
            for t in range(kw):  # taps outer, outputs inner: a gather per vector of outputs
                for j in range(j0, j1):  # windows with every tap inside: position j*sw - pw + t*dw
                    yi[j] = _nanmax(yi[j], vi[uintp(j * sw - pw + t * dw)])
            for j in range(j0):
                _clipped_max(yi, vi, j, w0, wn, dw)
            for j in range(j1, Q):
                _clipped_max(yi, vi, j, w0, wn, dw)


@kernel
def separable_avg(x, y, h0, hn, w0, wn, div_h, div_w):
    """y[n, c, i, j] = sum of x over rows [h0[i], h0[i] + hn[i]) and columns [w0[j], w0[j] + wn[j]) /
    (div_h[i] * div_w[j]): average and adaptive pooling. Separable as separable_max, summing in float64."""
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
def _geom(p: PoolParams) -> tuple[int, ...]:
    (sh, sw), (ph, pw), (dh, dw), (kh, kw) = p.stride, p.padding, p.dilation, p.kernel
    return sh, sw, ph, pw, dh, dw, kh, kw


def _taps(n: int, k: int, s: int, pad: int, d: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output index along one dim: the position of its first in-input tap and its number of in-input taps."""
    start = np.arange(out) * s - pad
    first = np.where(start >= 0, 0, (d - 1 - start) // d)  # ceil(-start / d): first tap at a position >= 0
    end = np.minimum(k, np.maximum(n - start + d - 1, 0) // d)  # taps t with start + t*d < n
    return (start + first * d).astype(np.int64), np.maximum(end - first, 0).astype(np.int64)


def max_pool2d(p: PoolParams, x: np.ndarray, need_indices: bool):
    if not need_indices:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = p.kernel, p.stride, p.padding, p.dilation
        h0, hn = _taps(p.H, kh, sh, ph, dh, p.P)
        w0, wn = _taps(p.W, kw, sw, pw, dw, p.Q)
        j0 = min(-(-pw // sw), p.Q)
        j1 = max(min((p.W - 1 - (kw - 1) * dw + pw) // sw + 1, p.Q), j0)
        return filled(p.y_shape, x.dtype, lambda y: separable_max(x, y, h0, hn, dh, w0, wn, dw, sw, pw, kw, j0,
                                                                  j1)), None
    idx = empty(p.y_shape, np.int64)
    none = np.empty((1, 1, 1, 1), x.dtype)
    y = filled(p.y_shape, x.dtype, lambda y: max_pool_planes(x, y, idx, True, none, none, False, *_geom(p)))
    return y, idx


def max_pool2d_bwd(p: PoolParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    none = np.empty((1, 1, 1, 1), np.int64)
    return filled(p.x_shape, x.dtype, lambda gx: max_pool_planes(x, gy, none, False, gy, gx, True, *_geom(p)))


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
    return filled(shape, x.dtype, lambda y: separable_avg(x, y, h0, hn, w0, wn, div_h.astype(np.float64),
                                                          div_w.astype(np.float64)))


def _avg_bwd(gy: np.ndarray, shape: tuple, bounds: tuple) -> np.ndarray:
    h0, hn, w0, wn, div_h, div_w = bounds
    return filled(shape, gy.dtype, lambda gx: separable_avg_bwd(gy, gx, h0, hn, w0, wn, div_h.astype(np.float64),
                                                                 div_w.astype(np.float64)))


def avg_pool2d(p: PoolParams, x: np.ndarray) -> np.ndarray:
    return _avg(x, p.y_shape, _avg_bounds(p))


def avg_pool2d_bwd(p: PoolParams, gy: np.ndarray) -> np.ndarray:
    return _avg_bwd(gy, p.x_shape, _avg_bounds(p))


def adaptive_avg_pool2d(p: AdaptivePoolParams, x: np.ndarray) -> np.ndarray:
    return _avg(x, p.y_shape, _adaptive_bounds(p))


def adaptive_avg_pool2d_bwd(p: AdaptivePoolParams, gy: np.ndarray) -> np.ndarray:
    return _avg_bwd(gy, p.x_shape, _adaptive_bounds(p))
