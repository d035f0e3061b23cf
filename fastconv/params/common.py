"""Argument checks and output-size math shared by every op's params."""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np


def ceil_div(a: int, b: int) -> int:
    """ceil(a / b) for integers, b > 0 (the one ceil-division of the project; the numba kernels jit this one)."""
    return -(-a // b)


def _is_int(v: Any) -> bool:
    return type(v) is int or (isinstance(v, Integral) and not isinstance(v, bool))


def _int_tuple(fn: str, name: str, v: Any, nd: int, minimum: int) -> tuple[int, ...]:
    """An int or a length-`nd` sequence of ints, each >= minimum."""
    values = (v,) * nd if _is_int(v) else v
    if not isinstance(values, (tuple, list)) or len(values) != nd or not all(_is_int(e) for e in values):
        form = "an int" if nd == 1 else f"an int or a sequence of {nd} ints"
        raise TypeError(f"{fn}: '{name}' must be {form}, got {v!r}")
    if any(e < minimum for e in values):
        raise ValueError(f"{fn}: '{name}' must be >= {minimum}, got {v!r}")
    return tuple(int(e) for e in values)


def output_size(in_size: int, k: int, s: int, pad: tuple[int, int], d: int, ceil_mode: bool = False) -> int:
    """The output length for already validated arguments, as PyTorch computes it; 0 when no window fits (no
    checks). With ceil_mode a last, partial window counts when it starts inside the input or its left padding,
    even when the (dilated) window is longer than the whole padded input."""
    room = in_size + pad[0] + pad[1] - d * (k - 1) - 1  # < 0: the window overhangs the padded input
    if not ceil_mode:
        return max(room // s + 1, 0)
    out = ceil_div(room, s) + 1
    if out > 1 and (out - 1) * s >= in_size + pad[0]:  # last window would start in the right padding
        out -= 1
    return max(out, 0)


def conv_output_size(
    in_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of a conv/pool window sliding over one dimension.

    `padding` is the pad on each side, or a (begin, end) pair. Raises ValueError when the (dilated) kernel does
    not fit the padded input, i.e. when the size would be <= 0.
    """
    fn = "conv_output_size"
    for name, v, lo in (
        ("in_size", in_size, 0),
        ("kernel_size", kernel_size, 1),
        ("stride", stride, 1),
        ("dilation", dilation, 1),
    ):
        _int_tuple(fn, name, v, 1, lo)
    begin, end = _int_tuple(fn, "padding", padding, 2, 0)
    out = output_size(in_size, kernel_size, stride, (begin, end), dilation, bool(ceil_mode))
    if out < 1:
        span = dilation * (kernel_size - 1) + 1
        raise ValueError(
            f"{fn}: kernel of size {kernel_size} (dilation {dilation}, span {span}) does not fit the padded "
            f"input of size {in_size} + {begin} + {end}"
        )
    return out


def _out_size(
    fn: str,
    what: str,
    x_shape: tuple,
    in_size: int,
    k: int,
    s: int,
    pad: tuple[int, int],
    d: int,
    ceil_mode: bool = False,
) -> int:
    """output_size of validated arguments, or a ValueError with the caller's name and shapes when it is < 1."""
    out = output_size(in_size, k, s, pad, d, ceil_mode)
    if out < 1:
        span = d * (k - 1) + 1
        raise ValueError(
            f"{fn}: kernel {what} span {span} (size {k}, dilation {d}) is larger than the padded input "
            f"{in_size} + {pad[0]} + {pad[1]} of 'x' shape {x_shape}"
            + (" and ceil_mode gives no window either" if ceil_mode else "")
        )
    return out


def check_grad_out(fn: str, grad_shape: tuple, expected: tuple, what: str) -> None:
    """grad_out must have exactly the forward output's shape."""
    if tuple(grad_shape) != tuple(expected):
        raise ValueError(
            f"{fn}: 'grad_out' shape {tuple(grad_shape)} does not match the {what} output shape {tuple(expected)}"
        )


def _real(fn: str, name: str, v: Any, minimum: float) -> float:
    if not isinstance(v, Real) or isinstance(v, bool) or not math.isfinite(v):
        raise TypeError(f"{fn}: '{name}' must be a finite real number, got {v!r}")
    if v < minimum:
        raise ValueError(f"{fn}: '{name}' must be >= {minimum}, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class EltwiseParams:
    """An elementwise op over an array of any shape."""

    shape: tuple
    dtype: np.dtype

    size = property(lambda self: math.prod(self.shape))


@dataclass(frozen=True)
class Traits:
    """What an implementation's registration says of it beyond `supports`, for the plan that runs it.

    precisions: the compute precisions (fastconv.precision) whose float32 operands it takes as they are and
    rounds itself; for any other precision the plan rounds its operands first.
    channels_last: where its params say x is in channels_last order (an (N, H, W, C) buffer seen as (N, C, H, W),
    `params.channels_last`), it takes x (and grad_out) in that order as they are and returns its 4-D outputs in
    either order; other implementations get C-contiguous NCHW copies.
    """

    precisions: tuple[str, ...] = ("fp32",)
    channels_last: bool = False
