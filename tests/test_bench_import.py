"""`fastconv bench import`: oneDNN benchdnn perf lines and DeepBench CSV rows, written here by hand from the formats
the two projects document (oneDNN tests/benchdnn/doc/knobs_perf_report.md; DeepBench's results spreadsheets,
conv_bench's table header and the MKL benchmark's --csv-output), mapped onto fastconv cases, set beside a fastconv
run in `report` and `compare`, and the errors for lines that do not parse."""

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest

from fastconv.bench import import_benchdnn, import_deepbench, results
from fastconv.bench.cases import ConvProblem, NormProblem, PoolProblem
from fastconv.bench.compare import compare
from fastconv.bench.import_common import Skip
from fastconv.bench.importers import import_files
from fastconv.bench.report import write_report
from fastconv.bench.schema import SCHEMA, errors
from fastconv.cli import main

DATA = Path(__file__).parent / "data"
HEADER = "Output template: perf,%engine%,%impl%,%name%,%prb%,%Gops%,%-time%,%-Gflops%,%0time%,%0Gflops%"
CONV1 = (
    'perf,cpu,brg_conv_fwd:avx512_core,"resnet_50:conv1",--mode=P --conv --dir=FWD_B '
    'mb8ic3ih224oc64oh112kh7sh2ph3n"resnet_50:conv1",2.3617,7.56,312.4,8.01,294.8'
)


def _entries(lines, **kw):
    return [e for e in import_benchdnn.read(lines, "run.log", **kw) if not isinstance(e, Skip)]


def _skips(lines, reader=import_benchdnn.read, **kw):
    return [str(e) for e in reader(lines, "run.log", **kw) if isinstance(e, Skip)]


def test_default_template_line():
    lines = [
        HEADER,
        CONV1,
        "tests:1 passed:1 skipped:0 mistrusted:0 unimplemented:0 failed:0",
        "total perf: min(ms):7.56",
    ]
    (e,) = _entries(lines)
    assert e.case.problem == ConvProblem("resnet_50:conv1", 8, 3, 224, 224, 64, 7, 7, stride=2, padding=3)
    assert e.case.op == "fwd" and e.where == "run.log:2"
    assert (e.impl, e.backend, e.selected) == ("onednn:brg_conv_fwd:avx512_core", "onednn", "brg_conv_fwd:avx512_core")
    assert (e.device, e.dtype, e.precision) == ("cpu", "float32", "fp32")
    assert e.times_ms == {"min": 7.56, "avg": 8.01}  # %-time% and %0time%; Gops and Gflops are not used
    assert _skips(lines) == ["not a perf line"] * 3
    # the same line without the header: the default template is assumed
    assert _entries([CONV1]) == [dataclasses.replace(e, where="run.log:1")]


def test_other_default_templates_and_a_file_header():
    # oneDNN's older default (the benchdnn README's vtune example): %Gfreq% after %Gops%
    gfreq = (
        'perf,cpu,jit:avx512_common,"alexnet:conv2",--conv g2mb256ic96ih27oc256oh27kh5ph2n"alexnet:conv2",'
        "104.696,0,20.2195,5177.98,21.9233,4775.56"
    )
    (e,) = _entries([gfreq])
    assert e.case.problem == ConvProblem("alexnet:conv2", 256, 96, 27, 27, 256, 5, 5, padding=2, groups=2)
    assert e.times_ms == {"min": 20.2195, "avg": 21.9233}
    # newer oneDNN prints the creation time there: its own Output template line says so
    header = "Output template: perf,%engine%,%impl%,%name%,%prb%,%Gops%,%+ctime%,%-time%,%-Gflops%,%0time%,%0Gflops%"
    line = (
        "perf,gpu,jit:ir,,--mode=P --conv --engine=gpu --dir=BWD_W mb16ic64ih56oc64oh56kh1,6.57,2.5,1.0,6570,1.2,5475"
    )
    (e,) = _entries([header, line])
    assert e.case.problem == ConvProblem("", 16, 64, 56, 56, 64, 1, 1)
    assert (e.case.op, e.device, e.times_ms) == ("bwd-weight", "gpu", {"min": 1.0, "avg": 1.2})


def test_custom_template():
    # knobs_perf_report.md's custom example (%prb%,%-time%,%-Gflops%), here with a conv problem
    lines = ["Output template: %prb%,%-time%,%-Gflops%", 'mb8ic64ih56oc64oh56kh3ph1n"a",1.5,1233.1', "tests:1 passed:1"]
    (e,) = _entries(lines[1:], template="%prb%,%-time%,%-Gflops%")
    assert e.case.problem == ConvProblem("a", 8, 64, 56, 56, 64, 3, 3, padding=1) and e.times_ms == {"min": 1.5}
    assert e.impl == "onednn" and e.selected is None  # no %impl% in the template
    assert _entries(lines) == [dataclasses.replace(e, where="run.log:2")]  # the file's header
    # unit modifiers: %Ktime% prints seconds (ms / 1e3); %dir% and %cfg% as their own fields
    (e,) = _entries(["x|BWD_D|f64|ic4ih9oc4kh3|0.002"], template="x|%dir%|%cfg%|%desc%|%0Ktime%")
    assert (e.case.op, e.dtype, e.times_ms) == ("bwd-data", "float64", {"avg": 2.0})


@pytest.mark.parametrize(
    "prb, op, problem, types",
    [
        (
            "--conv --dir=BWD_D mb8ic64ih56oc64oh56kh3ph1",
            "bwd-data",
            ConvProblem("", 8, 64, 56, 56, 64, 3, 3, 1, 1),
            None,
        ),
        (
            "--conv --dir=BWD_WB --mb=16 mb8ic64ih56oc64oh56kh1",
            "bwd-weight",
            ConvProblem("", 16, 64, 56, 56, 64, 1, 1),
            None,
        ),
        ("--conv --dir=FWD_I ic8ih9oc8oh9kh3ph2dh1", "fwd", ConvProblem("", 2, 8, 9, 9, 8, 3, 3, 1, 2, 2), None),
        ("--conv --dt=bf16:bf16:f32 ic8ih9oc8kh3", "fwd", ConvProblem("", 2, 8, 9, 9, 8, 3, 3), ("float32", "bf16")),
        ("--conv --cfg=bf16bf16bf16 ic8ih9oc8kh3", "fwd", ConvProblem("", 2, 8, 9, 9, 8, 3, 3), ("float32", "bf16")),
        ("--conv --attr-fpmath=tf32 ic8ih9oc8kh3", "fwd", ConvProblem("", 2, 8, 9, 9, 8, 3, 3), ("float32", "tf32")),
        ("--pool --dir=FWD_I mb8ic64ih112oh56kh3sh2ph1", "pool-fwd", PoolProblem("", 8, 64, 112, 112, 3, 2, 1), None),
        (
            "--pool --dir=BWD_D --alg=max mb8ic64ih112oh56kh3sh2ph1",
            "pool-bwd",
            PoolProblem("", 8, 64, 112, 112, 3, 2, 1),
            None,
        ),
        ("--bnorm --dir=BWD_DW mb8ic64ih112", "bn-bwd", NormProblem("", 8, 64, 112, 112, 1 / 16), None),
        ("--bnorm mb8ic64ih112", "bn-fwd", NormProblem("", 8, 64, 112, 112, 1 / 16), None),
    ],
)
def test_directions_drivers_and_types(prb, op, problem, types):
    (e,) = _entries([f"perf,cpu,ref:any,,--mode=P {prb},1.0,2.0,0.5,3.0,0.3"])
    assert (e.case.op, e.case.problem) == (op, problem)
    assert (e.dtype, e.precision) == (types or ("float32", "fp32"))


def test_lines_without_a_fastconv_counterpart_are_skipped_and_counted(tmp_path):
    lines = [
        "perf,cpu,jit_int8:avx512_core_vnni,,--mode=P --conv --dir=FWD_I --cfg=u8s8u8 ic8ih9oc8kh3,1,0.5,2,0.6,1.6",
        "perf,cpu,brgemm:avx512_core,,--mode=P --ip mb112oc1000ic2048,0.45,0.52,879,0.57,795",
        "perf,cpu,jit:avx512_core,,--mode=P --conv mb2ic8id9ih9oc8kd3kh3,1,0.5,2,0.6,1.6",
        "perf,cpu,jit:avx512_core,,--mode=P --pool --alg=avg_np mb8ic64ih112oh56kh3sh2ph1,1,0.5,2,0.6,1.6",
        "perf,cpu,jit:avx512_core,,--mode=P --bnorm --dir=FWD_I mb8ic64ih112,1,0.5,2,0.6,1.6",
        "perf,cpu,jit:avx512_core,,--mode=P --conv --dt=f16 ic8ih9oc8kh3,1,0.5,2,0.6,1.6",
        CONV1,
    ]
    assert _skips(lines) == [
        "data type u8s8u8 (fastconv imports f32, f64 and bf16)",
        "benchdnn --ip (fastconv imports conv, pool and bnorm)",
        "3-D problems",
        "pool --alg=avg_np (fastconv times max pooling)",
        "bnorm --dir=FWD_I (fastconv imports FWD_D, BWD_DW)",
        "data type f16 (fastconv imports f32, f64 and bf16)",
    ]
    path = tmp_path / "run.log"
    path.write_text("\n".join(["some log output", *lines]) + "\n")
    doc, summary = import_files([path], "m", 4)
    assert len(doc["results"]) == 1 and "1 records; lines skipped: " in summary[0] and "1 not a perf line" in summary[0]


@pytest.mark.parametrize(
    "line, why",
    [
        ("perf,cpu,jit,,--conv mb8ic64ih56oc64oh56kh3ph1,1.8,8.0,231.2,10.0", "does not fit the template"),
        ("perf,cpu,jit,,--conv mb8ic64ih56oc64oh56kh3ph1,1.8,fast,231.2,10.0,185.0", "does not fit the template"),
        ("perf,cpu,jit,,--conv mb8ic64oc64kh3,1.8,8.0,231.2,10.0,185.0", r"descriptor 'mb8ic64oc64kh3': needs ih"),
        ("perf,cpu,jit,,--conv mb8ic64ih56oc64oh56kh3ph1,1.8,0,231.2,0,185.0", "must be a positive time"),
        ("perf,cpu,jit,,--conv --mb=x mb8ic64ih56oc64kh3ph1,1.8,8.0,231.2,10.0,185.0", "--mb must be a number"),
        ("perf,cpu,jit,,--conv ic8ih9oc8kh3 ic8ih9oc8kh3,1.8,8.0,231.2,10.0,185.0", "one problem descriptor"),
    ],
)
def test_malformed_perf_lines_name_file_and_line(line, why):
    with pytest.raises(ValueError, match=rf"^run\.log:2: .*{why}"):
        _entries([HEADER, line])


def test_bad_templates():
    for template, why in (
        ("perf,%engine%,%-time%", "needs %prb% or %desc%"),
        ("perf,%prb%,%Gops%", "needs a time"),
        ("perf,%engine%,%impl%,%name%,%cfg%,%attr%,%DESC%,%-time%", "%DESC%"),
    ):
        with pytest.raises(ValueError, match=why):
            import_benchdnn.compile_template(template)
    with pytest.raises(ValueError, match=r"run\.log:1: .*needs a time"):
        _entries(["Output template: perf,%prb%", CONV1])


# DeepBench's results spreadsheet (results/train/DeepBench_NV_V100.xlsx, "Results FP32") saved as CSV: title rows,
# the GEMM table, then the convolution table with its column names as the spreadsheet spells them (times in ms;
# P is the output width, Q the height), "N/A*" where an op was not timed, a footnote row.
SHEET = """Precision,Float
,,,
Dense Matrix Multiplication,,M,N,K,A Transpose,B Transpose,,Time (msec),TERAFLOPS
,DeepSpeech,1760,16,1760,N,N,,0.038,2.6
,,,
Convolution,,,,,,,,,,,,,,,,,,,,,,
,,W,H,C,N,K ,S (Filter width),R (Filter height),pad_w,pad_h,Horizontal stride,Vertical stride,Forward (msec),\
wrt Inputs (msec),wrt Parameters (msec),,P,Q,Total Time (msec),FWD TERAFLOPS,BWD INPUTS TERAFLOPS,\
BWD PARMS TERAFLOPS,Forward Algorithm
,DeepSpeech,700,161,1,4,32,20,5,0,0,2,2,0.078,N/A*,0.127,,341,79,0.205,8.84,N/A*,5.43,IMPLICIT_GEMM
,Vision,56,56,256,8,64,1,1,0,0,1,1,2.5,4.0,5.0,,56,56,11.5,1,1,1,IMPLICIT_PRECOMP_GEMM
,,,,,,,,,,,,,,,,,,,,,,
"* = The backward pass wrt inputs is excluded for these kernels",,,,,,,
""".splitlines()


def test_deepbench_spreadsheet_rows():
    got = [e for e in import_deepbench.read(SHEET, "v100.csv") if not isinstance(e, Skip)]
    deepspeech = ConvProblem("", 4, 1, 161, 700, 32, 5, 20, stride=2)
    vision = ConvProblem("", 8, 256, 56, 56, 64, 1, 1)
    assert [(e.case.problem, e.case.op, e.times_ms, e.selected, e.where) for e in got] == [
        (deepspeech, "fwd", {"avg": 0.078}, "IMPLICIT_GEMM", "v100.csv:8"),
        (deepspeech, "bwd-weight", {"avg": 0.127}, None, "v100.csv:8"),
        (vision, "fwd", {"avg": 2.5}, "IMPLICIT_PRECOMP_GEMM", "v100.csv:9"),
        (vision, "bwd-data", {"avg": 4.0}, None, "v100.csv:9"),
        (vision, "bwd-weight", {"avg": 5.0}, None, "v100.csv:9"),
    ]
    assert {e.impl for e in got} == {"deepbench"} and len(_skips(SHEET, import_deepbench.read)) == 9


def test_deepbench_conv_bench_columns_and_mkl_rows():
    # conv_bench's column names (times in microseconds), a half-precision row skipped
    table = [
        "w,h,c,n,k,f_w,f_h,pad_w,pad_h,stride_w,stride_h,precision,fwd_time (usec),bwd_inputs_time (usec),"
        "bwd_params_time (usec),total_time (usec),fwd_algo",
        "56,56,64,8,64,3,3,1,1,1,1,float,1500,2000,2500,6000,WINOGRAD",
        "56,56,64,8,64,3,3,1,1,1,1,half,700,900,1100,2700,WINOGRAD",
    ]
    got = [e for e in import_deepbench.read(table, "t.csv", device="gpu") if not isinstance(e, Skip)]
    a = ConvProblem("", 8, 64, 56, 56, 64, 3, 3, padding=1)
    assert [(e.case.problem, e.case.op, e.times_ms, e.device, e.selected) for e in got] == [
        (a, "fwd", {"avg": 1.5}, "gpu", "WINOGRAD"),
        (a, "bwd-data", {"avg": 2.0}, "gpu", None),
        (a, "bwd-weight", {"avg": 2.5}, "gpu", None),
    ]
    assert "DeepBench precision half (fastconv imports float)" in _skips(table, import_deepbench.read)
    # the MKL benchmark's --csv-output: mode, skip_padding, N, W, H, C, K, S, R, strides, pads, min ms, max gflop/s,
    # avg ms, avg gflop/s
    mkl = ["BWD_F,0,8,28,14,128,128,3,3,2,1,1,0,1.25e+00,2.0e+02,1.5e+00,1.8e+02"]
    (e,) = [e for e in import_deepbench.read(mkl, "mkl.csv") if not isinstance(e, Skip)]
    assert e.case.op == "bwd-weight" and e.times_ms == {"min": 1.25, "avg": 1.5}
    assert e.case.problem == ConvProblem("", 8, 128, 14, 28, 128, 3, 3, stride=(1, 2), padding=(0, 1))


@pytest.mark.parametrize(
    "row, why",
    [
        (",Vision,56,5x6,256,8,64,1,1,0,0,1,1,2.5,4.0,5.0,,56,56,11.5,1,1,1,X", "H must be an integer"),
        (",Vision,56,56,256,8,64,1,1,0,0,1,1,fast,4.0,5.0,,56,56,11.5,1,1,1,X", "fwd time must be a number"),
        (",Vision,56,56,256,8,64,1,1,0,0,1,1,2.5,4.0,5.0,,28,56,11.5,1,1,1,X", "P=28 but .* output width of 56"),
        (",Vision,5,5,256,8,64,7,7,0,0,1,1,2.5,4.0,5.0,,,,11.5,1,1,1,X", "not a valid convolution"),
    ],
)
def test_deepbench_bad_rows(row, why):
    with pytest.raises(ValueError, match=rf"^v100\.csv:9: .*{why}"):
        list(import_deepbench.read([*SHEET[:8], row], "v100.csv"))
    with pytest.raises(ValueError, match=r"^m\.csv:1: .*17 fields"):
        list(import_deepbench.read(["FWD,0,8,56,56,64,64,3,3,1,1,1,1,1.5"], "m.csv"))


def _files(tmp_path):
    """A benchdnn log whose first conv is quick's a_3x3 (oneDNN's name for it replaced on import), 5 ms avg."""
    log = tmp_path / "onednn.log"
    log.write_text(
        "\n".join(
            [
                HEADER,
                'perf,cpu,brg_conv_fwd:avx512_core,"resnet_50:res2a_branch2b",--mode=P --conv --dir=FWD_B '
                'mb8ic64ih56oc64oh56kh3ph1n"resnet_50:res2a_branch2b",1.85,4.5,411.0,5.0,369.9',
                CONV1,
                "tests:2 passed:2 skipped:0 mistrusted:0 unimplemented:0 invalid_arguments:0 failed:0 listed:0",
            ]
        )
        + "\n"
    )
    return log


def test_round_trip_into_report_and_compare(tmp_path):
    log = _files(tmp_path)
    out = tmp_path / "out"
    assert main(["bench", "import", str(log), "--machine", "Xeon A 2c", "--threads", "2", "--out", str(out)]) == 0
    (path,) = out.glob("*.json")
    assert path.name.startswith("xeon-a-2c-benchdnn-")
    doc = results.load(path)  # validated against the schema
    assert errors(doc) == [] and doc["machine"]["label"] == "Xeon A 2c" and doc["settings"]["threads"] == [2]
    if importlib.util.find_spec("jsonschema"):
        import jsonschema

        assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc)) == []
    a3, conv1 = doc["results"]
    assert (a3["case"], a3["descriptor"]) == ("a_3x3", 'mb8ic64ih56oc64oh56kh3ph1n"a_3x3"')  # matched onto quick
    assert conv1["case"] == "d_7x7_s2"  # resnet_50:conv1 is quick's d
    assert a3["time_s"] == {"median": 0.005, "min": 0.0045, "max": 0.005, "repeats": 1}
    assert (a3["kind"], a3["impl"], a3["threads"], a3["max_rel_err"]) == (
        "baseline",
        "onednn:brg_conv_fwd:avx512_core",
        2,
        None,
    )
    assert a3["flops"] == 2 * 8 * 64 * 56 * 56 * 64 * 9  # fastconv's count (padding taps included), not benchdnn's Gops
    assert a3["message"].startswith(f"imported from {log}:2 (benchdnn --conv --dir=FWD_B); time_s.median is its avg")
    fastconv_run = json.loads((DATA / "bench_machine_a.json").read_text())  # numba/auto a_3x3 in 10 ms, 2 threads
    text = write_report([fastconv_run, doc], tmp_path / "report", ["a", "b"], plots=False).read_text()
    # one column for the machine; oneDNN's row beside ours: 1849688064 FLOPs in 5 ms = 369.9 GFLOP/s
    assert "| a_3x3 | fwd | numba/auto | GFLOP/s | 200.0 |" in text
    assert "| a_3x3 | fwd | onednn:brg_conv_fwd:avx512_core | GFLOP/s | 369.9 |" in text
    assert "were not checked by fastconv" in text
    table = compare(fastconv_run, doc, impl_a="numba/auto", impl_b="onednn:*")
    assert (
        "| a_3x3 | fwd | numba/auto vs onednn:brg_conv_fwd:avx512_core | 2t/2t float32 | 10.000 | 5.000 | 2.00x |"
        in table
    )
    assert "| numba/auto vs onednn:* | 1 | 2.00x |" in table
    assert "No record was timed in both runs" in compare(fastconv_run, doc)  # implementations differ
    assert main(["bench", "compare", str(DATA / "bench_machine_a.json"), str(path), "--impl-a", "numba/auto"]) == 2


def test_import_options(tmp_path, capsys):
    log = _files(tmp_path)
    doc, _ = import_files([log], "m", 1, stat="min", impl="onednn", match=["none"], device="gpu", note="oneDNN v3.5")
    r = doc["results"][0]
    assert (r["case"], r["impl"], r["selected_algo"]) == (
        "resnet_50:res2a_branch2b",
        "onednn",
        "brg_conv_fwd:avx512_core",
    )
    assert r["time_s"]["median"] == 0.0045 and "min time (max not given" in r["message"]
    assert r["device"] == "cpu" and doc["note"].endswith("oneDNN v3.5")  # the line's %engine% wins over --device
    bad = tmp_path / "bad.log"
    bad.write_text(HEADER + "\nperf,cpu,jit,,--conv mb8ic64ih56oc64oh56kh3ph1,1.8,8.0\n")
    assert main(["bench", "import", str(bad), "--machine", "m", "--threads", "2", "--out", str(tmp_path)]) == 2
    assert "bad.log:2: perf line does not fit the template" in capsys.readouterr().err
    empty = tmp_path / "empty.log"
    empty.write_text("nothing here\n")
    with pytest.raises(ValueError, match=r"empty\.log: no deepbench results in it \(1 not a DeepBench conv row\)"):
        import_files([empty], "m", 1)
    with pytest.raises(ValueError, match=r"empty\.log: no benchdnn results"):
        import_files([empty], "m", 1, fmt="benchdnn")
    deepbench = tmp_path / "v100.csv"
    deepbench.write_text("\n".join(SHEET) + "\n")
    doc, summary = import_files([deepbench], "V100", 1, device="gpu")
    assert [r["case"] for r in doc["results"]][2:] == ["b_1x1", "b_1x1", "b_1x1"]  # quick's b_1x1 shape
    assert doc["results"][2]["time_s"]["median"] == 0.0025 and doc["results"][2]["device"] == "gpu"
    assert summary == [
        f"{deepbench}: deepbench, 5 records; lines skipped: 1 header or title row; 8 not a DeepBench conv row"
    ]
