"""Running the gpu-check steps: one child process each, in its own process group, with a timeout drawn from one
deadline for the whole run; output to logs/<step>.log in the run folder. A step that fails, times out or cannot
start is recorded and the run goes on. Statuses: ok, failed (non-zero exit or could not start), timeout (stopped:
SIGTERM to its process group, SIGKILL 5 s later), skipped (the reason says why), dry-run (listed, not run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from .steps import BENCH_MARGIN_S, Step

MIN_STEP_S = 3.0  # a step offered less than this is skipped ("no time left")


@dataclass
class Outcome:
    name: str
    status: str
    seconds: float = 0.0
    timeout_s: float | None = None
    returncode: int | None = None
    reason: str = ""
    log: str | None = None  # relative to the run folder

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def timeout_for(budget: float, remaining: float, reserved_after: float) -> float:
    """A step's timeout: its budget, or more when earlier steps left time unused and the later steps (their
    budgets summing to `reserved_after`) still keep theirs; never more than the time left."""
    return max(0.0, min(remaining, max(budget, remaining - reserved_after)))


def _stop(proc: subprocess.Popen) -> None:
    """End the step's process group (the child and anything it started), politely first."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class _Started:
    step: Step
    proc: subprocess.Popen | None
    log: IO[str] | None
    start: float
    error: str = ""


class Executor:
    """Runs a plan's steps against one deadline. `gpu_reason`: why there is no usable GPU (None when there is)."""

    def __init__(
        self,
        run_dir: Path,
        cwd: Path,
        env: dict[str, str],
        total_s: float,
        dry_run: bool = False,
        gpu_reason: str | None = None,
        say: Callable[[str], None] = print,
    ):
        self.run_dir, self.cwd, self.env, self.total_s = run_dir, cwd, env, total_s
        self.dry_run, self.gpu_reason, self.say = dry_run, gpu_reason, say
        self.background: dict[str, _Started] = {}
        self._current: _Started | None = None
        self.outcomes: list[Outcome] = []
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)

    def why_not(self, step: Step) -> tuple[str, str] | None:
        """(status, reason) when the step will not run, else None."""
        if step.skip:
            return "skipped", step.skip
        if step.needs_gpu and self.dry_run:
            return "dry-run", "needs the GPU: listed, not run"
        if step.needs_gpu and self.gpu_reason:
            return "skipped", f"no GPU: {self.gpu_reason}"
        return None

    def _start(self, step: Step, argv: tuple[str, ...], shown: str) -> _Started:
        log_path = self.run_dir / "logs" / f"{step.name}.log"
        log = log_path.open("w")
        log.write(f"$ {shown}\n\n")
        log.flush()
        env = {**self.env, **step.env}
        try:
            proc = subprocess.Popen(
                argv,
                cwd=self.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            log.write(f"could not start: {exc}\n")
            log.close()
            return _Started(step, None, None, time.monotonic(), f"could not start: {exc}")
        return _Started(step, proc, log, time.monotonic())

    def _finish(self, s: _Started, timeout: float) -> Outcome:
        """Wait up to `timeout` seconds for a started step, stopping it when it runs past."""
        log = f"logs/{s.step.name}.log"
        if s.proc is None:
            return Outcome(s.step.name, "failed", 0.0, timeout, None, s.error, log)
        try:
            rc = s.proc.wait(max(timeout - (time.monotonic() - s.start), 0.0))
            status, reason = ("ok", "") if rc == 0 else ("failed", f"exit status {rc}")
        except subprocess.TimeoutExpired:
            _stop(s.proc)
            rc, status, reason = s.proc.returncode, "timeout", f"stopped after {timeout:.0f} s"
        if s.log is not None:
            s.log.close()
        return Outcome(s.step.name, status, time.monotonic() - s.start, timeout, rc, reason, log)

    def _tail(self, outcome: Outcome, lines: int = 12) -> None:
        if outcome.log and outcome.status in ("failed", "timeout"):
            text = (self.run_dir / outcome.log).read_text(errors="replace").splitlines()
            for line in text[-lines:]:
                self.say(f"      | {line}")

    def run(self, steps: list[Step]) -> list[Outcome]:
        """Every step in order, outcomes in plan order. A background step's outcome is taken when the first step
        waiting for it starts (or at the end, stopped if still running). Interrupted (KeyboardInterrupt, or
        SystemExit from a SIGTERM handler), it stops the running children and re-raises; `self.outcomes` holds what
        finished."""
        deadline = time.monotonic() + self.total_s
        self.outcomes: list[Outcome] = []
        runnable = [not s.background and self.why_not(s) is None for s in steps]
        try:
            for i, step in enumerate(steps):
                after = zip(steps[i + 1 :], runnable[i + 1 :])
                later = 0.0 if step.background else sum(s.budget_s for s, r in after if r)
                self._step(f"[{i + 1}/{len(steps)}] {step.name}: {step.title}", step, deadline, later)
            for name in list(self.background):
                self._wait_background(name, 0.0)
        finally:
            for started in [self._current, *self.background.values()]:
                if started is not None and started.proc is not None and started.proc.poll() is None:
                    _stop(started.proc)
            order = [s.name for s in steps]
            self.outcomes.sort(key=lambda o: order.index(o.name))
        return self.outcomes

    def _step(self, head: str, step: Step, deadline: float, later: float) -> None:
        skipped = self.why_not(step)
        if skipped:
            self.say(f"{head}\n    {skipped[0]}: {skipped[1]}")
            self.outcomes.append(Outcome(step.name, skipped[0], reason=skipped[1]))
            return
        remaining = deadline - time.monotonic()
        timeout = step.budget_s if step.background else timeout_for(step.budget_s, remaining, later)
        if timeout < min(MIN_STEP_S, step.budget_s):
            self.say(f"{head}\n    skipped: no time left ({remaining:.0f} s of {self.total_s:.0f})")
            self.outcomes.append(Outcome(step.name, "skipped", reason="no time left in the run's budget"))
            return
        if step.waits_for in self.background:
            timeout -= self._wait_background(step.waits_for, timeout / 2)
        limit = max(timeout - BENCH_MARGIN_S, MIN_STEP_S)
        shown = step.command(limit)
        self.say(f"{head} (timeout {timeout:.0f} s)\n    $ {shown}")
        started = self._start(step, step.resolved(limit), shown)
        if step.background:
            self.background[step.name] = started
            self.say("    started in the background")
            return
        self._current = started
        outcome = self._finish(started, timeout)
        self._current = None
        self.say(f"    -> {outcome.status} in {outcome.seconds:.1f} s" + (outcome.reason and f": {outcome.reason}"))
        self._tail(outcome)
        self.outcomes.append(outcome)

    def _wait_background(self, name: str, timeout: float) -> float:
        """Wait up to `timeout` s for background step `name` (stopping it after), record its outcome; returns the
        seconds waited."""
        started = self.background.pop(name)
        t0 = time.monotonic()
        left = started.step.budget_s - (t0 - started.start)
        outcome = self._finish(started, min(timeout, max(left, 0.0)) + (t0 - started.start))
        if outcome.status == "timeout":
            outcome.reason = f"still running, stopped after {outcome.seconds:.0f} s so the next steps run alone"
        note = outcome.reason and f", {outcome.reason}"
        self.say(f"    ({name}: {outcome.status} after {outcome.seconds:.1f} s{note})")
        self.outcomes.append(outcome)
        return time.monotonic() - t0
