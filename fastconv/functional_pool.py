"""The public functional API of pooling, batch norm and ReLU: validate -> params -> plan, for each op.

As in fastconv.functional: each op is a planner made public by fastconv.plan_cache.public, runners are
module-level functions bound to the params, and each forward plan knows how to plan its backward.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from .arrays import array_module, check_array, check_same, is_channels_last, native, native_channels_last
from .params import (
    AdaptivePoolParams,
    BatchNormParams,
    EltwiseParams,
    PoolParams,
    adaptive_pool_params,
    batch_norm_params,
    check_grad_out,
    pool_params,
)
from .plan import ArraySpec, Plan, make_plan, spec
from .plan_cache import public
from .unbatched import Batched

NCHW = "(N, C, H, W) or unbatched (C, H, W)"
# unbatched inputs (C, H, W), as torch: the backward's x decides, grad_out follows
POOL_BACKWARD = Batched(4, key=1, arrays=(0, 1))
POOL = Batched(4, backward=POOL_BACKWARD)
# forward registry op -> (public backward op, its registry op)
_BACKWARD = {
    "max_pool2d": ("max_pool2d_backward", "max_pool2d_bwd"),
    "avg_pool2d": ("avg_pool2d_backward", "avg_pool2d_bwd"),
    "adaptive_avg_pool2d": ("adaptive_avg_pool2d_backward", "adaptive_avg_pool2d_bwd"),
    "global_avg_pool2d": ("global_avg_pool2d_backward", "global_avg_pool2d_bwd"),
}


# ---------------------------------------------------------------------------------------------- pooling
def _check_pool_arrays(fn: str, x: Any, grad_out: Any) -> Any:
    """x (and grad_out, when given) 4-D float arrays of one kind and dtype; returns the dtype."""
    check_array(fn, "x", x, 4, NCHW)
    arrays = {"x": x}
    if grad_out is not None:
        check_array(fn, "grad_out", grad_out, 4, "(N, C, P, Q) or unbatched (C, P, Q)")
        arrays["grad_out"] = grad_out
    return check_same(fn, arrays)[1]


def _run_max_pool(p: PoolParams, return_indices: bool, plan: Plan, x: Any) -> Any:
    y, idx = plan.fns["max_pool2d"](p, _layout(plan, x), return_indices)
    return (y, idx) if return_indices else y


def _run_pool_backward(p: Any, op: str, reads_x: bool, plan: Plan, grad_out: Any, x: Any) -> Any:
    f = plan.fns[op]
    return f(p, _layout(plan, grad_out), _layout(plan, x)) if reads_x else f(p, native(grad_out))


def _pool_backward_plan(fn: str, op: str, p: Any, x: ArraySpec, grad_out: ArraySpec, backend: str | None) -> Plan:
    runner = partial(_run_pool_backward, p, op, op == "max_pool2d_bwd")
    return make_plan(fn, p, [(op, p)], runner, {"grad_out": grad_out, "x": x}, backend, "auto")


def _backward_of_pool(forward: Plan) -> Plan:
    """The backward plan of a pooling forward: same params, the forward's backend."""
    fn, op = _BACKWARD[forward.steps[0].op]
    x = forward.specs[0]
    gy = ArraySpec(x.kind, forward.params.y_shape, x.dtype)  # in either order: the runner gives the kernel x's
    return _pool_backward_plan(fn, op, forward.params, x, gy, forward.backend)


def _pool_forward_plan(fn: str, p: Any, x: Any, runner: Any, backend: str | None, need_backward: bool) -> Plan:
    specs = {"x": spec(x, layout_matters=True)}
    return make_plan(fn, p, [(fn, p)], runner, specs, backend, "auto", _backward_of_pool, need_backward)


@public(1, POOL)
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
    need_backward: bool = False,
) -> Plan:
    """Max pooling; with return_indices also the int64 index of each max in its (H*W) plane (-1 for a window
    that holds no input element, which only dilation can cause). NaN propagates."""
    fn = "max_pool2d"
    dtype = _check_pool_arrays(fn, x, None)
    shape = tuple(x.shape)
    p = pool_params(fn, shape, kernel_size, stride, padding, dilation, ceil_mode, True, dtype, is_channels_last(x))
    runner = partial(_run_max_pool, p, bool(return_indices))
    return _pool_forward_plan(fn, p, x, runner, backend, need_backward)


@public(2, POOL_BACKWARD)
def max_pool2d_backward(
    grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *, backend: str | None = None
) -> Plan:
    """Gradient of max_pool2d w.r.t. x: each grad_out element goes to its window's (first) max."""
    fn = "max_pool2d_backward"
    dtype = _check_pool_arrays(fn, x, grad_out)
    shape = tuple(x.shape)
    p = pool_params(fn, shape, kernel_size, stride, padding, dilation, ceil_mode, True, dtype, is_channels_last(x))
    check_grad_out(fn, grad_out.shape, p.y_shape, "pooling")
    return _pool_backward_plan(fn, "max_pool2d_bwd", p, spec(x, layout_matters=True), spec(grad_out), backend)


def _run_one(p: Any, op: str, plan: Plan, x: Any) -> Any:
    return plan.fns[op](p, native(x))


@public(1, POOL)
def avg_pool2d(
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    *,
    backend: str | None = None,
    need_backward: bool = False,
) -> Plan:
    """Average pooling with PyTorch's divisor rules (count_include_pad; windows clipped by ceil_mode)."""
    fn = "avg_pool2d"
    dtype = _check_pool_arrays(fn, x, None)
    p = pool_params(fn, tuple(x.shape), kernel_size, stride, padding, 1, ceil_mode, count_include_pad, dtype)
    return _pool_forward_plan(fn, p, x, partial(_run_one, p, fn), backend, need_backward)


@public(2, POOL_BACKWARD)
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
) -> Plan:
    """Gradient of avg_pool2d w.r.t. x."""
    fn = "avg_pool2d_backward"
    dtype = _check_pool_arrays(fn, x, grad_out)
    p = pool_params(fn, tuple(x.shape), kernel_size, stride, padding, 1, ceil_mode, count_include_pad, dtype)
    check_grad_out(fn, grad_out.shape, p.y_shape, "pooling")
    return _pool_backward_plan(fn, "avg_pool2d_bwd", p, spec(x), spec(grad_out), backend)


def _adaptive_params(fn: str, x: Any, grad_out: Any, output_size: Any) -> AdaptivePoolParams:
    dtype = _check_pool_arrays(fn, x, grad_out)
    p = adaptive_pool_params(fn, tuple(x.shape), output_size, dtype)
    if grad_out is not None:
        check_grad_out(fn, grad_out.shape, p.y_shape, "pooling")
    return p


@public(1, POOL)
def adaptive_avg_pool2d(x, output_size, *, backend: str | None = None, need_backward: bool = False) -> Plan:
    """Adaptive average pooling to output_size (int or pair; None keeps that input size)."""
    fn = "adaptive_avg_pool2d"
    p = _adaptive_params(fn, x, None, output_size)
    return _pool_forward_plan(fn, p, x, partial(_run_one, p, fn), backend, need_backward)


@public(2, POOL_BACKWARD)
def adaptive_avg_pool2d_backward(grad_out, x, output_size, *, backend: str | None = None) -> Plan:
    """Gradient of adaptive_avg_pool2d w.r.t. x."""
    fn = "adaptive_avg_pool2d_backward"
    p = _adaptive_params(fn, x, grad_out, output_size)
    return _pool_backward_plan(fn, "adaptive_avg_pool2d_bwd", p, spec(x), spec(grad_out), backend)


@public(1, POOL)
def global_avg_pool2d(x, *, backend: str | None = None, need_backward: bool = False) -> Plan:
    """Mean over H and W: (N, C, H, W) -> (N, C, 1, 1)."""
    fn = "global_avg_pool2d"
    p = _adaptive_params(fn, x, None, 1)
    return _pool_forward_plan(fn, p, x, partial(_run_one, p, fn), backend, need_backward)


@public(2, POOL_BACKWARD)
def global_avg_pool2d_backward(grad_out, x, *, backend: str | None = None) -> Plan:
    """Gradient of global_avg_pool2d w.r.t. x."""
    fn = "global_avg_pool2d_backward"
    p = _adaptive_params(fn, x, grad_out, 1)
    return _pool_backward_plan(fn, "global_avg_pool2d_bwd", p, spec(x), spec(grad_out), backend)


# ---------------------------------------------------------------------------------------------- batch norm
def _bn_params(fn: str, x: Any, arrays: dict[str, Any], training: Any, momentum: Any, eps: Any) -> BatchNormParams:
    check_array(fn, "x", x, (2, 3, 4), "(N, C[, L] | [, H, W])")
    for name, a in arrays.items():
        if a is not None:
            check_array(fn, name, a, 1, "(C,)")
    _, dtype = check_same(fn, {"x": x, **arrays})
    shapes = {n: None if a is None else tuple(a.shape) for n, a in arrays.items()}
    return batch_norm_params(fn, tuple(x.shape), shapes, training, momentum, eps, dtype, is_channels_last(x))


def _layout(plan: Plan, a: Any) -> Any:
    """`a` as the plan's (only) step reads it: channels_last as it is, else C-contiguous NCHW."""
    return native_channels_last(a) if plan.steps[0].layout == "channels_last" else native(a)


def _affine(p: BatchNormParams, kind: str, weight: Any, bias: Any) -> tuple[Any, Any]:
    """weight and bias as the kernels take them: ones and zeros for an absent one."""
    xp = array_module(kind)
    w = xp.ones(p.C, p.dtype) if weight is None else native(weight)
    return w, xp.zeros(p.C, p.dtype) if bias is None else native(bias)


def _run_batch_norm(
    p: BatchNormParams, plan: Plan, x: Any, running_mean: Any, running_var: Any, weight: Any, bias: Any
) -> Any:
    w, b = _affine(p, plan.kind, weight, bias)
    y, mean, var = plan.fns["batch_norm"](p, _layout(plan, x), w, b, native(running_mean), native(running_var))
    if p.training and running_mean is not None and p.N * p.M > 0:
        m, count = p.momentum, p.N * p.M
        running_mean[...] = (1 - m) * running_mean + m * mean
        running_var[...] = (1 - m) * running_var + m * var * (count / (count - 1))
    return y


def _run_batch_norm_backward(
    p: BatchNormParams, plan: Plan, grad_out: Any, x: Any, running_mean: Any, running_var: Any, weight: Any
) -> tuple:
    w, _ = _affine(p, plan.kind, weight, None)
    gy, x = _layout(plan, grad_out), _layout(plan, x)
    return plan.fns["batch_norm_bwd"](p, gy, x, w, native(running_mean), native(running_var))


def _bn_backward_plan(p: BatchNormParams, specs: dict[str, ArraySpec | None], backend: str | None) -> Plan:
    return make_plan(
        "batch_norm_backward", p, [("batch_norm_bwd", p)], partial(_run_batch_norm_backward, p), specs, backend, "auto"
    )


def _backward_of_batch_norm(forward: Plan) -> Plan:
    """The backward plan of a batch_norm forward: same params (training, eps), the forward's backend."""
    x, rm, rv, w, _ = forward.specs
    gy = replace(x, channels_last=None)  # grad_out in either order: the runner gives the kernel x's
    specs = {"grad_out": gy, "x": x, "running_mean": rm, "running_var": rv, "weight": w}
    return _bn_backward_plan(forward.params, specs, forward.backend)


@public(5)
def batch_norm(
    x,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training=False,
    momentum=0.1,
    eps=1e-5,
    *,
    backend: str | None = None,
    need_backward: bool = False,
) -> Plan:
    """Batch normalisation over x (N, C, ...), in torch.nn.functional.batch_norm's argument order. Training:
    normalise with the batch's biased variance and update running_mean/running_var in place (unbiased variance),
    as PyTorch. Eval: use the running statistics. weight/bias may be None (no affine); running stats may be None
    in training mode."""
    fn = "batch_norm"
    arrays = {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
    p = _bn_params(fn, x, arrays, training, momentum, eps)
    specs = {"x": spec(x, layout_matters=True), **{n: spec(a) for n, a in arrays.items()}}
    return make_plan(
        fn,
        p,
        [("batch_norm", p)],
        partial(_run_batch_norm, p),
        specs,
        backend,
        "auto",
        _backward_of_batch_norm,
        need_backward,
    )


@public(5)
def batch_norm_backward(
    grad_out, x, running_mean, running_var, weight=None, training=False, eps=1e-5, *, backend: str | None = None
) -> Plan:
    """Gradients of batch_norm: (grad_x, grad_weight, grad_bias). Training mode recomputes the batch statistics
    from x; eval mode uses the running statistics."""
    fn = "batch_norm_backward"
    arrays = {"running_mean": running_mean, "running_var": running_var, "weight": weight}
    p = _bn_params(fn, x, arrays, training, 0.1, eps)
    check_array(fn, "grad_out", grad_out, x.ndim, "like 'x'")
    check_same(fn, {"x": x, "grad_out": grad_out})
    check_grad_out(fn, grad_out.shape, x.shape, "batch_norm")
    specs = {"grad_out": spec(grad_out), "x": spec(x, layout_matters=True), **{n: spec(a) for n, a in arrays.items()}}
    return _bn_backward_plan(p, specs, backend)


# ---------------------------------------------------------------------------------------------- relu
def _run_relu(p: EltwiseParams, plan: Plan, x: Any) -> Any:
    """Elementwise, so a channels_last x runs on its buffer as it is and y keeps its order."""
    if not is_channels_last(x):
        return plan.fns["relu"](p, native(x))
    xb = native(x.transpose(0, 2, 3, 1))
    return plan.fns["relu"](EltwiseParams(xb.shape, p.dtype), xb).transpose(0, 3, 1, 2)


def _run_relu_backward(p: EltwiseParams, plan: Plan, grad_out: Any, y: Any) -> Any:
    """As _run_relu when both are channels_last; else both in C order."""
    if not (is_channels_last(y) and is_channels_last(grad_out)):
        return plan.fns["relu_bwd"](p, native(grad_out), native(y))
    gb, yb = native(grad_out.transpose(0, 2, 3, 1)), native(y.transpose(0, 2, 3, 1))
    return plan.fns["relu_bwd"](EltwiseParams(yb.shape, p.dtype), gb, yb).transpose(0, 3, 1, 2)


def _relu_backward_plan(p: EltwiseParams, grad_out: ArraySpec, y: ArraySpec, backend: str | None) -> Plan:
    return make_plan(
        "relu_backward",
        p,
        [("relu_bwd", p)],
        partial(_run_relu_backward, p),
        {"grad_out": grad_out, "y": y},
        backend,
        "auto",
    )


def _backward_of_relu(forward: Plan) -> Plan:
    (x,) = forward.specs
    return _relu_backward_plan(forward.params, x, x, forward.backend)


@public(1)
def relu(x, *, backend: str | None = None, need_backward: bool = False) -> Plan:
    """max(x, 0) elementwise; NaN stays NaN."""
    check_array("relu", "x", x, None)
    _, dtype = check_same("relu", {"x": x})
    p = EltwiseParams(tuple(x.shape), dtype)
    return make_plan(
        "relu",
        p,
        [("relu", p)],
        partial(_run_relu, p),
        {"x": spec(x)},
        backend,
        "auto",
        _backward_of_relu,
        need_backward,
    )


@public(2)
def relu_backward(grad_out, y, *, backend: str | None = None) -> Plan:
    """Gradient of relu given its output y: grad_out where y > 0, else 0 (as PyTorch: 0 where y <= 0)."""
    fn = "relu_backward"
    check_array(fn, "grad_out", grad_out, None)
    check_array(fn, "y", y, None)
    _, dtype = check_same(fn, {"grad_out": grad_out, "y": y})
    check_grad_out(fn, grad_out.shape, y.shape, "relu")
    return _relu_backward_plan(EltwiseParams(tuple(y.shape), dtype), spec(grad_out), spec(y), backend)
