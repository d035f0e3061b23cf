"""`fastconv bench`: run suites and cases (check, then time), and `report`, `compare`, `cases`, `schema`.

fastconv bench                                  # the quick suite on every available backend + baselines
fastconv bench --suite resnet50 --ops fwd --threads 1,2 --batch 1
fastconv bench --case 'mb8ic64ih56oc64oh56kh3ph1n"my_conv"' --algos all
fastconv bench report bench_results/ --out bench_results/
fastconv bench compare old.json new.json
fastconv bench import onednn.log --machine "Xeon 8480 56c" --threads 56   # benchdnn/DeepBench results as a file
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .. import dispatch
from ..precision import PRECISIONS
from . import ceilings, importers, machine, results, suites, tables
from .cases import Case, ops_for
from .compare import compare
from .descriptor import parse, to_descriptor
from .impls import BASELINES, FastconvImpl, TorchImpl, baseline, torch_status
from .ops import REGISTRY_OP, flops
from .report import write_report
from .runner import RunConfig, applies, run
from .schema import SCHEMA
from .timing import Policy, Progress


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _cases(args: argparse.Namespace) -> list[Case]:
    ops = suites.expand_ops(args.ops and _csv(args.ops))
    chw = tuple(args.input) if args.input else None
    cases: list[Case] = []
    for name in args.suite or ([] if args.case else ["quick"]):
        cases += suites.suite_cases(name, ops, chw)
    for text in args.case or []:
        problem = parse(text)
        cases += [Case(problem, op) for op in ops_for(problem) if op in ops]
    if not cases:
        raise ValueError(f"no cases: the suites and --case descriptors have no op among {', '.join(ops)}")
    return suites.with_batch(cases, args.batch)


def _default_backends() -> list[str]:
    """The backends fastconv would choose by itself for NumPy and CuPy arrays, without the reference."""
    names = []
    for kind in ("numpy", "cupy"):
        try:
            names += [b.name for b in dispatch.candidates(kind, None, "bench")]
        except RuntimeError:  # nothing usable for that array kind here
            continue
    return [n for n in names if n != "numpy"]


def _algos_for(backend: str, cases: list[Case], wanted: list[str]) -> list[str]:
    registered = list(dict.fromkeys(a for c in cases for a in dispatch.algos(REGISTRY_OP[c.op], backend)))
    out = []
    for name in wanted:
        if name == "all":
            out += registered
        elif name in ("auto", "autotune") or name in registered:
            out.append(name)
        else:
            raise ValueError(
                f"backend {backend!r} has no algorithm {name!r} for these ops; it has {', '.join(registered) or 'none'}"
            )
    return list(dict.fromkeys(out))


def _impls(args: argparse.Namespace, cases: list[Case]) -> tuple[list, list[str]]:
    """The implementations to time, and a note for each requested one that cannot run here."""
    status = dispatch.backends()
    names = (
        _default_backends() if args.backends == "default" else [] if args.backends == "none" else _csv(args.backends)
    )
    notes, impls = [], []
    for name in names:
        if name not in status:
            raise ValueError(f"unknown backend {name!r}; backends: {', '.join(status)}")
        if not status[name].available:
            notes.append(f"backend {name} skipped: {status[name].reason}")
            continue
        impls += [
            FastconvImpl(name, algo, precision=args.precision) for algo in _algos_for(name, cases, _csv(args.algos))
        ]
    wanted = (
        list(BASELINES) if args.baselines == "default" else [] if args.baselines == "none" else _csv(args.baselines)
    )
    for name in wanted:
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r}; baselines: {', '.join(BASELINES)}")
        b = baseline(name, args.precision)
        why = torch_status(b.device) if isinstance(b, TorchImpl) else None
        if why:
            notes.append(f"baseline {name} skipped: {why}")
        else:
            impls.append(b)
    if not impls:
        raise ValueError("nothing to time: no backend or baseline is available (see the notes above)")
    return impls, notes


def _clean_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Bad cases, suites, backends or files end the command with their message, not a traceback."""

    @functools.wraps(handler)
    def run_handler(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (ValueError, LookupError) as exc:
            print(f"fastconv bench: error: {exc}", file=sys.stderr)
            return 2

    return run_handler


@_clean_errors
def _run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    cases = _cases(args)
    impls, notes = _impls(args, cases)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    threads = args.threads or [machine.usable_cores()]
    fingerprint = machine.fingerprint(args.label)
    print(
        f"fastconv bench on {fingerprint['label']}: {len(cases)} cases x {len(impls)} implementations x "
        f"threads {threads}, {args.dtype}" + ("" if args.precision == "fp32" else f", precision {args.precision}"),
        file=sys.stderr,
    )
    if not args.no_ceilings:
        print("measuring the ceilings (GEMM peak, copy bandwidth) ...", file=sys.stderr)
    ceiling = [] if args.no_ceilings else ceilings.cpu_ceilings(threads, args.dtype) + ceilings.gpu_ceilings(args.dtype)
    if ceiling and args.precision == "bf16":
        ceiling += ceilings.cpu_bf16_ceilings(threads)
    policy = Policy(args.warmup, args.repeats, args.min_time, args.max_time)
    deadline = None if args.time_limit is None else started + args.time_limit
    cfg = RunConfig(
        cases, impls, args.dtype, threads, policy, args.rotate_mib << 20, args.seed, args.precision, deadline
    )
    work = sum(applies(i, c) for c in cases for i in impls) * len(threads)
    records = run(cfg, Progress(work, enabled=None if not args.quiet else False))
    if len(records) < work:
        cut = f"time limit {args.time_limit:g} s reached: {work - len(records)} of {work} records not run"
        print(f"note: {cut}", file=sys.stderr)
        args.note = f"{args.note}; {cut}" if args.note else cut
    settings = {
        "suites": args.suite or ([] if args.case else ["quick"]),
        "ops": sorted({c.op for c in cases}),
        "dtype": args.dtype,
        "threads": threads,
        "batch": args.batch,
        "warmup": args.warmup,
        "min_repeats": args.repeats,
        "min_time_s": args.min_time,
        "max_time_s": args.max_time,
        "rotate_bytes": args.rotate_mib << 20,
    }
    command = "fastconv " + shlex.join(sys.argv[1:])
    doc = results.document(fingerprint, machine.software(), settings, ceiling, records, command, args.note)
    if ceiling:
        print(f"ceilings: {tables.ceilings_line(ceiling)}")
    for (t, dtype), group in tables.groups(records).items():
        print(f"\n{fingerprint['label']}, {t} thread(s), {dtype} (median rates):\n\n{tables.run_table(group, ceiling)}")
    bad = tables.failures(records)
    for line in bad:
        print(f"FAILED {line}")
    if not args.no_save:
        out = Path(args.out)
        path = results.save(doc, out if out.suffix == ".json" else results.default_path(doc, out))
        print(f"\nresults: {path} (`fastconv bench report {path.parent}` merges it with other runs)")
    return 1 if bad else 0


@_clean_errors
def _list_cases(args: argparse.Namespace) -> int:
    rows = [
        [c.problem.name or "-", c.op, f"`{to_descriptor(c.problem)}`", f"{flops(c) / 1e9:.3f}"] for c in _cases(args)
    ]
    print(tables.markdown(["case", "op", "benchdnn descriptor", "GFLOP"], rows))
    return 0


@_clean_errors
def _report(args: argparse.Namespace) -> int:
    files, docs, skipped = results.load_all(args.files)
    for f in skipped:
        print(f"note: skipped {f}: not a fastconv bench results file", file=sys.stderr)
    path = write_report(docs, Path(args.out), [str(f) for f in files], plots=not args.no_plots)
    print(f"report: {path}")
    return 0


@_clean_errors
def _compare(args: argparse.Namespace) -> int:
    a, b = results.load(args.a), results.load(args.b)
    print(compare(a, b, args.ignore_threads, args.impl_a, args.impl_b))
    return 0


def _case_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--suite",
        action="append",
        metavar="NAME",
        help="'quick' (default) or a model of fastconv.models (its distinct conv layers); repeatable",
    )
    p.add_argument(
        "--case",
        action="append",
        metavar="DESC",
        help="a oneDNN benchdnn problem descriptor, e.g. 'mb8ic64ih56oc64oh56kh3ph1n\"my_conv\"'; repeatable",
    )
    p.add_argument(
        "--ops",
        metavar="LIST",
        help="comma-separated: fwd, bwd-data, bwd-weight, pool (pool-fwd, pool-bwd), bn (bn-fwd, bn-bwd); default all",
    )
    p.add_argument("--batch", type=int, metavar="N", help="set every case's batch size (benchdnn's --mb)")
    p.add_argument("--input", type=int, nargs=3, metavar=("C", "H", "W"), help="model input for arch suites")


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser(
        "bench",
        help="benchmark kernels against baselines; reports across machines",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n\n")[1:]),
    )
    _case_options(bench)
    add = bench.add_argument
    add(
        "--backends",
        default="default",
        metavar="LIST",
        help="fastconv backends to time: 'default' (those "
        "fastconv picks by itself, except the numpy reference), 'none', or a comma-separated list",
    )
    add(
        "--algos",
        default="auto",
        metavar="LIST",
        help="'auto' (default: what dispatch picks by shape), "
        "'autotune' (auto inside fastconv.autotune()), 'all' (every registered algorithm), or names",
    )
    add(
        "--baselines",
        default="default",
        metavar="LIST",
        help=f"'default' (all of {', '.join(BASELINES)} that can run here), 'none', or a list",
    )
    add("--dtype", default="float32", choices=("float32", "float64"))
    add(
        "--precision",
        default="fp32",
        choices=PRECISIONS,
        help="compute precision of the conv cases (fastconv's precision=; torch CPU baselines on bfloat16 tensors)",
    )
    add("--threads", type=_ints, metavar="LIST", help="thread counts, e.g. 1,2 (default: the usable cores)")
    add("--warmup", type=int, default=1, help="untimed calls after the checked one (default 1)")
    add("--repeats", type=int, default=5, help="at least this many timed calls (default 5)")
    add("--min-time", type=float, default=0.25, help="and at least this many seconds of them (default 0.25)")
    add("--max-time", type=float, default=2.0, help="but stop once the timed calls took this long (default 2)")
    add("--rotate-mib", type=int, default=256, help="rotate input copies filling this much memory (default 256)")
    add("--seed", type=int, default=0)
    add(
        "--time-limit",
        type=float,
        metavar="S",
        help="start no case later than S seconds after the command started; the results say how many did not run",
    )
    add("--label", help="machine name for report columns (default: CPU model, cores, GPU)")
    add("--note", default="", help="stored with the results, e.g. 'shared machine'")
    add("--out", default="bench_results", help="results file (.json) or directory (default bench_results/)")
    add("--no-save", action="store_true", help="print the tables only")
    add("--no-ceilings", action="store_true", help="skip measuring GEMM peak and copy bandwidth")
    add("--quiet", action="store_true", help="no progress bar")
    bench.set_defaults(run=_run)
    more = bench.add_subparsers(dest="bench_command", metavar="[report|compare|cases|schema|import]")
    rep = more.add_parser("report", help="merge results files into Markdown tables and PNG plots")
    rep.add_argument("files", nargs="+", help="results files or directories of them")
    rep.add_argument("--out", default="bench_results", help="directory for REPORT.md and the plots")
    rep.add_argument("--no-plots", action="store_true")
    rep.set_defaults(run=_report)
    cmp_ = more.add_parser("compare", help="speed-up of run B over run A, case by case")
    cmp_.add_argument("a", type=Path)
    cmp_.add_argument("b", type=Path)
    cmp_.add_argument("--ignore-threads", action="store_true", help="match records of any thread count")
    cmp_.add_argument("--impl-a", metavar="PATTERN", help="A's implementation (e.g. numba/auto), with --impl-b")
    cmp_.add_argument("--impl-b", metavar="PATTERN", help="B's implementation set beside it (e.g. 'onednn:*')")
    cmp_.set_defaults(run=_compare)
    cases = more.add_parser("cases", help="list the cases of suites/descriptors with their benchdnn descriptors")
    _case_options(cases)
    cases.set_defaults(run=_list_cases)
    more.add_parser("schema", help="print the results JSON schema").set_defaults(
        run=lambda args: print(json.dumps(SCHEMA, indent=1)) or 0
    )
    importers.register(more, _clean_errors)
