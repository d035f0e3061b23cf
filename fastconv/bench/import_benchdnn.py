"""oneDNN benchdnn perf lines (`benchdnn --mode=P ...`) as imported entries.

benchdnn prints one line per problem after its `Output template: ...` line, following `--perf-template`
(tests/benchdnn/doc/knobs_perf_report.md in oneDNN). Terminals are `%name%`, with an optional time modifier
(`-` min, the default; `0` avg; `+` max) and unit modifier (`K`, `M`, `G`: the value is divided by 1e3, 1e6,
1e9) after the first `%`: `%-time%` is the minimum time in ms, `%0time%` the average, `%Gops%` the ops in
billions. Everything else in a template is printed as is. The default template differs between versions:

  perf,%engine%,%impl%,%name%,%prb%,%Gops%,%-time%,%-Gflops%,%0time%,%0Gflops%
  perf,%engine%,%impl%,%name%,%prb%,%Gops%,%Gfreq%,%-time%,%-Gflops%,%0time%,%0Gflops%
      (older versions; newer ones print %ctime% or %+ctime%, the creation time, in that place)

A file's own `Output template:` line sets the template for the lines after it; without one (and without
`--perf-template`) a line is read with the first default it fits. Used here: %engine% (cpu/gpu), %impl%, %name%,
%prb% (canonical problem: driver, options, descriptor) or %desc%, %dir%, %cfg%, %dt%, %mb%, %driver%, %alg%,
and the times. %DESC% (the csv template's comma-separated values) cannot be mapped without its driver's column
order: such a template is refused.

Mapping: the descriptor through fastconv.bench.descriptor; conv `--dir` FWD_B/FWD_D/FWD_I -> fwd, BWD_D ->
bwd-data, BWD_W/BWD_WB -> bwd-weight (default FWD_B); pool (max only) FWD_D/FWD_I -> pool-fwd, BWD_D -> pool-bwd;
bnorm FWD_D -> bn-fwd, BWD_DW -> bn-bwd (training mode, as fastconv's bn cases). `--mb=N` sets the batch.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass

from .cases import Case, ConvProblem, PoolProblem
from .descriptor import parse
from .import_common import Entry, Skip, number, onednn_types, time_ms, where_error

DEFAULT_TEMPLATES = (
    "perf,%engine%,%impl%,%name%,%prb%,%Gops%,%-time%,%-Gflops%,%0time%,%0Gflops%",
    "perf,%engine%,%impl%,%name%,%prb%,%Gops%,%Gfreq%,%-time%,%-Gflops%,%0time%,%0Gflops%",
)
HEADER = "Output template:"
_TERMINAL = re.compile(r"%([-0+]?)([KMG]?)([A-Za-z_]+)%")
_NUMERIC = {"time", "clocks", "freq", "ibytes", "obytes", "iobytes", "bw", "ops", "flops", "cpdtime", "cptime"}
_NUMERIC |= {"ctime", "mb", "idx"}
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
_UNIT = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}
_STAT = {"-": "min", "": "min", "0": "avg", "+": "max"}
_OPS = {
    "conv": {"FWD_B": "fwd", "FWD_D": "fwd", "FWD_I": "fwd", "BWD_D": "bwd-data", "BWD_W": "bwd-weight"}
    | {"BWD_WB": "bwd-weight"},
    "pool": {"FWD_D": "pool-fwd", "FWD_I": "pool-fwd", "BWD_D": "pool-bwd"},
    "bnorm": {"FWD_D": "bn-fwd", "BWD_DW": "bn-bwd"},
}
_DEFAULT_DIR = {"conv": "FWD_B", "pool": "FWD_D", "bnorm": "FWD_D"}
_MAPPED_OPTIONS = {"mode", "dir", "cfg", "dt", "mb", "engine", "attr-fpmath"}


@dataclass(frozen=True)
class Template:
    """A compiled perf template: the literal a perf line starts with, the line regex, the terminals."""

    text: str
    prefix: str
    regex: re.Pattern
    fields: tuple[tuple[str, str, str, str], ...]  # (group, time modifier, unit modifier, name)


def compile_template(text: str) -> Template:
    """A perf template as a regex: numeric terminals match numbers, text terminals anything up to the separator
    that follows them (double-quoted parts, such as a descriptor's name, may contain it)."""
    pieces = _TERMINAL.split(text)  # literal, (mod, unit, name, literal)*
    literals, fields = pieces[0::4], [tuple(pieces[i : i + 3]) for i in range(1, len(pieces), 4)]
    names = {f[2] for f in fields}
    if "DESC" in names:
        raise ValueError(f"perf template {text!r}: %DESC% (the csv template's values) cannot be mapped; use %prb%")
    if not names & {"prb", "desc"}:
        raise ValueError(f"perf template {text!r}: needs %prb% or %desc% to tell the problem")
    if "time" not in names:
        raise ValueError(f"perf template {text!r}: needs a time (%-time%, %0time% or %+time%)")
    regex, out = re.escape(literals[0]), []
    for i, (mod, unit, name) in enumerate(fields):
        after = literals[i + 1]
        if name in _NUMERIC:
            body = _NUMBER
        elif not after:
            body = ".*" if i == len(fields) - 1 else ".*?"
        else:
            sep = re.escape(after[0])
            body = f'(?:[^{sep}"]|"[^"]*")*'
        regex += f"(?P<f{i}>{body})" + re.escape(after)
        out.append((f"f{i}", mod, unit, name))
    return Template(text, literals[0], re.compile(regex), tuple(out))


def _fields(template: Template, line: str) -> dict[str, str] | None:
    m = template.regex.fullmatch(line)
    if m is None:
        return None
    values = {name: m.group(g) for g, mod, unit, name in template.fields if name != "time"}
    for g, mod, unit, name in template.fields:
        if name == "time":
            values[_STAT[mod]] = str(float(m.group(g)) * _UNIT[unit])
    return values


def _prb(text: str, where: str) -> tuple[str | None, dict[str, str], str]:
    """(driver, options, descriptor) of a canonical problem `--mode=P --conv --dir=FWD_B mb8ic3...n"name"`."""
    driver, options, descriptors = None, {}, []
    for token in re.findall(r'(?:[^\s"]|"[^"]*")+', text):
        if token.startswith("--"):
            key, eq, value = token[2:].partition("=")
            if eq:
                options[key] = value
            else:
                driver = key
        else:
            descriptors.append(token)
    if len(descriptors) != 1:
        raise where_error(where, f"expected one problem descriptor in {text!r}, found {len(descriptors)}")
    return driver, options, descriptors[0]


def _entry(values: dict[str, str], where: str, device: str) -> Entry:
    driver, options, desc = _prb(values.get("prb") or values.get("desc") or "", where)
    for key in ("dir", "cfg", "dt", "mb", "alg", "driver"):
        if values.get(key):
            options[key] = values[key]
    driver = options.pop("driver", None) or driver
    if driver not in (None, *_OPS):
        raise Skip(f"benchdnn --{driver} (fastconv imports conv, pool and bnorm)")
    try:
        problem = parse(desc, driver)
    except ValueError as exc:
        if "3-D" in str(exc):
            raise Skip("3-D problems") from None
        raise where_error(where, str(exc)) from None
    name = (values.get("name") or "").strip().strip('"')
    if name and not problem.name and re.fullmatch(r'[^\s"]+', name):
        problem = dataclasses.replace(problem, name=name)
    kind = driver or (
        "conv" if isinstance(problem, ConvProblem) else "pool" if isinstance(problem, PoolProblem) else "bnorm"
    )
    direction = options.get("dir", _DEFAULT_DIR[kind]).upper()
    if direction not in _OPS[kind]:
        raise Skip(f"{kind} --dir={direction} (fastconv imports {', '.join(_OPS[kind])})")
    if kind == "pool" and options.get("alg", "max") not in ("max", "pooling_max"):
        raise Skip(f"pool --alg={options['alg']} (fastconv times max pooling)")
    mb = int(number(options.get("mb", "0"), "--mb", where))
    if mb > 0:
        problem = dataclasses.replace(problem, N=mb)
    dtype, precision = onednn_types(options.get("cfg"), options.get("dt"), options.get("attr-fpmath"))
    engine = (values.get("engine") or options.get("engine") or device).lower()
    times = {s: time_ms(float(values[s]), f"the {s} time", where) for s in ("min", "avg", "max") if s in values}
    impl = (values.get("impl") or "").strip()
    extra = " ".join(f"--{k}={v}" for k, v in options.items() if k not in _MAPPED_OPTIONS)
    return Entry(
        case=Case(problem, _OPS[kind][direction]),
        where=where,
        tool="benchdnn",
        impl=f"onednn:{impl}" if impl else "onednn",
        backend="onednn",
        selected=impl or None,
        device="gpu" if engine.startswith("gpu") else "cpu",
        dtype=dtype,
        precision=precision,
        times_ms=times,
        detail=f"benchdnn --{kind} --dir={direction}" + (f" {extra}" if extra else ""),
    )


def read(lines: list[str], path: str, template: str | None = None, device: str = "cpu") -> Iterator[Entry | Skip]:
    """The entries of a benchdnn log (a Skip for each line that is not a perf line or has no fastconv counterpart).
    `template` (--perf-template) overrides the file's `Output template:` lines."""
    fixed = compile_template(template) if template else None
    active = [fixed] if fixed else [compile_template(t) for t in DEFAULT_TEMPLATES]
    for lineno, raw in enumerate(lines, 1):
        line, where = raw.strip(), f"{path}:{lineno}"
        if line.startswith(HEADER):
            if fixed is None:
                try:
                    active = [compile_template(line[len(HEADER) :].strip())]
                except ValueError as exc:
                    raise where_error(where, str(exc)) from None
            yield Skip("not a perf line")
            continue
        prefixed = all(t.prefix for t in active)  # then a line that starts like a perf line must be one
        if not line or (prefixed and not any(line.startswith(t.prefix) for t in active)):
            yield Skip("not a perf line")
            continue
        values = next((v for v in (_fields(t, line) for t in active) if v is not None), None)
        if values is None:
            if prefixed:
                shown = " or ".join(repr(t.text) for t in active)
                raise where_error(where, f"perf line does not fit the template {shown}: {line!r}")
            yield Skip("not a perf line")
            continue
        try:
            yield _entry(values, where, device)
        except Skip as skip:
            yield skip
