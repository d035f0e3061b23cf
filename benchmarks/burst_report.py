"""Markdown tables of the interleaved, burst-timed benchmarks (test_bench_models.py: whole-model forward;
test_bench_resnet_train.py: a ResNet training step;
test_bench_linear.py: fastconv.linear): per case and implementation the median time per call, its IQR, the work
rate (multiply-adds for a model, FLOPs for linear) and the time relative to the baseline timed in the same rounds
(for a model the faster of torch NCHW and torch channels_last; NumPy's matmul for linear).

    python benchmarks/burst_report.py run.json [more.json ...]
"""

from __future__ import annotations

import json
import sys


def _spec(e: dict) -> tuple:
    """(case columns, their values, work per call, rate unit, baseline, ms decimals, run description)."""
    if "model" in e:
        return (
            ("model", "N"),
            (e["model"], e["batch"]),
            e["macs"],
            "GMAC/s",
            "best torch",
            0,
            f"fastconv backend `{e['fastconv_backend']}`, torch {e['torch']} ({e['torch_threads']} threads)",
        )
    return (
        ("layer", "op", "threads"),
        (f"N={e['N']} {e['in']}->{e['out']}", e["op"], e["threads"]),
        e["flops"],
        "GFLOP/s",
        "numpy",
        3,
        f"torch {e['torch']}",
    )


def table(path: str) -> str:
    run = json.load(open(path))
    rows = []
    for b in run["benchmarks"]:
        e = b["extra_info"]
        _, values, work, _, baseline, digits, _ = _spec(e)
        if baseline == "best torch":  # the faster of the torch layouts timed in the same rounds
            base_s = min(t["median_s"] for k, t in e["times"].items() if k.startswith("torch"))
        else:
            base_s = e["times"][baseline]["median_s"]
        for impl, t in e["times"].items():
            cells = [
                *values,
                impl,
                f"{1e3 * t['median_s']:.{digits}f}",
                f"{1e3 * t['iqr_s']:.{digits}f}",
                f"{work / t['median_s'] / 1e9:.1f}",
                f"{t['median_s'] / base_s:.2f}",
            ]
            rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    e = run["benchmarks"][0]["extra_info"]
    columns, _, _, unit, baseline, _, about = _spec(e)
    header = [*columns, "implementation", "median ms", "IQR ms", unit, f"time / {baseline}"]
    head = (
        f"{path}: {about}, OMP_WAIT_POLICY={e['OMP_WAIT_POLICY']}, "
        f"{run['machine_info'].get('cpu', {}).get('brand_raw', '?')}, {run['datetime']}\n\n"
        "| " + " | ".join(header) + " |\n" + "|---" * len(header) + "|"
    )
    return "\n".join([head, *rows])


if __name__ == "__main__":
    print("\n\n".join(table(p) for p in sys.argv[1:]))
