"""The chunked bias gradients (kernels/bias_grad.cu: conv2d_bwd_bias_v3_chunks, linear_bwd_bias_v3_chunks) on the
emulator against the float64 reference, at SMALL_TUNABLES (64-thread blocks: 256-element conv chunks, 32-row linear
chunks, so these shapes take several) and at the production tunables (the larger shapes take several chunks
there too); 16-byte packs where the planes (conv) or rows (linear) allow and the buffer is aligned, elements where
not, and buffers shifted off alignment; two emulator schedules give the same bits. Outputs are poisoned (conftest)."""

import conformance as cf
import numpy as np
import pytest
import test_cuda_depthwise
from cases import ConvCase, LinearCase
from helpers import assert_close
from test_cuda_memops import shifted_emu_launcher

import fastconv as fc
from fastconv import dispatch
from fastconv.backends.cuda import bias
from fastconv.backends.cuda.emu.launcher import EmuLauncher
from fastconv.backends.cuda.launch import SMALL_TUNABLES
from fastconv.params import conv_params, linear_params

pytestmark = pytest.mark.skipif(
    not fc.backends()["cuda-emu"].available, reason=f"cuda-emu: {fc.backends()['cuda-emu'].reason}"
)
tunables = test_cuda_depthwise.tunables  # the small/production fixture

CONV_CASES = [
    ConvCase("packed_planes", (4, 3, 12, 11), (2, 3, 3, 3), dict(padding=1)),  # PQ = 132: packs of 4 (and 2)
    ConvCase("odd_planes", (3, 2, 9, 7), (3, 2, 3, 3), dict(padding=1)),  # PQ = 63: elements
    ConvCase("one_pixel", (9, 4, 3, 3), (6, 4, 3, 3), {}),  # PQ = 1
    ConvCase("many_chunks", (5, 2, 48, 40), (2, 2, 1, 1), {}),  # 9600 per channel: several production chunks
    ConvCase("conv1d", (3, 2, 50), (4, 2, 3), dict(padding=1)),
]
LINEAR_CASES = [
    LinearCase("packed_rows", (300, 7), 36),  # K % 4 == 0: packs
    LinearCase("odd_columns", (301, 5), 37),  # several column tiles and row chunks, elements
    LinearCase("batch_dims", (3, 50, 4), 33),
    LinearCase("tall", (1100, 3), 8),  # several production row chunks
    LinearCase("one_row", (1, 4), 5),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES, ids=[c.id for c in CONV_CASES])
def test_conv_bias(case, dtype, tunables, rng):
    cf.check_conv_backward("cuda-emu", bias.CONV, case, dtype, rng, need=(False, False, True))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", LINEAR_CASES, ids=[c.id for c in LINEAR_CASES])
def test_linear_bias(case, dtype, tunables, rng):
    cf.check_linear_backward("cuda-emu", bias.LINEAR, case, dtype, rng, need=(False, False, True))


def test_the_shapes_take_several_chunks():
    from fastconv.backends.cuda.emu import LAUNCHER

    assert bias.conv_chunks(LAUNCHER, 2, 5 * 48 * 40)[1] > 1
    assert bias.linear_chunks(LAUNCHER, 1100, 8)[1] > 1
    with LAUNCHER.override(SMALL_TUNABLES):
        assert bias.conv_chunks(LAUNCHER, 2, 4 * 132)[1] > 1
        assert bias.linear_chunks(LAUNCHER, 300, 36)[1] > 1


def _run(launcher, which, gy, dtype):
    if which == "conv":
        n, k, h, w = gy.shape
        p = conv_params("conv", (n, 1, h, w), (k, 1, 1, 1), None, 1, 0, 1, 1, "zeros", np.dtype(dtype))
        return bias.conv_bias(launcher, p, gy)
    p = linear_params("linear", (gy.shape[0], 3), (gy.shape[1], 3), (gy.shape[1],), np.dtype(dtype))
    return bias.linear_bias(launcher, p, gy)


@pytest.mark.parametrize("layout", ["aligned", "shifted"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("which, shape", [("conv", (3, 4, 12, 16)), ("linear", (200, 40))])
def test_both_load_paths(which, shape, dtype, layout, rng):
    """Buffers at a page start (16-byte packs) and one element past it (elements), against the float64 sums."""
    launcher = EmuLauncher(guard="start") if layout == "aligned" else shifted_emu_launcher()
    if layout == "shifted":
        launcher.shift = np.dtype(dtype).itemsize
    gy = rng.standard_normal(shape).astype(dtype)
    with launcher.override(SMALL_TUNABLES):
        gb = _run(launcher, which, gy, dtype)
    axes = (0, 2, 3) if which == "conv" else (0,)
    assert_close(gb, gy.astype(np.float64).sum(axes), "conv", dtype, f"{which} {layout}")


@pytest.mark.parametrize("which, shape", [("conv", (3, 4, 12, 16)), ("linear", (700, 40))])
def test_deterministic(which, shape, rng):
    gy = rng.standard_normal(shape).astype(np.float32)
    runs = []
    for seed in (1, 2):
        launcher = EmuLauncher(seed=seed)
        with launcher.override(SMALL_TUNABLES):
            runs.append(_run(launcher, which, gy, np.float32))
    assert np.array_equal(runs[0], runs[1])


def test_auto_picks_them_and_refuses_what_does_not_fit():
    from fastconv.backends.cuda.emu import LAUNCHER

    x, w, gy = np.zeros((2, 3, 5, 5), np.float32), np.zeros((4, 3, 3, 3), np.float32), np.zeros((2, 4, 3, 3))
    steps = fc.select(fc.conv2d_backward, gy.astype(np.float32), x, w, need_input=False, backend="cuda-emu")
    assert {s.op: s.algo for s in steps}["conv2d_bwd_bias"] == bias.CONV
    steps = fc.select(fc.linear_backward, np.zeros((3, 4), np.float32), np.zeros((3, 5), np.float32),
                      np.zeros((4, 5), np.float32), backend="cuda-emu")  # fmt: skip
    assert {s.op: s.algo for s in steps}["linear_bwd_bias"] == bias.LINEAR
    huge = conv_params("conv", (2**16, 1, 2**8, 2**8), (2, 1, 1, 1), None, 1, 0, 1, 1, "zeros", np.dtype(np.float32))
    impl = dispatch.implementation("conv2d_bwd_bias", "cuda-emu", bias.CONV)
    assert not impl.supports(huge) and "2^31" in impl.requires
    assert bias.conv_supports(LAUNCHER, conv_params("conv", (8, 1, 9, 9), (2, 1, 1, 1), None, 1, 0, 1, 1, "zeros",
                                                    np.dtype(np.float32)))  # fmt: skip


def test_empty_batch_gives_zeros_and_no_channels_nothing():
    from fastconv.backends.cuda.emu import LAUNCHER

    f32 = np.dtype(np.float32)
    p = conv_params("conv", (0, 2, 5, 5), (3, 2, 3, 3), None, 1, 0, 1, 1, "zeros", f32)
    assert np.array_equal(bias.conv_bias(LAUNCHER, p, np.zeros((0, 3, 3, 3), np.float32)), np.zeros(3))
    lp = linear_params("linear", (0, 4), (5, 4), (5,), f32)
    assert np.array_equal(bias.linear_bias(LAUNCHER, lp, np.zeros((0, 5), np.float32)), np.zeros(5))
    assert bias.linear_bias(LAUNCHER, linear_params("linear", (3, 4), (0, 4), (0,), f32), np.zeros((3, 0))).size == 0
