"""The gpu-check plan: each step's command, environment, time budget, outputs and what it needs to run.

Budgets (seconds) sum to DEFAULT_TOTAL_S, under the 8 minutes a GPU session can spend; a step that finishes early
leaves its time to the later ones (execute.timeout_for). Benchmark steps get `--time-limit` from the timeout they
are given (minus BENCH_MARGIN_S for start-up, ceilings and the last case), so a slow kernel cuts a suite short
with its results saved instead of losing the whole file to the timeout.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TOTAL_S = 470.0
BENCH_MARGIN_S = 20.0
TIME_LIMIT = "{TIME_LIMIT}"  # replaced by the bench step's time limit when it starts
SMOKE_CASE = 'mb2ic8ih12oc8oh12kh3ph1n"cpu_smoke"'  # the --cpu-smoke CPU step: one tiny conv, fwd only
# GPU suites: short timing (one warm-up, then >= 3 calls and >= 50 ms, at most 0.5 s per implementation and case)
GPU_POLICY = ("--warmup", "1", "--repeats", "3", "--min-time", "0.05", "--max-time", "0.5")
GPU_BASELINES = "torch-cuda-fp32,torch-cuda-tf32"
CPU_BASELINES = "torch-nchw,torch-cl"


@dataclass(frozen=True)
class Step:
    """One child process of the run. `skip` says why it will not run in this plan (a missing tool, an option);
    `background` starts it and goes on: the first step to run that names it in `waits_for` waits for it (up to
    half its own timeout, then stops it)."""

    name: str
    title: str
    argv: tuple[str, ...]
    budget_s: float
    env: dict[str, str] = field(default_factory=dict)
    needs_gpu: bool = False
    background: bool = False
    waits_for: str | None = None
    skip: str | None = None
    outputs: tuple[str, ...] = ()

    def resolved(self, time_limit: float) -> tuple[str, ...]:
        """argv with the bench time limit filled in."""
        return tuple(f"{time_limit:.0f}" if a == TIME_LIMIT else a for a in self.argv)

    def command(self, time_limit: float | None = None) -> str:
        """The shell form: the step's environment assignments, then the command."""
        limit = self.budget_s - BENCH_MARGIN_S if time_limit is None else time_limit
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return (env + " " if env else "") + shlex.join(self.resolved(max(limit, 5.0)))


@dataclass(frozen=True)
class Options:
    root: Path  # the checkout: commands run here
    run_dir: Path  # this run's folder
    label: str  # machine label for the results files
    threads: int  # host cores for the CPU suite
    cpu_smoke: bool = False  # shorten the CPU step to one tiny case (tests, dry runs)
    sanitizer: str | None = None  # compute-sanitizer's path
    python: str = sys.executable


def find_sanitizer() -> str | None:
    """compute-sanitizer on PATH, else under $CUDA_HOME, $CUDA_PATH or /usr/local/cuda."""
    found = shutil.which("compute-sanitizer")
    if found:
        return found
    for base in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if base and Path(base, "bin", "compute-sanitizer").is_file():
            return str(Path(base, "bin", "compute-sanitizer"))
    return None


def _path(o: Options, name: str) -> str:
    """A file of the run folder as the commands name it: relative to the checkout when inside it."""
    p = o.run_dir / name
    try:
        return str(p.relative_to(o.root))
    except ValueError:
        return str(p)


def _tests(o: Options, mode: str, budget: float) -> Step:
    xml = f"tests-{mode}.xml"
    argv = [o.python, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", f"--junitxml={_path(o, xml)}"]
    if mode == "small":  # the multi-wave file runs at production tunables only, in the other step
        argv.append("--ignore=tests/test_gpu_large.py")
    what = {"small": "SMALL_TUNABLES (tiny shapes over many blocks)", "production": "production tunables"}[mode]
    return Step(
        f"tests-{mode}",
        f"pytest -m gpu at {what}" + (", with tests/test_gpu_large.py" if mode == "production" else ""),
        (*argv, "tests"),
        budget,
        env={"FASTCONV_TEST_TUNABLES": mode},
        needs_gpu=True,
        skip=None if (o.root / "tests").is_dir() else f"no tests/ folder in {o.root} (not a checkout)",
        outputs=(xml,),
    )


def _sanitizer(o: Options, tool: str, budget: float) -> Step:
    out = f"{tool}-smoke.json"
    san = o.sanitizer or "compute-sanitizer"
    argv = (san, "--tool", tool, "--error-exitcode", "3", "--print-limit", "20")
    argv += ("--leak-check", "no") if tool == "memcheck" else ()
    return Step(
        tool,
        f"compute-sanitizer --tool {tool} on the smoke kernel set (fastconv.gpucheck.smoke)",
        (*argv, o.python, "-m", "fastconv.gpucheck.smoke", "--out", _path(o, out)),
        budget,
        needs_gpu=True,
        skip=None if o.sanitizer else "compute-sanitizer is not on PATH (nor under $CUDA_HOME, /usr/local/cuda)",
        outputs=(out,),
    )


def _bench(o: Options, name: str, title: str, args: tuple[str, ...], budget: float, **kw) -> Step:
    out = f"{name.removeprefix('bench-')}.json"
    argv = (o.python, "-m", "fastconv", "bench", *args, "--label", o.label, "--quiet", "--out", _path(o, out))
    note = kw.pop("note", "fastconv gpu-check")
    return Step(name, title, (*argv, "--note", note, "--time-limit", TIME_LIMIT), budget, outputs=(out,), **kw)


def _cpu_steps(o: Options) -> list[Step]:
    suite = ("--suite", "quick", "--backends", "numba")
    prewarm = Step(
        "cpu-prewarm",
        "compile the numba kernels of the CPU quick suite while the GPU steps run (untimed)",
        (o.python, "-m", "fastconv", "bench", *suite, "--baselines", "none", "--threads", str(o.threads))
        + ("--warmup", "0", "--repeats", "1", "--min-time", "0", "--max-time", "0")
        + ("--no-ceilings", "--no-save", "--quiet"),
        150.0,
        background=True,
        skip="--cpu-smoke: the shortened CPU step needs no warm-up" if o.cpu_smoke else None,
    )
    if o.cpu_smoke:
        args = ("--case", SMOKE_CASE, "--ops", "fwd", "--backends", "numba", "--baselines", "numpy-ref")
        args += ("--threads", "1", "--warmup", "0", "--repeats", "1", "--min-time", "0", "--max-time", "0")
        args += ("--no-ceilings", "--rotate-mib", "1")
        title = "fastconv bench, one tiny case (--cpu-smoke): numba against the NumPy reference, no torch import"
    else:
        args = (*suite, "--baselines", CPU_BASELINES, "--threads", ",".join(dict.fromkeys(("1", str(o.threads)))))
        title = f"fastconv bench, quick suite on the host cores (1 and {o.threads} threads): numba against torch"
    note = "fastconv gpu-check" + (" --cpu-smoke" if o.cpu_smoke else "")
    cpu = _bench(o, "bench-cpu-quick", title, args, 70.0, waits_for="cpu-prewarm", note=note)
    return [prewarm, cpu]


def plan(o: Options) -> list[Step]:
    """Every step in the order they run (a background step starts where it stands)."""
    py = o.python
    env = Step(
        "env",
        "environment facts: nvidia-smi -L, GPU, driver, CUDA / CuPy / torch / cuDNN / Numba versions",
        (py, "-m", "fastconv.gpucheck.envinfo", "--out", _path(o, "env.json")),
        15.0,
        outputs=("env.json",),
    )
    gpu_suite = ("--backends", "cuda", "--baselines", GPU_BASELINES, *GPU_POLICY)
    prewarm, cpu = _cpu_steps(o)
    report = (py, "-m", "fastconv", "bench", "report", _path(o, ""), "--out", _path(o, ""))
    return [
        env,
        prewarm,
        _tests(o, "small", 50.0),
        _tests(o, "production", 80.0),
        _sanitizer(o, "memcheck", 35.0),
        _sanitizer(o, "racecheck", 35.0),
        Step(
            "memops",
            "BN, pooling and ReLU against the device copy bandwidth measured in the same process; host overhead",
            (py, "-m", "fastconv.gpucheck.memops", "--out", _path(o, "memops.json")),
            20.0,
            needs_gpu=True,
            waits_for="cpu-prewarm",  # the timed steps from here on run without the compile beside them
            outputs=("memops.json", "memops.md"),
        ),
        _bench(
            o,
            "bench-gpu-quick",
            "fastconv bench, quick suite: cuda against cuDNN fp32 (TF32 off) and TF32",
            ("--suite", "quick", *gpu_suite),
            55.0,
            needs_gpu=True,
        ),
        _bench(
            o,
            "bench-gpu-resnet50",
            "fastconv bench, ResNet-50 conv layers at N=32 (fwd, bwd-data, bwd-weight): cuda against cuDNN",
            ("--suite", "resnet50", "--ops", "fwd,bwd-data,bwd-weight", "--batch", "32", *gpu_suite),
            95.0,
            needs_gpu=True,
        ),
        cpu,
        Step(
            "report",
            "fastconv bench report of this run's results files into the run folder (REPORT.md)",
            report + (("--no-plots",) if o.cpu_smoke else ()),
            15.0,
            outputs=("REPORT.md",),
        ),
    ]


def select(steps: list[Step], only: list[str], skip: list[str]) -> list[Step]:
    """The steps named by --only (all when empty) less those named by --skip; unknown names are a ValueError."""
    names = [s.name for s in steps]
    unknown = [n for n in only + skip if n not in names]
    if unknown:
        raise ValueError(f"unknown step(s) {', '.join(unknown)}; steps: {', '.join(names)}")
    return [s for s in steps if (not only or s.name in only) and s.name not in skip]
