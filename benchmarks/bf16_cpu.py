"""precision="bf16" on the CPU: fastconv's AMX kernel and its auto choice against fastconv fp32 and torch bfloat16
(NCHW and channels_last), on the bfloat16 issue's cases, plus a 2048^2 linear against torch's bf16 matmul (the
machine's bf16 GEMM ceiling) and the accuracy of bf16 against float64.

    python benchmarks/bf16_cpu.py [--rounds 7] [--out bench_results/bf16_cpu]
    python benchmarks/bf16_cpu.py --model-check [--out bench_results/bf16_resnet18]

Every implementation is timed in bursts of back-to-back calls, the first call of each burst dropped, the bursts
of the implementations alternated in a rotating order, for `rounds` rounds; the median per call is reported and
ratios are taken between medians of the same run. torch gets bfloat16 tensors made ahead (its conversion is not
timed); fastconv takes and returns float32 arrays, so its time includes the rounding and packing of x and w.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

import fastconv as fc

V17, V21, V5 = "conv2d_fwd_v17_amx_gemm", "conv2d_fwd_v21_amx_rows", "linear_gemm_v5_amx_blocked"
CASES = {
    "a N8 C64 56x56 K64 3x3 p1": ((8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
    "b N8 C256 56x56 K64 1x1": ((8, 256, 56, 56), (64, 256, 1, 1), {}),
    "c N8 C128 28x28 K128 3x3 s2 p1": ((8, 128, 28, 28), (128, 128, 3, 3), dict(stride=2, padding=1)),
    "late N8 C512 7x7 K512 3x3 p1": ((8, 512, 7, 7), (512, 512, 3, 3), dict(padding=1)),
    "1x1 N8 C1024 14x14 K256": ((8, 1024, 14, 14), (256, 1024, 1, 1), {}),
}


def timed(fns: dict, rounds: int, burst: int = 4, pause: float = 0.05) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)
    for _ in range(rounds):
        order.append(order.pop(0))
        for k in order:
            time.sleep(pause)
            fns[k]()  # the burst's first call, dropped
            t = time.perf_counter()
            for _ in range(burst):
                fns[k]()
            times[k].append((time.perf_counter() - t) / burst)
    return {k: float(np.median(v)) for k, v in times.items()}


def one_thread(fn, *args, **kw):
    """fn on one torch thread: a baseline that a stalled second thread cannot hold up (other jobs share the cores;
    under load torch's 2-thread conv calls were seen to take a flat ~16 ms whatever their size)."""
    torch.set_num_threads(1)
    try:
        return fn(*args, **kw)
    finally:
        torch.set_num_threads(2)


def conv_case(name: str, rounds: int, rng: np.random.Generator) -> dict:
    xs, ws, kw = CASES[name]
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    tx, tw = torch.tensor(x).bfloat16(), torch.tensor(w).bfloat16()
    tcx, tcw = (t.contiguous(memory_format=torch.channels_last) for t in (tx, tw))
    F = torch.nn.functional
    fns = {
        "fastconv bf16 (auto)": lambda: fc.conv2d(x, w, **kw, precision="bf16"),
        "fastconv bf16 conv2d_fwd_v10_amx": lambda: fc.conv2d(x, w, **kw, precision="bf16", algo="conv2d_fwd_v10_amx"),
        "fastconv bf16 conv2d_fwd_v17_amx_gemm": lambda: fc.conv2d(x, w, **kw, precision="bf16", algo=V17),
        "fastconv bf16 conv2d_fwd_v21_amx_rows": lambda: fc.conv2d(x, w, **kw, precision="bf16", algo=V21),
        "fastconv fp32": lambda: fc.conv2d(x, w, **kw),
        "torch bf16 NCHW": lambda: F.conv2d(tx, tw, **kw),
        "torch bf16 channels_last": lambda: F.conv2d(tcx, tcw, **kw),
        "torch bf16 channels_last, 1 thread": lambda: one_thread(F.conv2d, tcx, tcw, **kw),
    }
    with torch.no_grad():
        t = timed(fns, rounds)
    exact = fc.conv2d(x.astype(np.float64), w.astype(np.float64), **kw, backend="numpy")
    y = fc.conv2d(x, w, **kw, precision="bf16")
    macs = fc.plan(fc.conv2d, x, w, **kw).params.macs
    best_torch = min(t["torch bf16 NCHW"], t["torch bf16 channels_last"])
    return {
        "case": name,
        "auto": fc.select(fc.conv2d, x, w, **kw, precision="bf16")[0].algo,
        "median_s": t,
        "gflops": {k: 2 * macs / v / 1e9 for k, v in t.items()},
        "auto_vs_best_torch": best_torch / t["fastconv bf16 (auto)"],
        "auto_vs_torch_channels_last": t["torch bf16 channels_last"] / t["fastconv bf16 (auto)"],
        "auto_vs_torch_nchw": t["torch bf16 NCHW"] / t["fastconv bf16 (auto)"],
        "auto_vs_torch_channels_last_1thread": t["torch bf16 channels_last, 1 thread"] / t["fastconv bf16 (auto)"],
        "auto_vs_own_fp32": t["fastconv fp32"] / t["fastconv bf16 (auto)"],
        "rel_l2_vs_float64": float(np.linalg.norm(y - exact) / np.linalg.norm(exact)),
    }


def gemm_case(rounds: int, rng: np.random.Generator, n: int = 2048) -> dict:
    a, b = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
    ta, tb = torch.tensor(a).bfloat16(), torch.tensor(b).bfloat16()
    fns = {
        "fastconv linear bf16 (auto)": lambda: fc.linear(a, b, precision="bf16"),
        "fastconv linear bf16 linear_gemm_v4_amx": lambda: fc.linear(a, b, precision="bf16", algo="linear_gemm_v4_amx"),
        "fastconv linear bf16 linear_gemm_v5_amx_blocked": lambda: fc.linear(a, b, precision="bf16", algo=V5),
        "fastconv linear fp32": lambda: fc.linear(a, b),
        "torch bf16 matmul": lambda: ta @ tb.T,
        "torch bf16 matmul, 1 thread": lambda: one_thread(torch.matmul, ta, tb.T),
        "numpy fp32 matmul": lambda: a @ b.T,
    }
    with torch.no_grad():
        t = timed(fns, rounds)
    return {
        "case": f"linear {n}x{n}x{n}",
        "auto": fc.select(fc.linear, a, b, precision="bf16")[0].algo,
        "median_s": t,
        "gflops": {k: 2 * n**3 / v / 1e9 for k, v in t.items()},
        "auto_vs_torch": t["torch bf16 matmul"] / t["fastconv linear bf16 (auto)"],
        "auto_vs_torch_1thread": t["torch bf16 matmul, 1 thread"] / t["fastconv linear bf16 (auto)"],
        "auto_vs_own_fp32": t["fastconv linear fp32"] / t["fastconv linear bf16 (auto)"],
    }


def model_check(n: int = 16, seed: int = 0) -> str:
    """ResNet-18 (seeded random weights, eval mode) on n standard-normal 224x224 images in fp32 and under
    use_precision("bf16"): how often the top-1 class agrees, and the relative L2 error of the bf16 logits."""
    import fastconv.models as models
    import fastconv.nn as nn

    nn.manual_seed(seed)
    model = models.resnet18().eval()
    x = np.random.default_rng(seed).standard_normal((n, 3, 224, 224)).astype(np.float32)
    t0 = time.perf_counter()
    exact = np.concatenate([model(x[i : i + 4]) for i in range(0, n, 4)])
    t1 = time.perf_counter()
    with fc.use_precision("bf16"):
        low = np.concatenate([model(x[i : i + 4]) for i in range(0, n, 4)])
    t2 = time.perf_counter()
    agree = float(np.mean(exact.argmax(1) == low.argmax(1)))
    err = np.linalg.norm(low - exact, axis=1) / np.linalg.norm(exact, axis=1)
    return (
        f"# ResNet-18 under precision='bf16' ({time.strftime('%Y-%m-%d %H:%M')})\n\n"
        f"Seeded random weights (fastconv.nn.manual_seed({seed})), eval mode, {n} standard-normal 224x224 inputs, "
        f"batches of 4:\n\n"
        f"- top-1 agreement with fp32: {100 * agree:.0f}% ({int(round(agree * n))} of {n})\n"
        f"- relative L2 error of the logits: median {np.median(err):.2e}, max {err.max():.2e}\n"
        f"- time: fp32 {t1 - t0:.1f} s, bf16 {t2 - t1:.1f} s (first calls included)\n"
    )


def markdown(run: dict) -> str:
    lines = [
        f"# precision='bf16' on the CPU ({run['cpu']}, {run['threads']} threads, torch {run['torch']}, {run['date']})",
        "",
        "Median per call over alternated bursts (first call of each burst dropped); GFLOP/s = 2 x multiply-adds. "
        f"Load average (1 min) of the machine, whose 2 cores other jobs share: {run['load'][0]:.2f} at the start, "
        f"{run['load'][1]:.2f} at the end; compare ratios within this run.",
        "",
        "| case | implementation | ms | GFLOP/s |",
        "|---|---|---:|---:|",
    ]
    for c in run["conv"] + [run["gemm"]]:
        for k, v in c["median_s"].items():
            lines.append(f"| {c['case']} | {k} | {1e3 * v:.2f} | {c['gflops'][k]:.0f} |")
    lines += [
        "",
        "| case | auto picks | auto vs torch bf16 channels_last | vs torch bf16 NCHW | vs best torch | "
        "vs torch channels_last, 1 thread | vs fastconv fp32 | rel. L2 error vs float64 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in run["conv"]:
        lines.append(
            f"| {c['case']} | {c['auto']} | {c['auto_vs_torch_channels_last']:.2f}x | {c['auto_vs_torch_nchw']:.2f}x | "
            f"{c['auto_vs_best_torch']:.2f}x | {c['auto_vs_torch_channels_last_1thread']:.2f}x | "
            f"{c['auto_vs_own_fp32']:.2f}x | {c['rel_l2_vs_float64']:.2e} |"
        )
    g = run["gemm"]
    lines.append(
        f"| {g['case']} | {g['auto']} | {g['auto_vs_torch']:.2f}x (torch bf16 matmul) | | | "
        f"{g['auto_vs_torch_1thread']:.2f}x (matmul) | {g['auto_vs_own_fp32']:.2f}x | |"
    )
    ratios = [c["auto_vs_best_torch"] for c in run["conv"]]
    cl = [c["auto_vs_torch_channels_last"] for c in run["conv"]]
    cl1 = [c["auto_vs_torch_channels_last_1thread"] for c in run["conv"]]
    own = [c["auto_vs_own_fp32"] for c in run["conv"]]
    lines += [
        "",
        f"Geomean over the conv cases: {float(np.exp(np.mean(np.log(cl)))):.2f}x torch bf16 channels_last, "
        f"{float(np.exp(np.mean(np.log(ratios)))):.2f}x the better torch bf16 layout, "
        f"{float(np.exp(np.mean(np.log(cl1)))):.2f}x torch bf16 channels_last on 1 thread, "
        f"{float(np.exp(np.mean(np.log(own)))):.2f}x fastconv's own fp32.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default=None)
    ap.add_argument("--model-check", action="store_true", help="ResNet-18's top-1 agreement and logits error")
    args = ap.parse_args()
    if args.model_check:
        text = model_check()
        out = Path(args.out or "bench_results/bf16_resnet18.md")
        out.write_text(text)
        print(text)
        return
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    load0 = os.getloadavg()[0]
    run = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "conv": [conv_case(name, args.rounds, rng) for name in CASES],
        "gemm": gemm_case(args.rounds, rng),
    }
    run["load"] = [load0, os.getloadavg()[0]]
    out = Path(args.out or "bench_results/bf16_cpu")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(run, indent=1))
    out.with_suffix(".md").write_text(markdown(run))
    print(markdown(run))


if __name__ == "__main__":
    main()
