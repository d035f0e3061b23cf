"""Turn pytest-benchmark JSONs of test_numba_cpu.py into bench_results/numba_cpu.json and numba_cpu.md.

    python benchmarks/numba_report.py run1.json [run2.json ...] [--out bench_results]

The JSON keeps the machine (CPU, cores, SIMD width, library versions), the measured ceilings, every median (with
its spread, as the noise measure) and the derived GFLOP/s, GB/s and ratios; the summary states each target of the
numba issue as measured in this run; "selection" ("selection_bwd_weight") lists, per conv problem, the numba
forward (weight-gradient) algorithms fastest first (the evidence for fastconv/backends/numba_cpu/selection.py).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from pathlib import Path

import numba
import numpy as np

TARGETS = dict(
    geomean_vs_torch_nchw=0.7,
    min_vs_torch_nchw=0.3,
    depthwise_vs_torch_nchw=2.0,
    pool_bn_gbs=15.0,
    backward_vs_torch_nchw=0.5,
)


def machine() -> dict:
    from llvmlite import binding  # noqa: PLC0415

    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    versions = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__}
    try:
        import torch  # noqa: PLC0415

        versions["torch"] = torch.__version__
    except ImportError:
        pass
    feats = binding.get_host_cpu_features()
    return dict(
        cpu=cpu,
        llvm_cpu=binding.get_host_cpu_name(),
        cores=numba.config.NUMBA_NUM_THREADS,
        avx512f=bool(feats.get("avx512f")),
        platform=platform.platform(),
        versions=versions,
    )


def rows(bench: dict) -> list[dict]:
    """One row per (problem, implementation, threads) from the interleaved timings in extra_info."""
    out = []
    for b in bench["benchmarks"]:
        info = b["extra_info"]
        if info.get("kind") == "ceiling":
            continue
        for impl, st in info["impls"].items():
            med = st["median_s"]
            out.append(
                dict(
                    kind=info["kind"],
                    case=info["case"],
                    impl=impl,
                    threads=info["threads"],
                    median_ms=1e3 * med,
                    min_ms=1e3 * st["min_s"],
                    rounds=st["rounds"],
                    spread=st["iqr_s"] / med,
                    gflops=info["flops"] / med / 1e9 if info["flops"] else None,
                    gbs=info["bytes"] / med / 1e9,
                )
            )
    return out


def combine(runs: list[list[dict]]) -> list[dict]:
    """Several runs' rows -> one row per (problem, implementation, threads): the median over runs of the medians;
    `spread` becomes the larger of the median within-run spread and the between-run spread (max/min - 1)."""
    groups: dict[tuple, list[dict]] = {}
    for table in runs:
        for r in table:
            groups.setdefault((r["kind"], r["case"], r["impl"], r["threads"]), []).append(r)
    out = []
    for rs in groups.values():
        med = float(np.median([r["median_ms"] for r in rs]))
        r = dict(
            rs[0], median_ms=med, min_ms=min(r["min_ms"] for r in rs), runs=len(rs), rounds=sum(r["rounds"] for r in rs)
        )
        between = max(q["median_ms"] for q in rs) / min(q["median_ms"] for q in rs) - 1
        r["spread"] = max(float(np.median([q["spread"] for q in rs])), between)
        scale = rs[0]["median_ms"] / med
        r["gflops"] = rs[0]["gflops"] * scale if rs[0]["gflops"] else None
        r["gbs"] = rs[0]["gbs"] * scale
        out.append(r)
    return out


def _get(table, case, impl, threads):
    return next((r for r in table if r["case"] == case and r["impl"] == impl and r["threads"] == threads), None)


MEMORY_KINDS = ("pool", "bn", "relu")
BYTES_NOTE = (
    "Effective bytes (the GB/s of memory-bound rows): max-pool 4*(|x| + |y|), x read and y written once; "
    "BN train forward + backward 4*4*|x|, x and gy read, y and gx written (x counted once although both "
    "calls read it); ReLU 4*2*|x|; copy: 2*bytes copied (read + write), a parallel numba copy of 64 MiB "
    "(workloads.copy_gbs) measured in the same run."
)


def copy_gbs(ceilings: list[dict], threads: int) -> float | None:
    """The median copy bandwidth over the runs' ceilings for a thread count."""
    rates = [c["copy_gbs"] for c in ceilings if c["threads"] == threads]
    return float(np.median(rates)) if rates else None


def summary(table: list[dict], ceilings: list[dict], threads: int = 2) -> dict:
    def ratio(case):
        ours, theirs = _get(table, case, "numba/auto", threads), _get(table, case, "torch/nchw", threads)
        return theirs["median_ms"] / ours["median_ms"] if ours and theirs else None

    conv = sorted({r["case"] for r in table if r["kind"] == "conv"})
    ratios = {c: ratio(c) for c in conv}
    known = [v for v in ratios.values() if v]
    bwd = {r["case"]: ratio(r["case"]) for r in table if r["kind"] == "conv_bwd" and r["threads"] == threads}
    mem = {
        r["case"]: r["gbs"]
        for r in table
        if r["kind"] in ("pool", "bn") and r["impl"] == "numba/auto" and r["threads"] == threads
    }
    copy = copy_gbs(ceilings, threads)
    vs_copy = (
        {
            r["case"]: r["gbs"] / copy
            for r in table
            if r["kind"] in MEMORY_KINDS and r["impl"] == "numba/auto" and r["threads"] == threads
        }
        if copy
        else {}
    )
    dw = next((v for c, v in ratios.items() if "depthwise" in c), None)
    s = dict(
        threads=threads,
        conv_vs_torch_nchw=ratios,
        backward_vs_torch_nchw=bwd,
        pool_bn_gbs=mem,
        copy_gbs=copy,
        memory_ops_vs_copy=vs_copy,
        geomean_vs_torch_nchw=math.exp(np.mean(np.log(known))) if known else None,
        min_vs_torch_nchw=min(known) if known else None,
        depthwise_vs_torch_nchw=dw,
    )
    s["targets"] = {
        "geomean >= 0.7x torch NCHW": s["geomean_vs_torch_nchw"] is not None and s["geomean_vs_torch_nchw"] >= 0.7,
        "no case below 0.3x": s["min_vs_torch_nchw"] is not None and s["min_vs_torch_nchw"] >= 0.3,
        "depthwise >= 2x": dw is not None and dw >= 2.0,
        "max-pool and BN >= 15 GB/s": bool(mem) and min(mem.values()) >= 15.0,
        "backward >= 0.5x torch": bool(bwd) and min(v for v in bwd.values() if v) >= 0.5,
        "aim: pool/BN/ReLU >= 50% of copy bandwidth": bool(vs_copy) and min(vs_copy.values()) >= 0.5,
    }
    s["median_spread"] = float(np.median([r["spread"] for r in table]))
    return s


def selection(table: list[dict], threads: int = 2, kind: str = "conv") -> dict:
    """Per conv problem (of `kind`): the numba algorithms (auto excluded) fastest first, with their medians. Only plain
    algorithm labels count: a variant on other inputs ('numba/conv2d_fwd_v9_nhwc (channels_last x)') is no evidence for
    the NCHW table."""
    out = {}
    for case in sorted({r["case"] for r in table if r["kind"] == kind}):
        mine = [
            r
            for r in table
            if r["case"] == case
            and r["threads"] == threads
            and r["impl"].startswith("numba/")
            and r["impl"] != "numba/auto"
            and " " not in r["impl"]
        ]
        out[case] = [
            (r["impl"][6:], round(r["median_ms"], 3), round(r["gflops"], 1))
            for r in sorted(mine, key=lambda r: r["median_ms"])
        ]
    return out


def selection_channels_last(table: list[dict], threads: int = 2) -> dict:
    """Per conv problem: its channels_last x read in place by conv2d_fwd_v9_nhwc or copied to NCHW for auto's NCHW
    algorithm, the faster first, with their medians (the evidence for auto's treatment of channels_last inputs)."""
    from workloads import NCHW_ON_CL, NHWC_ON_CL  # noqa: PLC0415

    labels = {NHWC_ON_CL: "conv2d_fwd_v9_nhwc", NCHW_ON_CL: "copy_to_nchw"}
    out = {}
    for case in sorted({r["case"] for r in table if r["kind"] == "conv"}):
        mine = [r for r in table if r["case"] == case and r["threads"] == threads and r["impl"] in labels]
        out[case] = [(labels[r["impl"]], round(r["median_ms"], 3)) for r in sorted(mine, key=lambda r: r["median_ms"])]
    return out


def _cell(r: dict | None) -> str:
    if r is None:
        return "-"
    return f"{r['gflops']:.1f} GF/s" if r["gflops"] else f"{r['gbs']:.1f} GB/s"


def _vs(theirs: dict | None, ours: dict) -> str:
    return f"{theirs['median_ms'] / ours['median_ms']:.2f}x" if theirs else "-"


def markdown(doc: dict) -> str:
    table, s = doc["results"], doc["summary"]
    lines = [
        f"# numba backend benchmarks ({doc['machine']['cpu']}, {doc['machine']['cores']} cores)",
        "",
        f"float32; {doc['runs']} run(s), each timing the implementations of a problem interleaved, each turn "
        "a burst of back-to-back calls after a short pause (benchmarks/test_numba_cpu.py); cells are "
        "the median over runs of each run's median; ratio = torch time / numba time (>1: numba faster). "
        "Geomean over a-h vs torch NCHW, per run: "
        + ", ".join(f"{s['geomean_vs_torch_nchw']:.2f}x" for s in doc["per_run"])
        + ". Ceilings: "
        + ", ".join(
            f"{c['threads']} thr SGEMM {c['sgemm_gflops']:.0f} GFLOP/s, copy {c['copy_gbs']:.1f} GB/s"
            for c in doc["ceilings"]
        ),
        "",
    ]
    for t in sorted({r["threads"] for r in table}, reverse=True):
        lines += [
            f"## {t} thread{'s' if t > 1 else ''}",
            "",
            "| case | numba auto | algo | torch NCHW | torch CL | numpy | vs NCHW | vs CL |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for case in dict.fromkeys(r["case"] for r in table if r["threads"] == t):
            ours = _get(table, case, "numba/auto", t)
            nchw, cl, ref = (_get(table, case, i, t) for i in ("torch/nchw", "torch/channels_last", "numpy"))
            lines.append(
                f"| {case} | {_cell(ours)} | {doc['auto'].get(case, '')} | {_cell(nchw)} | {_cell(cl)} | "
                f"{_cell(ref)} | {_vs(nchw, ours)} | {_vs(cl, ours)} |"
            )
        lines.append("")
    lines += memory_section(doc)
    lines += ["## Targets (2 threads)", ""] + [f"- {k}: {'met' if v else 'NOT met'}" for k, v in s["targets"].items()]
    lines += [
        "",
        f"Noise: the median spread of a cell (within-run IQR / median, or between runs max/min - 1, the "
        f"larger) is {100 * s['median_spread']:.0f}%. With 2 threads on this shared 2-core machine a call of a "
        "few ms can wait a whole scheduler slice for its second thread, which shows as ratios far from 1 in "
        "either direction (e.g. h_3x3_n1); the 1-thread tables are the steadier per-core comparison.",
        "",
        "## Algorithms per conv problem (2 threads, fastest first; the evidence for selection.py)",
        "",
    ]
    lines += [
        f"- {c}: " + ", ".join(f"{a} {ms:.2f} ms ({gf:.1f} GF/s)" for a, ms, gf in algos)
        for c, algos in (doc["selection"] | doc["selection_bwd_weight"]).items()
    ]
    return "\n".join(lines) + "\n"


def memory_section(doc: dict) -> list[str]:
    """Pool, BN and ReLU against the copy bandwidth measured in the same run(s), per thread count."""
    table = doc["results"]
    lines = [
        "## Memory-bound ops vs copy bandwidth",
        "",
        BYTES_NOTE,
        "",
        "| threads | case | copy | numba auto | % of copy | torch NCHW | % of copy |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in sorted({r["threads"] for r in table}, reverse=True):
        copy = copy_gbs(doc["ceilings"], t)
        for case in dict.fromkeys(r["case"] for r in table if r["kind"] in MEMORY_KINDS and r["threads"] == t):
            ours, theirs = _get(table, case, "numba/auto", t), _get(table, case, "torch/nchw", t)
            pct = [f"{100 * r['gbs'] / copy:.0f}%" if r and copy else "-" for r in (ours, theirs)]
            lines.append(f"| {t} | {case} | {copy:.1f} GB/s | {_cell(ours)} | {pct[0]} | {_cell(theirs)} | {pct[1]} |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="pytest-benchmark --benchmark-json outputs (one per run)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "bench_results")
    args = ap.parse_args(argv)
    benches = [json.loads(run.read_text()) for run in args.runs]
    table = combine([rows(b) for b in benches])
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    doc = dict(
        machine=machine(),
        dates=[b.get("datetime") for b in benches],
        runs=len(benches),
        results=table,
        ceilings=[
            dict(
                run=i,
                threads=b["extra_info"]["threads"],
                sgemm_gflops=b["extra_info"]["sgemm_gflops"],
                copy_gbs=b["extra_info"]["copy_gbs"],
            )
            for i, bench in enumerate(benches)
            for b in bench["benchmarks"]
            if b["extra_info"].get("kind") == "ceiling"
        ],
        selection=selection(table),
        selection_bwd_weight=selection(table, kind="conv_bwd_weight"),
        selection_channels_last=selection_channels_last(table),
        auto=auto_choices(),
    )
    doc["summary"] = summary(table, doc["ceilings"])
    doc["per_run"] = [summary(rows(b), [c for c in doc["ceilings"] if c["run"] == i]) for i, b in enumerate(benches)]
    args.out.mkdir(exist_ok=True)
    (args.out / "numba_cpu.json").write_text(json.dumps(doc, indent=1) + "\n")
    (args.out / "numba_cpu.md").write_text(markdown(doc))
    print(markdown(doc))
    return 0


def auto_choices() -> dict:
    """The algorithm `auto` picks for each shared conv problem (forward)."""
    import fastconv as fc  # noqa: PLC0415
    from fastconv.bench.cases import CPU_CONV  # noqa: PLC0415

    return {
        p.name: fc.select(fc.conv2d, np.empty(p.x_shape, np.float32), np.empty(p.w_shape, np.float32), **p.kwargs)[
            0
        ].algo
        for p in CPU_CONV
    }


if __name__ == "__main__":
    raise SystemExit(main())
