"""The public ops and their plan cache: a call's signature -> its Plan (fastconv.plan), bounded, LRU, thread-safe.

`public(arrays)` turns a planner (fastconv.functional) into the op users call. A call binds its arguments to
the planner's parameters (`arrays`: how many leading ones are arrays, or their positions), makes the key, and runs
the cached plan:

    key = (op, need_backward, backend preference, autotune state, use_precision context,
           the non-array arguments and their types (and the element types of tuple arguments),
           (type, shape, strides, dtype) of each array, None for an absent one)

so a hit skips validation, params and selection, and any difference in kind, shape, layout, byte order, argument or
state gets a plan of its own. Keys hold no arrays, only their descriptions; plans hold none either, so the cache
keeps no memory alive. A call whose arguments cannot be hashed (a list for `stride`) is planned without caching.
Registering an implementation or a backend, and every autotuning record, empties the cache.
"""

from __future__ import annotations

import collections
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from . import dispatch, low_dtypes, precision, unbatched
from .plan import Plan
from .unbatched import Batched

DEFAULT_SIZE = 1024  # plans; a ResNet-50 training step uses about 130 distinct ones


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    size: int
    maxsize: int


class PlanCache:
    """A bounded LRU map from call keys to plans; safe to use from several threads."""

    def __init__(self, maxsize: int = DEFAULT_SIZE) -> None:
        self._plans: collections.OrderedDict[tuple, Plan] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.maxsize, self.hits, self.misses = maxsize, 0, 0
        self.generation = 0  # counts the clears: a plan kept elsewhere (fastconv.nn's layers) is valid while it holds

    def get(self, key: tuple) -> Plan | None:
        """The plan under `key`, made the most recent, or None. Lock-free: each dict operation is atomic under
        the GIL, and a plan evicted by another thread in between is simply not moved (the hit count may then
        be off by one)."""
        plan = self._plans.get(key)
        if plan is None:
            return None
        try:
            self._plans.move_to_end(key)
        except KeyError:
            pass
        self.hits += 1
        return plan

    def put(self, key: tuple, plan: Plan) -> None:
        with self._lock:
            self.misses += 1
            self._plans[key] = plan
            while len(self._plans) > self.maxsize:
                self._plans.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()
            self.generation += 1

    def resize(self, maxsize: int) -> None:
        with self._lock:
            self.maxsize = maxsize
            while len(self._plans) > maxsize:
                self._plans.popitem(last=False)

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self.hits, self.misses, len(self._plans), self.maxsize)


CACHE = PlanCache()
dispatch.on_change(CACHE.clear)
_EMPTY = inspect.Parameter.empty


class Op:
    """One public op: its planner, how to bind a call's arguments to it, and the cached lookup of its plans."""

    def __init__(
        self,
        planner: Callable[..., Plan],
        arrays: int | tuple[int, ...],
        batched: Batched | None = None,
        low_dtypes: bool = False,
    ) -> None:
        sig = inspect.signature(planner)
        self.name, self.planner, self.batched, self.low_dtypes = planner.__name__, planner, batched, low_dtypes
        self.array_positions = tuple(range(arrays)) if isinstance(arrays, int) else tuple(arrays)
        # the common case, arrays first, takes slices; otherwise the arrays are picked out by position
        self.n_arrays = (
            len(self.array_positions) if self.array_positions == tuple(range(len(self.array_positions))) else None
        )
        self.has_backward = "need_backward" in sig.parameters
        params = [p for p in sig.parameters.values() if p.name != "need_backward"]
        self.signature = sig.replace(parameters=params, return_annotation=inspect.Signature.empty)
        self.names = tuple(p.name for p in params)
        self.defaults = tuple(p.default for p in params)
        self.n_positional = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        self.n_required = sum(p.default is _EMPTY for p in params)

    def bind(self, args: tuple, kwargs: dict) -> tuple:
        """Every argument of a call, in parameter order, defaults filled in."""
        n = len(args)
        if n > self.n_positional:
            return self._bind_slowly(args, kwargs)
        if not kwargs and n >= self.n_required:
            return args + self.defaults[n:]
        values = list(args)
        for name, default in zip(self.names[n:], self.defaults[n:]):
            v = kwargs.pop(name, default)
            if v is _EMPTY:
                return self._bind_slowly(args, kwargs)
            values.append(v)
        if kwargs:  # unknown names, or a name given both by position and by keyword
            return self._bind_slowly(args, kwargs)
        return tuple(values)

    def _bind_slowly(self, args: tuple, kwargs: dict) -> tuple:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}: {exc}") from None
        bound.apply_defaults()
        return tuple(bound.arguments[n] for n in self.names)

    def arrays_of(self, args: tuple) -> tuple:
        """The array arguments of a bound call, in order."""
        n = self.n_arrays
        return args[:n] if n is not None else tuple(args[i] for i in self.array_positions)

    def split(self, args: tuple) -> tuple[tuple, tuple]:
        """(the array arguments, the others) of a bound call, or of leading positional arguments that hold every
        array parameter."""
        n = self.n_arrays
        if n is not None:
            return args[:n], args[n:]
        return self.arrays_of(args), tuple(v for i, v in enumerate(args) if i not in self.array_positions)

    def lookup(self, args: tuple, need_backward: bool = False) -> Plan:
        """The plan of a bound call, from the cache or planned now (and cached when the key can be hashed)."""
        arrays, rest = self.split(args)
        key = [self, need_backward, dispatch.state(), precision.current(), rest]
        try:
            for v in rest:
                key.append(tuple(map(type, v)) if type(v) is tuple else type(v))
            for a in arrays:
                key.append(None if a is None else (type(a), a.shape, a.strides, a.dtype))
            key = tuple(key)
            plan = CACHE.get(key)
        except (AttributeError, TypeError):  # a non-array where an array goes, or an unhashable argument
            return self.build(args, need_backward)
        if plan is None:
            plan = self.build(args, need_backward)
            CACHE.put(key, plan)
        return plan

    def build(self, args: tuple, need_backward: bool) -> Plan:
        """Validate the call and plan it (the planner's errors name the op, the argument and the shapes); an
        unbatched call as the call on a batch of one (fastconv.unbatched)."""
        names = tuple(self.names[i] for i in self.array_positions)
        if self.low_dtypes:
            low = low_dtypes.low_dtype(self.name, names, self.arrays_of(args))
            if low is not None:
                return self._build_low(args, need_backward, low)
        rule = self.batched
        if rule is None or not rule.applies(self.arrays_of(args)):
            return self._plan(args, need_backward)
        key = self.arrays_of(args)[rule.key]
        values = list(args)
        for i, a in zip(self.array_positions, rule.add_axis(self.name, names, self.arrays_of(args))):
            values[i] = a
        try:
            plan = self._plan(tuple(values), need_backward)
        except (TypeError, ValueError) as exc:
            note = f" (the unbatched '{names[rule.key]}' of shape {tuple(key.shape)} taken as a batch of one)"
            raise type(exc)(f"{exc}{note}") from None
        return unbatched.wrap(rule, plan)

    def _build_low(self, args: tuple, need_backward: bool, dtype: Any) -> Plan:
        """A float16 / bfloat16 call: planned on float32 stand-ins, wrapped to convert (fastconv.low_dtypes)."""
        values = list(args)
        for i in self.array_positions:
            values[i] = low_dtypes.stand_in(args[i])
        k = self.names.index("precision")
        if values[k] is None and dtype.name == "bfloat16":
            values[k] = "bf16"
        return low_dtypes.wrap(self.build(tuple(values), need_backward), dtype)

    def _plan(self, args: tuple, need_backward: bool) -> Plan:
        k = self.n_positional
        kwargs = dict(zip(self.names[k:], args[k:]))
        if self.has_backward:
            kwargs["need_backward"] = need_backward
        elif need_backward:
            raise TypeError(f"plan: {self.name} has no backward op, so it cannot be planned with need_backward=True")
        return self.planner(*args[:k], **kwargs)


def public(
    arrays: int | tuple[int, ...], batched: Batched | None = None, low_dtypes: bool = False
) -> Callable[[Callable[..., Plan]], Callable[..., Any]]:
    """Turn a planner into the public op (which runs its plan); `arrays`: the number of leading array parameters,
    or the positions of the array parameters; `batched`: the op's rule for unbatched inputs, if it takes them;
    `low_dtypes`: whether it takes float16 and bfloat16 arrays (fastconv.low_dtypes; it has a `precision`)."""

    def wrap(planner: Callable[..., Plan]) -> Callable[..., Any]:
        op = Op(planner, arrays, batched, low_dtypes)
        n_arrays = op.n_arrays

        @functools.wraps(planner)
        def call(*args: Any, **kwargs: Any) -> Any:
            args = op.bind(args, kwargs)
            if n_arrays is not None:
                return op.lookup(args)._run(*args[:n_arrays])
            return op.lookup(args)._run(*op.arrays_of(args))

        def plan_(*args: Any, need_backward: bool = False, **kwargs: Any) -> Plan:
            return op.lookup(op.bind(args, kwargs), need_backward)

        plan_.__doc__ = f"The plan of fastconv.{op.name}(...) for these arguments, without running it."
        call.__signature__ = op.signature  # type: ignore[attr-defined]
        call.plan = plan_  # type: ignore[attr-defined]
        call._op = op  # type: ignore[attr-defined]
        return call

    return wrap


def _op(fn: str, op: Any) -> Op:
    found = getattr(op, "_op", None)
    if not isinstance(found, Op):
        raise TypeError(f"{fn}: {op!r} is not a fastconv op")
    return found


def plan(op: Callable[..., Any], *args: Any, need_backward: bool = False, **kwargs: Any) -> Plan:
    """The plan `op(*args, **kwargs)` runs, without running it: `plan.run(*arrays)` runs it on arrays of the same
    signature, `plan.selection` says what runs, `plan.backward(...)` plans the backward op. With
    `need_backward=True` the backward is planned at once and the backend chosen can run both.

    >>> p = fastconv.plan(fastconv.conv2d, x, w, padding=1)
    >>> y = p.run(x, w, None)
    """
    found = _op("plan", op)
    return found.lookup(found.bind(args, kwargs), need_backward)


def select(op: Callable[..., Any], *args: Any, need_backward: bool = False, **kwargs: Any) -> tuple:
    """Which backend and algorithm `op(*args, **kwargs)` runs for each of its steps, without running it.

    >>> fastconv.select(fastconv.conv2d, x, w, padding=1)
    (Selection(op='conv2d', backend='numba', algo='conv2d_fwd_v8_winograd'),)
    """
    return plan(op, *args, need_backward=need_backward, **kwargs).selection


def plan_cache_info() -> CacheInfo:
    """Hits and misses since the start, and the number of plans held against the bound."""
    return CACHE.info()


def set_plan_cache_size(maxsize: int) -> None:
    """Bound the plan cache to `maxsize` plans (the least recently used go first); 0 disables caching."""
    if type(maxsize) is not int or maxsize < 0:
        raise ValueError(f"set_plan_cache_size: 'maxsize' must be an int >= 0, got {maxsize!r}")
    CACHE.resize(maxsize)


def clear_caches() -> None:
    """Forget every cached plan and every autotuning record."""
    dispatch.clear_autotune_cache()
    CACHE.clear()
