"""Row norm (group, layer and instance norm; fastconv.params.norm), forward and backward.

x is seen as (R, E); row r is normalised by its own mean and biased variance, computed in float64 in two passes
(the mean, then the squared deviations) so that a row far from zero keeps its precision; the affine element of
(r, e) is (r % G) * Cg + e // M.

    row_norm_fwd_v2_rows      iteration = one row: its statistics, then y = (x - mean) * rstd * w[a] + b[a].
    row_norm_bwd_v2_rows      iteration = one row: with xhat = (x - mean) * rstd and gh = gy * w[a],
                              gx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)); the row's mean and rstd are
                              kept for the second kernel. Then, iteration = one affine element a:
                              gw[a] = sum gy * xhat, gb[a] = sum gy over its rows r = n*G + a // Cg (n in order)
                              and elements e in [(a % Cg)*M, (a % Cg + 1)*M): a fixed order, no atomics.
Iterations write disjoint rows (or affine elements): race-free, and the same bits for any thread count.
(v1 is the CUDA kernel of the same family.)
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...arrays import empty
from ...params import NormParams
from .config import kernel


@kernel
def norm_rows(x2, w, b, y2, mean, var, G, Cg, M, eps):
    """y2[r] = (x2[r] - mean[r]) / sqrt(var[r] + eps) * w[a] + b[a]; mean and var are written per row."""
    R, E = x2.shape
    for r in prange(R):
        s = 0.0
        for e in range(E):
            s += x2[r, e]
        mu = s / E
        d2 = 0.0
        for e in range(E):
            d = x2[r, e] - mu
            d2 += d * d
        mean[r], var[r] = mu, d2 / E
        rstd = 1.0 / np.sqrt(d2 / E + eps)
        a0 = (r % G) * Cg
        for e in range(E):
            a = a0 + e // M
            y2[r, e] = (x2[r, e] - mu) * rstd * w[a] + b[a]


@kernel
def norm_rows_bwd(g2, x2, w, gx2, mean, rstd, G, Cg, M, eps):
    """gx2[r] of one row (module docstring), with its mean and rstd kept."""
    R, E = x2.shape
    for r in prange(R):
        s = 0.0
        for e in range(E):
            s += x2[r, e]
        mu = s / E
        d2 = 0.0
        for e in range(E):
            d = x2[r, e] - mu
            d2 += d * d
        inv = 1.0 / np.sqrt(d2 / E + eps)
        mean[r], rstd[r] = mu, inv
        a0 = (r % G) * Cg
        s1, s2 = 0.0, 0.0
        for e in range(E):
            gh = g2[r, e] * w[a0 + e // M]
            s1 += gh
            s2 += gh * (x2[r, e] - mu) * inv
        m1, m2 = s1 / E, s2 / E
        for e in range(E):
            gh = g2[r, e] * w[a0 + e // M]
            gx2[r, e] = inv * (gh - m1 - (x2[r, e] - mu) * inv * m2)


@kernel
def affine_grads(g2, x2, mean, rstd, gw, gb, G, Cg, M):
    """gw[a] = sum gy * xhat, gb[a] = sum gy over the (row, element) pairs of affine element a, in order."""
    R = x2.shape[0]
    for a in prange(G * Cg):
        g, c = a // Cg, a % Cg
        sw, sb = 0.0, 0.0
        for r in range(g, R, G):
            mu, inv = mean[r], rstd[r]
            for e in range(c * M, (c + 1) * M):
                sw += g2[r, e] * (x2[r, e] - mu) * inv
                sb += g2[r, e]
        gw[a], gb[a] = sw, sb


# ---------------------------------------------------------------------------------------------- registry ops
def row_norm_fwd_v2_rows(p: NormParams, x, w, b):
    y = empty(p.shape, x.dtype)
    mean, var = np.zeros(p.rows), np.zeros(p.rows)
    if y.size:
        norm_rows(
            x.reshape(p.rows, p.E),
            w.reshape(-1),
            b.reshape(-1),
            y.reshape(p.rows, p.E),
            mean,
            var,
            p.G,
            p.Cg,
            p.M,
            p.eps,
        )
    return y, mean, var


def row_norm_bwd_v2_rows(p: NormParams, gy, x, w):
    gx, gw, gb = empty(p.shape, x.dtype), empty((p.A,), x.dtype), empty((p.A,), x.dtype)
    if gx.size == 0:
        gw[:], gb[:] = 0, 0
        return gx, gw, gb
    g2, x2, mean, rstd = gy.reshape(p.rows, p.E), x.reshape(p.rows, p.E), np.empty(p.rows), np.empty(p.rows)
    norm_rows_bwd(g2, x2, w.reshape(-1), gx.reshape(p.rows, p.E), mean, rstd, p.G, p.Cg, p.M, p.eps)
    affine_grads(g2, x2, mean, rstd, gw, gb, p.G, p.Cg, p.M)
    return gx, gw, gb
