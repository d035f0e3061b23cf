"""Dispatch: the pure `choose`, backend preference order, user backends, and the errors when nothing fits."""

import threading

import numpy as np
import pytest

import fastconv as fc
from fastconv import dispatch
from fastconv.dispatch import Impl, choose

X = np.ones((1, 2, 5, 5))
W = np.ones((3, 2, 3, 3))


def _impl(algo, supports=lambda p: True, priority=0, requires=""):
    return Impl("conv2d", "b", algo, fn=None, supports=supports, priority=priority, requires=requires)


SMALL = dict(K=4)
BIG = dict(K=64)


@pytest.mark.parametrize(
    "p, algo, expected",
    [
        (SMALL, "auto", "generic"),  # highest priority among the supported
        (BIG, "auto", "wide"),
        (BIG, "generic", "generic"),  # named: that one, even if another ranks higher
        (SMALL, "tie_a", "tie_a"),
    ],
)
def test_choose_table(p, algo, expected):
    impls = [
        _impl("generic", priority=1),
        _impl("wide", supports=lambda p: p["K"] >= 16, priority=5),
        _impl("tie_a"),
        _impl("tie_b"),
    ]
    assert choose(impls, p, algo).algo == expected


def test_choose_priority_may_depend_on_params_and_ties_keep_registration_order():
    impls = [_impl("a", priority=lambda p: p["K"]), _impl("b", priority=10), _impl("c", priority=10)]
    assert choose(impls, SMALL, "auto").algo == "b"
    assert choose(impls, BIG, "auto").algo == "a"


def test_choose_errors_say_what_is_needed():
    impls = [_impl("wide", supports=lambda p: p["K"] >= 16, requires="K >= 16")]
    with pytest.raises(ValueError, match="K >= 16"):
        choose(impls, SMALL, "wide")
    with pytest.raises(ValueError, match="wide needs K >= 16"):
        choose(impls, SMALL, "auto")
    with pytest.raises(ValueError, match="available: wide"):
        choose(impls, SMALL, "other")


def test_select_reports_the_implementation_without_running():
    sel = fc.select(fc.conv2d, X, W, backend="numpy")
    assert sel == (fc.Selection("conv2d", "numpy", "reference"),)
    bwd = fc.select(fc.conv2d_backward, np.ones((1, 3, 3, 3)), X, W, backend="numpy", need_input=False)
    assert [s.op for s in bwd] == ["conv2d_bwd_weight", "conv2d_bwd_bias"]
    with pytest.raises(TypeError, match="not a fastconv op"):
        fc.select(np.sum, X)


def test_backends_lists_status():
    status = fc.backends()
    assert status["numpy"].available and status["numpy"].array_kind == "numpy"


def _doubling_backend():
    calls = []

    def conv2d(p, x, w, b):
        calls.append(p)
        return 2 * fc.conv2d(x, w, b, backend="numpy")

    return calls, conv2d


def test_register_backend_and_preference_order():
    calls, conv2d = _doubling_backend()
    fc.register_backend("test-double", {"conv2d": conv2d})
    try:
        ref = fc.conv2d(X, W, backend="numpy")
        assert np.array_equal(fc.conv2d(X, W), ref), "a user backend never runs unless named"
        assert np.array_equal(fc.conv2d(X, W, backend="test-double"), 2 * ref)
        with fc.use_backend("test-double"):
            assert np.array_equal(fc.conv2d(X, W), 2 * ref)
            assert np.array_equal(fc.conv2d(X, W, backend="numpy"), ref), "backend= beats the context"
            with pytest.raises(ValueError, match="nothing in op relu on backend 'test-double'"):
                fc.relu(X)
        fc.set_backend("test-double")
        try:
            assert np.array_equal(fc.conv2d(X, W), 2 * ref)
            with fc.use_backend("numpy"):
                assert np.array_equal(fc.conv2d(X, W), ref), "the context beats set_backend"
        finally:
            fc.set_backend(None)
        assert np.array_equal(fc.conv2d(X, W), ref)
        assert len(calls) == 3
    finally:
        dispatch._BACKENDS.pop("test-double")
        dispatch._IMPLS.pop(("conv2d", "test-double"))


def test_use_backend_is_thread_local():
    calls, conv2d = _doubling_backend()
    fc.register_backend("test-thread", {"conv2d": conv2d})
    seen = []
    default = fc.select(fc.conv2d, X, W)[0].backend
    try:
        with fc.use_backend("test-thread"):
            t = threading.Thread(target=lambda: seen.append(fc.select(fc.conv2d, X, W)[0].backend))
            t.start()
            t.join()
        assert seen == [default] and default != "test-thread"
    finally:
        dispatch._BACKENDS.pop("test-thread")
        dispatch._IMPLS.pop(("conv2d", "test-thread"))


def test_register_backend_rejects_bad_input():
    with pytest.raises(ValueError, match="implements none of the ops"):
        fc.register_backend("empty", {"convolve": print})
    with pytest.raises(ValueError, match="array_kind"):
        fc.register_backend("x", {"relu": print}, array_kind="jax")
    with pytest.raises(TypeError, match="name"):
        fc.register_backend("", {"relu": print})


def test_backend_of_another_array_kind_is_a_type_error():
    fc.register_backend("test-gpu", {"relu": lambda p, x: x}, array_kind="cupy")
    try:
        with pytest.raises(TypeError, match="takes cupy arrays but got numpy arrays"):
            fc.relu(X, backend="test-gpu")
    finally:
        dispatch._BACKENDS.pop("test-gpu")
        dispatch._IMPLS.pop(("relu", "test-gpu"))


def test_autotune_times_the_supported_algorithms_and_remembers_the_fastest():
    import time

    calls = []

    def slow(p, x, w, b):
        calls.append("slow")
        time.sleep(0.02)
        return fc.conv2d(x, w, b, backend="numpy")

    def fast(p, x, w, b):
        calls.append("fast")
        return fc.conv2d(x, w, b, backend="numpy")

    fc.register_backend("test-tune", {"conv2d": slow})
    dispatch.register("conv2d", "test-tune", "fast", fast)
    dispatch.register("conv2d", "test-tune", "never", fast, supports=lambda p: False)
    try:
        assert fc.select(fc.conv2d, X, W, backend="test-tune")[0].algo == "default", "registration order wins ties"
        with fc.autotune():
            y = fc.conv2d(X, W, backend="test-tune")
        assert np.array_equal(y, fc.conv2d(X, W, backend="numpy"))
        assert set(calls) == {"slow", "fast"}, "both supported algorithms were timed, the unsupported one not"
        assert fc.select(fc.conv2d, X, W, backend="test-tune")[0].algo == "fast"
        calls.clear()
        fc.conv2d(X, W, backend="test-tune")
        assert calls == ["fast"], "the tuned choice holds outside the block, without timing again"
        other = np.ones((1, 2, 6, 6))
        assert fc.select(fc.conv2d, other, W, backend="test-tune")[0].algo == "default", "keyed by params"
    finally:
        fc.clear_autotune_cache()
        dispatch._BACKENDS.pop("test-tune")
        dispatch._IMPLS.pop(("conv2d", "test-tune"))


def test_a_plan_binds_each_registry_function_to_its_params_once():
    """A registry function with `bind(params)` is bound when the plan is built: the per-params work happens
    once per plan, the calls run what bind returned."""
    binds, calls = [], []

    def conv(p, x, w, b):
        calls.append("unbound")
        return fc.conv2d(x, w, b, backend="numpy")

    def bind(p):
        binds.append(p)

        def bound_conv(q, x, w, b):
            calls.append("bound")
            assert q is p, "called with the params it was bound to"
            return fc.conv2d(x, w, b, backend="numpy")

        return bound_conv

    conv.bind = bind
    expected = fc.conv2d(X, W, backend="numpy")  # loads the numpy backend first (a registration empties the cache)
    fc.register_backend("test-bind", {"conv2d": conv})
    try:
        plan = fc.plan(fc.conv2d, X, W, backend="test-bind")
        assert binds == [plan.steps[0].params] and calls == []
        for _ in range(3):
            y = fc.conv2d(X, W, backend="test-bind")
        assert np.array_equal(y, expected)
        assert len(binds) == 1 and calls == ["bound"] * 3, "the cached plan's bound function ran; no new bind"
    finally:
        dispatch._BACKENDS.pop("test-bind")
        dispatch._IMPLS.pop(("conv2d", "test-bind"))
        dispatch.changed()


def test_numba_sized_functions_weigh_their_work_when_bound():
    """The numba backend's `sized` wrapper decides serial or parallel from the work weighed at bind time; the
    threshold is read at each call (tests and benchmarks move it)."""
    from fastconv.backends.numba_cpu import config

    weighed, serial_seen = [], []

    def fn(p, x):
        serial_seen.append(getattr(config._SERIAL, "on", False))
        return x

    run = config.sized(fn, lambda p: weighed.append(p) or 100)
    f = run.bind("params")
    assert weighed == ["params"]
    f("params", 1)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(config, "SERIAL_WORK", 50)
        f("params", 1)
    assert weighed == ["params"] and serial_seen == [100 < config.SERIAL_WORK, False]
    run("params", 1)  # unbound: weighs per call
    assert weighed == ["params", "params"]
