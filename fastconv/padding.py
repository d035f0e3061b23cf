"""Explicit 'reflect' / 'replicate' / 'circular' padding and its adjoint, for any array module (NumPy or CuPy).

Each padding mode is an index map: padded position i along a dim reads input position src[i]. The forward is a
gather (`take`) along H and W; the backward sums the padded gradient back onto the input with the transposed
one-hot matrix of that map, which is exact and needs no scatter-add.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .arrays import array_kind, array_module
from .params import ConvParams


def source_index(n: int, begin: int, end: int, mode: str) -> np.ndarray:
    """src[i] for each of the n + begin + end padded positions (PyTorch's reflect/replicate/circular)."""
    i = np.arange(-begin, n + end)
    if mode == "reflect":  # mirror about the edge elements, which are not repeated
        period = 2 * (n - 1) if n > 1 else 1
        j = np.abs(i) % period
        return np.where(j < n, j, period - j)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    if mode == "circular":
        return i % n
    raise ValueError(f"source_index: unknown padding mode {mode!r}")


def _maps(p: ConvParams) -> tuple[np.ndarray, np.ndarray]:
    (t, b), (lf, rt) = p.padding
    return source_index(p.H, t, b, p.padding_mode), source_index(p.W, lf, rt, p.padding_mode)


def pad(x: Any, p: ConvParams) -> Any:
    """x (N,C,H,W) -> x padded per p.padding and p.padding_mode (not 'zeros')."""
    xp = array_module(array_kind(x))
    rows, cols = _maps(p)
    return xp.ascontiguousarray(x.take(xp.asarray(rows), axis=2).take(xp.asarray(cols), axis=3))


def pad_backward(g_padded: Any, p: ConvParams) -> Any:
    """The adjoint of `pad`: g (N,C,Hp,Wp) -> (N,C,H,W), each input element collecting all its copies."""
    xp = array_module(array_kind(g_padded))
    rows, cols = _maps(p)
    onehot_h = xp.asarray(rows[:, None] == np.arange(p.H)[None, :], dtype=g_padded.dtype)  # (Hp, H)
    onehot_w = xp.asarray(cols[:, None] == np.arange(p.W)[None, :], dtype=g_padded.dtype)  # (Wp, W)
    return xp.ascontiguousarray(xp.matmul(xp.matmul(onehot_h.T, g_padded), onehot_w))
