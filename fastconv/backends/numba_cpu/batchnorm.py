"""Batch norm (train/eval, fwd + bwd) and ReLU (fwd + bwd).

Batch norm sees x as (N, C, M). Statistics are reduced in two steps so the result never depends on the thread
count: one prange iteration per (n, c) plane writes that plane's partials (float64, two passes over the plane while
it is in cache: its mean, then the squared deviations and, for the backward, sum(gy) and sum(gy * (x - its mean)))
into its own slot of a (N, C, 4) buffer; the partials of each channel are then combined over n in a fixed order
(Chan's pairwise formula for the variance, a shift of the plane mean to the batch mean for the gradient sum). The
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
def plane_stats(x3, g3, with_grad, out):
    """Per (n, c) plane, in float64, into out[n, c] = (mean, sum of squared deviations from it, and with_grad:
    sum(g), sum(g * (x - mean))). Two passes over the plane while it is in cache (the mean first); g is read once."""
    N, C, M = x3.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        xs = x3[n, c]
        s = 0.0
        for m in range(M):
            s += xs[m]
        mean = s / M
        d2, sg, sgx = 0.0, 0.0, 0.0
        if with_grad:
            gs = g3[n, c]
            for m in range(M):
                d, g = xs[m] - mean, gs[m]
                d2 += d * d
                sg += g
                sgx += g * d
        else:
            for m in range(M):
                d = xs[m] - mean
                d2 += d * d
        o = out[n, c]
        o[0], o[1], o[2], o[3] = mean, d2, sg, sgx


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
def channel_affine(g3, x3, out3, mean, a, b, d):
    """out = a[c] * g + b[c] * (x - mean[c]) + d[c]; one (n, c) plane per iteration. With a = 0 it is the batch
    norm forward (x - mean) * scale + shift; with b = 0 the eval-mode gradient a * gy."""
    N, C, M = x3.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        mu, ac, bc, dc = mean[c], a[c], b[c], d[c]
        gs, xs, os = g3[n, c], x3[n, c], out3[n, c]
        for m in range(M):
            os[m] = ac * gs[m] + bc * (xs[m] - mu) + dc


@kernel
def relu_mask(g, y, out, chunk):
    """out = g where y > 0 or y is NaN, else 0: relu_bwd(gy, y), and relu(x) as relu_mask(x, x). One chunk of
    the flat arrays per iteration."""
    for i in prange((y.size + chunk - 1) // chunk):
        gs, ys, os = g[i * chunk:(i + 1) * chunk], y[i * chunk:(i + 1) * chunk], out[i * chunk:(i + 1) * chunk]
        for j in range(ys.size):  # indices from 0 on views: no wraparound check, so it vectorises
            os[j] = 0 if ys[j] <= 0 else gs[j]


CHUNK = 1 << 14  # elements per relu iteration: large enough to amortise the loop, small enough to balance


# ---------------------------------------------------------------------------------------------- registry ops
def stats(x3: np.ndarray, g3: np.ndarray | None = None) -> np.ndarray:
    """plane_stats of x3 (and g3): a (N, C, 4) float64 array of per-plane partials."""
    out = np.empty(x3.shape[:2] + (4,))
    plane_stats(x3, x3 if g3 is None else g3, g3 is not None, out)
    return out


def _mean_var(p: BatchNormParams, part: np.ndarray | None, rm, rv) -> tuple[np.ndarray, np.ndarray]:
    if p.training:
        return combine_moments(part[..., 0], part[..., 1], p.M)
    return rm.astype(np.float64), rv.astype(np.float64)


def batch_norm(p: BatchNormParams, x, w, b, rm, rv):
    y = empty(p.shape, x.dtype)
    if y.size == 0:
        return y, None, None
    x3 = x.reshape(p.N, p.C, p.M)
    mean, var = _mean_var(p, stats(x3) if p.training else None, rm, rv)
    scale = w / np.sqrt(var + p.eps)
    channel_affine(x3, x3, y.reshape(x3.shape), *_cast(x.dtype, mean, np.zeros(p.C), scale, b))
    if not p.training:
        return y, None, None
    return y, mean.astype(x.dtype), var.astype(x.dtype)


def _cast(dtype, *vectors):
    return [v.astype(dtype) for v in vectors]


def batch_norm_bwd(p: BatchNormParams, gy, x, w, rm, rv):
    gx = empty(p.shape, x.dtype)
    if gx.size == 0:
        return gx, np.zeros(p.C, x.dtype), np.zeros(p.C, x.dtype)
    x3, gy3 = x.reshape(p.N, p.C, p.M), gy.reshape(p.N, p.C, p.M)
    part = stats(x3, gy3)
    mean, var = _mean_var(p, part, rm, rv)
    invstd = 1 / np.sqrt(var + p.eps)
    gb = part[..., 2].sum(axis=0)  # fixed order over n
    gxc = (part[..., 3] + (part[..., 0] - mean) * part[..., 2]).sum(axis=0)  # sum(gy * (x - mean))
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
