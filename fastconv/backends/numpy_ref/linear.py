"""Reference linear layer: y (N, K) = x (N, C) @ w (K, C)^T + b, and its gradients, with NumPy's matmul.

    gx (N, C) = gy (N, K) @ w;   gw (K, C) = gy^T @ x;   gb (K) = sum_n gy[n]
Computed in the input's dtype; tests run it in float64 as the oracle for every other backend.
"""

from __future__ import annotations

import numpy as np

from ...params import LinearParams


def linear(p: LinearParams, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    y = x @ w.T
    if b is not None:
        y += b
    return y


def linear_bwd_data(p: LinearParams, gy: np.ndarray, w: np.ndarray) -> np.ndarray:
    return gy @ w


def linear_bwd_weight(p: LinearParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    return gy.T @ x


def linear_bwd_bias(p: LinearParams, gy: np.ndarray) -> np.ndarray:
    return gy.sum(axis=0)
