"""Batch norm (train/eval, fwd + bwd) of a channels_last x, read in place: v3_nhwc.

x arrives as PyTorch's channels_last (an (N, H, W, C) C-contiguous buffer seen as (N, C, H, W)); the kernels see
that buffer as R = N*H*W rows of C channels, the channel index running along each row, so every loop over a row
is a contiguous vector loop over channels. y and gx are returned in the same order, as torch does.

    batch_norm_fwd_v3_nhwc  training: one pass of per-channel sums over blocks of ROWS rows (row_sums), merged,
                            then the elementwise pass (affine_rows); eval: the elementwise pass only.
    batch_norm_bwd_v3_nhwc  one pass of per-channel sums of x and gy, merged, then gx = a*gy + b*(x - mean) + d.

Unlike v2_planes (one channel per iteration, its planes still in cache for the second pass), x is read twice from
memory in training mode: its channels are interleaved, so no iteration holds all of one channel. The statistics do
not depend on the thread count: each block's sums (of x - K, (x - K)^2 and, for the backward, gy and gy*(x - K),
in float64, with K the first row of x, or the running mean when not training) fill that block's own row of a
partial buffer, added up over the blocks in block order afterwards. Speed against v2_planes on a copy and torch
channels_last: bench_results/channels_last.md.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...arrays import empty
from ...params import BatchNormParams
from .config import ceil_div, kernel
from .simd import tile_zeros
from .simd_lanes import tile_mul_add, tile_stream, tile_sub, vec_lanes, vec_load

ROWS = 128  # rows (pixels) per block of the sums and of the elementwise pass


@kernel
def row_sums(x2, g2, shift, with_grad, part):
    """part[b] = per-channel (sum(x - shift), sum((x - shift)^2), sum(g), sum(g * (x - shift))) over block b's rows
    of x2 (R, C); the last two only with_grad. One block per iteration, into its own row of part; within a block
    the sums run in x's dtype (as v2_planes' SIMD blocks), part is float64."""
    R, C = x2.shape
    for blk in prange(ceil_div(R, ROWS)):
        k = shift.astype(x2.dtype)
        s0, s1, s2, s3 = np.zeros(C, x2.dtype), np.zeros(C, x2.dtype), np.zeros(C, x2.dtype), np.zeros(C, x2.dtype)
        for r in range(blk * ROWS, min(R, blk * ROWS + ROWS)):
            xr, gr = x2[r], g2[r]
            if with_grad:
                for c in range(C):
                    d = xr[c] - k[c]
                    s0[c] += d
                    s1[c] += d * d
                    s2[c] += gr[c]
                    s3[c] += gr[c] * d
            else:
                for c in range(C):
                    d = xr[c] - k[c]
                    s0[c] += d
                    s1[c] += d * d
        for c in range(C):
            part[blk, 0, c], part[blk, 1, c], part[blk, 2, c], part[blk, 3, c] = s0[c], s1[c], s2[c], s3[c]


@kernel
def affine_rows(x, g, out, C, mu, scale, shift, a, with_x, with_g):
    """out = ((x - mu) * scale + shift if with_x else 0) + (a * g if with_g else 0) over the flat (R*C) arrays of
    R rows of C channels, with per-channel coefficient vectors in x's dtype. One block of ROWS rows per iteration
    (disjoint outputs): whole vectors of channels with vector coefficients, streamed to memory where aligned (as
    batch norm's NCHW pass), the channels past the last whole vector one by one."""
    R = x.size // C
    L = vec_lanes(x)
    for blk in prange(ceil_div(R, ROWS)):
        for r in range(blk * ROWS, min(R, blk * ROWS + ROWS)):
            c = 0
            while c + L <= C:
                o = r * C + c
                acc = tile_zeros(x, 1, 1)
                if with_x:
                    d = tile_sub(vec_load(x, o, 1), vec_load(mu, c, 1))
                    acc = tile_mul_add(vec_load(shift, c, 1), d, vec_load(scale, c, 1))
                if with_g:
                    acc = tile_mul_add(acc, vec_load(g, o, 1), vec_load(a, c, 1))
                tile_stream(acc, out, o, L)
                c += L
            for j in range(c, C):
                o = r * C + j
                v = (x[o] - mu[j]) * scale[j] + shift[j] if with_x else 0
                out[o] = v + a[j] * g[o] if with_g else v


def _rows(p: BatchNormParams, a: np.ndarray) -> np.ndarray:
    """The (N*H*W, C) row view of the buffer under a channels_last array."""
    return a.transpose(0, 2, 3, 1).reshape(-1, p.C)


def _flat(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 2, 3, 1).reshape(-1)


def _stats(p: BatchNormParams, x2, g2, with_grad: bool, rm, rv) -> tuple:
    """(mean, biased variance, sum(g), sum(g * (x - mean))) per channel in float64: the batch's (training), else
    the running mean and variance with the sums around that mean."""
    shift = x2[0].astype(np.float64) if p.training else rm.astype(np.float64)
    part = np.zeros((ceil_div(x2.shape[0], ROWS), 4, p.C))
    row_sums(x2, g2, shift, with_grad, part)
    s0, s1, sg, sgk = part.sum(axis=0)
    if not p.training:
        return shift, rv.astype(np.float64), sg, sgk
    count = x2.shape[0]
    mean = shift + s0 / count
    var = (s1 - s0 * s0 / count) / count
    return mean, np.maximum(var, 0.0), sg, sgk - (mean - shift) * sg


def _cast(dtype, *arrays) -> list[np.ndarray]:
    return [np.ascontiguousarray(a, dtype) for a in arrays]


def supports(p: BatchNormParams) -> bool:
    return p.channels_last


def batch_norm_fwd_v3_nhwc(p: BatchNormParams, x, w, b, rm, rv):
    y = empty((p.N,) + p.shape[2:] + (p.C,), x.dtype).transpose(0, 3, 1, 2)
    if y.size == 0:
        return y, None, None
    x2 = _rows(p, x)
    if p.training:
        mean, var, _, _ = _stats(p, x2, x2, False, rm, rv)
    else:
        mean, var = rm.astype(np.float64), rv.astype(np.float64)
    mu, scale, shift = _cast(x.dtype, mean, w / np.sqrt(var + p.eps), b)
    affine_rows(_flat(x), _flat(x), _flat(y), p.C, mu, scale, shift, scale, True, False)
    if not p.training:
        return y, None, None
    return y, mean.astype(x.dtype), var.astype(x.dtype)


def batch_norm_bwd_v3_nhwc(p: BatchNormParams, gy, x, w, rm, rv):
    gx = empty((p.N,) + p.shape[2:] + (p.C,), x.dtype).transpose(0, 3, 1, 2)
    if gx.size == 0:
        return gx, np.zeros(p.C, x.dtype), np.zeros(p.C, x.dtype)
    x2, g2 = _rows(p, x), _rows(p, gy)
    mean, var, sg, sgx = _stats(p, x2, g2, True, rm, rv)
    invstd = 1 / np.sqrt(var + p.eps)
    a, count = w * invstd, x2.shape[0]
    if p.training:
        mu, scale, shift, ga = _cast(x.dtype, mean, -a * invstd * invstd * sgx / count, -a * sg / count, a)
        affine_rows(_flat(x), _flat(gy), _flat(gx), p.C, mu, scale, shift, ga, True, True)
    else:
        (ga,) = _cast(x.dtype, a)
        affine_rows(_flat(x), _flat(gy), _flat(gx), p.C, ga, ga, ga, ga, False, True)
    return gx, (sgx * invstd).astype(x.dtype), sg.astype(x.dtype)
