"""Transposed-convolution params: a conv_transpose2d call as the convolution it is the adjoint of.

conv_transpose2d(x, w) with x (N, C_in, H, W) and w (C_in, C_out/groups, R, S) is the data gradient of the
convolution `conv` of an input (N, C_out, H_out, W_out) by the weight w read as (K=C_in, C_out/groups, R, S):
    H_out = (H - 1)*stride - 2*padding + dilation*(R - 1) + output_padding + 1
That convolution's output has H rows when its bottom padding is padding - output_padding; when output_padding is
larger than padding (possible with output_padding >= stride < dilation) the bottom padding is 0 and its output
has `extra` rows more than x, which the kernels see as zero rows of x (contributing nothing) and the input
gradient drops. Likewise for columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import _int_tuple
from .conv import ConvParams


@dataclass(frozen=True)
class ConvTransposeParams:
    """A validated conv_transpose2d: x (N, C_in, H, W) -> y (N, C_out, H_out, W_out); `conv` is the convolution
    whose data gradient it is, `bias_sums` the 1x1 convolution over y whose bias gradient is y's channel sums."""

    x_shape: tuple[int, int, int, int]
    output_padding: tuple[int, int]
    has_bias: bool
    conv: ConvParams
    bias_sums: ConvParams

    y_shape = property(lambda self: self.conv.x_shape)
    w_shape = property(lambda self: self.conv.w_shape)

    @property
    def extra(self) -> tuple[int, int]:
        """Zero rows and columns the equivalent convolution's output has beyond x."""
        return self.conv.P - self.x_shape[2], self.conv.Q - self.x_shape[3]

    @property
    def macs(self) -> int:
        """Multiply-adds, counted as torch's flop counter does: every x element times every weight of its group."""
        N, C, H, W = self.x_shape
        return N * C * H * W * self.conv.Cg * self.conv.R * self.conv.S


def conv_transpose_params(
    fn: str,
    x_shape: tuple,
    w_shape: tuple,
    bias_shape: tuple | None,
    stride: object,
    padding: object,
    output_padding: object,
    groups: object,
    dilation: object,
    dtype: np.dtype,
) -> ConvTransposeParams:
    """Validate a conv_transpose2d call (arrays already checked for rank) and build its params."""
    N, C_in, H, W = x_shape
    K_w, Cg_out, R, S = w_shape
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"{fn}: 'groups' must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{fn}: 'groups' must be >= 1, got {groups}")
    if K_w != C_in:
        raise ValueError(
            f"{fn}: 'weight' shape {w_shape} (C_in, C_out/groups, R, S) expects {K_w} input channels, but 'x' "
            f"shape {x_shape} has {C_in}"
        )
    if C_in % groups:
        raise ValueError(f"{fn}: groups={groups} does not divide the {C_in} input channels of 'x' shape {x_shape}")
    if min(R, S) < 1 or Cg_out < 1:
        raise ValueError(f"{fn}: 'weight' shape {w_shape} is empty")
    C_out = Cg_out * groups
    if bias_shape is not None and bias_shape != (C_out,):
        raise ValueError(
            f"{fn}: 'bias' must have shape ({C_out},) (C_out = weight.shape[1] * groups for 'weight' shape "
            f"{w_shape}, groups={groups}), got {bias_shape}"
        )
    s = _int_tuple(fn, "stride", stride, 2, 1)
    p = _int_tuple(fn, "padding", padding, 2, 0)
    op = _int_tuple(fn, "output_padding", output_padding, 2, 0)
    d = _int_tuple(fn, "dilation", dilation, 2, 1)
    for i, name in enumerate("HW"):
        if op[i] >= max(s[i], d[i]):
            raise ValueError(
                f"{fn}: 'output_padding' {op} must be smaller than stride {s} or dilation {d} along {name}"
            )
    k = (R, S)
    out = tuple((n - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, n in enumerate((H, W)))
    if min(out) < 1:
        raise ValueError(
            f"{fn}: the output of 'x' shape {x_shape} with 'weight' shape {w_shape}, stride {s}, padding {p}, "
            f"output_padding {op} and dilation {d} would have spatial size {out}"
        )
    pads = tuple((p[i], max(p[i] - op[i], 0)) for i in range(2))
    conv = ConvParams(N, C_out, out[0], out[1], C_in, R, S, s, pads, d, int(groups), "zeros", np.dtype(dtype), False)
    bias_sums = ConvParams(
        N, C_out, out[0], out[1], C_out, 1, 1, (1, 1), ((0, 0), (0, 0)), (1, 1), 1, "zeros", np.dtype(dtype), True
    )
    return ConvTransposeParams(tuple(x_shape), op, bias_shape is not None, conv, bias_sums)
