"""Compile settings shared by every Numba kernel: fast-math flags, the jit decorators, SIMD width and tile shapes.

Fast math keeps NaN and Inf semantics: we allow re-association (vectorised reductions), FMA contraction, signed
zeros and approximate reciprocals/functions, but never `nnan`/`ninf`, so a NaN in an input still reaches the output
exactly where the float64 reference puts one. Every kernel is `cache=True`; a kernel's closing `prange` loop runs
in parts on Numba's threading layer, on as many threads as `numba.set_num_threads` says (`Kernel`, launch.py). No
kernel's result depends on the thread count: its iterations are fixed by the problem shape, independent, and each
writes its own outputs.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import textwrap
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
from . import cache, launch, threads

register_jitable(ceil_div)  # the one ceil-division, callable from the kernels as from Python
cache.install()  # cached kernels keyed by every source they compile code from (cache.py)

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

# `kernel`: an entry point whose closing prange loop runs in parts on several threads. `inner`: a helper.
inner = functools.partial(njit, cache=True, fastmath=set(FASTMATH), nogil=True)

#: Work below which a call runs its kernels serially, in multiply-adds (a memory-bound op counts ELEMENT_WORK per
#: element it touches): starting and joining a parallel region costs a few microseconds (about 3 us with 2 threads
#: on the development VM, far more while other processes hold the cores), more than a small call's whole work.
#: Measured (benchmarks/overhead.py --crossover, bench_results/overhead.md): serial and parallel break even near
#: 450k multiply-adds for a 3x3 conv and its backward, and near 20k-60k elements for max pooling and ReLU.
SERIAL_WORK = 1 << 18
ELEMENT_WORK = 8

_SERIAL = threading.local()  # .on: the calls of this Python thread run their kernels on this thread alone
_THREADS = threads.STATE  # ['forked']: a child of a fork the threading layer does not survive: all serial


def thread_slot() -> int:
    """Inside a kernel: the index of the thread running this part among the threads of the call (0 serially),
    below NUMBA_NUM_THREADS: where that thread's scratch lives. The kernel compiler substitutes it."""
    raise TypeError("thread_slot() is only meaningful inside a numba_cpu kernel")


class Kernel:
    """A Numba kernel whose body ends in one `prange` loop, compiled once (serially, with the fast-math flags and
    the error model of Numba's parallel loop bodies: no division-by-zero checks) with that loop cut to one part of
    its iterations: part i of `parts` runs iterations [n*i // parts, n*(i+1) // parts).
    A call runs its parts on the threading layer's threads (launch.py), or all on the calling thread while
    `serially()` is active there, with one thread, or in a child forked from a layer that does not survive fork
    (threads.py). The code before the loop runs once per part, so it may only compute locals. Iterations are
    independent and write disjoint outputs, so every thread count gives the same bits (tests compare them)."""

    def __init__(self, py_func: Callable, fastmath: frozenset = FASTMATH) -> None:
        self.py_func = py_func
        self.__name__, self.__doc__ = py_func.__name__, py_func.__doc__
        self.parts = njit(cache=True, fastmath=set(fastmath), nogil=True, error_model="numpy")(_partitioned(py_func))

    def __call__(self, *args: Any) -> None:
        if getattr(_SERIAL, "on", False) or _THREADS["forked"]:
            self.parts(*args, 0, 1, 0)
        elif self.parts(*args, 0, PARTS_PER_THREAD, -1):  # slot -1: all parts, on the layer's threads
            self.parts(*args, 0, 1, 0)  # a part raised on a worker thread, where its exception stayed: raise it here
            raise RuntimeError(f"numba kernel {self.__name__} failed on a worker thread")


#: Parts per thread of a parallel call: the threading layer hands them out as it would prange iterations.
PARTS_PER_THREAD = 1


_PART, _PARTS, _SLOT, _COUNT = "kernel_part_", "kernel_parts_", "kernel_slot_", "kernel_n_"
_RUN = "kernel_run_parts_"  # launch.run_parts, under a name of its own in the kernel's module
# the part's iterations; max(0, ..) lets LLVM see them non-negative: no sign fix-ups for // and %, no wraparound
# checks on the indices made from them (without it the kernels ran 15-25% slower)
_PART_RANGE = f"range(max(0, {_COUNT} * {_PART} // {_PARTS}), min({_COUNT}, {_COUNT} * ({_PART} + 1) // {_PARTS}))"


def _partitioned(py_func: Callable) -> Callable:
    """py_func with three more parameters (part, parts, slot): its closing `for i in prange(n)` runs only the
    part's iterations and `thread_slot()` reads the slot; slot < 0 asks it to run all its parts on the threading
    layer's threads (launch.run_parts calls this same compiled function for each). It returns 0, or from a launch
    1 if a part failed. Line numbers stay those of the source file."""
    name = py_func.__qualname__
    tree = ast.parse(textwrap.dedent(inspect.getsource(py_func)))
    fn = tree.body[0]
    fn.decorator_list = []
    loop = fn.body[-1]

    def is_prange(node: ast.AST) -> bool:
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "prange"

    nested = [node for node in ast.walk(fn) if is_prange(node) and node is not getattr(loop, "iter", None)]
    if not (isinstance(loop, ast.For) and is_prange(loop.iter) and len(loop.iter.args) == 1) or nested:
        raise TypeError(f"kernel {name}: its body must end in its only prange loop, over prange(n)")
    if any(isinstance(node, ast.Return) for node in ast.walk(fn)):
        raise TypeError(f"kernel {name}: a kernel returns nothing (it writes its outputs)")
    count = ast.Assign([ast.Name(_COUNT, ast.Store())], loop.iter.args[0])
    parted = ast.For(loop.target, ast.parse(_PART_RANGE, mode="eval").body, loop.body, loop.orelse)
    arguments = ", ".join(a.arg for a in fn.args.args)
    launch_ = ast.parse(f"if {_SLOT} < 0:\n    return {_RUN}(({arguments},), {_PARTS})").body[0]  # parts: per thread
    done = ast.parse("return 0").body[0]
    launch_, count, parted, done = (
        ast.fix_missing_locations(ast.copy_location(n, loop)) for n in (launch_, count, parted, done)
    )
    fn.body[-1:] = [count, parted, done]
    fn.body.insert(0, launch_)
    fn.args.args += [ast.arg(_PART), ast.arg(_PARTS), ast.arg(_SLOT)]
    py_func.__globals__.setdefault(_RUN, launch.run_parts)
    ast.fix_missing_locations(_SlotReader().visit(fn))
    ast.increment_lineno(tree, py_func.__code__.co_firstlineno - 1)
    module = compile(tree, py_func.__code__.co_filename, "exec")
    code = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    return types.FunctionType(code, py_func.__globals__, py_func.__name__, py_func.__defaults__)


class _SlotReader(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Name) and node.func.id == "thread_slot":
            return ast.copy_location(ast.Name(_SLOT, ast.Load()), node)
        return self.generic_visit(node)


kernel = Kernel

# Choose and start Numba's threading layer now (threads.py): before any kernel compiles (their launch code calls
# into it), and because compiled code that asks for the thread id needs a started layer.
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
