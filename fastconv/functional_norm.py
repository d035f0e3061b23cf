"""The public functional API of group, layer and instance norm: validate -> params -> plan, as fastconv.functional.

All three run the registry's row norm (fastconv.params.norm): x as rows normalised by their own statistics. An
instance norm that uses running statistics (use_input_stats=False) is batch norm in eval mode on the same view.
weight and bias are optional (no affine); their gradients are None then.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from .arrays import array_module, check_array, check_same, native
from .params import BatchNormParams, NormParams, check_grad_out
from .params import group_norm_params as _group_params
from .params import instance_norm_params as _instance_params
from .params import layer_norm_params as _layer_params
from .params.common import _real
from .plan import ArraySpec, Plan, make_plan, spec
from .plan_cache import public


def _check(fn: str, x: Any, arrays: dict[str, Any], grad_out: Any = None) -> Any:
    """Float arrays of one kind and dtype; returns the dtype."""
    check_array(fn, "x", x, None)
    if x.ndim < 1:
        raise ValueError(f"{fn}: 'x' must have at least one dimension, got shape {tuple(x.shape)}")
    for name, a in arrays.items():
        if a is not None:
            check_array(fn, name, a, None)
    named = {"x": x, **arrays}
    if grad_out is not None:
        check_array(fn, "grad_out", grad_out, None)
        check_grad_out(fn, grad_out.shape, x.shape, "normalisation")
        named["grad_out"] = grad_out
    return check_same(fn, named)[1]


def _shapes(arrays: dict[str, Any]) -> dict[str, tuple | None]:
    return {n: None if a is None else tuple(a.shape) for n, a in arrays.items()}


def _affine(p: NormParams, kind: str, a: Any, fill: float) -> Any:
    """The affine vector of p.A elements the kernels take: ones or zeros for an absent one."""
    if a is not None:
        return native(a).reshape(-1)
    return array_module(kind).full(p.A, fill, p.dtype)


def _run_norm(p: NormParams, plan: Plan, x: Any, weight: Any, bias: Any) -> Any:
    y, _, _ = plan.fns["row_norm"](p, native(x), _affine(p, plan.kind, weight, 1.0), _affine(p, plan.kind, bias, 0.0))
    return y


def _run_norm_backward(p: NormParams, plan: Plan, grad_out: Any, x: Any, weight: Any) -> tuple:
    gx, gw, gb = plan.fns["row_norm_bwd"](p, native(grad_out), native(x), _affine(p, plan.kind, weight, 1.0))
    if weight is None:
        return gx, None, None
    return gx, gw.reshape(p.affine_shape), gb.reshape(p.affine_shape)


def _norm_backward_plan(fn: str, p: NormParams, specs: dict[str, ArraySpec | None], backend: str | None) -> Plan:
    return make_plan(fn, p, [("row_norm_bwd", p)], partial(_run_norm_backward, p), specs, backend, "auto")


def _backward_of_norm(fn: str, forward: Plan) -> Plan:
    x, w = forward.specs[0], forward.specs[1]
    return _norm_backward_plan(fn, forward.params, {"grad_out": x, "x": x, "weight": w}, forward.backend)


def _forward(fn: str, p: NormParams, x: Any, weight: Any, bias: Any, backend: str | None, need_backward: bool) -> Plan:
    specs = {"x": spec(x), "weight": spec(weight), "bias": spec(bias)}
    backward = partial(_backward_of_norm, f"{fn}_backward")
    return make_plan(fn, p, [("row_norm", p)], partial(_run_norm, p), specs, backend, "auto", backward, need_backward)


# ---------------------------------------------------------------------------------------------- group norm
@public((0, 2, 3))
def group_norm(
    x, num_groups, weight=None, bias=None, eps=1e-5, *, backend: str | None = None, need_backward: bool = False
) -> Plan:
    """Group norm as torch.nn.functional.group_norm: x (N, C, *) in num_groups groups of C/num_groups channels,
    each (sample, group) normalised by its own mean and biased variance; weight and bias (C,) or None."""
    fn = "group_norm"
    arrays = {"weight": weight, "bias": bias}
    dtype = _check(fn, x, arrays)
    p = _group_params(fn, tuple(x.shape), num_groups, _shapes(arrays), eps, dtype)
    return _forward(fn, p, x, weight, bias, backend, need_backward)


@public((0, 1, 3))
def group_norm_backward(grad_out, x, num_groups, weight=None, eps=1e-5, *, backend: str | None = None) -> Plan:
    """Gradients of group_norm: (grad_x, grad_weight, grad_bias), the last two None when weight is None."""
    fn = "group_norm_backward"
    dtype = _check(fn, x, {"weight": weight}, grad_out)
    p = _group_params(fn, tuple(x.shape), num_groups, _shapes({"weight": weight}), eps, dtype)
    return _norm_backward_plan(fn, p, {"grad_out": spec(grad_out), "x": spec(x), "weight": spec(weight)}, backend)


# ---------------------------------------------------------------------------------------------- layer norm
@public((0, 2, 3))
def layer_norm(
    x, normalized_shape, weight=None, bias=None, eps=1e-5, *, backend: str | None = None, need_backward: bool = False
) -> Plan:
    """Layer norm as torch.nn.functional.layer_norm: normalised over the last dims (normalized_shape, an int or
    a tuple that x's trailing dims equal); weight and bias of normalized_shape, elementwise, or None."""
    fn = "layer_norm"
    arrays = {"weight": weight, "bias": bias}
    dtype = _check(fn, x, arrays)
    p = _layer_params(fn, tuple(x.shape), normalized_shape, _shapes(arrays), eps, dtype)
    return _forward(fn, p, x, weight, bias, backend, need_backward)


@public((0, 1, 3))
def layer_norm_backward(grad_out, x, normalized_shape, weight=None, eps=1e-5, *, backend: str | None = None) -> Plan:
    """Gradients of layer_norm: (grad_x, grad_weight, grad_bias), the last two None when weight is None."""
    fn = "layer_norm_backward"
    dtype = _check(fn, x, {"weight": weight}, grad_out)
    p = _layer_params(fn, tuple(x.shape), normalized_shape, _shapes({"weight": weight}), eps, dtype)
    return _norm_backward_plan(fn, p, {"grad_out": spec(grad_out), "x": spec(x), "weight": spec(weight)}, backend)


# ---------------------------------------------------------------------------------------------- instance norm
def _run_instance(p: NormParams, momentum: float, plan: Plan, x: Any, rm: Any, rv: Any, weight: Any, bias: Any):
    y, mean, var = plan.fns["row_norm"](
        p, native(x), _affine(p, plan.kind, weight, 1.0), _affine(p, plan.kind, bias, 0.0)
    )
    if rm is not None and x.size:  # torch: each instance's statistics, averaged over the batch
        n, c = x.shape[0], x.shape[1]
        mean, var = mean.reshape(n, c).mean(axis=0), var.reshape(n, c).mean(axis=0) * (p.M / (p.M - 1))
        rm[...] = (1 - momentum) * rm + momentum * mean.astype(rm.dtype)
        rv[...] = (1 - momentum) * rv + momentum * var.astype(rv.dtype)
    return y


def _run_instance_eval(bp: BatchNormParams, plan: Plan, x: Any, rm: Any, rv: Any, weight: Any, bias: Any):
    xp, C = array_module(plan.kind), bp.C
    w = xp.ones(C, bp.dtype) if weight is None else native(weight)
    b = xp.zeros(C, bp.dtype) if bias is None else native(bias)
    return plan.fns["batch_norm"](bp, native(x), w, b, native(rm), native(rv))[0]


def _run_instance_eval_backward(
    bp: BatchNormParams, plan: Plan, grad_out: Any, x: Any, weight: Any, rm: Any, rv: Any
) -> tuple:
    w = array_module(plan.kind).ones(bp.C, bp.dtype) if weight is None else native(weight)
    gx, gw, gb = plan.fns["batch_norm_bwd"](bp, native(grad_out), native(x), w, native(rm), native(rv))
    return (gx, None, None) if weight is None else (gx, gw, gb)


def _backward_of_instance(forward: Plan) -> Plan:
    x, rm, rv, w = forward.specs[:4]
    if isinstance(forward.params, NormParams):
        return _norm_backward_plan(
            "instance_norm_backward", forward.params, {"grad_out": x, "x": x, "weight": w}, forward.backend
        )
    specs = {"grad_out": x, "x": x, "weight": w, "running_mean": rm, "running_var": rv}
    return make_plan(
        "instance_norm_backward",
        forward.params,
        [("batch_norm_bwd", forward.params)],
        partial(_run_instance_eval_backward, forward.params),
        specs,
        forward.backend,
        "auto",
    )


@public(5)
def instance_norm(
    x,
    running_mean=None,
    running_var=None,
    weight=None,
    bias=None,
    use_input_stats=True,
    momentum=0.1,
    eps=1e-5,
    *,
    backend: str | None = None,
    need_backward: bool = False,
) -> Plan:
    """Instance norm as torch.nn.functional.instance_norm: each (sample, channel) plane of x (N, C, *spatial)
    normalised by its own mean and biased variance (use_input_stats), updating running_mean/running_var in place
    when given; or, use_input_stats=False, by the running statistics. weight and bias (C,) or None."""
    fn = "instance_norm"
    arrays = {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
    dtype = _check(fn, x, arrays)
    if not isinstance(use_input_stats, bool):
        raise TypeError(f"{fn}: 'use_input_stats' must be a bool, got {use_input_stats!r}")
    m = _real(fn, "momentum", momentum, 0.0)
    p = _instance_params(fn, tuple(x.shape), _shapes(arrays), eps, dtype)
    specs = {"x": spec(x), **{n: spec(a) for n, a in arrays.items()}}
    if use_input_stats:
        if p.M <= 1 and x.size:
            raise ValueError(f"{fn}: expected more than 1 spatial element per instance, got 'x' shape {x.shape}")
        if (running_mean is None) != (running_var is None):
            raise ValueError(f"{fn}: give both 'running_mean' and 'running_var', or neither")
        runner = partial(_run_instance, p, m)
        return make_plan(fn, p, [("row_norm", p)], runner, specs, backend, "auto", _backward_of_instance, need_backward)
    if running_mean is None or running_var is None:
        raise ValueError(f"{fn}: use_input_stats=False needs 'running_mean' and 'running_var'")
    bp = BatchNormParams(tuple(x.shape), False, m, p.eps, p.dtype)
    return make_plan(
        fn,
        bp,
        [("batch_norm", bp)],
        partial(_run_instance_eval, bp),
        specs,
        backend,
        "auto",
        _backward_of_instance,
        need_backward,
    )


@public(3)
def instance_norm_backward(grad_out, x, weight=None, eps=1e-5, *, backend: str | None = None) -> Plan:
    """Gradients of instance_norm with the input's statistics: (grad_x, grad_weight, grad_bias), the last two None
    when weight is None."""
    fn = "instance_norm_backward"
    dtype = _check(fn, x, {"weight": weight}, grad_out)
    p = _instance_params(fn, tuple(x.shape), _shapes({"weight": weight}), eps, dtype)
    return _norm_backward_plan(fn, p, {"grad_out": spec(grad_out), "x": spec(x), "weight": spec(weight)}, backend)
