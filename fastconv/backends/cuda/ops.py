"""The registry entries of the CUDA kernels, for one backend name and one Launcher.

"cuda" (CuPyLauncher) and "cuda-emu" (EmuLauncher) call `register_all` with their own launcher, so both run the
same launch code and differ only in who executes the launch. Algorithm names are the kernel names (without the
dtype suffix). Priorities order the ladder for algo="auto"; they are not tuned on measurements yet.
"""

from __future__ import annotations

from functools import partial

from ...dispatch import register
from ...params import ConvTraits
from . import bias, conv, depthwise, gemm, igemm, linear, norm, pool, row_norm
from .launch import Launcher

_FITS = "a launch within CUDA's grid limits and 48 KiB of shared memory"
_CONV_FORWARD = (  # algo, priority, what it needs
    ("conv2d_fwd_v1_naive", 0, _FITS),
    ("conv2d_fwd_v2_smem_tiled", 10, _FITS),
    ("conv2d_fwd_v3_implicit_gemm", 20, _FITS),
    ("conv2d_fwd_v4_depthwise", 30, f"groups == C (depthwise) and {_FITS}"),
)
_MMA = f"precision 'tf32' or 'bf16' on float32, a device of compute capability 8.0+, and {_FITS}"
_IGEMM = f"at least {igemm.MIN_ROWS} output channels per group, 32-bit pixel and tensor indices, and {_FITS}"


def register_all(backend: str, launcher: Launcher) -> None:
    """Register every op of fastconv.dispatch.OPS for `backend`, launched by `launcher`."""
    for algo, priority, needs in _CONV_FORWARD:
        register(
            "conv2d",
            backend,
            algo,
            partial(conv.forward, launcher, algo),
            priority=priority,
            requires=needs,
            supports=partial(conv.forward_supports, launcher, algo),
        )
    register(
        "conv2d_bwd_data",
        backend,
        "conv2d_bwd_data_v1_naive",
        partial(conv.backward_data, launcher, "conv2d_bwd_data_v1_naive"),
    )
    for algo, priority in (("conv2d_bwd_weight_v1_naive", 10), ("conv2d_bwd_weight_v2_atomic", 0)):
        register("conv2d_bwd_weight", backend, algo, partial(conv.backward_weight, launcher, algo), priority=priority)
    _register_gemms(  # the implicit GEMMs: above every other version of their op
        backend,
        launcher,
        (
            ("conv2d", igemm.FORWARD, igemm.forward, igemm.forward_supports, 40),
            ("conv2d", igemm.FORWARD_ASYNC, igemm.forward, igemm.forward_supports, 35),  # unmeasured: auto keeps v18
            ("conv2d", igemm.MMA_FORWARD, igemm.forward, igemm.forward_supports, 50),
            ("conv2d_bwd_data", igemm.DATA, igemm.backward_data, igemm.backward_data_supports, 40),
            ("conv2d_bwd_data", igemm.MMA_DATA, igemm.backward_data, igemm.backward_data_supports, 50),
            ("conv2d_bwd_weight", igemm.WEIGHT, igemm.backward_weight, igemm.backward_weight_supports, 40),
            ("conv2d_bwd_weight", igemm.MMA_WEIGHT, igemm.backward_weight, igemm.backward_weight_supports, 50),
        ),
        (igemm.MMA_FORWARD, igemm.MMA_DATA, igemm.MMA_WEIGHT),
        _IGEMM,
        _MMA,
    )
    register("conv2d_bwd_bias", backend, "conv2d_bwd_bias_v1_reduce", partial(conv.backward_bias, launcher))
    for op, algo, fn, supports in (  # the chunked reductions: above v1 wherever they fit
        ("conv2d_bwd_bias", bias.CONV, bias.conv_bias, bias.conv_supports),
        ("linear_bwd_bias", bias.LINEAR, bias.linear_bias, bias.linear_supports),
    ):
        needs = dict(supports=partial(supports, launcher), requires=bias.REQUIRES)
        register(op, backend, algo, partial(fn, launcher), priority=10, **needs)
    for op, fn in (
        ("linear", linear.forward),
        ("linear_bwd_data", linear.backward_data),
        ("linear_bwd_weight", linear.backward_weight),
    ):
        register(
            op,
            backend,
            linear.KERNEL,
            partial(fn, launcher),
            supports=partial(linear.supports, launcher, op),
            requires=_FITS,
        )
    register("linear_bwd_bias", backend, "linear_bwd_bias_v1_reduce", partial(linear.backward_bias, launcher))
    for op, algo, fn in (
        ("max_pool2d", "max_pool2d_fwd_v1", pool.max_pool),
        ("max_pool2d_bwd", "max_pool2d_bwd_v1", pool.max_pool_bwd),
        ("avg_pool2d", "avg_pool2d_fwd_v1", pool.avg_pool),
        ("avg_pool2d_bwd", "avg_pool2d_bwd_v1", pool.avg_pool_bwd),
        ("adaptive_avg_pool2d", "adaptive_avg_pool2d_fwd_v1", pool.adaptive_pool),
        ("adaptive_avg_pool2d_bwd", "adaptive_avg_pool2d_bwd_v1", pool.adaptive_pool_bwd),
        ("global_avg_pool2d", "global_avg_pool2d_fwd_v1", pool.global_pool),
        (
            "global_avg_pool2d_bwd",
            "global_avg_pool2d_bwd_v1",
            partial(pool.adaptive_pool_bwd, kernel="global_avg_pool2d_bwd_v1"),
        ),
        ("batch_norm", "batch_norm_fwd_v1", norm.batch_norm),
        ("batch_norm_bwd", "batch_norm_bwd_v1", norm.batch_norm_bwd),
        ("relu", "relu_fwd_v1", norm.relu),
        ("relu_bwd", "relu_bwd_v1", norm.relu_bwd),
        ("row_norm", "row_norm_fwd_v1", row_norm.row_norm),
        ("row_norm_bwd", "row_norm_bwd_v1", row_norm.row_norm_bwd),
    ):
        register(op, backend, algo, partial(fn, launcher))
    _register_memory_v3(backend, launcher)
    _register_depthwise(backend, launcher)
    _register_gemm(backend, launcher)


def _register_memory_v3(backend: str, launcher: Launcher) -> None:
    """The v3 memory-bound kernels (v2: the numba backend's number for these op families): above v1 for
    algo="auto" wherever their `supports` holds (else v1 runs)."""
    bn = dict(supports=partial(norm.supports_v3, launcher), requires=norm.V3_REQUIRES)
    pool_fwd = dict(supports=partial(pool.supports_v3, launcher), requires=pool.V3_REQUIRES)
    pool_bwd = dict(supports=partial(pool.supports_v3, launcher, backward=True), requires=pool.V3_REQUIRES)
    for op, algo, fn, needs in (
        ("max_pool2d", "max_pool2d_fwd_v3_tiles", pool.max_pool_v3, pool_fwd),
        ("max_pool2d_bwd", "max_pool2d_bwd_v3_tiles", pool.max_pool_bwd_v3, pool_bwd),
        ("avg_pool2d", "avg_pool2d_fwd_v3_tiles", pool.avg_pool_v3, pool_fwd),
        ("avg_pool2d_bwd", "avg_pool2d_bwd_v3_tiles", pool.avg_pool_bwd_v3, pool_bwd),
        ("batch_norm", "batch_norm_fwd_v3_chunks", norm.batch_norm_v3, bn),
        ("batch_norm_bwd", "batch_norm_bwd_v3_chunks", norm.batch_norm_bwd_v3, bn),
        ("relu", "relu_fwd_v3_packs", partial(norm.relu, kernel="relu_fwd_v3_packs"), {}),
        ("relu_bwd", "relu_bwd_v3_packs", partial(norm.relu_bwd, kernel="relu_bwd_v3_packs"), {}),
    ):
        register(op, backend, algo, partial(fn, launcher), priority=10, **needs)


def _register_depthwise(backend: str, launcher: Launcher) -> None:
    """The halo-tile depthwise kernels: above every other version of their op for auto (the implicit GEMMs spend
    a 128-row tile and 8-deep slices on one channel per group), wherever their `supports` holds."""
    for op, algo, fn in (
        ("conv2d", depthwise.FORWARD, depthwise.forward),
        ("conv2d_bwd_data", depthwise.DATA, depthwise.backward_data),
        ("conv2d_bwd_weight", depthwise.WEIGHT, depthwise.backward_weight),
    ):
        supports = partial(depthwise.supports, launcher, op=algo)
        register(op, backend, algo, partial(fn, launcher), priority=60, supports=supports, requires=depthwise.REQUIRES)


def _register_gemm(backend: str, launcher: Launcher) -> None:
    """The 1x1 stride-1 GEMMs: above the implicit GEMMs of their precision (no tap loop, 16-byte loads), below the
    tensor-core kernels for the SIMT ones (tf32/bf16 calls keep the tensor cores)."""
    rows = (
        ("conv2d", gemm.FORWARD, gemm.forward, gemm.supports, 45),
        ("conv2d_bwd_data", gemm.DATA, gemm.backward_data, gemm.supports, 45),
        ("conv2d", gemm.MMA_FORWARD, gemm.forward, gemm.supports, 55),
    )
    _register_gemms(backend, launcher, rows, (gemm.MMA_FORWARD,), gemm.REQUIRES, gemm.MMA_REQUIRES)


def _register_gemms(backend: str, launcher: Launcher, rows: tuple, mma: tuple, needs: str, mma_needs: str) -> None:
    """Register (op, algo, fn, supports, priority) rows whose fn and supports take the algo by keyword; those in
    `mma` run on tensor cores (they round their operands themselves: traits precisions)."""
    for op, algo, fn, supports, priority in rows:
        tensor = algo in mma
        register(
            op,
            backend,
            algo,
            partial(fn, launcher, algo=algo),
            priority=priority,
            requires=mma_needs if tensor else needs,
            supports=partial(supports, launcher, algo=algo),
            traits=ConvTraits(precisions=igemm.MMA_PRECISIONS) if tensor else None,
        )
