"""Property-based checks (Hypothesis) across the ops and the CPU backends: random parameters, the extremes included
(padding larger than the kernel, dilation larger than the input, stride larger than the kernel, 1x1 planes, an
empty batch). Every call either equals the float64 reference or raises the same TypeError/ValueError the
reference raises; no input is ever modified."""

import os

import numpy as np
import pytest
from helpers import assert_close
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastconv as fc

BACKENDS = ["numba", "cuda-emu"]
# CI runs the same examples every time (derandomize); a local run explores new ones.
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=bool(os.environ.get("CI")),
)


def _outcome(fn):
    """The call's result, or the type of the error it raised (TypeError/ValueError only: others propagate)."""
    try:
        return fn()
    except (TypeError, ValueError) as exc:
        return type(exc)


def _same(backend, call, arrays, family, dtype=np.float32):
    """call(*arrays) on `backend` equals the reference on the float64 copies, or both raise the same error type;
    the inputs come back unmodified."""
    before = [a.copy() for a in arrays]
    ref = _outcome(lambda: call(*(a.astype(np.float64) for a in arrays), backend="numpy"))
    got = _outcome(lambda: call(*arrays, backend=backend))
    for a, b in zip(arrays, before):
        assert np.array_equal(a, b, equal_nan=True), "an input was modified"
    if isinstance(ref, type):
        assert got is ref, f"reference raised {ref.__name__}, {backend} gave {got!r}"
        return
    assert not isinstance(got, type), f"{backend} raised {got.__name__} where the reference computed"
    for g, r in zip(got if isinstance(got, tuple) else (got,), ref if isinstance(ref, tuple) else (ref,)):
        if r is not None:
            assert_close(g, r, family, dtype, f"{backend} {call.__name__}")


@st.composite
def conv_calls(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c, k = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    n, h, w = draw(st.integers(0, 2)), draw(st.integers(1, 7)), draw(st.integers(1, 7))
    r, s = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kw = dict(
        stride=draw(st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 3), st.integers(1, 3)))),
        dilation=draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 8)))),
        padding=draw(
            st.one_of(
                st.integers(0, 5),
                st.sampled_from(["same", "valid"]),
                st.tuples(
                    st.tuples(st.integers(0, 3), st.integers(0, 3)), st.tuples(st.integers(0, 3), st.integers(0, 3))
                ),
            )
        ),
        groups=groups,
        padding_mode=draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"])),
    )
    if kw["padding"] == "same":
        kw["stride"] = 1
    seed = draw(st.integers(0, 2**16))
    return (n, c, h, w), (k, c // groups, r, s), kw, seed


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(call=conv_calls())
def test_conv2d_and_its_gradients(backend, call):
    x_shape, w_shape, kw, seed = call
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)

    def conv(x, w, b, backend):
        return fc.conv2d(x, w, b, backend=backend, **kw)

    _same(backend, conv, [x, w, b], "conv")
    y = _outcome(lambda: fc.conv2d(x, w, backend="numpy", **kw))
    if isinstance(y, type):
        return
    gy = rng.standard_normal(y.shape).astype(np.float32)

    def conv_backward(gy, x, w, backend):
        return fc.conv2d_backward(gy, x, w, backend=backend, **kw)

    _same(backend, conv_backward, [gy, x, w], "conv")


@st.composite
def pool_calls(draw):
    kh, kw_ = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kw = dict(
        kernel_size=(kh, kw_),
        stride=draw(st.one_of(st.none(), st.integers(1, 5))),
        padding=draw(st.integers(0, 2)),
        ceil_mode=draw(st.booleans()),
    )
    shape = (draw(st.integers(0, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    return shape, kw, draw(st.integers(1, 3)), draw(st.booleans()), draw(st.integers(0, 2**16))


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(call=pool_calls())
def test_pooling_and_its_gradients(backend, call):
    shape, kw, dilation, include_pad, seed = call
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)

    def max_pool(x, backend):
        return fc.max_pool2d(x, dilation=dilation, backend=backend, **kw)

    def avg_pool(x, backend):
        return fc.avg_pool2d(x, count_include_pad=include_pad, backend=backend, **kw)

    for fwd, bwd in ((max_pool, fc.max_pool2d_backward), (avg_pool, fc.avg_pool2d_backward)):
        _same(backend, fwd, [x], "pool")
        y = _outcome(lambda fwd=fwd: fwd(x.astype(np.float64), backend="numpy"))
        if isinstance(y, type):
            continue
        gy = rng.standard_normal(y.shape).astype(np.float32)
        extra = dict(dilation=dilation) if bwd is fc.max_pool2d_backward else dict(count_include_pad=include_pad)

        def backward(gy, x, backend, bwd=bwd, extra=extra):
            return bwd(gy, x, backend=backend, **kw, **extra)

        _same(backend, backward, [gy, x], "pool")


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(
    shape=st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5)),
    training=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_batch_norm_relu_and_linear(backend, shape, training, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    c = shape[1]
    w, b = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    rm, rv = rng.standard_normal(c).astype(np.float32), (np.abs(rng.standard_normal(c)) + 0.5).astype(np.float32)

    def bn(x, w, b, backend):  # running stats copied (astype): training mode updates them in place
        return fc.batch_norm(x, rm.astype(x.dtype), rv.astype(x.dtype), w, b, training=training, backend=backend)

    def bn_backward(gy, x, w, backend):
        return fc.batch_norm_backward(gy, x, rm.astype(x.dtype), rv.astype(x.dtype), w, training, backend=backend)

    _same(backend, bn, [x, w, b], "bn")
    gy = rng.standard_normal(shape).astype(np.float32)
    if training and 2 <= x.size // max(c, 1) <= 3:
        # with so few values per channel grad x is a difference of nearly equal terms (exactly 0 for two values,
        # but for eps): float32 rounding is then relative to the terms |w * gy / std|, not to the tiny result
        got = fc.batch_norm_backward(gy, x, rm, rv, w, True, backend=backend)[0]
        ref = fc.batch_norm_backward(*(a.astype(np.float64) for a in (gy, x, rm, rv, w)), True, backend="numpy")[0]
        std = np.sqrt(x.astype(np.float64).var(axis=(0, 2, 3)) + 1e-5)
        scale = max(float(np.abs(w / std).max() * np.abs(gy).max()), 1e-30)
        assert float(np.abs(got - ref).max(initial=0.0)) / scale <= 5e-5 * 4
    else:
        _same(backend, lambda gy, x, w, backend: bn_backward(gy, x, w, backend)[0], [gy, x, w], "bn")
        ref = _outcome(lambda: bn_backward(*(a.astype(np.float64) for a in (gy, x, w)), "numpy"))
        if x.size and not isinstance(ref, type):  # the parameter gradients are sums: rounding relative to the terms
            got = bn_backward(gy, x, w, backend)
            x64, axes = x.astype(np.float64), (0, 2, 3)
            mean, var = (x64.mean(axis=axes), x64.var(axis=axes)) if training else (rm, rv)
            xhat = (x64 - np.reshape(mean, (1, c, 1, 1))) / np.sqrt(np.reshape(var, (1, c, 1, 1)) + 1e-5)
            for g, r, terms in zip(got[1:], ref[1:], (np.abs(gy * xhat).sum(axis=axes), np.abs(gy).sum(axis=axes))):
                assert np.all(np.abs(g - r) <= 5e-5 * terms + 1e-30), f"{backend} bn_backward: {g} vs {r}"
    _same(backend, lambda x, backend: fc.relu(x, backend=backend), [x], "eltwise")
    lw = rng.standard_normal((3, shape[-1])).astype(np.float32)
    _same(backend, lambda x, w, backend: fc.linear(x, w, backend=backend), [x, lw], "linear")
