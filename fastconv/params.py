"""Normalised, validated parameters for every op: the one place where argument checks and shape math live.

Each builder takes the user's arguments, rejects bad ones with a TypeError/ValueError naming the function, the
argument and the shapes, and returns a frozen params object. Kernels receive only these objects, so they never see
an int-or-pair, a padding string or an unchecked shape.

Output size per spatial dim (conv and pooling):
    out = floor((in + pad_begin + pad_end - dilation*(k-1) - 1) / stride) + 1
with ceil instead of floor under `ceil_mode`, where the last window must start inside the input or the left padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from numbers import Integral, Real
from typing import Any

import numpy as np

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


# ---------------------------------------------------------------------------------------------- int helpers
def _is_int(v: Any) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _int_tuple(fn: str, name: str, v: Any, nd: int, minimum: int) -> tuple[int, ...]:
    """An int or a length-`nd` sequence of ints, each >= minimum."""
    values = (v,) * nd if _is_int(v) else v
    if not isinstance(values, (tuple, list)) or len(values) != nd or not all(_is_int(e) for e in values):
        form = "an int" if nd == 1 else f"an int or a sequence of {nd} ints"
        raise TypeError(f"{fn}: '{name}' must be {form}, got {v!r}")
    if any(e < minimum for e in values):
        raise ValueError(f"{fn}: '{name}' must be >= {minimum}, got {v!r}")
    return tuple(int(e) for e in values)


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
    for name, v, lo in (("in_size", in_size, 0), ("kernel_size", kernel_size, 1), ("stride", stride, 1),
                        ("dilation", dilation, 1)):
        _int_tuple(fn, name, v, 1, lo)
    begin, end = _int_tuple(fn, "padding", padding, 2, 0)
    span = dilation * (kernel_size - 1) + 1
    room = in_size + begin + end - span
    if room < 0:
        raise ValueError(
            f"{fn}: kernel of size {kernel_size} (dilation {dilation}, span {span}) does not fit the padded "
            f"input of size {in_size} + {begin} + {end}"
        )
    if not ceil_mode:
        return room // stride + 1
    out = -(-room // stride) + 1
    if (out - 1) * stride >= in_size + begin:  # last window would start in the right padding
        out -= 1
    return out


def _out_size(fn: str, what: str, x_shape: tuple, in_size: int, k: int, s: int, pad: tuple[int, int],
              d: int, ceil_mode: bool = False) -> int:
    """conv_output_size with the caller's name and shapes in the message."""
    try:
        return conv_output_size(in_size, k, s, pad, d, ceil_mode)
    except ValueError:
        span = d * (k - 1) + 1
        raise ValueError(
            f"{fn}: kernel {what} span {span} (size {k}, dilation {d}) is larger than the padded input "
            f"{in_size} + {pad[0]} + {pad[1]} of 'x' shape {x_shape}"
        ) from None


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

    @property
    def P(self) -> int:
        return conv_output_size(self.H, self.R, self.stride[0], self.padding[0], self.dilation[0])

    @property
    def Q(self) -> int:
        return conv_output_size(self.W, self.S, self.stride[1], self.padding[1], self.dilation[1])

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
        return replace(self, H=self.H + t + b, W=self.W + lf + rt, padding=((0, 0), (0, 0)), padding_mode="zeros",
                       channels_last=False)


def _conv_padding(fn: str, padding: Any, nd: int, x_shape: tuple, in_sizes: tuple, kernel: tuple,
                  stride: tuple, dilation: tuple) -> tuple[tuple[int, int], ...]:
    """Normalise padding to one (begin, end) pair per spatial dim."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            pads = []
            for n, k, s, d in zip(in_sizes, kernel, stride, dilation):
                total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"{fn}: 'padding' must be an int, a pair, a pair of pairs, 'valid' or 'same', "
                         f"got {padding!r}")
    if _is_int(padding):
        if padding < 0:
            raise ValueError(f"{fn}: 'padding' must be >= 0, got {padding}")
        return ((int(padding),) * 2,) * nd
    if isinstance(padding, (tuple, list)) and len(padding) == nd and all(_is_int(p) for p in padding):
        pairs = tuple((int(p), int(p)) for p in padding)
    elif (isinstance(padding, (tuple, list)) and len(padding) == nd
          and all(isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(e) for e in p) for p in padding)):
        pairs = tuple((int(p[0]), int(p[1])) for p in padding)
    elif nd == 1 and isinstance(padding, (tuple, list)) and len(padding) == 2 and all(_is_int(p) for p in padding):
        pairs = ((int(padding[0]), int(padding[1])),)
    else:
        forms = "an int, (left, right)" if nd == 1 else "an int, (pad_h, pad_w), ((top, bottom), (left, right))"
        raise TypeError(f"{fn}: 'padding' must be {forms}, 'valid' or 'same', got {padding!r}")
    if any(e < 0 for pair in pairs for e in pair):
        raise ValueError(f"{fn}: 'padding' must be >= 0, got {padding!r}")
    return pairs


def conv_params(fn: str, x_shape: tuple, w_shape: tuple, bias_shape: tuple | None, stride: Any, padding: Any,
                dilation: Any, groups: Any, padding_mode: Any, dtype: np.dtype, channels_last: bool = False
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
            raise ValueError(f"{fn}: padding_mode='reflect' needs each pad < the input size, got pads {(b, e)} "
                             f"for size {n} of 'x' shape {x_shape}")
        if padding_mode == "circular" and max(b, e) > n:
            raise ValueError(f"{fn}: padding_mode='circular' needs each pad <= the input size, got pads {(b, e)} "
                             f"for size {n} of 'x' shape {x_shape}")
    for i, name in enumerate("L" if nd == 1 else "HW"):
        _out_size(fn, name, x_shape, in_sizes[i], kernel[i], stride_t[i], pads[i], dilation_t[i])
    if nd == 1:  # carried as a 2-D conv with H = R = 1
        in_sizes, kernel = [1, *in_sizes], [1, *kernel]
        stride_t, dilation_t, pads = (1, *stride_t), (1, *dilation_t), ((0, 0), *pads)
    return ConvParams(N, C, in_sizes[0], in_sizes[1], K, kernel[0], kernel[1], stride_t, pads, dilation_t,
                      int(groups), padding_mode, np.dtype(dtype), bias_shape is not None,
                      bool(channels_last) and nd == 2)


def check_grad_out(fn: str, grad_shape: tuple, expected: tuple, what: str) -> None:
    """grad_out must have exactly the forward output's shape."""
    if tuple(grad_shape) != tuple(expected):
        raise ValueError(f"{fn}: 'grad_out' shape {tuple(grad_shape)} does not match the {what} output shape "
                         f"{tuple(expected)}")


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

    N = property(lambda self: math.prod(self.batch))
    x_shape = property(lambda self: (*self.batch, self.C))
    w_shape = property(lambda self: (self.K, self.C))
    y_shape = property(lambda self: (*self.batch, self.K))
    macs = property(lambda self: self.N * self.C * self.K)


def linear_params(fn: str, x_shape: tuple, w_shape: tuple, bias_shape: tuple | None, dtype: np.dtype
                  ) -> LinearParams:
    """Validate a linear call (weight already checked to be 2-D, bias 1-D) and build its LinearParams."""
    K, C = w_shape
    if len(x_shape) < 1:
        raise ValueError(f"{fn}: 'x' must have at least one dimension (*, in_features), got shape {x_shape}")
    if x_shape[-1] != C:
        raise ValueError(f"{fn}: 'x' shape {x_shape} has {x_shape[-1]} features in its last dimension, but 'weight' "
                         f"shape {w_shape} (out_features, in_features) expects in_features={C}")
    if bias_shape is not None and bias_shape != (K,):
        raise ValueError(f"{fn}: 'bias' must have shape ({K},) to match 'weight' shape {w_shape}, got {bias_shape}")
    return LinearParams(tuple(x_shape[:-1]), C, K, np.dtype(dtype), bias_shape is not None)


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

    @property
    def P(self) -> int:
        return conv_output_size(self.H, self.kernel[0], self.stride[0], self.padding[0], self.dilation[0],
                                self.ceil_mode)

    @property
    def Q(self) -> int:
        return conv_output_size(self.W, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1],
                                self.ceil_mode)

    x_shape = property(lambda self: (self.N, self.C, self.H, self.W))
    y_shape = property(lambda self: (self.N, self.C, self.P, self.Q))


def pool_params(fn: str, x_shape: tuple, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
                ceil_mode: Any, count_include_pad: Any, dtype: np.dtype) -> PoolParams:
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
        _out_size(fn, name, x_shape, x_shape[2 + i], kernel[i], stride_t[i], (pad[i], pad[i]), dil[i],
                  bool(ceil_mode))
    N, C, H, W = x_shape
    return PoolParams(N, C, H, W, kernel, stride_t, pad, dil, bool(ceil_mode), bool(count_include_pad),
                      np.dtype(dtype))


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


# ---------------------------------------------------------------------------------------------- batch norm
@dataclass(frozen=True)
class BatchNormParams:
    """Batch norm over x (N,C,*spatial) seen as (N, C, M) with M the product of the spatial sizes."""

    shape: tuple
    training: bool
    momentum: float
    eps: float
    dtype: np.dtype

    N = property(lambda self: self.shape[0])
    C = property(lambda self: self.shape[1])
    M = property(lambda self: math.prod(self.shape[2:]))


def _real(fn: str, name: str, v: Any, minimum: float) -> float:
    if not isinstance(v, Real) or isinstance(v, bool) or not math.isfinite(v):
        raise TypeError(f"{fn}: '{name}' must be a finite real number, got {v!r}")
    if v < minimum:
        raise ValueError(f"{fn}: '{name}' must be >= {minimum}, got {v!r}")
    return float(v)


def batch_norm_params(fn: str, x_shape: tuple, channel_shapes: dict[str, tuple | None], training: Any,
                      momentum: Any, eps: Any, dtype: np.dtype) -> BatchNormParams:
    """channel_shapes: the per-channel arrays (weight, bias, running stats) that were given, by name."""
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
    return BatchNormParams(tuple(x_shape), bool(training), _real(fn, "momentum", momentum, 0.0),
                           _real(fn, "eps", eps, 0.0), np.dtype(dtype))


# ---------------------------------------------------------------------------------------------- elementwise
@dataclass(frozen=True)
class EltwiseParams:
    """An elementwise op over an array of any shape."""

    shape: tuple
    dtype: np.dtype

    size = property(lambda self: math.prod(self.shape))
