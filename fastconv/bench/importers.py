"""`fastconv bench import`: other tools' benchmark results as a fastconv results file, for `report` and `compare`.

fastconv bench import onednn.log --machine "Xeon 8480 56c" --threads 56
fastconv bench import deepbench_v100.csv --format deepbench --machine "V100 (DeepBench)" --device gpu --threads 1

Formats: oneDNN benchdnn perf lines (fastconv.bench.import_benchdnn) and DeepBench convolution CSV
(fastconv.bench.import_deepbench); `--format auto` picks benchdnn for a file with a `perf,` or `Output template:`
line, else DeepBench. Each timed (case, op) becomes one `baseline` record: the implementation `onednn:<impl>`
(or `deepbench`, or `--impl`), the time in `time_s.median` being the statistic `--time` names (default `avg`
where the line has it, else `min`), `min`/`max` what the line gives (else that same time), `repeats` 1 (the tools
do not print their count), FLOPs and bytes counted as fastconv counts them (padding taps included), and a message
saying where it came from. Nothing is checked against the reference: `max_rel_err` is null.

Cases are matched onto fastconv's by shape: an imported problem equal to a case of the `--match` suites (default
`quick`) apart from its name takes that case's name and descriptor, so it lands in the same report row as our run.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import fastconv

from . import import_benchdnn, import_deepbench, results, suites
from .descriptor import to_descriptor
from .import_common import IMPORTED, STATS, Entry, Skip, where_error
from .ops import flops, traffic_bytes


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror})") from None


def detect(lines: Sequence[str]) -> str:
    """'benchdnn' when some line starts with `perf,` or `Output template:`, else 'deepbench'."""
    marks = ("perf,", import_benchdnn.HEADER)
    return "benchdnn" if any(line.lstrip().startswith(marks) for line in lines) else "deepbench"


def read(
    path: Path, fmt: str = "auto", template: str | None = None, device: str = "cpu", default_unit: str = "us"
) -> tuple[str, list[Entry], collections.Counter]:
    """(format, entries, skipped lines counted by reason) of one file; ValueError naming file and line."""
    lines = _lines(path)
    if fmt == "auto":
        fmt = "benchdnn" if template else detect(lines)
    if fmt == "benchdnn":
        items = import_benchdnn.read(lines, str(path), template, device)
    else:
        items = import_deepbench.read(lines, str(path), device, default_unit=default_unit)
    entries, skipped = [], collections.Counter()
    for item in items:
        if isinstance(item, Skip):
            skipped[str(item)] += 1
        else:
            entries.append(item)
    if not entries:
        why = ", ".join(f"{n} {reason}" for reason, n in skipped.items()) or "the file is empty"
        raise ValueError(f"{path}: no {fmt} results in it ({why})")
    return fmt, entries, skipped


def match_cases(entries: list[Entry], suite_names: Sequence[str]) -> list[Entry]:
    """Entries whose problem equals a suite case's apart from the name take that case's problem (and name)."""
    known = {}
    for name in suite_names:
        for case in suites.suite_cases(name):
            known.setdefault(to_descriptor(dataclasses.replace(case.problem, name="")), case.problem)
    out = []
    for e in entries:
        ours = known.get(to_descriptor(dataclasses.replace(e.case.problem, name="")))
        out.append(dataclasses.replace(e, case=dataclasses.replace(e.case, problem=ours)) if ours else e)
    return out


def _stat(entry: Entry, wanted: str) -> str:
    if wanted == "auto":
        return next(s for s in ("avg", *STATS) if s in entry.times_ms)
    if wanted not in entry.times_ms:
        raise where_error(entry.where, f"--time {wanted}: the line gives only {', '.join(entry.times_ms)}")
    return wanted


def record(entry: Entry, threads: int, stat: str = "auto", impl: str | None = None) -> dict[str, Any]:
    """The results record of one entry (schema version 1)."""
    stat = _stat(entry, stat)
    t = {s: ms / 1e3 for s, ms in entry.times_ms.items()}
    case, used = entry.case, t[stat]
    unknown = [s for s in ("min", "max") if s not in t]
    message = f"{IMPORTED}{entry.where} ({entry.detail}); time_s.median is its {stat} time" + (
        f" ({' and '.join(unknown)} not given: set to it)" if unknown else ""
    )
    return {
        "case": case.problem.name or to_descriptor(case.problem),
        "descriptor": to_descriptor(case.problem),
        "op": case.op,
        "impl": impl or entry.impl,
        "kind": "baseline",
        "backend": entry.backend,
        "algo": entry.selected or entry.backend,
        "selected_algo": entry.selected,
        "device": entry.device,
        "dtype": entry.dtype,
        "precision": entry.precision,
        "threads": threads,
        "flops": flops(case),
        "bytes": traffic_bytes(case, np.dtype(entry.dtype).itemsize),
        "status": "ok",
        "message": message,
        "max_rel_err": None,
        "tolerance": 0.0,
        "copies": 1,
        "time_s": {"median": used, "min": t.get("min", used), "max": t.get("max", used), "repeats": 1},
    }


def machine(label: str, threads: int, cpu: str | None = None, cores: int | None = None) -> dict[str, Any]:
    """A fingerprint from what the user says of the machine; what is not said is "unknown" or null."""
    n = cores or threads
    return {
        "label": label,
        "hostname": "unknown",
        "os": "unknown",
        "memory_bytes": None,
        "cpu": {
            "model": cpu or "unknown",
            "id": "",
            "logical_cores": n,
            "usable_cores": n,
            "isa": [],
            "l2_bytes": None,
            "l3_bytes": None,
        },
        "gpus": [],
        "env": {},
    }


def import_files(
    paths: Sequence[Path],
    label: str,
    threads: int,
    *,
    fmt: str = "auto",
    template: str | None = None,
    stat: str = "auto",
    device: str = "cpu",
    impl: str | None = None,
    match: Sequence[str] = ("quick",),
    cpu: str | None = None,
    cores: int | None = None,
    default_unit: str = "us",
    note: str = "",
    command: str = "fastconv bench import",
) -> tuple[dict[str, Any], list[str]]:
    """The results document of the files, and one summary line per file (records, lines skipped by reason)."""
    if threads < 1 or (cores is not None and cores < 1):
        raise ValueError(f"--threads and --cores must be >= 1, got {threads} and {cores}")
    records, lines, formats = [], [], []
    for path in map(Path, paths):
        fmt_used, entries, skipped = read(path, fmt, template, device, default_unit)
        entries = match_cases(entries, [m for m in match if m != "none"])
        records += [record(e, threads, stat, impl) for e in entries]
        formats.append(fmt_used)
        counts = "; ".join(f"{n} {reason}" for reason, n in sorted(skipped.items())) or "none"
        lines.append(f"{path}: {fmt_used}, {len(entries)} records; lines skipped: {counts}")
    dtypes = collections.Counter(r["dtype"] for r in records)
    settings = {
        "suites": sorted(set(formats)),
        "ops": sorted({r["op"] for r in records}),
        "dtype": dtypes.most_common(1)[0][0],
        "threads": [threads],
        "batch": None,
        "warmup": 0,
        "min_repeats": 1,
        "min_time_s": 0.0,
        "max_time_s": 0.0,
        "rotate_bytes": 0,
    }
    software = {
        "fastconv": fastconv.__version__,
        "git_sha": None,
        "git_dirty": None,
        "python": "unknown",
        "numpy": "unknown",
        "blas": None,
        "numba": None,
        "cupy": None,
        "torch": None,
    }
    what = f"{IMPORTED}{'; '.join(lines)} (fastconv bench import)"
    doc = results.document(
        machine(label, threads, cpu, cores), software, settings, [], records, command, f"{what}. {note}".strip()
    )
    return doc, lines


def _run(args: argparse.Namespace) -> int:
    doc, lines = import_files(
        args.files,
        args.machine,
        args.threads,
        fmt=args.format,
        template=args.perf_template,
        stat=args.time,
        device=args.device,
        impl=args.impl,
        match=args.match or ["quick"],
        cpu=args.cpu,
        cores=args.cores,
        default_unit=args.unit,
        note=args.note,
        command="fastconv " + shlex.join(sys.argv[1:]),
    )
    for line in lines:
        print(line, file=sys.stderr)
    out = Path(args.out)
    path = results.save(doc, out if out.suffix == ".json" else results.default_path(doc, out))
    print(f"results: {path} ({len(doc['results'])} records)")
    return 0


def register(more: argparse._SubParsersAction, clean_errors) -> None:
    """The `import` subcommand of `fastconv bench`."""
    p = more.add_parser(
        "import",
        help="oneDNN benchdnn perf lines or DeepBench CSV as a results file",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = p.add_argument
    add("files", nargs="+", type=Path, help="benchdnn logs or DeepBench CSV files")
    add("--machine", required=True, metavar="NAME", help="the machine label its results get in reports")
    add("--threads", required=True, type=int, metavar="N", help="threads the tool ran with (1 for a GPU run)")
    add("--format", default="auto", choices=("auto", "benchdnn", "deepbench"))
    add("--perf-template", metavar="T", help="benchdnn --perf-template of the lines (default: the file's own)")
    add(
        "--time",
        default="auto",
        choices=("auto", "avg", "min", "max"),
        help="the time reports use (auto: avg, else min)",
    )
    add("--device", default="cpu", choices=("cpu", "gpu"), help="where they ran, when the lines do not say")
    add("--impl", metavar="LABEL", help="implementation label for every record (default onednn:<impl>, deepbench)")
    add("--match", action="append", metavar="SUITE", help="suites whose cases take matching shapes; 'none'")
    add("--unit", default="us", choices=("us", "ms", "s"), help="DeepBench time columns without a unit (us)")
    add("--cpu", metavar="MODEL", help="CPU model for the machines table")
    add("--cores", type=int, metavar="N", help="cores of the machine (default: --threads)")
    add("--note", default="", help="stored with the results, e.g. the oneDNN version")
    add("--out", default="bench_results", help="results file (.json) or directory (default bench_results/)")
    p.set_defaults(run=clean_errors(_run))
