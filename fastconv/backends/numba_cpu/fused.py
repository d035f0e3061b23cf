"""Fused conv2d + bias + ReLU: the ReLU is applied to the accumulator tile before it is stored, so the output is
written once instead of written, read back and written again by a separate relu.

Internal to the numba backend (the public API and the registry ops are unchanged): every numba conv algorithm
takes a `relu` flag and this entry point validates the call like fastconv.conv2d, picks the algorithm as `auto`
would (or the one named) and sets the flag. fastconv.nn can use it for a Conv2d followed by ReLU.
"""

from __future__ import annotations

from typing import Any

from ... import dispatch, functional
from ...arrays import native


def conv2d_relu(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    algo: str = "auto",
) -> Any:
    """relu(conv2d(x, weight, bias, ...)) with zero padding, on the numba backend, in one pass over the output."""
    p, kind = functional._conv_call("conv2d_relu", x, weight, bias, stride, padding, dilation, groups, "zeros")
    impl = dispatch.select("conv2d", p, kind, "numba", algo, "conv2d_relu")
    return impl(p, functional.conv_input(impl, p, x), native(weight), native(bias), relu=True)
