"""`fastconv bench compare A B`: the speed of run B relative to run A, case by case.

Records are matched on (benchdnn descriptor, op, implementation, threads, dtype), or without the threads
(`--ignore-threads`, to set machines with different core counts side by side); the ratio is A's median time over
B's, so 2.00x means B took half the time. Per implementation, the geometric mean of the ratios.

`--impl-a PATTERN --impl-b PATTERN` sets two implementations side by side instead (shell-style patterns, e.g.
`numba/auto` against `onednn:*` from `fastconv bench import`): the records of A whose implementation matches the
first pattern are matched with those of B matching the second, on everything else.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from .tables import geomean, markdown


def _timed(doc: dict[str, Any], ignore_threads: bool, impl: str | None = None) -> dict[tuple, dict[str, Any]]:
    """Timed records by key; with `impl`, only those whose implementation matches it, keyed by the pattern."""
    out = {}
    for r in doc["results"]:
        if r["status"] != "ok" or not r["time_s"] or (impl is not None and not fnmatchcase(r["impl"], impl)):
            continue
        key = (r["descriptor"], r["op"], impl or r["impl"], None if ignore_threads else r["threads"], r["dtype"])
        if impl is not None and key in out and out[key]["impl"] != r["impl"]:
            raise ValueError(
                f"{impl!r} matches both {out[key]['impl']} and {r['impl']} for {r['case']} {r['op']}; "
                "narrow the pattern"
            )
        out[key] = r
    return out


def compare(
    a: dict[str, Any],
    b: dict[str, Any],
    ignore_threads: bool = False,
    impl_a: str | None = None,
    impl_b: str | None = None,
) -> str:
    """A Markdown table of B's speed-up over A for every record timed in both, and the geomean per
    implementation. Records timed in only one of the runs are counted below the table. `ignore_threads` matches
    records of different thread counts (e.g. each machine with all its cores; the last record of a key wins).
    `impl_a` and `impl_b` (given together) match A's records of one implementation pattern with B's of another."""
    if (impl_a is None) != (impl_b is None):
        raise ValueError("--impl-a and --impl-b go together")
    ta, tb = _timed(a, ignore_threads, impl_a), _timed(b, ignore_threads, impl_b)
    tb = {(*k[:2], impl_a, *k[3:]): r for k, r in tb.items()} if impl_a is not None else tb
    shared = [k for k in ta if k in tb]
    rows, ratios = [], {}
    for k in shared:
        ra, rb = ta[k], tb[k]
        ratio = ra["time_s"]["median"] / rb["time_s"]["median"]
        ratios.setdefault(k[2] if impl_a is None else f"{impl_a} vs {impl_b}", []).append(ratio)
        rows.append(
            [
                ra["case"],
                ra["op"],
                ra["impl"] if ra["impl"] == rb["impl"] else f"{ra['impl']} vs {rb['impl']}",
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
