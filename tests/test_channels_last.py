"""Inputs in channels_last order (an (N, H, W, C) buffer viewed as (N, C, H, W), as torch.channels_last).

conv2d_fwd_v9_nhwc reads such an x in place and returns y in the same order: it is checked against the float64 reference
on shapes that run its interior tiles, its partial tiles and its border pixels (outputs poisoned by conftest), for NaN,
threads and input safety. The rest of the layout contract: which inputs count as channels_last, what auto picks, and
that every other algorithm, backend, downstream op, layer and gradient still gets the right answer."""

import conformance as cf
import numba
import numpy as np
import pytest
from cases import ConvCase
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
