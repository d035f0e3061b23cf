"""The public functional API of the convolutions: validate -> params -> plan, for each op.

Each public op is a *planner* made public by fastconv.plan_cache.public: it validates the arguments, builds the
params and returns a `Plan` (fastconv.plan) whose runner does the array work. The planner runs once per call
signature; later calls with the same signature run the cached plan. Runners are module-level functions bound to
the params with functools.partial, so no plan holds an array. Linear is in fastconv.functional_linear, the
transposed convolution in fastconv.functional_transpose, pooling, batch norm and ReLU in fastconv.functional_pool,
the group, layer and instance norms in fastconv.functional_norm.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from . import padding
from .arrays import check_array, check_same, is_channels_last, native, native_channels_last
from .params import ConvParams, check_grad_out, conv_params
from .plan import ArraySpec, Plan, backward_specs, make_plan, spec
from .plan_cache import public
from .precision import resolve as resolve_precision
from .unbatched import Batched

# unbatched inputs ((C, H, W) for conv2d, (C, L) for conv1d), as torch: the backward's x decides, grad_x follows
CONV2D_BACKWARD, CONV1D_BACKWARD = (Batched(n, key=1, arrays=(0, 1), outputs=(0,)) for n in (4, 3))
CONV2D, CONV1D = Batched(4, backward=CONV2D_BACKWARD), Batched(3, backward=CONV1D_BACKWARD)


# ---------------------------------------------------------------------------------------------- conv
def _conv_params(
    fn: str,
    x: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding_: Any,
    dilation: Any,
    groups: Any,
    padding_mode: Any,
    precision: str | None,
) -> ConvParams:
    nd = 2 if fn.startswith("conv2d") else 1
    axes, waxes = ("(N, C, H, W)", "(K, C/groups, R, S)") if nd == 2 else ("(N, C, L)", "(K, C/groups, S)")
    axes += " or unbatched " + axes.replace("N, ", "")
    check_array(fn, "x", x, nd + 2, axes)
    check_array(fn, "weight", weight, nd + 2, waxes)
    if bias is not None:
        check_array(fn, "bias", bias, 1, "(K,)")
    _, dtype = check_same(fn, {"x": x, "weight": weight, "bias": bias})
    p = conv_params(
        fn,
        tuple(x.shape),
        tuple(weight.shape),
        None if bias is None else tuple(bias.shape),
        stride,
        padding_,
        dilation,
        groups,
        padding_mode,
        dtype,
        is_channels_last(x),
    )
    prec = resolve_precision(fn, precision)
    return p if prec == "fp32" else replace(p, precision=prec)


def _as2d(a: Any, nd: int) -> Any:
    """conv1d arrays (…, L) viewed as conv2d arrays (…, 1, L)."""
    return a if a is None or nd == 2 else a.reshape(a.shape[:2] + (1,) + a.shape[2:])


def _zero_padded(p: ConvParams) -> ConvParams:
    """The params the kernels see: p itself for zero padding; else those of the explicitly padded input."""
    return p if p.padding_mode == "zeros" else p.padded()


def _y_shape(p: ConvParams, nd: int) -> tuple:
    return p.y_shape if nd == 2 else (p.N, p.K, p.Q)


def _run_conv(p: ConvParams, nd: int, plan: Plan, x: Any, weight: Any, bias: Any) -> Any:
    step = plan.steps[0]
    x2 = native_channels_last(x) if step.layout == "channels_last" else native(_as2d(x, nd))
    if step.params is not p:
        x2 = padding.pad(x2, p)
    y = plan.fns["conv2d"](step.params, x2, native(_as2d(weight, nd)), native(bias))
    return y if nd == 2 else y.reshape(p.N, p.K, p.Q)


def _plan_conv(
    fn: str,
    x: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding_: Any,
    dilation: Any,
    groups: Any,
    padding_mode: Any,
    backend: str | None,
    algo: str,
    precision: str | None,
    need_backward: bool,
) -> Plan:
    p = _conv_params(fn, x, weight, bias, stride, padding_, dilation, groups, padding_mode, precision)
    nd = x.ndim - 2
    specs = {"x": spec(x, layout_matters=True), "weight": spec(weight), "bias": spec(bias)}
    return make_plan(
        fn,
        p,
        [("conv2d", _zero_padded(p))],
        partial(_run_conv, p, nd),
        specs,
        backend,
        algo,
        partial(_backward_of_conv, f"{fn}_backward", nd),
        need_backward,
    )


@public(3, CONV2D, low_dtypes=True)
def conv2d(
    x,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    padding_mode="zeros",
    *,
    backend: str | None = None,
    algo: str = "auto",
    precision: str | None = None,
    need_backward: bool = False,
) -> Plan:
    """2-D convolution (cross-correlation, as PyTorch) of x (N,C,H,W) with weight (K,C/groups,R,S).

    padding: int, (pad_h, pad_w), ((top, bottom), (left, right)), 'valid' or 'same' (any stride; the odd pad
    goes bottom/right). padding_mode: 'zeros', 'reflect', 'replicate' or 'circular'. precision: 'fp32', 'bf16' or
    'tf32' (fastconv.precision; None: the use_precision context, else 'fp32'). Returns y (N,K,P,Q) of the caller's
    array kind.
    """
    return _plan_conv(
        "conv2d",
        x,
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        backend,
        algo,
        precision,
        need_backward,
    )


@public(3, CONV1D, low_dtypes=True)
def conv1d(
    x,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    padding_mode="zeros",
    *,
    backend: str | None = None,
    algo: str = "auto",
    precision: str | None = None,
    need_backward: bool = False,
) -> Plan:
    """1-D convolution of x (N,C,L) with weight (K,C/groups,S); padding: int, (left, right), 'valid', 'same'."""
    return _plan_conv(
        "conv1d",
        x,
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        backend,
        algo,
        precision,
        need_backward,
    )


def _run_conv_backward(p: ConvParams, nd: int, plan: Plan, grad_out: Any, x: Any, weight: Any) -> tuple:
    fns, zp = plan.fns, plan.steps[0].params if plan.steps else p
    gy, w2 = native(_as2d(grad_out, nd)), native(_as2d(weight, nd))
    gx = gw = gb = None
    data, wgrad, bias = fns.get("conv2d_bwd_data"), fns.get("conv2d_bwd_weight"), fns.get("conv2d_bwd_bias")
    if data is not None:
        gx = data(zp, gy, w2)
        if zp is not p:
            gx = padding.pad_backward(gx, p)
        if nd != 2:
            gx = gx.reshape(plan.specs[1].shape)
    if wgrad is not None:
        x2 = native(_as2d(x, nd))
        gw = wgrad(zp, gy, x2 if zp is p else padding.pad(x2, p))
        if nd != 2:
            gw = gw.reshape(plan.specs[2].shape)
    if bias is not None:
        gb = bias(zp, gy)
    return gx, gw, gb


def _conv_backward_plan(
    fn: str,
    p: ConvParams,
    nd: int,
    specs: dict[str, ArraySpec | None],
    need_input: bool,
    need_weight: bool,
    need_bias: bool,
    backend: str | None,
    algo: str,
) -> Plan:
    zp = _zero_padded(p)
    wanted = {"conv2d_bwd_data": need_input, "conv2d_bwd_weight": need_weight, "conv2d_bwd_bias": need_bias}
    steps = [(op, zp) for op, need in wanted.items() if need]
    return make_plan(fn, p, steps, partial(_run_conv_backward, p, nd), specs, backend, algo)


def _backward_of_conv(
    fn: str, nd: int, forward: Plan, need_input: bool = True, need_weight: bool = True, need_bias: bool = True
) -> Plan:
    """The backward plan of a conv forward plan: same params, the forward's backend."""
    return _conv_backward_plan(
        fn,
        forward.params,
        nd,
        backward_specs(forward, _y_shape(forward.params, nd)),
        need_input,
        need_weight,
        need_bias,
        forward.backend,
        "auto",
    )


def _plan_conv_backward(
    fn: str,
    grad_out: Any,
    x: Any,
    weight: Any,
    stride: Any,
    padding_: Any,
    dilation: Any,
    groups: Any,
    padding_mode: Any,
    need_input: bool,
    need_weight: bool,
    need_bias: bool,
    backend: str | None,
    algo: str,
    precision: str | None,
) -> Plan:
    p = _conv_params(fn, x, weight, None, stride, padding_, dilation, groups, padding_mode, precision)
    nd = x.ndim - 2
    check_array(fn, "grad_out", grad_out, nd + 2, "(N, K, P, Q)" if nd == 2 else "(N, K, Q)")
    check_same(fn, {"x": x, "grad_out": grad_out})
    check_grad_out(fn, grad_out.shape, _y_shape(p, nd), "forward")
    specs = {"grad_out": spec(grad_out), "x": spec(x, layout_matters=True), "weight": spec(weight)}
    return _conv_backward_plan(fn, p, nd, specs, bool(need_input), bool(need_weight), bool(need_bias), backend, algo)


@public(3, CONV2D_BACKWARD, low_dtypes=True)
def conv2d_backward(
    grad_out,
    x,
    weight,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    padding_mode="zeros",
    *,
    need_input=True,
    need_weight=True,
    need_bias=True,
    backend: str | None = None,
    algo: str = "auto",
    precision: str | None = None,
) -> Plan:
    """Gradients of conv2d: returns (grad_x, grad_weight, grad_bias), None for what was not asked."""
    return _plan_conv_backward(
        "conv2d_backward",
        grad_out,
        x,
        weight,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        need_input,
        need_weight,
        need_bias,
        backend,
        algo,
        precision,
    )


@public(3, CONV1D_BACKWARD, low_dtypes=True)
def conv1d_backward(
    grad_out,
    x,
    weight,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    padding_mode="zeros",
    *,
    need_input=True,
    need_weight=True,
    need_bias=True,
    backend: str | None = None,
    algo: str = "auto",
    precision: str | None = None,
) -> Plan:
    """Gradients of conv1d: returns (grad_x, grad_weight, grad_bias), None for what was not asked."""
    return _plan_conv_backward(
        "conv1d_backward",
        grad_out,
        x,
        weight,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        need_input,
        need_weight,
        need_bias,
        backend,
        algo,
        precision,
    )
