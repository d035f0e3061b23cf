"""fastconv: hand-written convolution kernels for NumPy and CuPy arrays.

    import fastconv
    y = fastconv.conv2d(x, w, padding=1)            # NumPy in, NumPy out; CuPy in, CuPy out
    fastconv.select(fastconv.conv2d, x, w, padding=1)  # which backend/algorithm that call runs

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
    set_backend,
    use_backend,
)
from .functional import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    batch_norm,
    batch_norm_backward,
    conv1d,
    conv1d_backward,
    conv2d,
    conv2d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    linear,
    linear_backward,
    max_pool2d,
    max_pool2d_backward,
    relu,
    relu_backward,
)
from .model_summary import Summary, summary
from .params import conv_output_size
from .plan import select

__version__ = "0.1.0"

__all__ = [
    "BackendStatus",
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
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_output_size",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "linear",
    "linear_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "nn",
    "optim",
    "register_backend",
    "relu",
    "relu_backward",
    "select",
    "set_backend",
    "summary",
    "use_backend",
]
