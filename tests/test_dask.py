"""fastconv.dask: ops over dask arrays equal the single-machine call, on the threaded scheduler and on a
dask.distributed LocalCluster (2 worker processes on loopback), including a worker killed mid-computation."""

import os
import time

import numpy as np
import pytest
from helpers import assert_close, rand
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc

da = pytest.importorskip("dask.array")
fcd = pytest.importorskip("fastconv.dask")
from fastconv.dask.tiling import plan_axis  # noqa: E402

# The hand-written kernels compute each output element in an order that does not depend on the block it sits in,
# so dask results equal one big call bit for bit. The NumPy reference contracts with BLAS, whose blocking follows
# the matrix sizes: there the results agree to rounding.
EXACT_BACKENDS = [b for b in ("numba",) if b in fc.backends() and fc.backends()[b].available]


def same(actual, expected, backend):
    if backend in EXACT_BACKENDS:
        np.testing.assert_array_equal(actual, expected)
    else:
        assert_close(actual, expected, "conv", expected.dtype, f"dask vs single call on {backend}")


CONV_CASES = [
    ("p1", (5, 3, 41, 37), (4, 3, 3, 3), dict(padding=1)),
    ("stride2_asym_dilated", (3, 3, 40, 29), (4, 3, 3, 2), dict(stride=2, padding=((1, 2), (0, 3)), dilation=2)),
    ("stride3_same_reflect", (2, 3, 35, 31), (5, 3, 4, 3), dict(stride=3, padding="same", padding_mode="reflect")),
    ("grouped_circular", (3, 4, 23, 26), (6, 2, 3, 3), dict(groups=2, padding=2, padding_mode="circular")),
    ("depthwise_s2", (4, 6, 33, 30), (6, 1, 5, 5), dict(groups=6, stride=2, padding=2)),
    ("1x1_s2", (3, 5, 21, 19), (7, 5, 1, 1), dict(stride=2)),
    ("7x7_s2_p3", (2, 3, 45, 44), (4, 3, 7, 7), dict(stride=2, padding=3)),
    ("rows_wholly_in_padding", (2, 3, 13, 9), (4, 3, 1, 3), dict(stride=3, padding=((3, 4), (1, 1)))),
]
CHUNKS = [(2, 3, 9, 11), (1, 2, 16, 7), (-1, -1, -1, -1)]
BACKENDS = EXACT_BACKENDS + ["numpy"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("chunks", CHUNKS, ids=["9x11", "16x7", "whole"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_conv2d_equals_single_call(case, chunks, backend, rng):
    _, xs, ws, kw = case
    x, w, b = rand(rng, xs, np.float32), rand(rng, ws, np.float32), rand(rng, (ws[0],), np.float32)
    y = fcd.conv2d(da.from_array(x, chunks=chunks), w, b, **kw, backend=backend, align=1)
    assert isinstance(y, da.Array)
    same(y.compute(), fc.conv2d(x, w, b, **kw, backend=backend), backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=2, stride=3, padding=1, dilation=3, ceil_mode=True),
        dict(kernel_size=(3, 2)),
    ],
    ids=["3s2p1", "dilated_ceil", "rect"],
)
def test_max_pool2d_equals_single_call(kw, backend, rng):
    x = rand(rng, (3, 4, 37, 29), np.float32)
    y = fcd.max_pool2d(da.from_array(x, chunks=(2, 3, 10, 8)), **kw, backend=backend, align=1)
    np.testing.assert_array_equal(y.compute(), fc.max_pool2d(x, **kw, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        dict(kernel_size=(3, 2), ceil_mode=True),
    ],
    ids=["incl", "excl_ceil", "rect_ceil"],
)
def test_avg_pool2d_equals_single_call(kw, backend, rng):
    x = rand(rng, (3, 4, 37, 29), np.float32)
    y = fcd.avg_pool2d(da.from_array(x, chunks=(2, 3, 10, 8)), **kw, backend=backend, align=1)
    np.testing.assert_array_equal(y.compute(), fc.avg_pool2d(x, **kw, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_adaptive_global_bn_relu_equal_single_call(backend, rng):
    x = rand(rng, (5, 6, 19, 23), np.float32)
    dx = da.from_array(x, chunks=(2, 4, 7, 9))
    same(
        fcd.adaptive_avg_pool2d(dx, (5, 3), backend=backend).compute(),
        fc.adaptive_avg_pool2d(x, (5, 3), backend=backend),
        backend,
    )
    np.testing.assert_array_equal(
        fcd.global_avg_pool2d(dx, backend=backend).compute(), fc.global_avg_pool2d(x, backend=backend)
    )
    np.testing.assert_array_equal(fcd.relu(dx, backend=backend).compute(), fc.relu(x, backend=backend))
    w, b, m = (rand(rng, (6,), np.float32) for _ in range(3))
    v = np.abs(rand(rng, (6,), np.float32)) + 0.5
    np.testing.assert_array_equal(
        fcd.batch_norm(dx, m, v, w, b, eps=1e-3, backend=backend).compute(),
        fc.batch_norm(x, m, v, w, b, eps=1e-3, backend=backend),
    )
    np.testing.assert_array_equal(
        fcd.batch_norm(dx, m, v, None, None, backend=backend).compute(),
        fc.batch_norm(x, m, v, None, None, backend=backend),
    )


def test_default_alignment_and_backend(rng):
    x, w = rand(rng, (2, 3, 150, 140), np.float32), rand(rng, (4, 3, 3, 3), np.float32)
    y = fcd.conv2d(da.from_array(x, chunks=(1, 3, 50, 50)), w, padding=1, stride=2)
    same(y.compute(), fc.conv2d(x, w, padding=1, stride=2), fc.select(fc.conv2d, x, w)[0].backend)


def test_chunks_on_the_grid_are_neither_moved_nor_padded(rng):
    # blocks of 64 rows start on the stride*align grid (2*16): the graph only adds each block's halo
    x, w = rand(rng, (1, 3, 150, 140), np.float32), rand(rng, (4, 3, 3, 3), np.float32)
    y = fcd.conv2d(da.from_array(x, chunks=(1, 3, 64, 64)), w, padding=1, stride=2)
    layers = " ".join(str(name) for name in y.__dask_graph__().layers)
    assert "rechunk" not in layers and "pad" not in layers, layers
    same(y.compute(), fc.conv2d(x, w, padding=1, stride=2), fc.select(fc.conv2d, x, w)[0].backend)


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    span=st.integers(1, 15),
    stride=st.integers(1, 4),
    before=st.integers(0, 4),
    after=st.integers(0, 4),
    ceil=st.booleans(),
    align=st.sampled_from([1, 2, 16]),
    out_align=st.sampled_from([1, 2]),
)
def test_plan_axis_covers_every_output_once(chunks, span, stride, before, after, ceil, align, out_align):
    total = sum(chunks)
    if total + before + after < span:
        return
    out = fc.conv_output_size(total, span, stride, (before, after), ceil_mode=ceil and before == after)
    plan = plan_axis(tuple(chunks), span, stride, (before, after), out, align, out_align)
    assert sum(plan.in_chunks) == total and sum(plan.out_chunks) == out
    assert all(n >= 1 for n in plan.out_chunks)
    starts = np.cumsum((0,) + plan.in_chunks[:-1])
    if out_align == 1:
        assert all(s % (stride * align) == 0 for s in starts)
    assert all(p0 % out_align == 0 for p0 in np.cumsum((0,) + plan.out_chunks[:-1])), "blocks start on the tiles"
    assert all(n >= plan.halo for n in plan.in_chunks[1:]), "a block must lend the previous block its halo"
    first = 0
    for a, n_in, n_out, (r0, r1, pad0, pad1) in zip(starts, plan.in_chunks, plan.out_chunks, plan.rows):
        assert 0 <= r0 <= r1 <= min(n_in + plan.halo, total - a), "rows within the halo-extended block"
        # the block's rows and padding are exactly the windows of its outputs: a 'valid' op gives n_out of them
        assert (r1 - r0 + pad0 + pad1 - span) // stride + 1 == n_out
        if r1 > r0:  # (a window wholly in the padding reads no input row: any position of it is right)
            assert a + r0 - pad0 == first * stride - before, "and they start where its first output's window does"
        assert (pad0 == 0 or a == 0) and (pad1 == 0 or a + n_in == total), "padding only at the borders"
        first += n_out


def test_rejects_bad_input(rng):
    x = da.ones((2, 3, 9, 9), chunks=2, dtype=np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    with pytest.raises(TypeError, match="fastconv.dask.conv2d: 'x' must be a dask array"):
        fcd.conv2d(np.ones((2, 3, 9, 9), np.float32), w)
    with pytest.raises(TypeError, match="'weight' has dtype float64"):
        fcd.conv2d(x, w.astype(np.float64))
    with pytest.raises(ValueError, match="fastconv.dask.conv2d: 'weight' shape"):
        fcd.conv2d(x, np.ones((4, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="'x' must be"):
        fcd.max_pool2d(x[0], 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        fcd.relu(da.ones((3,), dtype=np.int32))
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        fcd.relu(x[x[:, 0, 0, 0] > 0])


# ------------------------------------------------------------------------------------- group, layer, instance norm
# Each row (sample x group, sample x channel, leading index) is normalised by its own statistics with a kernel that
# computes it the same way whichever block it sits in: equal to one call on the whole array, bit for bit.
NORM_DTYPES = [np.float32, np.float64]
GROUP_CHUNKS = [(2, -1, -1, -1), ((1, 4, 2), -1, -1, -1), ((3, 4), (2, 4), -1, -1), (-1, -1, -1, -1)]
GROUP_IDS = ["batch2", "batch_uneven", "batch_and_whole_groups", "whole"]


def _norm_case(rng, shape, dtype, chunks):
    x = rand(rng, shape, dtype)
    w, b = rand(rng, (shape[1],), dtype), rand(rng, (shape[1],), dtype)
    return x, da.from_array(x, chunks=chunks), w, b


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", NORM_DTYPES)
@pytest.mark.parametrize("chunks", GROUP_CHUNKS, ids=GROUP_IDS)
def test_group_norm_equals_single_call(chunks, dtype, backend, rng):
    x, dx, w, b = _norm_case(rng, (7, 6, 5, 9), dtype, chunks)
    for affine in [(w, b), (None, None), (w, None)]:
        y = fcd.group_norm(dx, 3, *affine, eps=1e-3, backend=backend)
        assert isinstance(y, da.Array) and y.chunks == dx.chunks and y.dtype == dtype
        np.testing.assert_array_equal(y.compute(), fc.group_norm(x, 3, *affine, eps=1e-3, backend=backend))


INSTANCE_CHUNKS = [(2, -1, -1, -1), ((1, 4, 2), (1, 3, 2), -1, -1), (-1, -1, -1, -1)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", NORM_DTYPES)
@pytest.mark.parametrize("chunks", INSTANCE_CHUNKS, ids=["batch2", "batch_and_channels_uneven", "whole"])
def test_instance_norm_equals_single_call(chunks, dtype, backend, rng):
    x, dx, w, b = _norm_case(rng, (7, 6, 5, 9), dtype, chunks)
    for affine in [(w, b), (None, None)]:
        y = fcd.instance_norm(dx, None, None, *affine, eps=1e-4, backend=backend)
        assert y.chunks == dx.chunks
        np.testing.assert_array_equal(y.compute(), fc.instance_norm(x, None, None, *affine, eps=1e-4, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", NORM_DTYPES)
def test_instance_norm_by_running_stats_takes_any_chunking(dtype, backend, rng):
    x, dx, w, b = _norm_case(rng, (5, 6, 7, 9), dtype, ((2, 3), (1, 4, 1), (3, 4), (2, 7)))
    m, v = rand(rng, (6,), dtype), np.abs(rand(rng, (6,), dtype)) + 0.5
    m0, v0 = m.copy(), v.copy()
    for affine in [(w, b), (None, None)]:
        y = fcd.instance_norm(dx, m, v, *affine, use_input_stats=False, eps=1e-3, backend=backend)
        want = fc.instance_norm(x, m, v, *affine, use_input_stats=False, eps=1e-3, backend=backend)
        np.testing.assert_array_equal(y.compute(), want)
    np.testing.assert_array_equal(m, m0)
    np.testing.assert_array_equal(v, v0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", NORM_DTYPES)
@pytest.mark.parametrize(
    "shape, normalized_shape, chunks",
    [
        ((7, 4, 5, 6), (5, 6), ((3, 4), (1, 3), -1, -1)),
        ((7, 4, 5, 6), 6, (2, 3, (1, 4), -1)),
        ((7, 4, 5, 6), (4, 5, 6), ((1, 6), -1, -1, -1)),
        ((9, 10), (10,), ((4, 4, 1), -1)),
    ],
    ids=["last2", "last1_int", "last3", "2d"],
)
def test_layer_norm_equals_single_call(shape, normalized_shape, chunks, dtype, backend, rng):
    x = rand(rng, shape, dtype)
    d = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    w, b = rand(rng, d, dtype), rand(rng, d, dtype)
    dx = da.from_array(x, chunks=chunks)
    for affine in [(w, b), (None, None)]:
        y = fcd.layer_norm(dx, normalized_shape, *affine, eps=1e-3, backend=backend)
        assert y.chunks == dx.chunks
        want = fc.layer_norm(x, normalized_shape, *affine, eps=1e-3, backend=backend)
        np.testing.assert_array_equal(y.compute(), want)


def test_norms_on_other_ranks_and_empty_batches(rng):
    x, dx, w, b = _norm_case(rng, (5, 4, 11), np.float32, (2, 2, -1))  # (N, C, L)
    np.testing.assert_array_equal(fcd.group_norm(dx, 2, w, b).compute(), fc.group_norm(x, 2, w, b))
    np.testing.assert_array_equal(
        fcd.instance_norm(dx, None, None, w, b).compute(), fc.instance_norm(x, None, None, w, b)
    )
    x, dx, w, b = _norm_case(rng, (3, 4, 2, 3, 5), np.float64, (2, 2, -1, -1, -1))  # (N, C, D, H, W)
    np.testing.assert_array_equal(fcd.group_norm(dx, 2, w, b).compute(), fc.group_norm(x, 2, w, b))
    np.testing.assert_array_equal(
        fcd.instance_norm(dx, None, None, w, b).compute(), fc.instance_norm(x, None, None, w, b)
    )
    empty = da.from_array(np.ones((0, 6, 5, 9), np.float32))
    assert fcd.group_norm(empty, 3).compute().shape == (0, 6, 5, 9)
    assert fcd.instance_norm(empty).compute().shape == (0, 6, 5, 9)
    assert fcd.layer_norm(empty, (5, 9)).compute().shape == (0, 6, 5, 9)


@pytest.mark.parametrize(
    "call, chunks, fix",
    [
        (lambda dx: fcd.group_norm(dx, 3), (2, -1, (2, 3), -1), "{2: -1, 3: -1}"),
        (lambda dx: fcd.group_norm(dx, 3), (2, (3, 3), -1, -1), "{1: -1, 2: -1, 3: -1}"),
        (lambda dx: fcd.instance_norm(dx), (2, 2, -1, (4, 5)), "{2: -1, 3: -1}"),
        (lambda dx: fcd.layer_norm(dx, (5, 9)), (2, 2, -1, (4, 5)), "{2: -1, 3: -1}"),
        (lambda dx: fcd.layer_norm(dx, 9), (2, 2, (2, 3), (4, 5)), "{3: -1}"),
    ],
    ids=["group_spatial", "group_split_group", "instance_spatial", "layer_last2", "layer_last1"],
)
def test_norms_say_how_to_rechunk_and_the_advice_works(call, chunks, fix, rng):
    x = rand(rng, (4, 6, 5, 9), np.float32)
    dx = da.from_array(x, chunks=chunks)
    with pytest.raises(ValueError, match=r"fastconv\.dask\.\w+_norm: 'x' chunks .* rechunk first") as info:
        call(dx)
    assert f"x.rechunk({fix})" in str(info.value), str(info.value)
    y = call(dx.rechunk(eval(fix)))
    np.testing.assert_array_equal(y.compute(), call(da.from_array(x)).compute())


def test_instance_norm_running_update_is_refused_and_its_recipe_matches_torch(rng):
    x = rand(rng, (7, 3, 5, 6), np.float64)
    m, v = rand(rng, (3,), np.float64), np.abs(rand(rng, (3,), np.float64)) + 0.5
    dx = da.from_array(x, chunks=(3, 1, -1, -1))
    for stats in [(m, v), (m, None), (None, v)]:
        with pytest.raises(ValueError, match="fastconv.dask.instance_norm: updating .* not supported on dask"):
            fcd.instance_norm(dx, *stats)
    # the update the message gives, with dask, against fastconv's (torch's) in-place one
    momentum, rm, rv = 0.3, m.copy(), v.copy()
    fc.instance_norm(x, rm, rv, momentum=momentum)
    got_m = (1 - momentum) * m + momentum * dx.mean(axis=(2, 3)).mean(axis=0).compute()
    got_v = (1 - momentum) * v + momentum * dx.var(axis=(2, 3), ddof=1).mean(axis=0).compute()
    np.testing.assert_allclose(got_m, rm, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got_v, rv, rtol=1e-12, atol=1e-14)
    assert not np.allclose(rm, m) and not np.allclose(rv, v), "the running statistics moved"


def test_norms_reject_bad_arguments(rng):
    dx = da.from_array(rand(rng, (4, 6, 5, 9), np.float32), chunks=2)
    dx = dx.rechunk({1: -1, 2: -1, 3: -1})
    w, m, v = rand(rng, (6,), np.float32), rand(rng, (6,), np.float32), np.ones(6, np.float32)
    g, layer, inst = "fastconv.dask.group_norm", "fastconv.dask.layer_norm", "fastconv.dask.instance_norm"
    cases = [
        (lambda: fcd.group_norm(np.ones((4, 6, 5, 9), np.float32), 3), TypeError, f"{g}: 'x' must be a dask array"),
        (lambda: fcd.group_norm(da.ones((4, 6, 5, 9), dtype=np.int32), 3), TypeError, f"{g}: 'x' must have dtype"),
        (lambda: fcd.group_norm(dx[0, 0, 0], 1), ValueError, rf"{g}: 'x' must be \(N, C, \*spatial\)"),
        (lambda: fcd.group_norm(dx, 4), ValueError, f"{g}: 'num_groups'=4 must be >= 1 and divide"),
        (lambda: fcd.group_norm(dx, 0), ValueError, f"{g}: 'num_groups'=0"),
        (lambda: fcd.group_norm(dx, 3.0), TypeError, f"{g}: 'num_groups' must be an int"),
        (lambda: fcd.group_norm(dx, 3, w[:5]), ValueError, rf"{g}: 'weight' must have shape \(6,\)"),
        (lambda: fcd.group_norm(dx, 3, None, w.reshape(2, 3)), ValueError, f"{g}: 'bias' must be 1-D"),
        (lambda: fcd.group_norm(dx, 3, w.astype(np.float64)), TypeError, f"{g}: 'weight' has dtype float64"),
        (lambda: fcd.group_norm(dx, 3, list(w)), TypeError, f"{g}: 'weight' must be a NumPy or CuPy array"),
        (lambda: fcd.group_norm(dx, 3, eps=-1.0), ValueError, f"{g}: 'eps' must be >= 0"),
        (lambda: fcd.group_norm(dx, 3, backend="nope"), ValueError, f"{g}: unknown backend 'nope'"),
        (lambda: fcd.layer_norm(dx, (5, 8)), ValueError, rf"{layer}: 'normalized_shape' \(5, 8\) must equal"),
        (lambda: fcd.layer_norm(dx, "9"), TypeError, f"{layer}: 'normalized_shape' must be an int or"),
        (lambda: fcd.layer_norm(dx, 9, w), ValueError, rf"{layer}: 'weight' must have shape \(9,\)"),
        (lambda: fcd.layer_norm(dx, 9, eps=float("nan")), TypeError, f"{layer}: 'eps' must be a finite real"),
        (lambda: fcd.instance_norm(dx[:, :, 0, 0]), ValueError, rf"{inst}: 'x' must be \(N, C, \*spatial\)"),
        (lambda: fcd.instance_norm(dx, use_input_stats=1), TypeError, f"{inst}: 'use_input_stats' must be a bool"),
        (lambda: fcd.instance_norm(dx, m, v, None, None, False, None), TypeError, f"{inst}: 'momentum' must be"),
        (lambda: fcd.instance_norm(dx, m, None, use_input_stats=False), ValueError, f"{inst}: use_input_stats=False"),
        (lambda: fcd.instance_norm(dx, m[:4], v, use_input_stats=False), ValueError, f"{inst}: 'running_mean' must"),
        (lambda: fcd.instance_norm(dx[:, :, :1, :1]), ValueError, f"{inst}: expected more than 1 spatial element"),
    ]
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()


# ---------------------------------------------------------------------------------------------- distributed
@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def test_local_cluster_equals_single_call(client, rng):
    x, w = rand(rng, (6, 3, 64, 60), np.float32), rand(rng, (5, 3, 3, 3), np.float32)
    dx = da.from_array(x, chunks=(2, 3, 32, 32))
    y = fcd.max_pool2d(fcd.relu(fcd.conv2d(dx, w, padding=1, stride=2)), 3, 2, 1)
    (sel,) = fc.select(fc.conv2d, x, w, padding=1, stride=2)
    ref = fc.max_pool2d(fc.relu(fc.conv2d(x, w, padding=1, stride=2, backend=sel.backend)), 3, 2, 1)
    same(client.compute(y).result(), ref, sel.backend)
    assert len(client.scheduler_info()["workers"]) == 2


async def _die():  # run on a worker: the process ends at once, as in a crash (its nanny starts a new one)
    os._exit(1)


def test_worker_killed_mid_computation_is_survived(client, rng):
    x, w = rand(rng, (24, 8, 96, 96), np.float32), rand(rng, (16, 8, 5, 5), np.float32)
    y = fcd.conv2d(da.from_array(x, chunks=(1, 8, 96, 96)), w, padding=2, backend="numpy")
    before = set(client.scheduler_info()["workers"])
    future = client.compute(y)
    deadline = time.monotonic() + 60
    busy = []
    while not busy and time.monotonic() < deadline:  # wait until a worker is running our tasks, then kill it
        busy = [addr for addr, keys in client.processing().items() if keys]
        time.sleep(0.01)
    assert busy, "no worker ever started the computation"
    client.run(_die, workers=busy[:1], wait=False)
    result = future.result(timeout=180)
    after = set(client.scheduler_info()["workers"])
    assert busy[0] not in after and after != before, "the worker was not killed"
    same(result, fc.conv2d(x, w, padding=2, backend="numpy"), "numpy")


# ---------------------------------------------------------------------------------------------- predict
class _ResidualNet:
    """A small eval-mode network with a residual add, batch norm and a classifier head."""

    def __new__(cls):
        import fastconv.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
                self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
                self.pool = nn.AdaptiveAvgPool2d(1)
                self.fc = nn.Linear(8, 5)

            def forward(self, x):
                h = self.stem(x)
                return self.fc(nn.flatten(self.pool(nn.add(h, self.body(h)))))

        return Net()


def _models():
    import fastconv.nn as nn
    from fastconv.models import lenet5

    nn.manual_seed(3)
    return [("lenet5", lenet5().eval(), (1, 32, 32)), ("residual", _ResidualNet().eval(), (3, 12, 10))]


@pytest.mark.parametrize("index", [0, 1], ids=["lenet5", "residual"])
def test_predict_equals_model_on_threads(index, rng):
    _, model, sample = _models()[index]
    x = rand(rng, (11, *sample), np.float32)
    y = fcd.predict(model, da.from_array(x, chunks=(3, 1, 7, 7)))
    assert y.chunks == ((3, 3, 3, 2), (model(x[:1]).shape[1],))
    # linear's algorithm (and so its summation order) follows the batch size: equal to rounding
    assert_close(y.compute(scheduler="threads"), model(x), "conv", np.float32, "predict vs model")


def test_predict_ships_the_weights_once(rng):
    import pickle

    _, model, sample = _models()[0]
    y = fcd.predict(model, da.from_array(rand(rng, (64, *sample), np.float32), chunks=(4, 1, 32, 32)))
    weights = sum(p.data.nbytes for p in model.parameters())
    # a scheduler ships each task on its own: the weights must sit in one task that the 16 blocks depend on
    heavy = [k for k, task in dict(y.__dask_graph__()).items() if len(pickle.dumps(task)) >= weights]
    assert len(heavy) == 1, f"{len(heavy)} tasks carry the weights"


def test_predict_rejects_training_mode_and_non_models(rng):
    _, model, sample = _models()[0]
    x = da.from_array(rand(rng, (4, *sample), np.float32), chunks=2)
    with pytest.raises(ValueError, match="training mode; call model.eval"):
        fcd.predict(model.train(), x)
    with pytest.raises(TypeError, match="'model' must be a callable"):
        fcd.predict("lenet5", x)


def test_predict_on_local_cluster(client, rng):
    _, model, sample = _models()[1]
    x = rand(rng, (10, *sample), np.float32)
    y = client.compute(fcd.predict(model, da.from_array(x, chunks=(2, 3, 12, 10)))).result()
    assert_close(y, model(x), "conv", np.float32, "predict on a cluster vs model")
