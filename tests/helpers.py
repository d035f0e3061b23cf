"""Shared test helpers: random data, comparisons against the tolerance table (fastconv.tolerance), gradient checks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fastconv.tolerance import tolerance

try:
    import torch
except ImportError:  # torch is an optional oracle
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (optional cross-check)")


def rand(rng: np.random.Generator, shape: tuple, dtype=np.float64) -> np.ndarray:
    """Fresh standard-normal data (never zeros) of the given dtype."""
    return rng.standard_normal(shape).astype(dtype)


def assert_close(actual, expected, family: str, dtype, what: str = "") -> None:
    """Same shape, NaN in the same places, the expected infinities exactly, and max |actual - expected| / max
    |expected| over the finite expected values within tolerance."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    nan_a, nan_e = np.isnan(actual), np.isnan(expected)
    assert (nan_a == nan_e).all(), (
        f"{what}: {int((nan_a != nan_e).sum())} elements differ in NaN-ness (unwritten outputs stay NaN when poisoned)"
    )
    inf_e = np.isinf(expected)
    assert (actual[inf_e] == expected[inf_e]).all(), (
        f"{what}: {int((actual[inf_e] != expected[inf_e]).sum())} expected infinities differ"
    )
    if actual.size == 0:
        return
    ok = ~nan_e & ~inf_e
    scale = max(float(np.abs(expected[ok]).max(initial=0.0)), 1e-30)
    err = float(np.abs(actual[ok].astype(np.float64) - expected[ok]).max(initial=0.0)) / scale
    tol = tolerance(family, dtype)
    assert err <= tol, f"{what}: relative max error {err:.3g} > {tol:.3g} ({dtype})"


def directional_grad_check(
    f: Callable[..., float],
    inputs: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    rng: np.random.Generator,
    h: float = 1e-6,
    tol: float = 1e-6,
    n_dirs: int = 3,
) -> None:
    """Central finite differences of the scalar f along random directions v, one input at a time:
    (f(a + h v) - f(a - h v)) / 2h must equal <grad_a, v> to relative error `tol`."""
    for name, a in inputs.items():
        g = grads[name]
        assert g.shape == a.shape, f"grad of {name}: shape {g.shape} != {a.shape}"
        for _ in range(n_dirs):
            v = rng.standard_normal(a.shape)
            plus = {**inputs, name: a + h * v}
            minus = {**inputs, name: a - h * v}
            fd = (f(**plus) - f(**minus)) / (2 * h)
            an = float(np.sum(g * v))
            err = abs(fd - an) / max(abs(fd), abs(an), 1e-12)
            assert err <= tol, f"d/d{name}: finite difference {fd:.12g} vs analytic {an:.12g} (rel err {err:.3g})"
