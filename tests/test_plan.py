"""Plans and the plan cache: what a hit skips, what makes a new plan, the checks of plan.run, backward plans,
bounds, memory and threads."""

import gc
import sys
import threading
import weakref

import numpy as np
import pytest

import fastconv as fc
import fastconv.nn as nn
from fastconv import dispatch

F32, F64 = np.float32, np.float64


@pytest.fixture
def xw(rng):
    return rng.standard_normal((2, 4, 9, 7)).astype(F32), rng.standard_normal((5, 4, 3, 3)).astype(F32)


def _planner_calls(op, monkeypatch):
    """Count the calls of op's planner (what a cache hit must skip)."""
    calls = []
    inner = op._op.planner

    def counting(*args, **kwargs):
        calls.append(1)
        return inner(*args, **kwargs)

    monkeypatch.setattr(op._op, "planner", counting)
    return calls


def test_a_repeated_call_plans_once_and_gives_the_same_result(xw, monkeypatch):
    x, w = xw
    calls = _planner_calls(fc.conv2d, monkeypatch)
    first = fc.conv2d(x, w, padding=1)
    for _ in range(3):
        assert np.array_equal(fc.conv2d(x, w, padding=1), first)
    assert len(calls) == 1
    assert fc.plan(fc.conv2d, x, w, padding=1) is fc.conv2d.plan(x, w, None, 1, 1), "positional or keyword alike"
    assert len(calls) == 1, "arguments are bound to the parameters before the lookup"


def test_everything_that_changes_the_selection_or_result_gets_its_own_plan(xw):
    x, w = xw
    base = fc.plan(fc.conv2d, x, w, padding=1)
    cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    variants = [
        fc.plan(fc.conv2d, x.astype(F64), w.astype(F64), padding=1),  # dtype
        fc.plan(fc.conv2d, x[:1], w, padding=1),  # shape
        fc.plan(fc.conv2d, cl, w, padding=1),  # layout
        fc.plan(fc.conv2d, x.astype(">f4"), w, padding=1),  # byte order
        fc.plan(fc.conv2d, x, w, padding=2),  # an argument
        fc.plan(fc.conv2d, x, w, padding=1, backend="numpy"),  # the backend argument
        fc.plan(fc.conv2d, x, w, padding=1, algo="conv2d_fwd_v1_naive"),  # the algorithm
        fc.plan(fc.conv2d, x, w, padding=1, need_backward=True),  # a backward follows
    ]
    with fc.use_backend("numpy"):
        variants.append(fc.plan(fc.conv2d, x, w, padding=1))  # the backend context
    with fc.autotune():
        variants.append(fc.plan(fc.conv2d, x, w, padding=1))  # the autotune state
    assert all(v is not base for v in variants) and len({id(v) for v in variants}) == len(variants)
    assert variants[2].steps[0].layout == "channels_last" and base.steps[0].layout == "nchw"
    assert variants[5].backend == "numpy" and variants[8].backend == "numpy"


@pytest.mark.parametrize("bad", [True, 1.0, (1, True), (1, 1.0)])
def test_bad_arguments_are_refused_even_after_a_valid_call_with_equal_values(xw, bad):
    x, w = xw
    fc.conv2d(x, w, stride=1)
    fc.conv2d(x, w, stride=(1, 1))
    with pytest.raises(TypeError, match="conv2d: 'stride' must be an int"):
        fc.conv2d(x, w, stride=bad)


def test_binding_errors_name_the_op(xw):
    x, w = xw
    with pytest.raises(TypeError, match="conv2d: missing a required argument: 'weight'"):
        fc.conv2d(x)
    with pytest.raises(TypeError, match="conv2d: got an unexpected keyword argument 'strid'"):
        fc.conv2d(x, w, strid=2)
    with pytest.raises(TypeError, match="conv2d: multiple values for argument 'bias'"):
        fc.conv2d(x, w, None, bias=None)
    with pytest.raises(TypeError, match="conv2d: too many positional arguments"):
        fc.conv2d(x, w, None, 1, 0, 1, 1, "zeros", "numba")
    with pytest.raises(TypeError, match="not a fastconv op"):
        fc.plan(np.sum, x)
    with pytest.raises(TypeError, match="relu_backward has no backward op"):
        fc.plan(fc.relu_backward, x, x, need_backward=True)


def test_unhashable_arguments_are_planned_without_caching(xw):
    x, w = xw
    before = fc.plan_cache_info().misses  # misses count the plans put in the cache (its size stops at its bound)
    y = fc.conv2d(x, w, stride=[2, 1], padding=[1, 0])
    assert np.array_equal(y, fc.conv2d(x, w, stride=(2, 1), padding=(1, 0)))
    assert fc.plan(fc.conv2d, x, w, stride=[2, 1]) is not fc.plan(fc.conv2d, x, w, stride=[2, 1])
    assert fc.plan_cache_info().misses == before + 1, "only the tuple spelling was cached"


def test_plan_run_refuses_arrays_of_another_signature(xw):
    x, w = xw
    plan = fc.plan(fc.conv2d, x, w, padding=1)
    assert np.array_equal(plan.run(x, w, None), fc.conv2d(x, w, padding=1))
    cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for args, message in [
        ((x[:1], w, None), r"'x' has shape \(1, 4, 9, 7\), not \(2, 4, 9, 7\)"),
        ((x, w.astype(F64), None), "'weight' has dtype float64, not float32"),
        ((cl, w, None), "'x' has channels_last, not NCHW"),
        ((x, w, np.ones(5, F32)), "'bias' is given, but the plan was built without 'bias'"),
    ]:
        with pytest.raises(ValueError, match=message):
            plan.run(*args)
    with pytest.raises(TypeError, match="run takes the 3 arrays"):
        plan.run(x, w)
    plan_b = fc.plan(fc.conv2d, x, w, np.ones(5, F32))
    with pytest.raises(ValueError, match="'bias' is None, but the plan was built with a numpy float32"):
        plan_b.run(x, w, None)


def test_the_cache_holds_no_arrays(rng):
    x = rng.standard_normal((1, 3, 8, 8)).astype(F32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(F32)
    refs = [weakref.ref(x), weakref.ref(w)]
    plan = fc.plan(fc.conv2d, x, w, padding=1, need_backward=True)
    fc.conv2d(x, w, padding=1)
    y = fc.max_pool2d(fc.batch_norm(x, None, None, None, None, True), 2)
    del x, w, y
    gc.collect()
    assert all(r() is None for r in refs), "neither the cache nor the plan keeps an input alive"
    assert plan.backward().selection


def test_the_cache_is_bounded_and_least_recently_used_goes_first(rng):
    xs = [rng.standard_normal((1, 2, 5 + i, 5)).astype(F32) for i in range(4)]
    w = rng.standard_normal((2, 2, 3, 3)).astype(F32)
    try:
        fc.set_plan_cache_size(2)
        plans = [fc.plan(fc.conv2d, x, w) for x in xs[:2]]
        assert fc.plan(fc.conv2d, xs[0], w) is plans[0]  # xs[0] now the most recent
        fc.plan(fc.conv2d, xs[2], w)
        assert fc.plan_cache_info().size == 2
        assert fc.plan(fc.conv2d, xs[0], w) is plans[0], "kept: used recently"
        assert fc.plan(fc.conv2d, xs[1], w) is not plans[1], "evicted: least recently used"
        fc.set_plan_cache_size(0)
        assert fc.plan(fc.conv2d, xs[3], w) is not fc.plan(fc.conv2d, xs[3], w)
        assert fc.plan_cache_info().size == 0
        with pytest.raises(ValueError, match="set_plan_cache_size"):
            fc.set_plan_cache_size(-1)
    finally:
        fc.set_plan_cache_size(1024)


def test_registering_and_clearing_empty_the_cache(xw):
    x, w = xw
    fc.conv2d(x, w)
    assert fc.plan_cache_info().size > 0
    fc.clear_caches()
    assert fc.plan_cache_info().size == 0
    fc.conv2d(x, w)
    fc.register_backend("test-plan-cache", {"relu": lambda p, x: x})
    try:
        assert fc.plan_cache_info().size == 0, "a registration may change any selection"
    finally:
        dispatch._BACKENDS.pop("test-plan-cache")
        fc.clear_caches()


def test_threads_share_the_cache_and_agree_with_one_thread(rng):
    shapes = [(1 + i % 2, 3, 7 + i % 3, 6) for i in range(6)]
    xs = [rng.standard_normal(s).astype(F32) for s in shapes]
    w = rng.standard_normal((4, 3, 3, 3)).astype(F32)
    fc.clear_caches()
    results, errors = {}, []

    def work(k):
        try:
            for _ in range(5):
                for i, x in enumerate(xs):
                    results[(k, i)] = fc.conv2d(x, w, padding=1)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (_, i), y in results.items():
        assert np.array_equal(y, fc.conv2d(xs[i], w, padding=1))


def test_a_cache_hit_runs_few_python_functions(xw):
    x, w = xw
    x, w = x[:1, :, :8, :8].copy(), w[:, :, :3, :3].copy()
    fc.conv2d(x, w)
    calls = []

    def count(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    sys.setprofile(count)
    try:
        fc.conv2d(x, w)
    finally:
        sys.setprofile(None)
    assert len(calls) <= 60, calls


def test_backward_plans_come_from_the_forward(xw, rng):
    x, w = xw
    b = rng.standard_normal(5).astype(F32)
    fwd = fc.plan(fc.conv2d, x, w, b, padding=1, need_backward=True)
    bwd = fwd.backward()
    assert fwd.backward() is bwd, "built once per set of flags"
    assert [s.op for s in bwd.steps] == ["conv2d_bwd_data", "conv2d_bwd_weight", "conv2d_bwd_bias"]
    assert {s.impl.backend for s in bwd.steps} == {fwd.backend}
    gy = rng.standard_normal(fwd.params.y_shape).astype(F32)
    expected = fc.conv2d_backward(gy, x, w, padding=1)
    for got, want in zip(bwd.run(gy, x, w), expected):
        assert np.array_equal(got, want)
    only_w = fwd.backward(need_input=False, need_bias=False)
    assert [s.op for s in only_w.steps] == ["conv2d_bwd_weight"]
    gx, gw, gb = only_w.run(gy, x, w)
    assert gx is None and gb is None and np.array_equal(gw, expected[1])
    with pytest.raises(ValueError, match="'grad_out' has shape"):
        bwd.run(gy[:1], x, w)
    pool = fc.plan(fc.max_pool2d, x, 2, need_backward=True)
    g = rng.standard_normal(pool.params.y_shape).astype(F32)
    assert np.array_equal(pool.backward().run(g, x), fc.max_pool2d_backward(g, x, 2))
    with pytest.raises(TypeError, match="no backward op"):
        bwd.backward()


def test_a_layer_reuses_the_plan_of_its_last_call_only_while_nothing_it_depends_on_changed(xw, monkeypatch):
    x, w = xw
    conv = nn.Conv2d(4, 5, 3, padding=1)
    lookups = []
    inner = fc.conv2d._op.lookup
    monkeypatch.setattr(fc.conv2d._op, "lookup", lambda *a, **k: lookups.append(1) or inner(*a, **k))

    def call(data):
        """The layer's output (checked against the functional op) and whether it looked its plan up."""
        before = len(lookups)
        y = conv(data)
        looked_up = len(lookups) > before
        args = conv.weight.data, conv.bias.data, conv.stride, conv.padding, conv.dilation
        assert np.array_equal(y, fc.conv2d(data, *args, backend=conv.backend))
        return looked_up

    call(x)
    call(x)  # the first call may load backends, which empties the plan cache: the second looks up again
    assert [call(x) for _ in range(3)] == [False] * 3, "repeated calls run the layer's plan without a lookup"
    conv.eval()
    assert call(x), "planned without a backward"
    conv.train()
    assert call(x)
    conv.stride = (2, 2)
    assert call(x), "an argument"
    conv.stride = (1, 1)
    assert call(x[:1]), "the input's shape"
    assert call(np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)), "the input's layout"
    conv.weight.data = conv.weight.data.astype(F64)
    conv.bias.data = conv.bias.data.astype(F64)
    x64 = x.astype(F64)
    assert call(x64), "the parameters' dtype"
    conv.to("numpy")
    assert call(x64), "the layer's backend"
    with fc.use_backend("numba"):
        conv.to(None)
        assert call(x64), "the backend preference"
    with fc.use_precision("bf16"):
        assert call(x64), "the precision"
    assert call(x64), "only the last call's plan is kept"
    assert not call(x64)
    fc.clear_caches()  # as registrations and autotuning records do
    assert call(x64), "a plan from before the cache was emptied is not reused"
    assert not call(x64)


def test_need_backward_moves_to_a_backend_that_can_run_the_backward(xw):
    x, w = xw
    fc.register_backend("test-forward-only", {"conv2d": lambda p, x, w, b: fc.conv2d(x, w, b, backend="numpy")})
    dispatch._BACKENDS["test-forward-only"].default_rank = -1  # preferred for NumPy arrays
    try:
        assert fc.plan(fc.conv2d, x, w).backend == "test-forward-only"
        assert fc.plan(fc.conv2d, x, w, need_backward=True).backend == "numba"
        with pytest.raises(ValueError, match="conv2d_bwd_data"):
            fc.plan(fc.conv2d, x, w, backend="test-forward-only", need_backward=True)
    finally:
        dispatch._BACKENDS.pop("test-forward-only")
        fc.clear_caches()


def test_autotuning_a_plan_records_what_ran(xw):
    x, w = xw
    fc.clear_caches()
    try:
        with fc.autotune():
            plan = fc.plan(fc.conv2d, x, w, padding=1)
            assert plan.tune
            y = plan.run(x, w, None)
        (tuned,) = plan.selection
        assert tuned.algo in dispatch.algos("conv2d", "numba")
        assert fc.select(fc.conv2d, x, w, padding=1)[0] == tuned, "later plans use the tuned algorithm"
        assert np.allclose(y, fc.conv2d(x, w, padding=1, algo="conv2d_fwd_v1_naive"), atol=1e-5)
    finally:
        fc.clear_caches()


def test_a_root_layer_skips_its_input_gradient_when_asked(rng):
    nn.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)
    )
    x = rng.standard_normal((2, 3, 6, 6)).astype(F32)
    gy = np.ones((2, 3), F32)
    model(x)
    gx = model.backward(gy)
    assert gx.shape == x.shape
    grads = {k: p.grad.copy() for k, p in model.named_parameters()}
    model.zero_grad()
    asked = []
    for layer in (model[0], model[2]):
        real = layer.backward_op

        def spy(saved, g, need_input, real=real):
            asked.append(need_input)
            plan = saved[0].backward(need_input=need_input, need_bias=True)
            asked.append([s.op for s in plan.steps])
            return real(saved, g, need_input)

        layer.backward_op = spy
    model(x)
    assert model.backward(gy, need_input=False) is None
    assert asked == [
        True,
        ["conv2d_bwd_data", "conv2d_bwd_weight", "conv2d_bwd_bias"],
        False,
        ["conv2d_bwd_weight", "conv2d_bwd_bias"],
    ], "only the root conv skips grad x"
    for k, p in model.named_parameters():
        assert np.array_equal(p.grad, grads[k]), k
