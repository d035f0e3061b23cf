"""Compute precisions of the convolutions and linear: `precision=` and `use_precision`.

    "fp32"  the default: float32 (or float64) operands as they are, exact products.
    "bf16"  float32 in and out; x, weight and grad_out rounded to bfloat16 (round to nearest, ties to even: the
            8-bit significand of torch.bfloat16), the products accumulated in float32 - what torch calls
            fp32_precision="bf16". Each product of two bfloat16 values is exact in float32, so a kernel differs
            from the float64 reference on the rounded operands only by its float32 accumulation.
    "tf32"  as bf16 with TF32's 11-bit significand, rounded to nearest with ties away from zero (cvt.rna.tf32.f32):
            the NVIDIA tensor-core format. The numpy reference and the CUDA backends compute it; the numba backend
            (CPU) refuses it.

An implementation registered with `Traits(precisions=(...))` takes the float32 operands of those precisions as
they are and rounds them itself (the AMX kernels convert to bfloat16 while packing); for every other
implementation the plan rounds the operands first (`rounding`), so any fp32 kernel is also the emulated rung of
a reduced precision. The bias is never rounded, nor is what reads only grad_out (the bias gradient). float64 arrays
are rounded through float32 (as a cast to a float32 tensor would be), then computed in float64: the reference.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .arrays import array_kind, array_module

PRECISIONS = ("fp32", "bf16", "tf32")
# the ops whose operands a precision rounds: each takes (p, a, b, ...) and rounds a and b
ROUNDED_OPS = {"conv2d", "conv2d_bwd_data", "conv2d_bwd_weight", "linear", "linear_bwd_data", "linear_bwd_weight"}
# backends that cannot compute a precision, and why
_REFUSED = {("numba", "tf32"): "TF32 is the NVIDIA tensor-core format; the CPU kernels compute 'fp32' and 'bf16'"}
_CONTEXT: contextvars.ContextVar[str | None] = contextvars.ContextVar("fastconv_precision", default=None)


def _check(fn: str, precision: Any) -> str:
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"{fn}: 'precision' must be one of {PRECISIONS}, got {precision!r}")
    return precision


@contextlib.contextmanager
def use_precision(precision: str) -> Iterator[None]:
    """Compute the convolutions and linear inside the block in `precision` where a call passes none
    (fastconv.nn layers and the models included)."""
    token = _CONTEXT.set(_check("use_precision", precision))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def current() -> str | None:
    """The precision `use_precision` set here, or None (part of each plan's cache key)."""
    return _CONTEXT.get()


def resolve(fn: str, precision: str | None) -> str:
    """A call's precision: its own argument, else the `use_precision` context, else "fp32"."""
    if precision is None:
        return _CONTEXT.get() or "fp32"
    return _check(fn, precision)


def check_backend(fn: str, backend: str, precision: str) -> None:
    why = _REFUSED.get((backend, precision))
    if why:
        raise ValueError(f"{fn}: the {backend} backend cannot compute precision={precision!r}: {why}")


def rounded(a: Any, precision: str) -> Any:
    """A new array of a's kind, dtype and shape holding a's values rounded to `precision` ("bf16" or "tf32");
    NaN and infinities kept, values past the largest finite one rounded to infinity as a cast would."""
    xp = array_module(array_kind(a))
    x = a.astype(np.float32)  # a copy: the bit operations below may then work in place
    u = x.view(np.uint32)
    nan = xp.isnan(x)
    if precision == "bf16":
        u += np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
        u &= np.uint32(0xFFFF0000)
    else:
        u += np.uint32(0x1000)
        u &= np.uint32(0xFFFFE000)
    x[nan] = np.nan
    return x if a.dtype == np.float32 else x.astype(a.dtype)


_ROUNDERS: dict[str, Callable[[Any, str], Any]] = {}  # backend -> its own `rounded` (same results, faster)


def register_rounder(backend: str, rounder: Callable[[Any, str], Any]) -> None:
    """Let `backend`'s emulated rung round with its own kernel: rounder(a, precision) -> as rounded(a, precision)."""
    _ROUNDERS[backend] = rounder


def rounding(fn: Callable, precision: str, backend: str = "") -> Callable:
    """fn(p, a, b, *rest) with a and b rounded to `precision` first (by the backend's rounder when it has one)."""
    round_ = _ROUNDERS.get(backend, rounded)

    def run(p: Any, a: Any, b: Any, *rest: Any) -> Any:
        return fn(p, round_(a, precision), round_(b, precision), *rest)

    run.__name__ = getattr(fn, "__name__", "run")
    return run
