"""Unbatched inputs, as PyTorch takes them: conv2d and pooling on (C, H, W), conv1d on (C, L).

An op that accepts them declares a `Batched` rule (fastconv.plan_cache.public). A call whose key array has one
axis fewer than the batched rank is planned as the same call on a batch of one (a view with a leading axis of
1, no copy) and its plan wrapped: the wrapper's runner adds that axis to the batched arrays, runs the batched
plan and drops the axis from the batched results. The wrapped plan's backward is the batched backward, wrapped
by the backward op's rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from .plan import ArraySpec, Plan


@dataclass(frozen=True)
class Batched:
    """Which arrays of an op carry the batch axis.

    ndim: the batched rank of the key array; key: the position (among the op's array arguments) of the array
    whose rank decides; arrays: positions of every array argument with a batch axis; outputs: positions of the
    results with one (None: the result, or every element of a tuple result); backward: the rule of the op's
    backward, for the backward plan of an unbatched forward plan.
    """

    ndim: int
    key: int = 0
    arrays: tuple[int, ...] = (0,)
    outputs: tuple[int, ...] | None = None
    backward: Batched | None = None

    def applies(self, arrays: tuple) -> bool:
        """Whether a call with these array arguments is unbatched."""
        return getattr(arrays[self.key], "ndim", None) == self.ndim - 1

    def add_axis(self, fn: str, names: tuple[str, ...], arrays: tuple) -> tuple:
        """The arrays of the call on a batch of one; every batched array must be unbatched alike."""
        key_name, key_shape = names[self.key], tuple(arrays[self.key].shape)
        out = list(arrays)
        for i in self.arrays:
            a = arrays[i]
            if a is None:
                continue
            if getattr(a, "ndim", None) != self.ndim - 1:
                raise ValueError(
                    f"{fn}: '{key_name}' is unbatched (shape {key_shape}), so '{names[i]}' must be {self.ndim - 1}-D "
                    f"too, got {_shape(a)}"
                )
            out[i] = a[None]
        return tuple(out)

    def drop_axis(self, result: Any) -> Any:
        if not isinstance(result, tuple):
            return result[0]
        keep = range(len(result)) if self.outputs is None else self.outputs
        return tuple(r[0] if i in keep and r is not None else r for i, r in enumerate(result))


def _shape(a: Any) -> str:
    shape = getattr(a, "shape", None)
    return f"shape {tuple(shape)}" if shape is not None else type(a).__name__


def wrap(batched: Batched, plan: Plan) -> Plan:
    """The plan of the unbatched call whose batched plan (on a batch of one) is `plan`."""
    specs = tuple(
        None if s is None else ArraySpec(s.kind, s.shape[1:], s.dtype) if i in batched.arrays else s
        for i, s in enumerate(plan.specs)
    )
    backward = None
    if plan.backward_planner is not None and batched.backward is not None:
        backward = partial(_backward, plan, batched.backward)
    return Plan(plan.op, plan.params, plan.steps, partial(_run, plan, batched), plan.arrays, specs, backward)


def _run(inner: Plan, batched: Batched, plan: Plan, *arrays: Any) -> Any:
    arrays = tuple(a[None] if i in batched.arrays and a is not None else a for i, a in enumerate(arrays))
    return batched.drop_axis(inner._run(*arrays))


def _backward(inner: Plan, rule: Batched, plan: Plan, **needs: bool) -> Plan:
    return wrap(rule, inner.backward(**needs))
