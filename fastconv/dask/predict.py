"""Batch inference of a fastconv model over a dask array, on any dask scheduler."""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da

from ..arrays import array_kind, array_module
from .ops import check_dask


def _forward(block: Any, model: Any) -> Any:
    return model(block)


def predict(model: Any, x: da.Array) -> da.Array:
    """model(x) over a dask array x (N, ...) chunked along the batch; returns a dask array (N, ...) of the model's
    output. The model (in eval mode) enters the graph as one task, so each worker receives its weights once and
    keeps them for all of its blocks. Every non-batch axis of x is gathered into one chunk."""
    fn = "fastconv.dask.predict"
    check_dask(fn, x, (2, 3, 4), "(N, features) or (N, C, L) or (N, C, H, W)")
    if not callable(model):
        raise TypeError(f"{fn}: 'model' must be a callable fastconv model, got {type(model).__name__}")
    if getattr(model, "training", False):
        raise ValueError(
            f"{fn}: 'model' is in training mode; call model.eval() first (inference uses running "
            "statistics and no dropout)"
        )
    x = x.rechunk({axis: -1 for axis in range(1, x.ndim)})
    xp = array_module(array_kind(x._meta))
    probe = model(xp.zeros((1, *x.shape[1:]), x.dtype))  # one sample tells the output's shape and dtype
    out_shape = tuple(probe.shape[1:])
    chunks = (x.chunks[0], *((n,) for n in out_shape))
    axes = {}
    if len(chunks) < x.ndim:
        axes["drop_axis"] = list(range(len(chunks), x.ndim))
    elif len(chunks) > x.ndim:
        axes["new_axis"] = list(range(x.ndim, len(chunks)))
    return da.map_blocks(
        _forward, x, dask.delayed(model, pure=True), chunks=chunks, dtype=probe.dtype, meta=probe[:0], **axes
    )
