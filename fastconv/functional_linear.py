"""The public functional API of linear (as torch.nn.functional.linear): validate -> params -> plan, as in
fastconv.functional."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from .arrays import check_array, check_same, native
from .params import LinearParams, check_grad_out, linear_params
from .plan import ArraySpec, Plan, backward_specs, make_plan, spec
from .plan_cache import public
from .precision import resolve as resolve_precision


# ---------------------------------------------------------------------------------------------- linear
def _linear_params(fn: str, x: Any, weight: Any, bias: Any, precision: str | None) -> LinearParams:
    check_array(fn, "x", x, None)
    check_array(fn, "weight", weight, 2, "(out_features, in_features)")
    if bias is not None:
        check_array(fn, "bias", bias, 1, "(out_features,)")
    _, dtype = check_same(fn, {"x": x, "weight": weight, "bias": bias})
    p = linear_params(fn, tuple(x.shape), tuple(weight.shape), None if bias is None else tuple(bias.shape), dtype)
    prec = resolve_precision(fn, precision)
    return p if prec == "fp32" else replace(p, precision=prec)


def _run_linear(p: LinearParams, plan: Plan, x: Any, weight: Any, bias: Any) -> Any:
    y = plan.fns["linear"](p, native(x).reshape(p.N, p.C), native(weight), native(bias))
    return y.reshape(p.y_shape)


@public(3, low_dtypes=True)
def linear(
    x,
    weight,
    bias=None,
    *,
    backend: str | None = None,
    algo: str = "auto",
    precision: str | None = None,
    need_backward: bool = False,
) -> Plan:
    """Fully connected layer, as torch.nn.functional.linear: y = x @ weight.T + bias for x (*, in_features),
    weight (out_features, in_features) and bias (out_features,) or None; returns y (*, out_features)."""
    p = _linear_params("linear", x, weight, bias, precision)
    specs = {"x": spec(x), "weight": spec(weight), "bias": spec(bias)}
    return make_plan(
        "linear", p, [("linear", p)], partial(_run_linear, p), specs, backend, algo, _backward_of_linear, need_backward
    )


def _run_linear_backward(p: LinearParams, plan: Plan, grad_out: Any, x: Any, weight: Any) -> tuple:
    fns = plan.fns
    gy = native(grad_out).reshape(p.N, p.K)
    gx = fns["linear_bwd_data"](p, gy, native(weight)).reshape(p.x_shape) if "linear_bwd_data" in fns else None
    gw = fns["linear_bwd_weight"](p, gy, native(x).reshape(p.N, p.C)) if "linear_bwd_weight" in fns else None
    return gx, gw, fns["linear_bwd_bias"](p, gy) if "linear_bwd_bias" in fns else None


def _linear_backward_plan(
    p: LinearParams,
    specs: dict[str, ArraySpec | None],
    need_input: bool,
    need_weight: bool,
    need_bias: bool,
    backend: str | None,
    algo: str,
) -> Plan:
    wanted = {"linear_bwd_data": need_input, "linear_bwd_weight": need_weight, "linear_bwd_bias": need_bias}
    steps = [(op, p) for op, need in wanted.items() if need]
    return make_plan("linear_backward", p, steps, partial(_run_linear_backward, p), specs, backend, algo)


def _backward_of_linear(
    forward: Plan, need_input: bool = True, need_weight: bool = True, need_bias: bool = True
) -> Plan:
    specs = backward_specs(forward, forward.params.y_shape)
    return _linear_backward_plan(forward.params, specs, need_input, need_weight, need_bias, forward.backend, "auto")


@public(3, low_dtypes=True)
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
    precision: str | None = None,
) -> Plan:
    """Gradients of linear: returns (grad_x, grad_weight, grad_bias), None for what was not asked."""
    fn = "linear_backward"
    p = _linear_params(fn, x, weight, None, precision)
    check_array(fn, "grad_out", grad_out, None)
    check_same(fn, {"x": x, "grad_out": grad_out})
    check_grad_out(fn, grad_out.shape, p.y_shape, "linear")
    specs = {"grad_out": spec(grad_out), "x": spec(x), "weight": spec(weight)}
    return _linear_backward_plan(p, specs, bool(need_input), bool(need_weight), bool(need_bias), backend, algo)
