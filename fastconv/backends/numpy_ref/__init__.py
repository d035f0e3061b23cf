"""The "numpy" backend: the plain-NumPy reference every other backend is checked against.

Vectorised with sliding-window views and einsum (linear: matmul), never a Python loop per output pixel (the only
loops run over kernel taps). It computes in the input's dtype; tests run it in float64 as the oracle.
"""

from ...dispatch import register
from . import batchnorm, conv2d, linear, pool2d, row_norm

for _module, _ops in (
    (conv2d, ("conv2d", "conv2d_bwd_data", "conv2d_bwd_weight", "conv2d_bwd_bias")),
    (
        pool2d,
        (
            "max_pool2d",
            "max_pool2d_bwd",
            "avg_pool2d",
            "avg_pool2d_bwd",
            "adaptive_avg_pool2d",
            "adaptive_avg_pool2d_bwd",
            "global_avg_pool2d",
            "global_avg_pool2d_bwd",
        ),
    ),
    (batchnorm, ("batch_norm", "batch_norm_bwd", "relu", "relu_bwd")),
    (linear, ("linear", "linear_bwd_data", "linear_bwd_weight", "linear_bwd_bias")),
    (row_norm, ("row_norm", "row_norm_bwd")),
):
    for _op in _ops:
        register(_op, "numpy", "reference", getattr(_module, _op))
