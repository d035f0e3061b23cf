"""Native low-precision arrays: numpy.float16 and ml_dtypes.bfloat16 inputs to the convolutions and linear.

An op that accepts them (`public(..., low_dtypes=True)`) plans such a call as the same call on float32 arrays of
the same shapes and layouts, and wraps the plan: its runner converts the arrays to float32 (exactly: both formats
are subsets of float32), runs the float32 plan and rounds each result back to the input dtype (nearest-even).
The products are accumulated in float32. A bfloat16 call computes in precision "bf16" unless it names another
precision (its operands are bfloat16 values already, so the rounding changes nothing and the bfloat16 kernels
may run); a float16 call in the precision it names, "fp32" by default.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from .arrays import array_kind, array_module, describe
from .plan import ArraySpec, Plan

LOW_DTYPES = ("float16", "bfloat16")


def low_dtype(fn: str, names: tuple[str, ...], arrays: tuple) -> np.dtype | None:
    """The low-precision dtype of a call's arrays, or None when there is none; a TypeError when only some are."""
    dtypes = [getattr(a, "dtype", None) for a in arrays if a is not None]
    low = [d for d in dtypes if d is not None and d.name in LOW_DTYPES]
    if not low:
        return None
    for name, a in zip(names, arrays):
        if a is not None and getattr(a, "dtype", None) != low[0]:
            raise TypeError(
                f"{fn}: '{name}' is a {describe(a)} but the call's other arrays are {low[0].name}; pass all arrays "
                f"of one call in one dtype"
            )
    return low[0]


def stand_in(a: Any) -> Any:
    """A float32 array of a's kind, shape and memory order, its contents undefined: what the plan is built on."""
    if a is None:
        return None
    return array_module(array_kind(a)).empty_like(a, dtype=np.float32)


def wrap(plan: Plan, dtype: np.dtype) -> Plan:
    """The plan of the call on `dtype` arrays whose float32 plan is `plan`."""
    specs = tuple(None if s is None else ArraySpec(s.kind, s.shape, dtype) for s in plan.specs)
    planner = partial(_backward, plan, dtype) if plan.backward_planner is not None else None
    return Plan(plan.op, plan.params, plan.steps, partial(_run, plan, dtype), plan.arrays, specs, planner)


def _run(inner: Plan, dtype: np.dtype, plan: Plan, *arrays: Any) -> Any:
    out = inner._run(*(None if a is None else a.astype(np.float32) for a in arrays))
    if isinstance(out, tuple):
        return tuple(None if r is None else r.astype(dtype) for r in out)
    return out.astype(dtype)


def _backward(inner: Plan, dtype: np.dtype, plan: Plan, **needs: bool) -> Plan:
    return wrap(inner.backward(**needs), dtype)
