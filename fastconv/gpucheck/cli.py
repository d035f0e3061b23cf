"""`fastconv gpu-check`: prove the cuda backend on a GPU in one command (see fastconv/gpucheck/__init__.py).

fastconv gpu-check                          # every step, <= 8 minutes, into bench_results/gpu/<machine>-<time>/
fastconv gpu-check --dry-run --cpu-smoke    # list every step and command; run those that need no GPU, briefly
fastconv gpu-check --only bench-gpu-quick,report --out /tmp/gpu
scripts/gpu_check.sh [options]              # the same from a copied checkout (sets PYTHONPATH)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from .steps import DEFAULT_TOTAL_S, Options, Step, find_sanitizer, plan, select


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _listing(steps: list[Step], why_not) -> list[str]:
    """Every step with its budget and command, and why it will not run where it will not."""
    lines = []
    for i, s in enumerate(steps, 1):
        mode = " (background)" if s.background else ""
        lines.append(f"  {i:2}. {s.name}{mode}, budget {s.budget_s:.0f} s: {s.title}")
        lines.append(f"      $ {s.command()}")
        reason = why_not(s)
        if reason:
            lines.append(f"      [{reason[0]}: {reason[1]}]")
    return lines


def _options(args: argparse.Namespace) -> Options:
    import fastconv  # noqa: PLC0415

    from ..bench import machine  # noqa: PLC0415
    from ..bench.results import slug  # noqa: PLC0415

    root = Path(fastconv.__file__).resolve().parent.parent
    label = args.label or machine.default_label(machine.cpu_info(), machine.gpu_info())
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out).resolve() if args.out else root / "bench_results" / "gpu"
    threads = args.threads or machine.usable_cores()
    return Options(root, out / f"{slug(label)}-{stamp}", label, threads, args.cpu_smoke, find_sanitizer())


def _run(args: argparse.Namespace) -> int:
    import fastconv as fc  # noqa: PLC0415

    from . import summary  # noqa: PLC0415
    from .execute import Executor  # noqa: PLC0415

    started, wall = time.monotonic(), datetime.datetime.now(datetime.timezone.utc)
    opts = _options(args)
    try:
        steps = select(plan(opts), _csv(args.only or ""), _csv(args.skip or ""))
    except ValueError as exc:
        print(f"fastconv gpu-check: error: {exc}", file=sys.stderr)
        return 2
    cuda = fc.backends()["cuda"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(opts.root), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    ex = Executor(opts.run_dir, opts.root, env, args.budget, args.dry_run, None if cuda.available else cuda.reason)
    print(
        f"fastconv gpu-check on {opts.label}{' (dry run)' if args.dry_run else ''}: {len(steps)} steps, "
        f"budget {args.budget:.0f} s, results in {opts.run_dir}\n"
        f"cuda backend: {'available' if cuda.available else 'not available: ' + cuda.reason}\n"
        f"compute-sanitizer: {opts.sanitizer or 'not found'}\n"
        "Plan (bench steps get --time-limit from their timeout at run time; commands run in "
        f"{opts.root} with PYTHONPATH={opts.root}):"
    )
    print("\n".join(_listing(steps, ex.why_not)) + "\n", flush=True)
    interrupted = None
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        outcomes = ex.run(steps)
    except (KeyboardInterrupt, SystemExit) as exc:  # the children are stopped; summarise what finished
        outcomes, interrupted = ex.outcomes, exc
    finally:
        signal.signal(signal.SIGTERM, previous)
    meta = {
        "label": opts.label,
        "started": wall.isoformat(timespec="seconds")[:19],
        "seconds": time.monotonic() - started,
        "budget_s": args.budget,
        "dry_run": args.dry_run,
        "command": "fastconv " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["gpu-check"] else "fastconv gpu-check",
    }
    text = summary.markdown(opts.run_dir, outcomes, meta)
    (opts.run_dir / "summary.md").write_text(text)
    record = {**meta, "run_dir": str(opts.run_dir), "steps": [o.as_dict() for o in outcomes]}
    (opts.run_dir / "summary.json").write_text(json.dumps(record, indent=1) + "\n")
    print("\n" + text)
    bad = [o.name for o in outcomes if o.status in ("failed", "timeout")]
    if interrupted is not None:
        print(f"gpu-check: interrupted ({type(interrupted).__name__}) after {len(outcomes)} steps; {opts.run_dir}")
        return 130
    print(f"gpu-check: {'FAILED steps: ' + ', '.join(bad) if bad else 'every step that ran passed'}; {opts.run_dir}")
    return 1 if bad else 0


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a wrapper's timeout) ends the run like Ctrl-C: children stopped, the summary of what finished."""
    raise SystemExit(128 + signum)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gpu-check",
        help="prove the cuda backend on a GPU: gpu tests, compute-sanitizer, benchmarks against cuDNN, CPU suite",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n\n")[1:]),
    )
    add = p.add_argument
    add("--dry-run", action="store_true", help="list every step and command; run only the steps needing no GPU")
    add("--cpu-smoke", action="store_true", help="shorten the CPU step to one tiny case (tests, dry runs)")
    add("--out", metavar="DIR", help="parent of the run folder (default: bench_results/gpu/ in the checkout)")
    add("--label", help="machine label of the results (default: CPU model, cores, GPU)")
    add("--threads", type=int, help="host threads for the CPU suite (default: the usable cores)")
    add("--budget", type=float, default=DEFAULT_TOTAL_S, help=f"seconds in all (default {DEFAULT_TOTAL_S:g})")
    add("--only", metavar="STEPS", help="comma-separated step names to run (default: all)")
    add("--skip", metavar="STEPS", help="comma-separated step names to leave out")
    p.set_defaults(run=_run)
