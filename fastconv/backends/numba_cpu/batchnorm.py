"""Batch norm (train/eval, fwd + bwd) and ReLU (fwd + bwd).

Batch norm sees x as (N, C, M) and runs one channel per prange iteration, all of it in that iteration: the
statistics of its N planes and then the elementwise pass over the same planes, which are still in the core's L2
cache (one channel of the benchmark problem, N8 112x112, is 0.4 MB of x, 0.8 MB of x and gy), so x (and gy) come
from memory once per call and the output is written once. The statistics never depend on the thread count: per
plane, in float64, two passes while the plane is in cache (its mean, then the squared deviations and, for the
backward, sum(gy) and sum(gy * (x - its mean))); the N plane partials are merged in order n = 0..N-1 (Chan's pairwise
formula for the variance, a shift of each plane mean to the batch mean for the gradient sum). With
xhat = (x - mean) * invstd and count = N*M, training-mode gx = w*invstd * (gy - sum(gy)/count - xhat *
sum(gy*xhat)/count), applied as a*gy + b*(x - mean) + d.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...arrays import empty
from ...params import BatchNormParams, EltwiseParams
from .config import inner, kernel


@inner
def _plane_partials(xs, gs, with_grad, out):
    """out = (mean, sum of squared deviations from it, and with_grad: sum(g), sum(g * (x - mean))) of one plane,
    in float64: two passes over the plane while it is in cache (the mean first); g is read once."""
    M = xs.size
    s = 0.0
    for m in range(M):
        s += xs[m]
    mean = s / M
    d2, sg, sgx = 0.0, 0.0, 0.0
    if with_grad:
        for m in range(M):
            d, g = xs[m] - mean, gs[m]
            d2 += d * d
            sg += g
            sgx += g * d
    else:
        for m in range(M):
            d = xs[m] - mean
            d2 += d * d
    out[0], out[1], out[2], out[3] = mean, d2, sg, sgx


@inner
def _channel_stats(x3, g3, c, with_grad, training, mean_in, var_in, out):
    """out = (mean, biased variance, sum(g), sum(g * (x - mean))) of channel c over its N planes, merged in order;
    mean and variance are mean_in[c], var_in[c] when not training (the sums are then taken around that mean)."""
    N, C, M = x3.shape
    part = np.empty(4)
    mean, m2, sg, sgx, count = 0.0, 0.0, 0.0, 0.0, 0
    means = np.empty(N)
    sgs = np.empty(N)
    for n in range(N):
        _plane_partials(x3[n, c], g3[n, c], with_grad, part)
        means[n], sgs[n] = part[0], part[2]
        total = count + M
        delta = part[0] - mean
        mean += delta * (M / total)
        m2 += part[1] + delta * delta * (count * M / total)
        count = total
        sg += part[2]
        sgx += part[3]
    var = m2 / count
    if not training:
        mean, var = mean_in[c], var_in[c]
    for n in range(N):  # sum(g * (x - mean)) from the plane sums taken around each plane's mean
        sgx += (means[n] - mean) * sgs[n]
    out[0], out[1], out[2], out[3] = mean, var, sg, sgx


@kernel
def channel_sums(x3, out):
    """out[c] = sum of x3[:, c] in float64, the plane sums added in order n = 0..N-1 (the conv bias gradient).
    One channel per iteration."""
    N, C, M = x3.shape
    for c in prange(C):
        total = 0.0
        for n in range(N):
            xs = x3[n, c]
            s = 0.0
            for m in range(M):
                s += xs[m]
            total += s
        out[c] = total


@kernel
def bn_forward(x3, y3, w, b, mean_in, var_in, training, eps, stats):
    """y = (x - mean[c]) * w[c] / sqrt(var[c] + eps) + b[c], with the batch's mean and biased variance when
    training (written to stats[c]), else mean_in and var_in. One channel per iteration (disjoint outputs and
    stats rows); its planes are read from memory once and from cache for the second pass."""
    N, C, M = x3.shape
    for c in prange(C):
        st = stats[c]
        if training:
            _channel_stats(x3, x3, c, False, True, mean_in, var_in, st)
        else:
            st[0], st[1] = mean_in[c], var_in[c]
        coef = np.empty(2, x3.dtype)  # in x's dtype: the elementwise pass runs at its vector width
        coef[0], coef[1] = st[0], w[c] / np.sqrt(st[1] + eps)
        mu, sc, sh = coef[0], coef[1], b[c]
        for n in range(N):
            xs, ys = x3[n, c], y3[n, c]
            for m in range(M):
                ys[m] = (xs[m] - mu) * sc + sh


@kernel
def bn_backward(g3, x3, gx3, w, mean_in, var_in, training, eps, grads):
    """gx = a*gy + b*(x - mean) + d per channel (gx = a*gy when not training) and grads[c] = (grad_weight,
    grad_bias) = (sum(gy * xhat), sum(gy)). One channel per iteration, as bn_forward."""
    N, C, M = x3.shape
    st = np.empty((C, 4))
    for c in prange(C):
        s = st[c]
        _channel_stats(x3, g3, c, True, training, mean_in, var_in, s)
        mean, invstd, sg, sgx = s[0], 1 / np.sqrt(s[1] + eps), s[2], s[3]
        a, count = w[c] * invstd, N * M
        coef = np.zeros(4, x3.dtype)
        coef[0], coef[1] = mean, a
        if training:
            coef[2], coef[3] = -a * invstd * invstd * sgx / count, -a * sg / count
        mu, ac, bc, dc = coef[0], coef[1], coef[2], coef[3]
        for n in range(N):
            gs, xs, os = g3[n, c], x3[n, c], gx3[n, c]
            if training:
                for m in range(M):
                    os[m] = ac * gs[m] + bc * (xs[m] - mu) + dc
            else:  # independent of x: a NaN in x stays out of gx, as in the reference
                for m in range(M):
                    os[m] = ac * gs[m]
        grads[c, 0], grads[c, 1] = sgx * invstd, sg


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
def _running(p: BatchNormParams, rm, rv) -> tuple[np.ndarray, np.ndarray]:
    """The running statistics in float64 (zeros when training without them: they are not read then)."""
    if p.training:
        return np.zeros(p.C), np.ones(p.C)
    return rm.astype(np.float64), rv.astype(np.float64)


def batch_norm(p: BatchNormParams, x, w, b, rm, rv):
    y = empty(p.shape, x.dtype)
    if y.size == 0:
        return y, None, None
    stats = np.empty((p.C, 4))
    bn_forward(x.reshape(p.N, p.C, p.M), y.reshape(p.N, p.C, p.M), w, b, *_running(p, rm, rv), p.training,
               p.eps, stats)
    if not p.training:
        return y, None, None
    return y, stats[:, 0].astype(x.dtype), stats[:, 1].astype(x.dtype)


def batch_norm_bwd(p: BatchNormParams, gy, x, w, rm, rv):
    gx = empty(p.shape, x.dtype)
    if gx.size == 0:
        return gx, np.zeros(p.C, x.dtype), np.zeros(p.C, x.dtype)
    grads = np.empty((p.C, 2))
    shape3 = (p.N, p.C, p.M)
    bn_backward(gy.reshape(shape3), x.reshape(shape3), gx.reshape(shape3), w, *_running(p, rm, rv), p.training,
                p.eps, grads)
    return gx, grads[:, 0].astype(x.dtype), grads[:, 1].astype(x.dtype)


def relu(p: EltwiseParams, x):
    y = empty(p.shape, x.dtype)
    relu_mask(x.reshape(-1), x.reshape(-1), y.reshape(-1), CHUNK)
    return y


def relu_bwd(p: EltwiseParams, gy, y):
    gx = empty(p.shape, gy.dtype)
    relu_mask(gy.reshape(-1), y.reshape(-1), gx.reshape(-1), CHUNK)
    return gx
