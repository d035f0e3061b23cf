"""`fastconv warmup`: compile the numba backend's kernels for this machine ahead of their first use.

Numba compiles a kernel on its first call for each argument type and keeps the machine code in its on-disk cache
(numba_cpu/cache.py says how it is keyed), so the first call of each op family in a fresh environment pays
seconds of compilation and later processes load it in a fraction of a second. `fastconv warmup` makes those first
calls now, on small arrays, for the algorithms `auto` picks on common layers, each dtype asked for (one compiled
kernel serves serial and parallel calls alike: numba_cpu/launch.py). Run it in a Docker build or after creating an
environment; it is safe to run again (what is cached loads and is checked, nothing recompiles).

    fastconv warmup [--ops conv,pool,bn,relu,linear] [--dtypes float32,float64]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import fastconv as fc

OPS = ("conv", "pool", "bn", "relu", "linear")

# conv layers whose auto choices cover every numba conv algorithm family: 3x3 stride 1 (winograd), 1x1 (pointwise),
# 3x3 stride 2 and the 7x7 stem (rows), depthwise, grouped, dilated; (C, H, K, R, kwargs)
_CONVS = (
    (8, 10, 8, 3, dict(padding=1)),
    (16, 6, 8, 1, {}),
    (8, 11, 8, 3, dict(stride=2, padding=1)),
    (3, 17, 8, 7, dict(stride=2, padding=3)),
    (8, 9, 8, 3, dict(groups=8, padding=1)),
    (8, 9, 8, 3, dict(groups=2, padding=1)),
    (8, 12, 8, 3, dict(dilation=2, padding=2)),
)


def _calls(op: str, dtype: np.dtype) -> list[tuple[str, Callable[[], object]]]:
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    if op == "conv":
        calls = []
        for c, h, k, s, kw in _CONVS:
            x, w = r(2, c, h, h), r(k, c // kw.get("groups", 1), s, s)
            y = fc.conv2d(x, w, backend="numpy", **kw)
            g = r(*y.shape)
            label = f"conv {s}x{s} {kw}"
            calls.append((label, lambda x=x, w=w, kw=kw: fc.conv2d(x, w, r(w.shape[0]), **kw)))
            calls.append((label + " backward", lambda x=x, w=w, g=g, kw=kw: fc.conv2d_backward(g, x, w, **kw)))
        x_cl = np.ascontiguousarray(r(2, 10, 10, 8)).transpose(0, 3, 1, 2)  # channels_last: the in-place kernel
        calls.append(("conv channels_last", lambda: fc.conv2d(x_cl, r(8, 8, 3, 3), padding=1)))
        return calls
    x = r(2, 4, 13, 11)
    if op == "pool":
        return [
            ("max_pool2d", lambda: fc.max_pool2d_backward(r(2, 4, 7, 6), x, 3, 2, 1)),
            ("max_pool2d indices", lambda: fc.max_pool2d(x, 3, 2, 1, return_indices=True)),
            ("avg_pool2d", lambda: fc.avg_pool2d_backward(r(2, 4, 7, 6), x, 3, 2, 1)),
            ("adaptive_avg_pool2d", lambda: fc.adaptive_avg_pool2d_backward(r(2, 4, 3, 3), x, 3)),
            ("avg_pool2d forward", lambda: (fc.avg_pool2d(x, 3, 2, 1), fc.adaptive_avg_pool2d(x, 3))),
            ("global_avg_pool2d", lambda: (fc.global_avg_pool2d(x), fc.global_avg_pool2d_backward(r(2, 4, 1, 1), x))),
        ]
    if op == "bn":
        w, rm, rv = r(4), r(4), np.abs(r(4)) + 1
        return [
            ("batch_norm train", lambda: fc.batch_norm_backward(x, x, None, None, w, True, 1e-5)),
            ("batch_norm train forward", lambda: fc.batch_norm(x, None, None, w, w, training=True)),
            (
                "batch_norm eval",
                lambda: (fc.batch_norm(x, rm, rv, w, w), fc.batch_norm_backward(x, x, rm, rv, w, False)),
            ),
        ]
    if op == "relu":
        return [("relu", lambda: fc.relu_backward(x, fc.relu(x)))]
    xs, xb, w = r(3, 20), r(200, 20), r(7, 20)
    return [
        ("linear small batch", lambda: fc.linear(xs, w, r(7))),
        ("linear", lambda: (fc.linear(xb, w, r(7)), fc.linear_backward(r(200, 7), xb, w))),
    ]


def warmup(ops: tuple[str, ...] = OPS, dtypes: tuple[str, ...] = ("float32",), progress: bool = True) -> int:
    """Run every warm-up call; returns how many calls ran."""
    from .bench.timing import Progress  # noqa: PLC0415

    work = [(np.dtype(d), label, fn) for d in dtypes for op in ops for label, fn in _calls(op, np.dtype(d))]
    bar = Progress(len(work), enabled=None if progress else False)
    try:
        for dtype, label, fn in work:
            bar.step(f"{label} {dtype}")
            fn()
    finally:
        bar.close()
    return len(work)


def _run(args: argparse.Namespace) -> int:
    ops = tuple(o.strip() for o in args.ops.split(","))
    dtypes = tuple(d.strip() for d in args.dtypes.split(","))
    bad = [o for o in ops if o not in OPS] + [d for d in dtypes if d not in ("float32", "float64")]
    if bad:
        raise SystemExit(f"fastconv warmup: unknown {', '.join(bad)} (ops: {', '.join(OPS)}; dtypes: float32, float64)")
    start = time.perf_counter()
    n = warmup(ops, dtypes)
    print(
        f"fastconv warmup: {n} calls compiled or loaded from the cache in {time.perf_counter() - start:.1f} s "
        f"({fc.backends()['numba'].detail})"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("warmup", help="compile the numba kernels for this machine ahead of their first use")
    parser.add_argument("--ops", default=",".join(OPS), help=f"comma-separated, of {', '.join(OPS)} (default all)")
    parser.add_argument("--dtypes", default="float32", help="comma-separated: float32, float64 (default float32)")
    parser.set_defaults(run=_run)
