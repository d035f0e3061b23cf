"""conv_transpose2d and its backward, as torch.nn.functional's: planned onto the convolution kernels.

A transposed convolution is the data gradient of the convolution fastconv.params.transpose describes, so no
kernel of its own is needed: its forward runs that convolution's `conv2d_bwd_data`, its input gradient the
convolution's forward `conv2d`, its weight gradient `conv2d_bwd_weight` with the roles of x and grad_out swapped
(the convolution's grad_out is x, its input is grad_out) and its bias gradient the channel sums of grad_out
(`conv2d_bwd_bias` of a 1x1 convolution over it). Every backend that registers those ops runs it, each selection
and `algo=` choosing among that op's implementations.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from .arrays import array_kind, array_module, check_array, check_same, native
from .functional import CONV2D, CONV2D_BACKWARD
from .params import ConvTransposeParams, check_grad_out, conv_transpose_params
from .plan import ArraySpec, Plan, backward_specs, make_plan, spec
from .plan_cache import public
from .precision import resolve as resolve_precision

AXES = "(N, C_in, H, W) or unbatched (C_in, H, W)"


def _params(
    fn: str,
    x: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: Any,
    dilation: Any,
    precision: str | None,
) -> ConvTransposeParams:
    check_array(fn, "x", x, 4, AXES)
    check_array(fn, "weight", weight, 4, "(C_in, C_out/groups, R, S)")
    if bias is not None:
        check_array(fn, "bias", bias, 1, "(C_out,)")
    _, dtype = check_same(fn, {"x": x, "weight": weight, "bias": bias})
    shapes = tuple(x.shape), tuple(weight.shape), None if bias is None else tuple(bias.shape)
    p = conv_transpose_params(fn, *shapes, stride, padding, output_padding, groups, dilation, dtype)
    prec = resolve_precision(fn, precision)
    return p if prec == "fp32" else replace(p, conv=replace(p.conv, precision=prec))


def _as_conv_grad_out(p: ConvTransposeParams, x: Any) -> Any:
    """x as the equivalent convolution's output gradient: x itself, or x followed by the convolution's extra
    output rows and columns as zeros."""
    if p.extra == (0, 0):
        return x
    xp = array_module(array_kind(x))
    out = xp.zeros(p.conv.y_shape, x.dtype)
    out[:, :, : x.shape[2], : x.shape[3]] = x
    return out


def _run_forward(p: ConvTransposeParams, plan: Plan, x: Any, weight: Any, bias: Any) -> Any:
    y = plan.fns["conv2d_bwd_data"](p.conv, _as_conv_grad_out(p, native(x)), native(weight))
    if bias is not None:
        y += native(bias).reshape(1, -1, 1, 1)
    return y


def _run_backward(p: ConvTransposeParams, plan: Plan, grad_out: Any, x: Any, weight: Any) -> tuple:
    fns, gy = plan.fns, native(grad_out)
    gx = gw = gb = None
    if "conv2d" in fns:
        gx = fns["conv2d"](p.conv, gy, native(weight), None)
        if p.extra != (0, 0):
            gx = native(gx[:, :, : p.x_shape[2], : p.x_shape[3]])
    if "conv2d_bwd_weight" in fns:
        gw = fns["conv2d_bwd_weight"](p.conv, _as_conv_grad_out(p, native(x)), gy)
    if "conv2d_bwd_bias" in fns:
        gb = fns["conv2d_bwd_bias"](p.bias_sums, gy)
    return gx, gw, gb


def _backward_plan(
    p: ConvTransposeParams,
    specs: dict[str, ArraySpec | None],
    needs: tuple[bool, bool, bool],
    backend: str | None,
    algo: str,
) -> Plan:
    ops = (("conv2d", p.conv), ("conv2d_bwd_weight", p.conv), ("conv2d_bwd_bias", p.bias_sums))
    steps = [step for step, need in zip(ops, needs) if need]
    return make_plan("conv_transpose2d_backward", p, steps, partial(_run_backward, p), specs, backend, algo)


def _backward_of_forward(
    forward: Plan, need_input: bool = True, need_weight: bool = True, need_bias: bool = True
) -> Plan:
    """The backward plan of a conv_transpose2d plan: same params, the forward's backend."""
    specs = backward_specs(forward, forward.params.y_shape)
    return _backward_plan(forward.params, specs, (need_input, need_weight, need_bias), forward.backend, "auto")


@public(3, CONV2D, low_dtypes=True)
def conv_transpose2d(
    x,
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    *,
    backend: str | None = None,
    algo: str = "auto",
    precision: str | None = None,
    need_backward: bool = False,
) -> Plan:
    """2-D transposed convolution (the gradient of conv2d w.r.t. its input), as torch.nn.functional's: x
    (N, C_in, H, W), weight (C_in, C_out/groups, R, S), bias (C_out,) or None; returns y (N, C_out, H_out, W_out)
    with H_out = (H-1)*stride - 2*padding + dilation*(R-1) + output_padding + 1 (and likewise W_out).
    output_padding (< stride or < dilation) adds rows and columns at the bottom and right. `algo` names a
    conv2d_bwd_data implementation."""
    fn = "conv_transpose2d"
    p = _params(fn, x, weight, bias, stride, padding, output_padding, groups, dilation, precision)
    specs = {"x": spec(x), "weight": spec(weight), "bias": spec(bias)}
    steps = [("conv2d_bwd_data", p.conv)]
    runner = partial(_run_forward, p)
    return make_plan(fn, p, steps, runner, specs, backend, algo, _backward_of_forward, need_backward)


@public(3, CONV2D_BACKWARD, low_dtypes=True)
def conv_transpose2d_backward(
    grad_out,
    x,
    weight,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    *,
    need_input=True,
    need_weight=True,
    need_bias=True,
    backend: str | None = None,
    algo: str = "auto",
    precision: str | None = None,
) -> Plan:
    """Gradients of conv_transpose2d: returns (grad_x, grad_weight, grad_bias), None for what was not asked.
    `algo` names a conv2d (input gradient) or conv2d_bwd_weight implementation."""
    fn = "conv_transpose2d_backward"
    p = _params(fn, x, weight, None, stride, padding, output_padding, groups, dilation, precision)
    check_array(fn, "grad_out", grad_out, 4, "(N, C_out, H_out, W_out)")
    check_same(fn, {"x": x, "grad_out": grad_out})
    check_grad_out(fn, grad_out.shape, p.y_shape, "transposed convolution")
    specs = {"grad_out": spec(grad_out), "x": spec(x), "weight": spec(weight)}
    needs = (bool(need_input), bool(need_weight), bool(need_bias))
    return _backward_plan(p, specs, needs, backend, algo)
