"""How a numba_cpu kernel runs in parts (config.kernel, launch.py): every iteration exactly once for any part
count, a scratch slot of its own per thread, an exception raised on a worker thread reaches the caller, and
kernels that do not have the required shape are refused when defined."""

import inspect

import numba
import numpy as np
import pytest
from numba import prange

from fastconv.backends.numba_cpu import config
from fastconv.backends.numba_cpu.config import kernel, thread_slot


@kernel
def count_visits(out, reps):
    for i in prange(out.size):
        for _ in range(reps):
            out[i] += 1


@kernel
def record_slots(out, spin):
    for i in prange(out.shape[0]):
        s = 0.0
        for r in range(spin):  # long enough for the parts to overlap in time
            s += np.sqrt(r + 1.0)
        out[i, 0] = thread_slot()
        out[i, 1] = s


@kernel
def refuse_negative(x):
    for i in prange(x.size):
        if x[i] < 0:
            raise ValueError("refuse_negative: a negative element")


@pytest.fixture
def two_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba has a single thread here")
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(before)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 64, 1001])
@pytest.mark.parametrize("parts_per_thread", [1, 3, 8])
def test_every_iteration_runs_once(n, parts_per_thread, two_threads, monkeypatch):
    monkeypatch.setattr(config, "PARTS_PER_THREAD", parts_per_thread)
    out = np.zeros(n, np.int64)
    count_visits(out, 2)
    assert np.array_equal(out, np.full(n, 2))
    with config.serially():
        count_visits(out, 1)
    assert np.array_equal(out, np.full(n, 3))


def test_threads_running_at_once_have_slots_of_their_own(two_threads):
    out = np.full((2, 2), -1.0)
    seen = set()
    for _ in range(20):
        record_slots(out, 200_000)
        slots = tuple(out[:, 0])
        assert all(0 <= s < numba.config.NUMBA_NUM_THREADS for s in slots)
        seen.add(slots)
    # two parts on two threads: distinct slots whenever the second thread took the second part
    assert any(a != b for a, b in seen) and all(len(set(s)) == 2 or s[0] == s[1] for s in seen)
    with config.serially():
        record_slots(out, 10)
    assert list(out[:, 0]) == [0, 0]
    numba.set_num_threads(1)  # the thread count of the calling thread, read when the kernel launches
    for _ in range(5):
        record_slots(out, 200_000)
        assert list(out[:, 0]) == [0, 0]


def test_an_exception_on_a_worker_thread_reaches_the_caller(two_threads):
    x = np.ones(1000)
    refuse_negative(x)
    x[-1] = -1.0  # in the last part, which a worker thread runs
    with pytest.raises(ValueError, match="refuse_negative: a negative element"):
        refuse_negative(x)
    with config.serially(), pytest.raises(ValueError, match="a negative element"):
        refuse_negative(x)


def test_thread_slot_outside_a_kernel_is_an_error():
    with pytest.raises(TypeError, match="only meaningful inside a numba_cpu kernel"):
        thread_slot()


def test_the_compiled_kernel_keeps_the_source_line_numbers():
    """Errors and profiles point at the kernel's own lines: the loop body's line is the file's."""
    lines, first = inspect.getsourcelines(count_visits.py_func)
    body = first + next(i for i, line in enumerate(lines) if "out[i] += 1" in line)
    code = count_visits.parts.py_func.__code__
    assert code.co_filename == __file__
    assert body in {line for _, _, line in code.co_lines()}


def _no_closing_prange(x):
    for i in prange(x.size):
        x[i] = 0
    x[0] = 1


def _nested_prange(x):
    for i in prange(x.shape[0]):
        for j in prange(x.shape[1]):
            x[i, j] = 0


def _returns(x):
    for i in prange(x.size):
        if x[i]:
            return


def _stepped(x):
    for i in prange(0, x.size):
        x[i] = 0


@pytest.mark.parametrize(
    "fn, message",
    [
        (_no_closing_prange, "must end in its only prange loop"),
        (_nested_prange, "must end in its only prange loop"),
        (_stepped, "over prange\\(n\\)"),
        (_returns, "returns nothing"),
    ],
)
def test_kernels_of_another_shape_are_refused(fn, message):
    with pytest.raises(TypeError, match=message):
        kernel(fn)
