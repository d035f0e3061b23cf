"""`fastconv bench report`: merge results files into one Markdown report with PNG plots.

The report has: the machines side by side (fingerprint, software, measured ceilings); one table with every
(case, op, implementation) as a row and every machine (and thread count, dtype) as a column; per run, the table
`fastconv bench` printed, a bar chart of the cases against the baselines and a roofline against the measured
ceilings; the list of checks that failed. Plots need matplotlib (`pip install "fastconv[bench]"`); without it the
report says so and keeps the tables.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import tables
from .import_common import IMPORTED
from .results import slug
from .tables import markdown


def _run_names(docs: Sequence[dict[str, Any]]) -> list[str]:
    """A distinct name per run: the machine label, then (where that is shared) its suites, then its time, then
    a number."""
    names = [d["machine"]["label"] for d in docs]
    for extra in (
        lambda d: "+".join(d["settings"]["suites"]) or "cases",
        lambda d: d["created"][:19],
        lambda d: f"#{docs.index(d) + 1}",
    ):
        shared = {n for n in names if names.count(n) > 1}
        names = [f"{n}, {extra(d)}" if n in shared else n for n, d in zip(names, docs)]
    return names


def _gb(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**30:.0f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def machines_table(docs: Sequence[dict[str, Any]]) -> str:
    names = _run_names(docs)

    def row(title: str, fn) -> list[str]:
        return [title, *(str(fn(d)) for d in docs)]

    rows = [
        row("CPU", lambda d: d["machine"]["cpu"]["model"]),
        row("CPU id", lambda d: d["machine"]["cpu"]["id"] or "-"),
        row(
            "cores (usable / logical)",
            lambda d: f"{d['machine']['cpu']['usable_cores']} / {d['machine']['cpu']['logical_cores']}",
        ),
        row("ISA", lambda d: " ".join(d["machine"]["cpu"]["isa"]) or "-"),
        row(
            "L2 / L3 per cpu0",
            lambda d: f"{_gb(d['machine']['cpu']['l2_bytes'])} / {_gb(d['machine']['cpu']['l3_bytes'])}",
        ),
        row("memory", lambda d: _gb(d["machine"]["memory_bytes"])),
        row(
            "GPU",
            lambda d: (
                ", ".join(
                    f"{g['name']} (sm {g['compute_capability']}, driver {g['driver']}, CUDA {g['cuda_runtime']})"
                    for g in d["machine"]["gpus"]
                )
                or "none"
            ),
        ),
        row("OS", lambda d: d["machine"]["os"]),
        row("OPENBLAS_CORETYPE", lambda d: d["machine"]["env"].get("OPENBLAS_CORETYPE") or "unset"),
        row(
            "fastconv (git)",
            lambda d: (
                f"{d['software']['fastconv']} ({(d['software']['git_sha'] or '?')[:10]}"
                f"{', dirty' if d['software']['git_dirty'] else ''})"
            ),
        ),
        row(
            "python / numpy / BLAS",
            lambda d: f"{d['software']['python']} / {d['software']['numpy']} / {d['software']['blas']}",
        ),
        row("numba / torch / cupy", lambda d: " / ".join(str(d["software"][k]) for k in ("numba", "torch", "cupy"))),
        row("run", lambda d: f"{d['created']}: `{d['command']}`"),
        row("note", lambda d: d["note"] or "-"),
    ]
    keys = list(dict.fromkeys((c["name"], c["threads"], c["env"]) for d in docs for c in d["ceilings"]))
    for name, threads, env in keys:
        title = f"ceiling {name}" + (f" {threads}t" if threads else "") + (f" ({env} env)" if env != "device" else "")
        rows.append(
            [
                title,
                *(
                    next(
                        (
                            f"{c['value']:.1f} {c['unit']}"
                            for c in d["ceilings"]
                            if (c["name"], c["threads"], c["env"]) == (name, threads, env)
                        ),
                        "-",
                    )
                    for d in docs
                ),
            ]
        )
    return markdown(["", *names], rows)


def machines_as_columns(docs: Sequence[dict[str, Any]]) -> str:
    """Every (case, op, implementation) as a row, every (machine, threads, dtype) as a column: the rate. Runs of
    one machine (label) share its columns; where two measured the same thing the later run's number is shown.
    Cases match on their benchdnn descriptor (a name run at another batch size is another case)."""
    columns, cells = [], {}
    for doc in sorted(docs, key=lambda d: d["created"]):
        for (threads, dtype), records in tables.groups(doc["results"]).items():
            col = f"{doc['machine']['label']}, {threads}t, {dtype}"
            columns += [col] if col not in columns else []
            for r in records:
                cells[(r["descriptor"], r["op"], r["impl"], col)] = r
    keys = {k[:3]: r["case"] for k, r in cells.items()}
    rows = [
        [case, op, impl, tables.UNIT[op], *(tables.cell(cells.get((desc, op, impl, c))) for c in columns)]
        for (desc, op, impl), case in keys.items()
    ]
    return markdown(["case", "op", "implementation", "unit", *columns], rows)


def cases_table(docs: Sequence[dict[str, Any]]) -> str:
    seen = {}
    for d in docs:
        for r in d["results"]:
            seen.setdefault((r["descriptor"], r["op"]), r)
    rows = [
        [
            r["case"],
            op,
            f"`{r['descriptor']}`",
            f"{r['flops'] / 1e9:.3f}",
            f"{r['bytes'] / 2**20:.1f}",
            f"{r['flops'] / max(r['bytes'], 1):.1f}",
        ]
        for (_, op), r in seen.items()
    ]
    return markdown(["case", "op", "benchdnn descriptor", "GFLOP", "MiB moved", "FLOP/byte"], rows)


def write_report(docs: Sequence[dict[str, Any]], out_dir: Path, sources: Sequence[str], plots: bool = True) -> Path:
    """Write REPORT.md (and the PNGs it shows) into out_dir; returns the report's path. The report owns the
    bars-*.png and roofline-*.png files there: those it did not draw this time are removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    can_plot = plots and importlib.util.find_spec("matplotlib") is not None
    plotted: list[Path] = []
    if can_plot:
        from . import plots as plotting  # noqa: PLC0415 - matplotlib is an optional extra
    parts = [
        "# fastconv benchmark report",
        "",
        f"Generated by `fastconv bench report` from {len(docs)} results file(s): "
        + ", ".join(f"`{s}`" for s in sources)
        + ".",
        "Rates come from the median time: GFLOP/s for convolutions (2 FLOPs per multiply-add, padding taps "
        "included), GB/s for pooling and batch norm (each input read and each output written once). Every "
        "number was checked against the float64 NumPy reference before it was timed; `wrong`/`error` cells "
        "were not timed.",
        "",
    ]
    if any((r["message"] or "").startswith(IMPORTED) for d in docs for r in d["results"]):
        parts[-2] += (
            " Records imported from other tools (`fastconv bench import`: oneDNN benchdnn, DeepBench) were not "
            "checked by fastconv; their message in the results file says where each came from and which time it is."
        )
    if not can_plot:
        parts += [
            "Plots were not drawn: "
            + (
                'matplotlib is not installed (`pip install "fastconv[bench]"`).'
                if plots
                else "disabled with --no-plots."
            ),
            "",
        ]
    parts += [
        "## Machines",
        "",
        machines_table(docs),
        "",
        "## All machines side by side",
        "",
        machines_as_columns(docs),
        "",
    ]
    for name, doc in zip(_run_names(docs), docs):
        for (threads, dtype), records in tables.groups(doc["results"]).items():
            parts += [f"## {name}: {threads} thread(s), {dtype}", "", tables.run_table(records, doc["ceilings"]), ""]
            if can_plot:
                stem = f"{slug(name)}-{threads}t-{dtype}"
                bars = plotting.bars(records, out_dir / f"bars-{stem}.png", f"{name}, {threads}t, {dtype}")
                roofs = plotting.rooflines(records, doc["ceilings"], out_dir, stem, f"{name}, {threads}t, {dtype}")
                drawn = [p for p in [bars, *roofs] if p is not None]
                plotted += drawn
                parts += [f"![cases {name}]({p.name})" for p in drawn] + [""]
    parts += ["## Cases", "", cases_table(docs), ""]
    bad = [line for d in docs for line in tables.failures(d["results"])]
    parts += ["## Checks that failed", ""] + ([f"- {line}" for line in bad] or ["None."]) + [""]
    for old in [*out_dir.glob("bars-*.png"), *out_dir.glob("roofline-*.png")]:
        if old not in plotted:  # a plot of an earlier report: its run is gone or renamed
            old.unlink()
    path = out_dir / "REPORT.md"
    path.write_text("\n".join(parts))
    return path
