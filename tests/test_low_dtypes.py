"""float16 and bfloat16 (ml_dtypes) arrays into the convolutions and linear: the result has the input's dtype and
equals the float64 reference on the same values rounded once to that dtype (to within one rounding of the float32
accumulation); mixed dtypes are refused."""

import numpy as np
import pytest

import fastconv as fc

try:
    import ml_dtypes
except ImportError:  # an optional test dependency
    ml_dtypes = None

DTYPES = [pytest.param(np.dtype(np.float16), id="float16")]
if ml_dtypes is not None:
    DTYPES.append(pytest.param(np.dtype(ml_dtypes.bfloat16), id="bfloat16"))
else:
    DTYPES.append(pytest.param(None, id="bfloat16", marks=pytest.mark.skip(reason="ml_dtypes is not installed")))
BITS = {"float16": 11, "bfloat16": 8}  # significand bits


def _check(got, ref, dtype):
    assert got.dtype == dtype and got.shape == ref.shape
    eps = 2.0 ** -(BITS[dtype.name] - 1)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(got.astype(np.float64), ref, rtol=eps, atol=eps * scale * 1e-3 + 1e-30)


def _low(rng, shape, dtype):
    return rng.standard_normal(shape).astype(np.float32).astype(dtype)


CALLS = [
    ("conv2d", (2, 8, 9, 7), (6, 8, 3, 3), dict(padding=1, stride=(2, 1))),
    ("conv1d", (2, 5, 17), (4, 5, 3), dict(dilation=2)),
    ("conv_transpose2d", (2, 4, 5, 6), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ("linear", (7, 33), (12, 33), {}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, x_shape, w_shape, kw", CALLS, ids=[c[0] for c in CALLS])
def test_result_in_the_input_dtype(op, x_shape, w_shape, kw, dtype, rng):
    fwd, bwd = getattr(fc, op), getattr(fc, f"{op}_backward")
    x, w = _low(rng, x_shape, dtype), _low(rng, w_shape, dtype)
    kept = x.copy(), w.copy()
    y = fwd(x, w, **kw)
    _check(y, fwd(x.astype(np.float64), w.astype(np.float64), **kw, backend="numpy"), dtype)
    gy = _low(rng, y.shape, dtype)
    grads = bwd(gy, x, w, **kw)
    refs = bwd(gy.astype(np.float64), x.astype(np.float64), w.astype(np.float64), **kw, backend="numpy")
    for g, r in zip(grads, refs):
        _check(g, r, dtype)
    assert np.array_equal(x, kept[0]) and np.array_equal(w, kept[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_plans_and_unbatched(dtype, rng):
    x, w = _low(rng, (4, 6, 6), dtype), _low(rng, (3, 4, 3, 3), dtype)
    plan = fc.plan(fc.conv2d, x, w, need_backward=True)
    y = plan.run(x, w, None)
    assert y.dtype == dtype and y.shape == (3, 4, 4)
    gx, gw, gb = plan.backward().run(np.ones_like(y), x, w)
    assert gx.dtype == gw.dtype == gb.dtype == dtype and gx.shape == x.shape
    with pytest.raises(ValueError, match=f"conv2d plan: 'x' has dtype float32, not {dtype.name}"):
        plan.run(x.astype(np.float32), w, None)


def test_bfloat16_computes_in_bf16_unless_told(rng):
    if ml_dtypes is None:
        pytest.skip("ml_dtypes is not installed")
    x, w = _low(rng, (1, 4, 6, 6), ml_dtypes.bfloat16), _low(rng, (3, 4, 3, 3), ml_dtypes.bfloat16)
    assert fc.plan(fc.conv2d, x, w).params.precision == "bf16"
    assert fc.plan(fc.conv2d, x, w, precision="fp32").params.precision == "fp32"
    assert fc.plan(fc.conv2d, x.astype(np.float16), w.astype(np.float16)).params.precision == "fp32"


def test_mixed_dtypes_are_refused():
    with pytest.raises(TypeError, match=r"conv2d: 'weight' is a float32 array .* other arrays are float16"):
        fc.conv2d(np.zeros((1, 2, 4, 4), np.float16), np.zeros((2, 2, 3, 3), np.float32))
    with pytest.raises(TypeError, match="max_pool2d: 'x' must have dtype float32 or float64, got float16"):
        fc.max_pool2d(np.zeros((1, 2, 4, 4), np.float16), 2)
