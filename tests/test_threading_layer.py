"""The numba backend's threading layer: a forked child computes (it is not killed), concurrent Python threads get
the single-threaded results, and the layer in use is reported with its reason."""

import multiprocessing
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastconv as fc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
X = np.random.default_rng(0).standard_normal((4, 16, 20, 20)).astype(np.float32)
W = np.random.default_rng(1).standard_normal((16, 16, 3, 3)).astype(np.float32)


def _child(queue):
    queue.put(fc.conv2d(X, W, padding=1))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_computes():
    parent = fc.conv2d(X, W, padding=1)  # the parent has run parallel regions before the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    result = queue.get(timeout=300)
    child.join(60)
    assert child.exitcode == 0
    assert np.array_equal(result, parent)


SCRIPT = """
import multiprocessing, numpy as np, fastconv as fc
x = np.random.default_rng(0).standard_normal((4, 16, 20, 20)).astype(np.float32)
w = np.random.default_rng(1).standard_normal((16, 16, 3, 3)).astype(np.float32)
ref = fc.conv2d(x, w, padding=1)
def child(q):
    q.put(fc.conv2d(x, w, padding=1))
if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue(); p = ctx.Process(target=child, args=(q,)); p.start()
    y = q.get(timeout=300); p.join(60)
    assert p.exitcode == 0 and np.array_equal(y, ref), p.exitcode
    print(fc.backends()["numba"].detail)
"""


def _run(env_layer: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FASTCONV_THREADING_LAYER": env_layer, "PYTHONPATH": ROOT}
    env.pop("NUMBA_THREADING_LAYER", None)
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_child_forked_from_the_omp_layer_runs_serially_instead_of_dying():
    """GNU OpenMP kills such a child as soon as it enters a parallel region; fastconv's kernels run all their parts
    on the calling thread there instead."""
    done = _run("omp")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "threading layer omp" in done.stdout and "runs the kernels serially" in done.stdout


def test_an_unknown_layer_makes_the_backend_unavailable_with_the_reason():
    code = (
        "import numpy as np, fastconv as fc\n"
        "print(fc.backends()['numba'].reason)\n"
        "fc.conv2d(np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 1, 1), np.float32), backend='numba')\n"
    )
    env = {**os.environ, "FASTCONV_THREADING_LAYER": "openmp", "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    message = "FASTCONV_THREADING_LAYER='openmp': expected one of tbb, omp, workqueue"
    assert message in done.stdout
    assert done.returncode != 0 and "backend 'numba' is not available here" in done.stderr and message in done.stderr


def test_concurrent_python_threads_get_the_single_threaded_results():
    ref = fc.conv2d(X, W, padding=1)
    gy = np.ones_like(ref)
    ref_g = fc.conv2d_backward(gy, X, W, padding=1)
    out, errors = {}, []

    def work(i):
        try:
            for _ in range(3):
                out[i] = (fc.conv2d(X, W, padding=1), fc.conv2d_backward(gy, X, W, padding=1))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for y, g in out.values():
        assert np.array_equal(y, ref)
        assert all(np.array_equal(a, b) for a, b in zip(g, ref_g))


def test_the_layer_and_its_reason_are_reported():
    detail = fc.backends()["numba"].detail
    assert detail.startswith("threading layer ") and ":" in detail
