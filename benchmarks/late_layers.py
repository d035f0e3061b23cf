"""Burst timing of the layers issue 16 item 1 names as fastconv's worst against torch (1x1, 1x1 stride 2, the 7x7
and 14x14 layers of ResNet-50 with many channels): numba algorithms against torch NCHW and torch channels_last,
all in one process.

    python benchmarks/late_layers.py [--threads 2] [--rounds 7] [--cases b,s2,late] [--algos all] [--json out.json]
    python benchmarks/late_layers.py --report run1.json [run2.json ...]     # markdown tables

Each implementation is checked against the float64 reference first. Then, per round, every implementation in turn
(the order rotating each round) sleeps PAUSE seconds and runs a burst of back-to-back calls, each timed; the first
call of each burst is dropped (it pays for waking the other core and the previous turn's spin-waiting pools). A cell
is the median of all kept calls. GFLOP/s count 2*N*K*P*Q*C*R*S. `numba/<algo>` gets an NCHW x, `numba-cl/<algo>`
the channels_last x (an (N, H, W, C) buffer viewed as NCHW), as torch channels_last does.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numba
import numpy as np

import fastconv as fc
from fastconv import dispatch

try:
    import torch
except ImportError:  # torch is the baseline; without it only the numba algorithms are timed
    torch = None

PAUSE = 0.02
BURST_S = 0.05

# name: (N, C, H, W, K, R, S, kwargs)
CASES = {
    "b": (8, 256, 56, 56, 64, 1, 1, {}),
    "s2": (8, 512, 28, 28, 1024, 1, 1, dict(stride=2)),
    "late": (8, 512, 7, 7, 512, 3, 3, dict(padding=1)),
    "r14_3x3": (8, 256, 14, 14, 256, 3, 3, dict(padding=1)),
    "r14_1x1_in": (8, 1024, 14, 14, 256, 1, 1, {}),
    "r14_1x1_out": (8, 256, 14, 14, 1024, 1, 1, {}),
    "r14_s2_3x3": (8, 256, 28, 28, 256, 3, 3, dict(stride=2, padding=1)),
    "r14_1x1_s2": (8, 1024, 14, 14, 2048, 1, 1, dict(stride=2)),
    "r7_1x1_in": (8, 2048, 7, 7, 512, 1, 1, {}),
    "r7_1x1_out": (8, 512, 7, 7, 2048, 1, 1, {}),
}


def channels_last(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def implementations(case: tuple, algos: list[str], cl_algos: list[str]) -> tuple[dict, float]:
    N, C, H, W, K, R, S, kw = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = (rng.standard_normal((K, C, R, S)) / np.sqrt(C * R * S)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    ref = fc.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), backend="numpy", **kw)
    flops = 2.0 * ref.size * C * R * S
    x_cl = channels_last(x)
    fns = {}
    if "all" in algos:  # every NCHW float32 algorithm but the naive and tiny-call ones
        skip = {"conv2d_fwd_v1_naive", "conv2d_fwd_v13_unstaged", "conv2d_fwd_v9_nhwc", "conv2d_fwd_v10_amx"}
        algos = ["auto"] + [a for a in dispatch.algos("conv2d", "numba") if a not in skip]
    for algo in algos:
        fns[f"numba/{algo}"] = lambda a=algo: fc.conv2d(x, w, b, algo=a, **kw)
    for algo in cl_algos:
        fns[f"numba-cl/{algo}"] = lambda a=algo: fc.conv2d(x_cl, w, b, algo=a, **kw)
    if torch is not None:
        for layout, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
            tx, tw = (torch.from_numpy(a).contiguous(memory_format=fmt) for a in (x, w))
            tb = torch.from_numpy(b)
            fns[f"torch/{layout}"] = lambda tx=tx, tw=tw, tb=tb: torch.nn.functional.conv2d(tx, tw, tb, **kw)
    for name, fn in list(fns.items()):
        try:
            got = np.asarray(fn(), dtype=np.float64)
        except ValueError as exc:  # the algorithm does not take this case
            print(f"  skip {name}: {str(exc)[:80]}")
            del fns[name]
            continue
        err = np.abs(got - ref).max() / np.abs(ref).max()
        assert err < 2e-4, f"{name}: relative error {err:.3g}"
    return fns, flops


def _empty(case: tuple) -> tuple[np.ndarray, np.ndarray]:
    N, C, H, W, K, R, S, _ = case
    return np.empty((N, C, H, W), np.float32), np.empty((K, C, R, S), np.float32)


def burst_times(fns: dict, rounds: int) -> dict[str, list[float]]:
    calls = {}
    for name, fn in fns.items():  # calls per burst: about BURST_S, at least 4
        fn()
        t = time.perf_counter()
        fn()
        calls[name] = max(4, int(BURST_S / max(time.perf_counter() - t, 1e-6)) + 1)
    n = max(calls.values()) if calls else 4
    n = min(n, 50)
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)
    for _ in range(rounds):
        order.append(order.pop(0))
        for name in order:
            time.sleep(PAUSE)
            ts = []
            for _ in range(n):
                t = time.perf_counter()
                fns[name]()
                ts.append(time.perf_counter() - t)
            times[name] += ts[1:]
    return times


def report(paths: list[str]) -> str:
    """A markdown table per run file: numba algorithms and torch per layer, ms and GFLOP/s, auto's ratios."""
    out = []
    for path in paths:
        doc = json.load(open(path))
        out.append(f"{path}: {doc['threads']} threads, {doc['rounds']} rounds, torch {doc['torch']}\n")
        out.append("| layer | numba algorithms (ms, GFLOP/s) | torch NCHW | torch CL | auto vs NCHW | auto vs CL |")
        out.append("|---|---|---|---|---|---|")
        for name, c in doc["cases"].items():
            med, fl = c["median_s"], c["flops"]
            algos = sorted((t, k.split("/", 1)[1]) for k, t in med.items() if k.startswith("numba/conv2d"))
            cells = ", ".join(f"{a.replace('conv2d_fwd_', '')} {1e3 * t:.2f} ({fl / t / 1e9:.0f})" for t, a in algos)
            cl = sorted((t, k.split("/", 1)[1]) for k, t in med.items() if k.startswith("numba-cl/"))
            cells += "; channels_last x: " + ", ".join(f"{a.replace('conv2d_fwd_', '')} {1e3 * t:.2f}" for t, a in cl)
            nchw, tcl, auto = med["torch/nchw"], med["torch/channels_last"], med["numba/auto"]
            torch_cells = f"{1e3 * nchw:.2f} ({fl / nchw / 1e9:.0f}) | {1e3 * tcl:.2f} ({fl / tcl / 1e9:.0f})"
            out.append(f"| {name} | {cells} | {torch_cells} | {nchw / auto:.2f}x | {tcl / auto:.2f}x |")
        out.append("")
    return "\n".join(out)


def burst_args(ap: argparse.ArgumentParser, report: Callable[[list[str]], str]) -> argparse.Namespace | None:
    """Add the options every burst benchmark here takes (--threads, --rounds, --json, --report) and parse: None
    after printing the tables of --report's files, else the options, numba's and torch's thread counts set."""
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", default=None)
    ap.add_argument("--report", nargs="+", default=None, help="print markdown tables of these run files, time nothing")
    args = ap.parse_args()
    if args.report:
        print(report(args.report))
        return None
    numba.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    return args


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--algos", default="auto", help="numba algorithms on an NCHW x (comma-separated; 'all')")
    ap.add_argument("--cl-algos", default="auto", help="numba algorithms on a channels_last x ('' for none)")
    args = burst_args(ap, report)
    if args is None:
        return
    out = {"threads": args.threads, "rounds": args.rounds, "torch": getattr(torch, "__version__", None), "cases": {}}
    for cname in args.cases.split(","):
        case = CASES[cname]
        fns, flops = implementations(
            case, [a for a in args.algos.split(",") if a], [a for a in args.cl_algos.split(",") if a]
        )
        times = burst_times(fns, args.rounds)
        med = {k: float(np.median(v)) for k, v in times.items()}
        print(f"{cname} {case[:7]} {case[7]}")
        for k, t in med.items():
            vs = ""
            if "torch/nchw" in med and not k.startswith("torch"):
                vs = f"  vs NCHW {med['torch/nchw'] / t:.2f}x  vs CL {med['torch/channels_last'] / t:.2f}x"
            print(f"  {k:45s} {1e3 * t:8.3f} ms {flops / t / 1e9:7.1f} GF/s{vs}")
        auto = fc.select(fc.conv2d, *_empty(case), **case[7])[0].algo
        out["cases"][cname] = {"shape": case[:7], "kwargs": case[7], "flops": flops, "auto": auto, "median_s": med}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
