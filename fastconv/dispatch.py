"""Backend registry and algorithm selection.

A *backend* is a named family of implementations working on one array kind ('numpy' or 'cupy'). Built-in
backends are registered here by module name and imported on first use, so `import fastconv` loads no compiler.
An *implementation* is one (op, backend, algo) entry with a `supports(params)` predicate and a priority; the
backend module registers its entries with `register` when it is imported. An entry may carry `traits`, an
op-specific description the plan reads (fastconv.params.ConvTraits for conv2d). Plans (fastconv.plan) call
`select` once per call signature; every change to the registry or to the autotuning records is announced to
the listeners of `on_change` (the plan cache), which drop what they derived from it.

Which implementation runs is decided in two steps:
  1. the backend: `backend=` argument > `use_backend()` context > `set_backend()` > the array kind's default
     (the lowest-ranked available backend for that kind that supports the call);
  2. the algorithm: `algo=` by name, or "auto": the supported entry of highest priority (`choose`, a pure function).

Op names and the signatures every backend implements (params objects come from fastconv.params; arrays are
C-contiguous, native byte order, of the backend's array kind; nothing may be written into an input). One
exception: an implementation registered with `traits=...(channels_last=True)` (fastconv.params.Traits; conv2d,
batch_norm(_bwd), max_pool2d(_bwd)) receives, when p.channels_last is set, x (and gy) as channels_last views
(shape (N, C, H, W) over a C-contiguous, native (N, H, W, C) buffer, as PyTorch's channels_last) and may return
its 4-D outputs in either order; every other implementation gets C-contiguous NCHW.
    conv2d(p, x, w, b_or_None) -> y                      p.padding_mode is always 'zeros' here
    conv2d_bwd_data(p, gy, w) -> gx;  conv2d_bwd_weight(p, gy, x) -> gw;  conv2d_bwd_bias(p, gy) -> gb
    max_pool2d(p, x, need_indices) -> (y, int64 indices or None);  max_pool2d_bwd(p, gy, x) -> gx
    avg_pool2d(p, x) -> y;  avg_pool2d_bwd(p, gy) -> gx
    adaptive_avg_pool2d(p, x) -> y;  adaptive_avg_pool2d_bwd(p, gy) -> gx
    global_avg_pool2d(p, x) -> y;  global_avg_pool2d_bwd(p, gy) -> gx     p is an AdaptivePoolParams with P=Q=1
    batch_norm(p, x, w, b, rm, rv) -> (y, batch_mean, batch_var)   biased batch stats in training, else None
    batch_norm_bwd(p, gy, x, w, rm, rv) -> (gx, gw, gb)
    relu(p, x) -> y;  relu_bwd(p, gy, y) -> gx
    linear(p, x, w, b_or_None) -> y                      x (N, C), w (K, C), y (N, K): leading dims flattened
    linear_bwd_data(p, gy, w) -> gx;  linear_bwd_weight(p, gy, x) -> gw;  linear_bwd_bias(p, gy) -> gb
    row_norm(p, x, w, b) -> (y, mean, var)       group/layer/instance norm (fastconv.params.norm): per-row float64
                                                 mean and biased variance; w, b of p.A elements
    row_norm_bwd(p, gy, x, w) -> (gx, gw, gb)
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

OPS = (
    "conv2d",
    "conv2d_bwd_data",
    "conv2d_bwd_weight",
    "conv2d_bwd_bias",
    "max_pool2d",
    "max_pool2d_bwd",
    "avg_pool2d",
    "avg_pool2d_bwd",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_bwd",
    "global_avg_pool2d",
    "global_avg_pool2d_bwd",
    "batch_norm",
    "batch_norm_bwd",
    "relu",
    "relu_bwd",
    "linear",
    "linear_bwd_data",
    "linear_bwd_weight",
    "linear_bwd_bias",
    "row_norm",
    "row_norm_bwd",
)


def _always(p: Any) -> bool:
    return True


@dataclass(frozen=True)
class Impl:
    """One implementation of one op in one backend."""

    op: str
    backend: str
    algo: str
    fn: Callable = field(repr=False, compare=False)
    supports: Callable[[Any], bool] = field(default=_always, repr=False, compare=False)
    priority: int | Callable[[Any], float] = field(default=0, repr=False, compare=False)
    requires: str = ""  # what `supports` accepts, in words, for error messages
    traits: Any = field(default=None, repr=False, compare=False)  # op-specific description (ConvTraits)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def rank(self, p: Any) -> float:
        return self.priority(p) if callable(self.priority) else self.priority


@dataclass
class Backend:
    name: str
    array_kind: str  # 'numpy' or 'cupy'
    module: str | None = None  # imported on first use; registers the backend's implementations
    default_rank: int | None = None  # lower is preferred for implicit choice; None: only when named
    unavailable: Callable[[], str | None] = field(default=lambda: None, repr=False)
    describe: Callable[[], str] = field(default=lambda: "", repr=False)
    loaded: bool = False


class BackendStatus(NamedTuple):
    available: bool
    reason: str  # why not, or '' when available
    array_kind: str
    detail: str = ""  # how it runs here, when available (the numba backend: its threading layer and why)


class Selection(NamedTuple):
    """Which implementation a call runs: the answer of `fastconv.select`."""

    op: str
    backend: str
    algo: str

    def __str__(self) -> str:
        return f"{self.op}: {self.backend}/{self.algo}"


_BACKENDS: dict[str, Backend] = {}
_IMPLS: dict[tuple[str, str], dict[str, Impl]] = {}  # (op, backend) -> algo -> Impl, in registration order
_GLOBAL_BACKEND: list[str | None] = [None]
_CONTEXT_BACKEND: contextvars.ContextVar[str | None] = contextvars.ContextVar("fastconv_backend", default=None)
_AUTOTUNE: contextvars.ContextVar[bool] = contextvars.ContextVar("fastconv_autotune", default=False)
_TUNED: dict[tuple[str, str, Any], str] = {}  # (op, backend, params) -> fastest algo measured
_LOAD_LOCK = threading.RLock()
_LISTENERS: list[Callable[[], None]] = []  # told of every change to the registry or the autotuning records
_RELEASERS: list[Callable[[], None]] = []  # free the backends' scratch memory


def on_change(listener: Callable[[], None]) -> None:
    """Call `listener()` after every registration, every change to the autotuning records and every `changed()`."""
    _LISTENERS.append(listener)


def on_release(release: Callable[[], None]) -> None:
    """Have `release_workspaces()` call `release()` (a backend's way to free the scratch memory it keeps)."""
    _RELEASERS.append(release)


def release_workspaces() -> None:
    """Free the scratch buffers the backends keep between calls (numba: per thread, up to WORKSPACE_BYTES)."""
    for release in _RELEASERS:
        release()


def changed() -> None:
    """Something selection depends on changed (a backend's tunables): the listeners (the plan cache) forget."""
    for listener in _LISTENERS:
        listener()


# ---------------------------------------------------------------------------------------------- registration
def add_backend(name: str, array_kind: str, module: str | None = None, default_rank: int | None = None) -> None:
    """Declare a built-in backend whose implementations `module` registers when imported."""
    _BACKENDS[name] = Backend(name, array_kind, module, default_rank)
    changed()


def register(
    op: str,
    backend: str,
    algo: str,
    fn: Callable,
    *,
    supports: Callable[[Any], bool] = _always,
    priority: int | Callable[[Any], float] = 0,
    requires: str = "",
    traits: Any = None,
) -> None:
    """Register one (op, backend, algo) implementation. The backend must have been declared."""
    if op not in OPS:
        raise ValueError(f"register: unknown op {op!r}; ops are {', '.join(OPS)}")
    if backend not in _BACKENDS:
        raise ValueError(f"register: unknown backend {backend!r}; declare it first")
    _IMPLS.setdefault((op, backend), {})[algo] = Impl(op, backend, algo, fn, supports, priority, requires, traits)
    changed()


def set_description(backend: str, describe: Callable[[], str]) -> None:
    """Install the function that says how `backend` runs here (for fastconv.backends() and `fastconv backends`)."""
    _BACKENDS[backend].describe = describe


def set_unavailable_probe(backend: str, probe: Callable[[], str | None]) -> None:
    """Install the function that says why `backend` cannot run here (None when it can)."""
    _BACKENDS[backend].unavailable = probe
    changed()


def register_backend(name: str, impl: Mapping[str, Callable] | Any, *, array_kind: str = "numpy") -> None:
    """Register a user backend. `impl` maps op names to functions (a dict, or an object/module with attributes
    named after the ops); each becomes algo 'default'. A user backend runs only when named (backend=,
    use_backend or set_backend). See this module's docstring for the op signatures."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_backend: 'name' must be a non-empty str, got {name!r}")
    if array_kind not in ("numpy", "cupy"):
        raise ValueError(f"register_backend: 'array_kind' must be 'numpy' or 'cupy', got {array_kind!r}")
    get = impl.get if isinstance(impl, Mapping) else (lambda op: getattr(impl, op, None))
    found = {op: get(op) for op in OPS if callable(get(op))}
    if not found:
        raise ValueError(f"register_backend: {name!r} implements none of the ops {', '.join(OPS)}")
    _BACKENDS[name] = Backend(name, array_kind, loaded=True)
    for key in [k for k in _IMPLS if k[1] == name]:
        del _IMPLS[key]
    for op, fn in found.items():
        register(op, name, "default", fn)


def _load(backend: Backend) -> None:
    """Import the backend's module once; other threads wait until its registrations are complete."""
    if backend.loaded:
        return
    with _LOAD_LOCK:
        if not backend.loaded:
            if backend.module:
                importlib.import_module(backend.module)
            backend.loaded = True


def backend_status(name: str) -> BackendStatus:
    backend = _BACKENDS[name]
    try:
        _load(backend)
        reason = backend.unavailable()
        detail = backend.describe() if reason is None else ""
    except Exception as exc:  # an unavailable backend must never break the others
        reason, detail = f"{type(exc).__name__}: {exc}", ""
    return BackendStatus(reason is None, reason or "", backend.array_kind, detail)


def backends() -> dict[str, BackendStatus]:
    """Every registered backend: whether it can run here, why not, and the array kind it takes."""
    return {name: backend_status(name) for name in _BACKENDS}


def algos(op: str, backend: str) -> list[str]:
    """The algorithm names registered for (op, backend)."""
    _load(_backend(backend, "algos"))
    return list(_IMPLS.get((op, backend), {}))


def implementation(op: str, backend: str, algo: str) -> Impl:
    """The registered implementation of (op, backend, algo), e.g. of a Selection."""
    _load(_backend(backend, "implementation"))
    return _IMPLS[(op, backend)][algo]


# ---------------------------------------------------------------------------------------------- preference
def _backend(name: Any, fn: str) -> Backend:
    if not isinstance(name, str):
        raise TypeError(f"{fn}: backend name must be a str, got {name!r}")
    if name not in _BACKENDS:
        raise ValueError(f"{fn}: unknown backend {name!r}; known backends: {', '.join(_BACKENDS)}")
    return _BACKENDS[name]


def set_backend(name: str | None) -> None:
    """Set the process-wide backend (None restores the per-array-kind default)."""
    if name is not None:
        _backend(name, "set_backend")
    _GLOBAL_BACKEND[0] = name


def get_backend() -> str | None:
    """The backend set by use_backend / set_backend, or None (choose by array kind)."""
    return _CONTEXT_BACKEND.get() or _GLOBAL_BACKEND[0]


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the calls inside the `with` block on `name` (thread- and task-local)."""
    _backend(name, "use_backend")
    token = _CONTEXT_BACKEND.set(name)
    try:
        yield
    finally:
        _CONTEXT_BACKEND.reset(token)


# ---------------------------------------------------------------------------------------------- autotuning
@contextlib.contextmanager
def autotune(enabled: bool = True) -> Iterator[None]:
    """Inside the block, an algo='auto' conv or linear call whose (op, backend, params) has not been tuned yet
    times every supported algorithm on its own inputs and remembers the fastest; later 'auto' calls with the same
    params use it, inside the block or not. `clear_autotune_cache()` forgets."""
    token = _AUTOTUNE.set(enabled)
    try:
        yield
    finally:
        _AUTOTUNE.reset(token)


def autotuning() -> bool:
    return _AUTOTUNE.get()


def state() -> tuple[str | None, bool]:
    """What selection depends on besides the call: the backend preference and whether autotuning is on."""
    return _CONTEXT_BACKEND.get() or _GLOBAL_BACKEND[0], _AUTOTUNE.get()


def tuned(op: str, backend: str, p: Any) -> str | None:
    """The algorithm autotuning measured fastest for (op, backend, params), or None."""
    return _TUNED.get((op, backend, p))


def remember(op: str, backend: str, p: Any, algo: str) -> None:
    _TUNED[(op, backend, p)] = algo
    changed()


def clear_autotune_cache() -> None:
    """Forget every autotuning record (and so every plan built on one)."""
    _TUNED.clear()
    changed()


def supported(op: str, backend: str, p: Any) -> list[Impl]:
    """Every implementation of (op, backend) that supports params p, in registration order."""
    return [i for i in _IMPLS.get((op, backend), {}).values() if i.supports(p)]


# ---------------------------------------------------------------------------------------------- selection
def choose(impls: list[Impl], p: Any, algo: str, where: str = "", fn: str = "select") -> Impl:
    """Pure selection among one backend's implementations of one op (`where` names them for messages).

    algo='auto': the supported entry of highest priority (first registered wins ties); otherwise the named entry,
    which must support `p`. Raises ValueError naming what exists and what it needs.
    """
    if algo != "auto":
        named = [i for i in impls if i.algo == algo]
        if not named:
            have = ", ".join(i.algo for i in impls) or "none"
            raise ValueError(f"{fn}: no algorithm {algo!r} for {where}; available: {have}")
        if not named[0].supports(p):
            need = f" (it needs {named[0].requires})" if named[0].requires else ""
            raise ValueError(f"{fn}: algorithm {algo!r} of {where} does not support this call{need}: {p}")
        return named[0]
    ok = [i for i in impls if i.supports(p)]
    if not ok:
        needs = "; ".join(f"{i.algo} needs {i.requires or '?'}" for i in impls) or "it has no implementation"
        raise ValueError(f"{fn}: nothing in {where} supports this call ({needs}): {p}")
    return max(ok, key=lambda i: i.rank(p))  # max keeps the first of equal ranks


def candidates(array_kind: str, backend: str | None, fn: str) -> list[Backend]:
    """Backends to try, in order: the one named (argument or context), else the array kind's defaults."""
    name = backend if backend is not None else get_backend()
    if name is not None:
        chosen = _backend(name, fn)
        if chosen.array_kind != array_kind:
            raise TypeError(
                f"{fn}: backend {name!r} takes {chosen.array_kind} arrays but got {array_kind} arrays; "
                f"convert the inputs or choose a {array_kind} backend"
            )
        status = backend_status(name)
        if not status.available:
            raise RuntimeError(f"{fn}: backend {name!r} is not available here: {status.reason}")
        return [chosen]
    ranked = sorted(
        (b for b in _BACKENDS.values() if b.array_kind == array_kind and b.default_rank is not None),
        key=lambda b: b.default_rank,
    )
    usable = [b for b in ranked if backend_status(b.name).available]
    if not usable:
        why = "; ".join(f"{b.name}: {backend_status(b.name).reason}" for b in ranked) or "none registered"
        raise RuntimeError(f"{fn}: no backend available for {array_kind} arrays ({why})")
    return usable


def select(
    op: str, p: Any, array_kind: str, backend: str | None = None, algo: str = "auto", fn: str = "select"
) -> Impl:
    """The implementation that runs `op` on params `p` for arrays of `array_kind`."""
    if not isinstance(algo, str):
        raise TypeError(f"{fn}: 'algo' must be a str, got {algo!r}")
    tried = candidates(array_kind, backend, fn)
    errors = []
    for b in tried:
        impls = list(_IMPLS.get((op, b.name), {}).values())
        if algo == "auto" and (op, b.name, p) in _TUNED:
            return _IMPLS[(op, b.name)][_TUNED[(op, b.name, p)]]
        if algo != "auto" and len(tried) > 1 and not any(i.algo == algo for i in impls):
            errors.append(f"{b.name}: no algorithm {algo!r} (available: {', '.join(i.algo for i in impls) or 'none'})")
            continue
        try:
            return choose(impls, p, algo, f"op {op} on backend {b.name!r}", fn)
        except ValueError as exc:
            if len(tried) == 1:
                raise
            errors.append(str(exc))
    raise ValueError(f"{fn}: no backend can run {op} for this call: " + " | ".join(errors))
