"""What the importers of other tools' benchmark results share: the entry one result line becomes, the exception
for lines that parse but have no fastconv counterpart, and the data-type mapping.

An importer reads a file line by line and yields an `Entry` per timed (case, op): the fastconv case, where it came
from (`file:line`), the implementation, device, dtype, precision and the times the line gives (in ms, by
statistic: `min`, `avg`, `max`). A line that is well formed but describes something fastconv does not run (another
primitive, int8, a 3-D shape) raises `Skip` with the reason, and is counted; a malformed line is a ValueError naming
the file, the line and what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .cases import Case

STATS = ("min", "avg", "max")
IMPORTED = "imported from "  # how the message of every imported record starts


class Skip(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A well-formed line with no fastconv counterpart; the message is the reason (lines are counted by it)."""


@dataclass(frozen=True)
class Entry:
    """One imported timing of one case."""

    case: Case
    where: str  # "file:line"
    tool: str  # "benchdnn" or "deepbench"
    impl: str  # the implementation label of the record, e.g. "onednn:brg_conv_fwd:avx512_core"
    backend: str  # "onednn" or "deepbench"
    selected: str | None  # the implementation or algorithm the tool reports, when it does
    device: str  # "cpu" or "gpu"
    dtype: str  # "float32" or "float64"
    precision: str  # "fp32", "bf16" or "tf32"
    times_ms: dict[str, float]  # statistic ("min", "avg", "max") -> milliseconds per call
    detail: str  # how the tool described the run, e.g. "benchdnn --conv --dir=FWD_B --stag=acdb"


def where_error(where: str, why: str) -> ValueError:
    return ValueError(f"{where}: {why}")


def number(text: str, what: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise where_error(where, f"{what} must be a number, got {text!r}") from None


def time_ms(value: float, what: str, where: str) -> float:
    """A time as the tool printed it (converted to ms): positive and finite, else a ValueError."""
    if not value > 0 or value == float("inf"):
        raise where_error(where, f"{what} must be a positive time, got {value!r}")
    return value


_ONEDNN_DT = re.compile(r"f32|f64|bf16|f16|tf32|s32|s8|u8|s4|u4|f8_e5m2|f8_e4m3|e8m0|f4_e2m1|f4_e3m0")


def onednn_types(cfg: str | None, dt: str | None, fpmath: str | None) -> tuple[str, str]:
    """(dtype, precision) of a benchdnn problem: `--dt=bf16:bf16:f32` (newer drivers), `--cfg=bf16bf16f32`
    (older ones) or neither (f32), and `--attr-fpmath=bf16|tf32` (f32 tensors, operands rounded). bf16 tensors
    map to fastconv's float32 with precision bf16 (as the torch bf16 baseline is recorded); f16 and integer types
    raise Skip."""
    text = dt if dt else cfg
    parts = set(_ONEDNN_DT.findall(text) if text else ["f32"]) or {text}
    if parts <= {"f32"}:
        dtype, precision = "float32", "fp32"
    elif parts <= {"f64"}:
        dtype, precision = "float64", "fp32"
    elif parts <= {"bf16", "f32"}:
        dtype, precision = "float32", "bf16"
    else:
        raise Skip(f"data type {text} (fastconv imports f32, f64 and bf16)")
    mode = (fpmath or "strict").split(":")[0]
    if mode in ("bf16", "tf32") and dtype == "float32":
        precision = mode if precision == "fp32" else precision
    elif mode not in ("strict", "", "f32"):
        raise Skip(f"--attr-fpmath={fpmath} on {dtype}")
    return dtype, precision
