"""summary.md of a gpu-check run, read back from the files its steps wrote: the steps and their outcomes, the
environment, test counts (JUnit XML), sanitizer verdicts (their logs), the memory-bound ops against the copy
bandwidth (memops.json) and fastconv's speed relative to the baselines (the bench results files).

Speed relative to a baseline: t_baseline / t_fastconv per case from the median times (1.0 = as fast; 0.6 = 60% of
the baseline's speed), summarised per op as the geometric mean and the minimum over the cases that both ran.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..bench.tables import markdown as md_table
from .execute import Outcome

CONV_OPS = ("fwd", "bwd-data", "bwd-weight")
GROUPS = {"pool-fwd": "pool", "pool-bwd": "pool", "bn-fwd": "bn", "bn-bwd": "bn"}
CPU_BASELINES = [("torch-nchw", "torch-cl"), ("numpy-ref",)]  # numpy-ref: what the --cpu-smoke run times
TARGET_GEOMEAN, TARGET_MIN = 0.6, 0.3  # issue 14: conv geomean >= 0.6x cuDNN fp32, none below 0.3x


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def speedups(doc: dict[str, Any], ours: str, baselines: tuple[str, ...]) -> dict[tuple[int, str], list]:
    """(threads, op) -> [(case, t_baseline / t_ours)], the baseline being the fastest of `baselines` that ran the
    case (torch's better layout on the CPU)."""
    times = {
        (r["case"], r["op"], r["threads"], r["impl"]): r["time_s"]["median"]
        for r in doc["results"]
        if r["status"] == "ok" and r["time_s"]
    }
    out: dict[tuple[int, str], list] = defaultdict(list)
    for (case, op, threads, impl), t in times.items():
        base = [times[k] for b in baselines if (k := (case, op, threads, b)) in times]
        if impl == ours and base:
            out[(threads, op)].append((case, min(base) / t))
    return dict(out)


def speedup_rows(found: dict[tuple[int, str], list], target: bool) -> list[list[str]]:
    """Table rows per thread count: each op, the pooling and BN groups, and all conv ops together."""
    rows = []
    for threads in sorted({t for t, _ in found}):
        per = defaultdict(list)
        for (t, op), values in found.items():
            if t == threads:
                per[GROUPS.get(op, op)] += values
        per["all conv"] = [v for op in CONV_OPS for v in per.get(op, [])]
        for name, values in per.items():
            if not values:
                continue
            g, (worst_case, worst) = geomean([v for _, v in values]), min(values, key=lambda cv: cv[1])
            row = [str(threads), name, str(len(values)), f"{g:.2f}x", f"{worst:.2f}x ({worst_case})"]
            row.append(f"{max(v for _, v in values):.2f}x")
            if target:
                meets = name in CONV_OPS + ("all conv",) and g >= TARGET_GEOMEAN and worst >= TARGET_MIN
                row.append(("yes" if meets else "no") if name in CONV_OPS + ("all conv",) else "-")
            rows.append(row)
    return rows


def bench_section(path: Path, ours: str, baselines: list[tuple[str, ...]], target: bool) -> list[str]:
    if not path.is_file():
        return [f"`{path.name}`: not written."]
    doc = json.loads(path.read_text())
    lines = [f"`{path.name}`: `{doc['command']}`" + (f" (note: {doc['note']})" if doc["note"] else ""), ""]
    head = ["threads", "op", "cases", "geomean", "min (case)", "max"] + (["meets target"] if target else [])
    tables = 0
    for base in baselines:
        rows = speedup_rows(speedups(doc, ours, base), target)
        title = f"{ours} speed relative to {' / '.join(base)}" + (" (the faster of them)" if len(base) > 1 else "")
        if rows:
            lines += [f"{title}:", "", md_table(head, rows), ""]
            tables += 1
    if not tables:
        lines += [f"(no case ran on both {ours} and one of {', '.join(b for base in baselines for b in base)})", ""]
    bad = [r for r in doc["results"] if r["status"] in ("wrong", "error")]
    for r in bad[:20]:
        lines.append(f"- {r['status'].upper()} {r['impl']} {r['case']} {r['op']}: {(r['message'] or '')[:200]}")
    if len(bad) > 20:
        lines.append(f"- ... and {len(bad) - 20} more")
    return lines


def junit(path: Path) -> str:
    """'N passed, F failed, E errors, S skipped in T s' with the first failing tests, from a JUnit XML file."""
    if not path.is_file():
        return "no JUnit XML written"
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    seconds = sum(float(s.get("time", 0)) for s in suites)
    passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    text = f"{passed} passed, {n['failures']} failed, {n['errors']} errors, {n['skipped']} skipped in {seconds:.0f} s"
    failing = [
        f"{c.get('classname')}::{c.get('name')}"
        for c in root.iter("testcase")
        if c.find("failure") is not None or c.find("error") is not None
    ]
    more = f"\n  - ... {len(failing) - 15} more" if len(failing) > 15 else ""
    return text + "".join(f"\n  - {f}" for f in failing[:15]) + more


def sanitizer(log: Path) -> str:
    """compute-sanitizer's summary line(s) from a step log, e.g. 'ERROR SUMMARY: 0 errors'."""
    if not log.is_file():
        return "no log"
    found = re.findall(r"(?:ERROR|RACECHECK|LEAK) SUMMARY:.*", log.read_text(errors="replace"))
    return "; ".join(dict.fromkeys(found)) or "no sanitizer summary line in the log"


def _bench_note(path: Path, ours: str, *baselines: tuple[str, ...]) -> str:
    """The conv geomean against the first of `baselines` that ran any case."""
    if not path.is_file():
        return "no results file"
    doc = json.loads(path.read_text())
    for base in baselines:
        found = speedups(doc, ours, base)
        conv = [v for (_, op), values in found.items() if op in CONV_OPS for _, v in values]
        if conv:
            return f"conv geomean {geomean(conv):.2f}x {' / '.join(base)} over {len(conv)} cases"
    return ""


def _memops_note(path: Path) -> str:
    if not path.is_file():
        return "no memops.json"
    report = json.loads(path.read_text())
    shares = [r["share_of_copy"] for r in report["ops"]]
    return f"{100 * min(shares):.0f}-{100 * max(shares):.0f}% of the {report['copy']['gbs']:.0f} GB/s copy bandwidth"


def _env_lines(run_dir: Path) -> list[str]:
    from .envinfo import lines  # noqa: PLC0415

    return lines(json.loads((run_dir / "env.json").read_text()))


def _guarded(fn: Callable[[], list[str]], what: str) -> list[str]:
    """A section's lines, or one line saying why they could not be read (a half-written file of a stopped step)."""
    try:
        return fn()
    except (OSError, ValueError, KeyError, TypeError, ET.ParseError) as exc:
        return [f"{what}: unreadable ({type(exc).__name__}: {exc})", ""]


def _notes(run_dir: Path, o: Outcome) -> str:
    """A step's key result for the steps table."""
    if o.status in ("skipped", "dry-run"):
        return o.reason
    extra = {
        "tests-small": lambda: junit(run_dir / "tests-small.xml").splitlines()[0],
        "tests-production": lambda: junit(run_dir / "tests-production.xml").splitlines()[0],
        "memcheck": lambda: sanitizer(run_dir / "logs" / "memcheck.log"),
        "racecheck": lambda: sanitizer(run_dir / "logs" / "racecheck.log"),
        "env": lambda: _env_lines(run_dir)[1],
        "memops": lambda: _memops_note(run_dir / "memops.json"),
        "bench-gpu-quick": lambda: _bench_note(run_dir / "gpu-quick.json", "cuda/auto", ("torch-cuda-fp32",)),
        "bench-gpu-resnet50": lambda: _bench_note(run_dir / "gpu-resnet50.json", "cuda/auto", ("torch-cuda-fp32",)),
        "bench-cpu-quick": lambda: _bench_note(run_dir / "cpu-quick.json", "numba/auto", *CPU_BASELINES),
    }.get(o.name)
    try:
        found = extra() if extra else ""
    except (OSError, ValueError, KeyError, ET.ParseError) as exc:  # a half-written file of a stopped step
        found = f"unreadable output ({type(exc).__name__})"
    return "; ".join(x for x in (o.reason, found) if x)


def markdown(run_dir: Path, outcomes: list[Outcome], meta: dict[str, Any]) -> str:
    lines = [
        f"# fastconv gpu-check: {meta['label']}",
        "",
        f"Started {meta['started']} UTC, {meta['seconds']:.0f} s of a {meta['budget_s']:.0f} s budget"
        + (" — **dry run** (GPU steps listed, not run)" if meta["dry_run"] else "")
        + f". Command: `{meta['command']}`. Folder: `{run_dir}`.",
        "",
        "## Steps",
        "",
        md_table(
            ["step", "status", "seconds", "timeout", "result", "log"],
            [
                [o.name, o.status, f"{o.seconds:.1f}", "-" if o.timeout_s is None else f"{o.timeout_s:.0f}"]
                + [_notes(run_dir, o).replace("|", "/"), o.log or "-"]
                for o in outcomes
            ],
        ),
        "",
    ]
    if (run_dir / "env.json").is_file():
        lines += ["## Environment", ""]
        lines += _guarded(lambda: [f"- {x}" for x in _env_lines(run_dir)] + [""], "env.json")
    for mode in ("small", "production"):
        xml = run_dir / f"tests-{mode}.xml"
        if xml.is_file():
            lines += [f"## GPU tests at {mode} tunables", "", *_guarded(lambda xml=xml: [junit(xml), ""], xml.name)]
    if (run_dir / "memops.md").is_file():
        lines += ["## Memory-bound ops against the copy bandwidth", "", (run_dir / "memops.md").read_text()]
    gpu = [("torch-cuda-fp32",), ("torch-cuda-tf32",)]
    sections = [
        ("gpu-quick", "GPU, quick suite: cuda against cuDNN", "cuda/auto", gpu, True),
        ("gpu-resnet50", "GPU, ResNet-50 conv layers, N=32: cuda against cuDNN", "cuda/auto", gpu, True),
        ("cpu-quick", "CPU quick suite on the host cores", "numba/auto", CPU_BASELINES, False),
    ]
    for name, title, ours, baselines, target in sections:
        path = run_dir / f"{name}.json"
        if path.is_file():
            lines += [f"## {title}", ""]
            lines += _guarded(lambda p=path, o=ours, b=baselines, t=target: bench_section(p, o, b, t), path.name)
            lines.append("")
    lines += [
        "## Next",
        "",
        "Copy this folder to `bench_results/gpu/` in the checkout and add its results to the report:",
        f"`fastconv bench report bench_results/ bench_results/gpu/{run_dir.name}/ --out bench_results/`.",
        "",
    ]
    return "\n".join(lines)
