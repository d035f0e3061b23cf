"""The plan behind every public op: which registry ops a call needs, how they are selected, tuned and run.

A planner in fastconv.functional validates a call, builds its params and returns a `Call`; `public` turns the
planner into the op users call (build the plan, run it) and keeps the planner for `select`, which builds the plan
without running it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import dispatch
from .arrays import synchronize
from .dispatch import Selection


@dataclass
class Call:
    """One planned call of a public op: the registry ops it needs with their params, and how to run them."""

    fn: str
    kind: str  # array kind of the inputs
    steps: list[tuple[str, Any]]  # (registry op, params) for each implementation the call needs
    run: Callable[[dict[str, dispatch.Impl]], Any]  # receives op -> implementation (called like its function)
    backend: str | None
    algo: str

    def _impls(self) -> list[dispatch.Impl]:
        return [
            dispatch.select(op, p, self.kind, self.backend, self.algo if op in ALGO_OPS else "auto", self.fn)
            for op, p in self.steps
        ]

    def select(self) -> tuple[Selection, ...]:
        return tuple(Selection(i.op, i.backend, i.algo) for i in self._impls())

    def __call__(self) -> Any:
        impls = self._impls()
        if self.algo == "auto" and dispatch.autotuning():
            impls = self._tune(impls)
        return self.run({i.op: i for i in impls})

    def _tune(self, impls: list[dispatch.Impl]) -> list[dispatch.Impl]:
        """Time each supported algorithm of every untuned conv or linear step (the call's other steps fixed) and
        keep the fastest. Only those steps are tuned: running them repeatedly has no side effects."""
        impls = list(impls)
        for k, (op, p) in enumerate(self.steps):
            key = (op, impls[k].backend, p)
            if op not in ALGO_OPS or key in dispatch._TUNED:
                continue
            options = dispatch.supported(op, impls[k].backend, p)
            if len(options) > 1:
                fixed = {i.op: i for i in impls}
                impls[k] = min(options, key=lambda cand: self._median_time({**fixed, op: cand}))
            dispatch.remember(op, impls[k].backend, p, impls[k].algo)
        return impls

    def _median_time(self, fns: dict[str, Callable], repeat: int = 3) -> float:
        self.run(fns)  # warm-up: JIT compilation, caches
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            synchronize(self.kind, self.run(fns))
            times.append(time.perf_counter() - start)
        return sorted(times)[repeat // 2]


# `algo=` names a conv or linear algorithm; other ops of the same call (the bias gradient) always use "auto".
ALGO_OPS = {"conv2d", "conv2d_bwd_data", "conv2d_bwd_weight", "linear", "linear_bwd_data", "linear_bwd_weight"}


def public(planner: Callable[..., Call]) -> Callable[..., Any]:
    """Turn a planner into the public op; the planner stays reachable for `select`."""

    @functools.wraps(planner)
    def op(*args: Any, **kwargs: Any) -> Any:
        return planner(*args, **kwargs)()

    op._planner = planner  # type: ignore[attr-defined]
    return op


def select(op: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Selection, ...]:
    """Which backend and algorithm `op(*args, **kwargs)` would run, without running it.

    >>> fastconv.select(fastconv.conv2d, x, w, padding=1)
    (Selection(op='conv2d', backend='numba', algo='direct'),)
    """
    planner = getattr(op, "_planner", None)
    if planner is None:
        raise TypeError(f"select: {op!r} is not a fastconv op")
    return planner(*args, **kwargs).select()
