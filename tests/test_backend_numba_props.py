"""Properties of the "numba" backend beyond conformance: NaN propagates as in the reference (fast math keeps
nnan/ninf off), and every kernel gives bit-identical results with 1 and 2 threads, other part counts and serially."""

import numba
import numpy as np
import pytest
from helpers import assert_close, rand
from test_backend_numba import B, conv_table, x_for

import fastconv as fc
from fastconv.backends.numba_cpu import config

F32, F64 = np.float32, np.float64
NAN_CASES = ("basic_p1", "stride2_rect", "dilated2", "grouped3", "depthwise", "pointwise", "wide_channels")


def _nan_at(rng, shape, where):
    a = rand(rng, shape, F32)
    a[where] = np.nan
    return a


def _f64(*arrays):
    return [None if a is None else a.astype(F64) for a in arrays]


@pytest.mark.parametrize("algo, case", [p for p in conv_table("conv2d") if p.values[1].id in NAN_CASES])
def test_conv_forward_nan(algo, case, rng):
    x = _nan_at(rng, case.x, (0, 0, case.x[2] // 2, case.x[3] // 2))
    w, b = rand(rng, case.w, F32), rand(rng, (case.w[0],), F32)
    ref = fc.conv2d(*_f64(x, w, b), backend="numpy", **case.kw)
    assert np.isnan(ref).any() and not np.isnan(ref).all()
    got = fc.conv2d(x_for(algo, x), w, b, backend=B, algo=algo, **case.kw)
    assert_close(got, ref, "conv", F32, f"{algo} {case.id}")


BACKWARD = [
    pytest.param(op, *p.values, id=f"{op[12:]}-{p.id}")
    for op in ("conv2d_bwd_data", "conv2d_bwd_weight")
    for p in conv_table(op)
]


@pytest.mark.parametrize("op, algo, case", [p for p in BACKWARD if p.values[2].id in NAN_CASES])
def test_conv_backward_nan(op, algo, case, rng):
    x, w = _nan_at(rng, case.x, (0, 0, 1, 1)), rand(rng, case.w, F32)
    y_shape = fc.conv2d(x, w, backend="numpy", **case.kw).shape
    gy = _nan_at(rng, y_shape, (0, 0, y_shape[2] // 2, y_shape[3] // 2))
    need = dict(need_input=op == "conv2d_bwd_data", need_weight=op == "conv2d_bwd_weight")
    got = fc.conv2d_backward(gy, x, w, backend=B, algo=algo, **need, **case.kw)
    ref = fc.conv2d_backward(*_f64(gy, x, w), backend="numpy", **case.kw)
    for name, g, r in zip(("grad_x", "grad_weight", "grad_bias"), got, ref):
        if g is None:
            continue
        assert np.isnan(r).any()
        assert_close(g, r, "conv", F32, f"{algo} {case.id} {name}")


def test_pool_bn_relu_nan(rng):
    x = _nan_at(rng, (2, 3, 9, 8), (1, 2, 4, 4))
    for fwd, bwd, kw in (
        (fc.max_pool2d, fc.max_pool2d_backward, dict(kernel_size=3, stride=2, padding=1)),
        (fc.avg_pool2d, fc.avg_pool2d_backward, dict(kernel_size=3, stride=2, padding=1)),
        (fc.adaptive_avg_pool2d, fc.adaptive_avg_pool2d_backward, dict(output_size=(3, 2))),
    ):
        ref = fwd(x.astype(F64), backend="numpy", **kw)
        assert_close(fwd(x, backend=B, **kw), ref, "pool", F32, fwd.__name__)
        gy = _nan_at(rng, ref.shape, (0, 0, 0, 0))
        assert_close(bwd(gy, x, backend=B, **kw), bwd(*_f64(gy, x), backend="numpy", **kw), "pool", F32, bwd.__name__)
    w, b, rm, rv = (rand(rng, (3,), F32) for _ in range(4))
    for training in (True, False):
        rv = np.abs(rv) + 1
        y = fc.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training, backend=B)
        y_ref = fc.batch_norm(*_f64(x, rm, rv, w, b), training=training, backend="numpy")
        assert_close(y, y_ref, "bn", F32, f"batch_norm training={training}")
        gy = _nan_at(rng, x.shape, (0, 1, 0, 0))
        got = fc.batch_norm_backward(gy, x, rm, rv, w, training, backend=B)
        for g, r in zip(got, fc.batch_norm_backward(*_f64(gy, x, rm, rv, w), training, backend="numpy")):
            assert_close(g, r, "bn", F32, f"batch_norm_backward training={training}")
    assert np.isnan(fc.relu(x, backend=B)[1, 2, 4, 4])


# ---------------------------------------------------------------------------------------------- threads
@pytest.fixture
def one_vs_two(monkeypatch):
    """Run a function with 1 and with 2 threads (parallel kernels even for small work), with 2 threads and 3 parts
    per thread (parts of unequal sizes), and serially, and require bit-identical results."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba has a single thread here; nothing to compare")
    before = numba.get_num_threads()

    def check(fn):
        results = []
        with monkeypatch.context() as m:
            m.setattr(config, "SERIAL_WORK", 0)
            for n, parts in ((1, 1), (2, 1), (2, 3)):
                m.setattr(config, "PARTS_PER_THREAD", parts)
                numba.set_num_threads(n)
                results.append(fn())
        numba.set_num_threads(before)
        with config.serially():
            results.append(fn())
        labels = ("1 and 2 threads", "1 thread and 2 threads x 3 parts", "parallel and serial calls")
        for label, other in zip(labels, results[1:]):
            for a, b in zip(results[0], other):
                assert (a is None and b is None) or np.array_equal(a, b, equal_nan=True), f"{label} differ"

    yield check
    numba.set_num_threads(before)


THREAD_CASES = (
    "basic_p1",
    "grouped_strided",
    "depthwise",
    "pointwise",
    "wide_channels",
    "tiles_dense",
    "tiles_strided",
    "tiles_pointwise",
    "tiles_depthwise",
    "tiles_pad2_odd",
    "tiles_chunks",
    "tiles_pointwise_strided",
    "tiles_phases",
)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("algo, case", [p for p in conv_table("conv2d") if p.values[1].id in THREAD_CASES])
def test_conv_forward_threads(algo, case, dtype, rng, one_vs_two):
    x, w, b = x_for(algo, rand(rng, case.x, dtype)), rand(rng, case.w, dtype), rand(rng, (case.w[0],), dtype)
    one_vs_two(lambda: [fc.conv2d(x, w, b, backend=B, algo=algo, **case.kw)])


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("op, algo, case", [p for p in BACKWARD if p.values[2].id in THREAD_CASES])
def test_conv_backward_threads(op, algo, case, dtype, rng, one_vs_two):
    x, w = rand(rng, case.x, dtype), rand(rng, case.w, dtype)
    gy = rand(rng, fc.conv2d(x, w, backend="numpy", **case.kw).shape, dtype)
    need = dict(need_input=op == "conv2d_bwd_data", need_weight=op == "conv2d_bwd_weight")
    one_vs_two(lambda: fc.conv2d_backward(gy, x, w, backend=B, algo=algo, **need, **case.kw))


def test_pool_bn_threads(rng, one_vs_two):
    x = rand(rng, (3, 5, 13, 11), F32)
    pool = dict(kernel_size=3, stride=2, padding=1)
    w, b, rm, rv = rand(rng, (5,), F32), rand(rng, (5,), F32), np.zeros(5, F32), np.ones(5, F32)
    gy = rand(rng, x.shape, F32)
    one_vs_two(
        lambda: [
            fc.max_pool2d(x, backend=B, **pool),
            fc.avg_pool2d(x, backend=B, **pool),
            fc.adaptive_avg_pool2d(x, 3, backend=B),
            fc.global_avg_pool2d(x, backend=B),
            fc.batch_norm(x, rm.copy(), rv.copy(), w, b, training=True, backend=B),
            *fc.batch_norm_backward(gy, x, rm, rv, w, True, backend=B),
            fc.relu(x, backend=B),
            fc.relu_backward(gy, x, backend=B),
        ]
    )


def test_threads_fixture_detects_a_difference(one_vs_two):
    """The check itself can fail: a result that depends on the thread count is caught."""
    with pytest.raises(AssertionError, match="differ"):
        one_vs_two(lambda: [np.array([numba.get_num_threads()])])


def test_serial_calls_run_when_loaded_from_the_disk_cache():
    """A small call in a fresh process runs serially before any parallel region; loaded from Numba's cache (the
    second process), code calling into the threading layer needs it started (it crashed before)."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = (
        "import numpy as np, fastconv as fc\n"
        "x, w = np.ones((1, 4, 8, 8), np.float32), np.ones((4, 4, 3, 3), np.float32)\n"
        "for _ in range(200): y = fc.conv2d(x, w)\n"
        "assert (y == 36).all(), y\n"
    )
    for _ in range(2):  # the first may compile; the second loads from the cache
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_partials_sum_in_batch_order_in_float64(dtype, rng):
    """conv2d_bwd_weight_v4_blocked's per-image partials add up as a float64 sum over n = 0..N-1, element by
    element (the parallel, vectorised sum must give those bits), then round to the dtype."""
    from fastconv.backends.numba_cpu.conv2d_blocked import sum_partials  # noqa: PLC0415

    part = rand(rng, (5, 7, 9, 19), dtype)
    total = part[0].astype(np.float64)
    for n in range(1, part.shape[0]):
        total = total + part[n]
    gw = np.full((7, 19, 9), np.nan, dtype)
    sum_partials(part, gw)
    assert np.array_equal(gw, total.astype(dtype).transpose(0, 2, 1))
