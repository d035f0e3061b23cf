"""What each benchmark op computes: its inputs, the fastconv call, its FLOPs and bytes.

Ops and the public calls they time (conv without bias, batch norm in training mode without running stats):
  fwd         conv2d(x, w)                                   -> y
  bwd-data    conv2d_backward(gy, x, w, need_input only)     -> gx
  bwd-weight  conv2d_backward(gy, x, w, need_weight only)    -> gw
  pool-fwd    max_pool2d(x)                                  -> y
  pool-bwd    max_pool2d_backward(gy, x)                     -> gx   (finds each window's max again from x)
  bn-fwd      batch_norm(x, None, None, gamma, beta, training=True) -> y
  bn-bwd      batch_norm_backward(gy, x, None, None, gamma, True) -> (gx, ggamma, gbeta)  (batch stats again from x)

FLOPs: conv 2 per multiply-add, over every tap including padding (PyTorch's and torchvision's count; benchdnn
skips taps that fall in the padding). Pooling 1 per window element (a compare). Batch norm, nominal per element:
forward 7 (sum, square-sum, subtract, scale, shift), backward 9. Bytes: the compulsory traffic, each tensor read or
written once: the inputs of the call plus its outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

import fastconv as fc

from .. import dispatch
from ..arrays import array_kind, array_module
from .cases import Case, ConvProblem, PoolProblem

# The registry ops behind each bench op (their algorithms are what `--algos` enumerates).
REGISTRY_OP = {
    "fwd": "conv2d",
    "bwd-data": "conv2d_bwd_data",
    "bwd-weight": "conv2d_bwd_weight",
    "pool-fwd": "max_pool2d",
    "pool-bwd": "max_pool2d_bwd",
    "bn-fwd": "batch_norm",
    "bn-bwd": "batch_norm_bwd",
}
# The rate a case is judged by: compute-bound convs by GFLOP/s, memory-bound pooling and BN by GB/s.
UNIT = {op: "GFLOP/s" for op in ("fwd", "bwd-data", "bwd-weight")} | {
    op: "GB/s" for op in ("pool-fwd", "pool-bwd", "bn-fwd", "bn-bwd")
}
_BN_FLOPS_PER_ELEMENT = {"bn-fwd": 7, "bn-bwd": 9}


def input_shapes(case: Case) -> dict[str, tuple[int, ...]]:
    """The arrays an op takes, by name: x, w (conv weight), gy (gradient of the output), gamma, beta."""
    pr, op = case.problem, case.op
    p = pr.params()
    if isinstance(pr, ConvProblem):
        return {
            "fwd": {"x": pr.x_shape, "w": pr.w_shape},
            "bwd-data": {"gy": p.y_shape, "w": pr.w_shape},
            "bwd-weight": {"gy": p.y_shape, "x": pr.x_shape},
        }[op]
    if isinstance(pr, PoolProblem):
        return {"x": pr.x_shape} if op == "pool-fwd" else {"gy": p.y_shape, "x": pr.x_shape}
    if op == "bn-fwd":
        return {"x": pr.x_shape, "gamma": (pr.C,), "beta": (pr.C,)}
    return {"gy": pr.x_shape, "x": pr.x_shape, "gamma": (pr.C,)}


def output_shapes(case: Case) -> list[tuple[int, ...]]:
    pr, op = case.problem, case.op
    p = pr.params()
    if op in ("fwd", "pool-fwd"):
        return [p.y_shape]
    if op == "bwd-weight":
        return [pr.w_shape]
    return [pr.x_shape, (pr.C,), (pr.C,)] if op == "bn-bwd" else [pr.x_shape]


def random_inputs(case: Case, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Fresh float64 inputs: standard normal, conv weights scaled by 1/sqrt(fan-in) so outputs stay O(1)."""
    out = {}
    for name, shape in input_shapes(case).items():
        a = rng.standard_normal(shape)
        if name == "w":
            a /= np.sqrt(np.prod(shape[1:]))
        out[name] = a
    return out


def flops(case: Case) -> int:
    pr, op = case.problem, case.op
    p = pr.params()
    if isinstance(pr, ConvProblem):
        return 2 * p.macs
    if isinstance(pr, PoolProblem):
        return int(np.prod(p.y_shape)) * p.kernel[0] * p.kernel[1]
    return _BN_FLOPS_PER_ELEMENT[op] * int(np.prod(pr.x_shape))


def traffic_bytes(case: Case, itemsize: int) -> int:
    """Compulsory bytes: every input read once, every output written once."""
    sizes = list(input_shapes(case).values()) + output_shapes(case)
    return itemsize * sum(int(np.prod(s)) for s in sizes)


def _zeros(like: Any, shape: tuple[int, ...]) -> Any:
    """A read-only all-zero view of `shape` in the array kind and dtype of `like` (no memory): the argument
    conv2d_backward takes only for its shape."""
    xp = array_module(array_kind(like))
    return xp.broadcast_to(xp.zeros((), like.dtype), shape)


class Call(NamedTuple):
    """A case's fastconv call on one backend: `run(inputs)` returns the outputs; `selected()` names the
    algorithm it runs for the case's registry op (after autotuning, the one tuning chose)."""

    run: Callable[[dict[str, Any]], tuple]
    selected: Callable[[], str]


def fastconv_call(case: Case, backend: str, algo: str, inputs: dict[str, Any]) -> Call:
    """The public fastconv call of a case, planned once on `inputs` (the plan is what gets timed: `plan.run` on
    each set of inputs, and `plan.selection` is what ran). ValueError when a named algorithm does not support
    the case. `algo` names a conv algorithm (the public `algo=`); pooling and BN take only 'auto' through the
    public API, so a named pooling/BN algorithm runs its registered function directly on the same params."""
    pr, op = case.problem, case.op
    if not isinstance(pr, ConvProblem) and algo != "auto":
        return _registry_call(case, backend, algo, inputs)
    kw = dict(getattr(pr, "kwargs", {}), backend=backend)
    if isinstance(pr, ConvProblem):
        kw["algo"] = algo
        if op == "fwd":
            plan = fc.plan(fc.conv2d, inputs["x"], inputs["w"], **kw)
            args, keep = lambda a: (a["x"], a["w"], None), slice(None)
        elif op == "bwd-data":
            zx = _zeros(inputs["gy"], pr.x_shape)
            plan = fc.plan(fc.conv2d_backward, inputs["gy"], zx, inputs["w"], need_weight=False, need_bias=False, **kw)
            args, keep = lambda a: (a["gy"], zx, a["w"]), slice(0, 1)
        else:
            zw = _zeros(inputs["x"], pr.w_shape)
            plan = fc.plan(fc.conv2d_backward, inputs["gy"], inputs["x"], zw, need_input=False, need_bias=False, **kw)
            args, keep = lambda a: (a["gy"], a["x"], zw), slice(1, 2)
    elif isinstance(pr, PoolProblem):
        if op == "pool-fwd":
            plan, args, keep = fc.plan(fc.max_pool2d, inputs["x"], **kw), lambda a: (a["x"],), slice(None)
        else:
            plan = fc.plan(fc.max_pool2d_backward, inputs["gy"], inputs["x"], **kw)
            args, keep = lambda a: (a["gy"], a["x"]), slice(None)
    elif op == "bn-fwd":
        plan = fc.plan(
            fc.batch_norm,
            inputs["x"],
            None,
            None,
            inputs["gamma"],
            inputs["beta"],
            training=True,
            eps=pr.eps,
            backend=backend,
        )
        args, keep = lambda a: (a["x"], None, None, a["gamma"], a["beta"]), slice(None)
    else:
        plan = fc.plan(
            fc.batch_norm_backward,
            inputs["gy"],
            inputs["x"],
            None,
            None,
            inputs["gamma"],
            True,
            eps=pr.eps,
            backend=backend,
        )
        args, keep = lambda a: (a["gy"], a["x"], None, None, a["gamma"]), slice(None)
    single = op in ("fwd", "pool-fwd", "pool-bwd", "bn-fwd")
    reg = REGISTRY_OP[op]

    def run(a: dict[str, Any]) -> tuple:
        out = plan.run(*args(a))
        return (out,) if single else tuple(out)[keep]

    return Call(run, lambda: next(s.algo for s in plan.selection if s.op == reg))


def _registry_call(case: Case, backend: str, algo: str, inputs: dict[str, Any]) -> Call:
    """A named pooling/BN algorithm: its registered function on the params fastconv.params builds."""
    pr, op = case.problem, case.op
    x = inputs["x"]
    p = pr.params(x.dtype)
    fn = dispatch.select(REGISTRY_OP[op], p, array_kind(x), backend, algo, f"bench {op}").fn

    def run(a: dict[str, Any]) -> tuple:
        x = a["x"]
        if op == "pool-fwd":
            return (fn(p, x, False)[0],)
        if op == "pool-bwd":
            return (fn(p, a["gy"], x),)
        if op == "bn-fwd":
            return (fn(p, x, a["gamma"], a["beta"], None, None)[0],)
        return tuple(fn(p, a["gy"], x, a["gamma"], None, None))

    return Call(run, lambda: algo)
