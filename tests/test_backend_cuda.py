"""Every CUDA kernel against the float64 reference, on both launchers of the same launch code: "cuda-emu" (the .cu
files run on the CPU by the emulator, everywhere) and "cuda" (CuPy on a GPU; marked gpu, skipped without a device).
Launch sizes are forced small (SMALL_TUNABLES) so the tiny shapes span several blocks, partial tiles and wrapping
grid-stride loops; FASTCONV_TEST_TUNABLES=production runs the same tests at the production tunables instead (what
users launch; `fastconv gpu-check` runs the gpu tests both ways, and tests/test_gpu_large.py adds multi-wave shapes).
Outputs are poisoned (conftest)."""

import importlib
import os
from typing import NamedTuple

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
    LINEAR_CASES,
    MAX_POOL_CASES,
    NORM_CASES,
    TRANSPOSE_CASES,
    LinearCase,
)

import fastconv as fc


class Target(NamedTuple):
    backend: str
    to_device: object
    from_device: object


def tunables_under_test() -> dict[str, int]:
    """The launch overrides the `target` fixture applies: FASTCONV_TEST_TUNABLES is 'small' (the default) or
    'production' (no override)."""
    from fastconv.backends.cuda.launch import SMALL_TUNABLES

    mode = os.environ.get("FASTCONV_TEST_TUNABLES", "small")
    if mode not in ("small", "production"):
        raise pytest.UsageError(f"FASTCONV_TEST_TUNABLES must be 'small' or 'production', got {mode!r}")
    return SMALL_TUNABLES if mode == "small" else {}


def _unavailable(name: str) -> pytest.MarkDecorator:
    status = fc.backends()[name]
    return pytest.mark.skipif(not status.available, reason=f"{name}: {status.reason}")


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("cuda-emu", marks=_unavailable("cuda-emu")),
        pytest.param("cuda", marks=[pytest.mark.gpu, _unavailable("cuda")]),
    ],
)
def target(request):
    module = importlib.import_module(
        {"cuda": "fastconv.backends.cuda", "cuda-emu": "fastconv.backends.cuda.emu"}[request.param]
    )
    if request.param == "cuda":
        import cupy

        moves = (cupy.asarray, cupy.asnumpy)
    else:
        moves = (cf._ident, cf._ident)
    with module.LAUNCHER.override(tunables_under_test()):
        yield Target(request.param, *moves)


def check(fn, target, *args, **kw):
    """Run a conformance check on the target backend, with its device transfers."""
    fn(target.backend, *args, to_device=target.to_device, from_device=target.from_device, **kw)


ids = lambda cases: [c.id for c in cases]  # noqa: E731
CONV = CONV2D_CASES + CONV1D_CASES
DEPTHWISE = [c for c in CONV2D_CASES if c.id.startswith("depthwise")]
F64_CONV = [
    c
    for c in CONV2D_CASES
    if c.id in ("basic_p1", "dilated_strided", "grouped_strided", "stem7x7_s2", "asymmetric_pad", "empty_batch")
]
# every registered algorithm on every case its `supports` takes (both launchers register the same names)
FORWARD = cf.registered_cases("conv2d", "cuda-emu", CONV)
FORWARD_F64 = cf.registered_cases("conv2d", "cuda-emu", F64_CONV + DEPTHWISE)
GRADIENTS = [
    pytest.param(op, algo, case, id=f"{algo}-{case.id}")
    for op in ("conv2d_bwd_data", "conv2d_bwd_weight")
    for algo, case in (p.values for p in cf.registered_cases(op, "cuda-emu", F64_CONV[:4]))
]


@pytest.mark.parametrize("algo, case", FORWARD)
def test_conv_forward_float32(case, algo, target, rng):
    check(cf.check_conv_forward, target, algo, case, np.float32, rng)


@pytest.mark.parametrize("algo, case", FORWARD_F64)
def test_conv_forward_float64(case, algo, target, rng):
    check(cf.check_conv_forward, target, algo, case, np.float64, rng)


@pytest.mark.parametrize("op, algo, case", GRADIENTS)
def test_conv_gradient_algorithms(op, algo, case, target, rng):
    need = (op == "conv2d_bwd_data", op == "conv2d_bwd_weight", False)
    check(cf.check_conv_backward, target, algo, case, np.float64, rng, need=need)


def test_conv_auto_picks_the_ladder_top(target):
    x, w = target.to_device(np.zeros((1, 4, 5, 5))), target.to_device(np.zeros((4, 1, 3, 3)))
    assert fc.select(fc.conv2d, x, w, groups=4, backend=target.backend)[0].algo == "conv2d_fwd_v14_depthwise_halo"
    w = target.to_device(np.zeros((3, 4, 3, 3)))
    assert fc.select(fc.conv2d, x, w, backend=target.backend)[0].algo == "conv2d_fwd_v3_implicit_gemm"


@pytest.mark.parametrize("case", CONV, ids=ids(CONV))
def test_conv_backward_float32(case, target, rng):
    check(cf.check_conv_backward, target, "auto", case, np.float32, rng)


@pytest.mark.parametrize("case", F64_CONV, ids=ids(F64_CONV))
def test_conv_backward_float64(case, target, rng):
    check(cf.check_conv_backward, target, "auto", case, np.float64, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", MAX_POOL_CASES, ids=ids(MAX_POOL_CASES))
def test_max_pool(case, dtype, target, rng):
    check(cf.check_max_pool, target, case, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", AVG_POOL_CASES, ids=ids(AVG_POOL_CASES))
def test_avg_pool(case, dtype, target, rng):
    check(cf.check_avg_pool, target, case, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=ids(ADAPTIVE_CASES))
def test_adaptive_and_global_pool(case, dtype, target, rng):
    check(cf.check_adaptive_pool, target, case, dtype, rng)


def test_max_pool_nan_propagates(target, rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    x[0, 1, 2, 3] = np.nan
    y, idx = fc.max_pool2d(target.to_device(x), 3, stride=2, return_indices=True, backend=target.backend)
    y, idx = target.from_device(y), target.from_device(idx)
    y_ref, idx_ref = fc.max_pool2d(x, 3, stride=2, return_indices=True, backend="numpy")
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm(shape, training, dtype, target, rng):
    check(cf.check_batch_norm, target, shape, training, dtype, rng)


def test_batch_norm_empty_batch_eval(target, rng):
    check(cf.check_batch_norm, target, (0, 3, 4, 4), False, np.float32, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", ELTWISE_SHAPES)
def test_relu(shape, dtype, target, rng):
    check(cf.check_relu, target, shape, dtype, rng)


LINEAR = LINEAR_CASES + [LinearCase("tiles", (19, 40), 21)]  # 3 x 2 blocks of 8 x 16 outputs, 10 slices (small)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", LINEAR, ids=ids(LINEAR))
def test_linear(case, dtype, target, rng):
    check(cf.check_linear_forward, target, "auto", case, dtype, rng)
    check(cf.check_linear_backward, target, "auto", case, dtype, rng)


def test_linear_nan_propagates(target, rng):
    x, w = rng.standard_normal((5, 9)), rng.standard_normal((7, 9))
    x[2, 4] = np.nan
    y = target.from_device(fc.linear(target.to_device(x), target.to_device(w), backend=target.backend))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(fc.linear(x, w, backend="numpy")))
    assert np.isnan(y).sum() == 7


def test_weight_gradient_is_deterministic_by_default(target, rng):
    gy, x, w = rng.standard_normal((3, 4, 7, 7)), rng.standard_normal((3, 5, 9, 9)), rng.standard_normal((4, 5, 3, 3))
    gy, x, w = (target.to_device(a) for a in (gy, x, w))
    runs = [
        target.from_device(fc.conv2d_backward(gy, x, w, need_input=False, need_bias=False, backend=target.backend)[1])
        for _ in range(3)
    ]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def _nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
        return nvrtc
    except Exception as exc:  # CuPy or its NVRTC library missing
        pytest.skip(f"NVRTC is not available through CuPy here ({type(exc).__name__})")


@pytest.mark.parametrize("small", [False, True], ids=["default", "small"])
def test_nvrtc_compiles_every_kernel_with_the_cupy_options(small):
    """What CuPyLauncher hands to NVRTC (source, options) compiles without a log line, with the options CuPy
    appends itself (-ftz=true: README, "Denormals"); needs no GPU."""
    from fastconv.backends.cuda.cupy_launcher import nvrtc_options
    from fastconv.backends.cuda.launch import SMALL_TUNABLES, TUNABLES
    from fastconv.backends.cuda.loader import cu_files

    nvrtc = _nvrtc()
    for path in cu_files():
        tunables = {k: SMALL_TUNABLES[k] if small else v for k, v in TUNABLES[path.name].items()}
        program = nvrtc.createProgram(path.read_text(), path.name, (), ())
        try:
            nvrtc.compileProgram(program, ("-arch=compute_80", "-ftz=true", *nvrtc_options(path.name, tunables)))
        except Exception:
            pytest.fail(f"NVRTC rejected {path.name}:\n{nvrtc.getProgramLog(program)}")
        assert nvrtc.getProgramLog(program).strip() == "", path.name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", NORM_CASES, ids=[c.id for c in NORM_CASES])
def test_norms(case, dtype, target, rng):
    check(cf.check_norm, target, case, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algo, case", cf.transpose_algos("cuda-emu", TRANSPOSE_CASES))
def test_conv_transpose2d(algo, case, dtype, target, rng):
    check(cf.check_conv_transpose, target, algo, case, dtype, rng)
