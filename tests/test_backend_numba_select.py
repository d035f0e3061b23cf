"""algo='auto' on the numba backend: it follows the measured table in selection.py, the table agrees with the
recorded benchmark results, and the register-tiled kernels compile to the intended FMA tiles."""

import json
import re
from pathlib import Path

import numba
import numpy as np
import pytest

import fastconv as fc
from fastconv.backends.numba_cpu import config, selection
from fastconv.bench.cases import CPU_CONV, CPU_CONV_BACKWARD

RESULTS = Path(__file__).resolve().parents[1] / "bench_results" / "numba_cpu.json"

# One call per category of selection.RULES (x shape, w shape, kwargs) -> the category it must fall in; x in NCHW
# order, except where the kwargs hold layout="channels_last".
TABLE = [
    ((2, 16, 9, 9), (5, 16, 3, 3), dict(stride=2, padding=1, layout="channels_last"), "channels_last"),
    ((2, 8, 9, 9), (5, 8, 3, 3), dict(padding=1, layout="channels_last"), "channels_last"),
    ((2, 8, 9, 9), (6, 4, 3, 3), dict(groups=2, padding=1, layout="channels_last"), "small"),
    ((2, 16, 18, 18), (12, 8, 3, 3), dict(groups=2, padding=1, layout="channels_last"), "grouped"),
    ((2, 16, 18, 18), (16, 1, 3, 3), dict(groups=16, padding=1, layout="channels_last"), "depthwise"),
    ((2, 16, 18, 18), (16, 1, 3, 3), dict(groups=16, padding=1), "depthwise"),
    ((2, 16, 18, 18), (10, 16, 1, 1), dict(), "pointwise"),
    ((2, 16, 18, 18), (12, 8, 3, 3), dict(groups=2, padding=1), "grouped"),
    ((2, 16, 18, 18), (5, 16, 3, 3), dict(stride=2, padding=1), "strided"),
    ((2, 16, 18, 18), (10, 16, 1, 1), dict(stride=2), "strided"),
    ((2, 16, 18, 18), (5, 16, 3, 3), dict(padding=1), "3x3"),
    ((2, 16, 18, 18), (5, 16, 3, 3), dict(padding=1, dilation=2), "dense"),
    ((1, 4, 8, 8), (4, 4, 3, 3), dict(), "small"),
    ((1, 8, 9, 9), (5, 8, 3, 3), dict(stride=2, padding=1), "small"),
    ((2, 8, 9, 9), (8, 1, 3, 3), dict(groups=8, padding=1), "small"),
]


def _select(xs, ws, kw, backward=False):
    kw = dict(kw)
    x, w = np.empty(xs, np.float32), np.empty(ws, np.float32)
    if kw.pop("layout", "nchw") == "channels_last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if not backward:
        return fc.select(fc.conv2d, x, w, **kw)
    y = fc.conv2d(np.zeros(xs), np.zeros(ws), backend="numpy", **kw)
    return fc.select(fc.conv2d_backward, np.empty(y.shape, np.float32), x, w, need_bias=False, **kw)


@pytest.mark.parametrize("xs, ws, kw, expected", TABLE, ids=[f"{t[3]}{i}" for i, t in enumerate(TABLE)])
def test_auto_follows_the_table(xs, ws, kw, expected):
    """Forward and both gradients: auto runs the first algorithm of the matching category's ranking."""
    picked = {s.op: s.algo for s in _select(xs, ws, kw) + _select(xs, ws, kw, backward=True)}
    p = fc.params.conv_params(
        "conv2d",
        xs,
        ws,
        None,
        kw.get("stride", 1),
        kw.get("padding", 0),
        kw.get("dilation", 1),
        kw.get("groups", 1),
        "zeros",
        np.float32,
        kw.get("layout") == "channels_last",
    )
    assert selection.category("conv2d", p)[0] == expected
    for op, algo in picked.items():
        assert algo == selection.category(op, p)[1][0], f"{op}: auto chose {algo}"


def test_every_ranked_algorithm_is_registered():
    for op, rules in selection.RULES.items():
        have = set(fc.dispatch.algos(op, "numba"))
        for name, _, ranking in rules:
            assert set(ranking) <= have, f"{op} rule {name} ranks unknown algorithms {set(ranking) - have}"


def test_table_agrees_with_the_recorded_measurements():
    """For every shared problem in bench_results/numba_cpu.json, auto's forward (and, for the backward problems,
    weight-gradient) algorithm is the fastest measured numba algorithm for it, or within 10% of that one (the timing
    noise on a shared machine); so is its choice for the problem's x in channels_last order (conv2d_fwd_v9_nhwc in
    place, or a copy to NCHW for the NCHW choice)."""
    doc = json.loads(RESULTS.read_text())
    checks = [(doc["selection"][pr.name], _select(pr.x_shape, pr.w_shape, pr.kwargs)[0].algo) for pr in CPU_CONV]
    checks += [
        (
            doc["selection_bwd_weight"][f"{pr.name}_bwd_weight"],
            next(
                s.algo for s in _select(pr.x_shape, pr.w_shape, pr.kwargs, backward=True) if s.op == "conv2d_bwd_weight"
            ),
        )
        for pr in CPU_CONV_BACKWARD
    ]
    for case, ranking in doc["selection_channels_last"].items():  # conv2d_fwd_v9_nhwc in place vs a copy to NCHW
        pr = next(p for p in CPU_CONV if p.name == case)
        chosen = _select(pr.x_shape, pr.w_shape, {**pr.kwargs, "layout": "channels_last"})[0].algo
        checks.append(
            (
                [(name, ms, None) for name, ms in ranking],
                "conv2d_fwd_v9_nhwc" if chosen == "conv2d_fwd_v9_nhwc" else "copy_to_nchw",
            )
        )
    for ranking, chosen in checks:
        measured = {algo: ms for algo, ms, _ in ranking}
        best = min(measured.values())
        assert measured[chosen] <= 1.10 * best, f"auto picks {chosen} ({measured[chosen]} ms), measured {ranking}"


def _tile_kernels():
    """(kernel, float32 arguments, register tile size) for each register-tiled conv kernel checked below."""
    from fastconv.backends.numba_cpu import conv2d_chunks, conv2d_nhwc, conv2d_nhwc_gemm, conv2d_panels  # noqa: PLC0415
    from fastconv.backends.numba_cpu.conv2d_rows import conv_rows  # noqa: PLC0415
    from fastconv.backends.numba_cpu.conv2d_winograd import winograd_fwd  # noqa: PLC0415

    f32, lanes = np.zeros(1, np.float32), config.lanes(4)
    rows = (f32, 0, 1, 1, np.zeros(1, np.int64), f32, f32, f32, 0, 1, 1, 0, 1, 1, 1, 1, 1, lanes)
    nhwc = (f32, f32, f32, f32, (1,) * 6, (1,) * 4, (1,) * 8, (1, 1), lanes)
    slots = np.zeros((1, 1), np.float32)
    winograd = (f32, 1, 1, f32, f32, f32, slots, slots, 1, 1, 1, 1, 1, 1, lanes)
    panels = (f32, f32, f32, f32, (1,) * 5, (1,) * 3, np.zeros(1, np.int64), (1, 1, 1), lanes)
    nhwc_gemm = (f32, f32, f32, f32, 1, 1, 1, 64, lanes)
    chunks = (f32, f32, f32, (1,) * 5, (1,) * 8, (1, 1), lanes)
    tile = config.TILE_ROWS * config.TILE_VECS
    return [
        pytest.param(conv_rows, rows, tile, id="conv2d_fwd_v5_rows"),
        pytest.param(conv2d_nhwc.nhwc_fwd, nhwc, conv2d_nhwc.ROWS * conv2d_nhwc.VECS, id="conv2d_fwd_v9_nhwc"),
        pytest.param(winograd_fwd, winograd, tile, id="conv2d_fwd_v8_winograd"),
        pytest.param(
            conv2d_panels.panels_fwd, panels, conv2d_panels.ROWS * conv2d_panels.VECS, id="conv2d_fwd_v11_panels"
        ),
        pytest.param(
            conv2d_nhwc_gemm.nhwc_gemm,
            nhwc_gemm,
            conv2d_nhwc_gemm.ROWS * conv2d_nhwc_gemm.VECS,
            id="conv2d_fwd_v12_nhwc_gemm",
        ),
        pytest.param(
            conv2d_chunks.chunks_bwd_weight,
            chunks,
            conv2d_chunks.ROWS * conv2d_chunks.VECS,
            id="conv2d_bwd_weight_v8_chunks",
        ),
    ]


@pytest.mark.parametrize("kernel, args, tiles", _tile_kernels())
def test_kernel_keeps_its_tile_in_registers(kernel, args, tiles):
    """The inner loop of conv2d_fwd_v5_rows, of conv2d_fwd_v8_winograd's GEMMs, of conv2d_fwd_v9_nhwc's interior
    tiles, of conv2d_fwd_v11_panels' panels, of conv2d_fwd_v12_nhwc_gemm's rows and of conv2d_bwd_weight_v8_chunks'
    chunks is ROWS*VECS vector FMAs fed by VECS loads and ROWS broadcasts, with no vector traffic to the stack
    (compiled afresh: cached code cannot be inspected)."""
    fresh = numba.njit(fastmath=set(config.FASTMATH), error_model="numpy")(kernel.parts.py_func)
    fresh.compile(tuple(numba.typeof(a) for a in (*args, 0, 1, 0)))  # the compiled parts: part, parts, slot
    asm = fresh.inspect_asm(fresh.signatures[0])
    reg = "zmm" if config.VECTOR_BYTES == 64 else "ymm"
    # the innermost loop: the block that ends in a backward jump and holds the FMAs
    blocks = re.split(r"\n\.LBB\S+:", asm)
    fma_blocks = [b for b in blocks if len(re.findall(rf"vfmadd\w+\s+.*%{reg}", b)) >= tiles]
    assert fma_blocks, f"no loop body with {tiles} {reg} FMAs"
    body = fma_blocks[0]
    assert len(re.findall(rf"vfmadd\w+\s+.*%{reg}", body)) == tiles
    spills = [line for line in body.splitlines() if "rsp" in line and reg in line]
    assert not spills, f"vector registers spill to the stack: {spills}"
