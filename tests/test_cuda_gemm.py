"""The 1x1 stride-1 GEMM kernels (kernels/conv2d_gemm.cu: conv2d_fwd_v15_gemm, conv2d_bwd_data_v10_gemm,
conv2d_fwd_v16_gemm_mma) on the emulator against the float64 reference, at SMALL_TUNABLES (16 x 16 tiles: these
shapes span many tiles, tails both ways, split-K) and at the production tunables (128 x 128: the larger cases take
several tiles and split K). Shapes with HW and C multiples of 4 take the 16-byte path where the buffers are
aligned; the others, and every buffer shifted 4 or 8 bytes off alignment, the element path. Outputs are poisoned
(conftest); inputs must come back unchanged (conformance)."""

import conformance as cf
import numpy as np
import pytest
import test_cuda_depthwise
from cases import ConvCase
from helpers import assert_close
from test_cuda_memops import shifted_emu_launcher

import fastconv as fc
from fastconv.backends.cuda import gemm, igemm
from fastconv.backends.cuda.emu.launcher import EmuLauncher
from fastconv.backends.cuda.launch import SMALL_TUNABLES
from fastconv.params import conv_params

pytestmark = pytest.mark.skipif(
    not fc.backends()["cuda-emu"].available, reason=f"cuda-emu: {fc.backends()['cuda-emu'].reason}"
)


def pw(name, n, c, hw, k, bias=True):
    return ConvCase(name, (n, c, *hw), (k, c, 1, 1), {}, bias=bias)


CASES = [
    pw("packs", 2, 12, (4, 6), 20),  # HW = 24, C = 12: 16-byte loads
    pw("odd_everything", 3, 9, (5, 7), 10, bias=False),  # element loads
    pw("packed_pixels_odd_channels", 2, 7, (4, 4), 9),  # HW % 4 == 0, C % 4 != 0: element loads
    pw("one_pixel", 5, 8, (1, 1), 12),
    pw("multi_tile", 2, 16, (12, 12), 136),  # 3 x 2 tiles of 128
    pw("split_k", 1, 256, (4, 4), 16, bias=False),  # one tile, 32 slices: 4 splits at the production tunables
    ConvCase("conv1d", (2, 8, 20), (12, 8, 1), {}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_forward(case, dtype, tunables, rng):
    cf.check_conv_forward("cuda-emu", gemm.FORWARD, case, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_backward_data(case, dtype, tunables, rng):
    cf.check_conv_backward("cuda-emu", gemm.DATA, case, dtype, rng, need=(True, False, False))


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
@pytest.mark.parametrize("case", CASES[:2] + CASES[4:6], ids=[c.id for c in CASES[:2] + CASES[4:6]])
def test_tensor_core_forward(case, precision, tunables, rng):
    """Against the float64 reference on operands rounded to the precision (the kernel rounds them itself)."""
    case = case._replace(kw={"precision": precision})
    cf.check_conv_forward("cuda-emu", gemm.MMA_FORWARD, case, np.float32, rng)


tunables = test_cuda_depthwise.tunables  # the small/production fixture


def _params(case, dtype):
    return conv_params("conv", case.x, case.w, (case.w[0],) if case.bias else None, 1, 0, 1, 1, "zeros", dtype)


@pytest.mark.parametrize("layout", ["aligned", "shifted"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [CASES[0], CASES[4]], ids=["packs", "multi_tile"])
def test_both_load_paths(case, dtype, layout, rng):
    """Buffers at a page start (16-byte loads and stores) and one element past it (element loads): the same
    products, against the float64 reference."""
    launcher = EmuLauncher(guard="start") if layout == "aligned" else shifted_emu_launcher()
    if layout == "shifted":
        launcher.shift = np.dtype(dtype).itemsize
    p = _params(case, dtype)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (case.x, case.w, (case.w[0],)))
    gy = rng.standard_normal(p.y_shape).astype(dtype)
    with launcher.override(SMALL_TUNABLES):
        y = gemm.forward(launcher, p, x, w, b)
        gx = gemm.backward_data(launcher, p, gy, w)
    ref = fc.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), backend="numpy")
    assert_close(y, ref, "conv", dtype, f"{layout} forward")
    gref = np.einsum("nkhw,kc->nchw", gy.astype(np.float64), w[:, :, 0, 0].astype(np.float64))
    assert_close(gx, gref, "conv", dtype, f"{layout} data gradient")


def test_split_k_happens_and_repeats(rng):
    from fastconv.backends.cuda.emu import LAUNCHER

    case = CASES[5]
    p = _params(case, np.float32)
    assert gemm._launch(LAUNCHER, gemm.FORWARD, p, p.K, p.C)[1] > 1
    x, w = rng.standard_normal(case.x).astype(np.float32), rng.standard_normal(case.w).astype(np.float32)
    runs = [gemm.forward(EmuLauncher(seed=s), p, x, w, None) for s in (1, 2)]
    assert np.array_equal(runs[0], runs[1])


def test_auto_picks_the_gemms():
    x, w = np.zeros((2, 16, 7, 7), np.float32), np.zeros((32, 16, 1, 1), np.float32)
    assert fc.select(fc.conv2d, x, w, backend="cuda-emu")[0].algo == gemm.FORWARD
    assert fc.select(fc.conv2d, x, w, backend="cuda-emu", precision="tf32")[0].algo == gemm.MMA_FORWARD
    assert fc.select(fc.conv2d, x, w, backend="cuda-emu", precision="bf16")[0].algo == gemm.MMA_FORWARD
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    assert fc.select(fc.conv2d, x64, w64, backend="cuda-emu", precision="tf32")[0].algo != gemm.MMA_FORWARD
    gy = np.zeros((2, 32, 7, 7), np.float32)
    picked = {s.op: s.algo for s in fc.select(fc.conv2d_backward, gy, x, w, backend="cuda-emu")}
    assert picked["conv2d_bwd_data"] == gemm.DATA
    assert picked["conv2d_bwd_weight"] == igemm.WEIGHT  # the weight gradient keeps the implicit GEMM
    # anything but 1x1 / stride 1 / no padding / one group: not these kernels
    for kw, ws in (
        (dict(stride=2), w),
        (dict(padding=1), w),
        (dict(groups=2), w[:, :8]),
        ({}, np.zeros((32, 16, 3, 3))),
    ):
        ws = ws.astype(np.float32)
        assert fc.select(fc.conv2d, x, ws, backend="cuda-emu", **kw)[0].algo != gemm.FORWARD


@pytest.mark.parametrize(
    "kw, w_shape", [(dict(stride=2), (8, 4, 1, 1)), (dict(padding=1), (8, 4, 1, 1)), ({}, (8, 4, 3, 1))]
)
def test_rejected_with_a_reason(kw, w_shape):
    x = np.zeros((1, 4, 6, 6), np.float32)
    with pytest.raises(ValueError, match="a 1x1 kernel, stride 1, no padding, groups 1"):
        fc.conv2d(x, np.zeros(w_shape, np.float32), backend="cuda-emu", algo=gemm.FORWARD, **kw)
    with pytest.raises(ValueError, match="compute capability 8.0"):
        fc.conv2d(x, np.zeros((8, 4, 1, 1), np.float32), backend="cuda-emu", algo=gemm.MMA_FORWARD)
