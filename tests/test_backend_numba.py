"""The "numba" backend: every (op, algo) against the float64 reference on the awkward shapes of cases.py, float32
and float64, outputs poisoned (conftest); NaN propagation; identical results for 1 and 2 threads.

Each conv algorithm runs on every case it supports (its registered `supports` predicate decides, the same one
`algo="auto"` and the error messages use), so a restricted algorithm is tested on all the shapes it takes. An
algorithm registered to read a channels_last x (conv2d_fwd_v9_nhwc) gets x in that order, on the cases where it is one
(test_channels_last.py adds the layout's own checks)."""

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
    ConvCase,
    PoolCase,
)
from helpers import assert_close, rand

import fastconv as fc

B = "numba"

# Shapes past the register tiles (VECS rows x LANES columns, ROWS channels, VECS*LANES pixels) so that full tiles,
# several channel blocks and the masked edge tiles all run; cases.py's awkward shapes fit in one tile.
TILE_CASES = [
    ConvCase("tiles_dense", (2, 5, 19, 37), (13, 5, 3, 3), dict(padding=1)),
    ConvCase("tiles_strided", (1, 4, 23, 45), (8, 4, 3, 3), dict(stride=2, padding=(2, 1))),
    ConvCase("tiles_grouped_dilated", (1, 6, 14, 40), (14, 3, 3, 3), dict(groups=2, dilation=2, padding=2)),
    ConvCase("tiles_pointwise", (2, 9, 13, 11), (14, 9, 1, 1), dict()),
    ConvCase("tiles_deep", (1, 40, 9, 20), (7, 40, 3, 3), dict(padding=1)),  # more than one input-channel block
    ConvCase("tiles_depthwise", (2, 6, 21, 35), (12, 1, 3, 3), dict(groups=6, padding=1)),
    # Winograd (2x2 output tiles, blocks of VECS*LANES tiles): odd P and Q, several tile blocks, a partial last one
    ConvCase("tiles_pad2_odd", (2, 19, 21, 33), (11, 19, 3, 3), dict(padding=2)),
    ConvCase("tiles_asym_grouped", (1, 8, 12, 35), (10, 4, 3, 3), dict(groups=2, padding=((0, 1), (2, 0)))),
    ConvCase("tiles_deeper", (2, 72, 5, 6), (9, 72, 3, 3), dict(padding=1)),  # more than winograd's CB channels
    # small planes and >= 16 output-channel blocks: conv2d_bwd_weight_v4_blocked sums the images in one iteration
    ConvCase("tiles_whole_batch", (3, 5, 6, 5), (100, 5, 3, 3), dict(padding=1)),
    # conv2d_bwd_weight_v8_chunks: reduction chunks spanning images, a zero-filled channel block (70 = 64 + 6), a
    # last block of one output channel (13 = 6 + 6 + 1), stride and dilation; a strided 1x1 (only the pixels it
    # reads are copied)
    ConvCase("tiles_chunks", (3, 70, 23, 29), (13, 70, 3, 3), dict(stride=(1, 2), padding=1, dilation=(2, 1))),
    ConvCase("tiles_pointwise_strided", (2, 20, 9, 11), (7, 20, 1, 1), dict(stride=(2, 3))),
    # conv2d_bwd_data_v13_phases: phases with more gy rows than they read (their padding clamped to 0 and the extra
    # outputs cropped), unequal phase sizes, a dilation sharing a factor with the stride, zero phases
    ConvCase("tiles_phases", (2, 3, 13, 10), (5, 3, 2, 4), dict(stride=(3, 2), padding=(2, 3), dilation=(3, 1))),
    ConvCase("tiles_phases_dilated", (1, 4, 11, 12), (6, 2, 3, 3), dict(stride=(2, 4), dilation=(2, 2), groups=2)),
]
ALL_CONV = CONV2D_CASES + CONV1D_CASES + TILE_CASES
# Max pooling rows wider than two SIMD vectors, at stride 1, 2 and 3 (the lane-by-lane one), so full and masked
# vectors of both passes run; cases.py's shapes fit in one vector.
WIDE_POOL_CASES = [
    PoolCase("wide_k3s2p1", (1, 2, 7, 53), dict(kernel_size=3, stride=2, padding=1)),
    PoolCase("wide_s1_dilated", (1, 2, 6, 41), dict(kernel_size=3, stride=1, padding=1, dilation=2)),
    PoolCase("wide_s3_ceil", (1, 2, 7, 50), dict(kernel_size=(2, 4), stride=3, padding=(1, 2), ceil_mode=True)),
]
MAX_POOLS = MAX_POOL_CASES + WIDE_POOL_CASES
# Batch-norm planes past the summation blocks (BLOCK elements of VECS vectors): full and partial blocks and a scalar
# tail (37*41 = 1517), exactly one step of vectors (64), several blocks with no tail (2048); cases.py's planes are
# shorter than one step, so only the scalar path would run.
WIDE_BN_SHAPES = [(2, 3, 37, 41), (3, 2, 64), (1, 2, 2048)]
DTYPES = [np.float32, np.float64]
ids = lambda cases: [c.id for c in cases]  # noqa: E731


def conv_table(op):
    return cf.registered_cases(op, B, ALL_CONV)


def x_for(algo, x):
    """x in the layout the tests give the conv2d `algo`."""
    return cf.channels_last(x) if cf.layout_of("conv2d", B, algo) == "channels_last" else x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo, case", conv_table("conv2d"))
def test_conv_forward(algo, case, dtype, rng):
    cf.check_conv_forward(B, algo, case, dtype, rng, layout=cf.layout_of("conv2d", B, algo))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo, case", conv_table("conv2d_bwd_data"))
def test_conv_backward_data(algo, case, dtype, rng):
    cf.check_conv_backward(B, algo, case, dtype, rng, need=(True, False, False))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo, case", conv_table("conv2d_bwd_weight"))
def test_conv_backward_weight(algo, case, dtype, rng):
    cf.check_conv_backward(B, algo, case, dtype, rng, need=(False, True, False))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ALL_CONV, ids=ids(ALL_CONV))
def test_conv_auto(case, dtype, rng):
    """What a default call runs: algo='auto' for the forward and all three gradients (the bias one included)."""
    cf.check_conv_forward(B, "auto", case, dtype, rng)
    cf.check_conv_backward(B, "auto", case, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MAX_POOLS, ids=ids(MAX_POOLS))
def test_max_pool(case, dtype, rng):
    cf.check_max_pool(B, case, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MAX_POOLS, ids=ids(MAX_POOLS))
def test_max_pool_values_only(case, dtype, rng):
    """Without return_indices max pooling takes its own (index-free) kernel."""
    x = rand(rng, case.x, dtype)
    ref = fc.max_pool2d(x.astype(np.float64), **case.kw, backend="numpy")
    assert_close(fc.max_pool2d(x, **case.kw, backend=B), ref, "pool", dtype, case.id)


@pytest.mark.parametrize("case", [MAX_POOL_CASES[4]] + WIDE_POOL_CASES, ids=ids([MAX_POOL_CASES[4]] + WIDE_POOL_CASES))
def test_max_pool_ties(case, rng):
    """Few distinct values, many -inf, some NaN: values, indices and gradient follow the reference's first
    maximum in row-major tap order (NaN the largest, the first NaN winning)."""
    x = rng.integers(-2, 2, case.x).astype(np.float32)
    x[rng.random(case.x) < 0.3] = -np.inf
    x[rng.random(case.x) < 0.03] = np.nan
    y, idx = fc.max_pool2d(x, **case.kw, return_indices=True, backend=B)
    y_ref, idx_ref = fc.max_pool2d(x.astype(np.float64), **case.kw, return_indices=True, backend="numpy")
    assert np.array_equal(y, y_ref, equal_nan=True) and np.array_equal(idx, idx_ref), case.id
    assert np.array_equal(fc.max_pool2d(x, **case.kw, backend=B), y, equal_nan=True), case.id
    gy = rand(rng, y.shape, np.float32)
    gx_ref = fc.max_pool2d_backward(gy.astype(np.float64), x.astype(np.float64), **case.kw, backend="numpy")
    assert_close(fc.max_pool2d_backward(gy, x, **case.kw, backend=B), gx_ref, "pool", np.float32, case.id)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", AVG_POOL_CASES, ids=ids(AVG_POOL_CASES))
def test_avg_pool(case, dtype, rng):
    cf.check_avg_pool(B, case, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=ids(ADAPTIVE_CASES))
def test_adaptive_pool(case, dtype, rng):
    cf.check_adaptive_pool(B, case, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES + WIDE_BN_SHAPES)
def test_batch_norm(shape, training, dtype, rng):
    cf.check_batch_norm(B, shape, training, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_far_from_zero(dtype, rng):
    """Statistics of data whose mean is far larger than its spread (x = 3000 + noise) keep their accuracy: the
    deviations are summed around each plane's mean, not as sum(x^2) - sum(x)^2."""
    x = (rand(rng, (2, 3, 37, 41), dtype) + 3000).astype(dtype)
    w, b = rand(rng, (3,), dtype), rand(rng, (3,), dtype)
    gy = rand(rng, x.shape, dtype)
    y = fc.batch_norm(x, None, None, w, b, training=True, backend=B)
    assert_close(
        y,
        fc.batch_norm(
            x.astype(np.float64), None, None, w.astype(np.float64), b.astype(np.float64), training=True, backend="numpy"
        ),
        "bn",
        dtype,
        "batch_norm far from zero",
    )
    got = fc.batch_norm_backward(gy, x, None, None, w, True, backend=B)
    ref = fc.batch_norm_backward(
        *(a.astype(np.float64) for a in (gy, x)), None, None, w.astype(np.float64), True, backend="numpy"
    )
    for name, g, r in zip(("grad_x", "grad_weight", "grad_bias"), got, ref):
        assert_close(g, r, "bn", dtype, f"batch_norm_backward far from zero {name}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ELTWISE_SHAPES)
def test_relu(shape, dtype, rng):
    cf.check_relu(B, shape, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", NORM_CASES, ids=[c.id for c in NORM_CASES])
def test_norms(case, dtype, rng):
    cf.check_norm(B, case, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algo, case", cf.transpose_algos("numba", TRANSPOSE_CASES))
def test_conv_transpose2d(algo, case, dtype, rng):
    cf.check_conv_transpose(B, algo, case, dtype, rng)
