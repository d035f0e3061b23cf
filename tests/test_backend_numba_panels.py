"""conv2d_fwd_v11_panels (numba_cpu/conv2d_panels.py) on shapes that run every part of its blocking: several
pixel groups, K split into groups, several input-channel chunks, a partial last panel and output-channel block,
long runs (1x1 planes as one row), stride-2 runs read with vector loads, other strides lane by lane, padded and
phase-split input; against the float64 reference with the output poisoned (conftest), 1 and 2 threads bit for
bit, and its register tile in registers. The shared suites (test_backend_numba*.py) run it on cases.py too."""

import json
from pathlib import Path

import conformance as cf
import numpy as np
import pytest
from cases import ConvCase
from helpers import rand
from test_backend_numba_props import one_vs_two  # noqa: F401 - the fixture

import fastconv as fc
from fastconv.backends.numba_cpu import config, conv2d_panels, selection
from fastconv.params import conv_params

ALGO = "conv2d_fwd_v11_panels"
PANEL_CASES = [
    # 147 pixels (4 panels, one group): K split in two, 260 = 32*8 + 4 channels, 2 input-channel chunks
    ConvCase("panels_ksplit", (3, 24, 7, 7), (260, 24, 3, 3), dict(padding=1)),
    # 1334 pixels: 28 panels in 2 groups, a partial last panel
    ConvCase("panels_groups", (2, 9, 23, 29), (11, 9, 3, 3), dict(padding=1)),
    # 1x1 as one row per image (runs longer than a panel), 2 chunks of 100 channels, 2 groups
    ConvCase("panels_pointwise_long", (2, 200, 9, 61), (10, 200, 1, 1), dict()),
    ConvCase("panels_1x1_s2", (3, 20, 13, 15), (19, 20, 1, 1), dict(stride=2)),
    ConvCase("panels_s3_dilated", (2, 5, 17, 16), (6, 5, 3, 2), dict(stride=3, dilation=2)),
    ConvCase("panels_pad_s2", (2, 7, 15, 14), (9, 7, 3, 3), dict(stride=2, padding=1)),
    ConvCase("panels_asym", (1, 3, 5, 40), (17, 3, 2, 3), dict(padding=((0, 1), (2, 0))), bias=False),
    ConvCase("panels_late", (2, 40, 7, 7), (48, 40, 3, 3), dict(padding=1)),
]
ids = [c.id for c in PANEL_CASES]


def _blocking(case):
    kw = {"stride": 1, "padding": 0, "dilation": 1, **case.kw}
    p = conv_params(
        "conv2d", case.x, case.w, None, kw["stride"], kw["padding"], kw["dilation"], 1, "zeros", np.float32, False
    )
    return p, conv2d_panels.blocking(p, 4)


def test_the_cases_run_every_blocking():
    """Guard against a tunable change silently shrinking the coverage above."""
    blocks = {c.id: _blocking(c) for c in PANEL_CASES}
    p, (cb, pg, kg) = blocks["panels_ksplit"]
    assert kg < p.K // conv2d_panels.ROWS and cb < p.C and p.K % conv2d_panels.ROWS
    p, (cb, pg, kg) = blocks["panels_groups"]
    assert pg * conv2d_panels.VECS * config.lanes(4) < p.N * p.P * p.Q
    p, (cb, pg, kg) = blocks["panels_pointwise_long"]
    assert cb < p.C and p.H * p.W > 2 * conv2d_panels.VECS * config.lanes(4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", PANEL_CASES, ids=ids)
def test_forward(case, dtype, rng):
    cf.check_conv_forward("numba", ALGO, case, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", PANEL_CASES, ids=ids)
def test_threads(case, dtype, rng, one_vs_two):  # noqa: F811
    x, w, b = rand(rng, case.x, dtype), rand(rng, case.w, dtype), rand(rng, (case.w[0],), dtype)
    one_vs_two(lambda: [fc.conv2d(x, w, b, backend="numba", algo=ALGO, **case.kw)])


def test_nan_reaches_the_output(rng):
    case = PANEL_CASES[0]
    x, w = rand(rng, case.x, np.float32), rand(rng, case.w, np.float32)
    x[1, 3, 2, 4] = np.nan
    y = fc.conv2d(x, w, backend="numba", algo=ALGO, **case.kw)
    ref = fc.conv2d(x.astype(np.float64), w.astype(np.float64), backend="numpy", **case.kw)
    assert np.array_equal(np.isnan(y), np.isnan(ref))


RECORD = Path(__file__).resolve().parents[1] / "bench_results" / "late_layers.json"
# One call per category of selection.RULES that conv2d_fwd_v11_panels leads (ResNet-50 shapes at batch 2)
PANEL_TABLE = [
    ((2, 256, 14, 14), (1024, 256, 1, 1), dict(), "pointwise_small_plane"),
    ((2, 512, 28, 28), (1024, 512, 1, 1), dict(stride=2), "strided_wide"),
    ((2, 256, 28, 28), (256, 256, 3, 3), dict(stride=2, padding=1), "strided_wide"),
    ((2, 512, 7, 7), (512, 512, 3, 3), dict(padding=1), "3x3_late"),
    ((2, 256, 56, 56), (64, 256, 1, 1), dict(), "pointwise"),  # stays with conv2d_fwd_v6_pointwise
    ((2, 256, 14, 14), (256, 256, 3, 3), dict(padding=1), "3x3"),  # stays with winograd
]


@pytest.mark.parametrize("xs, ws, kw, expected", PANEL_TABLE, ids=[t[3] for t in PANEL_TABLE])
def test_auto_follows_the_table(xs, ws, kw, expected):
    x, w = np.empty(xs, np.float32), np.empty(ws, np.float32)
    algo = fc.select(fc.conv2d, x, w, **kw)[0].algo
    p = conv_params("conv2d", xs, ws, None, kw.get("stride", 1), kw.get("padding", 0), 1, 1, "zeros", np.float32, False)
    name, ranking = selection.category("conv2d", p)
    assert name == expected and algo == ranking[0]


def test_auto_agrees_with_the_recorded_measurements():
    """For every layer of bench_results/late_layers.json (benchmarks/late_layers.py), the algorithm auto picks is
    the fastest numba algorithm measured on it (NCHW x), or within 10% of it."""
    doc = json.loads(RECORD.read_text())
    for name, case in doc["cases"].items():
        N, C, H, W, K, R, S = case["shape"]
        chosen = fc.select(fc.conv2d, np.empty((N, C, H, W), np.float32), np.empty((K, C, R, S), np.float32),
                           **case["kwargs"])[0].algo  # fmt: skip
        times = {k.split("/")[1]: t for k, t in case["median_s"].items() if k.startswith("numba/conv2d")}
        assert times[chosen] <= 1.10 * min(times.values()), f"{name}: auto picks {chosen}, measured {times}"
