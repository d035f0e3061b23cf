"""conv2d bwd-weight v9_im2col: the weight gradient of a conv with few input channels (a network's stem: C = 3,
7x7) as conv2d_bwd_weight_v3_pointwise over an im2col copy of each image.

gw[k, (c, r, s)] = sum over n, p, q of gy[n, k, p, q] * x[n, c, p*sh + r*dh - pt, q*sw + s*dw - pl]. For one
image, X[(c, r, s), (p, q)] = that x value (zero outside x) is a (C*R*S, P*Q) matrix, and the sum over the image's
pixels is the weight gradient of a 1x1 conv from X's C*R*S channels to gy's K, which v3_pointwise computes as
tiles of lane-wise dot products along the contiguous pixels of both. The channel-vectorised weight gradients
(v4_blocked, v8_chunks) fill 3 of 16 lanes when C = 3; here the taps are the vectorised columns.

    conv2d_bwd_weight_v9_im2col  per image: `im2col` (iteration = one row (c, r, s) of X, every pixel of it written,
                                 so iterations write disjoint rows) then v3_pointwise on (gy[n], X); the images'
                                 gradients added in float64 in order n = 0..N-1. One image's X is staged at a time
                                 (C*R*S*P*Q floats: 7.4 MB for the ResNet stem), in a workspace.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...params import ConvParams
from .config import kernel, workspace
from .conv2d_direct import geometry
from .conv2d_pointwise import DOT_COLS, DOT_ROWS, conv2d_bwd_weight_v3_pointwise


@kernel
def im2col(x, n, X, P, Q, sh, sw, pt, pl, dh, dw, R, S):
    """X[(c*R + r)*S + s, p*Q + q] = x[n, c, p*sh - pt + r*dh, q*sw - pl + s*dw], zero outside x."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    for row in prange(C * R * S):
        c, r, s = row // (R * S), (row // S) % R, row % S
        for p in range(P):
            h = p * sh - pt + r * dh
            for q in range(Q):
                v = q * sw - pl + s * dw
                X[row, p * Q + q] = x[n, c, h, v] if 0 <= h < H and 0 <= v < W else 0.0


def supports(p: ConvParams) -> bool:
    return p.groups == 1 and p.K >= DOT_ROWS and p.C * p.R * p.S >= DOT_COLS


def conv2d_bwd_weight_v9_im2col(p: ConvParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    taps = p.C * p.R * p.S
    pointwise = ConvParams(
        N=1,
        C=taps,
        H=p.P,
        W=p.Q,
        K=p.K,
        R=1,
        S=1,
        stride=(1, 1),
        padding=((0, 0), (0, 0)),
        dilation=(1, 1),
        groups=1,
        padding_mode="zeros",
        dtype=p.dtype,
        has_bias=False,
    )
    total = np.zeros((p.K, taps))
    X = workspace("im2col", taps * p.P * p.Q, x.dtype).reshape(taps, p.P * p.Q)
    sh, sw, pt, pl, dh, dw = geometry(p)
    for n in range(p.N):
        im2col(x, n, X, p.P, p.Q, sh, sw, pt, pl, dh, dw, p.R, p.S)
        total += conv2d_bwd_weight_v3_pointwise(pointwise, gy[n : n + 1], X.reshape(1, taps, p.P, p.Q)).reshape(
            p.K, taps
        )
    return total.astype(x.dtype).reshape(p.w_shape)  # every element written
