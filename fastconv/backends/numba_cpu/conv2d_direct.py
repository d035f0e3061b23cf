"""conv2d v1_naive: the naive direct kernels, forward and both gradients: the readable rung of the ladder.

x (N,C,H,W), w (K,Cg,R,S), y (N,K,P,Q), G groups (C = G*Cg, K = G*Kg), output channel k in group g = k // Kg:
    y[n,k,p,q] = b[k] + sum_{c<Cg,r,s} x[n, g*Cg+c, p*sh - pt + r*dh, q*sw - pl + s*dw] * w[k,c,r,s]
(taps outside the input read zero). P = floor((H + pt + pb - dh*(R-1) - 1) / sh) + 1, likewise Q.

    conv2d_fwd_v1_naive         one (n, k) output plane per iteration, scalar loops, bounds checked per tap
    conv2d_bwd_data_v1_naive    one (n, c) plane of gx per iteration: a gather over the outputs each input reaches
    conv2d_bwd_weight_v1_naive  four (k, c) filter slices per iteration, each summing over (n, p, q) in a fixed order
    conv2d_bwd_bias_v2_planes   per-(n, k) plane sums in SIMD registers (channel_sums), then a fixed-order sum over n;
                                every conv algorithm shares it (v1 is the CUDA reduction)
Their speed is in bench_results/numba_cpu.md (about 1 GFLOP/s on the dense 3x3 layer).
"""

from __future__ import annotations

import functools

import numpy as np
from numba import prange

from ...params import ConvParams
from .channel_sums import channel_sums
from .config import FASTMATH, filled, kernel


# In the order written: without re-association LLVM may not regroup the (c, r, s) sum (it did so differently in the
# parallel and the serial compilation), so both give the same bits. This rung is the readable one, not the fast one.
@functools.partial(kernel, fastmath=FASTMATH - {"reassoc"})
def direct_fwd(x, w, b, y, sh, sw, pt, pl, dh, dw):
    """One (n, k) plane of y per iteration, each output the full sum over (c, r, s): iterations write
    disjoint planes. Taps outside the input are skipped (zero padding)."""
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    P, Q = y.shape[2], y.shape[3]
    Kg = K // (C // Cg)
    for nk in prange(N * K):
        n, k = nk // K, nk % K
        c0 = (k // Kg) * Cg
        for p in range(P):
            for q in range(Q):
                acc = b[k]
                for c in range(Cg):
                    for r in range(R):
                        h = p * sh - pt + r * dh
                        if 0 <= h < H:
                            for s in range(S):
                                v = q * sw - pl + s * dw
                                if 0 <= v < W:
                                    acc += x[n, c0 + c, h, v] * w[k, c, r, s]
                y[n, k, p, q] = acc


@kernel
def direct_bwd_data(gy, w, gx, sh, sw, pt, pl, dh, dw):
    """gx[n,c,h,v] = sum over k in c's group and taps (r, s) with h = p*sh - pt + r*dh for an integer p in
    [0, P) (likewise v, q): a gather, one (n, c) plane of gx per iteration, so iterations write disjoint planes."""
    N, K, P, Q = gy.shape
    C, H, W = gx.shape[1], gx.shape[2], gx.shape[3]
    Cg, R, S = w.shape[1], w.shape[2], w.shape[3]
    Kg = K // (C // Cg)
    for nc in prange(N * C):
        n, cc = nc // C, nc % C
        g, c = cc // Cg, cc % Cg
        for h in range(H):
            for v in range(W):
                acc = 0.0
                for r in range(R):
                    ph = h + pt - r * dh
                    if ph >= 0 and ph % sh == 0 and ph // sh < P:
                        for s in range(S):
                            pv = v + pl - s * dw
                            if pv >= 0 and pv % sw == 0 and pv // sw < Q:
                                for k in range(g * Kg, (g + 1) * Kg):
                                    acc += gy[n, k, ph // sh, pv // sw] * w[k, c, r, s]
                gx[n, cc, h, v] = acc


@functools.partial(kernel, fastmath=FASTMATH - {"reassoc"})
def direct_bwd_weight(gy, x, gw, sh, sw, pt, pl, dh, dw):
    """gw[k,c,r,s] = sum_{n,p,q} gy[n,k,p,q] * x[n, g*Cg+c, p*sh - pt + r*dh, q*sw - pl + s*dw], each sum over
    (n, p, q) in that fixed order. One iteration owns four consecutive (k, c) filter slices of gw (j = k*Cg + c;
    the last iteration repeats its last slice in the lanes past the end) and runs their four sums side by side:
    a single sum is a chain of dependent adds, four are independent (2x faster on small filters, 2.2x on
    depthwise ones, the same bits as one at a time)."""
    N, K, P, Q = gy.shape
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    Cg, R, S = gw.shape[1], gw.shape[2], gw.shape[3]
    Kg = K // (C // Cg)
    last = K * Cg - 1
    for it in prange((K * Cg + 3) // 4):
        j0 = 4 * it
        j1, j2, j3 = min(j0 + 1, last), min(j0 + 2, last), min(j0 + 3, last)
        k0, k1, k2, k3 = j0 // Cg, j1 // Cg, j2 // Cg, j3 // Cg
        c0, c1, c2, c3 = j0 % Cg, j1 % Cg, j2 % Cg, j3 % Cg
        x0, x1, x2, x3 = (k0 // Kg) * Cg + c0, (k1 // Kg) * Cg + c1, (k2 // Kg) * Cg + c2, (k3 // Kg) * Cg + c3
        for r in range(R):
            for s in range(S):
                a0 = a1 = a2 = a3 = 0.0
                for n in range(N):
                    for p in range(P):
                        h = p * sh - pt + r * dh
                        if 0 <= h < H:
                            for q in range(Q):
                                v = q * sw - pl + s * dw
                                if 0 <= v < W:
                                    a0 += gy[n, k0, p, q] * x[n, x0, h, v]
                                    a1 += gy[n, k1, p, q] * x[n, x1, h, v]
                                    a2 += gy[n, k2, p, q] * x[n, x2, h, v]
                                    a3 += gy[n, k3, p, q] * x[n, x3, h, v]
                gw[k0, c0, r, s] = a0
                gw[k1, c1, r, s] = a1
                gw[k2, c2, r, s] = a2
                gw[k3, c3, r, s] = a3


# ---------------------------------------------------------------------------------------------- registry ops
def geometry(p: ConvParams) -> tuple[int, ...]:
    """(sh, sw, pad_top, pad_left, dh, dw): the ints every conv kernel takes."""
    (sh, sw), ((pt, _), (pl, _)), (dh, dw) = p.stride, p.padding, p.dilation
    return sh, sw, pt, pl, dh, dw


def bias_or_zeros(p: ConvParams, b: np.ndarray | None, dtype) -> np.ndarray:
    return np.zeros(p.K, dtype) if b is None else b


def conv2d_fwd_v1_naive(p: ConvParams, x, w, b):
    return filled(p.y_shape, x.dtype, lambda y: direct_fwd(x, w, bias_or_zeros(p, b, x.dtype), y, *geometry(p)))


def conv2d_bwd_data_v1_naive(p: ConvParams, gy, w):
    return filled(p.x_shape, gy.dtype, lambda gx: direct_bwd_data(gy, w, gx, *geometry(p)))


def conv2d_bwd_weight_v1_naive(p: ConvParams, gy, x):
    return filled(p.w_shape, gy.dtype, lambda gw: direct_bwd_weight(gy, x, gw, *geometry(p)))


def conv2d_bwd_bias_v2_planes(p: ConvParams, gy):
    """Per-(n, k) plane sums, then a fixed-order sum over n."""
    sums = np.zeros(p.K)
    if gy.size:
        channel_sums(gy.reshape(p.N, p.K, p.P * p.Q), sums)
    return sums.astype(gy.dtype)  # every element written
