"""The "cuda" backend at its production tunables on shapes large enough for many waves of blocks on an H100/H200
(132 SMs): every registered algorithm against the float64 reference, plus run-to-run bit-identity of the default
weight gradient. The tiny shapes of test_backend_cuda.py fit in a block or two at production tile sizes, so tails,
multi-block reductions and split-K paths at real sizes only run here. Marked gpu; skipped without a device. The
shapes are sized so the float64 reference stays under a second per case on 16 host cores."""

import conformance as cf
import numpy as np
import pytest
from cases import ConvCase, LinearCase, PoolCase

import fastconv as fc


def _cuda_unavailable() -> str:
    status = fc.backends().get("cuda")
    return "the 'cuda' backend is not registered" if status is None else status.reason


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(bool(_cuda_unavailable()), reason=f"cuda: {_cuda_unavailable()}")]

# (N, C, H, W), (K, C/g, R, S): GEMM rows N*P*Q in the tens of thousands, K up to 512, odd sizes for tails
LARGE_CONV = [
    ConvCase("l_3x3_56", (8, 64, 56, 56), (128, 64, 3, 3), dict(padding=1), bias=False),
    ConvCase("l_1x1_s2", (16, 256, 28, 28), (512, 256, 1, 1), dict(stride=2)),
    ConvCase("l_3x3_7x7_splitk", (32, 256, 7, 7), (256, 256, 3, 3), dict(padding=1), bias=False),
    ConvCase("l_odd_strided", (5, 67, 45, 37), (93, 67, 3, 3), dict(stride=2, padding=1)),
    ConvCase("l_dilated", (4, 64, 40, 40), (64, 64, 3, 3), dict(padding=2, dilation=2), bias=False),
    ConvCase("l_grouped_g32", (8, 128, 28, 28), (128, 4, 3, 3), dict(padding=1, groups=32), bias=False),
    ConvCase("l_depthwise", (4, 192, 56, 56), (192, 1, 3, 3), dict(padding=1, groups=192), bias=False),
    ConvCase("l_stem7x7", (4, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3), bias=False),
]
FORWARD = cf.registered_cases("conv2d", "cuda-emu", LARGE_CONV)
GRADIENTS = [
    pytest.param(op, algo, case, id=f"{algo}-{case.id}")
    for op in ("conv2d_bwd_data", "conv2d_bwd_weight")
    for algo, case in (p.values for p in cf.registered_cases(op, "cuda-emu", LARGE_CONV))
]


def _cupy():
    """(to_device, from_device) for the conformance checks."""
    import cupy

    return cupy.asarray, cupy.asnumpy


@pytest.mark.parametrize("algo, case", FORWARD)
def test_large_conv_forward(algo, case, rng):
    to_device, from_device = _cupy()
    cf.check_conv_forward("cuda", algo, case, np.float32, rng, to_device=to_device, from_device=from_device)


@pytest.mark.parametrize("op, algo, case", GRADIENTS)
def test_large_conv_gradients(op, algo, case, rng):
    need = (op == "conv2d_bwd_data", op == "conv2d_bwd_weight", False)
    to_device, from_device = _cupy()
    cf.check_conv_backward("cuda", algo, case, np.float32, rng, to_device, from_device, need=need)


@pytest.mark.parametrize("case", LARGE_CONV[:3] + LARGE_CONV[5:6], ids=lambda c: c.id)
def test_large_auto_forward_and_backward(case, rng):
    to_device, from_device = _cupy()
    cf.check_conv_forward("cuda", "auto", case, np.float32, rng, to_device=to_device, from_device=from_device)
    cf.check_conv_backward("cuda", "auto", case, np.float32, rng, to_device, from_device)


@pytest.mark.parametrize("case", LARGE_CONV[:3], ids=lambda c: c.id)
def test_large_default_weight_gradient_is_bit_identical_run_to_run(case, rng):
    to_device, from_device = _cupy()
    x = to_device(rng.standard_normal(case.x).astype(np.float32))
    w = to_device(rng.standard_normal(case.w).astype(np.float32))
    gy = to_device(rng.standard_normal(fc.conv2d(x, w, backend="cuda", **case.kw).shape).astype(np.float32))
    kw = dict(need_input=False, need_bias=False, backend="cuda", **case.kw)
    runs = [from_device(fc.conv2d_backward(gy, x, w, **kw)[1]) for _ in range(3)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:]), f"{case.id}: weight gradient differs between runs"


def test_large_memory_bound_ops(rng):
    to_device, from_device = _cupy()
    cf.check_batch_norm("cuda", (32, 64, 28, 28), True, np.float32, rng, to_device, from_device)
    cf.check_batch_norm("cuda", (8, 256, 14, 14), False, np.float32, rng, to_device, from_device)
    cf.check_relu("cuda", (16, 64, 112, 112), np.float32, rng, to_device, from_device)
    for case in (
        PoolCase("l_max_k3s2p1", (8, 64, 112, 112), dict(kernel_size=3, stride=2, padding=1)),
        PoolCase("l_max_k2", (4, 96, 55, 57), dict(kernel_size=2, ceil_mode=True)),
    ):
        cf.check_max_pool("cuda", case, np.float32, rng, to_device, from_device)
        cf.check_avg_pool("cuda", case, np.float32, rng, to_device, from_device)


def test_large_linear(rng):
    to_device, from_device = _cupy()
    case = LinearCase("l_fc", (256, 2048), 1000)
    cf.check_linear_forward("cuda", "auto", case, np.float32, rng, to_device=to_device, from_device=from_device)
    cf.check_linear_backward("cuda", "auto", case, np.float32, rng, to_device, from_device)
