"""Batch norm (train/eval, fwd + bwd) and ReLU (fwd + bwd).

Batch norm sees x as (N, C, M). Statistics are reduced in two steps so the result never depends on the thread
count: one prange iteration per (n, c) plane writes that plane's partial sums (float64, two passes over the plane
while it is in cache: mean, then the sum of squared deviations) into its own slot of a (N, C) buffer; the partials
of each channel are then combined over n in a fixed order (Chan's pairwise formula for the variance). The
elementwise passes run one plane per iteration. With xhat = (x - mean) * invstd and count = N*M, training-mode
gx = w*invstd * (gy - sum(gy)/count - xhat * sum(gy*xhat)/count), applied as a*gy + b*(x - mean) + d by the one
per-channel affine kernel that also applies the forward.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...arrays import empty
from ...params import BatchNormParams, EltwiseParams
from .config import kernel


@kernel
def plane_moments(x3, mean_nc, m2_nc):
    """mean_nc[n, c] = mean of plane x3[n, c]; m2_nc[n, c] = sum of its squared deviations (float64)."""
    N, C, M = x3.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        s = 0.0
        for m in range(M):
            s += x3[n, c, m]
        mean = s / M
        d2 = 0.0
        for m in range(M):
            d = x3[n, c, m] - mean
            d2 += d * d
        mean_nc[n, c], m2_nc[n, c] = mean, d2


def combine_moments(mean_nc: np.ndarray, m2_nc: np.ndarray, M: int) -> tuple[np.ndarray, np.ndarray]:
    """Per channel: mean and biased variance of N planes of M values each, merged over n in order (Chan et al.'s
    pairwise update, vectorised over channels)."""
    mean, m2, count = mean_nc[0].copy(), m2_nc[0].copy(), M
    for n in range(1, mean_nc.shape[0]):
        delta = mean_nc[n] - mean
        total = count + M
        mean += delta * (M / total)
        m2 += m2_nc[n] + delta * delta * (count * M / total)
        count = total
    return mean, m2 / count


@kernel
def plane_dot_sums(a3, b3, shift, sum_a, sum_ab):
    """Per (n, c) plane, in float64: sum_a[n, c] = sum(a), sum_ab[n, c] = sum(a * (b - shift[c])). Gives the batch
    norm gradient sums (a = gy, b = x, shift = mean) and the conv bias gradient (sum_a of a = gy)."""
    N, C, M = a3.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        mu = shift[c]
        s, sb = 0.0, 0.0
        for m in range(M):
            v = a3[n, c, m]
            s += v
            sb += v * (b3[n, c, m] - mu)
        sum_a[n, c], sum_ab[n, c] = s, sb


@kernel
def channel_affine(g3, x3, out3, mean, a, b, d):
    """out = a[c] * g + b[c] * (x - mean[c]) + d[c]; one (n, c) plane per iteration. With a = 0 it is the batch
    norm forward (x - mean) * scale + shift; with b = 0 the eval-mode gradient a * gy."""
    N, C, M = x3.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        mu, ac, bc, dc = mean[c], a[c], b[c], d[c]
        for m in range(M):
            out3[n, c, m] = ac * g3[n, c, m] + bc * (x3[n, c, m] - mu) + dc


@kernel
def relu_mask(g, y, out, chunk):
    """out = g where y > 0 or y is NaN, else 0: relu_bwd(gy, y), and relu(x) as relu_mask(x, x). One chunk of
    the flat arrays per iteration."""
    for i in prange((y.size + chunk - 1) // chunk):
        for j in range(i * chunk, min((i + 1) * chunk, y.size)):
            out[j] = 0 if y[j] <= 0 else g[j]


CHUNK = 1 << 14  # elements per relu iteration: large enough to amortise the loop, small enough to balance


# ---------------------------------------------------------------------------------------------- registry ops
def _batch_moments(p: BatchNormParams, x3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean_nc, m2_nc = np.empty((p.N, p.C)), np.empty((p.N, p.C))
    plane_moments(x3, mean_nc, m2_nc)
    return combine_moments(mean_nc, m2_nc, p.M)


def _stats(p: BatchNormParams, x3, rm, rv) -> tuple[np.ndarray, np.ndarray]:
    if p.training:
        return _batch_moments(p, x3)
    return rm.astype(np.float64), rv.astype(np.float64)


def batch_norm(p: BatchNormParams, x, w, b, rm, rv):
    y = empty(p.shape, x.dtype)
    if y.size == 0:
        return y, None, None
    x3 = x.reshape(p.N, p.C, p.M)
    mean, var = _stats(p, x3, rm, rv)
    scale = w / np.sqrt(var + p.eps)
    channel_affine(x3, x3, y.reshape(x3.shape), *_cast(x.dtype, mean, np.zeros(p.C), scale, b))
    if not p.training:
        return y, None, None
    return y, mean.astype(x.dtype), var.astype(x.dtype)


def _cast(dtype, *vectors):
    return [v.astype(dtype) for v in vectors]


def grad_sums(a3: np.ndarray, b3: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel sum(a) and sum(a * (b - shift)) in float64: per-plane partials summed over n in order."""
    N, C, _ = a3.shape
    sum_a, sum_ab = np.empty((N, C)), np.empty((N, C))
    plane_dot_sums(a3, b3, shift, sum_a, sum_ab)
    return sum_a.sum(axis=0), sum_ab.sum(axis=0)


def batch_norm_bwd(p: BatchNormParams, gy, x, w, rm, rv):
    gx = empty(p.shape, x.dtype)
    if gx.size == 0:
        return gx, np.zeros(p.C, x.dtype), np.zeros(p.C, x.dtype)
    x3, gy3 = x.reshape(p.N, p.C, p.M), gy.reshape(p.N, p.C, p.M)
    mean, var = _stats(p, x3, rm, rv)
    invstd = 1 / np.sqrt(var + p.eps)
    gb, gxc = grad_sums(gy3, x3, mean)
    a = w * invstd
    zero = np.zeros(p.C)
    if p.training:  # gx = a*gy + b*(x - mean) + d
        count = p.N * p.M
        channel_affine(gy3, x3, gx.reshape(x3.shape), *_cast(x.dtype, mean, a, -a * invstd * invstd * gxc / count,
                                                             -a * gb / count))
    else:  # gx = a * gy, independent of x
        channel_affine(gy3, gy3, gx.reshape(x3.shape), *_cast(x.dtype, zero, a, zero, zero))
    return gx, (gxc * invstd).astype(x.dtype), gb.astype(x.dtype)


def relu(p: EltwiseParams, x):
    y = empty(p.shape, x.dtype)
    relu_mask(x.reshape(-1), x.reshape(-1), y.reshape(-1), CHUNK)
    return y


def relu_bwd(p: EltwiseParams, gy, y):
    gx = empty(p.shape, gy.dtype)
    relu_mask(gy.reshape(-1), y.reshape(-1), gx.reshape(-1), CHUNK)
    return gx
