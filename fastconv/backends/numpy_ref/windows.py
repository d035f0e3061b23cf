"""Sliding-window views and their adjoint, the building blocks of the NumPy reference.

`windows` views a padded (N, C, Hp, Wp) array as (N, C, P, Q, R, S): element [n, c, p, q, r, s] is the input
pixel at row p*stride_h + r*dilation_h, column q*stride_w + s*dilation_w. `fold` is its adjoint: it adds a value
per (n, c, p, q) and tap (r, s) back onto the padded grid, one vectorised slice-add per tap (R*S of them).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def pad2d(x: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]], value: float = 0.0) -> np.ndarray:
    """Pad the last two axes with a constant."""
    return np.pad(x, ((0, 0), (0, 0), *pads), constant_values=value)


def windows(
    xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], out: tuple[int, int]
) -> np.ndarray:
    """View (N, C, P, Q, R, S) of the padded input xp; no copy."""
    (R, S), (sh, sw), (dh, dw), (P, Q) = kernel, stride, dilation, out
    span = (dh * (R - 1) + 1, dw * (S - 1) + 1)
    view = sliding_window_view(xp, span, axis=(2, 3))  # (N, C, Hp-span+1, Wp-span+1, span_h, span_w)
    return view[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :P, :Q]


def fold(
    tap: Callable[[int, int], np.ndarray],
    padded_shape: tuple,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    out: tuple[int, int],
    dtype,
) -> np.ndarray:
    """Adjoint of `windows`: sum tap(r, s) (each (N, C, P, Q)) into a zero (N, C, Hp, Wp) array."""
    (R, S), (sh, sw), (dh, dw), (P, Q) = kernel, stride, dilation, out
    g = np.zeros(padded_shape, dtype)
    for r in range(R):
        for s in range(S):
            g[:, :, r * dh : r * dh + sh * (P - 1) + 1 : sh, s * dw : s * dw + sw * (Q - 1) + 1 : sw] += tap(r, s)
    return g


def crop2d(g: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]], H: int, W: int) -> np.ndarray:
    """The (H, W) interior of a padded array, contiguous."""
    (t, _), (lf, _) = pads
    return np.ascontiguousarray(g[:, :, t : t + H, lf : lf + W])
