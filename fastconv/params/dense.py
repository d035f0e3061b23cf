"""Params of the dense ops: linear (LinearParams) and batch norm (BatchNormParams)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .common import _real


# ---------------------------------------------------------------------------------------------- linear
@dataclass(frozen=True)
class LinearParams:
    """A validated fully-connected layer, as torch.nn.functional.linear: x (*batch, C) @ w (K, C)^T + b (K) ->
    y (*batch, K), with C = in_features and K = out_features. Kernels see x as (N, C) and y as (N, K), N the
    product of the batch dimensions."""

    batch: tuple
    C: int
    K: int
    dtype: np.dtype
    has_bias: bool
    precision: str = "fp32"  # fastconv.precision: how the kernels treat the operands

    N = property(lambda self: math.prod(self.batch))
    x_shape = property(lambda self: (*self.batch, self.C))
    w_shape = property(lambda self: (self.K, self.C))
    y_shape = property(lambda self: (*self.batch, self.K))
    macs = property(lambda self: self.N * self.C * self.K)


def linear_params(fn: str, x_shape: tuple, w_shape: tuple, bias_shape: tuple | None, dtype: np.dtype) -> LinearParams:
    """Validate a linear call (weight already checked to be 2-D, bias 1-D) and build its LinearParams."""
    K, C = w_shape
    if len(x_shape) < 1:
        raise ValueError(f"{fn}: 'x' must have at least one dimension (*, in_features), got shape {x_shape}")
    if x_shape[-1] != C:
        raise ValueError(
            f"{fn}: 'x' shape {x_shape} has {x_shape[-1]} features in its last dimension, but 'weight' "
            f"shape {w_shape} (out_features, in_features) expects in_features={C}"
        )
    if bias_shape is not None and bias_shape != (K,):
        raise ValueError(f"{fn}: 'bias' must have shape ({K},) to match 'weight' shape {w_shape}, got {bias_shape}")
    return LinearParams(tuple(x_shape[:-1]), C, K, np.dtype(dtype), bias_shape is not None)


# ---------------------------------------------------------------------------------------------- batch norm
@dataclass(frozen=True)
class BatchNormParams:
    """Batch norm over x (N,C,*spatial) seen as (N, C, M) with M the product of the spatial sizes.
    channels_last: x is a 4-D array in channels_last order (fastconv.arrays.is_channels_last)."""

    shape: tuple
    training: bool
    momentum: float
    eps: float
    dtype: np.dtype
    channels_last: bool = False

    N = property(lambda self: self.shape[0])
    C = property(lambda self: self.shape[1])
    M = property(lambda self: math.prod(self.shape[2:]))


def batch_norm_params(
    fn: str,
    x_shape: tuple,
    channel_shapes: dict[str, tuple | None],
    training: Any,
    momentum: Any,
    eps: Any,
    dtype: np.dtype,
    channels_last: bool = False,
) -> BatchNormParams:
    """channel_shapes: the per-channel arrays (weight, bias, running stats) that were given, by name;
    channels_last: x is in that order."""
    C = x_shape[1]
    for name, shape in channel_shapes.items():
        if shape is not None and tuple(shape) != (C,):
            raise ValueError(f"{fn}: '{name}' must have shape ({C},) for 'x' shape {x_shape}, got {tuple(shape)}")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"{fn}: 'training' must be a bool, got {training!r}")
    if training and math.prod(x_shape) // max(C, 1) <= 1 and math.prod(x_shape) > 0:
        raise ValueError(f"{fn}: training mode needs more than one value per channel, got 'x' shape {x_shape}")
    if not training and (channel_shapes.get("running_mean") is None or channel_shapes.get("running_var") is None):
        raise ValueError(f"{fn}: eval mode (training=False) needs 'running_mean' and 'running_var'")
    return BatchNormParams(
        tuple(x_shape),
        bool(training),
        _real(fn, "momentum", momentum, 0.0),
        _real(fn, "eps", eps, 0.0),
        np.dtype(dtype),
        bool(channels_last),
    )
