"""The "numba" backend: hand-written @njit(parallel=True, cache=True) CPU kernels, the default for NumPy arrays.

One module per op family; each registers its (op, algo) entries here. Conv algorithms are a ladder (see each
module's header for the measured GFLOP/s); `algo="auto"` ranks them with the rules in `selection.py`, derived from
bench_results/.
"""

from ...dispatch import register
from . import batchnorm, conv2d_blocked, conv2d_depthwise, conv2d_direct, conv2d_pointwise, conv2d_rows, pool2d

B = "numba"

register("conv2d", B, "direct_v1", conv2d_direct.conv2d_direct_v1)
register("conv2d_bwd_data", B, "direct_v1", conv2d_direct.conv2d_bwd_data_v1)
register("conv2d_bwd_weight", B, "direct_v1", conv2d_direct.conv2d_bwd_weight_v1)
register("conv2d_bwd_bias", B, "plane_sums", conv2d_direct.conv2d_bwd_bias)

for _op, _fn in (
    ("max_pool2d", pool2d.max_pool2d), ("max_pool2d_bwd", pool2d.max_pool2d_bwd),
    ("avg_pool2d", pool2d.avg_pool2d), ("avg_pool2d_bwd", pool2d.avg_pool2d_bwd),
    ("adaptive_avg_pool2d", pool2d.adaptive_avg_pool2d), ("adaptive_avg_pool2d_bwd", pool2d.adaptive_avg_pool2d_bwd),
    ("global_avg_pool2d", pool2d.adaptive_avg_pool2d), ("global_avg_pool2d_bwd", pool2d.adaptive_avg_pool2d_bwd),
    ("batch_norm", batchnorm.batch_norm), ("batch_norm_bwd", batchnorm.batch_norm_bwd),
    ("relu", batchnorm.relu), ("relu_bwd", batchnorm.relu_bwd),
):
    register(_op, B, "direct_v1", _fn)

register("conv2d", B, "rows_v2", conv2d_rows.conv2d_rows_v2)
register("conv2d_bwd_data", B, "rows_v2", conv2d_rows.conv2d_bwd_data_rows_v2)
register("conv2d", B, "pointwise_v3", conv2d_pointwise.conv2d_pointwise_v3, supports=conv2d_pointwise.supports,
         requires="a 1x1 kernel, stride 1, no padding")
register("conv2d", B, "depthwise_v4", conv2d_depthwise.conv2d_depthwise_v4, supports=conv2d_depthwise.supports,
         requires="groups == input channels (depthwise)")
register("conv2d", B, "blocked_v5", conv2d_blocked.conv2d_blocked_v5)
register("conv2d_bwd_weight", B, "blocked_v5", conv2d_blocked.conv2d_bwd_weight_blocked_v5)
