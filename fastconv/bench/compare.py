"""`fastconv bench compare A B`: the speed of run B relative to run A, case by case.

Records are matched on (benchdnn descriptor, op, implementation, threads, dtype), or without the threads
(`--ignore-threads`, to set machines with different core counts side by side); the ratio is A's median time over
B's, so 2.00x means B took half the time. Per implementation, the geometric mean of the ratios.
"""

from __future__ import annotations

from typing import Any

from .tables import geomean, markdown


def _timed(doc: dict[str, Any], ignore_threads: bool) -> dict[tuple, dict[str, Any]]:
    out = {}
    for r in doc["results"]:
        if r["status"] == "ok" and r["time_s"]:
            out[(r["descriptor"], r["op"], r["impl"], None if ignore_threads else r["threads"], r["dtype"])] = r
    return out


def compare(a: dict[str, Any], b: dict[str, Any], ignore_threads: bool = False) -> str:
    """A Markdown table of B's speed-up over A for every record timed in both, and the geomean per
    implementation. Records timed in only one of the runs are counted below the table. `ignore_threads` matches
    records of different thread counts (e.g. each machine with all its cores; the last record of a key wins)."""
    ta, tb = _timed(a, ignore_threads), _timed(b, ignore_threads)
    shared = [k for k in ta if k in tb]
    rows, ratios = [], {}
    for k in shared:
        ra, rb = ta[k], tb[k]
        ratio = ra["time_s"]["median"] / rb["time_s"]["median"]
        ratios.setdefault(k[2], []).append(ratio)
        rows.append(
            [
                ra["case"],
                ra["op"],
                ra["impl"],
                f"{ra['threads']}t/{rb['threads']}t {k[4]}",
                f"{ra['time_s']['median'] * 1e3:.3f}",
                f"{rb['time_s']['median'] * 1e3:.3f}",
                f"{ratio:.2f}x",
            ]
        )
    la, lb = a["machine"]["label"], b["machine"]["label"]
    head = f"A: {la}, {a['created']} ({a['command']})\nB: {lb}, {b['created']} ({b['command']})\n"
    if not shared:
        return (
            head
            + "\nNo record was timed in both runs (matched on descriptor, op, implementation, dtype"
            + (")." if ignore_threads else ", threads; --ignore-threads drops the threads).")
        )
    table = markdown(
        ["case", "op", "implementation", "threads A/B, dtype", "A median ms", "B median ms", "B speed-up"], rows
    )
    summary = markdown(
        ["implementation", "cases", "geomean B speed-up"],
        [[impl, len(v), f"{geomean(v):.2f}x"] for impl, v in ratios.items()],
    )
    only = f"\nTimed only in A: {len(ta) - len(shared)}; only in B: {len(tb) - len(shared)}."
    return f"{head}\n{table}\n\n{summary}\n{only}"
