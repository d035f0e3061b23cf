"""Pooling params: max/avg pooling (PoolParams) and adaptive average pooling (AdaptivePoolParams)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .common import _int_tuple, _is_int, _out_size, output_size


# ---------------------------------------------------------------------------------------------- pooling
@dataclass(frozen=True)
class PoolParams:
    """A validated max/avg pooling over x (N,C,H,W) -> y (N,C,P,Q), symmetric padding (ph, pw)."""

    N: int
    C: int
    H: int
    W: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    ceil_mode: bool
    count_include_pad: bool
    dtype: np.dtype
    channels_last: bool = False  # x is in channels_last order (fastconv.arrays.is_channels_last)
    P: int = field(init=False)  # output rows and columns, computed once from the fields above
    Q: int = field(init=False)

    def __post_init__(self) -> None:
        ph, pw = self.padding
        object.__setattr__(
            self, "P", output_size(self.H, self.kernel[0], self.stride[0], (ph, ph), self.dilation[0], self.ceil_mode)
        )
        object.__setattr__(
            self, "Q", output_size(self.W, self.kernel[1], self.stride[1], (pw, pw), self.dilation[1], self.ceil_mode)
        )

    x_shape = property(lambda self: (self.N, self.C, self.H, self.W))
    y_shape = property(lambda self: (self.N, self.C, self.P, self.Q))


def pool_params(
    fn: str,
    x_shape: tuple,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: Any,
    count_include_pad: Any,
    dtype: np.dtype,
    channels_last: bool = False,
) -> PoolParams:
    """Validate a max/avg pooling call. stride=None means stride = kernel_size, as PyTorch."""
    kernel = _int_tuple(fn, "kernel_size", kernel_size, 2, 1)
    stride_t = kernel if stride is None else _int_tuple(fn, "stride", stride, 2, 1)
    pad = _int_tuple(fn, "padding", padding, 2, 0)
    dil = _int_tuple(fn, "dilation", dilation, 2, 1)
    for name, v in (("ceil_mode", ceil_mode), ("count_include_pad", count_include_pad)):
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{fn}: '{name}' must be a bool, got {v!r}")
    if any(2 * p > k for p, k in zip(pad, kernel)):
        raise ValueError(f"{fn}: 'padding' {pad} must be at most half of 'kernel_size' {kernel}")
    for i, name in enumerate("HW"):
        _out_size(fn, name, x_shape, x_shape[2 + i], kernel[i], stride_t[i], (pad[i], pad[i]), dil[i], bool(ceil_mode))
    N, C, H, W = x_shape
    return PoolParams(
        N, C, H, W, kernel, stride_t, pad, dil, bool(ceil_mode), bool(count_include_pad), np.dtype(dtype), channels_last
    )


@dataclass(frozen=True)
class AdaptivePoolParams:
    """Adaptive average pooling x (N,C,H,W) -> y (N,C,P,Q); output row i averages input rows
    [floor(i*H/P), ceil((i+1)*H/P)), and likewise for columns."""

    N: int
    C: int
    H: int
    W: int
    P: int
    Q: int
    dtype: np.dtype

    x_shape = property(lambda self: (self.N, self.C, self.H, self.W))
    y_shape = property(lambda self: (self.N, self.C, self.P, self.Q))


def adaptive_pool_params(fn: str, x_shape: tuple, output_size: Any, dtype: np.dtype) -> AdaptivePoolParams:
    """output_size: int or pair; a None entry keeps that input size, as PyTorch."""
    N, C, H, W = x_shape
    sizes = (output_size,) * 2 if _is_int(output_size) or output_size is None else output_size
    if not isinstance(sizes, (tuple, list)) or len(sizes) != 2 or not all(s is None or _is_int(s) for s in sizes):
        raise TypeError(f"{fn}: 'output_size' must be an int or a pair of ints (or None), got {output_size!r}")
    P, Q = (H if sizes[0] is None else int(sizes[0])), (W if sizes[1] is None else int(sizes[1]))
    if P < 1 or Q < 1:
        raise ValueError(f"{fn}: 'output_size' must be >= 1, got {output_size!r}")
    if H < 1 or W < 1:
        raise ValueError(f"{fn}: 'x' shape {x_shape} has an empty spatial dimension")
    return AdaptivePoolParams(N, C, H, W, P, Q, np.dtype(dtype))


def adaptive_windows(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each adaptive-pooling window along one dimension."""
    i = np.arange(out_size)
    return (i * in_size) // out_size, -((-(i + 1) * in_size) // out_size)
