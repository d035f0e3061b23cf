"""Layers over the fastconv kernels: Conv2d, Conv1d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d,
Linear.

Each calls the public functional API with `backend=self.backend`, so it runs on whatever backend is selected
(`Module.to(name)`, `fastconv.use_backend`, or the array kind's default). Constructor arguments and defaults are
PyTorch's; validation of the call itself happens in the functional op. In training mode a layer runs the plan of
its call planned with need_backward=True (fastconv.plan: looked up by the input's signature, so each input
signature keeps its plan) and saves it, and its backward runs that plan's backward plan: no validation or
selection is repeated. A layer called again as it was last called runs that call's plan without a lookup
(_run). Each forward saves only what its backward reads: conv, linear, max pool and batch norm their input, ReLU
its output, average pools nothing but the input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dispatch, plan_cache, precision
from .. import functional as F
from .. import functional_linear as FL
from .. import functional_pool as FP
from ..arrays import array_kind, array_module
from ..params import PADDING_MODES, _int_tuple
from . import init
from . import tape as _tape
from .module import Layer, Parameter


def _add_grad(p: Parameter | None, g: Any) -> None:
    if p is not None and g is not None:
        p.grad = g if p.grad is None else p.grad + g


def _run(layer: Layer, op: Any, *args: Any) -> tuple[Any, Any]:
    """op(*args) on the layer's backend, through the plan of the call; while a forward is recorded, the plan is
    planned for a backward and returned as the second value for the backward to use (else None).

    The layer keeps the plan of its last call with what it was looked up by: the plan cache's generation, the
    recording, backend and precision state, the layer's backend, the identity of each non-array argument (its
    own attributes, kept alive by the memo) and each array's (type, shape, strides, dtype). A call that matches
    runs that plan without binding and hashing the whole call; any other goes through the plan cache."""
    record, found = _tape.recording(), op._op
    arrays, others = found.split(args)
    key = (
        plan_cache.CACHE.generation,
        record,
        dispatch.state(),
        precision.current(),
        layer.backend,
        tuple(map(id, others)),
        *[None if a is None else (type(a), a.shape, a.strides, a.dtype) for a in arrays],
    )
    memo = layer.__dict__.get("_plan_memo")
    if memo is not None and memo[0] == key:
        plan = memo[1]
    else:
        plan = found.lookup(found.bind(args, {"backend": layer.backend}), need_backward=record)
        object.__setattr__(layer, "_plan_memo", (key, plan, args))  # args: their ids stay theirs
    return plan._run(*arrays), plan if record else None  # looked up by these arrays: no check needed


def _data(p: Parameter | None) -> Any:
    return None if p is None else p.data


def check_channels(fn: str, in_channels: int, out_channels: int, groups: int) -> None:
    """A conv layer's channel counts: ints >= 1, groups dividing both."""
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        _int_tuple(fn, name, v, 1, 1)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{fn}: groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")


def _weighted_backward(layer: Layer, saved: tuple, gy: Any, need_input: bool) -> Any:
    """The backward of a layer with a weight and an optional bias (conv, transposed conv, linear) saved as
    (forward plan, x): the forward plan's backward for the gradients wanted, the parameters' added to theirs."""
    plan, x = saved
    params = layer._parameters  # a dict lookup, not Module.__getattr__, on this per-call path
    weight, bias = params["weight"], params.get("bias")
    backward = plan.backward(need_input=need_input, need_bias=bias is not None)
    gx, gw, gb = backward.run(gy, x, weight.data)
    _add_grad(weight, gw)
    _add_grad(bias, gb)
    return gx


def _shape_only(x: Any) -> Any:
    """A zero-strided stand-in with x's shape and dtype: what average pooling's backward needs of x (its
    backend op reads only grad_out), without keeping x alive."""
    xp = array_module(array_kind(x))
    return xp.broadcast_to(xp.zeros((), x.dtype), x.shape)


class _ConvNd(Layer):
    """Conv2d and Conv1d: weight (out_channels, in_channels/groups, *kernel), bias (out_channels,)."""

    _nd = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple,
        stride: int | tuple = 1,
        padding: int | tuple | str = 0,
        dilation: int | tuple = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        fn, nd = type(self).__name__, self._nd
        check_channels(fn, in_channels, out_channels, groups)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{fn}: 'padding_mode' must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _int_tuple(fn, "kernel_size", kernel_size, nd, 1)
        self.stride = _int_tuple(fn, "stride", stride, nd, 1)
        self.dilation = _int_tuple(fn, "dilation", dilation, nd, 1)
        self.padding = (padding,) * nd if isinstance(padding, int) else padding
        self.padding_mode = padding_mode
        self.weight = init.new_parameter((out_channels, in_channels // groups, *self.kernel_size))
        self.bias = init.new_parameter((out_channels,)) if bias else None
        init.default_weight_and_bias(self.weight, self.bias)

    def _args(self) -> tuple:
        return self.stride, self.padding, self.dilation, self.groups, self.padding_mode

    optional_input_grad = True

    def forward_op(self, x: Any) -> tuple[Any, Any]:
        conv = F.conv2d if self._nd == 2 else F.conv1d
        params = self._parameters
        y, plan = _run(self, conv, x, params["weight"].data, _data(params.get("bias")), *self._args())
        return y, (plan, x)

    def backward_op(self, saved: tuple, gy: Any, need_input: bool = True) -> Any:
        return _weighted_backward(self, saved, gy, need_input)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        for name, default in (
            ("padding", (0,) * self._nd),
            ("dilation", (1,) * self._nd),
            ("groups", 1),
            ("padding_mode", "zeros"),
        ):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W), as torch.nn.Conv2d (padding may also be ((top, bottom), (left, right)),
    and 'same' works with any stride)."""

    _nd = 2


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L), as torch.nn.Conv1d."""

    _nd = 1


def _channel_norm_state(
    layer: Layer, num_features: int, eps: float, momentum: float | None, affine: bool, track_running_stats: bool
) -> None:
    """The state torch's batch and instance norm layers share: per-channel weight and bias (ones and zeros) when
    affine; running mean, variance and batch count when tracking."""
    _int_tuple(type(layer).__name__, "num_features", num_features, 1, 1)
    layer.num_features, layer.eps, layer.momentum = num_features, eps, momentum
    layer.affine, layer.track_running_stats = affine, track_running_stats
    layer.weight = init.new_parameter((num_features,), 1.0) if affine else None
    layer.bias = init.new_parameter((num_features,), 0.0) if affine else None
    tracked = track_running_stats
    layer.register_buffer("running_mean", np.zeros(num_features, np.float32) if tracked else None)
    layer.register_buffer("running_var", np.ones(num_features, np.float32) if tracked else None)
    layer.register_buffer("num_batches_tracked", np.zeros((), np.int64) if tracked else None)


class BatchNorm2d(Layer):
    """Batch norm over (N, C, H, W) as torch.nn.BatchNorm2d: batch statistics in training mode (updating the
    running ones with `momentum`, or a cumulative average when momentum is None), running statistics in eval
    mode; without track_running_stats always the batch's."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        _channel_norm_state(self, num_features, eps, momentum, affine, track_running_stats)

    def forward_op(self, x: Any) -> tuple[Any, Any]:
        if getattr(x, "ndim", None) != 4:
            raise ValueError(f"BatchNorm2d: expected a 4-D input (N, C, H, W), got shape {getattr(x, 'shape', x)}")
        batch_stats = self.training or self.running_mean is None
        momentum = self.momentum
        if self.training and self.running_mean is not None:
            self.num_batches_tracked += 1
            if momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        arrays = (x, self.running_mean, self.running_var, _data(self.weight), _data(self.bias))
        y, plan = _run(self, FP.batch_norm, *arrays, batch_stats, momentum or 0.0, self.eps)
        return y, (plan, x)

    def backward_op(self, saved: tuple, gy: Any) -> Any:
        plan, x = saved
        gx, gw, gb = plan.backward().run(gy, x, self.running_mean, self.running_var, _data(self.weight))
        _add_grad(self.weight, gw)
        _add_grad(self.bias, gb)
        return gx

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class ReLU(Layer):
    """max(x, 0). `inplace` is accepted for torchvision's constructors; the output is always a new array (the
    tape tells arrays apart by identity, so nothing is overwritten)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward_op(self, x: Any) -> tuple[Any, Any]:
        y, plan = _run(self, FP.relu, x)
        return y, (plan, y)

    def backward_op(self, saved: tuple, gy: Any) -> Any:
        plan, y = saved
        return plan.backward().run(gy, y)


class MaxPool2d(Layer):
    """As torch.nn.MaxPool2d (return_indices is not supported by the layer; the functional op has it)."""

    def __init__(
        self,
        kernel_size: int | tuple,
        stride: int | tuple | None = None,
        padding: int | tuple = 0,
        dilation: int | tuple = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        if return_indices:
            raise ValueError(
                "MaxPool2d: return_indices=True is not supported by the layer; use "
                "fastconv.max_pool2d(..., return_indices=True)"
            )
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def _args(self) -> tuple:
        return self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode

    def forward_op(self, x: Any) -> tuple[Any, Any]:
        y, plan = _run(self, FP.max_pool2d, x, *self._args())
        return y, (plan, x)

    def backward_op(self, saved: tuple, gy: Any) -> Any:
        plan, x = saved
        return plan.backward().run(gy, x)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool2d(Layer):
    """As torch.nn.AvgPool2d (without divisor_override)."""

    def __init__(
        self,
        kernel_size: int | tuple,
        stride: int | tuple | None = None,
        padding: int | tuple = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def _args(self) -> tuple:
        return self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad

    def forward_op(self, x: Any) -> tuple[Any, Any]:
        y, plan = _run(self, FP.avg_pool2d, x, *self._args())
        return y, (plan, _shape_only(x))

    def backward_op(self, saved: tuple, gy: Any) -> Any:
        plan, like_x = saved
        return plan.backward().run(gy, like_x)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Layer):
    """As torch.nn.AdaptiveAvgPool2d: output_size an int or pair (None keeps that input size)."""

    def __init__(self, output_size: int | tuple) -> None:
        super().__init__()
        self.output_size = output_size

    def forward_op(self, x: Any) -> tuple[Any, Any]:
        y, plan = _run(self, FP.adaptive_avg_pool2d, x, self.output_size)
        return y, (plan, _shape_only(x))

    def backward_op(self, saved: tuple, gy: Any) -> Any:
        plan, like_x = saved
        return plan.backward().run(gy, like_x)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Linear(Layer):
    """y = x @ weight.T + bias over the last dimension, as torch.nn.Linear; weight (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        _int_tuple("Linear", "in_features", in_features, 1, 1)
        _int_tuple("Linear", "out_features", out_features, 1, 1)
        self.in_features, self.out_features = in_features, out_features
        self.weight = init.new_parameter((out_features, in_features))
        self.bias = init.new_parameter((out_features,)) if bias else None
        init.default_weight_and_bias(self.weight, self.bias)

    optional_input_grad = True

    def forward_op(self, x: Any) -> tuple[Any, Any]:
        params = self._parameters
        y, plan = _run(self, FL.linear, x, params["weight"].data, _data(params.get("bias")))
        return y, (plan, x)

    def backward_op(self, saved: tuple, gy: Any, need_input: bool = True) -> Any:
        return _weighted_backward(self, saved, gy, need_input)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
