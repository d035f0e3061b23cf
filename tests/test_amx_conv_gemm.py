"""The AMX conv kernels conv2d_fwd_v17_amx_gemm / conv2d_bwd_data_v11_amx_gemm (conv2d_amx_gemm.py: the GEMM on
im2col panels) and conv2d_fwd_v21_amx_rows / conv2d_bwd_data_v12_amx_rows (conv2d_amx_rows.py: pixels as A tiles
read in place): the conv cases and shapes at the tile and task edges (C odd or not a multiple of 16, K and P*Q
not multiples of 32, reductions past one slice, the 1x1 path and the im2col path) against the float64 reference
of the bf16-rounded operands, outputs and packing scratch poisoned; thread-count independence; NaN; auto."""

import numpy as np
import pytest
from amx_helpers import assert_thread_independent, poisoned_scratch, r64, requires_amx, tunables
from cases import CONV2D_CASES
from helpers import assert_close, rand

import fastconv as fc

F64 = np.float64
__all__ = ["poisoned_scratch", "tunables"]  # fixtures
FWD, BWD = "conv2d_fwd_v17_amx_gemm", "conv2d_bwd_data_v11_amx_gemm"
ROWS, ROWS_BWD = "conv2d_fwd_v21_amx_rows", "conv2d_bwd_data_v12_amx_rows"
KERNELS = [(FWD, BWD), (ROWS, ROWS_BWD)]


pytestmark = requires_amx

UNGROUPED = [c for c in CONV2D_CASES if c.kw.get("groups", 1) == 1 and c.kw.get("padding_mode", "zeros") == "zeros"]
# (x, w, kw): tile edges of the GEMM and both packing paths
EDGES = [
    ((2, 3, 8, 8), (40, 3, 1, 1), {}),  # 1x1 plain: C odd, K past one block, P*Q = 64
    ((3, 33, 7, 9), (35, 33, 1, 1), {}),  # 1x1 plain, every dimension off the tiles
    ((2, 17, 9, 11), (33, 17, 1, 1), dict(stride=2)),  # 1x1 strided: the im2col path
    ((2, 5, 9, 11), (7, 5, 3, 3), dict(padding=1)),
    ((1, 64, 7, 7), (64, 64, 3, 3), dict(padding=1)),  # P*Q = 49: a half-empty last pixel block
    ((3, 33, 13, 7), (35, 33, 3, 2), dict(stride=2, padding=(1, 2))),
    ((2, 8, 10, 10), (9, 8, 3, 3), dict(dilation=2)),
    ((1, 230, 6, 40), (20, 230, 3, 3), dict(padding=((0, 2), (1, 0)))),  # 2070 reduction values: two slices
]


def _ref(x, w, b, **kw):
    return fc.conv2d(r64(x), r64(w), None if b is None else b.astype(F64), backend="numpy", **kw)


@pytest.mark.parametrize("algo", [FWD, ROWS])
@pytest.mark.parametrize("case", UNGROUPED, ids=[c.id for c in UNGROUPED])
def test_forward_cases(case, algo, poisoned_scratch, rng):
    x, w = rand(rng, case.x, np.float32), rand(rng, case.w, np.float32)
    b = rand(rng, (case.w[0],), np.float32) if case.bias else None
    kept = [x.copy(), w.copy()]
    y = fc.conv2d(x, w, b, **case.kw, precision="bf16", algo=algo)
    assert y.dtype == np.float32
    assert_close(y, _ref(x, w, b, **case.kw), "conv", np.float32, case.id)
    np.testing.assert_array_equal(x, kept[0])
    np.testing.assert_array_equal(w, kept[1])


@pytest.mark.parametrize("fwd, bwd", KERNELS, ids=["gemm", "rows"])
@pytest.mark.parametrize("xs, ws, kw", EDGES, ids=[f"{x}-{w}-{k}" for x, w, k in EDGES])
def test_forward_and_data_gradient_at_tile_edges(xs, ws, kw, fwd, bwd, tunables, poisoned_scratch, rng):
    x, w, b = rand(rng, xs, np.float32), rand(rng, ws, np.float32), rand(rng, (ws[0],), np.float32)
    y = fc.conv2d(x, w, b, **kw, precision="bf16", algo=fwd)
    assert_close(y, _ref(x, w, b, **kw), "conv", np.float32, f"{tunables} forward")
    if kw.get("stride", 1) != 1:
        return
    gy = rand(rng, y.shape, np.float32)
    gx = fc.conv2d_backward(gy, x, w, **kw, need_weight=False, need_bias=False, precision="bf16", algo=bwd)[0]
    ref = fc.conv2d_backward(r64(gy), x.astype(F64), r64(w), **kw, need_weight=False, need_bias=False, backend="numpy")
    assert_close(gx, ref[0], "conv", np.float32, f"{tunables} grad_x")


@pytest.mark.parametrize("algo", [FWD, ROWS])
def test_channels_last_input(algo, rng):
    x, w = rand(rng, (2, 24, 9, 9), np.float32), rand(rng, (20, 24, 3, 3), np.float32)
    xc = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for kw in ({}, dict(padding=1)):
        y = fc.conv2d(xc, w[:, :, :1, :1] if not kw else w, **kw, precision="bf16", algo=algo)
        assert_close(y, _ref(x, w[:, :, :1, :1] if not kw else w, None, **kw), "conv", np.float32, str(kw))


@pytest.mark.parametrize("fwd, bwd", KERNELS, ids=["gemm", "rows"])
def test_results_do_not_depend_on_threads(fwd, bwd, rng):
    x, w = rand(rng, (3, 40, 13, 11), np.float32), rand(rng, (70, 40, 3, 3), np.float32)
    gy = rand(rng, (3, 70, 13, 11), np.float32)

    def run():
        gx = fc.conv2d_backward(gy, x, w, padding=1, need_weight=False, need_bias=False, precision="bf16", algo=bwd)
        return fc.conv2d(x, w, padding=1, precision="bf16", algo=fwd), gx[0]

    assert_thread_independent(run)


@pytest.mark.parametrize("algo", [FWD, ROWS])
def test_nan_and_inf_reach_the_output(algo, rng):
    x, w = rand(rng, (1, 4, 6, 6), np.float32), rand(rng, (3, 4, 3, 3), np.float32)
    x[0, 1, 2, 3], x[0, 2, 5, 5] = np.nan, np.inf
    y = fc.conv2d(x, w, precision="bf16", algo=algo)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(_ref(x, w, None)))


@pytest.mark.parametrize(
    "xs, ws, kw, algo",
    [
        ((8, 256, 56, 56), (64, 256, 1, 1), {}, FWD),
        ((8, 1024, 14, 14), (256, 1024, 1, 1), {}, FWD),
        ((1, 256, 7, 7), (256, 256, 1, 1), {}, FWD),
        ((1, 32, 8, 8), (64, 32, 1, 1), {}, None),  # too small to pay for the packing
        ((8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1), ROWS),
        ((8, 128, 28, 28), (128, 128, 3, 3), dict(stride=2, padding=1), ROWS),
        ((8, 512, 7, 7), (512, 512, 3, 3), dict(padding=1), "conv2d_fwd_v10_amx"),  # weights outweigh pixels
    ],
)
def test_auto_takes_them_where_measured_faster(xs, ws, kw, algo):
    x, w = np.zeros(xs, np.float32), np.zeros(ws, np.float32)
    chosen = fc.select(fc.conv2d, x, w, **kw, precision="bf16")[0].algo
    assert chosen == algo if algo else chosen not in (FWD, ROWS)
