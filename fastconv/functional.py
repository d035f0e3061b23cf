"""The public functional API: validate -> params -> select -> run, for every op.

Each public op is written as a *planner*: it validates the arguments, builds the params and returns a `Call`
(fastconv.plan) that knows which registry ops it needs and how to run them. `fastconv.conv2d(...)` runs the plan;
`fastconv.select(fastconv.conv2d, ...)` returns the selected implementations without running anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import dispatch, padding
from .arrays import array_module, check_array, check_same, is_channels_last, native, native_channels_last
from .params import (
    ConvParams,
    LinearParams,
    adaptive_pool_params,
    batch_norm_params,
    check_grad_out,
    conv_params,
    linear_params,
    pool_params,
)
from .params import EltwiseParams as _Eltwise
from .plan import Call, public

NCHW = "(N, C, H, W)"


# ---------------------------------------------------------------------------------------------- conv
def _conv_call(
    fn: str, x: Any, weight: Any, bias: Any, stride: Any, padding_: Any, dilation: Any, groups: Any, padding_mode: Any
) -> tuple[ConvParams, str]:
    nd = 2 if fn.startswith("conv2d") else 1
    axes, waxes = ("(N, C, H, W)", "(K, C/groups, R, S)") if nd == 2 else ("(N, C, L)", "(K, C/groups, S)")
    check_array(fn, "x", x, nd + 2, axes)
    check_array(fn, "weight", weight, nd + 2, waxes)
    if bias is not None:
        check_array(fn, "bias", bias, 1, "(K,)")
    kind, dtype = check_same(fn, {"x": x, "weight": weight, "bias": bias})
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
    return p, kind


def conv_input(impl: dispatch.Impl, p: ConvParams, x: Any) -> Any:
    """x as `impl` reads it: a channels_last x stays so for an implementation registered to take one (no copy when
    it is native), anything else becomes C-contiguous NCHW."""
    return native_channels_last(x) if p.channels_last and impl.channels_last else native(x)


def _as2d(a: Any, nd: int) -> Any:
    """conv1d arrays (…, L) viewed as conv2d arrays (…, 1, L)."""
    return a if a is None or nd == 2 else a.reshape(a.shape[:2] + (1,) + a.shape[2:])


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
) -> Call:
    p, kind = _conv_call(fn, x, weight, bias, stride, padding_, dilation, groups, padding_mode)
    nd = x.ndim - 2
    zp = p.padded() if p.padding_mode != "zeros" else p

    def run(impl: dict[str, Callable]) -> Any:
        x2, w2 = conv_input(impl["conv2d"], zp, _as2d(x, nd)), native(_as2d(weight, nd))
        if zp is not p:
            x2 = padding.pad(x2, p)
        y = impl["conv2d"](zp, x2, w2, native(bias))
        return y if nd == 2 else y.reshape(p.N, p.K, p.Q)

    return Call(fn, kind, [("conv2d", zp)], run, backend, algo)


@public
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
) -> Call:
    """2-D convolution (cross-correlation, as PyTorch) of x (N,C,H,W) with weight (K,C/groups,R,S).

    padding: int, (pad_h, pad_w), ((top, bottom), (left, right)), 'valid' or 'same' (any stride; the odd pad
    goes bottom/right). padding_mode: 'zeros', 'reflect', 'replicate' or 'circular'. Returns y (N,K,P,Q) of the
    caller's array kind.
    """
    return _plan_conv("conv2d", x, weight, bias, stride, padding, dilation, groups, padding_mode, backend, algo)


@public
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
) -> Call:
    """1-D convolution of x (N,C,L) with weight (K,C/groups,S); padding: int, (left, right), 'valid', 'same'."""
    return _plan_conv("conv1d", x, weight, bias, stride, padding, dilation, groups, padding_mode, backend, algo)


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
) -> Call:
    p, kind = _conv_call(fn, x, weight, None, stride, padding_, dilation, groups, padding_mode)
    nd = x.ndim - 2
    check_array(fn, "grad_out", grad_out, nd + 2, "(N, K, P, Q)" if nd == 2 else "(N, K, Q)")
    check_same(fn, {"x": x, "grad_out": grad_out})
    check_grad_out(fn, grad_out.shape, p.y_shape if nd == 2 else (p.N, p.K, p.Q), "forward")
    zp = p.padded() if p.padding_mode != "zeros" else p
    wanted = {"conv2d_bwd_data": need_input, "conv2d_bwd_weight": need_weight, "conv2d_bwd_bias": need_bias}
    steps = [(op, zp) for op, need in wanted.items() if need]

    def run(impl: dict[str, Callable]) -> tuple[Any, Any, Any]:
        gy, w2 = native(_as2d(grad_out, nd)), native(_as2d(weight, nd))
        gx = gw = gb = None
        if need_input:
            gx = impl["conv2d_bwd_data"](zp, gy, w2)
            if zp is not p:
                gx = padding.pad_backward(gx, p)
            gx = gx.reshape(x.shape)
        if need_weight:
            x2 = native(_as2d(x, nd))
            gw = impl["conv2d_bwd_weight"](zp, gy, x2 if zp is p else padding.pad(x2, p)).reshape(weight.shape)
        if need_bias:
            gb = impl["conv2d_bwd_bias"](zp, gy)
        return gx, gw, gb

    return Call(fn, kind, steps, run, backend, algo)


@public
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
) -> Call:
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
    )


@public
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
) -> Call:
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
    )


# ---------------------------------------------------------------------------------------------- linear
def _linear_call(fn: str, x: Any, weight: Any, bias: Any) -> tuple[LinearParams, str]:
    check_array(fn, "x", x, None)
    check_array(fn, "weight", weight, 2, "(out_features, in_features)")
    if bias is not None:
        check_array(fn, "bias", bias, 1, "(out_features,)")
    kind, dtype = check_same(fn, {"x": x, "weight": weight, "bias": bias})
    return linear_params(
        fn, tuple(x.shape), tuple(weight.shape), None if bias is None else tuple(bias.shape), dtype
    ), kind


@public
def linear(x, weight, bias=None, *, backend: str | None = None, algo: str = "auto") -> Call:
    """Fully connected layer, as torch.nn.functional.linear: y = x @ weight.T + bias for x (*, in_features),
    weight (out_features, in_features) and bias (out_features,) or None; returns y (*, out_features)."""
    p, kind = _linear_call("linear", x, weight, bias)

    def run(impl: dict[str, Callable]) -> Any:
        y = impl["linear"](p, native(x).reshape(p.N, p.C), native(weight), native(bias))
        return y.reshape(p.y_shape)

    return Call("linear", kind, [("linear", p)], run, backend, algo)


@public
def linear_backward(
    grad_out,
    x,
    weight,
    *,
    need_input=True,
    need_weight=True,
    need_bias=True,
    backend: str | None = None,
    algo: str = "auto",
) -> Call:
    """Gradients of linear: returns (grad_x, grad_weight, grad_bias), None for what was not asked."""
    fn = "linear_backward"
    p, kind = _linear_call(fn, x, weight, None)
    check_array(fn, "grad_out", grad_out, None)
    check_same(fn, {"x": x, "grad_out": grad_out})
    check_grad_out(fn, grad_out.shape, p.y_shape, "linear")
    wanted = {"linear_bwd_data": need_input, "linear_bwd_weight": need_weight, "linear_bwd_bias": need_bias}

    def run(impl: dict[str, Callable]) -> tuple[Any, Any, Any]:
        gy = native(grad_out).reshape(p.N, p.K)
        gx = impl["linear_bwd_data"](p, gy, native(weight)).reshape(p.x_shape) if need_input else None
        gw = impl["linear_bwd_weight"](p, gy, native(x).reshape(p.N, p.C)) if need_weight else None
        return gx, gw, impl["linear_bwd_bias"](p, gy) if need_bias else None

    return Call(fn, kind, [(op, p) for op, need in wanted.items() if need], run, backend, algo)


# ---------------------------------------------------------------------------------------------- pooling
def _plan_pool(
    fn: str,
    op: str,
    x: Any,
    grad_out: Any,
    kernel_size: Any,
    stride: Any,
    padding_: Any,
    dilation: Any,
    ceil_mode: Any,
    count_include_pad: Any,
    backend: str | None,
    run: Callable[[Callable, Any, Any], Any],
) -> Call:
    check_array(fn, "x", x, 4, NCHW)
    arrays = {"x": x}
    if grad_out is not None:
        check_array(fn, "grad_out", grad_out, 4, "(N, C, P, Q)")
        arrays["grad_out"] = grad_out
    kind, dtype = check_same(fn, arrays)
    p = pool_params(fn, tuple(x.shape), kernel_size, stride, padding_, dilation, ceil_mode, count_include_pad, dtype)
    if grad_out is not None:
        check_grad_out(fn, grad_out.shape, p.y_shape, "pooling")
    return Call(fn, kind, [(op, p)], lambda impl: run(impl[op], p, native(grad_out)), backend, "auto")


@public
def max_pool2d(
    x,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode=False,
    return_indices=False,
    *,
    backend: str | None = None,
) -> Call:
    """Max pooling; with return_indices also the int64 index of each max in its (H*W) plane (-1 for a window
    that holds no input element, which only dilation can cause). NaN propagates."""

    def run(f, p, _):
        y, idx = f(p, native(x), bool(return_indices))
        return (y, idx) if return_indices else y

    return _plan_pool(
        "max_pool2d", "max_pool2d", x, None, kernel_size, stride, padding, dilation, ceil_mode, True, backend, run
    )


@public
def max_pool2d_backward(
    grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *, backend: str | None = None
) -> Call:
    """Gradient of max_pool2d w.r.t. x: each grad_out element goes to its window's (first) max."""
    return _plan_pool(
        "max_pool2d_backward",
        "max_pool2d_bwd",
        x,
        grad_out,
        kernel_size,
        stride,
        padding,
        dilation,
        ceil_mode,
        True,
        backend,
        lambda f, p, gy: f(p, gy, native(x)),
    )


@public
def avg_pool2d(
    x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, *, backend: str | None = None
) -> Call:
    """Average pooling with PyTorch's divisor rules (count_include_pad; windows clipped by ceil_mode)."""
    return _plan_pool(
        "avg_pool2d",
        "avg_pool2d",
        x,
        None,
        kernel_size,
        stride,
        padding,
        1,
        ceil_mode,
        count_include_pad,
        backend,
        lambda f, p, _: f(p, native(x)),
    )


@public
def avg_pool2d_backward(
    grad_out,
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    *,
    backend: str | None = None,
) -> Call:
    """Gradient of avg_pool2d w.r.t. x."""
    return _plan_pool(
        "avg_pool2d_backward",
        "avg_pool2d_bwd",
        x,
        grad_out,
        kernel_size,
        stride,
        padding,
        1,
        ceil_mode,
        count_include_pad,
        backend,
        lambda f, p, gy: f(p, gy),
    )


def _plan_adaptive(fn: str, op: str, x: Any, grad_out: Any, output_size: Any, backend: str | None) -> Call:
    check_array(fn, "x", x, 4, NCHW)
    arrays = {"x": x}
    if grad_out is not None:
        check_array(fn, "grad_out", grad_out, 4, "(N, C, P, Q)")
        arrays["grad_out"] = grad_out
    kind, dtype = check_same(fn, arrays)
    p = adaptive_pool_params(fn, tuple(x.shape), output_size, dtype)
    if grad_out is None:
        return Call(fn, kind, [(op, p)], lambda impl: impl[op](p, native(x)), backend, "auto")
    check_grad_out(fn, grad_out.shape, p.y_shape, "pooling")
    return Call(fn, kind, [(op, p)], lambda impl: impl[op](p, native(grad_out)), backend, "auto")


@public
def adaptive_avg_pool2d(x, output_size, *, backend: str | None = None) -> Call:
    """Adaptive average pooling to output_size (int or pair; None keeps that input size)."""
    return _plan_adaptive("adaptive_avg_pool2d", "adaptive_avg_pool2d", x, None, output_size, backend)


@public
def adaptive_avg_pool2d_backward(grad_out, x, output_size, *, backend: str | None = None) -> Call:
    """Gradient of adaptive_avg_pool2d w.r.t. x."""
    return _plan_adaptive("adaptive_avg_pool2d_backward", "adaptive_avg_pool2d_bwd", x, grad_out, output_size, backend)


@public
def global_avg_pool2d(x, *, backend: str | None = None) -> Call:
    """Mean over H and W: (N, C, H, W) -> (N, C, 1, 1)."""
    return _plan_adaptive("global_avg_pool2d", "global_avg_pool2d", x, None, 1, backend)


@public
def global_avg_pool2d_backward(grad_out, x, *, backend: str | None = None) -> Call:
    """Gradient of global_avg_pool2d w.r.t. x."""
    return _plan_adaptive("global_avg_pool2d_backward", "global_avg_pool2d_bwd", x, grad_out, 1, backend)


# ---------------------------------------------------------------------------------------------- batch norm
def _bn_call(fn: str, x: Any, arrays: dict[str, Any], training: Any, momentum: Any, eps: Any):
    check_array(fn, "x", x, (2, 3, 4), "(N, C[, L] | [, H, W])")
    for name, a in arrays.items():
        if a is not None:
            check_array(fn, name, a, 1, "(C,)")
    kind, dtype = check_same(fn, {"x": x, **arrays})
    shapes = {n: None if a is None else tuple(a.shape) for n, a in arrays.items()}
    p = batch_norm_params(fn, tuple(x.shape), shapes, training, momentum, eps, dtype)
    xp = array_module(kind)
    weight, bias = arrays.get("weight"), arrays.get("bias")
    w = xp.ones(p.C, dtype) if weight is None else native(weight)
    b = xp.zeros(p.C, dtype) if bias is None else native(bias)
    return p, kind, w, b


@public
def batch_norm(
    x, weight, bias, running_mean, running_var, training=False, momentum=0.1, eps=1e-5, *, backend: str | None = None
) -> Call:
    """Batch normalisation over x (N, C, ...). Training: normalise with the batch's biased variance and update
    running_mean/running_var in place (unbiased variance), as PyTorch. Eval: use the running statistics.
    weight/bias may be None (no affine); running stats may be None in training mode."""
    fn = "batch_norm"
    stats = {"running_mean": running_mean, "running_var": running_var}
    p, kind, w, b = _bn_call(fn, x, {"weight": weight, "bias": bias, **stats}, training, momentum, eps)

    def run(impl: dict[str, Callable]) -> Any:
        rm, rv = native(running_mean), native(running_var)
        y, mean, var = impl["batch_norm"](p, native(x), w, b, rm, rv)
        if p.training and running_mean is not None and p.N * p.M > 0:
            m, count = p.momentum, p.N * p.M
            running_mean[...] = (1 - m) * running_mean + m * mean
            running_var[...] = (1 - m) * running_var + m * var * (count / (count - 1))
        return y

    return Call(fn, kind, [("batch_norm", p)], run, backend, "auto")


@public
def batch_norm_backward(
    grad_out, x, weight, running_mean, running_var, training, eps=1e-5, *, backend: str | None = None
) -> Call:
    """Gradients of batch_norm: (grad_x, grad_weight, grad_bias). Training mode recomputes the batch statistics
    from x; eval mode uses the running statistics."""
    fn = "batch_norm_backward"
    stats = {"running_mean": running_mean, "running_var": running_var}
    p, kind, w, _ = _bn_call(fn, x, {"weight": weight, **stats}, training, 0.1, eps)
    check_array(fn, "grad_out", grad_out, x.ndim, "like 'x'")
    check_same(fn, {"x": x, "grad_out": grad_out})
    check_grad_out(fn, grad_out.shape, x.shape, "batch_norm")

    def run(impl: dict[str, Callable]) -> tuple[Any, Any, Any]:
        return impl["batch_norm_bwd"](p, native(grad_out), native(x), w, native(running_mean), native(running_var))

    return Call(fn, kind, [("batch_norm_bwd", p)], run, backend, "auto")


# ---------------------------------------------------------------------------------------------- relu
@public
def relu(x, *, backend: str | None = None) -> Call:
    """max(x, 0) elementwise; NaN stays NaN."""
    check_array("relu", "x", x, None)
    kind, dtype = check_same("relu", {"x": x})
    p = _Eltwise(tuple(x.shape), dtype)
    return Call("relu", kind, [("relu", p)], lambda impl: impl["relu"](p, native(x)), backend, "auto")


@public
def relu_backward(grad_out, y, *, backend: str | None = None) -> Call:
    """Gradient of relu given its output y: grad_out where y > 0, else 0 (as PyTorch: 0 where y <= 0)."""
    fn = "relu_backward"
    check_array(fn, "grad_out", grad_out, None)
    check_array(fn, "y", y, None)
    kind, dtype = check_same(fn, {"grad_out": grad_out, "y": y})
    check_grad_out(fn, grad_out.shape, y.shape, "relu")
    p = _Eltwise(tuple(y.shape), dtype)
    return Call(
        fn, kind, [("relu_bwd", p)], lambda impl: impl["relu_bwd"](p, native(grad_out), native(y)), backend, "auto"
    )
