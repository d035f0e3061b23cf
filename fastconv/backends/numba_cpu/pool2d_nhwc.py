"""Max pooling (fwd with indices, bwd) of a channels_last x, read in place: v3_nhwc.

x arrives as PyTorch's channels_last (an (N, H, W, C) C-contiguous buffer seen as (N, C, H, W)); every window tap
is then a contiguous run of channels, so a vector of LANES channels takes the lane-wise running maximum over the
window's taps, with no padded copy (taps outside the input are skipped) and no transpose. y, the indices and gx
are returned in the same order, as torch does.

    max_pool2d_fwd_v3_nhwc  iteration = (image, output row), so the window rows it reads are contiguous; per output
                            pixel and vector of channels the lane-wise maximum over the window's taps (tile_max,
                            NaN propagating), stored masked past C. With indices, a lane-wise argmax in row-major
                            tap order instead (tile_argmax: NaN counts as the maximum, ties keep the earlier
                            tap) and the winners' h*W + w.
    max_pool2d_bwd_v3_nhwc  the forward with indices (x's first maxima, as v2_separable recomputes them) into a
                            workspace, then per image gx zeroed and each grad_out element added at its window's
                            maximum in pixel order: a fixed order of the sums whatever the thread count.
Speed against v2_separable on a copy and torch channels_last: bench_results/channels_last.md.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...arrays import empty
from ...params import PoolParams
from .config import kernel, workspace
from .simd import tile_bcast, tile_load, tile_store, tile_zeros
from .simd_lanes import tile_argmax, tile_max, vec_lanes


@kernel
def max_pool_nhwc(x, y, idx, with_idx, shape, geometry, keys, offsets):
    """y = each window's first maximum and, with_idx, idx = its h*W + w (-1 for a window holding no input). Flat
    NHWC arrays; shape = (N, H, W, C, P, Q), geometry = (kh, kw, sh, sw, ph, pw, dh, dw); keys[t] = t as x's dtype
    (keys[kh*kw]: no tap yet), then -inf; offsets[t] = tap t's r*dh*W + s*dw. One (image, output row) per
    iteration: its windows' input rows are read whole, every tap a contiguous run of channels (disjoint outputs)."""
    N, H, W, C, P, Q = shape[0], shape[1], shape[2], shape[3], shape[4], shape[5]
    kh, kw, sh, sw = geometry[0], geometry[1], geometry[2], geometry[3]
    ph, pw, dh, dw = geometry[4], geometry[5], geometry[6], geometry[7]
    L = vec_lanes(x)
    for it in prange(N * P):
        n, p = it // P, it % P
        like = tile_zeros(x, 1, 1)
        won = np.empty(L, x.dtype)
        for q in range(Q):
            for c0 in range(0, C, L):
                nc = min(L, C - c0)
                best = tile_bcast(keys, kh * kw + 1, 0, 1, 1)  # -inf with key kh*kw: any input element replaces it
                key = tile_bcast(keys, kh * kw, 0, 1, 1)
                for r in range(kh):
                    h = p * sh - ph + r * dh
                    if h < 0 or h >= H:
                        continue
                    for s in range(kw):
                        w = q * sw - pw + s * dw
                        if w < 0 or w >= W:
                            continue
                        cand = tile_load(like, x, ((n * H + h) * W + w) * C + c0, 0, L, 1, 1, L, nc)
                        if with_idx:
                            tap = tile_bcast(keys, r * kw + s, 0, 1, 1)
                            best, key, _ = tile_argmax(best, key, key, cand, tap, tap)
                        else:
                            best = tile_max(best, cand)
                out = ((n * P + p) * Q + q) * C + c0
                tile_store(best, y, out, 0, L, 1, 1, L, nc)
                if with_idx:
                    tile_store(key, won, 0, 0, L, 1, 1, L, nc)
                    origin = (p * sh - ph) * W + q * sw - pw
                    for j in range(nc):
                        t = int(won[j])
                        idx[out + j] = -1 if t == kh * kw else origin + offsets[t]


@kernel
def scatter_nhwc(gy, idx, gx, HW, PQ, C):
    """gx = 0, then gy[n, pq, c] added at gx[n, idx[n, pq, c], c] for idx >= 0 (flat NHWC arrays). One image per
    iteration (windows overlap, so its output pixels go in order: a fixed order of the sums)."""
    for n in prange(gx.size // (HW * C)):
        for i in range(n * HW * C, (n + 1) * HW * C):
            gx[i] = 0
        for pq in range(n * PQ, (n + 1) * PQ):
            for c in range(C):
                at = idx[pq * C + c]
                if at >= 0:
                    gx[(n * HW + at) * C + c] += gy[pq * C + c]


def _nhwc(a: np.ndarray) -> np.ndarray:
    """The flat buffer under a channels_last array."""
    return a.transpose(0, 2, 3, 1).reshape(-1)


def _args(p: PoolParams, dtype) -> tuple:
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = p.kernel, p.stride, p.padding, p.dilation
    shape = np.array([p.N, p.H, p.W, p.C, p.P, p.Q], np.int64)
    keys = np.append(np.arange(kh * kw + 1.0), -np.inf).astype(dtype)
    offsets = (np.arange(kh)[:, None] * dh * p.W + np.arange(kw) * dw).reshape(-1).astype(np.int64)
    return shape, np.array([kh, kw, sh, sw, ph, pw, dh, dw], np.int64), keys, offsets


def _empty_nhwc(p: PoolParams, hw: tuple, dtype) -> np.ndarray:
    return empty((p.N, *hw, p.C), dtype).transpose(0, 3, 1, 2)


def supports(p: PoolParams) -> bool:
    return p.channels_last


def max_pool2d_fwd_v3_nhwc(p: PoolParams, x: np.ndarray, need_indices: bool):
    y = _empty_nhwc(p, (p.P, p.Q), x.dtype)
    idx = _empty_nhwc(p, (p.P, p.Q), np.int64) if need_indices else np.empty((0, 0, 0, 0), np.int64)
    if y.size:
        max_pool_nhwc(_nhwc(x), _nhwc(y), _nhwc(idx), need_indices, *_args(p, x.dtype))
    return y, (idx if need_indices else None)


def max_pool2d_bwd_v3_nhwc(p: PoolParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    gx = _empty_nhwc(p, (p.H, p.W), x.dtype)
    if gx.size:
        idx = workspace("max_pool_indices", p.N * p.P * p.Q * p.C, np.int64)
        y = workspace("max_pool_values", idx.size, x.dtype)
        max_pool_nhwc(_nhwc(x), y, idx, True, *_args(p, x.dtype))
        scatter_nhwc(_nhwc(gy), idx, _nhwc(gx), p.H * p.W, p.P * p.Q, p.C)
    return gx
