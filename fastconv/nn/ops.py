"""Differentiable glue for composite forward code: residual add, channel concat, flatten.

Each is one recorded op (fastconv.nn.tape.apply), so a block written as
    out = nn.add(self.bn2(self.conv2(...)), self.downsample(x))          # ResNet
    return nn.cat([b(x) for b in (self.branch1, self.branch2)], dim=1)    # Inception, fire, dense blocks
gets its backward from the tape; an array feeding several branches has its gradients summed there.
Array-module code: works on NumPy and CuPy arrays alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..arrays import array_kind, array_module, check_array, check_same
from .tape import apply


def _check(fn: str, arrays: Sequence[Any]) -> Any:
    """All float arrays of one kind and dtype; returns their array module."""
    if not arrays:
        raise ValueError(f"{fn}: needs at least one array")
    named = {f"arrays[{i}]": a for i, a in enumerate(arrays)}
    for name, a in named.items():
        check_array(fn, name, a, None)
    return array_module(check_same(fn, named)[0])


def add(*arrays: Any) -> Any:
    """Elementwise sum of arrays of one shape (a residual connection); the gradient goes to each unchanged."""
    _check("add", arrays)
    shapes = {tuple(a.shape) for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"add: all arrays must have one shape, got {[tuple(a.shape) for a in arrays]}")

    def forward(*xs: Any) -> tuple[Any, None]:
        total = xs[0] + xs[1] if len(xs) > 1 else xs[0].copy()
        for x in xs[2:]:
            total += x
        return total, None

    return apply(forward, lambda _, g: (g,) * len(arrays), *arrays, name="add")


def cat(arrays: Sequence[Any], dim: int = 1) -> Any:
    """Concatenate along `dim` (default: channels); the gradient is split back into the pieces."""
    arrays = list(arrays)
    xp = _check("cat", arrays)
    ndim = arrays[0].ndim
    if not -ndim <= dim < ndim:
        raise ValueError(f"cat: 'dim' {dim} is out of range for {ndim}-D arrays")
    dim %= ndim
    shapes = [tuple(a.shape) for a in arrays]
    if any(len(s) != ndim or s[:dim] + s[dim + 1 :] != shapes[0][:dim] + shapes[0][dim + 1 :] for s in shapes):
        raise ValueError(f"cat: arrays must match in every dimension but {dim}, got shapes {shapes}")
    bounds = [0]
    for s in shapes:
        bounds.append(bounds[-1] + s[dim])

    def backward(_: None, g: Any) -> tuple[Any, ...]:
        index = [slice(None)] * ndim
        pieces = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            index[dim] = slice(lo, hi)
            pieces.append(g[tuple(index)])
        return tuple(pieces)

    return apply(lambda *xs: (xp.concatenate(xs, axis=dim), None), backward, *arrays, name="cat")


def flatten(x: Any, start_dim: int = 1, end_dim: int = -1) -> Any:
    """Merge dimensions start_dim..end_dim into one (a view), as torch.flatten."""
    if array_kind(x) is None:
        raise TypeError(f"flatten: 'x' must be a NumPy or CuPy array, got {type(x).__name__}")
    shape, nd = tuple(x.shape), x.ndim
    if not (-nd <= start_dim < nd and -nd <= end_dim < nd) or start_dim % nd > end_dim % nd:
        raise ValueError(f"flatten: dims {start_dim}..{end_dim} do not fit 'x' of shape {shape}")
    lo, hi = start_dim % nd, end_dim % nd
    new_shape = shape[:lo] + (math.prod(shape[lo : hi + 1]),) + shape[hi + 1 :]
    return apply(lambda a: (a.reshape(new_shape), None), lambda _, g: g.reshape(shape), x, name="flatten")
