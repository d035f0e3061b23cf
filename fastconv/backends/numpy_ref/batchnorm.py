"""Reference batch norm and ReLU.

Batch norm sees x as (N, C, M). Training: mean and biased variance over (N, M) per channel; eval: the running
statistics. y = (x - mean) / sqrt(var + eps) * w + b. With xhat the normalised input and count = N*M, the
training-mode input gradient is w / sqrt(var + eps) / count * (count*gy - sum(gy) - xhat * sum(gy*xhat)).
"""

from __future__ import annotations

import numpy as np

from ...params import BatchNormParams, EltwiseParams


def _stats(p: BatchNormParams, x3: np.ndarray, rm, rv) -> tuple[np.ndarray, np.ndarray]:
    if p.training:
        return x3.mean(axis=(0, 2)), x3.var(axis=(0, 2))
    return rm, rv


def batch_norm(p: BatchNormParams, x, w, b, rm, rv):
    x3 = x.reshape(p.N, p.C, p.M)
    if x3.size == 0:
        return np.empty(p.shape, x.dtype), None, None
    mean, var = _stats(p, x3, rm, rv)
    scale = w / np.sqrt(var + x.dtype.type(p.eps))
    y = (x3 - mean[:, None]) * scale[:, None] + b[:, None]
    return y.reshape(p.shape), (mean if p.training else None), (var if p.training else None)


def batch_norm_bwd(p: BatchNormParams, gy, x, w, rm, rv):
    x3, gy3 = x.reshape(p.N, p.C, p.M), gy.reshape(p.N, p.C, p.M)
    if x3.size == 0:
        return np.empty(p.shape, x.dtype), np.zeros(p.C, x.dtype), np.zeros(p.C, x.dtype)
    mean, var = _stats(p, x3, rm, rv)
    invstd = 1 / np.sqrt(var + x.dtype.type(p.eps))
    xhat = (x3 - mean[:, None]) * invstd[:, None]
    gb = gy3.sum(axis=(0, 2))
    gw = (gy3 * xhat).sum(axis=(0, 2))
    if p.training:
        count = p.N * p.M
        gx = (w * invstd / count)[:, None] * (count * gy3 - gb[:, None] - xhat * gw[:, None])
    else:
        gx = gy3 * (w * invstd)[:, None]
    return gx.reshape(p.shape), gw, gb


def relu(p: EltwiseParams, x):
    return np.maximum(x, x.dtype.type(0))


def relu_bwd(p: EltwiseParams, gy, y):
    return np.where(y <= 0, gy.dtype.type(0), gy)
