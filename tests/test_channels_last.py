"""Inputs in channels_last order (an (N, H, W, C) buffer viewed as (N, C, H, W), as torch.channels_last).

conv2d_fwd_v9_nhwc reads such an x in place and returns y in the same order: it is checked against the float64 reference
on shapes that run its interior tiles, its partial tiles and its border pixels (outputs poisoned by conftest), for NaN,
threads and input safety. The rest of the layout contract: which inputs count as channels_last, what auto picks, and
that every other algorithm, backend, downstream op, layer and gradient still gets the right answer."""

import conformance as cf
import numba
import numpy as np
import pytest
from cases import MAX_POOL_CASES, ConvCase, PoolCase
from helpers import assert_close, rand

import fastconv as fc
import fastconv.nn as nn
from fastconv.arrays import is_channels_last

F32, F64 = np.float32, np.float64
DTYPES = [F32, F64]
cl = cf.channels_last

# Q wide enough for several ROWS-pixel tiles plus a remainder, K past one or two VECS*LANES channel blocks
# (64 float32 / 32 float64 lanes with AVX-512), taps falling off every edge, windows entirely in the padding.
CASES = [
    ConvCase("p0", (3, 5, 9, 7), (7, 5, 3, 3), dict()),
    ConvCase("p1_k70", (1, 9, 6, 23), (70, 9, 3, 3), dict(padding=1)),
    ConvCase("p2_5x5_nobias", (3, 4, 8, 17), (5, 4, 5, 5), dict(padding=2), bias=False),
    ConvCase("asymmetric", (1, 3, 9, 20), (6, 3, 3, 3), dict(padding=((0, 2), (3, 1)))),
    ConvCase("stride2", (3, 5, 11, 31), (9, 5, 3, 3), dict(stride=2, padding=1)),
    ConvCase("dilation2_k33", (1, 6, 13, 29), (33, 6, 3, 3), dict(dilation=2, padding=2)),
    ConvCase("groups2", (3, 8, 7, 19), (12, 4, 3, 3), dict(groups=2, padding=1)),
    ConvCase("depthwise", (1, 6, 9, 15), (6, 1, 3, 3), dict(groups=6, padding=1)),
    ConvCase("pointwise_k65", (3, 16, 5, 27), (65, 16, 1, 1), dict()),
    ConvCase("stem7x7_s2_p3", (1, 3, 21, 29), (8, 3, 7, 7), dict(stride=2, padding=3)),
    ConvCase("same_even", (3, 4, 10, 14), (6, 4, 4, 2), dict(padding="same")),
    ConvCase("windows_in_padding", (1, 3, 4, 5), (2, 3, 3, 3), dict(padding=((0, 4), (4, 0)))),
    ConvCase("kernel_wider_than_x", (1, 2, 5, 3), (3, 2, 3, 5), dict(padding=(1, 2))),
]
ids = [c.id for c in CASES]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=ids)
def test_nhwc_against_reference(case, dtype, rng):
    """Values (poisoned outputs), dtype and untouched inputs, through the shared conformance check."""
    cf.check_conv_forward("numba", "conv2d_fwd_v9_nhwc", case, dtype, rng, layout="channels_last")


@pytest.mark.parametrize("case", CASES[:6], ids=ids[:6])
def test_nhwc_result_is_channels_last(case, rng):
    x, w, b = cl(rand(rng, case.x, F32)), rand(rng, case.w, F32), rand(rng, (case.w[0],), F32)
    y = fc.conv2d(x, w, b, algo="conv2d_fwd_v9_nhwc", **case.kw)
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous and not y.flags.c_contiguous
    ref = fc.conv2d(*(a.astype(F64) for a in (x, w, b)), backend="numpy", **case.kw)
    assert_close(y, ref, "conv", F32, case.id)


@pytest.mark.parametrize("case", CASES[1:5], ids=ids[1:5])
def test_nhwc_nan_propagates(case, rng):
    x = rand(rng, case.x, F32)
    x[0, -1, case.x[2] // 2, 0] = np.nan  # a border column and the last channel
    x[-1, 0, 0, case.x[3] // 2] = np.nan
    w, b = rand(rng, case.w, F32), rand(rng, (case.w[0],), F32)
    ref = fc.conv2d(x.astype(F64), w.astype(F64), b.astype(F64), backend="numpy", **case.kw)
    assert np.isnan(ref).any() and not np.isnan(ref).all()
    assert_close(fc.conv2d(cl(x), w, b, algo="conv2d_fwd_v9_nhwc", **case.kw), ref, "conv", F32, case.id)


def test_nhwc_one_and_two_threads_agree(rng):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba has a single thread here; nothing to compare")
    x, w = cl(rand(rng, (2, 9, 11, 23), F32)), rand(rng, (70, 9, 3, 3), F32)
    before, results = numba.get_num_threads(), []
    try:
        for n in (1, 2):
            numba.set_num_threads(n)
            results.append(fc.conv2d(x, w, padding=1, stride=(1, 2), algo="conv2d_fwd_v9_nhwc"))
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(*results)


# ---------------------------------------------------------------------------------------------- layout contract
def _algo(x, w, **kw):
    return fc.select(fc.conv2d, x, w, **kw)[0].algo


def test_nhwc_runs_on_channels_last_only(rng):
    """auto takes conv2d_fwd_v9_nhwc for a channels_last x where the selection table says
    (tests/test_backend_numba_select.py checks the table against the measurements); elsewhere it copies x to NCHW; an
    NCHW x never gets conv2d_fwd_v9_nhwc."""
    x, w = rand(rng, (2, 16, 9, 9), F32), rand(rng, (6, 16, 3, 3), F32)
    assert _algo(cl(x), w, padding=1, stride=2) == _algo(cl(x), w, padding=1) == "conv2d_fwd_v9_nhwc"
    assert (
        _algo(cl(x), w[:, :8], padding=1, stride=2, groups=2) == "conv2d_fwd_v5_rows"
    )  # grouped: the NCHW table decides
    assert _algo(x, w, padding=1, stride=2) != "conv2d_fwd_v9_nhwc"
    assert _algo(cl(x), w, padding=1, padding_mode="reflect") != "conv2d_fwd_v9_nhwc"  # padded into a new NCHW array
    with pytest.raises(ValueError, match="conv2d_fwd_v9_nhwc.*channels_last"):
        fc.conv2d(x, w, algo="conv2d_fwd_v9_nhwc")
    assert fc.select(fc.conv2d, cl(x), w, backend="numpy")[0].algo == "reference"


@pytest.mark.parametrize("shape", [(2, 1, 5, 6), (2, 3, 1, 1), (0, 3, 4, 5), (1, 3, 1, 6)])
def test_what_counts_as_channels_last(shape):
    """An order that is C-contiguous as well (C == 1, H == W == 1, empty) counts as NCHW; H == 1 alone does not."""
    x = cl(np.zeros(shape, F32))
    assert is_channels_last(x) == (not x.flags.c_contiguous)
    assert is_channels_last(x) == (shape == (1, 3, 1, 6))


def _odd_views(rng):
    """4-D inputs that are neither NCHW nor channels_last contiguous, some close to channels_last."""
    big = cl(rand(rng, (3, 6, 9, 16), F32))
    return {
        "slice_w": big[:, :4, :, ::2],
        "batch_step": big[::2, :4],
        "channel_slice": big[:, 1:5],
        "negative_w": big[:, :4, :, ::-1],
        "negative_c": big[:, 3::-1],
        "swapped_hw": big[:, :4].swapaxes(2, 3),
        "big_endian": cl(rand(rng, (2, 4, 7, 9), F32).astype(">f4")),
    }


@pytest.mark.parametrize(
    "name", ["slice_w", "batch_step", "channel_slice", "negative_w", "negative_c", "swapped_hw", "big_endian"]
)
def test_other_strided_inputs_are_copied_and_correct(name, rng):
    x = _odd_views(rng)[name]
    w, b = rand(rng, (5, 4, 3, 3), F32), rand(rng, (5,), F32)
    kept = x.copy()
    ref = fc.conv2d(x.astype(F64), w.astype(F64), b.astype(F64), backend="numpy", padding=1)
    assert_close(fc.conv2d(x, w, b, padding=1), ref, "conv", F32, name)
    assert np.array_equal(x, kept)


def test_every_algorithm_and_backend_is_right_on_channels_last(rng):
    """The NCHW algorithms and other backends get a C-contiguous copy; padding modes pad that copy."""
    x, w, b = rand(rng, (2, 6, 9, 11), F32), rand(rng, (8, 3, 3, 3), F32), rand(rng, (8,), F32)
    for kw in (dict(padding=1), dict(padding=2, groups=2, padding_mode="reflect"), dict(stride=2, groups=2)):
        kw.setdefault("groups", 1)
        wk = w if kw["groups"] == 2 else rand(rng, (8, 6, 3, 3), F32)
        ref = fc.conv2d(x.astype(F64), wk.astype(F64), b.astype(F64), backend="numpy", **kw)
        for algo in fc.dispatch.algos("conv2d", "numba"):
            try:
                got = fc.conv2d(cl(x), wk, b, algo=algo, **kw)
            except ValueError:  # this algorithm does not support the call
                continue
            assert_close(got, ref, "conv", F32, f"{algo} {kw}")
        assert_close(
            fc.conv2d(cl(x).astype(F64), wk.astype(F64), b.astype(F64), backend="numpy", **kw),
            ref,
            "conv",
            F64,
            "numpy",
        )
        if fc.backends()["cuda-emu"].available:
            assert_close(fc.conv2d(cl(x), wk, b, backend="cuda-emu", **kw), ref, "conv", F32, "cuda-emu")


def test_autotune_times_nhwc_on_its_own_layout(rng):
    x, w = cl(rand(rng, (1, 7, 8, 10), F32)), rand(rng, (9, 7, 3, 3), F32)
    ref = fc.conv2d(x.astype(F64), w.astype(F64), backend="numpy", padding=(1, 2))
    fc.clear_autotune_cache()
    try:
        with fc.autotune():
            assert_close(fc.conv2d(x, w, padding=(1, 2)), ref, "conv", F32, "autotuned")
        assert_close(fc.conv2d(x, w, padding=(1, 2)), ref, "conv", F32, "tuned")
    finally:
        fc.clear_autotune_cache()


# ---------------------------------------------------------------------------------------------- downstream
def test_ops_after_a_channels_last_conv(rng):
    """relu, batch norm, pooling and the next conv take the channels_last y of conv2d_fwd_v9_nhwc (copied where
    needed)."""
    x, w1, w2 = rand(rng, (2, 5, 9, 13), F32), rand(rng, (6, 5, 3, 3), F32), rand(rng, (4, 6, 3, 3), F32)
    g, be, rm, rv = rand(rng, (6,), F32), rand(rng, (6,), F32), rand(rng, (6,), F32), rng.uniform(1, 2, 6).astype(F32)

    def net(a, backend):
        w1_, w2_, g_, be_, rm_, rv_ = (v.astype(a.dtype) for v in (w1, w2, g, be, rm, rv))
        y = fc.conv2d(a, w1_, padding=1, backend=backend)
        y = fc.relu(fc.batch_norm(y, rm_, rv_, g_, be_, backend=backend), backend=backend)
        y = fc.max_pool2d(y, 3, 2, 1, backend=backend) + fc.avg_pool2d(y, 3, 2, 1, backend=backend)
        return fc.conv2d(cl(y), w2_, stride=2, backend=backend)

    ref = net(x.astype(F64), "numpy")
    assert_close(net(cl(x), "numba"), ref, "conv", F32, "conv-bn-relu-pool-conv")


def test_conv_backward_with_channels_last_inputs(rng):
    x, w = rand(rng, (2, 5, 9, 13), F32), rand(rng, (6, 5, 3, 3), F32)
    gy = rand(rng, (2, 6, 5, 7), F32)
    got = fc.conv2d_backward(cl(gy), cl(x), w, stride=2, padding=1)
    ref = fc.conv2d_backward(gy.astype(F64), x.astype(F64), w.astype(F64), stride=2, padding=1, backend="numpy")
    for name, g, r in zip(("grad_x", "grad_weight", "grad_bias"), got, ref):
        assert_close(g, r, "conv", F32, name)


def test_conv2d_layer_on_channels_last_input(rng):
    """nn layers: the same forward, input gradient and parameter gradients as for the NCHW input."""
    x = rand(rng, (2, 4, 9, 11), F32)
    grads = []
    for a in (x, cl(x)):
        # no bias before batch norm: its gradient is zero up to rounding, which no relative tolerance can compare
        net = nn.Sequential(
            nn.Conv2d(4, 6, 3, padding=1, bias=False),
            nn.BatchNorm2d(6),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 3, 3, stride=2, padding=1),
        )
        for i, prm in enumerate(net.parameters()):
            prm.data[...] = np.random.default_rng(i).standard_normal(prm.data.shape)
        y = net(a)
        gx = net.backward(np.ones_like(y))
        grads.append([y, gx] + [prm.grad for prm in net.parameters()])
        assert is_channels_last(net[0](a)) == (a is not x)  # auto reads a channels_last x with conv2d_fwd_v9_nhwc
    for got, ref in zip(grads[1], grads[0]):
        assert_close(got, ref.astype(F64), "conv", F32, "layer")


# ---------------------------------------------------------------------------------------------- batch norm, relu
# R = N*H*W rows past one and several ROWS-row blocks, C with and without a partial vector of channels
BN_CL_SHAPES = [(3, 5, 7, 9), (2, 32, 9, 11), (1, 19, 16, 16), (4, 70, 3, 2), (2, 3, 1, 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_CL_SHAPES)
def test_batch_norm_channels_last(shape, training, dtype, rng):
    """batch_norm_fwd/bwd_v3_nhwc against the float64 reference (outputs poisoned), running stats, inputs kept."""
    cf.check_batch_norm("numba", shape, training, dtype, rng, layout="channels_last")


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_channels_last_far_from_zero(dtype, rng):
    """Data whose mean (3000) is far larger than its spread keeps its accuracy: sums are taken around x's first row."""
    cf.check_batch_norm("numba", (2, 17, 13, 11), True, dtype, rng, layout="channels_last", offset=3000.0)


def test_batch_norm_reads_and_returns_channels_last(rng):
    """auto takes v3_nhwc for a channels_last x (and v2_planes for NCHW); y and grad_x keep x's order; a grad_out in
    NCHW order with a channels_last x gives the same gradients; one and two threads agree bit for bit."""
    x, gy = cl(rand(rng, (2, 24, 9, 35), F32)), rand(rng, (2, 24, 9, 35), F32)
    w, b, rm, rv = rand(rng, (24,), F32), rand(rng, (24,), F32), rand(rng, (24,), F32), np.ones(24, F32)
    algo = lambda a: fc.select(fc.batch_norm, a, rm, rv, w, b, training=True)[0].algo  # noqa: E731
    assert (algo(x), algo(np.ascontiguousarray(x))) == ("batch_norm_fwd_v3_nhwc", "batch_norm_fwd_v2_planes")
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        try:
            y = fc.batch_norm(x, rm.copy(), rv.copy(), w, b, training=True)
            g = fc.batch_norm_backward(cl(gy), x, rm, rv, w, training=True)
            g_nchw = fc.batch_norm_backward(gy, x, rm, rv, w, training=True)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        assert is_channels_last(y) and is_channels_last(g[0])
        for a, b_ in zip(g, g_nchw):
            assert np.array_equal(a, b_)
        results.append([y, *g])
    for a, b_ in zip(*results):
        assert np.array_equal(a, b_)


def test_relu_keeps_channels_last(rng):
    """relu and its gradient run on the buffer of channels_last arrays as it is and keep the order (NaN kept)."""
    x, gy = rand(rng, (2, 5, 7, 9), F32), rand(rng, (2, 5, 7, 9), F32)
    x[0, 1, 2, 3] = np.nan
    for backend in ("numba", "numpy"):
        y = fc.relu(cl(x), backend=backend)
        assert is_channels_last(y)
        assert np.array_equal(y, fc.relu(x, backend="numpy"), equal_nan=True)
        g = fc.relu_backward(cl(gy), y, backend=backend)
        assert is_channels_last(g)
        assert np.array_equal(g, fc.relu_backward(gy, np.ascontiguousarray(y), backend="numpy"))
        assert np.array_equal(fc.relu_backward(gy, y, backend=backend), g)  # mixed orders: copied, same values


# ---------------------------------------------------------------------------------------------- max pooling
CL_POOL_CASES = MAX_POOL_CASES + [  # channels past one vector and a partial one; past two
    PoolCase("c37_k3s2p1", (2, 37, 9, 10), dict(kernel_size=3, stride=2, padding=1)),
    PoolCase("c70_k2", (1, 70, 6, 8), dict(kernel_size=2)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CL_POOL_CASES, ids=[c.id for c in CL_POOL_CASES])
def test_max_pool_channels_last(case, dtype, rng):
    """max_pool2d_fwd/bwd_v3_nhwc (x and grad_out channels_last) against the float64 reference: values, indices,
    gradient, inputs kept (outputs poisoned)."""
    cf.check_max_pool("numba", case, dtype, rng, to_device=cl)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_channels_last_nan_ties_and_order(dtype, rng):
    """NaN wins and propagates, ties and all -inf windows take the first tap, as the reference; y, the indices and
    grad_x come back channels_last; v3_nhwc is what auto takes; a grad_out in NCHW order gives the same gradient."""
    x = np.round(rand(rng, (2, 21, 9, 11), dtype) * 2) / 2  # many ties
    x[0, 1, 2, 3], x[1, 20, 0:3, 0:3] = np.nan, -np.inf
    kw = dict(kernel_size=3, stride=2, padding=1)
    assert fc.select(fc.max_pool2d, cl(x), **kw)[0].algo == "max_pool2d_fwd_v3_nhwc"
    y, idx = fc.max_pool2d(cl(x), **kw, return_indices=True)
    y_ref, idx_ref = fc.max_pool2d(x.astype(F64), **kw, return_indices=True, backend="numpy")
    assert is_channels_last(y) and is_channels_last(idx)
    assert np.array_equal(y, y_ref, equal_nan=True) and np.array_equal(idx, idx_ref)
    gy = rand(rng, y.shape, dtype)
    gx = fc.max_pool2d_backward(cl(gy), cl(x), **kw)
    assert is_channels_last(gx)
    assert_close(gx, fc.max_pool2d_backward(gy.astype(F64), x.astype(F64), **kw, backend="numpy"), "pool", dtype, "gx")
    assert np.array_equal(fc.max_pool2d_backward(gy, cl(x), **kw), gx)
