"""The "numba" backend: hand-written @njit(cache=True) CPU kernels on several threads, the default for NumPy arrays.

One module per op family. Every implementation is registered under the name of its entry function, which is its
algorithm name everywhere (`algo=`, tests, benchmark labels): <op>_v<N>_<strategy>, the version numbers shared
with the CUDA kernels of the same op family (CONTRIBUTING.md has the table). The conv forward ladder: v1_naive,
v4_depthwise, v5_rows (register-tiled, vectorised along output rows), v6_pointwise (1x1 GEMM), v7_blocked
(channels-last copy, vectorised along channels), v8_winograd (F(2x2, 3x3) for 3x3 stride-1 kernels), v9_nhwc
(v7's tile reading a channels_last x in place; only for such inputs), v10_amx (bfloat16 on AMX tiles, only
for precision="bf16"), v11_panels (an implicit GEMM over the whole batch on gathered pixel panels: late layers,
strided 1x1), v12_nhwc_gemm (a channels_last 1x1 as the plain GEMM it is; only for such inputs); v2 and v3 are
CUDA's. The weight-gradient ladder: v1_naive, v3_pointwise (1x1 as lane-wise dot products), v4_blocked (v7's
layout, per-image partials), v8_chunks (one GEMM over the batch, its reduction in shape-fixed chunks).
`algo="auto"` ranks them with the measured table in selection.py. Pooling, batch norm and ReLU have one
algorithm each (v1 being CUDA's), linear two forward algorithms (linear_dot_v2_rows for small batches,
linear_gemm_v3_packed, whose GEMM also computes both gradients).
"""

import math

from ...dispatch import on_release, register, set_description
from ...params import ConvTraits, Traits
from ...precision import register_rounder
from . import (
    batchnorm,
    batchnorm_nhwc,
    conv2d_amx,
    conv2d_amx_gemm,
    conv2d_amx_rows,
    conv2d_as_forward,
    conv2d_blocked,
    conv2d_chunks,
    conv2d_depthwise,
    conv2d_direct,
    conv2d_im2col,
    conv2d_nhwc,
    conv2d_nhwc_gemm,
    conv2d_panels,
    conv2d_phases,
    conv2d_pointwise,
    conv2d_rows,
    conv2d_unstaged,
    conv2d_winograd,
    gemm_amx,
    linear,
    pool2d,
    pool2d_nhwc,
    relu,
    row_norm,
    selection,
    threads,
)
from .config import ELEMENT_WORK, release_workspaces, sized

B = "numba"

_POINTWISE = dict(supports=conv2d_pointwise.supports, requires="a 1x1 kernel, stride 1, no padding")
_POINTWISE_W = dict(
    supports=conv2d_pointwise.supports_bwd_weight,
    requires=f"a 1x1 kernel, stride 1, no padding, >= {conv2d_pointwise.DOT_ROWS} output and "
    f">= {conv2d_pointwise.DOT_COLS} input channels per group",
)
_AS_FORWARD = dict(
    supports=conv2d_as_forward.supports, requires="stride 1, no side padded wider than the dilated kernel"
)
_PHASES = dict(supports=conv2d_phases.supports, requires="a stride > 1")
_IM2COL = dict(
    supports=conv2d_im2col.supports,
    requires=f"groups == 1, >= {conv2d_pointwise.DOT_ROWS} output channels, >= {conv2d_pointwise.DOT_COLS} input taps",
)
_WINOGRAD = dict(
    supports=conv2d_winograd.supports,
    requires="a 3x3 kernel, stride 1, no dilation",
    traits=ConvTraits(output_tile=conv2d_winograd.OUTPUT_TILE),
)
_DEPTHWISE = dict(supports=conv2d_depthwise.supports, requires="groups == input channels (depthwise)")
_NHWC = dict(
    supports=conv2d_nhwc.supports,
    traits=ConvTraits(channels_last=True),
    requires="x in channels_last order (an (N, H, W, C) buffer viewed as (N, C, H, W)), padding_mode 'zeros'",
)

_PANELS = dict(supports=conv2d_panels.supports, requires="groups == 1")
_CHUNKS = dict(supports=conv2d_chunks.supports, requires=f"groups == 1, >= {conv2d_chunks.ROWS} output channels")
_NHWC_GEMM = dict(
    supports=conv2d_nhwc_gemm.supports,
    traits=ConvTraits(channels_last=True),
    requires="a 1x1 kernel, no padding, dilation or groups, x in channels_last order, padding_mode 'zeros'",
)


# The work of a call, for `sized` (below config.SERIAL_WORK its kernels run serially): multiply-adds for conv and
# linear, ELEMENT_WORK per element of the larger array for the memory-bound ops.
def _macs(p) -> int:
    return p.macs


def _elements(p) -> int:
    shape = getattr(p, "shape", None)
    n = math.prod(shape) if shape is not None else max(math.prod(p.x_shape), math.prod(p.y_shape))
    return ELEMENT_WORK * n


_WORK = {"linear": _macs}

for _op, _fn, _kw in (
    ("conv2d", conv2d_direct.conv2d_fwd_v1_naive, {}),
    ("conv2d", conv2d_rows.conv2d_fwd_v5_rows, {}),
    ("conv2d", conv2d_pointwise.conv2d_fwd_v6_pointwise, _POINTWISE),
    ("conv2d", conv2d_depthwise.conv2d_fwd_v4_depthwise, _DEPTHWISE),
    ("conv2d", conv2d_blocked.conv2d_fwd_v7_blocked, {}),
    ("conv2d", conv2d_winograd.conv2d_fwd_v8_winograd, _WINOGRAD),
    ("conv2d", conv2d_nhwc.conv2d_fwd_v9_nhwc, _NHWC),
    ("conv2d", conv2d_panels.conv2d_fwd_v11_panels, _PANELS),
    ("conv2d", conv2d_nhwc_gemm.conv2d_fwd_v12_nhwc_gemm, _NHWC_GEMM),
    ("conv2d", conv2d_unstaged.conv2d_fwd_v13_unstaged, {}),
    ("conv2d_bwd_data", conv2d_direct.conv2d_bwd_data_v1_naive, {}),
    ("conv2d_bwd_data", conv2d_rows.conv2d_bwd_data_v2_rows, {}),
    ("conv2d_bwd_data", conv2d_pointwise.conv2d_bwd_data_v3_pointwise, _POINTWISE),
    ("conv2d_bwd_data", conv2d_as_forward.conv2d_bwd_data_v7_as_forward, _AS_FORWARD),
    ("conv2d_bwd_data", conv2d_phases.conv2d_bwd_data_v13_phases, _PHASES),
    ("conv2d_bwd_weight", conv2d_direct.conv2d_bwd_weight_v1_naive, {}),
    ("conv2d_bwd_weight", conv2d_pointwise.conv2d_bwd_weight_v3_pointwise, _POINTWISE_W),
    ("conv2d_bwd_weight", conv2d_blocked.conv2d_bwd_weight_v4_blocked, {}),
    ("conv2d_bwd_weight", conv2d_chunks.conv2d_bwd_weight_v8_chunks, _CHUNKS),
    ("conv2d_bwd_weight", conv2d_im2col.conv2d_bwd_weight_v9_im2col, _IM2COL),
):
    register(_op, B, _fn.__name__, sized(_fn, _macs), priority=selection.priority(_op, _fn.__name__), **_kw)

for _op, _fn in (
    ("conv2d_bwd_bias", conv2d_direct.conv2d_bwd_bias_v2_planes),
    ("max_pool2d", pool2d.max_pool2d_fwd_v2_separable),
    ("max_pool2d_bwd", pool2d.max_pool2d_bwd_v2_separable),
    ("avg_pool2d", pool2d.avg_pool2d_fwd_v2_separable),
    ("avg_pool2d_bwd", pool2d.avg_pool2d_bwd_v2_separable),
    ("adaptive_avg_pool2d", pool2d.adaptive_avg_pool2d_fwd_v2_separable),
    ("adaptive_avg_pool2d_bwd", pool2d.adaptive_avg_pool2d_bwd_v2_separable),
    ("global_avg_pool2d", pool2d.global_avg_pool2d_fwd_v2_separable),
    ("global_avg_pool2d_bwd", pool2d.global_avg_pool2d_bwd_v2_separable),
    ("batch_norm", batchnorm.batch_norm_fwd_v2_planes),
    ("batch_norm_bwd", batchnorm.batch_norm_bwd_v2_planes),
    ("relu", relu.relu_fwd_v2_stream),
    ("relu_bwd", relu.relu_bwd_v2_planes),
    ("row_norm", row_norm.row_norm_fwd_v2_rows),
    ("row_norm_bwd", row_norm.row_norm_bwd_v2_rows),
    ("linear", linear.linear_dot_v2_rows),
    ("linear", linear.linear_gemm_v3_packed),
    ("linear_bwd_bias", linear.linear_bwd_bias_v2_columns),
):
    rank = linear.priority(_fn.__name__) if _op == "linear" else 0
    register(_op, B, _fn.__name__, sized(_fn, _WORK.get(_op, _elements)), priority=rank)

# channels_last inputs read in place (batchnorm_nhwc.py, pool2d_nhwc.py); NCHW ones, and the other backends, as above
_CL = dict(traits=Traits(channels_last=True), requires="x in channels_last order")
for _op, _fn, _supports in (
    ("batch_norm", batchnorm_nhwc.batch_norm_fwd_v3_nhwc, batchnorm_nhwc.supports),
    ("batch_norm_bwd", batchnorm_nhwc.batch_norm_bwd_v3_nhwc, batchnorm_nhwc.supports),
    ("max_pool2d", pool2d_nhwc.max_pool2d_fwd_v3_nhwc, pool2d_nhwc.supports),
    ("max_pool2d_bwd", pool2d_nhwc.max_pool2d_bwd_v3_nhwc, pool2d_nhwc.supports),
):
    register(_op, B, _fn.__name__, sized(_fn, _elements), supports=_supports, priority=1, **_CL)

# bfloat16 on AMX tiles (conv2d_amx.py), only for precision="bf16": the conv where its work per input element pays
# for the packing (else auto takes the emulated rung, an fp32 kernel on rounded operands), linear and its gradients
# always (one GEMM serves the three, as linear_gemm_v3_packed)
_AMX, _BF16 = ConvTraits(precisions=("bf16",)), Traits(precisions=("bf16",))
for _op, _fn, _supports, _rank, _traits in (
    ("conv2d", conv2d_amx.conv2d_fwd_v10_amx, conv2d_amx.supports, conv2d_amx.priority, _AMX),
    (
        "conv2d_bwd_data",
        conv2d_amx.conv2d_bwd_data_v4_amx,
        conv2d_amx.supports_bwd_data,
        conv2d_amx.priority_bwd_data,
        _AMX,
    ),
    ("linear", conv2d_amx.linear_gemm_v4_amx, conv2d_amx.supports_linear, 100, _BF16),
    ("linear_bwd_data", conv2d_amx.linear_gemm_v4_amx_bwd_data, conv2d_amx.supports_linear, 100, _BF16),
    ("linear_bwd_weight", conv2d_amx.linear_gemm_v4_amx_bwd_weight, conv2d_amx.supports_linear, 100, _BF16),
):
    register(
        _op,
        B,
        "linear_gemm_v4_amx" if _op.startswith("linear") else _fn.__name__,
        sized(_fn, _macs),
        supports=_supports,
        priority=_rank,
        requires=conv2d_amx.requires(),
        traits=_traits,
    )

# the cache-blocked AMX GEMM on tile-ordered panels (gemm_amx.py): ahead of v4 for linear and both gradients
for _op, _fn in (
    ("linear", gemm_amx.linear_gemm_v5_amx_blocked),
    ("linear_bwd_data", gemm_amx.linear_gemm_v5_amx_blocked_bwd_data),
    ("linear_bwd_weight", gemm_amx.linear_gemm_v5_amx_blocked_bwd_weight),
):
    _kw = dict(supports=conv2d_amx.supports_linear, requires=conv2d_amx.requires(), traits=_BF16)
    register(_op, B, "linear_gemm_v5_amx_blocked", sized(_fn, _macs), priority=110, **_kw)

# conv as that GEMM (conv2d_amx_gemm.py: im2col panels, or x itself for 1x1): ahead of v10/v4 for plain 1x1 convs
# with the work to pay for the packing (conv2d_amx_gemm.priority)
for _op, _fn, _supports, _rank in (
    ("conv2d", conv2d_amx_gemm.conv2d_fwd_v17_amx_gemm, conv2d_amx.supports, conv2d_amx_gemm.priority),
    (
        "conv2d_bwd_data",
        conv2d_amx_gemm.conv2d_bwd_data_v11_amx_gemm,
        conv2d_amx.supports_bwd_data,
        conv2d_amx_gemm.priority_bwd_data,
    ),
    # the implicit GEMM with pixels as the A operand read in place (conv2d_amx_rows.py): convs with a window
    ("conv2d", conv2d_amx_rows.conv2d_fwd_v21_amx_rows, conv2d_amx.supports, conv2d_amx_rows.priority),
    (
        "conv2d_bwd_data",
        conv2d_amx_rows.conv2d_bwd_data_v12_amx_rows,
        conv2d_amx.supports_bwd_data,
        conv2d_amx_rows.priority_bwd_data,
    ),
):
    _kw = dict(supports=_supports, requires=conv2d_amx.requires(), traits=_AMX)
    register(_op, B, _fn.__name__, sized(_fn, _macs), priority=_rank, **_kw)

# one GEMM kernel serves the two gradients as well (as the CUDA backend's linear_gemm_v1_tiled)
register("linear_bwd_data", B, "linear_gemm_v3_packed", sized(linear.linear_gemm_v3_packed_bwd_data, _macs))
register("linear_bwd_weight", B, "linear_gemm_v3_packed", sized(linear.linear_gemm_v3_packed_bwd_weight, _macs))

register_rounder(B, conv2d_amx.rounded)
set_description(B, threads.status)
on_release(release_workspaces)
