"""The sanitizer's kernel set: every registered algorithm of the conv ops and every memory-bound op, once each on
small awkward shapes, at the production tunables and again at SMALL_TUNABLES (many blocks, wrapping grid-stride
loops), each result checked against the float64 reference. Small on purpose: compute-sanitizer slows kernels down
10-100x. On "cuda", CuPy's memory pool is switched off so memcheck sees each buffer's own bounds (a pool hands out
slices of larger allocations, where an overrun into a neighbour passes unseen).

    python -m fastconv.gpucheck.smoke [--backend cuda|cuda-emu] [--tunables production,small] [--out smoke.json]

Exit status 0 when every check passes, 1 otherwise (gpu-check gives compute-sanitizer --error-exitcode 3).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import fastconv as fc

from .. import dispatch
from ..tolerance import tolerance

# x shape, w shape, conv kwargs: generic, grouped + strided, depthwise, pointwise, 7x7 stem, dilated
CONVS = (
    ((2, 5, 9, 7), (7, 5, 3, 3), dict(padding=1)),
    ((3, 8, 9, 9), (12, 2, 3, 3), dict(groups=4, stride=2, padding=1)),
    ((2, 6, 9, 9), (6, 1, 3, 3), dict(groups=6, padding=1)),
    ((2, 16, 7, 5), (9, 16, 1, 1), dict()),
    ((2, 3, 19, 17), (8, 3, 7, 7), dict(stride=2, padding=3)),
    ((1, 4, 13, 11), (5, 4, 3, 3), dict(padding=2, dilation=2)),
)
POOL = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
Check = tuple[str, str, Callable[[str, Any], tuple]]  # (label, tolerance family, fn(backend, move) -> outputs)


def _conv_checks(backend: str, rng: np.random.Generator) -> Iterator[Check]:
    """conv2d and both gradients, every registered algorithm on every case, float32 (float64 on the first case).
    The reference runs the same call on "numpy" with algo="auto"."""
    for i, (xs, ws, kw) in enumerate(CONVS):
        x, w = rng.standard_normal(xs), rng.standard_normal(ws)
        gy = rng.standard_normal(fc.conv2d(x, w, backend="numpy", **kw).shape)
        for dtype in (np.float32, np.float64) if i == 0 else (np.float32,):
            tag = f"{xs}x{ws} {kw} {np.dtype(dtype).name}"
            x_, w_, gy_ = (v.astype(dtype) for v in (x, w, gy))
            for algo in dispatch.algos("conv2d", backend):

                def fwd(b, m, algo=algo, x=x_, w=w_, kw=kw):
                    return (fc.conv2d(m(x), m(w), backend=b, algo="auto" if b == "numpy" else algo, **kw),)

                yield f"{algo} {tag}", "conv", fwd
            for op, need in (("conv2d_bwd_data", (True, False)), ("conv2d_bwd_weight", (False, True))):
                flags = dict(need_input=need[0], need_weight=need[1], need_bias=False, **kw)
                for algo in dispatch.algos(op, backend):

                    def bwd(b, m, algo=algo, x=x_, w=w_, gy=gy_, flags=flags):
                        a = "auto" if b == "numpy" else algo
                        grads = fc.conv2d_backward(m(gy), m(x), m(w), backend=b, algo=a, **flags)
                        return tuple(g for g in grads if g is not None)

                    yield f"{algo} {tag}", "conv", bwd


def _other_checks(rng: np.random.Generator) -> Iterator[Check]:
    """Pooling, batch norm, ReLU, linear and the row norms, forward and backward, float32."""
    x = rng.standard_normal((2, 5, 10, 9)).astype(np.float32)
    gy_pool = rng.standard_normal(fc.max_pool2d(x, **POOL, backend="numpy").shape).astype(np.float32)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    c = x.shape[1]
    gamma, beta = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    xl, wl = rng.standard_normal((3, 33)).astype(np.float32), rng.standard_normal((17, 33)).astype(np.float32)
    gl = rng.standard_normal((3, 17)).astype(np.float32)
    yield "max_pool2d + indices", "pool", lambda b, m: fc.max_pool2d(m(x), **POOL, return_indices=True, backend=b)
    yield "max_pool2d_backward", "pool", lambda b, m: (fc.max_pool2d_backward(m(gy_pool), m(x), **POOL, backend=b),)
    yield "avg_pool2d", "pool", lambda b, m: (fc.avg_pool2d(m(x), **POOL, count_include_pad=False, backend=b),)
    yield (
        "avg_pool2d_backward",
        "pool",
        lambda b, m: (fc.avg_pool2d_backward(m(gy_pool), m(x), **POOL, count_include_pad=False, backend=b),),
    )
    yield "adaptive_avg_pool2d", "pool", lambda b, m: (fc.adaptive_avg_pool2d(m(x), 3, backend=b),)
    yield "batch_norm train", "bn", lambda b, m: (fc.batch_norm(m(x), None, None, m(gamma), m(beta), True, backend=b),)
    yield (
        "batch_norm_backward train",
        "bn",
        lambda b, m: fc.batch_norm_backward(m(gy), m(x), None, None, m(gamma), True, backend=b),
    )
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    yield "batch_norm eval", "bn", lambda b, m: (fc.batch_norm(m(x), m(rm), m(rv), m(gamma), m(beta), backend=b),)
    yield (
        "relu + backward",
        "eltwise",
        lambda b, m: (
            fc.relu(m(x), backend=b),
            fc.relu_backward(m(gy), fc.relu(m(x), backend=b), backend=b),
        ),
    )
    yield (
        "linear + backward",
        "linear",
        lambda b, m: (
            fc.linear(m(xl), m(wl), backend=b),
            *fc.linear_backward(m(gl), m(xl), m(wl), backend=b)[:2],
        ),
    )
    yield (
        "group_norm + backward",
        "bn",
        lambda b, m: (
            fc.group_norm(m(x), 5, m(gamma), m(beta), backend=b),
            *fc.group_norm_backward(m(gy), m(x), 5, m(gamma), backend=b),
        ),
    )


def _host(a: Any) -> np.ndarray:
    return np.asarray(a.get() if hasattr(a, "get") else a)


def relative_error(got: tuple, ref: tuple) -> float:
    """The worst max |got - ref| / max |ref| over the outputs (inf on a shape or NaN mismatch)."""
    worst = 0.0
    for g, r in zip(got, ref, strict=True):
        g, r = _host(g).astype(np.float64), _host(r).astype(np.float64)
        if g.shape != r.shape or not np.array_equal(np.isnan(g), np.isnan(r)):
            return float("inf")
        ok = np.isfinite(r)
        if not np.array_equal(g[~ok], r[~ok], equal_nan=True):
            return float("inf")
        scale = max(float(np.abs(r[ok]).max(initial=0.0)), 1e-30)
        worst = max(worst, float(np.abs(g[ok] - r[ok]).max(initial=0.0)) / scale)
    return worst


def run_checks(backend: str, seed: int = 0) -> dict[str, Any]:
    """Every check once on `backend` with the launcher's current tunables: counts and the failures."""
    rng = np.random.default_rng(seed)
    move = _mover(backend)
    done, unsupported, failures = 0, 0, []
    for label, family, fn in [*_conv_checks(backend, rng), *_other_checks(rng)]:
        try:
            got = fn(backend, move)
        except ValueError as exc:
            if "does not support" in str(exc):  # a named algorithm and a shape it does not take
                unsupported += 1
            else:
                failures.append(f"{label}: ValueError: {exc}"[:500])
            continue
        except Exception as exc:  # a launch or compile error: recorded, the set goes on
            failures.append(f"{label}: {type(exc).__name__}: {exc}"[:500])
            continue
        ref = fn("numpy", lambda a: a.astype(np.float64))
        dtype = _host(got[0]).dtype
        err, tol = relative_error(got, ref), tolerance(family, dtype if dtype.kind == "f" else np.float32)
        done += 1
        if not err <= tol:
            failures.append(f"{label}: max relative error {err:.3g} > {tol:.3g}")
    return {"checks": done, "unsupported": unsupported, "failures": failures}


def _mover(backend: str) -> Callable[[np.ndarray], Any]:
    if dispatch.backend_status(backend).array_kind != "cupy":
        return lambda a: a
    import cupy  # noqa: PLC0415

    cupy.cuda.set_allocator(None)  # every buffer its own cudaMalloc, so memcheck knows its bounds
    return cupy.asarray


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastconv.gpucheck.smoke", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="cuda", choices=("cuda", "cuda-emu"))
    parser.add_argument("--tunables", default="production,small", help="comma-separated: production, small")
    parser.add_argument("--out", type=Path, help="write the counts and failures as JSON")
    args = parser.parse_args(argv)
    status = fc.backends()[args.backend]
    if not status.available:
        print(f"smoke: backend {args.backend} is not available: {status.reason}", file=sys.stderr)
        return 2
    from ..backends.cuda.launch import SMALL_TUNABLES  # noqa: PLC0415

    launcher = importlib.import_module(
        {"cuda": "fastconv.backends.cuda", "cuda-emu": "fastconv.backends.cuda.emu"}[args.backend]
    ).LAUNCHER
    report: dict[str, Any] = {"backend": args.backend, "runs": {}}
    for mode in [t.strip() for t in args.tunables.split(",") if t.strip()]:
        start = time.perf_counter()
        with launcher.override({"small": SMALL_TUNABLES, "production": {}}[mode]):
            result = run_checks(args.backend)
        result["seconds"] = round(time.perf_counter() - start, 2)
        report["runs"][mode] = result
        print(
            f"smoke {args.backend} at {mode} tunables: {result['checks']} checks, {len(result['failures'])} failed, "
            f"{result['unsupported']} unsupported shapes skipped, {result['seconds']} s"
        )
        for line in result["failures"]:
            print(f"  FAILED {line}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 1 if any(r["failures"] for r in report["runs"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
