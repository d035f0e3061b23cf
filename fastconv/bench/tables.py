"""Markdown tables from result records: what `fastconv bench` prints and what the report is made of.

A rate is always derived from the median time: GFLOP/s = flops / median / 1e9, GB/s = bytes / median / 1e9, and
each op is judged by one of them (fastconv.bench.ops.UNIT). A cell that was not timed shows why: `wrong`, `error`,
`unsup.`, or `-` when nothing ran.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from .ops import UNIT

STATUS_CELL = {"wrong": "wrong", "error": "error", "unsupported": "unsup."}


def rate(r: dict[str, Any]) -> float | None:
    """The record's rate in its op's unit, from the median time (None when it was not timed)."""
    if r["status"] != "ok" or not r["time_s"]:
        return None
    work = r["flops"] if UNIT[r["op"]] == "GFLOP/s" else r["bytes"]
    return work / r["time_s"]["median"] / 1e9


def cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    value = rate(r)
    return STATUS_CELL.get(r["status"], "-") if value is None else f"{value:.1f}"


def markdown(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def geomean(values: Sequence[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def _ordered(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def best_fastconv(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The fastest correct fastconv record among `records` (None when none was timed)."""
    timed = [r for r in records if r["kind"] == "fastconv" and rate(r) is not None]
    return min(timed, key=lambda r: r["time_s"]["median"]) if timed else None


def ceiling(
    ceilings: Sequence[dict[str, Any]], unit: str, device: str, threads: int | None, precision: str = "fp32"
) -> float | None:
    """The measured ceiling a rate in `unit` is judged against: the GEMM peak (clean environment; the bfloat16 one
    for a bf16 record) for GFLOP/s, the copy bandwidth for GB/s, of the device and (on the CPU) the thread count;
    None when it was not measured."""
    names = {
        ("GFLOP/s", "cpu"): ("bf16gemm",) if precision == "bf16" else ("sgemm", "dgemm"),
        ("GB/s", "cpu"): ("copy",),
        ("GFLOP/s", "gpu"): ("gpu_sgemm", "gpu_dgemm"),
        ("GB/s", "gpu"): ("gpu_copy",),
    }[(unit, device)]
    for c in ceilings:
        if c["name"] in names and c["env"] in ("clean", "device") and c["threads"] in (threads, None):
            return c["value"]
    return None


def _best_cells(
    records: list[dict[str, Any]], ref: dict[str, Any] | None, ceilings: Sequence[dict[str, Any]]
) -> tuple[str, str, float | None]:
    """The best fastconv record's speed-up over `ref` and its share of the ceiling, as cells, and the ratio."""
    best = best_fastconv(records)
    if best is None:
        return "-", "-", None
    top = ceiling(ceilings, UNIT[best["op"]], best["device"], best["threads"], best.get("precision", "fp32"))
    share = f"{rate(best) / top:.0%}" if top else "-"
    if ref is None or rate(ref) is None:
        return "-", share, None
    ratio = ref["time_s"]["median"] / best["time_s"]["median"]
    return f"{ratio:.2f}x ({best['impl']})", share, ratio


def faster_torch(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The faster torch baseline among the records of one (case, op): the timed torch record with the lowest median
    (torch NCHW or channels_last on the CPU, cuDNN on the GPU; the TF32 one only in a tf32 run, as it computes in
    another precision), or None."""
    timed = [
        r
        for r in records
        if r["kind"] == "baseline"
        and r["impl"].startswith("torch")
        and (r["impl"] != "torch-cuda-tf32" or r.get("precision") == "tf32")
        and rate(r) is not None
    ]
    return min(timed, key=lambda r: r["time_s"]["median"]) if timed else None


def run_table(
    results: Sequence[dict[str, Any]], ceilings: Sequence[dict[str, Any]] = (), reference_impl: str | None = None
) -> str:
    """One row per (case, op), one column per implementation (its rate), then the best fastconv implementation's
    speed-up (time ratio) over `reference_impl`, by default over the faster torch baseline of that case
    (`faster_torch`: the stronger of torch NCHW and channels_last), and its share of the measured ceiling (GEMM peak
    for GFLOP/s, copy bandwidth for GB/s); records of a single thread count and dtype."""
    impls = _ordered(r["impl"] for r in results)
    rows_keys = _ordered((r["case"], r["op"]) for r in results)
    by_key = {(r["case"], r["op"], r["impl"]): r for r in results}
    has_best = any(r["kind"] == "fastconv" for r in results)
    against = reference_impl or "the faster torch"
    header = ["case", "op", "unit", *impls] + ([f"best fastconv vs {against}", "best % of ceiling"] if has_best else [])
    rows, ratios = [], []
    for case, op in rows_keys:
        row = [case, op, UNIT[op], *(cell(by_key.get((case, op, i))) for i in impls)]
        if has_best:
            records = [r for k, r in by_key.items() if k[:2] == (case, op)]
            ref = faster_torch(records) if reference_impl is None else by_key.get((case, op, reference_impl))
            speedup, share, ratio = _best_cells(records, ref, ceilings)
            if ratio is not None and reference_impl is None:
                speedup += f" vs {ref['impl']}"
            row += [speedup, share]
            ratios += [ratio] if ratio is not None else []
        rows.append(row)
    table = markdown(header, rows)
    if ratios:
        over = reference_impl or "the faster torch baseline of each case"
        table += (
            f"\n\nGeomean speed-up of the best fastconv implementation over {over}: "
            f"{geomean(ratios):.2f}x over {len(ratios)} cases."
        )
    return table


def groups(results: Sequence[dict[str, Any]]) -> dict[tuple[int, str], list[dict[str, Any]]]:
    """Records split by (threads, dtype), in first-seen order; a reduced precision is part of the dtype label
    ('float32 bf16')."""
    out: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in results:
        precision = r.get("precision", "fp32")
        dtype = r["dtype"] if precision == "fp32" else f"{r['dtype']} {precision}"
        out.setdefault((r["threads"], dtype), []).append(r)
    return out


def ceilings_line(ceilings: Sequence[dict[str, Any]]) -> str:
    """The ceilings in one line: 'sgemm 2t clean 97.5 GFLOP/s; copy 2t 19.2 GB/s; ...'."""
    parts = []
    for c in ceilings:
        where = f" {c['threads']}t" if c["threads"] else ""
        env = f" ({c['env']} env)" if c["env"] != "device" else ""
        parts.append(f"{c['name']}{where}{env} {c['value']:.1f} {c['unit']}")
    return "; ".join(parts)


def failures(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line per record that was not timed for a reason other than an unsupported shape."""
    return [
        f"{r['case']} {r['op']} {r['impl']} ({r['threads']}t): {r['status']}: {r['message']}"
        for r in results
        if r["status"] in ("wrong", "error")
    ]
