"""Burst timing of the conv weight gradient on the distinct 3x3 and 1x1 layers of ResNet-18 and ResNet-50 (from
fastconv.bench.suites, batch 8) and issue 16's cases a, b and c: numba algorithms against torch's weight gradient
(torch.nn.grad.conv2d_weight) on NCHW and on channels_last tensors, all in one process.

    python benchmarks/bwd_weight.py [--threads 2] [--rounds 7] [--layers a,b,c,...] [--json out.json]
    python benchmarks/bwd_weight.py --report run.json [more.json ...]     # markdown tables

Every implementation is checked against torch's float64 weight gradient first. Timing is late_layers.burst_times:
per round each implementation in turn (the order rotating) pauses, then runs a burst of back-to-back calls, the
first of each burst dropped; a cell is the median of the kept calls. GFLOP/s count 2*N*K*P*Q*C*R*S.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
from late_layers import burst_args, burst_times, channels_last

import fastconv as fc
from fastconv import dispatch
from fastconv.bench.suites import arch_problems

ALGOS = ("auto", "conv2d_bwd_weight_v3_pointwise", "conv2d_bwd_weight_v4_blocked", "conv2d_bwd_weight_v8_chunks")
ISSUE = {  # issue 16's cases: name -> (C, H, W, K, R, S, stride, padding)
    "a": (64, 56, 56, 64, 3, 3, 1, 1),
    "b": (256, 56, 56, 64, 1, 1, 1, 0),
    "c": (128, 28, 28, 128, 3, 3, 2, 1),
}


def layers() -> dict[str, tuple]:
    """Issue 16's cases, then every distinct 3x3 and 1x1 layer of ResNet-18 and ResNet-50 not among them."""
    out = dict(ISSUE)
    for arch in ("resnet18", "resnet50"):
        for pr, _ in arch_problems(arch):
            shape = (pr.C, pr.H, pr.W, pr.K, pr.R, pr.S, pr.stride, pr.padding)
            if pr.R == pr.S and pr.R in (1, 3) and pr.groups == 1 and shape not in out.values():
                out[pr.name] = shape
    return out


def y_shape(shape: tuple, n: int) -> tuple[int, int, int, int]:
    C, H, W, K, R, S, stride, padding = shape
    return (n, K, *(fc.conv_output_size(i, R, stride, padding) for i in (H, W)))


def implementations(shape: tuple, n: int) -> tuple[dict, float]:
    C, H, W, K, R, S, stride, padding = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, C, H, W)).astype(np.float32)
    w = np.zeros((K, C, R, S), np.float32)
    kw = dict(stride=stride, padding=padding)
    gy = rng.standard_normal(y_shape(shape, n)).astype(np.float32)
    ref = torch.nn.grad.conv2d_weight(torch.from_numpy(x).double(), w.shape, torch.from_numpy(gy).double(), **kw)
    flops = 2.0 * gy.size * C * R * S
    fns = {}
    for algo in ALGOS:
        if algo == "auto" or algo in dispatch.algos("conv2d_bwd_weight", "numba"):
            fns[f"numba/{algo}"] = lambda a=algo: fc.conv2d_backward(
                gy, x, w, need_input=False, need_bias=False, algo=a, **kw
            )[1]
    for layout, xl, gl in (("nchw", x, gy), ("channels_last", channels_last(x), channels_last(gy))):
        tx, tg = torch.from_numpy(xl), torch.from_numpy(gl)
        fns[f"torch/{layout}"] = lambda tx=tx, tg=tg: torch.nn.grad.conv2d_weight(tx, w.shape, tg, **kw)
    for name, fn in list(fns.items()):
        try:
            got = np.asarray(fn(), dtype=np.float64)
        except ValueError:  # the algorithm does not take this layer
            del fns[name]
            continue
        err = np.abs(got - ref.numpy()).max() / np.abs(ref.numpy()).max()
        assert err < 1e-4, f"{name}: relative error {err:.3g}"
    return fns, flops


def _auto(shape: tuple, n: int) -> str:
    """The weight-gradient algorithm auto takes for a layer now."""
    C, H, W, K, R, S, stride, padding = shape
    x, w = np.empty((n, C, H, W), np.float32), np.empty((K, C, R, S), np.float32)
    gy = np.empty(y_shape(shape, n), np.float32)
    steps = fc.select(fc.conv2d_backward, gy, x, w, need_bias=False, stride=stride, padding=padding)
    return next(s.algo for s in steps if s.op == "conv2d_bwd_weight")


def report(paths: list[str]) -> str:
    """Per run: ms per implementation and layer; auto's choice by the rules of the code that reports (and its time),
    against the choice before v8_chunks (v3_pointwise on stride-1 1x1 layers, else v4_blocked); ratios, geomeans and
    ResNet-50's weight gradients summed over its layers (each distinct layer times its count)."""
    counts = {}
    for pr, count in arch_problems("resnet50"):
        counts[(pr.C, pr.H, pr.W, pr.K, pr.R, pr.S, pr.stride, pr.padding)] = count
    out = []
    for path in paths:
        doc = json.load(open(path))
        out.append(
            f"{path}: {doc['threads']} threads, N={doc['N']}, {doc['rounds']} rounds, torch {doc['torch']}, "
            f"load average {doc['load'][0]:.2f} at start, {doc['load'][1]:.2f} at end; ms per call (median)\n"
        )
        out.append(
            "| layer | v3_pointwise | v4_blocked | v8_chunks | torch NCHW | torch CL | auto now | v4 / v8 "
            "| before / auto | best torch / auto |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        ratios, total = {"v4": [], "before": [], "torch": []}, np.zeros(3)
        for name, c in doc["layers"].items():
            med, shape = c["median_s"], tuple(c["shape"])
            t = {k.split("/")[-1].replace("conv2d_bwd_weight_", ""): v for k, v in med.items()}
            auto = _auto(shape, doc["N"]).replace("conv2d_bwd_weight_", "")
            before = t["v3_pointwise"] if "v3_pointwise" in t else t["v4_blocked"]
            best = min(t["nchw"], t["channels_last"])
            r = dict(v4=t["v4_blocked"] / t["v8_chunks"], before=before / t[auto], torch=best / t[auto])
            for k, v in r.items():
                ratios[k].append(v)
            total += counts.get(shape, 0) * np.array([before, t[auto], best])
            keys = [a.replace("conv2d_bwd_weight_", "") for a in ALGOS[1:]] + ["nchw", "channels_last"]
            cells = [f"{1e3 * t[k]:.2f}" if k in t else "-" for k in keys]
            shown = " | ".join(f"{v:.2f}x" for v in r.values())
            out.append(f"| {name} | {' | '.join(cells)} | {auto} | {shown} |")
        geo = {k: float(np.exp(np.mean(np.log(v)))) for k, v in ratios.items()}
        out.append(
            f"\ngeomean over the layers: v4 / v8 {geo['v4']:.2f}x, before / auto {geo['before']:.2f}x, best torch / "
            f"auto {geo['torch']:.2f}x. ResNet-50's conv weight gradients (3x3 and 1x1 layers, each times its count): "
            f"before {1e3 * total[0]:.0f} ms, auto {1e3 * total[1]:.0f} ms, best torch layout per layer "
            f"{1e3 * total[2]:.0f} ms\n"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--layers", default=None, help="comma-separated layer names (default: all)")
    args = burst_args(ap, report)
    if args is None:
        return
    todo = layers()
    names = args.layers.split(",") if args.layers else list(todo)
    out = {"threads": args.threads, "rounds": args.rounds, "N": args.batch, "torch": torch.__version__, "layers": {}}
    load0 = os.getloadavg()[0]
    for name in names:
        fns, flops = implementations(todo[name], args.batch)
        times = burst_times(fns, args.rounds)
        med = {k: float(np.median(v)) for k, v in times.items()}
        auto = _auto(todo[name], args.batch)
        mins = {k: float(np.min(v)) for k, v in times.items()}
        out["layers"][name] = {"shape": todo[name], "flops": flops, "auto": auto, "median_s": med, "min_s": mins}
        print(name, todo[name], " ".join(f"{k.split('/')[-1][18:] or k}={1e3 * t:.2f}" for k, t in med.items()))
    out["load"] = (load0, os.getloadavg()[0])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
