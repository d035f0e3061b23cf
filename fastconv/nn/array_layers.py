"""Layers written in array-module code (NumPy or CuPy, whichever the input is): Flatten, Dropout,
LocalResponseNorm. They need no fastconv kernel; their elementwise math is the array library's."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..arrays import array_kind, array_module, check_array
from ..params import _int_tuple
from . import init
from .module import Layer, Module
from .ops import flatten


class Flatten(Module):
    """Merges dimensions start_dim..end_dim, as torch.nn.Flatten."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Any) -> Any:
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Layer):
    """Training mode: zero each element with probability p and scale the rest by 1/(1-p); eval mode: identity.
    Masks are drawn on the host from `generator` (default: fastconv.nn.init's seeded generator), so a seeded run
    drops the same elements on every backend. `inplace` is accepted for torchvision's constructors."""

    def __init__(self, p: float = 0.5, inplace: bool = False, *, generator: np.random.Generator | None = None):
        super().__init__()
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: 'p' must be a probability in [0, 1], got {p!r}")
        self.p, self.inplace, self.generator = float(p), inplace, generator

    def forward_op(self, x: Any) -> tuple[Any, Any]:
        check_array("Dropout", "x", x, None)
        if not self.training or self.p == 0:
            return x, None
        keep = (self.generator or init.default_generator()).random(x.shape) >= self.p
        mask = array_module(array_kind(x)).asarray(keep)
        scale = x.dtype.type(0 if self.p == 1 else 1 / (1 - self.p))
        return x * mask * scale, (mask, scale)

    def backward_op(self, saved: Any, gy: Any) -> Any:
        if saved is None:
            return gy
        mask, scale = saved
        return gy * mask * scale

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _channel_window_sum(a: Any, before: int, after: int) -> Any:
    """s[:, c] = sum of a[:, c - before .. c + after] along axis 1, zero outside the channels."""
    xp = array_module(array_kind(a))
    pad = [(0, 0)] * a.ndim
    pad[1] = (before, after)
    padded = xp.pad(a, pad)
    C = a.shape[1]
    total = padded[:, 0:C].copy()
    for offset in range(1, before + after + 1):
        total += padded[:, offset : offset + C]
    return total


class LocalResponseNorm(Layer):
    """AlexNet's cross-channel normalisation, as torch.nn.LocalResponseNorm:
        y_c = x_c / (k + alpha/size * sum_{c' = c - size//2 .. c + (size-1)//2} x_c'^2) ** beta
    Backward: with d the denominator base, gx_j = gy_j d_j^-beta
              - (2 alpha beta / size) x_j * sum_{c whose window holds j} gy_c x_c d_c^(-beta-1);
    the windows holding j are c = j - (size-1)//2 .. j + size//2. Saves x only and recomputes d."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        _int_tuple("LocalResponseNorm", "size", size, 1, 1)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def _base(self, x: Any) -> Any:
        sq = _channel_window_sum(x * x, self.size // 2, (self.size - 1) // 2)
        return sq * x.dtype.type(self.alpha / self.size) + x.dtype.type(self.k)

    def forward_op(self, x: Any) -> tuple[Any, Any]:
        check_array("LocalResponseNorm", "x", x, (3, 4), "(N, C, L) or (N, C, H, W)")
        return x * self._base(x) ** x.dtype.type(-self.beta), x

    def backward_op(self, x: Any, gy: Any) -> Any:
        d = self._base(x)
        t = gy * x * d ** x.dtype.type(-self.beta - 1)
        spread = _channel_window_sum(t, (self.size - 1) // 2, self.size // 2)
        return gy * d ** x.dtype.type(-self.beta) - x * spread * x.dtype.type(2 * self.alpha * self.beta / self.size)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
