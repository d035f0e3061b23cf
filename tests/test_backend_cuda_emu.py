"""Every CUDA kernel through "cuda-emu" (the .cu files run on the CPU by the emulator) against the float64
reference, with launch sizes forced small (SMALL_TUNABLES) so the tiny shapes span several blocks, partial tiles
and wrapping grid-stride loops. Outputs are poisoned (conftest)."""

import conformance as cf
import numpy as np
import pytest
from cases import (
    ADAPTIVE_CASES,
    AVG_POOL_CASES,
    BN_SHAPES,
    CONV1D_CASES,
    CONV2D_CASES,
    ELTWISE_SHAPES,
    MAX_POOL_CASES,
)

import fastconv as fc

B = "cuda-emu"
pytestmark = pytest.mark.skipif(not fc.backends()[B].available, reason=f"cuda-emu: {fc.backends()[B].reason}")
ids = lambda cases: [c.id for c in cases]  # noqa: E731
CONV = CONV2D_CASES + CONV1D_CASES
DEPTHWISE = [c for c in CONV2D_CASES if c.id.startswith("depthwise")]
F64_CONV = [c for c in CONV2D_CASES if c.id in ("basic_p1", "dilated_strided", "grouped_strided", "stem7x7_s2",
                                                "asymmetric_pad", "empty_batch")]
DENSE = ("conv2d_fwd_v1_naive", "conv2d_fwd_v2_smem_tiled", "conv2d_fwd_v3_implicit_gemm")


@pytest.fixture(autouse=True)
def _small_launches():
    from fastconv.backends.cuda.emu import LAUNCHER
    from fastconv.backends.cuda.launch import SMALL_TUNABLES

    with LAUNCHER.override(SMALL_TUNABLES):
        yield


@pytest.mark.parametrize("algo", DENSE)
@pytest.mark.parametrize("case", CONV, ids=ids(CONV))
def test_conv_forward_float32(case, algo, rng):
    cf.check_conv_forward(B, algo, case, np.float32, rng)


F64_FORWARD = [pytest.param(c, a, id=f"{c.id}-{a}") for c in F64_CONV for a in DENSE] + \
              [pytest.param(c, "conv2d_fwd_v4_depthwise", id=c.id) for c in DEPTHWISE]


@pytest.mark.parametrize("case, algo", F64_FORWARD)
def test_conv_forward_float64(case, algo, rng):
    cf.check_conv_forward(B, algo, case, np.float64, rng)


@pytest.mark.parametrize("case", DEPTHWISE, ids=ids(DEPTHWISE))
def test_conv_forward_depthwise_float32(case, rng):
    cf.check_conv_forward(B, "conv2d_fwd_v4_depthwise", case, np.float32, rng)


def test_conv_auto_picks_the_ladder_top():
    x, w = np.zeros((1, 4, 5, 5)), np.zeros((4, 1, 3, 3))
    assert fc.select(fc.conv2d, x, w, groups=4, backend=B)[0].algo == "conv2d_fwd_v4_depthwise"
    assert fc.select(fc.conv2d, x, np.zeros((3, 4, 3, 3)), backend=B)[0].algo == "conv2d_fwd_v3_implicit_gemm"


@pytest.mark.parametrize("case", CONV, ids=ids(CONV))
def test_conv_backward_float32(case, rng):
    cf.check_conv_backward(B, "auto", case, np.float32, rng)


@pytest.mark.parametrize("case", F64_CONV, ids=ids(F64_CONV))
def test_conv_backward_float64(case, rng):
    cf.check_conv_backward(B, "auto", case, np.float64, rng)


@pytest.mark.parametrize("case", F64_CONV[:4], ids=ids(F64_CONV[:4]))
def test_conv_backward_weight_atomic(case, rng):
    cf.check_conv_backward(B, "conv2d_bwd_weight_v2_atomic", case, np.float64, rng, need=(False, True, False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", MAX_POOL_CASES, ids=ids(MAX_POOL_CASES))
def test_max_pool(case, dtype, rng):
    cf.check_max_pool(B, case, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", AVG_POOL_CASES, ids=ids(AVG_POOL_CASES))
def test_avg_pool(case, dtype, rng):
    cf.check_avg_pool(B, case, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=ids(ADAPTIVE_CASES))
def test_adaptive_and_global_pool(case, dtype, rng):
    cf.check_adaptive_pool(B, case, dtype, rng)


def test_max_pool_nan_propagates(rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    x[0, 1, 2, 3] = np.nan
    y, idx = fc.max_pool2d(x, 3, stride=2, return_indices=True, backend=B)
    y_ref, idx_ref = fc.max_pool2d(x, 3, stride=2, return_indices=True, backend="numpy")
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm(shape, training, dtype, rng):
    cf.check_batch_norm(B, shape, training, dtype, rng)


def test_batch_norm_empty_batch_eval(rng):
    cf.check_batch_norm(B, (0, 3, 4, 4), False, np.float32, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", ELTWISE_SHAPES)
def test_relu(shape, dtype, rng):
    cf.check_relu(B, shape, dtype, rng)


def test_weight_gradient_is_deterministic_by_default(rng):
    gy, x, w = rng.standard_normal((3, 4, 7, 7)), rng.standard_normal((3, 5, 9, 9)), rng.standard_normal((4, 5, 3, 3))
    runs = [fc.conv2d_backward(gy, x, w, need_input=False, need_bias=False, backend=B)[1] for _ in range(3)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])
