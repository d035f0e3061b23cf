"""fastconv over dask arrays: conv2d, pooling, batch norm (eval) and ReLU chunked along the batch and spatially;
group, layer and instance norm chunked along the dims their statistics do not span; and batch inference of any
fastconv model — on any dask scheduler, including a dask.distributed cluster.

    import dask.array as da, fastconv.dask as fcd
    x = da.from_array(images, chunks=(16, -1, 512, 512))
    y = fcd.conv2d(x, w, padding=1).compute()      # equals fastconv.conv2d(images, w, padding=1)

Needs the optional extra: pip install "fastconv[dask]".
"""

try:
    import dask.array  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("fastconv.dask needs dask: pip install 'fastconv[dask]'") from exc

from .norms import group_norm, instance_norm, layer_norm
from .ops import adaptive_avg_pool2d, avg_pool2d, batch_norm, conv2d, global_avg_pool2d, max_pool2d, relu
from .predict import predict

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "global_avg_pool2d",
    "group_norm",
    "instance_norm",
    "layer_norm",
    "max_pool2d",
    "predict",
    "relu",
]
