"""The CUDA backend's fp32 denormal semantics: CuPy compiles every kernel with -ftz=true, so on the GPU float32
arithmetic and comparisons read denormals as zero (float64 is never flushed). The emulator runs float32 entry
points with the CPU's flush-to-zero / denormals-are-zero modes, so CI sees what a GPU computes: here max pooling's
ties, where a flushed comparison changes which element is the first maximum."""

import numpy as np
import pytest

import fastconv as fc

TINY32 = np.float32(3e-39)  # below float32's smallest normal (1.18e-38)
TINY64 = 3e-310  # below float64's smallest normal (2.2e-308)


def _windows(tiny, dtype):
    """One row of 2-wide windows: [0, +tiny], [+tiny, 0], [-tiny, 0], [0, -tiny], [tiny, 2*tiny]."""
    row = np.array([0, tiny, tiny, 0, -tiny, 0, 0, -tiny, tiny, 2 * tiny], dtype)
    return row.reshape(1, 1, 1, -1)


def _flushed(x):
    return np.where(np.abs(x) < np.finfo(x.dtype).tiny, np.zeros_like(x), x)


@pytest.fixture(params=["cuda-emu", pytest.param("cuda", marks=pytest.mark.gpu)])
def backend(request):
    """The emulator in CI, and the GPU where there is one (the same assertions hold on both)."""
    status = fc.backends()[request.param]
    if not status.available:
        pytest.skip(f"{request.param} not available here: {status.reason}")
    return request.param


def _host(a):
    return a.get() if hasattr(a, "get") else a


def _device(backend, a):
    if backend == "cuda":
        import cupy  # noqa: PLC0415

        return cupy.asarray(a)
    return a


def test_float32_max_pool_compares_denormals_as_zero(backend):
    x = _windows(TINY32, np.float32)
    y, idx = map(_host, fc.max_pool2d(_device(backend, x), (1, 2), return_indices=True, backend=backend))
    _, idx_exact = fc.max_pool2d(x.astype(np.float64), (1, 2), return_indices=True, backend="numpy")
    _, idx_flushed = fc.max_pool2d(_flushed(x).astype(np.float64), (1, 2), return_indices=True, backend="numpy")
    assert not np.array_equal(idx_exact, idx_flushed), "the case must tell the two semantics apart"
    assert np.array_equal(idx, idx_flushed)
    # the value is the chosen element as stored: a move flushes nothing, on the GPU as here
    assert np.array_equal(y.reshape(-1), x.reshape(-1)[idx.reshape(-1)])


def test_float64_is_never_flushed(backend):
    x = _windows(TINY64, np.float64)
    y, idx = map(_host, fc.max_pool2d(_device(backend, x), (1, 2), return_indices=True, backend=backend))
    y_ref, idx_ref = fc.max_pool2d(x, (1, 2), return_indices=True, backend="numpy")
    assert np.array_equal(idx, idx_ref) and np.array_equal(y, y_ref)


def test_float32_relu_compares_denormals_as_zero(backend):
    """ReLU keeps x where x > 0: a positive denormal compares as zero and gives 0; a normal value passes."""
    x = np.array([TINY32, 1.5 * np.finfo(np.float32).tiny, -TINY32, 1.0], np.float32).reshape(1, 1, 1, 4)
    y = _host(fc.relu(_device(backend, x), backend=backend))
    assert np.array_equal(y.reshape(-1), np.array([0, 1.5 * np.finfo(np.float32).tiny, 0, 1], np.float32))
