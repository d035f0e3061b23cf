"""`fastconv gpu-check` without a GPU: the dry run end to end through scripts/gpu_check.sh (every step listed with
its command, the CPU part run, the summary written), the executor's timeouts, skips and background steps, the plan,
the summary's arithmetic and parsers, and the sanitizer kernel set on the NumPy backend."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv.bench import results
from fastconv.gpucheck import memops, smoke, summary
from fastconv.gpucheck.execute import Executor, timeout_for
from fastconv.gpucheck.steps import TIME_LIMIT, Options, Step, plan, select

ROOT = Path(__file__).resolve().parent.parent
STEPS = [
    "env",
    "cpu-prewarm",
    "tests-small",
    "tests-production",
    "memcheck",
    "racecheck",
    "memops",
    "bench-gpu-quick",
    "bench-gpu-resnet50",
    "bench-cpu-quick",
    "report",
]


def test_dry_run_lists_every_step_runs_the_cpu_part_and_writes_the_summary(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHON": sys.executable}
    done = subprocess.run(
        [str(ROOT / "scripts" / "gpu_check.sh"), "--dry-run", "--cpu-smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for name in STEPS:
        assert f". {name}" in out, name
    for command in (
        "FASTCONV_TEST_TUNABLES=small",
        "FASTCONV_TEST_TUNABLES=production",
        "-m pytest -m gpu",
        "--tool memcheck",
        "--tool racecheck",
        "-m fastconv.gpucheck.smoke",
        "-m fastconv.gpucheck.memops",
        "--suite resnet50 --ops fwd,bwd-data,bwd-weight --batch 32 --backends cuda",
        "--baselines torch-cuda-fp32,torch-cuda-tf32",
    ):
        assert command in out, command
    (run_dir,) = tmp_path.iterdir()
    record = json.loads((run_dir / "summary.json").read_text())
    status = {s["name"]: s["status"] for s in record["steps"]}
    assert list(status) == STEPS
    assert status["env"] == status["bench-cpu-quick"] == status["report"] == "ok"
    assert all(status[n] == "dry-run" for n in ("tests-small", "tests-production", "memops", "bench-gpu-quick"))
    assert status["memcheck"] in ("dry-run", "skipped") and status["cpu-prewarm"] == "skipped"
    doc = results.load(run_dir / "cpu-quick.json")
    assert {(r["impl"], r["status"]) for r in doc["results"]} >= {("numba/auto", "ok")}
    assert "gpu-check" in doc["note"]
    text = (run_dir / "summary.md").read_text()
    assert "**dry run**" in text and "numba/auto speed relative to numpy-ref" in text
    assert (run_dir / "REPORT.md").is_file() and json.loads((run_dir / "env.json").read_text())["numba"]
    assert text in out


def _py(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def test_a_step_past_its_timeout_is_stopped_and_the_run_goes_on(tmp_path):
    steps = [
        Step("slow", "sleeps", _py("import time; time.sleep(60)"), 1.0),
        Step("bad", "exits 3", _py("import sys; print('boom'); sys.exit(3)"), 1.0),
        Step("missing", "no such program", ("/no/such/program",), 1.0),
        Step("fast", "prints", _py("print('hello')"), 5.0),
    ]
    ex = Executor(tmp_path, tmp_path, dict(os.environ), total_s=8.5, say=lambda s: None)
    slow, bad, missing, fast = ex.run(steps)
    assert slow.status == "timeout" and slow.seconds < 8, slow
    assert (bad.status, bad.returncode, bad.reason) == ("failed", 3, "exit status 3")
    assert "boom" in (tmp_path / bad.log).read_text()
    assert missing.status == "failed" and "could not start" in missing.reason
    assert fast.status == "ok" and "hello" in (tmp_path / fast.log).read_text()


def test_timeouts_share_unused_time_but_keep_the_later_budgets():
    assert timeout_for(10, remaining=100, reserved_after=50) == 50
    assert timeout_for(10, remaining=30, reserved_after=25) == 10
    assert timeout_for(10, remaining=4, reserved_after=0) == 4


def test_gpu_steps_skip_without_a_gpu_and_are_listed_in_a_dry_run(tmp_path):
    gpu = Step("g", "needs a GPU", _py("pass"), 5.0, needs_gpu=True)
    tool = Step("t", "needs a tool", _py("pass"), 5.0, skip="tool missing")
    no_gpu = Executor(tmp_path, tmp_path, {}, 10, gpu_reason="CuPy sees no CUDA device", say=lambda s: None)
    assert no_gpu.why_not(gpu) == ("skipped", "no GPU: CuPy sees no CUDA device")
    assert no_gpu.why_not(tool) == ("skipped", "tool missing")
    dry = Executor(tmp_path, tmp_path, {}, 10, dry_run=True, say=lambda s: None)
    assert dry.why_not(gpu)[0] == "dry-run" and dry.why_not(Step("c", "cpu", _py("pass"), 5.0)) is None
    (outcome,) = no_gpu.run([gpu])
    assert outcome.status == "skipped" and outcome.log is None


def test_a_background_step_is_waited_for_then_stopped(tmp_path):
    steps = [
        Step("bg", "compiles", _py("import time; time.sleep(60)"), 100.0, background=True),
        Step("next", "waits", _py("print('after')"), 4.0, waits_for="bg"),
    ]
    bg, nxt = Executor(tmp_path, tmp_path, dict(os.environ), total_s=4.0, say=lambda s: None).run(steps)
    assert bg.name == "bg" and bg.status == "timeout" and "stopped" in bg.reason
    assert nxt.status == "ok" and nxt.timeout_s < 4


def test_the_plan_and_step_selection(tmp_path):
    opts = Options(ROOT, tmp_path / "run", "My GPU box", 16, sanitizer=None)
    steps = plan(opts)
    by = {s.name: s for s in steps}
    assert [s.name for s in steps] == STEPS
    assert sum(s.budget_s for s in steps if not s.background) <= 480
    assert by["memcheck"].skip and "compute-sanitizer" in by["memcheck"].skip
    assert "--ignore=tests/test_gpu_large.py" in by["tests-small"].argv
    assert by["tests-production"].env == {"FASTCONV_TEST_TUNABLES": "production"}
    cpu = by["bench-cpu-quick"].argv
    assert "1,16" in cpu and "torch-nchw,torch-cl" in cpu and "quick" in cpu and by["cpu-prewarm"].skip is None
    smoke_plan = {s.name: s for s in plan(Options(ROOT, tmp_path / "run", "x", 16, cpu_smoke=True))}
    assert "--case" in smoke_plan["bench-cpu-quick"].argv and smoke_plan["cpu-prewarm"].skip
    assert TIME_LIMIT in by["bench-gpu-resnet50"].argv and "42" in by["bench-gpu-resnet50"].resolved(42.0)
    san = plan(Options(ROOT, tmp_path / "run", "x", 4, sanitizer="/opt/cs"))
    assert san[4].skip is None and san[4].argv[:3] == ("/opt/cs", "--tool", "memcheck")
    assert [s.name for s in select(steps, ["env", "report"], [])] == ["env", "report"]
    assert "memops" not in [s.name for s in select(steps, [], ["memops"])]
    with pytest.raises(ValueError, match="unknown step"):
        select(steps, ["nope"], [])


def _record(case, impl, t, op="fwd", status="ok"):
    return {"case": case, "op": op, "threads": 1, "impl": impl, "status": status, "time_s": {"median": t}}


def test_speedups_geomean_and_the_issue_targets():
    doc = {
        "results": [
            _record("a", "cuda/auto", 2.0),
            _record("a", "torch-cuda-fp32", 1.0),
            _record("b", "cuda/auto", 1.0),
            _record("b", "torch-cuda-fp32", 1.0),
            _record("c", "cuda/auto", 1.0, op="bwd-weight"),
            _record("c", "torch-cuda-fp32", 0.25, op="bwd-weight"),
            _record("d", "cuda/auto", 1.0, status="wrong"),
            _record("d", "torch-cuda-fp32", 1.0),
        ]
    }
    found = summary.speedups(doc, "cuda/auto", ("torch-cuda-fp32",))
    assert sorted(found[(1, "fwd")]) == [("a", 0.5), ("b", 1.0)]
    rows = {r[1]: r for r in summary.speedup_rows(found, target=True)}
    assert rows["fwd"][3] == "0.71x" and rows["fwd"][-1] == "yes"
    assert rows["bwd-weight"][3] == "0.25x" and rows["bwd-weight"][-1] == "no"
    assert rows["all conv"][2] == "3" and rows["all conv"][4] == "0.25x (c)"
    better = summary.speedups(
        {"results": [_record("a", "numba/auto", 2.0), _record("a", "torch-nchw", 4.0), _record("a", "torch-cl", 1.0)]},
        "numba/auto",
        ("torch-nchw", "torch-cl"),
    )
    assert better == {(1, "fwd"): [("a", 0.5)]}


def test_junit_and_sanitizer_summaries(tmp_path):
    xml = tmp_path / "t.xml"
    xml.write_text(
        textwrap.dedent("""\
        <testsuites><testsuite tests="4" failures="1" errors="0" skipped="1" time="2.5">
        <testcase classname="tests.test_x" name="test_ok"/>
        <testcase classname="tests.test_x" name="test_bad"><failure message="no"/></testcase>
        </testsuite></testsuites>""")
    )
    text = summary.junit(xml)
    assert text.startswith("2 passed, 1 failed, 0 errors, 1 skipped") and "tests.test_x::test_bad" in text
    log = tmp_path / "memcheck.log"
    log.write_text("========= COMPUTE-SANITIZER\nsmoke ...\n========= ERROR SUMMARY: 2 errors\n")
    assert summary.sanitizer(log) == "ERROR SUMMARY: 2 errors"
    assert summary.junit(tmp_path / "none.xml") == "no JUnit XML written"


def test_the_sanitizer_kernel_set_runs_and_catches_a_wrong_result(monkeypatch):
    result = smoke.run_checks("numpy")
    assert result["checks"] >= 25 and result["failures"] == []
    relu = fc.relu

    def wrong_in_float32(x, **kw):  # the "kernel under test" runs float32; the reference float64
        y = relu(x, **kw)
        return y * 1.01 if x.dtype == np.float32 else y

    monkeypatch.setattr(fc, "relu", wrong_in_float32)
    failures = smoke.run_checks("numpy")["failures"]
    assert failures and all(f.startswith("relu + backward") for f in failures)


def test_memops_bytes_and_table():
    assert memops.op_bytes("relu", 10, 0, 2) == 80
    assert memops.op_bytes("max_pool2d_backward", 16, 4, 1) == 4 * (4 + 32)
    report = {
        "copy": {"mib": 256, "gbs": 3000.0, "how": "cupy.copyto"},
        "method": "median",
        "ops": [{"op": "relu", "shape": [2, 3], "bytes": 2e8, "gbs": 2400.0, "share_of_copy": 0.8}],
        "host_overhead_us": {"fastconv.relu": 12.5},
    }
    text = memops.markdown(report)
    assert "| relu | 2x3 | 200 | 2400 | 80% | - | - | - |" in text and "fastconv.relu: 12.5" in text


def test_an_interrupted_run_stops_its_children(tmp_path):
    def say(line):
        if "started in the background" in line:
            raise KeyboardInterrupt

    steps = [Step("bg", "sleeps", _py("import time; time.sleep(60)"), 100.0, background=True)]
    ex = Executor(tmp_path, tmp_path, dict(os.environ), total_s=10.0, say=say)
    with pytest.raises(KeyboardInterrupt):
        ex.run(steps)
    assert ex.background["bg"].proc.poll() is not None
