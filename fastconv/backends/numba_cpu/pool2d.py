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


@kernel
def window_avg(x, y, hs, he, ws, we, div_h, div_w):
    """y[n,c,i,j] = sum of x over rows [hs[i], he[i]) x columns [ws[j], we[j]) / (div_h[i] * div_w[j]).
    Average pooling (PyTorch's divisor is a product of per-dim sizes) and adaptive pooling both take this form.
    One plane per iteration."""
    N, C = x.shape[0], x.shape[1]
    P, Q = y.shape[2], y.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for i in range(P):
            for j in range(Q):
                acc = 0.0
                for h in range(hs[i], he[i]):
                    for w in range(ws[j], we[j]):
                        acc += x[n, c, h, w]
                y[n, c, i, j] = acc / (div_h[i] * div_w[j])


@kernel
def window_avg_bwd(gy, gx, hs, he, ws, we, div_h, div_w):
    """The adjoint of window_avg: gx = 0, then each gy[n,c,i,j] / divisor is added over its window (windows may
    overlap). One plane per iteration, scattering inside it in a fixed order."""
    N, C = gx.shape[0], gx.shape[1]
    P, Q = gy.shape[2], gy.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        gx[n, c] = 0
        for i in range(P):
            for j in range(Q):
                share = gy[n, c, i, j] / (div_h[i] * div_w[j])
                for h in range(hs[i], he[i]):
                    for w in range(ws[j], we[j]):
                        gx[n, c, h, w] += share


# ---------------------------------------------------------------------------------------------- registry ops
def _geom(p: PoolParams) -> tuple[int, ...]:
    (sh, sw), (ph, pw), (dh, dw), (kh, kw) = p.stride, p.padding, p.dilation, p.kernel
    return sh, sw, ph, pw, dh, dw, kh, kw


def max_pool2d(p: PoolParams, x: np.ndarray, need_indices: bool):
    idx = empty(p.y_shape if need_indices else (1, 1, 1, 1), np.int64)
    none = np.empty((1, 1, 1, 1), x.dtype)
    y = filled(p.y_shape, x.dtype, lambda y: max_pool_planes(x, y, idx, need_indices, none, none, False,
                                                             *_geom(p)))
    return y, (idx if need_indices else None)


def max_pool2d_bwd(p: PoolParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    none = np.empty((1, 1, 1, 1), np.int64)
    return filled(p.x_shape, x.dtype, lambda gx: max_pool_planes(x, gy, none, False, gy, gx, True, *_geom(p)))


def _avg_windows(n: int, k: int, s: int, pad: int, out: int, include_pad: bool) -> tuple[np.ndarray, ...]:
    """Window bounds along one dim clipped to the input, and PyTorch's divisor: the window clipped to the padded
    input, or to the input when padding is excluded."""
    start = np.arange(out) * s - pad
    end = np.minimum(start + k, n + pad)
    lo, hi = np.maximum(start, 0), np.minimum(end, n)
    return lo, hi, (end - start) if include_pad else (hi - lo)


def _avg_bounds(p: PoolParams) -> tuple[np.ndarray, ...]:
    hs, he, dh = _avg_windows(p.H, p.kernel[0], p.stride[0], p.padding[0], p.P, p.count_include_pad)
    ws, we, dw = _avg_windows(p.W, p.kernel[1], p.stride[1], p.padding[1], p.Q, p.count_include_pad)
    return tuple(a.astype(np.int64) for a in (hs, he, ws, we, dh, dw))


def _adaptive_bounds(p: AdaptivePoolParams) -> tuple[np.ndarray, ...]:
    hs, he = adaptive_windows(p.H, p.P)
    ws, we = adaptive_windows(p.W, p.Q)
    return tuple(a.astype(np.int64) for a in (hs, he, ws, we, he - hs, we - ws))


def avg_pool2d(p: PoolParams, x: np.ndarray) -> np.ndarray:
    return filled(p.y_shape, x.dtype, lambda y: window_avg(x, y, *_avg_bounds(p)))


def avg_pool2d_bwd(p: PoolParams, gy: np.ndarray) -> np.ndarray:
    return filled(p.x_shape, gy.dtype, lambda gx: window_avg_bwd(gy, gx, *_avg_bounds(p)))


def adaptive_avg_pool2d(p: AdaptivePoolParams, x: np.ndarray) -> np.ndarray:
    return filled(p.y_shape, x.dtype, lambda y: window_avg(x, y, *_adaptive_bounds(p)))


def adaptive_avg_pool2d_bwd(p: AdaptivePoolParams, gy: np.ndarray) -> np.ndarray:
    return filled(p.x_shape, gy.dtype, lambda gx: window_avg_bwd(gy, gx, *_adaptive_bounds(p)))
