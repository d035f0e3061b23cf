"""Group, layer and instance norm over dask arrays: every block is the fastconv op on that block's rows.

These norms normalise each row (a (sample, group), (sample, channel) or leading index; fastconv.params.norm) by
its own statistics, so blocks that hold whole rows are independent: any chunking of the batch (layer norm: of the
leading dims), of the channels in whole groups (group norm) or freely (instance norm). The dims a row spans
(spatial dims; layer norm's normalized dims) must be one chunk each: a ValueError says how to rechunk, rather
than gathering what may be large planes behind the caller's back. The row kernels compute each row in an order of
its own, so results equal one call on the whole array bit for bit. Instance norm by running statistics
(use_input_stats=False) is elementwise and takes any chunking. Updating running statistics (use_input_stats=True
with running_mean/running_var) is an in-place reduction over the whole batch and is not offered: the ValueError
gives the dask expressions that compute torch's update.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da

import fastconv as fc

from ..arrays import array_kind, check_array, check_same
from ..dispatch import candidates
from ..params import group_norm_params, instance_norm_params, layer_norm_params
from ..params.common import _real
from .ops import _stand_in, check_dask

MAX_RANK = 32


def _check_arrays(fn: str, x: da.Array, arrays: dict[str, Any], ndim: int | None) -> Any:
    """NumPy/CuPy float arrays (ndim dims, or any) of x's chunks' kind and dtype; returns the dtype."""
    for name, a in arrays.items():
        if a is not None:
            check_array(fn, name, a, ndim, "(C,)" if ndim == 1 else "")
    return check_same(fn, {"x": x._meta, **arrays})[1]


def _shapes(arrays: dict[str, Any]) -> dict[str, tuple | None]:
    return {n: None if a is None else tuple(a.shape) for n, a in arrays.items()}


def _pinned(fn: str, x: da.Array, op: Any, *args: Any, backend: str | None, **kw: Any) -> str:
    """The backend the plan of one call on the whole array selects: every block then runs that kernel, whatever
    use_backend() context or backends the processes computing the blocks have."""
    candidates(array_kind(x._meta), backend, fn)  # an unknown or unusable backend, named after fn
    return fc.plan(op, _stand_in(x, x.shape), *args, **kw, backend=backend).selection[0].backend


def _need_whole(fn: str, x: da.Array, axes: tuple[int, ...], what: str, group: int = 1) -> None:
    """x's `axes` must be one chunk each and its channel chunks multiples of `group` channels."""
    split = [a for a in axes if len(x.chunks[a]) > 1]
    uneven = group > 1 and any(c % group for c in x.chunks[1])
    if not (split or uneven):
        return
    why = f"{what} must be one chunk each, but axes {split} are split" if split else ""
    if uneven:
        why += "; " if why else ""
        why += f"channel chunks must hold whole groups of {group} channels, got {x.chunks[1]}"
    fix = ", ".join(f"{a}: -1" for a in ((1,) if uneven else ()) + axes)
    raise ValueError(f"{fn}: 'x' chunks {x.chunks}: {why}; rechunk first, e.g. x.rechunk({{{fix}}})")


def _by_channel(block: Any, run: Any, kw: dict, *arrays: Any, block_info=None) -> Any:
    """run(block, *arrays sliced to the block's channels, **kw); None arrays stay None."""
    c0, c1 = block_info[0]["array-location"][1]
    return run(block, *(None if a is None else a[c0:c1] for a in arrays), **kw)


def _map_by_channel(x: da.Array, run: Any, kw: dict, arrays: list) -> da.Array:
    """The (C,) arrays enter the graph once each, as Delayed objects."""
    delayed = [None if a is None else dask.delayed(a) for a in arrays]
    return da.map_blocks(_by_channel, x, run, kw, *delayed, dtype=x.dtype, meta=x._meta)


def _group_rows(block, weight, bias, group: int, eps: float, backend: str):
    return fc.group_norm(block, max(block.shape[1] // group, 1), weight, bias, eps, backend=backend)


def _instance_rows(block, running_mean, running_var, weight, bias, eps: float, backend: str):
    stats = running_mean is None  # by its own statistics, or (use_input_stats=False) by the running ones
    return fc.instance_norm(block, running_mean, running_var, weight, bias, stats, eps=eps, backend=backend)


def _layer_rows(block, normalized_shape, weight, bias, eps: float, backend: str):
    return fc.layer_norm(block, normalized_shape, weight, bias, eps, backend=backend)


def group_norm(
    x: da.Array, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5, *, backend: str | None = None
) -> da.Array:
    """fastconv.group_norm over a dask array x (N, C, *spatial); weight and bias (C,) NumPy/CuPy arrays like x's
    chunks, or None. Any batch chunking; channel chunks of whole groups (multiples of C/num_groups); each
    spatial dim in one chunk. Equal to fastconv.group_norm on the whole array."""
    fn = "fastconv.dask.group_norm"
    check_dask(fn, x, tuple(range(2, MAX_RANK + 1)), "(N, C, *spatial)")
    arrays = {"weight": weight, "bias": bias}
    dtype = _check_arrays(fn, x, arrays, 1)
    p = group_norm_params(fn, x.shape, num_groups, _shapes(arrays), eps, dtype)
    _need_whole(fn, x, tuple(range(2, x.ndim)), "the spatial dims (a group's statistics span them)", p.Cg)
    chosen = _pinned(fn, x, fc.group_norm, num_groups, weight, bias, p.eps, backend=backend)
    return _map_by_channel(x, _group_rows, dict(group=max(p.Cg, 1), eps=p.eps, backend=chosen), [weight, bias])


def layer_norm(
    x: da.Array,
    normalized_shape,
    weight: Any = None,
    bias: Any = None,
    eps: float = 1e-5,
    *,
    backend: str | None = None,
) -> da.Array:
    """fastconv.layer_norm over a dask array x of any rank, normalised over its last dims (normalized_shape, an
    int or a tuple); weight and bias of normalized_shape, or None. Any chunking of the leading dims; the normalized
    dims each in one chunk. Equal to fastconv.layer_norm on the whole array."""
    fn = "fastconv.dask.layer_norm"
    check_dask(fn, x, tuple(range(1, MAX_RANK + 1)), "an array of at least one dimension")
    arrays = {"weight": weight, "bias": bias}
    dtype = _check_arrays(fn, x, arrays, None)
    p = layer_norm_params(fn, x.shape, normalized_shape, _shapes(arrays), eps, dtype)
    shape = p.affine_shape
    _need_whole(fn, x, tuple(range(x.ndim - len(shape), x.ndim)), f"the normalized dims {shape}")
    chosen = _pinned(fn, x, fc.layer_norm, shape, weight, bias, p.eps, backend=backend)
    w, b = (None if a is None else dask.delayed(a) for a in (weight, bias))
    return da.map_blocks(_layer_rows, x, shape, w, b, p.eps, chosen, dtype=x.dtype, meta=x._meta)


def _no_running_update(fn: str, x: da.Array) -> ValueError:
    axes = tuple(range(2, x.ndim))
    return ValueError(
        f"{fn}: updating 'running_mean' and 'running_var' (use_input_stats=True with running statistics) is a "
        "reduction over the whole batch that torch does in place; it is not supported on dask arrays. Normalise "
        "with running_mean=None and running_var=None, and update them as torch does with "
        f"running_mean[...] = (1 - momentum) * running_mean + momentum * x.mean(axis={axes}).mean(axis=0).compute() "
        f"and running_var likewise with x.var(axis={axes}, ddof=1); or pass use_input_stats=False to normalise by "
        "the running statistics"
    )


def instance_norm(
    x: da.Array,
    running_mean: Any = None,
    running_var: Any = None,
    weight: Any = None,
    bias: Any = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    backend: str | None = None,
) -> da.Array:
    """fastconv.instance_norm over a dask array x (N, C, *spatial); the (C,) arrays NumPy/CuPy like x's chunks,
    or None. use_input_stats: each (sample, channel) by its own statistics, any batch and channel chunking, each
    spatial dim in one chunk; running statistics are not updated (a ValueError if given, see the module
    docstring). use_input_stats=False: by running_mean and running_var, any chunking. Equal to
    fastconv.instance_norm on the whole array."""
    fn = "fastconv.dask.instance_norm"
    check_dask(fn, x, tuple(range(3, MAX_RANK + 1)), "(N, C, *spatial) with at least one spatial dim")
    arrays = {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
    dtype = _check_arrays(fn, x, arrays, 1)
    if not isinstance(use_input_stats, bool):
        raise TypeError(f"{fn}: 'use_input_stats' must be a bool, got {use_input_stats!r}")
    _real(fn, "momentum", momentum, 0.0)
    p = instance_norm_params(fn, x.shape, _shapes(arrays), eps, dtype)
    if use_input_stats:
        if running_mean is not None or running_var is not None:
            raise _no_running_update(fn, x)
        if p.M <= 1 and x.size:
            raise ValueError(f"{fn}: expected more than 1 spatial element per instance, got 'x' shape {x.shape}")
        _need_whole(fn, x, tuple(range(2, x.ndim)), "the spatial dims (an instance's statistics span them)")
    elif running_mean is None or running_var is None:
        raise ValueError(f"{fn}: use_input_stats=False needs 'running_mean' and 'running_var'")
    chosen = _pinned(fn, x, fc.instance_norm, *arrays.values(), use_input_stats, momentum, p.eps, backend=backend)
    return _map_by_channel(x, _instance_rows, dict(eps=p.eps, backend=chosen), list(arrays.values()))
