"""fastconv ops over dask arrays: the very same kernels, run block by block, so results equal one big call.

Each op validates its arguments with the Core's params builders (on the full shapes), pads the whole array once
if the op pads, pins the backend and algorithm that the plan of one call on the full array selects (so every
block runs the same kernel; each block shape then gets its plan from the plan cache of the process running it),
and maps that kernel over blocks: along the batch, and spatially with the halo each window needs
(see tiling.py). Blocks may be NumPy or CuPy arrays; weights must be of the same kind.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np

import fastconv as fc

from ..arrays import FLOAT_DTYPES, array_kind, array_module, check_array, check_same
from ..params import adaptive_pool_params, batch_norm_params, conv_params, pool_params
from .tiling import whole_planes, windowed

NP_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def check_dask(fn: str, x: Any, ndim: int | tuple[int, ...], layout: str) -> str:
    """x must be a float dask array of NumPy or CuPy chunks; returns the chunks' array kind."""
    if not isinstance(x, da.Array):
        raise TypeError(
            f"{fn}: 'x' must be a dask array, got {type(x).__name__}; use fastconv.{fn.split('.')[-1]} "
            "for NumPy or CuPy arrays"
        )
    kind = array_kind(x._meta)
    if kind is None:
        raise TypeError(f"{fn}: 'x' must have NumPy or CuPy chunks, got {type(x._meta).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{fn}: 'x' must have dtype float32 or float64, got {x.dtype} (shape {x.shape})")
    if x.ndim not in ((ndim,) if isinstance(ndim, int) else ndim):
        raise ValueError(f"{fn}: 'x' must be {layout}, got shape {x.shape}")
    if any(np.isnan(c) for c in x.shape):
        raise ValueError(f"{fn}: 'x' has unknown chunk sizes {x.shape}; call x.compute_chunk_sizes() first")
    return kind


def _stand_in(x: da.Array, shape: tuple) -> Any:
    """A zero-memory array of x's kind and dtype with the given shape, for selection on full shapes."""
    xp = array_module(array_kind(x._meta))
    return xp.broadcast_to(xp.zeros((), x.dtype), shape)


def _pad_all(x: da.Array, pads: tuple, mode: str) -> da.Array:
    """x padded on H and W as a whole (for the padding modes that read across blocks)."""
    return da.pad(x, ((0, 0), (0, 0), *pads), mode=mode)


def _conv_rows(rows, weight, bias, kw, pads):
    return fc.conv2d(rows, weight, bias, padding=pads, **kw)


def conv2d(
    x: da.Array,
    weight: Any,
    bias: Any = None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    padding_mode: str = "zeros",
    *,
    backend: str | None = None,
    algo: str = "auto",
    align: int = 16,
) -> da.Array:
    """fastconv.conv2d over a dask array x (N, C, H, W); weight and bias are NumPy/CuPy arrays like x's chunks.

    Batch chunks are kept; spatial blocks start on the stride grid (multiples of stride*align) and are extended
    by the halo the dilated kernel needs; border blocks get their own zero padding. 'reflect', 'replicate' and
    'circular' read across blocks, so the array is padded as a whole first. Equal to fastconv.conv2d on the whole
    array (for an implementation registered with an output_tile, whose rounding follows its tile grid, the block
    grid is shifted so that every block starts on that grid, which keeps this bit for bit)."""
    fn = "fastconv.dask.conv2d"
    check_dask(fn, x, 4, "(N, C, H, W)")
    check_array(fn, "weight", weight, 4, "(K, C/groups, R, S)")
    if bias is not None:
        check_array(fn, "bias", bias, 1, "(K,)")
    _, dtype = check_same(fn, {"x": x._meta, "weight": weight, "bias": bias})
    p = conv_params(
        fn,
        x.shape,
        tuple(weight.shape),
        None if bias is None else tuple(bias.shape),
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        dtype,
    )
    if p.padding_mode != "zeros":
        x, p = _pad_all(x, p.padding, NP_PAD_MODE[p.padding_mode]), p.padded()
    kw = dict(stride=p.stride, dilation=p.dilation, groups=p.groups)
    whole = fc.plan(
        fc.conv2d, _stand_in(x, p.x_shape), weight, bias, padding=p.padding, **kw, backend=backend, algo=algo
    )
    (sel,) = whole.selection
    kw.update(backend=sel.backend, algo=sel.algo)
    spans = tuple(d * (k - 1) + 1 for d, k in zip(p.dilation, (p.R, p.S)))
    return windowed(
        x,
        _conv_rows,
        (dask.delayed(weight), dask.delayed(bias), kw),
        spans,
        p.stride,
        p.padding,
        (p.P, p.Q),
        p.K,
        align,
        whole.output_tile,
    )


def _pool_rows(rows, op, kw, fill, pads):
    """op on the rows with the block's padding made explicit (pooling takes only symmetric padding)."""
    if any(a or b for a, b in pads):
        xp = array_module(array_kind(rows))
        rows = xp.pad(rows, ((0, 0), (0, 0), *pads), constant_values=fill)
    return op(rows, **kw)


def _pool_block(block, op, kw):
    return op(block, **kw)


def max_pool2d(
    x: da.Array,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode=False,
    *,
    backend: str | None = None,
    align: int = 16,
) -> da.Array:
    """fastconv.max_pool2d over a dask array, tiled spatially (indices are not offered: they are per plane)."""
    fn = "fastconv.dask.max_pool2d"
    check_dask(fn, x, 4, "(N, C, H, W)")
    p = pool_params(fn, x.shape, kernel_size, stride, padding, dilation, ceil_mode, True, x.dtype)
    spans = tuple(d * (k - 1) + 1 for d, k in zip(p.dilation, p.kernel))
    kw = dict(kernel_size=p.kernel, stride=p.stride, dilation=p.dilation, backend=backend)
    # -inf padding on border blocks, as far as their windows reach (beyond the given padding under ceil_mode)
    return windowed(
        x,
        _pool_rows,
        (fc.max_pool2d, kw, -np.inf),
        spans,
        p.stride,
        tuple((pad, pad) for pad in p.padding),
        (p.P, p.Q),
        p.C,
        align,
    )


def avg_pool2d(
    x: da.Array,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    *,
    backend: str | None = None,
    align: int = 16,
) -> da.Array:
    """fastconv.avg_pool2d over a dask array. Tiled spatially when every window divides by kh*kw
    (count_include_pad and no window clipped by ceil_mode); otherwise chunked along the batch only."""
    fn = "fastconv.dask.avg_pool2d"
    check_dask(fn, x, 4, "(N, C, H, W)")
    p = pool_params(fn, x.shape, kernel_size, stride, padding, 1, ceil_mode, count_include_pad, x.dtype)
    kw = dict(kernel_size=p.kernel, stride=p.stride, backend=backend)
    fits = all(
        (out - 1) * s + k <= n + 2 * pad
        for n, k, s, pad, out in zip((p.H, p.W), p.kernel, p.stride, p.padding, (p.P, p.Q))
    )
    if not (p.count_include_pad and fits):
        kw.update(padding=p.padding, ceil_mode=p.ceil_mode, count_include_pad=p.count_include_pad)
        return whole_planes(x, _pool_block, (fc.avg_pool2d, kw), (p.P, p.Q))
    return windowed(
        x,
        _pool_rows,
        (fc.avg_pool2d, kw, 0.0),
        p.kernel,
        p.stride,
        tuple((pad, pad) for pad in p.padding),
        (p.P, p.Q),
        p.C,
        align,
    )


def adaptive_avg_pool2d(x: da.Array, output_size, *, backend: str | None = None) -> da.Array:
    """fastconv.adaptive_avg_pool2d over a dask array, chunked along the batch (windows are irregular)."""
    fn = "fastconv.dask.adaptive_avg_pool2d"
    check_dask(fn, x, 4, "(N, C, H, W)")
    p = adaptive_pool_params(fn, x.shape, output_size, x.dtype)
    kw = dict(output_size=(p.P, p.Q), backend=backend)
    return whole_planes(x, _pool_block, (fc.adaptive_avg_pool2d, kw), (p.P, p.Q))


def global_avg_pool2d(x: da.Array, *, backend: str | None = None) -> da.Array:
    """fastconv.global_avg_pool2d over a dask array, chunked along the batch."""
    check_dask("fastconv.dask.global_avg_pool2d", x, 4, "(N, C, H, W)")
    return whole_planes(x, _pool_block, (fc.global_avg_pool2d, dict(backend=backend)), (1, 1))


def _bn_block(block, weight, bias, mean, var, eps, backend, block_info=None):
    c0, c1 = block_info[0]["array-location"][1]
    return fc.batch_norm(
        block, mean[c0:c1], var[c0:c1], weight[c0:c1], bias[c0:c1], training=False, eps=eps, backend=backend
    )


def batch_norm(
    x: da.Array, running_mean, running_var, weight=None, bias=None, eps: float = 1e-5, *, backend: str | None = None
) -> da.Array:
    """fastconv.batch_norm in eval mode (running statistics, torch's argument order) over a dask array of any
    chunking; weight/bias may be None. Training mode needs batch statistics across chunks and is not offered."""
    fn = "fastconv.dask.batch_norm"
    check_dask(fn, x, (2, 3, 4), "(N, C[, L] | [, H, W])")
    arrays = {"weight": weight, "bias": bias, "running_mean": running_mean, "running_var": running_var}
    for name, a in arrays.items():
        if a is not None:
            check_array(fn, name, a, 1, "(C,)")
    _, dtype = check_same(fn, {"x": x._meta, **arrays})
    batch_norm_params(
        fn, x.shape, {n: None if a is None else tuple(a.shape) for n, a in arrays.items()}, False, 0.1, eps, dtype
    )
    xp = array_module(array_kind(x._meta))
    C = x.shape[1]
    weight = xp.ones(C, dtype) if weight is None else weight
    bias = xp.zeros(C, dtype) if bias is None else bias
    stats = [dask.delayed(a) for a in (weight, bias, running_mean, running_var)]
    return da.map_blocks(_bn_block, x, *stats, eps, backend, dtype=x.dtype, meta=x._meta)


def relu(x: da.Array, *, backend: str | None = None) -> da.Array:
    """fastconv.relu over a dask array of any chunking."""
    check_dask("fastconv.dask.relu", x, tuple(range(33)), "an array")
    return x.map_blocks(fc.relu, backend=backend, dtype=x.dtype, meta=x._meta)
