"""Compile settings shared by every Numba kernel: fast-math flags, the jit decorators, SIMD width and tile shapes.

Fast math keeps NaN and Inf semantics: we allow re-association (vectorised reductions), FMA contraction, signed
zeros and approximate reciprocals/functions, but never `nnan`/`ninf`, so a NaN in an input still reaches the output
exactly where the float64 reference puts one. Every kernel is `cache=True`; parallel kernels use `prange`, which
follows `numba.set_num_threads`. No kernel's result depends on the thread count: a parallel loop splits the work
into pieces fixed by the problem shape, never by the number of threads.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import numpy as np
from llvmlite import binding as _llvm
from numba import njit
from numba.extending import register_jitable

from ...arrays import empty
from ...params import ceil_div

register_jitable(ceil_div)  # the one ceil-division, callable from the kernels as from Python

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

# `kernel`: a parallel entry point (its body holds a prange). `inner`: a serial helper it calls.
kernel = functools.partial(njit, parallel=True, cache=True, fastmath=set(FASTMATH), nogil=True)
inner = functools.partial(njit, cache=True, fastmath=set(FASTMATH), nogil=True)

_FEATURES = _llvm.get_host_cpu_features()
#: bytes per SIMD register: 64 with AVX-512 (32 registers), else 32 (AVX2 has 16 registers).
VECTOR_BYTES = 64 if _FEATURES.get("avx512f", False) else 32

#: Register tile of the broadcast micro-kernels: ROWS broadcast operands x VECS loaded vectors, ROWS*VECS accumulators
#: plus VECS vectors and one broadcast in the register file (32 zmm with AVX-512, 16 ymm with AVX2). Pixel-vectorised
#: kernels (conv2d_fwd_v5_rows, conv2d_fwd_v6_pointwise): 8 output channels x 3 rows; measured against 6x4, 5x5 and 4x6
#: on cases a, c, h (1 thread): 2-20% faster. Channel-vectorised conv2d_fwd_v7_blocked: 6 pixels x 4 vectors, so that
#: one block holds 64 output channels. Numba's on-disk cache does not track these module constants: after editing them,
#: delete the __pycache__ folder.
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


_WORKSPACES = threading.local()


def workspace(name: str, size: int, dtype) -> np.ndarray:
    """A scratch buffer of `size` elements, reused across calls (per Python thread, name and dtype) so large
    layouts are not page-faulted in afresh each call; its contents are undefined. Grows, never shrinks."""
    cache = _WORKSPACES.__dict__.setdefault("buffers", {})
    key = (name, np.dtype(dtype).str)
    buf = cache.get(key)
    if buf is None or buf.size < size:
        buf = cache[key] = np.empty(max(size, 1), dtype)
    return buf[:size]
