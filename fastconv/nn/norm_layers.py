"""GroupNorm, LayerNorm and InstanceNorm2d, as torch.nn's (constructor arguments, parameters, buffers, state_dict
keys). They run fastconv.group_norm / layer_norm / instance_norm through their plans, as the layers of layers.py."""

from __future__ import annotations

from typing import Any

from .. import functional_norm as FN
from ..params import _int_tuple
from . import init
from .layers import _add_grad, _channel_norm_state, _run
from .module import Layer


class _Norm(Layer):
    """A norm layer: weight and bias (ones and zeros) when affine; backward through the saved plan."""

    def _affine(self, shape: tuple, affine: bool, bias: bool = True) -> None:
        self.weight = init.new_parameter(shape, 1.0) if affine else None
        self.bias = init.new_parameter(shape, 0.0) if affine and bias else None

    def _data(self) -> tuple[Any, Any]:
        return (None if self.weight is None else self.weight.data), (None if self.bias is None else self.bias.data)

    def backward_op(self, saved: tuple, gy: Any) -> Any:
        plan, x = saved
        backward = plan.backward()
        arrays = (gy, x, self._data()[0]) + ((self.running_mean, self.running_var) if len(backward.arrays) > 3 else ())
        gx, gw, gb = backward.run(*arrays)
        _add_grad(self.weight, gw)
        _add_grad(self.bias, gb)
        return gx


class GroupNorm(_Norm):
    """As torch.nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        _int_tuple("GroupNorm", "num_groups", num_groups, 1, 1)
        _int_tuple("GroupNorm", "num_channels", num_channels, 1, 1)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_groups={num_groups} must divide num_channels={num_channels}")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        self._affine((num_channels,), affine)

    def forward_op(self, x: Any) -> tuple[Any, Any]:
        w, b = self._data()
        y, plan = _run(self, FN.group_norm, x, self.num_groups, w, b, self.eps)
        return y, (plan, x)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class LayerNorm(_Norm):
    """As torch.nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True)."""

    def __init__(
        self, normalized_shape: int | tuple, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True
    ) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape = _int_tuple("LayerNorm", "normalized_shape", shape, len(shape), 1)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self._affine(self.normalized_shape, elementwise_affine, bias)

    def forward_op(self, x: Any) -> tuple[Any, Any]:
        w, b = self._data()
        y, plan = _run(self, FN.layer_norm, x, self.normalized_shape, w, b, self.eps)
        return y, (plan, x)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class InstanceNorm2d(_Norm):
    """As torch.nn.InstanceNorm2d(num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False):
    each sample's channels normalised by their own statistics; with track_running_stats, running statistics are
    updated in training mode and used in eval mode."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
    ) -> None:
        super().__init__()
        _channel_norm_state(self, num_features, eps, momentum, affine, track_running_stats)

    def forward_op(self, x: Any) -> tuple[Any, Any]:
        if getattr(x, "ndim", None) != 4:
            raise ValueError(f"InstanceNorm2d: expected a 4-D input (N, C, H, W), got shape {getattr(x, 'shape', x)}")
        use_input_stats = self.training or not self.track_running_stats  # num_batches_tracked stays, as torch's
        w, b = self._data()
        momentum = 0.0 if self.momentum is None else self.momentum  # as torch's _InstanceNorm
        y, plan = _run(
            self, FN.instance_norm, x, self.running_mean, self.running_var, w, b, use_input_stats, momentum, self.eps
        )
        return y, (plan, x)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )
