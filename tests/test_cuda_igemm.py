"""The implicit-GEMM CUDA kernels (kernels/igemm.cuh: conv2d_fwd_v5, conv2d_bwd_data_v2, conv2d_bwd_weight_v3) on
the emulator against the float64 reference: at SMALL_TUNABLES (16x16 tiles, so the shapes below span many blocks,
tails in both tile dimensions and split-K with a short last split) and at the production tunables on shapes of
several 128x128 tiles. Outputs are poisoned (conftest); inputs must come back unchanged (conformance)."""

import conformance as cf
import numpy as np
import pytest
from cases import ConvCase

import fastconv as fc
from fastconv.backends.cuda import igemm
from fastconv.backends.cuda.launch import SMALL_TUNABLES

pytestmark = pytest.mark.skipif(
    not fc.backends()["cuda-emu"].available, reason=f"cuda-emu: {fc.backends()['cuda-emu'].reason}"
)

# every case has >= igemm.MIN_ROWS output (and input) channels per group, so all three kernels take it
CASES = [
    ConvCase("3x3_p1", (2, 8, 7, 7), (8, 8, 3, 3), dict(padding=1)),
    ConvCase("stride2_tails", (2, 16, 9, 8), (12, 16, 3, 3), dict(stride=2, padding=1)),
    ConvCase(
        "dilated_strided_grouped",
        (1, 16, 11, 10),
        (16, 8, 3, 2),
        dict(stride=2, padding=(2, 1), dilation=(2, 1), groups=2),
    ),
    ConvCase("pointwise_odd_channels", (3, 9, 6, 6), (10, 9, 1, 1), dict(), bias=False),
    ConvCase("pointwise_stride2", (2, 8, 7, 7), (8, 8, 1, 1), dict(stride=2)),  # phases no tap reaches
    ConvCase("stride3_gcd", (2, 8, 8, 8), (16, 8, 3, 3), dict(stride=(3, 2), padding=1, dilation=(2, 3))),
    ConvCase("pad_beyond_kernel", (1, 8, 5, 6), (9, 8, 3, 3), dict(padding=((4, 3), (3, 4)), stride=2)),
    ConvCase("long_reduction", (2, 24, 6, 5), (8, 24, 5, 5), dict(padding=2), bias=False),  # split-K
]
ALGOS = {
    "conv2d": igemm.FORWARD,
    "conv2d_bwd_data": igemm.DATA,
    "conv2d_bwd_weight": igemm.WEIGHT,
}


@pytest.fixture(params=["small", "production"])
def tunables(request):
    from fastconv.backends.cuda.emu import LAUNCHER

    with LAUNCHER.override(SMALL_TUNABLES if request.param == "small" else {}):
        yield request.param


@pytest.mark.parametrize("algo", [igemm.FORWARD, igemm.FORWARD_ASYNC])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_forward(case, dtype, algo, tunables, rng):
    cf.check_conv_forward("cuda-emu", algo, case, dtype, rng)


@pytest.mark.parametrize("op", ["conv2d_bwd_data", "conv2d_bwd_weight"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_backward(case, dtype, op, tunables, rng):
    need = (op == "conv2d_bwd_data", op == "conv2d_bwd_weight", False)
    cf.check_conv_backward("cuda-emu", ALGOS[op], case, dtype, rng, need=need)


@pytest.mark.parametrize(
    "case, split",
    [
        (ConvCase("multi_tile", (2, 8, 14, 13), (136, 8, 3, 3), dict(padding=1)), False),  # 3 x 2 tiles, 9 slices
        (ConvCase("split_k_late_layer", (1, 64, 7, 7), (64, 64, 3, 3), dict(padding=1, stride=2), bias=False), True),
    ],
    ids=["multi_tile", "split_k_late_layer"],
)
def test_production_tiles(case, split, rng):
    """Production tunables: several 128 x 128 tiles, and a 4x4-plane layer far below SPLITK_TARGET_BLOCKS."""
    from fastconv.backends.cuda.emu import LAUNCHER

    _, splits = igemm._forward_launch(LAUNCHER, igemm._forward_conv(cf.kernel_params(case)), np.float32, igemm.FORWARD)
    assert (splits > 1) == split
    cf.check_conv_forward("cuda-emu", igemm.FORWARD, case, np.float32, rng)
    cf.check_conv_backward("cuda-emu", "auto", case, np.float32, rng)


def test_auto_picks_the_implicit_gemms():
    x, w = np.zeros((2, 8, 7, 7), np.float32), np.zeros((8, 8, 3, 3), np.float32)
    assert fc.select(fc.conv2d, x, w, backend="cuda-emu")[0].algo == igemm.FORWARD
    picked = {
        s.op: s.algo
        for s in fc.select(fc.conv2d_backward, np.zeros((2, 8, 7, 7), np.float32), x, w, padding=1, backend="cuda-emu")
    }
    assert picked["conv2d_bwd_data"] == igemm.DATA
    assert picked["conv2d_bwd_weight"] == igemm.WEIGHT
    # four output channels per group would leave the 128-row tile idle: the older kernels take those
    w4 = np.zeros((8, 2, 3, 3), np.float32)
    assert fc.select(fc.conv2d, x, w4, groups=4, backend="cuda-emu")[0].algo != igemm.FORWARD


def test_split_k_is_deterministic(rng):
    """The split-K weight gradient adds its parts in a fixed order: three runs, the same bits."""
    from fastconv.backends.cuda.emu import LAUNCHER

    gy, x, w = rng.standard_normal((3, 16, 9, 9)), rng.standard_normal((3, 8, 9, 9)), rng.standard_normal((16, 8, 3, 3))
    with LAUNCHER.override(SMALL_TUNABLES):
        p = cf.kernel_params(ConvCase("d", x.shape, w.shape, dict(padding=1)))
        _, splits = igemm._weight_launch(LAUNCHER, p)
        assert splits > 1
        runs = [
            fc.conv2d_backward(
                gy, x, w, padding=1, need_input=False, need_bias=False, backend="cuda-emu", algo=igemm.WEIGHT
            )[1]
            for _ in range(3)
        ]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_fast_divisor_matches_floor_division():
    rng = np.random.default_rng(7)
    divisors = [1, 2, 3, 5, 7, 49, 196, 3136, 12544, 2**20 + 1, 2**31 - 1, *rng.integers(1, 2**31 - 1, 200)]
    n = np.concatenate([np.arange(1000), rng.integers(0, 2**31 - 1, 2000), [2**31 - 2, 2**31 - 1]]).astype(np.uint64)
    for d in divisors:
        magic, shift = igemm.fast_divisor(int(d))
        q = (((n * np.uint64(magic)) >> np.uint64(32)) + n) >> np.uint64(shift)
        np.testing.assert_array_equal(q, n // np.uint64(d), err_msg=f"d={d}")
    with pytest.raises(ValueError, match="fast_divisor"):
        igemm.fast_divisor(0)


@pytest.mark.parametrize("blocks, slices", [(1, 10_000), (5, 37), (300, 1000), (2, 3), (1, 16)])
def test_split_count_leaves_no_split_empty(blocks, slices):
    from fastconv.backends.cuda.emu import LAUNCHER

    t = LAUNCHER.tunables("launch")
    splits = igemm.split_count(LAUNCHER, blocks, slices)
    assert 1 <= splits <= t["SPLITK_MAX"]
    per = -(-slices // splits)
    assert (splits - 1) * per < slices  # the last split has work
    assert splits == 1 or per >= t["SPLITK_MIN_SLICES"]
    if blocks >= t["SPLITK_TARGET_BLOCKS"]:
        assert splits == 1


MMA_CASES = [c for c in CASES if c.id in ("3x3_p1", "stride2_tails", "dilated_strided_grouped", "long_reduction")]


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
@pytest.mark.parametrize("op", ["conv2d", "conv2d_bwd_data", "conv2d_bwd_weight"])
@pytest.mark.parametrize("case", MMA_CASES, ids=[c.id for c in MMA_CASES])
def test_tensor_core_kernels(case, op, precision, tunables, rng):
    """The mma kernels against the float64 reference on operands rounded to the precision (they round them
    themselves; the plan does not)."""
    algo = {"conv2d": igemm.MMA_FORWARD, "conv2d_bwd_data": igemm.MMA_DATA, "conv2d_bwd_weight": igemm.MMA_WEIGHT}[op]
    case = case._replace(kw={**case.kw, "precision": precision})
    if op == "conv2d":
        cf.check_conv_forward("cuda-emu", algo, case, np.float32, rng)
    else:
        need = (op == "conv2d_bwd_data", op == "conv2d_bwd_weight", False)
        cf.check_conv_backward("cuda-emu", algo, case, np.float32, rng, need=need)


def test_tensor_cores_only_where_they_apply():
    x, w = np.zeros((2, 8, 7, 7), np.float32), np.zeros((8, 8, 3, 3), np.float32)
    assert fc.select(fc.conv2d, x, w, backend="cuda-emu", precision="tf32")[0].algo == igemm.MMA_FORWARD
    assert fc.select(fc.conv2d, x, w, backend="cuda-emu", precision="bf16")[0].algo == igemm.MMA_FORWARD
    assert fc.select(fc.conv2d, x, w, backend="cuda-emu")[0].algo == igemm.FORWARD  # fp32: exact products
    assert (
        fc.select(fc.conv2d, x.astype(np.float64), w.astype(np.float64), backend="cuda-emu", precision="tf32")[0].algo
        != igemm.MMA_FORWARD
    )
    with pytest.raises(ValueError, match="conv2d_fwd_v20_mma"):
        fc.conv2d(x, w, backend="cuda-emu", algo=igemm.MMA_FORWARD)
