"""Per-call overhead on tiny arrays, beside torch in the same process, and the front-end share of N=1 models.

    python benchmarks/overhead.py [--out bench_results/overhead.json] [--label after]

Tiny calls (the plans issue's shapes: x (1, 4, 8, 8), w (4, 4, 3, 3), float32, default threads):
  fc.conv2d, torch F.conv2d (NCHW and channels_last), fc.conv2d_backward, torch's conv backward (autograd's
  convolution_backward op), nn.Conv2d forward + backward against torch.nn.Conv2d, and the Python function calls of
  one repeated fc.conv2d (sys.setprofile). Each side is timed in bursts of back-to-back calls (the first call of a
  burst dropped), the sides alternating burst by burst; the medians of the bursts are reported.
Models: ResNet-18 and ResNet-50 forward at N=1 (eval mode, 224x224): total time, and the time spent outside the
  backend functions (validation, planning, dispatch, nn and the tape: the front end), measured by timing every
  registry function the forward calls.
Runs against any fastconv version that has the public functional API, so a checkout from before the plans can
be measured with the same script (PYTHONPATH pointing at it).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

import fastconv as fc
import fastconv.models as models
import fastconv.nn as nn
from fastconv import dispatch

BURST_S = 0.02  # each burst runs about this long


def bursts(fns: dict[str, Callable[[], object]], rounds: int = 15) -> dict[str, float]:
    """Median seconds per call of each function: bursts of back-to-back calls, first call of each dropped."""
    per = {}
    for name, fn in fns.items():  # how many calls fill a burst
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < BURST_S / 4:
            fn()
            n += 1
        per[name] = max(4 * n, 10)
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()  # dropped: it pays the other side's tail
            start = time.perf_counter()
            for _ in range(per[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / per[name])
    return {k: statistics.median(v) for k, v in samples.items()}


def python_calls(fn: Callable[[], object]) -> int:
    fn()
    count = [0]

    def profile(frame, event, arg):
        if event == "call":
            count[0] += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count[0]


def tiny_calls() -> dict[str, float]:
    import torch  # noqa: PLC0415

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    tx, tw, tg = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(gy)
    tx_cl = tx.contiguous(memory_format=torch.channels_last)
    conv_bwd = torch.ops.aten.convolution_backward
    nn.manual_seed(0)
    layer = nn.Conv2d(4, 4, 3)
    tlayer = torch.nn.Conv2d(4, 4, 3)
    txg = tx.clone().requires_grad_(True)

    def fc_layer():
        y = layer(x)
        layer.backward(np.ones_like(y))

    def torch_layer():
        y = tlayer(txg)
        y.backward(torch.ones_like(y))

    times = bursts(
        {
            "fc.conv2d": lambda: fc.conv2d(x, w),
            "torch.conv2d": lambda: torch.nn.functional.conv2d(tx, tw),
            "torch.conv2d_channels_last": lambda: torch.nn.functional.conv2d(tx_cl, tw),
            "fc.conv2d_backward": lambda: fc.conv2d_backward(gy, x, w),
            "torch.conv_backward": lambda: conv_bwd(
                tg, tx, tw, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [True, True, True]
            ),
            "fc.nn.Conv2d_fwd_bwd": fc_layer,
            "torch.nn.Conv2d_fwd_bwd": torch_layer,
        }
    )
    out = {k: v * 1e6 for k, v in times.items()}
    out["python_calls_conv2d"] = python_calls(lambda: fc.conv2d(x, w))
    out["selection_conv2d"] = str(fc.select(fc.conv2d, x, w)[0])
    return out


def serial_crossover() -> list[dict]:
    """Calls with their kernels forced parallel (SERIAL_WORK = 0) and forced serial, on a ladder of sizes: the
    evidence for numba_cpu.config.SERIAL_WORK. Work as `sized` counts it (multiply-adds, or elements)."""
    from fastconv.backends.numba_cpu import config  # noqa: PLC0415

    rng = np.random.default_rng(0)
    problems = []
    for c, hw in ((4, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32), (32, 56), (64, 56)):
        x = rng.standard_normal((1, c, hw, hw)).astype(np.float32)
        w = rng.standard_normal((c, c, 3, 3)).astype(np.float32)
        gy = rng.standard_normal((1, c, hw - 2, hw - 2)).astype(np.float32)
        macs = c * c * 9 * (hw - 2) ** 2
        problems.append((f"conv 3x3 C=K={c} {hw}x{hw}", macs, lambda x=x, w=w: fc.conv2d(x, w)))
        problems.append((f"conv bwd C=K={c} {hw}x{hw}", macs, lambda x=x, w=w, gy=gy: fc.conv2d_backward(gy, x, w)))
    for n in (1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20):
        x = rng.standard_normal((1, 4, n // 64, 16)).astype(np.float32)
        problems.append((f"relu {n} elements", n, lambda x=x: fc.relu(x)))
        problems.append((f"max_pool 3x3/2 {n} elements", n, lambda x=x: fc.max_pool2d(x, 3, 2, 1)))
    rows = []
    for name, work, fn in problems:
        times = {}
        for mode, limit in (("parallel", 0), ("serial", 1 << 62)):
            before = config.SERIAL_WORK
            config.SERIAL_WORK = limit
            try:
                times[mode] = bursts({mode: fn}, rounds=7)[mode] * 1e6
            finally:
                config.SERIAL_WORK = before
        rows.append({"case": name, "work": work, "parallel_us": times["parallel"], "serial_us": times["serial"]})
        print(f"{name:36s} work {work:>10d}  parallel {times['parallel']:9.1f} us  serial {times['serial']:9.1f} us")
    return rows


def small_crossover() -> list[dict]:
    """Every numba algorithm of the forward and both gradients on a ladder of small 3x3 calls (stride 1 and 2,
    padded and not), each through the public op with `algo=`: the evidence for selection.SMALL_WORK and
    NAIVE_WORK. Work as the rule counts it: multiply-adds times sh*sw."""
    rng = np.random.default_rng(0)
    rows = []
    for c, hw in ((4, 8), (8, 8), (8, 16), (16, 16), (16, 32)):
        x = rng.standard_normal((1, c, hw, hw)).astype(np.float32)
        w = rng.standard_normal((c, c, 3, 3)).astype(np.float32)
        for pad, st in ((1, 1), (0, 1), (1, 2)):
            p = fc.plan(fc.conv2d, x, w, padding=pad, stride=st).params
            gy = rng.standard_normal(p.y_shape).astype(np.float32)
            kw = dict(padding=pad, stride=st, backend="numba")
            calls = {}
            for op, run in (
                ("conv2d", lambda a, x=x, w=w, kw=kw: fc.conv2d(x, w, algo=a, **kw)),
                (
                    "conv2d_bwd_data",
                    lambda a, gy=gy, x=x, w=w, kw=kw: fc.conv2d_backward(
                        gy, x, w, algo=a, need_weight=False, need_bias=False, **kw
                    ),
                ),
                (
                    "conv2d_bwd_weight",
                    lambda a, gy=gy, x=x, w=w, kw=kw: fc.conv2d_backward(
                        gy, x, w, algo=a, need_input=False, need_bias=False, **kw
                    ),
                ),
            ):
                for impl in dispatch.supported(op, "numba", p):
                    calls[impl.algo] = lambda run=run, a=impl.algo: run(a)
            times = {k: v * 1e6 for k, v in bursts(calls, rounds=7).items()}
            work = p.macs * st * st
            rows.append({"case": f"C=K={c} {hw}x{hw} pad {pad} stride {st}", "work": work, "us": times})
            print(
                f"C=K={c:<3d}{hw}x{hw} pad {pad} stride {st} work {work:>9d} "
                + " ".join(f"{k} {v:.1f}" for k, v in times.items())
            )
    return rows


def model_front_end(name: str) -> dict[str, float]:
    """Forward time at N=1 and the part of it spent outside the backend functions."""
    inside = [0.0]

    def timed(fn):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                inside[0] += time.perf_counter() - start

        if hasattr(fn, "bind"):  # plans bind such functions to their params (fastconv.plan.bound): time the bound one
            run.bind = lambda p: timed(fn.bind(p))
        return run

    nn.manual_seed(0)
    model = models.get_model(name).eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    plain = bursts({"forward": lambda: model(x)}, rounds=7)["forward"]
    dispatch.algos("conv2d", "numba")  # loaded before wrapping
    originals = [(impl, impl.fn) for impls in dispatch._IMPLS.values() for impl in impls.values()]
    try:
        for impl, fn in originals:  # Impl is frozen: its function is swapped for the measurement only
            object.__setattr__(impl, "fn", timed(fn))
        if hasattr(fc, "clear_caches"):
            fc.clear_caches()  # plans hold the functions: plan again with the timed ones
        model(x)
        runs, total = 5, 0.0
        inside[0] = 0.0
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            total += time.perf_counter() - start
    finally:
        for impl, fn in originals:
            object.__setattr__(impl, "fn", fn)
        if hasattr(fc, "clear_caches"):
            fc.clear_caches()
    return {
        "forward_ms": plain * 1e3,
        "front_end_ms": (total - inside[0]) / runs * 1e3,
        "front_end_share": (total - inside[0]) / total,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="append the results to this JSON file (a list of runs)")
    ap.add_argument("--label", default="", help="a name for this run (e.g. before / after)")
    ap.add_argument("--models", nargs="*", default=["resnet18", "resnet50"])
    ap.add_argument("--crossover", action="store_true", help="also time small calls forced parallel and serial")
    ap.add_argument("--small", action="store_true", help="also time every conv algorithm on small calls")
    args = ap.parse_args()
    run = {
        "label": args.label,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": platform.node(),
        "tiny_us": tiny_calls(),
        "models_n1": {m: model_front_end(m) for m in args.models},
    }
    if args.crossover:
        run["serial_crossover"] = serial_crossover()
    if args.small:
        run["small_crossover"] = small_crossover()
    t = run["tiny_us"]
    t["ratio_conv2d"] = t["fc.conv2d"] / t["torch.conv2d"]
    t["ratio_conv2d_backward_vs_torch_forward"] = t["fc.conv2d_backward"] / t["torch.conv2d"]
    t["ratio_nn_conv2d_fwd_bwd_vs_torch_forward"] = t["fc.nn.Conv2d_fwd_bwd"] / t["torch.conv2d"]
    print(json.dumps(run, indent=1))
    if args.out:
        try:
            with open(args.out) as f:
                runs = json.load(f)
        except FileNotFoundError:
            runs = []
        runs.append(run)
        with open(args.out, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
