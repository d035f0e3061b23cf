"""`fastconv bench` runs: a smoke run of tiny cases on every available backend and baseline (no timing asserted),
check-then-time catching a wrong kernel, the architecture-suite derivation, the ceilings' environment handling and
the command line end to end."""

import json
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import pytest

import fastconv as fc
from fastconv.bench import ceilings, runner, suites
from fastconv.bench.cases import Case, ConvProblem, NormProblem, PoolProblem
from fastconv.bench.descriptor import to_descriptor
from fastconv.bench.impls import FastconvImpl, baseline, torch_status
from fastconv.bench.schema import SCHEMA, errors
from fastconv.bench.timing import Policy, measure
from fastconv.cli import main

TINY = [
    Case(ConvProblem("tiny_conv", 2, 6, 7, 9, 4, 3, 2, stride=(2, 1), padding=((1, 0), (0, 1)), groups=2), op)
    for op in ("fwd", "bwd-data", "bwd-weight")
]
TINY += [
    Case(PoolProblem("tiny_pool", 2, 3, 7, 9, kernel=3, stride=2, padding=1), op) for op in ("pool-fwd", "pool-bwd")
]
TINY += [Case(NormProblem("tiny_bn", 3, 4, 5, 7), op) for op in ("bn-fwd", "bn-bwd")]
FAST = Policy(warmup=0, min_repeats=1, min_time_s=0.0, max_time_s=0.0)
AVAILABLE = [name for name, s in fc.backends().items() if s.available and s.array_kind == "numpy"]


def _run(impls, cases=TINY, dtype="float32"):
    return runner.run(runner.RunConfig(cases, impls, dtype, threads=[1], policy=FAST, rotate_bytes=4096))


def test_every_op_checks_and_times():
    records = _run([FastconvImpl("numpy")])
    assert [(r["case"], r["op"]) for r in records] == [(c.problem.name, c.op) for c in TINY]
    for r in records:
        assert r["status"] == "ok", (r["op"], r["status"], r["message"], r["selected_algo"])
        assert r["max_rel_err"] <= r["tolerance"] and r["time_s"]["repeats"] >= 1
        assert r["selected_algo"] in fc.dispatch.algos(runner.REGISTRY_OP[r["op"]], "numpy")
        assert r["copies"] > 1  # 4 KiB of rotation holds several copies of these inputs
    assert errors(records, SCHEMA["properties"]["results"]) == []


@pytest.mark.skipif(torch_status("cpu") is not None, reason="torch is not installed (optional baseline)")
@pytest.mark.parametrize("name", ["torch-nchw", "torch-cl"])
def test_torch_baselines_agree_with_the_reference(name):
    for dtype in ("float32", "float64"):
        assert [r["status"] for r in _run([baseline(name)], dtype=dtype)] == ["ok"] * len(TINY)


def test_bf16_runs_check_against_the_rounded_reference():
    """--precision bf16: fastconv's numba kernels and the torch bfloat16 baselines against the float64 reference on
    bfloat16-rounded operands; an fp32 implementation checked against that reference fails on the conv cases."""
    impls = [FastconvImpl("numba", precision="bf16")]
    if torch_status("cpu") is None:
        impls += [baseline("torch-nchw", "bf16"), baseline("torch-cl", "bf16")]
    cfg = runner.RunConfig(TINY, impls, "float32", [1], FAST, 4096, precision="bf16")
    records = runner.run(cfg)
    assert {r["status"] for r in records} == {"ok"}, [(r["impl"], r["op"], r["message"]) for r in records]
    assert {r["precision"] for r in records} == {"bf16"}
    assert errors(records, SCHEMA["properties"]["results"]) == []
    exact = runner.run(
        runner.RunConfig(TINY[:1], [FastconvImpl("numba")], "float32", [1], FAST, 4096, precision="bf16")
    )
    assert exact[0]["status"] == "wrong"  # exact fp32 products are not what the bf16 reference computes


@dataclass(frozen=True)
class _Wrong(FastconvImpl):
    """The numpy backend with every output off by 1e-3 of its largest value."""

    def call(self, case, inputs):
        right = super().call(case, inputs)
        return right._replace(run=lambda a: tuple(o + 1e-3 * np.abs(o).max() for o in right.run(a)))


def test_a_wrong_result_is_reported_and_not_timed():
    records = _run([_Wrong("numpy")], cases=TINY[:1])
    assert records[0]["status"] == "wrong" and records[0]["time_s"] is None
    assert records[0]["max_rel_err"] == pytest.approx(1e-3, rel=1e-3)
    assert "not timed" in records[0]["message"]


def test_a_named_algorithm_that_does_not_fit_is_unsupported(monkeypatch):
    fc.dispatch.algos("conv2d", "numpy")  # loads the backend, so the registry entry below is undone on exit
    impl = fc.dispatch.Impl(
        "conv2d", "numpy", "only_1x1", lambda p, x, w, b: None, supports=lambda p: p.is_1x1, requires="a 1x1 kernel"
    )
    monkeypatch.setitem(fc.dispatch._IMPLS[("conv2d", "numpy")], "only_1x1", impl)
    records = _run([FastconvImpl("numpy", "only_1x1")], cases=TINY[:2])
    assert len(records) == 1  # the algorithm is registered for fwd only: bwd-data is not attempted
    assert records[0]["status"] == "unsupported" and "a 1x1 kernel" in records[0]["message"]


def _tiny_net():
    """stem -> 2x2 max pool -> two convs of one shape -> a strided 1x1."""
    from fastconv import nn

    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.block = nn.Sequential(
                nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.Conv2d(8, 8, 3, padding=1, bias=False)
            )
            self.down = nn.Conv2d(8, 16, 1, stride=2, bias=False)

        def forward(self, x):
            return self.down(self.block(self.pool(self.stem(x))))

    return TinyNet()


def test_architecture_layers_are_derived_from_the_model():
    layers = suites.conv_layers(_tiny_net(), (1, 3, 32, 30), "tiny")
    assert layers == [
        (ConvProblem("tiny:stem", 1, 3, 32, 30, 8, 3, 3, stride=2, padding=1), 1),
        (ConvProblem("tiny:block.0", 1, 8, 8, 7, 8, 3, 3, padding=1), 2),
        (ConvProblem("tiny:down", 1, 8, 8, 7, 16, 1, 1, stride=2), 1),
    ]


def test_a_model_of_fastconv_models_is_a_suite(capsys):
    # LeNet-5 on 1x32x32: conv 6@5x5 -> 28x28, 2x2 pool -> 14x14, conv 16@5x5 -> 10x10
    assert "lenet5" in suites.suite_names()
    assert [(c.problem, c.op) for c in suites.suite_cases("lenet5", ("fwd",))] == [
        (ConvProblem("lenet5:features.0", 1, 1, 32, 32, 6, 5, 5), "fwd"),
        (ConvProblem("lenet5:features.3", 1, 6, 14, 14, 16, 5, 5), "fwd"),
    ]
    assert main(["bench", "--suite", "no_such_net", "--no-save"]) == 2
    err = capsys.readouterr().err
    assert "unknown suite 'no_such_net'; suites: quick, " in err and "lenet5" in err


def test_ceiling_probe_environment_and_both_gemm_measurements(monkeypatch):
    env = ceilings.probe_env({"OPENBLAS_CORETYPE": "Haswell", "PATH": "/bin"}, 3, keep_coretype=False)
    assert "OPENBLAS_CORETYPE" not in env and env["OPENBLAS_NUM_THREADS"] == "3" and env["PATH"] == "/bin"
    assert ceilings.probe_env({"OPENBLAS_CORETYPE": "Haswell"}, 1, True)["OPENBLAS_CORETYPE"] == "Haswell"
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    found = ceilings.cpu_ceilings([1], gemm_n=64, copy_mib=1, min_time=0.0)
    assert [(c["name"], c["env"]) for c in found] == [("sgemm", "clean"), ("sgemm", "inherited"), ("copy", "clean")]
    assert all(c["value"] > 0 and c["value"] >= c["median"] for c in found)
    assert "OPENBLAS_CORETYPE=Haswell" in found[1]["how"] and "unset" in found[0]["how"]


def test_command_line_smoke_run_of_every_backend_writes_valid_results(tmp_path):
    """The tiny cases (every op) on every available NumPy-array backend, in a process of its own as a user runs it."""
    out = tmp_path / "r.json"
    cases = [arg for c in TINY[::3] for arg in ("--case", to_descriptor(c.problem))]
    cmd = [
        sys.executable,
        "-m",
        "fastconv",
        "bench",
        *cases,
        "--threads",
        "1",
        "--repeats",
        "1",
        "--min-time",
        "0",
        "--no-ceilings",
        "--out",
        str(out),
        "--backends",
        ",".join(AVAILABLE),
        "--baselines",
        "numpy-ref",
        "--note",
        "test run",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(out.read_text())
    assert errors(doc) == []
    assert doc["note"] == "test run" and doc["settings"]["threads"] == [1]
    ran = {(r["case"], r["op"], r["impl"]): r["status"] for r in doc["results"]}
    impls = [f"{b}/auto" for b in AVAILABLE] + ["numpy-ref"]
    assert ran == {(c.problem.name, c.op, i): "ok" for c in TINY for i in impls}
    assert "| tiny_conv | fwd | GFLOP/s |" in done.stdout


def test_autotune_times_the_algorithms_and_auto_keeps_the_by_shape_choice(monkeypatch):
    fc.dispatch.algos("conv2d", "numpy")
    reference = fc.dispatch._IMPLS[("conv2d", "numpy")]["reference"]

    def slow(p, x, w, b):
        time.sleep(0.02)
        return reference.fn(p, x, w, b)

    monkeypatch.setitem(
        fc.dispatch._IMPLS[("conv2d", "numpy")],
        "slow_ref",
        fc.dispatch.Impl("conv2d", "numpy", "slow_ref", slow, priority=10),
    )
    records = _run([FastconvImpl("numpy", "autotune"), FastconvImpl("numpy", "auto")], cases=TINY[:1])
    assert [(r["impl"], r["status"], r["selected_algo"]) for r in records] == [
        ("numpy/autotune", "ok", "reference"),
        ("numpy/auto", "ok", "slow_ref"),
    ]


def test_repeat_policy_and_rotation():
    """measure() with a fake clock: which copy each call gets, and when it stops."""
    used = []

    def timer_of(seconds):
        return lambda fn: fn() or seconds

    policy = Policy(warmup=2, min_repeats=5, min_time_s=1.0, max_time_s=4.0)
    fast = measure(used.append, timer_of(0.125), 3, policy)  # 1/8 s calls: min_time needs 8 of them
    assert fast["repeats"] == 8 and fast["median"] == 0.125
    assert used == [i % 3 for i in range(10)]  # warm-up calls first, then the rotation goes on
    assert measure(lambda i: None, timer_of(0.5), 1, policy)["repeats"] == 5  # min_repeats after min_time
    assert measure(lambda i: None, timer_of(3.0), 1, policy)["repeats"] == 2  # max_time reached
    assert measure(lambda i: None, timer_of(9.0), 1, policy)["repeats"] == 1
    assert measure(lambda i: None, timer_of(0.0), 1, Policy(0, 0, 0.0, 0.0))["repeats"] == 1  # never none


@pytest.mark.skipif(torch_status("cpu") is not None, reason="torch is not installed (measures the bf16 ceiling)")
def test_bf16_gemm_ceiling_is_measured_and_judges_bf16_records():
    from fastconv.bench import tables

    found = ceilings.cpu_bf16_ceilings([1], gemm_n=256, repeats=3)
    assert [c["name"] for c in found] == ["bf16gemm"] and found[0]["value"] >= found[0]["median"] > 0
    assert errors(found, SCHEMA["properties"]["ceilings"]) == []
    both = found + [dict(found[0], name="sgemm", value=1.0)]
    assert tables.ceiling(both, "GFLOP/s", "cpu", 1, "bf16") == found[0]["value"]
    assert tables.ceiling(both, "GFLOP/s", "cpu", 1) == 1.0


def test_a_time_limit_stops_starting_cases_and_the_note_says_so(tmp_path):
    """--time-limit (fastconv gpu-check bounds its suites with it): cases past the deadline are not started, the
    results file is still written and its note counts what did not run."""
    late = runner.RunConfig(TINY, [FastconvImpl("numpy")], threads=[1], policy=FAST, deadline=time.monotonic() - 1)
    assert runner.run(late) == []
    out = tmp_path / "r.json"
    args = ["bench", "--case", to_descriptor(TINY[0].problem), "--ops", "fwd", "--backends", "numpy"]
    args += ["--baselines", "none", "--no-ceilings", "--threads", "1", "--time-limit", "0", "--out", str(out)]
    assert main(args) == 0
    doc = json.loads(out.read_text())
    assert doc["results"] == [] and doc["note"] == "time limit 0 s reached: 1 of 1 records not run"
    assert errors(doc) == []


@pytest.mark.skipif(torch_status("cpu") is not None, reason="torch is not installed")
def test_the_cuda_baselines_set_both_tf32_switches_and_restore_them():
    import torch

    switches = (torch.backends.cudnn, torch.backends.cuda.matmul)
    before = [s.allow_tf32 for s in switches]
    for name, tf32 in (("torch-cuda-tf32", True), ("torch-cuda-fp32", False)):
        with baseline(name).settings():
            assert [s.allow_tf32 for s in switches] == [tf32, tf32], name
        assert [s.allow_tf32 for s in switches] == before
