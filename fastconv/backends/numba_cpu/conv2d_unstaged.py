"""conv2d v13_unstaged: a direct forward kernel with no packing, for calls too small to pay for staging.

Every other rung prepares something before it computes: phase planes of x (rows, winograd), packed weight blocks
(rows, blocked), transformed tiles (winograd), each a kernel launch, a workspace and Python around it. On a tiny
call (a few thousand multiply-adds: a loop over patches, an N=1 model's small layers) that costs more than the
arithmetic. This runs one kernel that allocates only its output and a zero-bordered copy of x. Their data
gradient is conv2d_bwd_data_v7_as_forward, which for a small call runs this kernel on the flipped problem.

    conv2d_fwd_v13_unstaged        one (n, k) plane of y per iteration, as "wide rows": with xp the zero-bordered
                                   x flattened at row pitch Wp, every output is acc[j] at j = p*sh*Wp + q*sw, and
                                   acc[j] = b[k] + sum over (c, r, s) of xp[c, r*dh*Wp + s*dw + j] * w[k, c, r, s]:
                                   one long contiguous loop over j per tap instead of P short row loops (the j
                                   between two outputs are computed and dropped: up to sh*sw*Wp/Q times the work,
                                   which a small call affords)

Iterations write disjoint planes and each output's terms are added in (c, r, s) order, fixed by the shape, so the
serial and the parallel compilation agree bit for bit; no re-association is allowed (as in v1_naive), so no sum is
regrouped differently by the two. `auto` takes it below `SMALL_WORK` multiply-adds (selection.py).
"""

from __future__ import annotations

import functools

import numpy as np
from numba import prange

from ...params import ConvParams
from .config import FASTMATH, filled, kernel
from .conv2d_direct import bias_or_zeros, geometry

_ORDERED = FASTMATH - {"reassoc"}


@functools.partial(kernel, fastmath=_ORDERED)
def unstaged_fwd(x, w, b, y, sh, sw, pt, pl, dh, dw):
    """One (n, k) plane of y per iteration, computed as wide rows over a zero-bordered copy of x (see the module
    docstring)."""
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    P, Q = y.shape[2], y.shape[3]
    Kg = K // (C // Cg)
    Hp, Wp = (P - 1) * sh + (R - 1) * dh + 1, (Q - 1) * sw + (S - 1) * dw + 1  # the extent the taps read
    xp = np.zeros((N, C, Hp * Wp), x.dtype)
    for nc in range(N * C):
        n, c = nc // C, nc % C
        for h in range(max(0, pt), min(Hp, H + pt)):
            for v in range(max(0, pl), min(Wp, W + pl)):
                xp[n, c, h * Wp + v] = x[n, c, h - pt, v - pl]
    L = (P - 1) * sh * Wp + (Q - 1) * sw + 1  # wide outputs j = p*sh*Wp + q*sw, and every j between
    for nk in prange(N * K):
        n, k = nk // K, nk % K
        c0 = (k // Kg) * Cg
        acc = np.empty(L, y.dtype)
        for j in range(L):
            acc[j] = b[k]
        for c in range(Cg):
            xc = xp[n, c0 + c]
            for r in range(R):
                for s in range(S):
                    base, wv = r * dh * Wp + s * dw, w[k, c, r, s]
                    xs = xc[base : base + L]  # a view: indices from range(L) need no wraparound, so this vectorises
                    for j in range(L):
                        acc[j] += xs[j] * wv
        for p in range(P):
            for q in range(Q):
                y[n, k, p, q] = acc[p * sh * Wp + q * sw]


# ---------------------------------------------------------------------------------------------- registry ops
def conv2d_fwd_v13_unstaged(p: ConvParams, x, w, b):
    return filled(p.y_shape, x.dtype, lambda y: unstaged_fwd(x, w, bias_or_zeros(p, b, x.dtype), y, *geometry(p)))
