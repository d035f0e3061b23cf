"""ConvTranspose2d over fastconv.conv_transpose2d, as torch.nn.ConvTranspose2d (the conventions of
fastconv.nn.layers: the functional op validates the call, a training forward saves its plan and x)."""

from __future__ import annotations

from typing import Any

from .. import functional_transpose as FT
from ..params import _int_tuple
from . import init
from .layers import _run, _weighted_backward, check_channels
from .module import Layer


class ConvTranspose2d(Layer):
    """2-D transposed convolution over (N, C, H, W) or unbatched (C, H, W), as torch.nn.ConvTranspose2d: weight
    (in_channels, out_channels/groups, *kernel_size), bias (out_channels,), torch's initialisation (fan-in from
    the weight's second axis, as torch computes it). `forward` takes no output_size: give output_padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple,
        stride: int | tuple = 1,
        padding: int | tuple = 0,
        output_padding: int | tuple = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple = 1,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        fn = "ConvTranspose2d"
        check_channels(fn, in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ValueError(f"{fn}: only padding_mode='zeros' is supported (as in torch), got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.padding_mode = padding_mode
        self.kernel_size = _int_tuple(fn, "kernel_size", kernel_size, 2, 1)
        self.stride = _int_tuple(fn, "stride", stride, 2, 1)
        self.padding = _int_tuple(fn, "padding", padding, 2, 0)
        self.output_padding = _int_tuple(fn, "output_padding", output_padding, 2, 0)
        self.dilation = _int_tuple(fn, "dilation", dilation, 2, 1)
        for i, name in enumerate("HW"):
            if self.output_padding[i] >= max(self.stride[i], self.dilation[i]):
                raise ValueError(
                    f"{fn}: 'output_padding' {self.output_padding} must be smaller than stride {self.stride} or "
                    f"dilation {self.dilation} along {name}"
                )
        self.weight = init.new_parameter((in_channels, out_channels // groups, *self.kernel_size))
        self.bias = init.new_parameter((out_channels,)) if bias else None
        init.default_weight_and_bias(self.weight, self.bias)

    optional_input_grad = True

    def forward_op(self, x: Any) -> tuple[Any, Any]:
        b = None if self.bias is None else self.bias.data
        args = self.stride, self.padding, self.output_padding, self.groups, self.dilation
        y, plan = _run(self, FT.conv_transpose2d, x, self.weight.data, b, *args)
        return y, (plan, x)

    def backward_op(self, saved: tuple, gy: Any, need_input: bool = True) -> Any:
        return _weighted_backward(self, saved, gy, need_input)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        for name, default in (("padding", (0, 0)), ("output_padding", (0, 0)), ("dilation", (1, 1)), ("groups", 1)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s + ("" if self.bias is not None else ", bias=False")
