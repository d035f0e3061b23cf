"""The reference backend run in float32 (and on strided, byte-swapped inputs) against itself in float64."""

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
    NORM_CASES,
    TRANSPOSE_CASES,
)

B = "numpy"
ids = lambda cases: [c.id for c in cases]  # noqa: E731


@pytest.mark.parametrize("case", CONV2D_CASES + CONV1D_CASES, ids=ids(CONV2D_CASES) + ids(CONV1D_CASES))
def test_conv_forward_float32(case, rng):
    cf.check_conv_forward(B, "auto", case, np.float32, rng)


@pytest.mark.parametrize("case", CONV2D_CASES[:6] + CONV1D_CASES[:2], ids=ids(CONV2D_CASES[:6] + CONV1D_CASES[:2]))
def test_conv_forward_noncontiguous_byteswapped(case, rng):
    cf.check_conv_forward(B, "auto", case, np.float64, rng, non_contiguous=True)


@pytest.mark.parametrize("case", CONV2D_CASES + CONV1D_CASES, ids=ids(CONV2D_CASES) + ids(CONV1D_CASES))
def test_conv_backward_float32(case, rng):
    cf.check_conv_backward(B, "auto", case, np.float32, rng)


def test_conv_backward_partial(rng):
    cf.check_conv_backward(B, "auto", CONV2D_CASES[0], np.float32, rng, need=(False, True, False))
    cf.check_conv_backward(B, "auto", CONV2D_CASES[0], np.float32, rng, need=(True, False, False))


@pytest.mark.parametrize("case", MAX_POOL_CASES, ids=ids(MAX_POOL_CASES))
def test_max_pool_float32(case, rng):
    cf.check_max_pool(B, case, np.float32, rng)


@pytest.mark.parametrize("case", AVG_POOL_CASES, ids=ids(AVG_POOL_CASES))
def test_avg_pool_float32(case, rng):
    cf.check_avg_pool(B, case, np.float32, rng)


@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=ids(ADAPTIVE_CASES))
def test_adaptive_pool_float32(case, rng):
    cf.check_adaptive_pool(B, case, np.float32, rng)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_float32(shape, training, rng):
    cf.check_batch_norm(B, shape, training, np.float32, rng)


@pytest.mark.parametrize("shape", ELTWISE_SHAPES)
def test_relu_float32(shape, rng):
    cf.check_relu(B, shape, np.float32, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", NORM_CASES, ids=[c.id for c in NORM_CASES])
def test_norms(case, dtype, rng):
    cf.check_norm(B, case, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algo, case", cf.transpose_algos("numpy", TRANSPOSE_CASES))
def test_conv_transpose2d(algo, case, dtype, rng):
    cf.check_conv_transpose(B, algo, case, dtype, rng)
