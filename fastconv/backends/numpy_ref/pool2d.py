"""Reference pooling: max (with indices), average (PyTorch's divisor rules), adaptive and global average.

Windows as in conv (see windows.py). Max pooling pads with -inf and takes the first maximum of each window in
row-major tap order (NaN counts as the maximum, so it propagates); its index is the flat h*W + w position in the
input plane, -1 for a window that covers no input element (possible only with dilation). Average pooling pads with
zeros and divides by PyTorch's window size: clipped to the padded input, and further to the input when
count_include_pad is False. Adaptive pooling averages over [floor(i*H/P), ceil((i+1)*H/P)) per dimension, which is
separable: a mean over each row window, then over each column window (a NaN stays inside its windows).
"""

from __future__ import annotations

import numpy as np

from ...params import AdaptivePoolParams, PoolParams, adaptive_windows
from .windows import crop2d, fold, pad2d, windows


def _pads(p: PoolParams) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padding that makes every window fit: the given pad before, and after as much as ceil_mode needs."""
    pads = []
    for n, k, s, pad, d, out in zip((p.H, p.W), p.kernel, p.stride, p.padding, p.dilation, (p.P, p.Q)):
        need = (out - 1) * s + d * (k - 1) + 1
        pads.append((pad, max(need - n - pad, 0)))
    return tuple(pads)


def _geometry(p: PoolParams):
    return p.kernel, p.stride, p.dilation, (p.P, p.Q)


def _argmax_taps(p: PoolParams, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max value and its tap index r*kw + s for every window. The -inf padding never wins over an input element:
    a window whose inputs are all -inf takes its first input element (as PyTorch)."""
    k = p.kernel[0] * p.kernel[1]
    flat = windows(pad2d(x, _pads(p), -np.inf), *_geometry(p)).reshape(p.N, p.C, p.P, p.Q, k)
    taps = flat.argmax(axis=-1)
    best = np.take_along_axis(flat, taps[..., None], axis=-1)[..., 0]
    inside = windows(pad2d(np.ones((1, 1, p.H, p.W)), _pads(p)), *_geometry(p)).reshape(1, 1, p.P, p.Q, k)
    return best, np.where(best == -np.inf, inside.argmax(axis=-1), taps)


def _positions(n: int, k: int, s: int, pad: int, d: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Input position of tap t of window i along one dim, (out, k); and whether window i covers any input."""
    pos = np.arange(out)[:, None] * s - pad + np.arange(k)[None, :] * d
    return pos, ((pos >= 0) & (pos < n)).any(axis=1)


def max_pool2d(p: PoolParams, x: np.ndarray, need_indices: bool):
    y, taps = _argmax_taps(p, x)
    if not need_indices:
        return np.ascontiguousarray(y), None
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = p.kernel, p.stride, p.padding, p.dilation
    rows, rows_ok = _positions(p.H, kh, sh, ph, dh, p.P)
    cols, cols_ok = _positions(p.W, kw, sw, pw, dw, p.Q)
    h = rows[np.arange(p.P)[:, None], taps // kw]  # (N, C, P, Q)
    w = cols[np.arange(p.Q), taps % kw]
    idx = np.where(rows_ok[:, None] & cols_ok[None, :], h * p.W + w, -1).astype(np.int64)
    return np.ascontiguousarray(y), idx


def max_pool2d_bwd(p: PoolParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    _, taps = _argmax_taps(p, x)
    kw = p.kernel[1]
    pads = _pads(p)
    padded = (p.N, p.C, p.H + sum(pads[0]), p.W + sum(pads[1]))
    g = fold(lambda r, s: np.where(taps == r * kw + s, gy, 0), padded, *_geometry(p), gy.dtype)
    return crop2d(g, pads, p.H, p.W)


def _divisor(p: PoolParams) -> np.ndarray:
    """(P, Q) window sizes that PyTorch's avg_pool2d divides by."""
    sizes = []
    for n, k, s, pad, out in zip((p.H, p.W), p.kernel, p.stride, p.padding, (p.P, p.Q)):
        start = np.arange(out) * s - pad
        end = np.minimum(start + k, n + pad)
        if p.count_include_pad:
            sizes.append(end - start)
        else:
            sizes.append(np.minimum(end, n) - np.maximum(start, 0))
    return np.outer(*sizes)


def avg_pool2d(p: PoolParams, x: np.ndarray) -> np.ndarray:
    win = windows(pad2d(x, _pads(p)), *_geometry(p))
    return np.ascontiguousarray(win.sum(axis=(-2, -1)) / _divisor(p).astype(x.dtype))


def avg_pool2d_bwd(p: PoolParams, gy: np.ndarray) -> np.ndarray:
    share = gy / _divisor(p).astype(gy.dtype)
    pads = _pads(p)
    padded = (p.N, p.C, p.H + sum(pads[0]), p.W + sum(pads[1]))
    g = fold(lambda r, s: share, padded, *_geometry(p), gy.dtype)
    return crop2d(g, pads, p.H, p.W)


def adaptive_avg_pool2d(p: AdaptivePoolParams, x: np.ndarray) -> np.ndarray:
    """Mean over each row window, then over each column window (P + Q vectorised steps)."""
    rows = np.stack([x[:, :, a:b].mean(axis=2) for a, b in zip(*adaptive_windows(p.H, p.P))], axis=2)
    return np.stack([rows[..., a:b].mean(axis=3) for a, b in zip(*adaptive_windows(p.W, p.Q))], axis=3)


def adaptive_avg_pool2d_bwd(p: AdaptivePoolParams, gy: np.ndarray) -> np.ndarray:
    """Each output's gradient spread evenly over its window: columns first, then rows."""
    rows = np.zeros((p.N, p.C, p.P, p.W), gy.dtype)
    for q, (a, b) in enumerate(zip(*adaptive_windows(p.W, p.Q))):
        rows[..., a:b] += gy[..., q : q + 1] / gy.dtype.type(b - a)
    gx = np.zeros(p.x_shape, gy.dtype)
    for i, (a, b) in enumerate(zip(*adaptive_windows(p.H, p.P))):
        gx[:, :, a:b] += rows[:, :, i : i + 1] / gy.dtype.type(b - a)
    return gx


def global_avg_pool2d(p: AdaptivePoolParams, x: np.ndarray) -> np.ndarray:
    return x.mean(axis=(2, 3), keepdims=True)


def global_avg_pool2d_bwd(p: AdaptivePoolParams, gy: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(gy / gy.dtype.type(p.H * p.W), p.x_shape))
