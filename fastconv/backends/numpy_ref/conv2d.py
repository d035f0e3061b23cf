"""Reference conv2d forward and backward: sliding-window views contracted with einsum.

x (N,C,H,W), w (K,C/G,R,S), y (N,K,P,Q); with G groups the channels split as C = G*Cg and K = G*Kg:
    y[n, g*Kg+k, p, q] = sum_{c<Cg, r, s} xpad[n, g*Cg+c, p*sh + r*dh, q*sw + s*dw] * w[g*Kg+k, c, r, s]
Computed in the input's dtype; tests run it in float64 as the oracle for every other backend.
"""

from __future__ import annotations

import numpy as np

from ...params import ConvParams
from .windows import crop2d, fold, pad2d, windows


def _x_windows(p: ConvParams, x: np.ndarray) -> np.ndarray:
    """(N, G, Cg, P, Q, R, S) view of the zero-padded input."""
    v = windows(pad2d(x, p.padding), (p.R, p.S), p.stride, p.dilation, (p.P, p.Q))
    return v.reshape(p.N, p.groups, p.Cg, p.P, p.Q, p.R, p.S)


def conv2d(p: ConvParams, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    wg = w.reshape(p.groups, p.Kg, p.Cg, p.R, p.S)
    y = np.einsum("ngcpqrs,gkcrs->ngkpq", _x_windows(p, x), wg, optimize=True).reshape(p.y_shape)
    if b is not None:
        y += b[:, None, None]
    return np.ascontiguousarray(y)


def conv2d_bwd_data(p: ConvParams, gy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """gx = adjoint of the window gather applied to sum_k gy * w."""
    gyg = gy.reshape(p.N, p.groups, p.Kg, p.P, p.Q)
    wg = w.reshape(p.groups, p.Kg, p.Cg, p.R, p.S)
    cols = np.einsum("ngkpq,gkcrs->ngcrspq", gyg, wg, optimize=True).reshape(p.N, p.C, p.R, p.S, p.P, p.Q)
    (t, b), (lf, rt) = p.padding
    padded = (p.N, p.C, p.H + t + b, p.W + lf + rt)
    g = fold(lambda r, s: cols[:, :, r, s], padded, (p.R, p.S), p.stride, p.dilation, (p.P, p.Q), gy.dtype)
    return crop2d(g, p.padding, p.H, p.W)


def conv2d_bwd_weight(p: ConvParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    gyg = gy.reshape(p.N, p.groups, p.Kg, p.P, p.Q)
    gw = np.einsum("ngkpq,ngcpqrs->gkcrs", gyg, _x_windows(p, x), optimize=True)
    return np.ascontiguousarray(gw.reshape(p.w_shape))


def conv2d_bwd_bias(p: ConvParams, gy: np.ndarray) -> np.ndarray:
    return gy.sum(axis=(0, 2, 3))
