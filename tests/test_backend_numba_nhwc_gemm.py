"""conv2d_fwd_v12_nhwc_gemm (numba_cpu/conv2d_nhwc_gemm.py): a channels_last 1x1 conv as a plain GEMM, on shapes
past its blocks (pixel rows past whole tiles and past a block of MB rows, output channels past a 64-wide block and
past a group of KG blocks, input channels past a KC chunk), strided (the gathered rows), against the float64
reference with the output poisoned (conftest), 1 and 2 threads bit for bit, NaN, and its register tile."""

import json
from pathlib import Path

import conformance as cf
import numpy as np
import pytest
from cases import ConvCase
from helpers import rand
from test_backend_numba_props import one_vs_two  # noqa: F401 - the fixture

import fastconv as fc
from fastconv.backends.numba_cpu import selection
from fastconv.params import conv_params

ALGO = "conv2d_fwd_v12_nhwc_gemm"
GEMM_CASES = [
    ConvCase("gemm_edges", (2, 7, 11, 13), (9, 7, 1, 1), dict()),  # 286 rows: 2 blocks + 94, 4 left past tiles
    ConvCase("gemm_wide_k", (1, 3, 5, 7), (300, 3, 1, 1), dict()),  # 5 blocks of 64: 2 groups, the last masked
    ConvCase("gemm_deep_c", (1, 260, 4, 5), (70, 260, 1, 1), dict()),  # 3 chunks of input channels
    ConvCase("gemm_stride2", (3, 20, 13, 15), (19, 20, 1, 1), dict(stride=2)),
    ConvCase("gemm_stride32", (1, 33, 20, 17), (65, 33, 1, 1), dict(stride=(3, 2)), bias=False),
]
ids = [c.id for c in GEMM_CASES]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", GEMM_CASES, ids=ids)
def test_forward(case, dtype, rng):
    cf.check_conv_forward("numba", ALGO, case, dtype, rng, layout="channels_last")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", GEMM_CASES, ids=ids)
def test_threads(case, dtype, rng, one_vs_two):  # noqa: F811
    x, w, b = cf.channels_last(rand(rng, case.x, dtype)), rand(rng, case.w, dtype), rand(rng, (case.w[0],), dtype)
    one_vs_two(lambda: [fc.conv2d(x, w, b, backend="numba", algo=ALGO, **case.kw)])


def test_output_is_channels_last_and_nan_propagates(rng):
    case = GEMM_CASES[2]
    x, w = rand(rng, case.x, np.float32), rand(rng, case.w, np.float32)
    x[0, 100, 1, 2] = np.nan
    y = fc.conv2d(cf.channels_last(x), w, backend="numba", algo=ALGO)
    ref = fc.conv2d(x.astype(np.float64), w.astype(np.float64), backend="numpy")
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous
    assert np.array_equal(np.isnan(y), np.isnan(ref))


@pytest.mark.parametrize(
    "xs, ws, kw, expected",
    [
        ((2, 512, 28, 28), (1024, 512, 1, 1), dict(stride=2), ALGO),
        ((2, 1024, 14, 14), (256, 1024, 1, 1), dict(), ALGO),
        ((2, 256, 56, 56), (64, 256, 1, 1), dict(), "conv2d_fwd_v9_nhwc"),  # K = 64: v9_nhwc stays
        ((2, 256, 14, 14), (256, 256, 3, 3), dict(padding=1), "conv2d_fwd_v9_nhwc"),
        ((2, 512, 7, 7), (512, 512, 3, 3), dict(padding=1), "conv2d_fwd_v11_panels"),  # x copied to NCHW
    ],
)
def test_auto_on_channels_last(xs, ws, kw, expected):
    x = cf.channels_last(np.empty(xs, np.float32))
    assert fc.select(fc.conv2d, x, np.empty(ws, np.float32), **kw)[0].algo == expected
    p = conv_params("conv2d", xs, ws, None, kw.get("stride", 1), kw.get("padding", 0), 1, 1, "zeros", np.float32, True)
    assert selection.category("conv2d", p)[1][0] == expected


def test_auto_agrees_with_the_recorded_measurements():
    """For every layer of bench_results/late_layers.json timed on a channels_last x that selection.py's
    channels_last_1x1 or 3x3_late row takes (the rows that record decided; b's K = 64 falls to the channels_last
    row, which bench_results/numba_cpu.json decides), the algorithm auto picks for that x (the late layer's x
    copied to NCHW for conv2d_fwd_v11_panels) is the fastest numba algorithm measured on it, or within 10%."""
    doc = json.loads((Path(__file__).resolve().parents[1] / "bench_results" / "late_layers.json").read_text())
    for name, case in doc["cases"].items():
        times = {k.split("/")[1]: t for k, t in case["median_s"].items() if k.startswith("numba-cl/conv2d")}
        if not times:
            continue
        N, C, H, W, K, R, S = case["shape"]
        kw = {"stride": 1, "padding": 0, **case["kwargs"]}
        p = conv_params("conv2d", (N, C, H, W), (K, C, R, S), None, kw["stride"], kw["padding"], 1, 1, "zeros",
                        np.float32, True)  # fmt: skip
        if selection.category("conv2d", p)[0] not in ("channels_last_1x1", "3x3_late"):
            continue
        x = cf.channels_last(np.empty((N, C, H, W), np.float32))
        chosen = fc.select(fc.conv2d, x, np.empty((K, C, R, S), np.float32), **case["kwargs"])[0].algo
        assert times[chosen] <= 1.10 * min(times.values()), f"{name}: auto picks {chosen}, measured {times}"
