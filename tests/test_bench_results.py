"""Results files: the schema (our validator agrees with jsonschema), the report and the comparison, from two small
hand-written fixture files (tests/data/bench_machine_*.json) whose rates are easy to work out by hand."""

import copy
import json
from pathlib import Path

import pytest

from fastconv.bench import results
from fastconv.bench.compare import compare
from fastconv.bench.report import write_report
from fastconv.bench.schema import SCHEMA, errors
from fastconv.cli import main

DATA = Path(__file__).parent / "data"
FILES = [DATA / "bench_machine_a.json", DATA / "bench_machine_b.json"]


def _docs():
    return [json.loads(f.read_text()) for f in FILES]


def _breakages(doc):
    """Documents that break the schema in one place each."""
    bad = []
    for edit in (
        lambda d: d.pop("machine"),
        lambda d: d["results"][0].pop("time_s"),
        lambda d: d["results"][0].update(op="sideways"),
        lambda d: d["results"][0].update(threads="2"),
        lambda d: d["results"][0]["time_s"].update(median=-1.0),
        lambda d: d.update(schema_version=2),
        lambda d: d["ceilings"][0].update(unit="furlongs"),
        lambda d: d["machine"]["cpu"].update(extra=1),
        lambda d: d["results"][0].update(time_s={"median": 1.0}),
        lambda d: d.update(results={}),
        lambda d: d["results"][0].update(flops=True),
    ):
        broken = copy.deepcopy(doc)
        edit(broken)
        bad.append(broken)
    return bad


def test_fixtures_conform_and_each_breakage_is_found_by_both_validators():
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for doc in _docs():
        assert errors(doc) == []
        assert list(validator.iter_errors(doc)) == []
        for broken in _breakages(doc):
            assert errors(broken), broken
            assert list(validator.iter_errors(broken)), broken


def test_load_names_the_file_and_the_place(tmp_path):
    doc = _docs()[0]
    doc["results"][1]["status"] = "fine"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"(?s)bad.json.*\$\.results\[1\]\.status"):
        results.load(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        results.load(path)


def test_report_tables_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    files, docs, skipped = results.load_all([DATA])
    assert files == FILES and skipped == []
    (tmp_path / "bars-a-run-no-longer-reported.png").write_bytes(b"old")
    report = write_report(docs, tmp_path, ["tests/data"])
    text = report.read_text()
    # machines side by side, ceilings included
    assert "|  | Xeon A 2c | EPYC B 4c |" in text
    assert "| ceiling sgemm 2t (inherited env) | 200.0 GFLOP/s | - |" in text
    # one table with machines as columns: 2e9 FLOPs in 10 ms = 200 GFLOP/s, in 4 ms = 500; 1e9 bytes in 0.1 s
    # = 10 GB/s; B's pooling result failed its check
    assert "| case | op | implementation | unit | Xeon A 2c, 2t, float32 | EPYC B 4c, 4t, float32 |" in text
    assert "| a_3x3 | fwd | numba/auto | GFLOP/s | 200.0 | 500.0 |" in text
    assert "| maxpool_3x3_s2_p1 | pool-fwd | numba/auto | GB/s | 10.0 | wrong |" in text
    assert "| maxpool_3x3_s2_p1 | pool-fwd | torch-nchw | GB/s | 2.0 | - |" in text
    # per-run table with the speed-up over torch (20 ms / 10 ms and 0.5 s / 0.1 s, geomean sqrt(2 * 5)) and the
    # share of the clean-environment ceiling: 200 of 400 GFLOP/s, 10 of 40 GB/s; B: 500 of 800
    assert "| a_3x3 | fwd | GFLOP/s | 200.0 | 100.0 | 2.00x (numba/auto) vs torch-nchw | 50% |" in text
    assert "| maxpool_3x3_s2_p1 | pool-fwd | GB/s | 10.0 | 2.0 | 5.00x (numba/auto) vs torch-nchw | 25% |" in text
    assert "| a_3x3 | fwd | GFLOP/s | 500.0 | - | 62% |" in text
    assert "3.16x over 2 cases" in text
    assert "EPYC B 4c pool-fwd" not in text and "maxpool_3x3_s2_p1 pool-fwd numba/auto (4t): wrong" in text
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == [
        "bars-epyc-b-4c-4t-float32.png",
        "bars-xeon-a-2c-2t-float32.png",
        "roofline-epyc-b-4c-4t-float32-cpu.png",
        "roofline-xeon-a-2c-2t-float32-cpu.png",
    ]
    for name in pngs:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in text


def test_report_without_plots_keeps_the_tables(tmp_path):
    text = write_report(_docs(), tmp_path, ["a", "b"], plots=False).read_text()
    assert "disabled with --no-plots" in text and "| a_3x3 | fwd | numba/auto | GFLOP/s | 200.0 | 500.0 |" in text
    assert not list(tmp_path.glob("*.png"))


def test_compare_ratios():
    a = _docs()[0]
    b = copy.deepcopy(a)
    b["results"][0]["time_s"]["median"] = 0.005  # numba conv twice as fast in B
    b["results"][2]["time_s"]["median"] = 0.400  # numba pool 4x slower
    text = compare(a, b)
    assert "| a_3x3 | fwd | numba/auto | 2t/2t float32 | 10.000 | 5.000 | 2.00x |" in text
    assert "| maxpool_3x3_s2_p1 | pool-fwd | numba/auto | 2t/2t float32 | 100.000 | 400.000 | 0.25x |" in text
    assert "| numba/auto | 2 | 0.71x |" in text  # sqrt(2 * 0.25)
    assert "| torch-nchw | 2 | 1.00x |" in text
    # machines with different thread counts match only when asked to
    a_doc, b_doc = _docs()
    assert "No record was timed in both runs" in compare(a_doc, b_doc)
    assert "| a_3x3 | fwd | numba/auto | 2t/4t float32 | 10.000 | 4.000 | 2.50x |" in compare(a_doc, b_doc, True)


def test_cli_report_and_compare(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    for f in FILES:
        (tmp_path / "in" / f.name).write_text(f.read_text())
    (tmp_path / "in" / "other_tool.json").write_text('{"cases": []}')  # another tool's output: skipped
    assert main(["bench", "report", str(tmp_path / "in"), "--out", str(tmp_path), "--no-plots"]) == 0
    assert "skipped" in capsys.readouterr().err and (tmp_path / "REPORT.md").is_file()
    assert main(["bench", "report", str(tmp_path / "in" / "other_tool.json"), "--no-plots"]) == 2  # named: invalid
    assert main(["bench", "compare", str(FILES[0]), str(FILES[1]), "--ignore-threads"]) == 0
    assert "2.50x" in capsys.readouterr().out
    assert main(["bench", "compare", str(FILES[0]), str(tmp_path / "missing.json")]) == 2
    assert "error" in capsys.readouterr().err


def test_the_headline_is_against_the_faster_torch_baseline_of_each_case():
    """run_table's speed-up column and geomean take, per case, the faster of torch NCHW and channels_last (never
    the TF32 baseline in an fp32 run, nor the NumPy reference)."""
    from fastconv.bench import tables

    def rec(case, impl, kind, ms, precision="fp32"):
        return {
            "case": case,
            "op": "fwd",
            "impl": impl,
            "kind": kind,
            "status": "ok",
            "flops": 2e9,
            "bytes": 0,
            "time_s": {"median": ms / 1e3},
            "device": "cpu",
            "threads": 2,
            "precision": precision,
        }

    records = [
        rec("a", "numba/auto", "fastconv", 10),
        rec("a", "torch-nchw", "baseline", 40),
        rec("a", "torch-cl", "baseline", 20),
        rec("a", "numpy-ref", "baseline", 5),
        rec("b", "numba/auto", "fastconv", 10),
        rec("b", "torch-nchw", "baseline", 5),
        rec("b", "torch-cl", "baseline", 8),
        rec("b", "torch-cuda-tf32", "baseline", 1),
    ]
    text = tables.run_table(records)
    assert "best fastconv vs the faster torch" in text
    assert "| 2.00x (numba/auto) vs torch-cl |" in text, "case a: channels_last is the faster torch"
    assert "| 0.50x (numba/auto) vs torch-nchw |" in text, "case b: TF32 does not count in an fp32 run"
    assert "the faster torch baseline of each case: 1.00x over 2 cases" in text
    assert "| 4.00x (numba/auto) |" in tables.run_table(records, reference_impl="torch-nchw"), "a named reference"
