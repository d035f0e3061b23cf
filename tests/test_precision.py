"""Reduced compute precisions (fastconv.precision): the rounding against torch's bfloat16 cast and the TF32 rule,
every backend's conv, conv backward, linear and transposed conv under precision="bf16" (and "tf32" where the
backend offers it) against the float64 reference computed on operands rounded here, the use_precision context,
refusals, and the accuracy of bf16 against the unrounded float64 result."""

import numpy as np
import pytest
from cases import CONV2D_CASES, LINEAR_CASES, TRANSPOSE_CASES
from helpers import assert_close, rand, requires_torch, torch

import fastconv as fc
from fastconv.precision import rounded

F64 = np.float64
PRECISE = [("numpy", "bf16"), ("numba", "bf16"), ("cuda-emu", "bf16"), ("numpy", "tf32"), ("cuda-emu", "tf32")]


def _round_by_hand(a: np.ndarray, precision: str) -> np.ndarray:
    """Round each float32 to the nearest value with 8 (bf16, ties to even) or 11 (tf32, ties away) significant
    bits, by frexp arithmetic in float64 (independent of the bit tricks of fastconv.precision)."""
    bits = 8 if precision == "bf16" else 11
    m, e = np.frexp(a.astype(F64))  # a = m * 2**e, 0.5 <= |m| < 1
    scaled = m * 2.0**bits
    if precision == "bf16":
        r = np.round(scaled)  # numpy rounds half to even
    else:
        r = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return (r * 2.0 ** (e - bits)).astype(np.float32)


@pytest.mark.parametrize("precision", ["bf16", "tf32"])
def test_rounding_rule(precision, rng):
    normal = rng.standard_normal(100_000).astype(np.float32) * np.float32(1e3)
    # exact ties: a kept part followed by a single 1 bit just below it
    drop = 16 if precision == "bf16" else 13
    ties = ((rng.integers(0x3F80, 0x4080, 1000, dtype=np.uint32) << 16) | (1 << (drop - 1))).astype(np.uint32)
    ties = ties.view(np.float32) if precision == "bf16" else (ties & 0xFFFFF000 | 0x1000).view(np.float32)
    for a in (normal, ties):
        np.testing.assert_array_equal(rounded(a, precision), _round_by_hand(a, precision))
    special = np.array([np.inf, -np.inf, np.nan, 3.4e38, -3.4e38, 0.0, -0.0], np.float32)
    r = rounded(special, precision)
    assert np.isnan(r[2]) and list(r[[0, 1, 5, 6]]) == [np.inf, -np.inf, 0.0, 0.0]
    assert np.signbit(r[6])
    if precision == "bf16":
        assert list(r[[3, 4]]) == [np.inf, -np.inf]  # past bf16's largest finite value
    f64 = normal.astype(F64)
    assert rounded(f64, precision).dtype == F64
    np.testing.assert_array_equal(rounded(f64, precision), rounded(normal, precision))
    assert np.array_equal(normal, normal.copy())  # the input is not modified


@requires_torch
def test_bf16_rounding_is_torch_bfloat16(rng):
    a = np.concatenate([rng.standard_normal(100_000) * 10.0 ** rng.integers(-30, 30, 100_000)]).astype(np.float32)
    np.testing.assert_array_equal(rounded(a, "bf16"), torch.tensor(a).bfloat16().float().numpy())


def _ref(fn, arrays, precision, **kw):
    """fn on the numpy backend in float64, on operands rounded by hand (the bias left as it is)."""
    rounded_ = [None if a is None else _round_by_hand(a, precision).astype(F64) for a in arrays[:2]]
    rest = [None if a is None else a.astype(F64) for a in arrays[2:]]
    return fn(*rounded_, *rest, backend="numpy", **kw)


CONV = [c for c in CONV2D_CASES if c.x[0] > 0][:8]


@pytest.mark.parametrize("backend, precision", PRECISE)
@pytest.mark.parametrize("case", CONV, ids=[c.id for c in CONV])
def test_conv2d(case, backend, precision, rng):
    x, w, b = rand(rng, case.x, np.float32), rand(rng, case.w, np.float32), rand(rng, (case.w[0],), np.float32)
    y = fc.conv2d(x, w, b, **case.kw, backend=backend, precision=precision)
    assert_close(y, _ref(fc.conv2d, (x, w, b), precision, **case.kw), "conv", np.float32, case.id)
    gy = rand(rng, y.shape, np.float32)
    gx, gw, gb = fc.conv2d_backward(gy, x, w, **case.kw, backend=backend, precision=precision)
    rx = _ref(
        lambda g, w_, **k: fc.conv2d_backward(g, x.astype(F64), w_, need_weight=False, **k)[0],
        (gy, w),
        precision,
        **case.kw,
    )
    rw = _ref(
        lambda g, x_, **k: fc.conv2d_backward(g, x_, w.astype(F64), need_input=False, **k)[1],
        (gy, x),
        precision,
        **case.kw,
    )
    assert_close(gx, rx, "conv", np.float32, f"{case.id} grad_x")
    assert_close(gw, rw, "conv", np.float32, f"{case.id} grad_weight")
    assert_close(gb, gy.astype(F64).sum(axis=(0, 2, 3)), "conv", np.float32, f"{case.id} grad_bias (not rounded)")


@pytest.mark.parametrize("backend, precision", PRECISE)
@pytest.mark.parametrize("case", LINEAR_CASES[:4], ids=[c.id for c in LINEAR_CASES[:4]])
def test_linear(case, backend, precision, rng):
    x, w = rand(rng, case.x, np.float32), rand(rng, case.w, np.float32)
    y = fc.linear(x, w, backend=backend, precision=precision)
    assert_close(y, _ref(fc.linear, (x, w), precision), "linear", np.float32, case.id)
    gy = rand(rng, y.shape, np.float32)
    gx, gw, _ = fc.linear_backward(gy, x, w, backend=backend, precision=precision)
    rx = _ref(
        lambda g, w_, **k: fc.linear_backward(g, x.astype(F64), w_, need_weight=False, **k)[0], (gy, w), precision
    )
    rw = _ref(lambda g, x_, **k: fc.linear_backward(g, x_, w.astype(F64), need_input=False, **k)[1], (gy, x), precision)
    assert_close(gx, rx, "linear", np.float32, f"{case.id} grad_x")
    assert_close(gw, rw, "linear", np.float32, f"{case.id} grad_weight")


@pytest.mark.parametrize("backend, precision", PRECISE)
def test_conv_transpose2d(backend, precision, rng):
    case = TRANSPOSE_CASES[0]
    x, w = rand(rng, case.x, np.float32), rand(rng, case.w, np.float32)
    y = fc.conv_transpose2d(x, w, **case.kw, backend=backend, precision=precision)
    assert_close(y, _ref(fc.conv_transpose2d, (x, w), precision, **case.kw), "conv", np.float32, case.id)


def test_context_and_plan_cache(rng):
    x, w = rand(rng, (1, 4, 6, 6), np.float32), rand(rng, (3, 4, 3, 3), np.float32)
    exact = fc.conv2d(x, w)
    with fc.use_precision("bf16"):
        low = fc.conv2d(x, w)
        assert fc.plan(fc.conv2d, x, w).params.precision == "bf16"
        np.testing.assert_array_equal(fc.conv2d(x, w, precision="fp32"), exact)  # the argument wins
    np.testing.assert_array_equal(low, fc.conv2d(x, w, precision="bf16"))
    np.testing.assert_array_equal(fc.conv2d(x, w), exact)  # the context's plan is not reused outside it
    assert not np.array_equal(low, exact)


def test_nn_respects_the_context(rng):
    layer = fc.nn.Conv2d(4, 3, 3)
    x = rand(rng, (2, 4, 6, 6), np.float32)
    with fc.use_precision("bf16"):
        y = layer(x)
        layer.backward(np.ones_like(y))
    ref = _ref(fc.conv2d, (x, layer.weight.data, layer.bias.data), "bf16")
    assert_close(y, ref, "conv", np.float32, "nn.Conv2d under bf16")


def test_refusals():
    x, w = np.zeros((1, 2, 4, 4), np.float32), np.zeros((2, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="conv2d: the numba backend cannot compute precision='tf32'"):
        fc.conv2d(x, w, precision="tf32", backend="numba")
    with pytest.raises(ValueError, match="linear_backward: the numba backend cannot compute precision='tf32'"):
        fc.linear_backward(
            np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32), np.zeros((3, 4), np.float32), precision="tf32"
        )
    with pytest.raises(ValueError, match=r"conv2d: 'precision' must be one of \('fp32', 'bf16', 'tf32'\), got 'fp16'"):
        fc.conv2d(x, w, precision="fp16")
    with pytest.raises(ValueError, match="use_precision: 'precision'"):
        with fc.use_precision("half"):
            pass


def test_bf16_accuracy_against_float64(rng):
    """Each bf16 operand carries a relative rounding error of at most 2**-8 (8-bit significand, round to nearest),
    about 0.42 * 2**-8 = 1.6e-3 rms for random data; a product of two carries about sqrt(2) times that, and a sum
    of many products with random signs keeps that relative size: expect a relative L2 error near 2.3e-3."""
    x, w = rand(rng, (4, 64, 14, 14), np.float32), rand(rng, (64, 64, 3, 3), np.float32)
    exact = fc.conv2d(x.astype(F64), w.astype(F64), padding=1, backend="numpy")
    y = fc.conv2d(x, w, padding=1, precision="bf16")
    err = np.linalg.norm(y - exact) / np.linalg.norm(exact)
    assert 1.5e-3 < err < 3.5e-3, err


# ---------------------------------------------------------------------------------------------- the AMX rung
def _amx_reason():
    from fastconv.backends.numba_cpu import amx

    return amx.status()


requires_amx = pytest.mark.skipif(_amx_reason() is not None, reason=f"no AMX here: {_amx_reason()}")
UNGROUPED = [c for c in CONV2D_CASES if c.kw.get("groups", 1) == 1 and c.kw.get("padding_mode", "zeros") == "zeros"]


@requires_amx
@pytest.mark.parametrize("case", UNGROUPED, ids=[c.id for c in UNGROUPED])
def test_amx_conv_against_the_reference(case, rng):
    x, w = rand(rng, case.x, np.float32), rand(rng, case.w, np.float32)
    b = rand(rng, (case.w[0],), np.float32) if case.bias else None
    kept = [x.copy(), w.copy()]
    y = fc.conv2d(x, w, b, **case.kw, precision="bf16", algo="conv2d_fwd_v10_amx")
    assert y.dtype == np.float32
    assert_close(y, _ref(fc.conv2d, (x, w, b), "bf16", **case.kw), "conv", np.float32, case.id)
    np.testing.assert_array_equal(x, kept[0])
    np.testing.assert_array_equal(w, kept[1])


@requires_amx
@pytest.mark.parametrize("shape", [(1, 7), (33, 65), (64, 96), (5, 2, 40)])
def test_amx_linear_against_the_reference(shape, rng):
    x, w, b = rand(rng, shape, np.float32), rand(rng, (37, shape[-1]), np.float32), rand(rng, (37,), np.float32)
    y = fc.linear(x, w, b, precision="bf16", algo="linear_gemm_v4_amx")
    assert y.shape == shape[:-1] + (37,)
    assert_close(y, _ref(fc.linear, (x, w, b), "bf16"), "linear", np.float32, str(shape))
    gy = rand(rng, y.shape, np.float32)
    gx, gw, _ = fc.linear_backward(gy, x, w, precision="bf16", algo="linear_gemm_v4_amx")
    rx = _ref(lambda g, w_, **k: fc.linear_backward(g, x.astype(F64), w_, need_weight=False, **k)[0], (gy, w), "bf16")
    rw = _ref(lambda g, x_, **k: fc.linear_backward(g, x_, w.astype(F64), need_input=False, **k)[1], (gy, x), "bf16")
    assert_close(gx, rx, "linear", np.float32, f"{shape} grad_x")
    assert_close(gw, rw, "linear", np.float32, f"{shape} grad_weight")


@requires_amx
def test_amx_results_do_not_depend_on_threads(rng):
    import numba

    from fastconv.backends.numba_cpu import config

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba has a single thread here")
    x, w = rand(rng, (3, 40, 13, 11), np.float32), rand(rng, (70, 40, 3, 3), np.float32)
    before, results = numba.get_num_threads(), []
    try:
        for n in (1, 2):
            numba.set_num_threads(n)
            results.append(fc.conv2d(x, w, padding=1, precision="bf16", algo="conv2d_fwd_v10_amx"))
    finally:
        numba.set_num_threads(before)
    with config.serially():
        results.append(fc.conv2d(x, w, padding=1, precision="bf16", algo="conv2d_fwd_v10_amx"))
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


@requires_amx
def test_amx_keeps_nan_and_inf(rng):
    x, w = rand(rng, (1, 4, 6, 6), np.float32), rand(rng, (3, 4, 3, 3), np.float32)
    x[0, 1, 2, 3], x[0, 2, 5, 5] = np.nan, np.inf
    y = fc.conv2d(x, w, precision="bf16", algo="conv2d_fwd_v10_amx")
    ref = _ref(fc.conv2d, (x, w), "bf16")
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))


def test_named_amx_algo_refuses_what_it_cannot_run():
    x, w = np.zeros((1, 4, 5, 5), np.float32), np.zeros((4, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="conv2d_fwd_v10_amx"):
        fc.conv2d(x, w, groups=2, precision="bf16", algo="conv2d_fwd_v10_amx")
    with pytest.raises(ValueError, match="conv2d_fwd_v10_amx"):
        fc.conv2d(x, np.zeros((4, 4, 3, 3), np.float32), algo="conv2d_fwd_v10_amx")  # fp32: not its precision


STRIDE1 = [
    c
    for c in UNGROUPED
    if c.kw.get("stride", 1) in (1, (1, 1)) and c.kw.get("padding") != "same" and c.x[0] > 0 and len(c.x) == 4
]


@requires_amx
@pytest.mark.parametrize("case", STRIDE1, ids=[c.id for c in STRIDE1])
def test_amx_bwd_data_against_the_reference(case, rng):
    from fastconv.backends.numba_cpu import conv2d_amx

    x, w = rand(rng, case.x, np.float32), rand(rng, case.w, np.float32)
    p = fc.plan(fc.conv2d, x, w, **case.kw, precision="bf16").params
    if not conv2d_amx.supports_bwd_data(p):
        pytest.skip("a pad beyond the kernel's reach: the emulated rung's")
    gy = rand(rng, fc.conv2d(x, w, **case.kw).shape, np.float32)
    kw = dict(need_weight=False, need_bias=False, **case.kw)
    gx = fc.conv2d_backward(gy, x, w, **kw, precision="bf16", algo="conv2d_bwd_data_v4_amx")[0]
    ref = _ref(lambda g, w_, **k: fc.conv2d_backward(g, x.astype(F64), w_, **k)[0], (gy, w), "bf16", **kw)
    assert_close(gx, ref, "conv", np.float32, case.id)
