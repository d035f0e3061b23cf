"""Compile settings shared by every Numba kernel: fast-math flags, the jit decorators, SIMD width and tile shapes.

Fast math keeps NaN and Inf semantics: we allow re-association (vectorised reductions), FMA contraction, signed
zeros and approximate reciprocals/functions, but never `nnan`/`ninf`, so a NaN in an input still reaches the output
exactly where the float64 reference puts one. Every kernel is `cache=True`; parallel kernels use `prange`, which
follows `numba.set_num_threads`. No kernel's result depends on the thread count: a parallel loop splits the work
into pieces fixed by the problem shape, never by the number of threads.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from llvmlite import binding as _llvm
from numba import njit
from numba.extending import register_jitable

from ...arrays import empty
from ...params import ceil_div
from ...plan import bound
from . import cache, threads

register_jitable(ceil_div)  # the one ceil-division, callable from the kernels as from Python
cache.install()  # cached kernels keyed by every source they compile code from (cache.py)

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

# `kernel`: a parallel entry point (its body holds a prange), with a serial twin. `inner`: a serial helper.
inner = functools.partial(njit, cache=True, fastmath=set(FASTMATH), nogil=True)

#: Work below which a call runs its kernels serially, in multiply-adds (a memory-bound op counts ELEMENT_WORK per
#: element it touches): starting and joining a parallel region costs a few microseconds (about 3 us with 2 threads
#: on the development VM, far more while other processes hold the cores), more than a small call's whole work.
#: Measured (benchmarks/overhead.py --crossover, bench_results/overhead.md): serial and parallel break even near
#: 450k multiply-adds for a 3x3 conv and its backward, and near 20k-60k elements for max pooling and ReLU.
SERIAL_WORK = 1 << 18
ELEMENT_WORK = 8

_SERIAL = threading.local()  # .on: the calls of this Python thread run their kernels' serial twins
_THREADS = threads.STATE  # ['forked']: a child of a fork the threading layer does not survive: all serial


class Kernel:
    """A parallel kernel and its serial twin: the same Python function compiled with and without parallel=True
    (without it, prange runs as range), the same fast-math flags, each cached on disk under its own name. A call
    runs the twin while `serially()` is active in the calling thread. Iterations split the work by the problem's
    shape, never by the thread count, so both give the same bits (tests compare them)."""

    def __init__(self, py_func: Callable, fastmath: frozenset = FASTMATH) -> None:
        self.py_func = py_func
        self.__name__, self.__doc__ = py_func.__name__, py_func.__doc__
        self.parallel = njit(parallel=True, cache=True, fastmath=set(fastmath), nogil=True)(py_func)
        # a code object of its own name: compiled code is named after it, so the two never share symbols
        code = py_func.__code__.replace(
            co_name=f"{py_func.__name__}_serial", co_qualname=f"{py_func.__qualname__}_serial"
        )
        twin = types.FunctionType(code, py_func.__globals__, code.co_name, py_func.__defaults__, py_func.__closure__)
        twin.__qualname__ = code.co_qualname  # and a cache index of its own
        self.serial = njit(cache=True, fastmath=set(fastmath), nogil=True)(twin)

    def __call__(self, *args: Any) -> Any:
        serial = getattr(_SERIAL, "on", False) or _THREADS["forked"]
        return (self.serial if serial else self.parallel)(*args)


kernel = Kernel

# Choose and start Numba's threading layer now (threads.py): before any kernel compiles, and because compiled code
# that asks for the thread id (a serial twin loaded from the disk cache) needs a started layer.
threads.setup()


@contextlib.contextmanager
def serially(on: bool = True) -> Iterator[None]:
    """Within the block, kernels called from this thread run serially (when `on`)."""
    before = getattr(_SERIAL, "on", False)
    _SERIAL.on = on or before
    try:
        yield
    finally:
        _SERIAL.on = before


def sized(fn: Callable, work: Callable[[Any], int]) -> Callable:
    """A registry function that runs `fn` with serial kernels when work(params) < SERIAL_WORK. A plan binds it to
    its step's params once (`bind`, see fastconv.plan.bound), which weighs the work then instead of per call."""

    def run(p: Any, *args: Any) -> Any:
        if getattr(_SERIAL, "on", False):  # called from a serial call: its kernels run serially anyway
            return fn(p, *args)
        return _run_sized(fn, work(p), p, args)

    def bind(p: Any) -> Callable:
        inner, amount = bound(fn, p), work(p)
        return lambda q, *args: _run_sized(inner, amount, q, args)

    run = functools.update_wrapper(run, fn)
    run.bind = bind  # type: ignore[attr-defined]
    return run


def _run_sized(fn: Callable, amount: int, p: Any, args: tuple) -> Any:
    if amount >= SERIAL_WORK or getattr(_SERIAL, "on", False):
        return fn(p, *args)
    _SERIAL.on = True
    try:
        return fn(p, *args)
    finally:
        _SERIAL.on = False


_FEATURES = _llvm.get_host_cpu_features()
#: bytes per SIMD register: 64 with AVX-512 (32 registers), else 32 (AVX2 has 16 registers).
VECTOR_BYTES = 64 if _FEATURES.get("avx512f", False) else 32

#: Register tile of the broadcast micro-kernels: ROWS broadcast operands x VECS loaded vectors, ROWS*VECS accumulators
#: plus VECS vectors and one broadcast in the register file (32 zmm with AVX-512, 16 ymm with AVX2). Pixel-vectorised
#: kernels (conv2d_fwd_v5_rows, conv2d_fwd_v6_pointwise): 8 output channels x 3 rows; measured against 6x4, 5x5 and 4x6
#: on cases a, c, h (1 thread): 2-20% faster. Channel-vectorised conv2d_fwd_v7_blocked: 6 pixels x 4 vectors, so that
#: one block holds 64 output channels. An edit here recompiles the kernels (cache.py).
TILE_ROWS, TILE_VECS = (8, 3) if VECTOR_BYTES == 64 else (4, 3)
BLOCKED_ROWS, BLOCKED_VECS = (6, 4) if VECTOR_BYTES == 64 else (4, 3)

#: How far ahead of its reads a streaming kernel (pooling, batch norm) prefetches, in bytes: one hint per cache
#: line. Max pool and batch norm on N8 C64 112x112 (1 thread, CPU time) ran 1.8-2x faster with it; 2, 4, 8 and
#: 16 KB measured alike within the noise.
PREFETCH_BYTES = 4096


def lanes(itemsize: int) -> int:
    """Elements per SIMD register for a dtype of `itemsize` bytes."""
    return VECTOR_BYTES // itemsize


def filled(shape: tuple, dtype, fill: Callable[[np.ndarray], object]) -> np.ndarray:
    """A new output buffer (from fastconv.arrays.empty, so tests see unwritten elements) that `fill` writes,
    skipped when the buffer is empty."""
    out = empty(shape, dtype)
    if out.size:
        fill(out)
    return out


#: Bytes of scratch each Python thread keeps between calls. Scratch past it (one huge call) is allocated for that
#: call and freed with it, so no call leaves more than this behind; `fastconv.release_workspaces()` frees the rest.
WORKSPACE_BYTES = 512 << 20

_WORKSPACES = threading.local()
_ALL_WORKSPACES: list[dict] = []  # every thread's buffers, for release_workspaces
_WORKSPACES_LOCK = threading.Lock()


def workspace(name: str, size: int, dtype: np.dtype) -> np.ndarray:
    """A scratch buffer of `size` elements, reused across calls (per Python thread, name and dtype) so large
    layouts are not page-faulted in afresh each call; its contents are undefined. A thread keeps at most
    WORKSPACE_BYTES of them; a buffer that would pass the bound is the call's own."""
    cache = getattr(_WORKSPACES, "buffers", None)
    if cache is None:
        cache = _WORKSPACES.buffers = {}
        with _WORKSPACES_LOCK:
            _ALL_WORKSPACES.append(cache)
    buf = cache.get((name, dtype))
    if buf is None or buf.size < size:
        kept = sum(b.nbytes for k, b in cache.items() if k != (name, dtype))
        buf = np.empty(max(size, 1), dtype)
        if kept + buf.nbytes <= WORKSPACE_BYTES:
            cache[(name, dtype)] = buf
        else:
            cache.pop((name, dtype), None)
    return buf[:size]


def release_workspaces() -> None:
    """Drop the scratch buffers every thread keeps (they are allocated again when next needed)."""
    with _WORKSPACES_LOCK:
        for cache in _ALL_WORKSPACES:
            cache.clear()
