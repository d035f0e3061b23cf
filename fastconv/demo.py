"""`fastconv demo`: run one conv layer on the default backend, check it against the float64 reference and show
which algorithm ran and how fast it was. `fastconv backends` lists the backends and why any is unavailable."""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastconv as fc


def _demo(args: argparse.Namespace) -> int:
    N, C, H, W, K, R = args.shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = (rng.standard_normal((K, C, R, R)) / np.sqrt(C * R * R)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    kw = dict(padding=R // 2, backend=args.backend)
    (sel,) = fc.select(fc.conv2d, x, w, b, **kw)
    print(f"conv2d x {x.shape} * w {w.shape}, padding {R // 2}, float32 -> {sel.backend}/{sel.algo}")
    t0 = time.perf_counter()
    y = fc.conv2d(x, w, b, **kw)
    first = time.perf_counter() - t0
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        fc.conv2d(x, w, b, **kw)
        times.append(time.perf_counter() - t0)
    ref = fc.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), padding=R // 2, backend="numpy")
    err = float(np.abs(y - ref).max() / np.abs(ref).max())
    med = float(np.median(times))
    gflops = 2 * N * K * y.shape[2] * y.shape[3] * C * R * R / med / 1e9
    print(f"output {y.shape}; max relative error vs float64 reference {err:.2e}")
    print(f"first call {first * 1e3:.1f} ms; median of {args.repeat} calls {med * 1e3:.2f} ms = {gflops:.1f} GFLOP/s")
    print(f"y[0, 0, 0, :4] = {np.array2string(y[0, 0, 0, :4], precision=4)}")
    return 0 if err < 1e-4 else 1


def _backends(args: argparse.Namespace) -> int:
    for name, status in fc.backends().items():
        state = "available" if status.available else f"unavailable: {status.reason}"
        print(f"{name:10s} {status.array_kind:6s} {state}")
        if status.detail:
            print(f"{'':10s} {'':6s} {status.detail}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="run one conv layer, check it and time it")
    demo.add_argument(
        "--shape",
        type=int,
        nargs=6,
        default=(8, 64, 56, 56, 64, 3),
        metavar=("N", "C", "H", "W", "K", "R"),
        help="input N C H W, K filters of R x R",
    )
    demo.add_argument("--backend", default=None, help="backend name (default: by array kind)")
    demo.add_argument("--repeat", type=int, default=5, help="timed calls after the first")
    demo.set_defaults(run=_demo)
    sub.add_parser("backends", help="list backends: available or why not, how they run").set_defaults(run=_backends)
