"""What fastconv.summary knows of each layer type without running it: output shape, MACs and sliding windows.

`rule_for(layer)` returns a function `(layer, x, where) -> Effect` for the built-in layers, or None for a
layer the summary must run. Shapes are validated by the same params builders the real ops use (conv_params,
pool_params, adaptive_pool_params), so a bad input fails here as it would in the forward.

MACs count one multiply-add once and only where there are products to sum: convolution (N*K*P*Q * C/groups*R*S),
transposed convolution (N*C_in*H*W * C_out/groups*R*S, as torch's flop counter)
and linear (rows * in_features * out_features); bias adds, batch norm, pooling, ReLU, LRN and residual adds
count zero, as in torchvision's published figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .nn import layers as L
from .nn.array_layers import Dropout, LocalResponseNorm
from .nn.norm_layers import GroupNorm, InstanceNorm2d, LayerNorm
from .nn.transpose_layers import ConvTranspose2d
from .params import (
    ConvParams,
    adaptive_pool_params,
    adaptive_windows,
    conv_params,
    conv_transpose_params,
    pool_params,
)


@dataclass(frozen=True)
class Window:
    """A window sliding along one spatial axis: `size` input positions apart by `dilation`, moved by `stride`,
    over `in_size` positions padded by (pad_begin, pad_end), giving `out_size` outputs."""

    in_size: int
    size: int
    stride: int
    pad_begin: int = 0
    pad_end: int = 0
    dilation: int = 1
    out_size: int = 1

    @property
    def span(self) -> int:
        """Input positions from the first to the last tap, inclusive."""
        return self.dilation * (self.size - 1) + 1

    def untouched_tail(self) -> int:
        """Input positions (not padding) at the end that no window reaches: the stride does not tile the input.
        Each window is taken to own max(span, stride) positions, so a stride larger than the kernel (a 1x1/2
        conv) is sub-sampling by design, not a tail."""
        reached = (self.out_size - 1) * self.stride + max(self.span, self.stride)
        return max(0, self.in_size + self.pad_begin - reached)


@dataclass(frozen=True)
class Effect:
    """A layer's output shape, MACs, its windows along (H, W) (None: pointwise in space), whether its output
    is a new array to keep (False: in place, a view or an identity) and, for a conv, its validated params."""

    output_shape: tuple
    macs: int = 0
    windows: tuple[Window, Window] | None = None
    stores_output: bool = True
    conv: ConvParams | None = None


def _conv(layer: L._ConvNd, x: Any, where: str) -> Effect:
    nd, x_shape = layer._nd, tuple(x.shape)
    if len(x_shape) != nd + 2:
        raise ValueError(f"{where}: expected a {nd + 2}-D input, got shape {x_shape}")
    bias = None if layer.bias is None else layer.bias.shape
    p = conv_params(
        where,
        x_shape,
        layer.weight.shape,
        bias,
        layer.stride,
        layer.padding,
        layer.dilation,
        layer.groups,
        layer.padding_mode,
        x.dtype,
    )
    out = p.y_shape if nd == 2 else (p.N, p.K, p.Q)
    windows = tuple(
        Window(n, k, s, pad[0], pad[1], d, o)
        for n, k, s, pad, d, o in zip((p.H, p.W), (p.R, p.S), p.stride, p.padding, p.dilation, (p.P, p.Q))
    )
    return Effect(out, p.macs, windows, conv=p)


def _conv_transpose(layer: ConvTranspose2d, x: Any, where: str) -> Effect:
    """MACs as torch's flop counter counts a transposed conv: every input element times every weight of its
    group. It scatters rather than slides a window: no windows, and the receptive-field columns pass through."""
    _check_4d(x, where)
    bias = None if layer.bias is None else layer.bias.shape
    args = layer.stride, layer.padding, layer.output_padding, layer.groups, layer.dilation, x.dtype
    p = conv_transpose_params(where, tuple(x.shape), layer.weight.shape, bias, *args)
    return Effect(p.y_shape, p.macs)


def _pool(layer: L.MaxPool2d | L.AvgPool2d, x: Any, where: str) -> Effect:
    _check_4d(x, where)
    p = pool_params(
        where,
        tuple(x.shape),
        layer.kernel_size,
        layer.stride,
        layer.padding,
        getattr(layer, "dilation", 1),
        layer.ceil_mode,
        getattr(layer, "count_include_pad", True),
        x.dtype,
    )
    windows = tuple(
        Window(n, k, s, pad, pad, d, o)
        for n, k, s, pad, d, o in zip((p.H, p.W), p.kernel, p.stride, p.padding, p.dilation, (p.P, p.Q))
    )
    return Effect(p.y_shape, windows=windows)


def _adaptive_window(in_size: int, out_size: int) -> Window:
    """The largest window and the largest step between windows (exact when out_size divides in_size)."""
    starts, ends = adaptive_windows(in_size, out_size)
    step = int(np.diff(starts).max()) if out_size > 1 else in_size
    return Window(in_size, int((ends - starts).max()), max(step, 1), out_size=out_size)


def _adaptive(layer: L.AdaptiveAvgPool2d, x: Any, where: str) -> Effect:
    _check_4d(x, where)
    p = adaptive_pool_params(where, tuple(x.shape), layer.output_size, x.dtype)
    identity = (p.P, p.Q) == (p.H, p.W)  # torchvision's VGG/AlexNet pools at their design size
    return Effect(
        p.y_shape, windows=(_adaptive_window(p.H, p.P), _adaptive_window(p.W, p.Q)), stores_output=not identity
    )


def _batch_norm(layer: L.BatchNorm2d, x: Any, where: str) -> Effect:
    _check_4d(x, where)
    if x.shape[1] != layer.num_features:
        raise ValueError(
            f"{where}: input shape {tuple(x.shape)} has {x.shape[1]} channels, the layer {layer.num_features}"
        )
    return Effect(tuple(x.shape))


def _linear(layer: L.Linear, x: Any, where: str) -> Effect:
    x_shape = tuple(x.shape)
    if not x_shape or x_shape[-1] != layer.in_features:
        raise ValueError(f"{where}: input shape {x_shape} must end in in_features={layer.in_features}")
    rows = math.prod(x_shape[:-1])
    return Effect((*x_shape[:-1], layer.out_features), rows * layer.in_features * layer.out_features)


def _check_4d(x: Any, where: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{where}: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")


Rule = Callable[[Any, Any, str], Effect]
_RULES: tuple[tuple[type | tuple[type, ...], Rule], ...] = (
    (L._ConvNd, _conv),
    (ConvTranspose2d, _conv_transpose),
    (L.MaxPool2d, _pool),
    (L.AvgPool2d, _pool),
    (L.AdaptiveAvgPool2d, _adaptive),
    (L.BatchNorm2d, _batch_norm),
    # normalisations, LRN across channels included: shape kept, no products to count
    ((GroupNorm, LayerNorm, InstanceNorm2d, LocalResponseNorm), lambda layer, x, where: Effect(tuple(x.shape))),
    (L.Linear, _linear),
    (L.ReLU, lambda layer, x, where: Effect(tuple(x.shape), stores_output=not layer.inplace)),
    (Dropout, lambda layer, x, where: Effect(tuple(x.shape), stores_output=False)),  # eval mode: identity
)


def rule_for(layer: Any) -> Rule | None:
    for cls, rule in _RULES:
        if isinstance(layer, cls):
            return rule
    return None
