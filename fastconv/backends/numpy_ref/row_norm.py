"""Reference row norm (group, layer and instance norm; fastconv.params.norm): x seen as (R, E), each row by its
own mean and biased variance, affine index (r % G) * Cg + e // M. With xhat the normalised row and gh = gy * w:
    gx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)),   gw[a] = sum gy * xhat,   gb[a] = sum gy
the sums over every (row, element) with affine index a.
"""

from __future__ import annotations

import numpy as np

from ...params import NormParams


def _affine_index(p: NormParams) -> np.ndarray:
    """(R, E) affine index of each element."""
    r, e = np.arange(p.rows)[:, None], np.arange(p.E)[None, :]
    return (r % p.G) * p.Cg + e // p.M


def row_norm(p: NormParams, x, w, b):
    x2 = x.reshape(p.rows, p.E)
    if x2.size == 0:
        return np.empty(p.shape, x.dtype), np.zeros(p.rows), np.zeros(p.rows)
    mean, var = x2.mean(axis=1), x2.var(axis=1)
    a = _affine_index(p)
    y = (x2 - mean[:, None]) / np.sqrt(var[:, None] + x.dtype.type(p.eps)) * w.reshape(-1)[a] + b.reshape(-1)[a]
    return y.reshape(p.shape), mean, var


def row_norm_bwd(p: NormParams, gy, x, w):
    x2, g2 = x.reshape(p.rows, p.E), gy.reshape(p.rows, p.E)
    if x2.size == 0:
        return np.empty(p.shape, x.dtype), np.zeros(p.A, x.dtype), np.zeros(p.A, x.dtype)
    mean, var = x2.mean(axis=1, keepdims=True), x2.var(axis=1, keepdims=True)
    rstd = 1 / np.sqrt(var + x.dtype.type(p.eps))
    xhat = (x2 - mean) * rstd
    a = _affine_index(p)
    gh = g2 * w.reshape(-1)[a]
    gx = rstd * (gh - gh.mean(axis=1, keepdims=True) - xhat * (gh * xhat).mean(axis=1, keepdims=True))
    gw = np.bincount(a.reshape(-1), (g2 * xhat).reshape(-1), minlength=p.A).astype(x.dtype)
    gb = np.bincount(a.reshape(-1), g2.reshape(-1), minlength=p.A).astype(x.dtype)
    return gx.reshape(p.shape), gw, gb
