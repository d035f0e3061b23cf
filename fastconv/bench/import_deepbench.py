"""DeepBench convolution results (github.com/baidu-research/DeepBench) as imported entries.

Two CSV forms:
- A table with a header row, as the results spreadsheets (results/train/*.xlsx, saved as CSV) and the columns
  of conv_bench's printed table have it: W, H, C, N, K, S (filter width), R (filter height), pad_w, pad_h, the
  strides (`Horizontal stride`/`wstride`/`stride_w`, `Vertical stride`/`hstride`/`stride_h`) and one time
  column per op, its unit in parentheses: `Forward (msec)` or `fwd_time (usec)` -> fwd, `wrt Inputs (msec)` or
  `bwd_inputs_time (usec)` -> bwd-data, `wrt Parameters (msec)` or `bwd_params_time (usec)` -> bwd-weight.
  Optional: `precision` (float; half and int8 are skipped), `Forward Algorithm`/`fwd_algo` (recorded as the
  forward's selected algorithm), P and Q (checked against the output size: in DeepBench's spreadsheets P is
  the output width and Q the output height, in the order of W and H). A time column without a unit takes
  `default_unit`. A spreadsheet's other tables (GEMM, RNN) and title rows are skipped; a table ends at a row whose
  shape cells are empty. A time cell `N/A*`, `-`, `Not Supported` or empty is an op that was not timed.
- The headerless rows of the Intel MKL benchmark's `--csv-output` (code/intel/convolution/mkl_conv):
  `FWD|BWD_F|BWD_D,skip_padding,N,W,H,C,K,S,R,stride_w,stride_h,pad_w,pad_h,min_ms,max_gflops,avg_ms,avg_gflops`
  (BWD_F, backward filter -> bwd-weight; BWD_D, backward data -> bwd-data).

DeepBench's times are means over its repeats (conv_bench) or min and mean (the MKL rows). Padding is symmetric.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

from .cases import Case, ConvProblem, pair_arg
from .import_common import Entry, Skip, number, time_ms, where_error

SHAPE = ("W", "H", "C", "N", "K", "S", "R", "pad_w", "pad_h", "wstride", "hstride")
_ALIASES = {
    "W": ("w",),
    "H": ("h",),
    "C": ("c",),
    "N": ("n",),
    "K": ("k",),
    "S": ("s", "f_w", "s (filter width)", "s (fitler width)"),  # sic: DeepBench_IA_KNL7250.xlsx
    "R": ("r", "f_h", "r (filter height)"),
    "pad_w": ("pad_w",),
    "pad_h": ("pad_h",),
    "wstride": ("wstride", "stride_w", "horizontal stride"),
    "hstride": ("hstride", "stride_h", "vertical stride"),
    "P": ("p",),
    "Q": ("q",),
    "precision": ("precision",),
    "algo": ("fwd_algo", "forward algorithm"),
}
_TIME_OPS = {
    "fwd": ("forward", "fwd_time", "time forward"),
    "bwd-data": ("wrt inputs", "bwd_inputs_time", "time backward wrt inputs"),
    "bwd-weight": ("wrt parameters", "bwd_params_time", "time backward wrt weights"),
}
_UNITS = {"usec": 1e-3, "us": 1e-3, "msec": 1.0, "ms": 1.0, "sec": 1e3, "s": 1e3}
_NOT_TIMED = {"", "-", "n/a", "n/a*", "not supported"}
_MKL_OPS = {"FWD": "fwd", "BWD_F": "bwd-weight", "BWD_D": "bwd-data"}
_PRECISION = {"float": ("float32", "fp32"), "float32": ("float32", "fp32"), "double": ("float64", "fp32")}


def _header(cells: list[str], default_unit: str) -> tuple[dict[str, int], dict[str, tuple[int, float]]] | None:
    """(column of each shape/extra field, (column, ms per unit) of each op's time), or None: not a conv header."""
    columns, times = {}, {}
    for i, cell in enumerate(cells):
        name = " ".join(cell.lower().split())
        m = re.fullmatch(r"(.*?)\s*\((usec|us|msec|ms|sec|s)\)", name)
        base, unit = (m.group(1), m.group(2)) if m else (name, default_unit)
        for op, names in _TIME_OPS.items():
            if base in names:
                times[op] = (i, _UNITS[unit])
        for key, names in _ALIASES.items():
            if name in names and key not in columns:
                columns[key] = i
    return (columns, times) if all(k in columns for k in SHAPE) and times else None


def _problem(values: dict[str, str], where: str) -> ConvProblem:
    try:
        v = {k: int(values[k]) for k in SHAPE}
    except ValueError:
        bad = next(k for k in SHAPE if not values[k].strip().isdigit())
        raise where_error(where, f"{bad} must be an integer, got {values[bad]!r}") from None
    problem = ConvProblem(
        "",
        v["N"],
        v["C"],
        v["H"],
        v["W"],
        v["K"],
        v["R"],
        v["S"],
        stride=pair_arg(v["hstride"], v["wstride"]),
        padding=pair_arg(v["pad_h"], v["pad_w"]),
    )
    try:
        p = problem.params()
    except ValueError as exc:
        raise where_error(where, f"not a valid convolution: {exc}") from None
    for key, ours, dim in (("P", p.Q, "width"), ("Q", p.P, "height")):  # DeepBench's P follows W, its Q H
        if values.get(key, "").strip() and values[key].strip() != str(ours):
            raise where_error(where, f"{key}={values[key].strip()} but the shape gives an output {dim} of {ours}")
    return problem


def _entries(problem: ConvProblem, times: dict[str, dict[str, float]], where: str, algo: str | None, kw: dict):
    """One entry per timed op; `times` maps an op to its times in ms by statistic."""
    for op, stats in times.items():
        yield Entry(Case(problem, op), where, "deepbench", times_ms=stats, selected=algo if op == "fwd" else None, **kw)


def read(
    lines: list[str], path: str, device: str = "cpu", impl: str = "deepbench", default_unit: str = "us"
) -> Iterator[Entry | Skip]:
    """The entries of a DeepBench results CSV (a Skip for each other row)."""
    kw = dict(impl=impl, backend="deepbench", device=device, dtype="float32", precision="fp32")
    table = None
    for lineno, cells in enumerate(csv.reader(lines), 1):
        where = f"{path}:{lineno}"
        cells = [c.strip() for c in cells]
        if cells and cells[0].upper() in _MKL_OPS:
            yield from _mkl_row(cells, where, kw)
            continue
        header = _header(cells, default_unit)
        if header is not None:
            table = header
            yield Skip("header or title row")
            continue
        if table is not None and not any(cells[table[0][k]] for k in SHAPE if table[0][k] < len(cells)):
            table = None  # a blank, footnote or title row ends the table
        if table is None:
            yield Skip("not a DeepBench conv row")
            continue
        columns, time_cols = table
        values = {k: cells[i] if i < len(cells) else "" for k, i in columns.items()}
        problem = _problem(values, where)
        dt = _PRECISION.get(values.get("precision", "float").lower() or "float")
        if dt is None:
            yield Skip(f"DeepBench precision {values['precision']} (fastconv imports float)")
            continue
        kw_row = dict(kw, dtype=dt[0], precision=dt[1], detail=f"DeepBench {values.get('precision') or 'float'}")
        times = {}
        for op, (i, per_unit) in time_cols.items():
            cell = cells[i] if i < len(cells) else ""
            if cell.lower() not in _NOT_TIMED:
                ms = number(cell, f"the {op} time", where) * per_unit
                times[op] = {"avg": time_ms(ms, f"the {op} time", where)}
        if not times:
            yield Skip("no op timed")
            continue
        yield from _entries(problem, times, where, values.get("algo") or None, kw_row)


def _mkl_row(cells: list[str], where: str, kw: dict) -> Iterator[Entry]:
    if len(cells) != 17:
        raise where_error(where, f"a DeepBench MKL --csv-output row has 17 fields, this one {len(cells)}")
    n, w, h, c, k, s, r, sw, sh, pw, ph = cells[2:13]
    values = dict(zip(SHAPE, (w, h, c, n, k, s, r, pw, ph, sw, sh)))
    problem = _problem(values, where)
    times = {
        stat: time_ms(number(cells[i], f"the {stat} time", where), f"the {stat} time", where)
        for stat, i in (("min", 13), ("avg", 15))
    }
    detail = "DeepBench MKL --csv-output" + (" (flops without padding)" if cells[1] == "1" else "")
    yield from _entries(problem, {_MKL_OPS[cells[0].upper()]: times}, where, None, dict(kw, detail=detail))
