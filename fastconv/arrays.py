"""Array-kind detection and checks shared by every op: NumPy vs CuPy, dtype, layout.

Nothing here imports CuPy: a CuPy array is recognised by its type's module, so `import fastconv` works on a
machine without CuPy or a GPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def array_kind(a: Any) -> str | None:
    """'numpy' for a NumPy ndarray, 'cupy' for a CuPy ndarray, None for anything else."""
    if isinstance(a, np.ndarray):
        return "numpy"
    module = type(a).__module__ or ""
    if module.split(".")[0] == "cupy" and type(a).__name__ == "ndarray":
        return "cupy"
    return None


def array_module(kind: str):
    """The array namespace (numpy or cupy) for an array kind."""
    if kind == "numpy":
        return np
    import cupy  # noqa: PLC0415 - only reached with CuPy arrays in hand

    return cupy


def synchronize(kind: str, result: Any = None) -> Any:
    """Wait until the device has finished the work queued so far (a no-op for NumPy); returns `result`."""
    if kind == "cupy":
        array_module(kind).cuda.get_current_stream().synchronize()
    return result


def describe(a: Any) -> str:
    """Short description of a value for error messages: 'float32 array of shape (2, 3)' or its type."""
    if array_kind(a) is not None:
        return f"{a.dtype} array of shape {tuple(a.shape)}"
    return f"{type(a).__name__}"


def check_array(fn: str, name: str, a: Any, ndim: int | tuple[int, ...] | None, layout: str = "") -> None:
    """Reject non-arrays, non-float dtypes and (unless ndim is None) the wrong number of dimensions.

    `layout` spells the expected axes ('(N, C, H, W)') for the message.
    """
    if array_kind(a) is None:
        raise TypeError(f"{fn}: '{name}' must be a NumPy or CuPy array, got {describe(a)}")
    if a.dtype not in FLOAT_DTYPES and native_dtype(a) not in FLOAT_DTYPES:
        raise TypeError(f"{fn}: '{name}' must have dtype float32 or float64, got {a.dtype} (shape {tuple(a.shape)})")
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if ndims is not None and a.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{fn}: '{name}' must be {want} {layout}, got shape {tuple(a.shape)}")


def check_same(fn: str, arrays: dict[str, Any]) -> tuple[str, np.dtype]:
    """All given arrays (None entries skipped) share one array kind and one dtype; returns (kind, dtype)."""
    named = [(n, a) for n, a in arrays.items() if a is not None]
    first_name, first = named[0]
    kind = array_kind(first)
    for name, a in named[1:]:
        if array_kind(a) != kind:
            raise TypeError(
                f"{fn}: '{name}' is a {array_kind(a)} array but '{first_name}' is a {kind} array; "
                "pass all arrays of one call on the same device"
            )
        if native_dtype(a) != native_dtype(first):
            raise TypeError(
                f"{fn}: '{name}' has dtype {a.dtype} (shape {tuple(a.shape)}) but '{first_name}' has dtype "
                f"{first.dtype} (shape {tuple(first.shape)}); cast them to one dtype"
            )
    return kind, native_dtype(first)


def native_dtype(a: Any) -> np.dtype:
    """The array's dtype in native byte order (float32 for a big-endian '>f4')."""
    return np.dtype(a.dtype).newbyteorder("=")


def native(a: Any) -> Any:
    """C-contiguous, native-byte-order version of `a` (the same object when it already is one)."""
    if a is None:
        return None
    if isinstance(a, np.ndarray):
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        return np.ascontiguousarray(a)
    return array_module("cupy").ascontiguousarray(a)


def is_channels_last(a: Any) -> bool:
    """A 4-D array in channels_last order: a (0, 3, 1, 2) view of a C-contiguous (N, H, W, C) buffer, as PyTorch's
    torch.channels_last. An array that is also C-contiguous (C == 1, H == W == 1, empty) counts as NCHW."""
    return a.ndim == 4 and not a.flags.c_contiguous and a.transpose(0, 2, 3, 1).flags.c_contiguous


def native_channels_last(a: Any) -> Any:
    """Native-byte-order channels_last version of the 4-D `a` (the same buffer when it already is one)."""
    return native(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


_POISON = [False]


def empty(shape: tuple, dtype: Any, kind: str = "numpy") -> Any:
    """An uninitialised output buffer. Backends allocate every output through this, so that under
    `poisoned_outputs()` each one starts filled with NaN (int: the smallest int) and unwritten elements show."""
    xp = array_module(kind)
    if not _POISON[0]:
        return xp.empty(shape, dtype)
    dtype = np.dtype(dtype)
    fill = np.nan if dtype.kind == "f" else np.iinfo(dtype).min
    return xp.full(shape, fill, dtype)


@contextlib.contextmanager
def poisoned_outputs(on: bool = True) -> Iterator[None]:
    """Within the block, `empty` returns poisoned buffers (a testing aid)."""
    before, _POISON[0] = _POISON[0], on
    try:
        yield
    finally:
        _POISON[0] = before
