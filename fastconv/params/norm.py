"""Params of group, layer and instance norm: one "row norm" seen by every kernel.

x (C-contiguous) is viewed as R rows of E elements, each row normalised by its own mean and biased variance:
    group norm (G groups)     rows = N*G,  E = (C/G) * M    (M = product of the spatial sizes)
    instance norm             rows = N*C,  E = M            (group norm with G = C)
    layer norm (shape D)      rows = prod of the leading dims, E = prod(D)
and the affine element of row r, element e is  (r % G) * Cg + e // M  (Cg = C/G affine elements per group;
layer norm: G = 1, Cg = E, M = 1, so element e; instance norm: G = C, Cg = 1, channel r % C).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .common import _int_tuple, _is_int, _real


@dataclass(frozen=True)
class NormParams:
    """A validated row norm (module docstring): x `shape`, R rows of E elements, affine index (r % G)*Cg + e // M."""

    shape: tuple
    rows: int
    E: int
    G: int
    Cg: int
    M: int
    eps: float
    dtype: np.dtype
    affine_shape: tuple  # weight and bias: (C,) for group and instance norm, normalized_shape for layer norm

    A = property(lambda self: self.G * self.Cg)  # affine elements


def _affine(fn: str, shapes: dict[str, tuple | None], want: tuple, x_shape: tuple) -> None:
    for name, shape in shapes.items():
        if shape is not None and tuple(shape) != want:
            raise ValueError(f"{fn}: '{name}' must have shape {want} for 'x' shape {x_shape}, got {tuple(shape)}")


def group_norm_params(
    fn: str, x_shape: tuple, num_groups: Any, affine: dict[str, tuple | None], eps: Any, dtype: np.dtype
) -> NormParams:
    """x (N, C, *spatial), C divisible by num_groups; weight/bias (C,)."""
    if len(x_shape) < 2:
        raise ValueError(f"{fn}: 'x' must be (N, C, ...) with at least 2 dimensions, got shape {x_shape}")
    if not _is_int(num_groups):
        raise TypeError(f"{fn}: 'num_groups' must be an int, got {num_groups!r}")
    N, C = x_shape[0], x_shape[1]
    if num_groups < 1 or C % num_groups:
        raise ValueError(
            f"{fn}: 'num_groups'={num_groups} must be >= 1 and divide the {C} channels of 'x' shape {x_shape}"
        )
    _affine(fn, affine, (C,), x_shape)
    G, M = int(num_groups), math.prod(x_shape[2:])
    return NormParams(
        tuple(x_shape), N * G, C // G * M, G, C // G, M, _real(fn, "eps", eps, 0.0), np.dtype(dtype), (C,)
    )


def instance_norm_params(
    fn: str, x_shape: tuple, affine: dict[str, tuple | None], eps: Any, dtype: np.dtype
) -> NormParams:
    """x (N, C, *spatial) with at least one spatial dimension; weight/bias/running stats (C,)."""
    if len(x_shape) < 3:
        raise ValueError(f"{fn}: 'x' must be (N, C, L) or (N, C, H, W) (at least 3 dimensions), got shape {x_shape}")
    return group_norm_params(fn, x_shape, max(x_shape[1], 1), affine, eps, dtype)


def layer_norm_params(
    fn: str, x_shape: tuple, normalized_shape: Any, affine: dict[str, tuple | None], eps: Any, dtype: np.dtype
) -> NormParams:
    """The last len(normalized_shape) dims of x must equal normalized_shape; weight/bias of that shape."""
    shape = (normalized_shape,) if _is_int(normalized_shape) else normalized_shape
    if not isinstance(shape, (tuple, list)) or not shape:
        raise TypeError(
            f"{fn}: 'normalized_shape' must be an int or a non-empty sequence of ints, got {normalized_shape!r}"
        )
    shape = _int_tuple(fn, "normalized_shape", tuple(shape), len(shape), 1)
    if tuple(x_shape[len(x_shape) - len(shape) :]) != shape or len(shape) > len(x_shape):
        raise ValueError(f"{fn}: 'normalized_shape' {shape} must equal the last dimensions of 'x' shape {x_shape}")
    _affine(fn, affine, shape, x_shape)
    E = math.prod(shape)
    rows = math.prod(x_shape[: len(x_shape) - len(shape)])
    return NormParams(tuple(x_shape), rows, E, 1, E, 1, _real(fn, "eps", eps, 0.0), np.dtype(dtype), shape)
