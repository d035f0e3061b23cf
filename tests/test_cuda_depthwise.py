"""The depthwise halo-tile CUDA kernels (kernels/conv2d_depthwise.cu: conv2d_fwd_v14, conv2d_bwd_data_v9,
conv2d_bwd_weight_v5 `_depthwise_halo`) on the emulator against the float64 reference, at SMALL_TUNABLES (32-thread
blocks of 4-column tiles, so these shapes span many tiles, slots of several planes and chunked weight gradients)
and at the production tunables (32 x 32 tiles: the larger planes below take several). Outputs are poisoned
(conftest); inputs must come back unchanged (conformance)."""

import conformance as cf
import numpy as np
import pytest
from cases import ConvCase

import fastconv as fc
from fastconv.backends.cuda import depthwise
from fastconv.backends.cuda.emu.launcher import EmuLauncher
from fastconv.backends.cuda.launch import SMALL_TUNABLES
from fastconv.plan_cache import clear_caches

pytestmark = pytest.mark.skipif(
    not fc.backends()["cuda-emu"].available, reason=f"cuda-emu: {fc.backends()['cuda-emu'].reason}"
)


def dw(name, n, c, hw, m=1, rs=(3, 3), bias=True, **kw):
    return ConvCase(name, (n, c, *hw), (c * m, 1, *rs), dict(groups=c, **kw), bias=bias)


CASES = [
    dw("3x3_p1", 2, 3, (9, 7), padding=1),
    dw("3x3_valid_tails", 1, 5, (11, 13)),
    dw("stride2", 2, 4, (10, 9), stride=2, padding=1),
    dw("stride_dilation", 1, 3, (13, 12), stride=(2, 3), padding=(2, 1), dilation=(2, 1)),
    dw("multiplier2", 2, 3, (8, 9), m=2, padding=1),
    dw("multiplier3_stride2", 1, 2, (9, 10), m=3, stride=2, padding=1, bias=False),
    dw("5x5_guarded_taps", 1, 3, (12, 11), rs=(5, 5), padding=2),
    dw("1x9_one_group", 2, 2, (5, 14), rs=(1, 9), padding=(0, 4)),
    dw("2x3_short_group", 1, 4, (6, 7), rs=(2, 3), stride=(1, 2)),
    dw("pad_beyond_kernel", 1, 3, (5, 6), padding=((4, 3), (3, 4)), stride=2),
    dw("tiny_planes_share_blocks", 3, 7, (3, 2), padding=1),
    dw("big_plane", 1, 2, (37, 45), padding=1),  # 2 x 2 tiles of 32 x 32 at the production tunables
    dw("big_plane_stride2", 1, 2, (70, 66), stride=2, padding=1, bias=False),
    ConvCase("conv1d", (2, 3, 17), (3, 1, 3), dict(groups=3, padding=1)),
]
ALGOS = {"conv2d": depthwise.FORWARD, "conv2d_bwd_data": depthwise.DATA, "conv2d_bwd_weight": depthwise.WEIGHT}


@pytest.fixture(params=["small", "production"])
def tunables(request):
    """Plans are cached by call, not by tunables, and `supports` depends on the tunables: clear them around."""
    from fastconv.backends.cuda.emu import LAUNCHER

    clear_caches()
    with LAUNCHER.override(SMALL_TUNABLES if request.param == "small" else {}):
        yield request.param
    clear_caches()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_forward(case, dtype, tunables, rng):
    cf.check_conv_forward("cuda-emu", depthwise.FORWARD, case, dtype, rng)


@pytest.mark.parametrize("op", ["conv2d_bwd_data", "conv2d_bwd_weight"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_backward(case, dtype, op, tunables, rng):
    need = (op == "conv2d_bwd_data", op == "conv2d_bwd_weight", False)
    cf.check_conv_backward("cuda-emu", ALGOS[op], case, dtype, rng, need=need)


def test_the_shapes_reach_the_edges_they_are_meant_to():
    """Tiles of several planes, several tiles per plane, several chunks and several tap groups all occur."""
    from fastconv.backends.cuda.emu import LAUNCHER

    small = {c.id: cf.kernel_params(c) for c in CASES}
    with LAUNCHER.override(SMALL_TUNABLES):
        assert depthwise.tile(LAUNCHER, 3, 2)[2] > 1  # planes per block
        cfg, _ = depthwise._plane_launch(LAUNCHER, small["big_plane"], depthwise.FORWARD)
        assert cfg.grid[1] > 1 and cfg.grid[2] > 1
        assert depthwise._weight_launch(LAUNCHER, small["3x3_p1"])[2] > 1  # chunks
    cfg, _ = depthwise._plane_launch(LAUNCHER, small["big_plane"], depthwise.FORWARD)
    assert cfg.grid[1:] == (2, 2)


def test_auto_picks_the_halo_kernels():
    x, w = np.zeros((2, 8, 9, 9), np.float32), np.zeros((16, 1, 3, 3), np.float32)
    assert fc.select(fc.conv2d, x, w, groups=8, backend="cuda-emu")[0].algo == depthwise.FORWARD
    gy = np.zeros((2, 16, 9, 9), np.float32)
    picked = {s.op: s.algo for s in fc.select(fc.conv2d_backward, gy, x, w, groups=8, padding=1, backend="cuda-emu")}
    assert picked["conv2d_bwd_data"] == depthwise.DATA
    assert picked["conv2d_bwd_weight"] == depthwise.WEIGHT
    # not depthwise: the implicit GEMMs keep their place
    assert fc.select(fc.conv2d, x, np.zeros((8, 8, 3, 3), np.float32), backend="cuda-emu")[0].algo != depthwise.FORWARD


def test_rejected_with_a_reason():
    x = np.zeros((1, 4, 8, 8), np.float32)
    with pytest.raises(ValueError, match="groups == C"):
        fc.conv2d(x, np.zeros((4, 2, 3, 3), np.float32), groups=2, backend="cuda-emu", algo=depthwise.FORWARD)
    # a halo past 48 KiB of shared memory (32 x 32 tiles, dilation 60): refused, and auto takes another kernel
    big = np.zeros((1, 2, 130, 130), np.float32)
    w = np.zeros((2, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match="48 KiB"):
        fc.conv2d(big, w, groups=2, dilation=60, backend="cuda-emu", algo=depthwise.FORWARD)
    assert fc.select(fc.conv2d, big, w, groups=2, dilation=60, backend="cuda-emu")[0].algo != depthwise.FORWARD


def test_empty_batch():
    x, w = np.zeros((0, 3, 5, 5), np.float32), np.ones((3, 1, 3, 3), np.float32)
    assert fc.conv2d(x, w, groups=3, backend="cuda-emu", algo=depthwise.FORWARD).shape == (0, 3, 3, 3)
    gx, gw, _ = fc.conv2d_backward(
        np.zeros((0, 3, 3, 3), np.float32), x, w, groups=3, need_bias=False, backend="cuda-emu", algo="auto"
    )
    assert gx.shape == x.shape and np.array_equal(gw, np.zeros_like(w))


def test_weight_gradient_is_deterministic(rng):
    """Two emulator schedules (block and thread orders, seeds 1 and 2), several chunks: the same bits."""
    case = dw("d", 3, 4, (11, 10), m=2, padding=1)
    p = cf.kernel_params(case)
    x, gy = rng.standard_normal(case.x).astype(np.float32), rng.standard_normal(p.y_shape).astype(np.float32)
    runs = []
    for seed in (1, 2):
        launcher = EmuLauncher(seed=seed)
        with launcher.override({**SMALL_TUNABLES, "DW_GRID": 64}):
            assert depthwise._weight_launch(launcher, p)[2] >= 4
            runs.append(depthwise.backward_weight(launcher, p, gy, x))
    assert np.array_equal(runs[0], runs[1])
