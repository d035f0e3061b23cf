"""Plans: what one call signature of a public op runs, decided once and cached.

A *planner* (fastconv.functional) validates a call, builds its params and returns a `Plan`: the registry ops the
call needs (its steps), the implementation selected for each with the layout it reads, and a runner that executes
them on arrays. A plan holds no arrays, only what they were (`ArraySpec`: kind, shape, dtype and, where the
selection depends on it, layout).

Every public op is an `Op` (fastconv.plan_cache): calling it looks the plan up by the call's signature, builds and
caches it on a miss, and runs it. `fastconv.plan(op, *args, **kwargs)` (or `op.plan(...)`) returns the plan
without running it; `plan.run(*arrays)` runs it on arrays of the same signature; `fastconv.select` describes it.

A forward plan also plans its backward: `plan.backward(need_input=..., ...)` is the backward op's plan on the same
params and backend, built once per set of flags without validating again. Planned with `need_backward=True`, the
forward's backend is chosen among those that can run the backward steps too (as PyTorch's selection takes
`need_backward`), and the backward plan is built at once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import dispatch, precision
from .arrays import array_kind, is_channels_last, synchronize
from .dispatch import Impl, Selection

# `algo=` names a conv or linear algorithm; other steps of the same call (a bias gradient) always use "auto".
ALGO_OPS = {"conv2d", "conv2d_bwd_data", "conv2d_bwd_weight", "linear", "linear_bwd_data", "linear_bwd_weight"}


@dataclass(frozen=True)
class ArraySpec:
    """What a plan knows of one array argument. `channels_last` is None where the plan does not depend on the
    layout (its runner copies such an array to C order when it needs to)."""

    kind: str
    shape: tuple
    dtype: Any
    channels_last: bool | None = None

    def mismatch(self, a: Any) -> str | None:
        """How `a` differs from this spec, or None."""
        if type(a) is np.ndarray and self.kind == "numpy" and self.channels_last is None:
            if a.shape == self.shape and a.dtype == self.dtype:
                return None  # the common case, without the calls below
        if array_kind(a) != self.kind:
            return f"a {array_kind(a) or type(a).__name__} array, not {self.kind}"
        if tuple(a.shape) != self.shape:
            return f"shape {tuple(a.shape)}, not {self.shape}"
        if a.dtype != self.dtype:
            return f"dtype {a.dtype}, not {self.dtype}"
        if self.channels_last is not None and is_channels_last(a) != self.channels_last:
            return "NCHW, not channels_last" if self.channels_last else "channels_last, not NCHW"
        return None

    def __str__(self) -> str:
        order = {True: " channels_last", False: " NCHW", None: ""}[self.channels_last]
        return f"{self.kind} {self.dtype} {self.shape}{order}"


def spec(a: Any, layout_matters: bool = False) -> ArraySpec | None:
    """The spec of a (validated) array argument; None for an absent optional one."""
    if a is None:
        return None
    return ArraySpec(array_kind(a), tuple(a.shape), a.dtype, is_channels_last(a) if layout_matters else None)


def backward_specs(forward: Plan, y_shape: tuple) -> dict[str, ArraySpec | None]:
    """The array specs of the backward plan of a forward (x, weight, ...) plan whose output has `y_shape`:
    grad_out (y's shape, x's kind and dtype), x and weight as the forward had them."""
    x, w = forward.specs[0], forward.specs[1]
    return {"grad_out": ArraySpec(x.kind, y_shape, x.dtype), "x": x, "weight": w}


@dataclass(frozen=True)
class Step:
    """One registry op of a plan: its params, its implementation, and the layout in which it reads x ('nchw', or
    'channels_last' for an implementation that takes such an x as it is)."""

    op: str
    params: Any
    impl: Impl
    layout: str = "nchw"


@dataclass(frozen=True, eq=False)
class Plan:
    """One planned call signature of a public op (see the module docstring).

    `run(*arrays)` takes the op's array arguments in the op's order (None for an absent optional one) and checks
    them against `specs`; `selection` says what runs; `backward(**needs)` plans the backward op."""

    op: str  # the public op, e.g. "conv2d"
    params: Any  # the call's normalised params
    steps: tuple[Step, ...]
    runner: Callable[..., Any] = field(repr=False)  # runner(plan, *arrays); plan.fns: registry op -> function
    arrays: tuple[str, ...] = ()  # names of the array arguments, in order
    specs: tuple[ArraySpec | None, ...] = field(default=(), repr=False)
    backward_planner: Callable[..., Plan] | None = field(default=None, repr=False)  # (plan, **needs) -> Plan
    tune: bool = field(default=False, repr=False)  # built inside autotune() with steps not tuned yet
    fns: dict[str, Callable] = field(init=False, repr=False)
    kind: str = field(init=False)  # the array kind it runs on: 'numpy' or 'cupy'
    _memo: dict = field(default_factory=dict, init=False, repr=False)  # backward plans, the tuned plan

    def __post_init__(self) -> None:
        object.__setattr__(self, "fns", {s.op: _step_fn(s) for s in self.steps})
        object.__setattr__(self, "kind", next(s.kind for s in self.specs if s is not None))

    @property
    def backend(self) -> str:
        """The backend of its first step (every step's, unless no single backend could run them all)."""
        return self.steps[0].impl.backend

    @property
    def selection(self) -> tuple[Selection, ...]:
        """The implementation of each step: what `run` executes (after autotuning, what tuning chose)."""
        plan = self._memo.get("tuned", self)
        return tuple(Selection(s.op, s.impl.backend, s.impl.algo) for s in plan.steps)

    @property
    def output_tile(self) -> int:
        """For a conv forward: outputs per tile along each axis of an implementation whose rounding follows its
        tile grid (fastconv.dask aligns its blocks to it); 1 otherwise."""
        traits = [s.impl.traits for s in self.steps if s.op == "conv2d" and s.impl.traits is not None]
        return traits[0].output_tile if traits else 1

    def run(self, *arrays: Any) -> Any:
        """Run on arrays of the signature the plan was built for; a ValueError names any that differ."""
        if len(arrays) != len(self.arrays):
            raise TypeError(
                f"{self.op} plan: run takes the {len(self.arrays)} arrays ({', '.join(self.arrays)}), got {len(arrays)}"
            )
        for name, want, a in zip(self.arrays, self.specs, arrays):
            if want is None or a is None:
                if (want is None) != (a is None):
                    built = "without" if want is None else f"with a {want}"
                    raise ValueError(
                        f"{self.op} plan: '{name}' is {'None' if a is None else 'given'}, but the plan "
                        f"was built {built} '{name}'"
                    )
                continue
            why = want.mismatch(a)
            if why:
                raise ValueError(
                    f"{self.op} plan: '{name}' has {why}: the plan was built for {want}; "
                    f"call fastconv.{self.op} or plan this signature"
                )
        return self._run(*arrays)

    def _run(self, *arrays: Any) -> Any:
        """`run` without the checks, for the plan cache, which found the plan by these arrays' signature."""
        if self.tune:
            plan = self._memo.get("tuned") or self._memo.setdefault("tuned", self._tuned(arrays))
            return plan.runner(plan, *arrays)
        return self.runner(self, *arrays)

    def backward(self, **needs: bool) -> Plan:
        """The plan of the backward op on the same params and backend, for the gradients asked for (need_input,
        need_weight, need_bias as that op takes them; every gradient by default). Built once per set of flags."""
        if self.backward_planner is None:
            raise TypeError(f"{self.op} plan: {self.op} has no backward op to plan")
        key = tuple(sorted(needs.items()))
        plan = self._memo.get(key)
        if plan is None:
            plan = self._memo.setdefault(key, self.backward_planner(self, **needs))
        return plan

    def describe(self) -> str:
        """The signature and one line per step: registry op, backend/algorithm, the layout it reads."""
        args = ", ".join(f"{n}={s}" for n, s in zip(self.arrays, self.specs) if s is not None)
        lines = [f"{self.op}({args})"]
        plan = self._memo.get("tuned", self)
        for s in plan.steps:
            lines.append(
                f"  {s.op}: {s.impl.backend}/{s.impl.algo}" + ("" if s.layout == "nchw" else f" (reads x {s.layout})")
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------------------------------ autotuning
    def _tuned(self, arrays: tuple) -> Plan:
        """Time each supported algorithm of every untuned conv or linear step on these arrays (the other steps
        fixed), keep the fastest and record it for later plans. Only those steps are tuned: running them
        repeatedly has no side effects."""
        steps = list(self.steps)
        for k, s in enumerate(steps):
            if s.op not in ALGO_OPS or dispatch.tuned(s.op, s.impl.backend, s.params) is not None:
                continue
            options = dispatch.supported(s.op, s.impl.backend, s.params)
            if len(options) > 1:
                variants = [self._with_step(steps, k, impl) for impl in options]
                steps = list(min(variants, key=lambda v: _median_time(v, arrays)).steps)
            dispatch.remember(s.op, steps[k].impl.backend, s.params, steps[k].impl.algo)
        return dataclasses.replace(self, steps=tuple(steps), tune=False)

    def _with_step(self, steps: list[Step], k: int, impl: Impl) -> Plan:
        steps = list(steps)
        steps[k] = make_step(steps[k].op, steps[k].params, impl)
        return dataclasses.replace(self, steps=tuple(steps), tune=False)


def _median_time(plan: Plan, arrays: tuple, repeat: int = 3) -> float:
    synchronize(plan.kind, plan.runner(plan, *arrays))  # warm-up: JIT compilation, caches
    times = []
    for _ in range(repeat):  # the device is idle at each start and has finished the run at each stop
        start = time.perf_counter()
        synchronize(plan.kind, plan.runner(plan, *arrays))
        times.append(time.perf_counter() - start)
    return sorted(times)[repeat // 2]


def bound(fn: Callable, params: Any) -> Callable:
    """A registry function bound to the params of one plan step: `fn.bind(params)` where it has one (it does per
    params, once, what it would otherwise do per call: weigh the work, select an inner kernel), else fn. Either
    way it is called as fn(params, *arrays)."""
    bind = getattr(fn, "bind", None)
    return fn if bind is None else bind(params)


def _step_fn(step: Step) -> Callable:
    """The function a step runs: its implementation's bound to its params, with the operands rounded first where
    the step's precision is reduced and the implementation does not take it natively (fastconv.precision)."""
    fn = bound(step.impl.fn, step.params)
    prec = getattr(step.params, "precision", "fp32")
    if prec == "fp32" or step.op not in precision.ROUNDED_OPS or prec in getattr(step.impl.traits, "precisions", ()):
        return fn
    return precision.rounding(fn, prec, step.impl.backend)


def make_step(op: str, p: Any, impl: Impl) -> Step:
    """A step with its layout: channels_last when its params say x is one and the implementation's traits say it
    reads that order as it is; NCHW (C-contiguous) otherwise."""
    traits = impl.traits
    reads_cl = traits is not None and traits.channels_last and getattr(p, "channels_last", False)
    return Step(op, p, impl, "channels_last" if reads_cl else "nchw")


def make_plan(
    fn: str,
    params: Any,
    steps: list[tuple[str, Any]],
    runner: Callable[..., Any],
    specs: dict[str, ArraySpec | None],
    backend: str | None,
    algo: str,
    backward_planner: Callable[..., Plan] | None = None,
    need_backward: bool = False,
) -> Plan:
    """Select the implementations of `steps` ((registry op, params) pairs) and build the plan of one call: each
    step on the first candidate backend that supports it. With `need_backward`, the full backward is planned
    too, on the forward's backend; when that backend cannot run it and none was named, the next candidate that
    can run both is taken."""
    if not isinstance(algo, str):
        raise TypeError(f"{fn}: 'algo' must be a str, got {algo!r}")
    if need_backward and backward_planner is None:
        raise TypeError(f"{fn} has no backward op: it cannot be planned with need_backward=True")
    kind = next(s.kind for s in specs.values() if s is not None)

    def build(on: str | None) -> Plan:
        named = _named_steps(fn, [op for op, _ in steps], kind, on, algo)
        impls = [dispatch.select(op, p, kind, on, algo if op in named else "auto", fn) for op, p in steps]
        chosen = tuple(make_step(op, p, i) for (op, p), i in zip(steps, impls))
        for c in chosen:
            precision.check_backend(fn, c.impl.backend, getattr(c.params, "precision", "fp32"))
        tune = (
            algo == "auto"
            and dispatch.autotuning()
            and any(s.op in ALGO_OPS and dispatch.tuned(s.op, s.impl.backend, s.params) is None for s in chosen)
        )
        plan = Plan(fn, params, chosen, runner, tuple(specs), tuple(specs.values()), backward_planner, tune)
        if need_backward:
            plan.backward()
        return plan

    try:
        return build(backend)
    except ValueError:
        if not need_backward or backend is not None or dispatch.get_backend() is not None:
            raise
        for b in dispatch.candidates(kind, None, fn)[1:]:
            try:
                return build(b.name)
            except ValueError:
                continue
        raise


def _named_steps(fn: str, ops: list[str], kind: str, backend: str | None, algo: str) -> set[str]:
    """The steps a named `algo` applies to: the conv or linear steps whose op registers that name (a conv
    backward names its data or its weight gradient: conv2d_bwd_data_v2_rows), the others running "auto"; when
    none registers it, all of them (and selection says what exists)."""
    tunable = [op for op in ops if op in ALGO_OPS]
    if algo == "auto" or len(tunable) <= 1:
        return set(tunable) if algo != "auto" else set()
    backends = [b.name for b in dispatch.candidates(kind, backend, fn)]
    owners = {op for op in tunable if any(algo in dispatch.algos(op, b) for b in backends)}
    return owners or set(tunable)
