"""Shared by the AMX GEMM tests (test_amx_gemm.py, test_amx_conv_gemm.py): the skip mark, bf16 rounding to float64,
poisoned packing scratch, the tiny-task tunables and a run under 1 and 2 threads and serially."""

from collections.abc import Callable

import numpy as np
import pytest

from fastconv.precision import rounded


def _amx_reason():
    from fastconv.backends.numba_cpu import amx

    return amx.status()


requires_amx = pytest.mark.skipif(_amx_reason() is not None, reason=f"no AMX here: {_amx_reason()}")


def r64(a: np.ndarray) -> np.ndarray:
    """a rounded to bfloat16, in float64: the operands the float64 reference multiplies."""
    return rounded(a, "bf16").astype(np.float64)


@pytest.fixture
def poisoned_scratch():
    """NaN bit patterns in the packing scratch, so a panel element the packers skip shows in the result."""
    from fastconv.backends.numba_cpu import config

    for name in ("amx_gemm_a", "amx_gemm_b", "amx_conv_x"):
        config.workspace(name, 1 << 22, np.dtype(np.uint8))[:] = 0xFF
    yield


@pytest.fixture(params=["production", "small tasks"])
def tunables(request, monkeypatch):
    """The production blocking, and one task per 32 x 64 block with one-step slices (many tasks, many slices; for
    conv2d_amx_rows one tile pair per iteration)."""
    from fastconv.backends.numba_cpu import conv2d_amx_rows, gemm_amx

    if request.param == "small tasks":
        monkeypatch.setattr(conv2d_amx_rows, "TASKS", 1 << 20)  # one tile pair per iteration
        monkeypatch.setattr(gemm_amx, "TASK_M", 1)
        monkeypatch.setattr(gemm_amx, "TASK_N", 2)
        monkeypatch.setattr(gemm_amx, "KC", 1)
    return request.param


def assert_thread_independent(run: Callable[[], tuple]) -> None:
    """run() under 1 and 2 Numba threads and serially gives the same bits."""
    import numba

    from fastconv.backends.numba_cpu import config

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba has a single thread here")
    before, results = numba.get_num_threads(), []
    try:
        for n in (1, 2):
            numba.set_num_threads(n)
            results.append(run())
    finally:
        numba.set_num_threads(before)
    with config.serially():
        results.append(run())
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            np.testing.assert_array_equal(got, want)
