"""Convolution params: ConvParams and the validation of a conv1d/conv2d call."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .common import Traits, _int_tuple, _is_int, _out_size, ceil_div, output_size

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


# ---------------------------------------------------------------------------------------------- conv
@dataclass(frozen=True)
class ConvParams:
    """A validated 2-D convolution: x (N,C,H,W) * w (K,C/groups,R,S) -> y (N,K,P,Q).

    conv1d is carried as a ConvParams with H = R = 1. channels_last: x arrives in channels_last order
    (fastconv.arrays.is_channels_last); implementations registered to read that order see it as it is.
    """

    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))
    dilation: tuple[int, int]
    groups: int
    padding_mode: str
    dtype: np.dtype
    has_bias: bool
    channels_last: bool = False
    precision: str = "fp32"  # fastconv.precision: how the kernels treat the operands
    P: int = field(init=False)  # output rows and columns, computed once from the fields above
    Q: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "P", output_size(self.H, self.R, self.stride[0], self.padding[0], self.dilation[0]))
        object.__setattr__(self, "Q", output_size(self.W, self.S, self.stride[1], self.padding[1], self.dilation[1]))

    @property
    def Cg(self) -> int:
        """Input channels per group."""
        return self.C // self.groups

    @property
    def Kg(self) -> int:
        """Output channels per group."""
        return self.K // self.groups

    x_shape = property(lambda self: (self.N, self.C, self.H, self.W))
    w_shape = property(lambda self: (self.K, self.Cg, self.R, self.S))
    y_shape = property(lambda self: (self.N, self.K, self.P, self.Q))

    @property
    def is_padded(self) -> bool:
        return any(self.padding[0] + self.padding[1])

    is_strided = property(lambda self: self.stride != (1, 1))
    is_dilated = property(lambda self: self.dilation != (1, 1))
    is_grouped = property(lambda self: self.groups > 1)
    is_1x1 = property(lambda self: self.R == 1 and self.S == 1)

    @property
    def is_pointwise(self) -> bool:
        """1x1, stride 1, no padding: a plain GEMM over the pixels."""
        return self.is_1x1 and not self.is_strided and not self.is_padded

    @property
    def is_depthwise(self) -> bool:
        """One input channel per group (groups == C > 1), K a multiple of C."""
        return self.groups > 1 and self.groups == self.C

    @property
    def macs(self) -> int:
        """Multiply-adds of the forward pass (2 FLOPs each)."""
        return self.N * self.K * self.P * self.Q * self.Cg * self.R * self.S

    def padded(self) -> ConvParams:
        """The same conv on an input already padded explicitly (a new NCHW array): zero padding, padding_mode
        'zeros'."""
        (t, b), (lf, rt) = self.padding
        return replace(
            self,
            H=self.H + t + b,
            W=self.W + lf + rt,
            padding=((0, 0), (0, 0)),
            padding_mode="zeros",
            channels_last=False,
        )


def _conv_padding(
    fn: str, padding: Any, nd: int, x_shape: tuple, in_sizes: tuple, kernel: tuple, stride: tuple, dilation: tuple
) -> tuple[tuple[int, int], ...]:
    """Normalise padding to one (begin, end) pair per spatial dim."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            pads = []
            for n, k, s, d in zip(in_sizes, kernel, stride, dilation):
                total = max((ceil_div(n, s) - 1) * s + d * (k - 1) + 1 - n, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"{fn}: 'padding' must be an int, a pair, a pair of pairs, 'valid' or 'same', got {padding!r}")
    if _is_int(padding):
        if padding < 0:
            raise ValueError(f"{fn}: 'padding' must be >= 0, got {padding}")
        return ((int(padding),) * 2,) * nd
    if isinstance(padding, (tuple, list)) and len(padding) == nd and all(_is_int(p) for p in padding):
        pairs = tuple((int(p), int(p)) for p in padding)
    elif (
        isinstance(padding, (tuple, list))
        and len(padding) == nd
        and all(isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(e) for e in p) for p in padding)
    ):
        pairs = tuple((int(p[0]), int(p[1])) for p in padding)
    elif nd == 1 and isinstance(padding, (tuple, list)) and len(padding) == 2 and all(_is_int(p) for p in padding):
        pairs = ((int(padding[0]), int(padding[1])),)
    else:
        forms = "an int, (left, right)" if nd == 1 else "an int, (pad_h, pad_w), ((top, bottom), (left, right))"
        raise TypeError(f"{fn}: 'padding' must be {forms}, 'valid' or 'same', got {padding!r}")
    if any(e < 0 for pair in pairs for e in pair):
        raise ValueError(f"{fn}: 'padding' must be >= 0, got {padding!r}")
    return pairs


def conv_params(
    fn: str,
    x_shape: tuple,
    w_shape: tuple,
    bias_shape: tuple | None,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: Any,
    dtype: np.dtype,
    channels_last: bool = False,
) -> ConvParams:
    """Validate a conv1d/conv2d call (shapes already checked for ndim) and build its ConvParams; `channels_last`
    says x is in that order (conv2d only)."""
    nd = len(x_shape) - 2
    axes = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
    N, C, *in_sizes = x_shape
    K, Cg_w, *kernel = w_shape
    if not _is_int(groups):
        raise TypeError(f"{fn}: 'groups' must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{fn}: 'groups' must be >= 1, got {groups}")
    if C % groups:
        raise ValueError(f"{fn}: groups={groups} does not divide the {C} input channels of 'x' {axes} = {x_shape}")
    if K % groups:
        raise ValueError(f"{fn}: groups={groups} does not divide the {K} output channels of 'weight' shape {w_shape}")
    if Cg_w != C // groups:
        raise ValueError(
            f"{fn}: 'weight' shape {w_shape} expects {Cg_w}*groups = {Cg_w * groups} input channels, but 'x' "
            f"shape {x_shape} has {C} (groups={groups})"
        )
    if min(kernel) < 1:
        raise ValueError(f"{fn}: 'weight' shape {w_shape} has an empty kernel")
    if bias_shape is not None and bias_shape != (K,):
        raise ValueError(f"{fn}: 'bias' must have shape ({K},) to match 'weight' shape {w_shape}, got {bias_shape}")
    stride_t = _int_tuple(fn, "stride", stride, nd, 1)
    dilation_t = _int_tuple(fn, "dilation", dilation, nd, 1)
    pads = _conv_padding(fn, padding, nd, x_shape, tuple(in_sizes), tuple(kernel), stride_t, dilation_t)
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{fn}: 'padding_mode' must be one of {PADDING_MODES}, got {padding_mode!r}")
    for n, (b, e) in zip(in_sizes, pads):
        if padding_mode == "reflect" and max(b, e) >= n and n > 0:
            raise ValueError(
                f"{fn}: padding_mode='reflect' needs each pad < the input size, got pads {(b, e)} "
                f"for size {n} of 'x' shape {x_shape}"
            )
        if padding_mode == "circular" and max(b, e) > n:
            raise ValueError(
                f"{fn}: padding_mode='circular' needs each pad <= the input size, got pads {(b, e)} "
                f"for size {n} of 'x' shape {x_shape}"
            )
    for i, name in enumerate("L" if nd == 1 else "HW"):
        _out_size(fn, name, x_shape, in_sizes[i], kernel[i], stride_t[i], pads[i], dilation_t[i])
    if nd == 1:  # carried as a 2-D conv with H = R = 1
        in_sizes, kernel = [1, *in_sizes], [1, *kernel]
        stride_t, dilation_t, pads = (1, *stride_t), (1, *dilation_t), ((0, 0), *pads)
    return ConvParams(
        N,
        C,
        in_sizes[0],
        in_sizes[1],
        K,
        kernel[0],
        kernel[1],
        stride_t,
        pads,
        dilation_t,
        int(groups),
        padding_mode,
        np.dtype(dtype),
        bias_shape is not None,
        bool(channels_last) and nd == 2,
    )


@dataclass(frozen=True)
class ConvTraits(Traits):
    """What a conv implementation's registration says of it beyond `supports`, for the plan that runs it.

    output_tile: it computes outputs in tiles this wide along each axis, with rounding that follows the tile grid
    (fastconv.dask starts its blocks on that grid, which keeps results bit for bit equal to one call).
    precisions, channels_last: as Traits.
    """

    output_tile: int = 1
