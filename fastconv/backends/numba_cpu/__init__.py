"""The "numba" backend: hand-written @njit(parallel=True, cache=True) CPU kernels, the default for NumPy arrays.

One module per op family. Conv algorithms form a ladder (each module's header gives its strategy; the measured
GFLOP/s are in bench_results/numba_cpu.md): direct_v1 (naive), rows_v2 (register-tiled, vectorised along output
rows), pointwise_v3 (1x1 GEMM), depthwise_v4, blocked_v5 (channels-last, vectorised along channels), winograd_v6
(F(2x2, 3x3): 16 GEMMs on transformed tiles, for 3x3 stride-1 kernels), nhwc_v7 (blocked_v5 reading a
channels_last x in place; only for such inputs). For each op, `algo="auto"` ranks them with the measured table in
selection.py. Pooling, batch norm and ReLU have one algorithm each ("planes": one (n, c) plane per parallel
iteration). linear (linear.py): dot_v1 (dot products along the weight's rows, for small batches) and gemm_v2
(register-tiled GEMM, the forward and both gradients).
"""

from ...dispatch import register
from ...params import ConvTraits
from . import (
    batchnorm,
    conv2d_blocked,
    conv2d_depthwise,
    conv2d_direct,
    conv2d_nhwc,
    conv2d_pointwise,
    conv2d_rows,
    conv2d_winograd,
    linear,
    pool2d,
    selection,
)

B = "numba"

_POINTWISE = dict(supports=conv2d_pointwise.supports, requires="a 1x1 kernel, stride 1, no padding")
_POINTWISE_W = dict(
    supports=conv2d_pointwise.supports_bwd_weight,
    requires=f"a 1x1 kernel, stride 1, no padding, >= {conv2d_pointwise.DOT_ROWS} output and "
    f">= {conv2d_pointwise.DOT_COLS} input channels per group",
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

for _op, _algo, _fn, _kw in (
    ("conv2d", "direct_v1", conv2d_direct.conv2d_direct_v1, {}),
    ("conv2d", "rows_v2", conv2d_rows.conv2d_rows_v2, {}),
    ("conv2d", "pointwise_v3", conv2d_pointwise.conv2d_pointwise_v3, _POINTWISE),
    ("conv2d", "depthwise_v4", conv2d_depthwise.conv2d_depthwise_v4, _DEPTHWISE),
    ("conv2d", "blocked_v5", conv2d_blocked.conv2d_blocked_v5, {}),
    ("conv2d", "winograd_v6", conv2d_winograd.conv2d_winograd_v6, _WINOGRAD),
    ("conv2d", "nhwc_v7", conv2d_nhwc.conv2d_nhwc_v7, _NHWC),
    ("conv2d_bwd_data", "direct_v1", conv2d_direct.conv2d_bwd_data_v1, {}),
    ("conv2d_bwd_data", "rows_v2", conv2d_rows.conv2d_bwd_data_rows_v2, {}),
    ("conv2d_bwd_data", "pointwise_v3", conv2d_pointwise.conv2d_bwd_data_pointwise_v3, _POINTWISE),
    ("conv2d_bwd_weight", "direct_v1", conv2d_direct.conv2d_bwd_weight_v1, {}),
    ("conv2d_bwd_weight", "pointwise_v3", conv2d_pointwise.conv2d_bwd_weight_pointwise_v3, _POINTWISE_W),
    ("conv2d_bwd_weight", "blocked_v5", conv2d_blocked.conv2d_bwd_weight_blocked_v5, {}),
):
    register(_op, B, _algo, _fn, priority=selection.priority(_op, _algo), **_kw)

for _op, _fn in (
    ("conv2d_bwd_bias", conv2d_direct.conv2d_bwd_bias),
    ("max_pool2d", pool2d.max_pool2d),
    ("max_pool2d_bwd", pool2d.max_pool2d_bwd),
    ("avg_pool2d", pool2d.avg_pool2d),
    ("avg_pool2d_bwd", pool2d.avg_pool2d_bwd),
    ("adaptive_avg_pool2d", pool2d.adaptive_avg_pool2d),
    ("adaptive_avg_pool2d_bwd", pool2d.adaptive_avg_pool2d_bwd),
    ("global_avg_pool2d", pool2d.adaptive_avg_pool2d),
    ("global_avg_pool2d_bwd", pool2d.adaptive_avg_pool2d_bwd),
    ("batch_norm", batchnorm.batch_norm),
    ("batch_norm_bwd", batchnorm.batch_norm_bwd),
    ("relu", batchnorm.relu),
    ("relu_bwd", batchnorm.relu_bwd),
):
    register(_op, B, "planes", _fn)

for _op, _algo, _fn in (
    ("linear", "dot_v1", linear.linear_dot_v1),
    ("linear", "gemm_v2", linear.linear_gemm_v2),
    ("linear_bwd_data", "gemm_v2", linear.linear_bwd_data_gemm_v2),
    ("linear_bwd_weight", "gemm_v2", linear.linear_bwd_weight_gemm_v2),
    ("linear_bwd_bias", "columns", linear.linear_bwd_bias),
):
    register(_op, B, _algo, _fn, priority=linear.priority(_algo))
