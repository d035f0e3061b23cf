"""Markdown tables of a test_bench_linear.py run: per layer shape and op, the median time per call of each
implementation at each thread count, its GFLOP/s (2*N*in*out FLOPs per product) and its time relative to NumPy's
matmul in the same rounds.

    python benchmarks/linear_report.py run.json [more.json ...]
"""

from __future__ import annotations

import json
import sys


def table(path: str) -> str:
    run = json.load(open(path))
    rows = []
    for b in run["benchmarks"]:
        e = b["extra_info"]
        numpy_s = e["times"]["numpy"]["median_s"]
        for impl, t in e["times"].items():
            rows.append(f"| N={e['N']} {e['in']}->{e['out']} | {e['op']} | {e['threads']} | {impl} | "
                        f"{1e3 * t['median_s']:.3f} | {1e3 * t['iqr_s']:.3f} | "
                        f"{e['flops'] / t['median_s'] / 1e9:.1f} | {t['median_s'] / numpy_s:.2f} |")
    e = run["benchmarks"][0]["extra_info"]
    head = (f"{path}: torch {e['torch']}, OMP_WAIT_POLICY={e['OMP_WAIT_POLICY']}, "
            f"{run['machine_info'].get('cpu', {}).get('brand_raw', '?')}, {run['datetime']}\n\n"
            "| layer | op | threads | implementation | median ms | IQR ms | GFLOP/s | time / numpy |\n"
            "|---|---|---|---|---|---|---|---|")
    return "\n".join([head, *rows])


if __name__ == "__main__":
    print("\n\n".join(table(p) for p in sys.argv[1:]))
