"""Markdown table of a test_bench_models.py run: median forward time per implementation, its IQR, the MAC rate
(fastconv.summary's multiply-adds / median time) and the time ratio to torch in the same rounds.

    python benchmarks/models_report.py run.json [more.json ...]
"""

from __future__ import annotations

import json
import sys


def table(path: str) -> str:
    run = json.load(open(path))
    rows = []
    for b in run["benchmarks"]:
        e = b["extra_info"]
        torch_s = e["times"]["torch"]["median_s"]
        for impl, t in e["times"].items():
            rows.append(f"| {e['model']} | {e['batch']} | {impl} | {1e3 * t['median_s']:.0f} | {1e3 * t['iqr_s']:.0f} "
                        f"| {e['macs'] / t['median_s'] / 1e9:.1f} | {t['median_s'] / torch_s:.2f} |")
    e = run["benchmarks"][0]["extra_info"]
    head = (f"{path}: fastconv backend `{e['fastconv_backend']}`, torch {e['torch']} ({e['torch_threads']} threads), "
            f"OMP_WAIT_POLICY={e['OMP_WAIT_POLICY']}, {run['machine_info'].get('cpu', {}).get('brand_raw', '?')}, "
            f"{run['datetime']}\n\n| model | N | implementation | median ms | IQR ms | GMAC/s | time / torch |\n"
            "|---|---|---|---|---|---|---|")
    return "\n".join([head, *rows])


if __name__ == "__main__":
    print("\n\n".join(table(p) for p in sys.argv[1:]))
