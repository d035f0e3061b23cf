"""Checks any (backend, algo) against the float64 NumPy reference, on fresh random data, with outputs poisoned.

Every backend's test file parametrises these over the cases in cases.py and the dtypes it supports. Each check
also asserts that the inputs come back unmodified and that the result has the input's dtype and array kind.
`to_device`/`from_device` move data for backends working on CuPy arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from cases import ConvCase, LinearCase, NormCase, PoolCase
from helpers import assert_close, rand

import fastconv as fc
from fastconv import dispatch
from fastconv.arrays import is_channels_last
from fastconv.params import ConvParams, conv_params, conv_transpose_params

F64 = np.float64


def _ident(a):
    return a


def _same_inputs(before: list[np.ndarray], after: list, from_device: Callable) -> None:
    for i, (b, a) in enumerate(zip(before, after)):
        if b is not None:
            assert np.array_equal(b, from_device(a), equal_nan=True), f"input {i} was modified"


def _conv_fns(case: ConvCase):
    return (fc.conv2d, fc.conv2d_backward) if len(case.x) == 4 else (fc.conv1d, fc.conv1d_backward)


def channels_last(a: np.ndarray) -> np.ndarray:
    """A copy of the 4-D `a` in channels_last order: the (0, 3, 1, 2) view of a new (N, H, W, C) buffer."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def kernel_params(case: ConvCase, layout: str = "nchw") -> ConvParams:
    """The zero-padded ConvParams a backend's conv receives for this case with x in `layout` (the registry's
    view of it)."""
    kw = dict(stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros") | case.kw
    cl = layout == "channels_last" and len(case.x) == 4 and is_channels_last(channels_last(np.empty(case.x)))
    args = (kw["stride"], kw["padding"], kw["dilation"], kw["groups"], kw["padding_mode"], np.float32, cl)
    p = conv_params("conv", case.x, case.w, None, *args)
    return p.padded() if p.padding_mode != "zeros" else p


def layout_of(op: str, backend: str, algo: str) -> str:
    """The x layout the tests give `algo`: channels_last for an implementation whose traits say it reads it."""
    traits = dispatch.implementation(op, backend, algo).traits
    return "channels_last" if traits is not None and traits.channels_last else "nchw"


def registered_cases(op: str, backend: str, cases: list[ConvCase], exclude: tuple[str, ...] = ()) -> list:
    """(algo, case) params for every registered algorithm of (op, backend) and every case its `supports` takes:
    a new algorithm is tested on all the shapes it accepts without being listed anywhere."""
    return [
        pytest.param(a, c, id=f"{a}-{c.id}")
        for a in dispatch.algos(op, backend)
        if a not in exclude
        for c in cases
        if dispatch.implementation(op, backend, a).supports(kernel_params(c, layout_of(op, backend, a)))
    ]


def check_conv_forward(
    backend: str,
    algo: str,
    case: ConvCase,
    dtype,
    rng,
    non_contiguous: bool = False,
    to_device: Callable = _ident,
    from_device: Callable = _ident,
    layout: str = "nchw",
) -> None:
    """layout 'channels_last' passes a 4-D x in that order (fastconv.arrays.is_channels_last)."""
    fwd, _ = _conv_fns(case)
    x = rand(rng, case.x, dtype)
    if non_contiguous:  # a strided view of a larger array, in non-native byte order
        big = rand(rng, case.x[:-1] + (2 * case.x[-1],), dtype).astype(np.dtype(dtype).newbyteorder())
        x = big[..., ::2]
    if layout == "channels_last":
        x = channels_last(x)
    w = rand(rng, case.w, dtype)
    b = rand(rng, (case.w[0],), dtype) if case.bias else None
    kept = [a if a is None else a.copy() for a in (x, w, b)]
    dx, dw, db = (None if a is None else to_device(a) for a in (x, w, b))
    y = fwd(dx, dw, db, backend=backend, algo=algo, **case.kw)
    ref = fwd(x.astype(F64), w.astype(F64), None if b is None else b.astype(F64), backend="numpy", **case.kw)
    y = from_device(y)
    assert y.dtype == dtype
    assert_close(y, ref, "conv", dtype, f"{fwd.__name__}[{backend}/{algo}] {case.id}")
    _same_inputs(kept, [dx, dw, db], from_device)


def _check_backward(
    bwd: Callable,
    family: str,
    what: str,
    gy,
    x,
    w,
    kw: dict,
    backend: str,
    algo: str,
    to_device: Callable,
    from_device: Callable,
    need: tuple[bool, bool, bool],
) -> None:
    """bwd(gy, x, w) on the backend against the float64 reference: the gradients asked for, None for the others."""
    kept = [gy.copy(), x.copy(), w.copy()]
    dgy, dx, dw = to_device(gy), to_device(x), to_device(w)
    flags = dict(need_input=need[0], need_weight=need[1], need_bias=need[2])
    got = bwd(dgy, dx, dw, backend=backend, algo=algo, **flags, **kw)
    ref = bwd(gy.astype(F64), x.astype(F64), w.astype(F64), backend="numpy", **kw)
    for name, g, r, wanted in zip(("grad_x", "grad_weight", "grad_bias"), got, ref, need):
        if not wanted:
            assert g is None, f"{name} was not asked for but returned"
            continue
        g = from_device(g)
        assert g.dtype == gy.dtype
        assert_close(g, r, family, gy.dtype, f"{bwd.__name__}[{backend}/{algo}] {what} {name}")
    _same_inputs(kept, [dgy, dx, dw], from_device)


def check_conv_backward(
    backend: str,
    algo: str,
    case: ConvCase,
    dtype,
    rng,
    to_device: Callable = _ident,
    from_device: Callable = _ident,
    need: tuple[bool, bool, bool] = (True, True, True),
) -> None:
    fwd, bwd = _conv_fns(case)
    x, w = rand(rng, case.x, dtype), rand(rng, case.w, dtype)
    gy = rand(rng, fwd(x.astype(F64), w.astype(F64), backend="numpy", **case.kw).shape, dtype)
    _check_backward(bwd, "conv", case.id, gy, x, w, case.kw, backend, algo, to_device, from_device, need)


def check_max_pool(backend: str, case: PoolCase, dtype, rng, to_device=_ident, from_device=_ident) -> None:
    x = rand(rng, case.x, dtype)
    kept = x.copy()
    dx = to_device(x)
    y, idx = fc.max_pool2d(dx, **case.kw, return_indices=True, backend=backend)
    y_ref, idx_ref = fc.max_pool2d(x.astype(F64), **case.kw, return_indices=True, backend="numpy")
    assert_close(from_device(y), y_ref, "pool", dtype, f"max_pool2d[{backend}] {case.id}")
    idx = from_device(idx)
    assert idx.dtype == np.int64
    assert np.array_equal(idx, idx_ref), f"max_pool2d[{backend}] {case.id}: indices differ"
    gy = rand(rng, y_ref.shape, dtype)
    gx = fc.max_pool2d_backward(to_device(gy), dx, **case.kw, backend=backend)
    gx_ref = fc.max_pool2d_backward(gy.astype(F64), x.astype(F64), **case.kw, backend="numpy")
    assert_close(from_device(gx), gx_ref, "pool", dtype, f"max_pool2d_backward[{backend}] {case.id}")
    _same_inputs([kept], [dx], from_device)


def check_avg_pool(backend: str, case: PoolCase, dtype, rng, to_device=_ident, from_device=_ident) -> None:
    x = rand(rng, case.x, dtype)
    kept = x.copy()
    dx = to_device(x)
    y = fc.avg_pool2d(dx, **case.kw, backend=backend)
    y_ref = fc.avg_pool2d(x.astype(F64), **case.kw, backend="numpy")
    assert_close(from_device(y), y_ref, "pool", dtype, f"avg_pool2d[{backend}] {case.id}")
    gy = rand(rng, y_ref.shape, dtype)
    gx = fc.avg_pool2d_backward(to_device(gy), dx, **case.kw, backend=backend)
    gx_ref = fc.avg_pool2d_backward(gy.astype(F64), x.astype(F64), **case.kw, backend="numpy")
    assert_close(from_device(gx), gx_ref, "pool", dtype, f"avg_pool2d_backward[{backend}] {case.id}")
    _same_inputs([kept], [dx], from_device)


def check_adaptive_pool(backend: str, case: PoolCase, dtype, rng, to_device=_ident, from_device=_ident) -> None:
    x = rand(rng, case.x, dtype)
    dx = to_device(x)
    for fwd, bwd, kw in (
        (fc.adaptive_avg_pool2d, fc.adaptive_avg_pool2d_backward, case.kw),
        (fc.global_avg_pool2d, fc.global_avg_pool2d_backward, {}),
    ):
        y = fwd(dx, **kw, backend=backend)
        y_ref = fwd(x.astype(F64), **kw, backend="numpy")
        assert_close(from_device(y), y_ref, "pool", dtype, f"{fwd.__name__}[{backend}] {case.id}")
        gy = rand(rng, y_ref.shape, dtype)
        gx = bwd(to_device(gy), dx, **kw, backend=backend)
        gx_ref = bwd(gy.astype(F64), x.astype(F64), **kw, backend="numpy")
        assert_close(from_device(gx), gx_ref, "pool", dtype, f"{bwd.__name__}[{backend}] {case.id}")


def check_batch_norm(
    backend: str,
    shape: tuple,
    training: bool,
    dtype,
    rng,
    to_device=_ident,
    from_device=_ident,
    layout: str = "nchw",
    offset: float = 1.0,
) -> None:
    """x = 3 * noise + offset in NCHW or, layout="channels_last", channels_last order (x and grad_out)."""
    C = shape[1]
    put = channels_last if layout == "channels_last" else _ident
    x = put(rand(rng, shape, dtype) * 3 + offset)
    w, b = rand(rng, (C,), dtype), rand(rng, (C,), dtype)
    rm, rv = rand(rng, (C,), dtype), np.abs(rand(rng, (C,), dtype)) + 0.5
    kept = [a.copy() for a in (x, w, b)]
    dx, dw, db, drm, drv = (to_device(a) for a in (x, w, b, rm.copy(), rv.copy()))
    rm64, rv64 = rm.astype(F64), rv.astype(F64)
    y = fc.batch_norm(dx, drm, drv, dw, db, training=training, momentum=0.3, eps=1e-3, backend=backend)
    y_ref = fc.batch_norm(
        x.astype(F64),
        rm64,
        rv64,
        w.astype(F64),
        b.astype(F64),
        training=training,
        momentum=0.3,
        eps=1e-3,
        backend="numpy",
    )
    what = f"batch_norm[{backend}] {shape} {layout} training={training}"
    assert_close(from_device(y), y_ref, "bn", dtype, what)
    assert_close(from_device(drm), rm64, "bn", dtype, what + " running_mean")
    assert_close(from_device(drv), rv64, "bn", dtype, what + " running_var")
    gy = put(rand(rng, shape, dtype))
    got = fc.batch_norm_backward(to_device(gy), dx, drm, drv, dw, training, eps=1e-3, backend=backend)
    ref = fc.batch_norm_backward(
        gy.astype(F64), x.astype(F64), rm64, rv64, w.astype(F64), training, eps=1e-3, backend="numpy"
    )
    for name, g, r in zip(("grad_x", "grad_weight", "grad_bias"), got, ref):
        assert_close(from_device(g), r, "bn", dtype, f"{what} {name}")
    _same_inputs(kept, [dx, dw, db], from_device)


def check_relu(backend: str, shape: tuple, dtype, rng, to_device=_ident, from_device=_ident) -> None:
    x = rand(rng, shape, dtype)
    if x.size:
        x.flat[0] = np.nan
    dx = to_device(x)
    y = fc.relu(dx, backend=backend)
    y_ref = fc.relu(x.astype(F64), backend="numpy")
    assert_close(from_device(y), y_ref, "eltwise", dtype, f"relu[{backend}] {shape}")
    gy = rand(rng, shape, dtype)
    gx = fc.relu_backward(to_device(gy), y, backend=backend)
    gx_ref = fc.relu_backward(gy.astype(F64), y_ref, backend="numpy")
    assert_close(from_device(gx), gx_ref, "eltwise", dtype, f"relu_backward[{backend}] {shape}")


def check_linear_forward(
    backend: str,
    algo: str,
    case: LinearCase,
    dtype,
    rng,
    non_contiguous: bool = False,
    to_device: Callable = _ident,
    from_device: Callable = _ident,
) -> None:
    x = rand(rng, case.x, dtype)
    if non_contiguous:  # a strided view of a larger array, in non-native byte order
        x = rand(rng, case.x[:-1] + (2 * case.x[-1],), dtype).astype(np.dtype(dtype).newbyteorder())[..., ::2]
    w = rand(rng, case.w, dtype)
    b = rand(rng, (case.K,), dtype) if case.bias else None
    kept = [a if a is None else a.copy() for a in (x, w, b)]
    dx, dw, db = (None if a is None else to_device(a) for a in (x, w, b))
    y = from_device(fc.linear(dx, dw, db, backend=backend, algo=algo))
    ref = fc.linear(x.astype(F64), w.astype(F64), None if b is None else b.astype(F64), backend="numpy")
    assert y.dtype == dtype
    assert_close(y, ref, "linear", dtype, f"linear[{backend}/{algo}] {case.id}")
    _same_inputs(kept, [dx, dw, db], from_device)


def check_linear_backward(
    backend: str,
    algo: str,
    case: LinearCase,
    dtype,
    rng,
    to_device: Callable = _ident,
    from_device: Callable = _ident,
    need: tuple[bool, bool, bool] = (True, True, True),
) -> None:
    gy, x, w = rand(rng, case.y, dtype), rand(rng, case.x, dtype), rand(rng, case.w, dtype)
    _check_backward(fc.linear_backward, "linear", case.id, gy, x, w, {}, backend, algo, to_device, from_device, need)


def _norm_call(case: NormCase, x, w, b, backend, **kw):
    if case.kind == "group":
        return fc.group_norm(x, case.arg, w, b, eps=1e-3, backend=backend)
    if case.kind == "layer":
        return fc.layer_norm(x, case.arg, w, b, eps=1e-3, backend=backend)
    return fc.instance_norm(x, kw.get("rm"), kw.get("rv"), w, b, eps=1e-3, momentum=0.3, backend=backend)


def _norm_backward(case: NormCase, gy, x, w, backend):
    if case.kind == "group":
        return fc.group_norm_backward(gy, x, case.arg, w, eps=1e-3, backend=backend)
    if case.kind == "layer":
        return fc.layer_norm_backward(gy, x, case.arg, w, eps=1e-3, backend=backend)
    return fc.instance_norm_backward(gy, x, w, eps=1e-3, backend=backend)


def check_norm(backend: str, case: NormCase, dtype, rng, to_device=_ident, from_device=_ident) -> None:
    """group_norm / layer_norm / instance_norm and their gradients against the reference; instance norm also
    updates running statistics (checked against the reference's update) and runs on them (use_input_stats=False)."""
    x = rand(rng, case.x, dtype) * 3 + 1  # off zero: the statistics must not lose precision to the mean
    A = (case.x[1],) if case.kind != "layer" else ((case.arg,) if isinstance(case.arg, int) else case.arg)
    w, b = (rand(rng, A, dtype), rand(rng, A, dtype)) if case.affine else (None, None)
    kept = [a.copy() for a in (x, w, b) if a is not None]
    dx, dw, db = (None if a is None else to_device(a) for a in (x, w, b))
    f64 = lambda a: None if a is None else a.astype(F64)  # noqa: E731
    extra, extra_ref = {}, {}
    if case.kind == "instance":
        rm, rv = rand(rng, A, dtype), np.abs(rand(rng, A, dtype)) + 0.5
        extra = {"rm": to_device(rm.copy()), "rv": to_device(rv.copy())}
        extra_ref = {"rm": rm.astype(F64), "rv": rv.astype(F64)}
    y = _norm_call(case, dx, dw, db, backend, **extra)
    y_ref = _norm_call(case, x.astype(F64), f64(w), f64(b), "numpy", **extra_ref)
    assert_close(from_device(y), y_ref, "bn", dtype, f"{case.kind}_norm[{backend}] {case.id}")
    if y.dtype != x.dtype:
        raise AssertionError(f"{case.kind}_norm[{backend}] returned {y.dtype} for {x.dtype}")
    for name in extra:
        assert_close(from_device(extra[name]), extra_ref[name], "bn", dtype, f"instance_norm {name} update")
    if case.kind == "instance":
        y = fc.instance_norm(dx, extra["rm"], extra["rv"], dw, db, use_input_stats=False, eps=1e-3, backend=backend)
        y_ref = fc.instance_norm(
            x.astype(F64),
            extra_ref["rm"],
            extra_ref["rv"],
            f64(w),
            f64(b),
            use_input_stats=False,
            eps=1e-3,
            backend="numpy",
        )
        assert_close(from_device(y), y_ref, "bn", dtype, f"instance_norm running stats[{backend}] {case.id}")
    gy = rand(rng, case.x, dtype)
    got = _norm_backward(case, to_device(gy), dx, dw, backend)
    ref = _norm_backward(case, gy.astype(F64), x.astype(F64), f64(w), "numpy")
    for name, g, r in zip(("grad_x", "grad_weight", "grad_bias"), got, ref):
        assert (g is None) == (r is None) == (name != "grad_x" and w is None), name
        if r is not None:
            assert_close(from_device(g), r, "bn", dtype, f"{case.kind}_norm_backward[{backend}] {name} {case.id}")
    _same_inputs(kept, [a for a in (dx, dw, db) if a is not None], from_device)


def check_conv_transpose(
    backend: str, algo: str, case: ConvCase, dtype, rng, to_device: Callable = _ident, from_device: Callable = _ident
) -> None:
    """conv_transpose2d and its gradients against the float64 reference; `algo` names a conv2d_bwd_data
    implementation for the forward (the backward runs "auto")."""
    x, w = rand(rng, case.x, dtype), rand(rng, case.w, dtype)
    b = rand(rng, (case.w[1] * case.kw.get("groups", 1),), dtype) if case.bias else None
    kept = [a if a is None else a.copy() for a in (x, w, b)]
    dx, dw, db = (None if a is None else to_device(a) for a in (x, w, b))
    y = fc.conv_transpose2d(dx, dw, db, backend=backend, algo=algo, **case.kw)
    ref = fc.conv_transpose2d(
        x.astype(F64), w.astype(F64), None if b is None else b.astype(F64), backend="numpy", **case.kw
    )
    y = from_device(y)
    assert y.dtype == dtype
    assert_close(y, ref, "conv", dtype, f"conv_transpose2d[{backend}/{algo}] {case.id}")
    _same_inputs(kept, [dx, dw, db], from_device)
    gy = rand(rng, ref.shape, dtype)
    for need in ((True, True, True), (False, True, False), (True, False, False)):
        _check_backward(
            fc.conv_transpose2d_backward,
            "conv",
            case.id,
            gy,
            x,
            w,
            case.kw,
            backend,
            "auto",
            to_device,
            from_device,
            need,
        )


def transpose_algos(backend: str, cases: list[ConvCase]) -> list:
    """(algo, case) params: "auto" and every conv2d_bwd_data algorithm of the backend that takes the case's
    equivalent convolution."""
    out = []
    for c in cases:
        kw = dict(stride=1, padding=0, output_padding=0, groups=1, dilation=1) | c.kw
        args = (kw["stride"], kw["padding"], kw["output_padding"], kw["groups"], kw["dilation"], np.float32)
        q = conv_transpose_params("test", c.x, c.w, None, *args).conv
        algos = ["auto"] + [
            a
            for a in dispatch.algos("conv2d_bwd_data", backend)
            if dispatch.implementation("conv2d_bwd_data", backend, a).supports(q)
        ]
        out += [pytest.param(a, c, id=f"{a}-{c.id}") for a in algos]
    return out
