"""fastconv: hand-written convolution kernels for NumPy and CuPy arrays.

    import fastconv
    y = fastconv.conv2d(x, w, padding=1)            # NumPy in, NumPy out; CuPy in, CuPy out
    fastconv.select(fastconv.conv2d, x, w, padding=1)  # which backend/algorithm that call runs
    plan = fastconv.plan(fastconv.conv2d, x, w, padding=1)  # what that call runs, decided once: plan.run(x, w, None)

Importing fastconv loads no compiler and needs neither CuPy nor a GPU: backends load on first use.
"""

from . import backends as _backends  # noqa: F401  (declares the built-in backends)
from . import nn, optim
from .dispatch import (
    BackendStatus,
    Selection,
    autotune,
    backends,
    clear_autotune_cache,
    register_backend,
    release_workspaces,
    set_backend,
    use_backend,
)
from .functional import conv1d, conv1d_backward, conv2d, conv2d_backward
from .functional_linear import linear, linear_backward
from .functional_norm import (
    group_norm,
    group_norm_backward,
    instance_norm,
    instance_norm_backward,
    layer_norm,
    layer_norm_backward,
)
from .functional_pool import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    batch_norm,
    batch_norm_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    relu,
    relu_backward,
)
from .functional_transpose import conv_transpose2d, conv_transpose2d_backward
from .model_summary import Summary, summary
from .params import conv_output_size
from .plan import Plan
from .plan_cache import clear_caches, plan, plan_cache_info, select, set_plan_cache_size
from .precision import use_precision

__version__ = "0.1.0"

__all__ = [
    "BackendStatus",
    "Plan",
    "Selection",
    "Summary",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "autotune",
    "avg_pool2d",
    "avg_pool2d_backward",
    "backends",
    "batch_norm",
    "batch_norm_backward",
    "clear_autotune_cache",
    "clear_caches",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_output_size",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "layer_norm_backward",
    "layer_norm",
    "instance_norm_backward",
    "instance_norm",
    "group_norm_backward",
    "group_norm",
    "linear",
    "linear_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "nn",
    "optim",
    "plan",
    "plan_cache_info",
    "register_backend",
    "relu",
    "relu_backward",
    "release_workspaces",
    "select",
    "set_backend",
    "set_plan_cache_size",
    "summary",
    "use_backend",
    "use_precision",
]
