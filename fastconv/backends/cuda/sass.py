"""Static proof of the CUDA kernels, no GPU needed: what ptxas and the SASS say about every entry point on sm_90.

    python -m fastconv.backends.cuda.check --sass [--floors] [--report PATH] [--cuobjdump PATH]

Each kernels/*.cu is compiled (in parallel) for sm_90 to a cubin with its production tunables (launch.TUNABLES, the
same -D options as check.py's build check) and `-Xptxas -v`; `cuobjdump -sass` and `cuobjdump -elf` read the cubin.
One row per extern "C" entry point (f32 and f64):

- registers, spill stores/loads and stack frame in bytes, static shared memory: ptxas -v (`bytes smem` is the
  kernel's own `__shared__` arrays, without the 1 KiB per block that sm_90 reserves, and without dynamic shared
  memory: conv2d_fwd_v2 and v4 size theirs per shape at launch).
- threads per block: the kernel's `__launch_bounds__` (EIATTR_MAX_THREADS in the cubin's .nv.info) when it has
  one, else BLOCK_THREADS / FILE_BLOCK below, which repeat what the launchers (conv.py, pool.py, norm.py, linear.py,
  row_norm.py) compute from the tunables; "?" when neither knows the kernel (then no occupancy).
- theoretical occupancy on sm_90 (`occupancy`, limits in SM90): registers are allocated per warp in units of 256
  (ceil(regs * 32 / 256) * 256 per warp) from 65536 per SM; each block takes its static shared memory plus 1 KiB from
  228 KiB per SM (227 KiB at most per block); at most 64 warps, 2048 threads and 32 blocks per SM. Resident blocks
  = the smallest of the four limits; occupancy = resident warps / 64.
- FMA share = FMA instructions / instructions of the function's SASS, where the FMA instruction is FFMA for f32 entry
  points, DFMA for f64 and HMMA for the tensor-core ones (`_mma_` in the name; any modifiers, predicated or not;
  those are outside the FFMA floors, and --floors fails one without HMMA), and "instructions" are every SASS line of the
  function except NOP (ptxas pads functions with them; none of ours have them elsewhere) and the `BRA` to its own
  address that ptxas places after the last EXIT. Subroutines inside the function (e.g. the slow path of a division,
  reached by CALL.REL and RET) count, since they are part of the function's code. A static share: loop bodies count
  once, so a high share says the main loop is mostly FMAs, not that the kernel runs at that share.

The command prints the report, writes it as Markdown to bench_results/cuda_static.md (--report), and exits 1 on any
spill store or load in any function, on a failed compile, and with --floors on a family whose best f32 FMA share is
below its floor in FLOORS; 2 when nvcc or cuobjdump is missing. cuobjdump is taken from --cuobjdump, $CUOBJDUMP,
PATH, nvcc's folder, or the `nvidia-cuda-cuobjdump` wheel (nvidia/cu*/bin): check.find_cuobjdump.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .check import tunable_defines
from .launch import TUNABLES
from .loader import cu_files, kernels_dir

ARCH = "90"


@dataclass(frozen=True)
class SMLimits:
    """Per-SM resources of one architecture, as the CUDA occupancy calculator uses them."""

    registers: int = 65536
    register_granularity: int = 256  # registers are allocated per warp in multiples of this
    warps: int = 64
    threads: int = 2048
    blocks: int = 32
    shared: int = 228 * 1024
    shared_reserved: int = 1024  # per block, taken by the system
    shared_per_block: int = 227 * 1024


SM90 = SMLimits()


@dataclass(frozen=True)
class Floor:
    """Minimum FMA share of the best f32 entry point of one kernel family."""

    family: str
    prefix: str  # entry points whose name starts with this ...
    exclude: str  # ... and does not contain this ("" for none)
    share: float

    def covers(self, kernel: str) -> bool:
        excluded = (self.exclude and self.exclude in kernel) or "_mma_" in kernel  # tensor cores count HMMA
        return kernel.startswith(self.prefix) and not excluded


FLOORS = (  # issue 14, item 7
    Floor("conv2d forward (not depthwise)", "conv2d_fwd_", "depthwise", 0.35),
    Floor("conv2d backward weight", "conv2d_bwd_weight_", "", 0.30),
    Floor("conv2d backward data", "conv2d_bwd_data_", "", 0.30),
)

# Threads per block of kernels without __launch_bounds__, as the launchers compute them (name without _f32/_f64).
BLOCK_THREADS: dict[str, Callable[[dict[str, int]], int]] = {
    "conv2d_fwd_v1_naive": lambda t: t["V1_BLOCK"],
    "conv2d_fwd_v2_smem_tiled": lambda t: t["V2_TP"] * t["V2_TQ"],
    "conv2d_fwd_v3_implicit_gemm": lambda t: (t["V3_BM"] // t["V3_TM"]) * (t["V3_BN"] // t["V3_TN"]),
    "conv2d_fwd_v4_depthwise": lambda t: t["V4_BLOCK"],
    "conv2d_fwd_splitk_reduce": lambda t: t["V1_BLOCK"],  # launched by igemm.py, as is the bwd_weight one
    "conv2d_bwd_weight_splitk_reduce": lambda t: t["BWD_BLOCK"],
    "conv2d_bwd_data_v1_naive": lambda t: t["BWD_BLOCK"],
    "conv2d_bwd_weight_v1_naive": lambda t: t["BWD_REDUCE_BLOCK"],
    "conv2d_bwd_weight_v2_atomic": lambda t: t["BWD_REDUCE_BLOCK"],
    "conv2d_bwd_bias_v1_reduce": lambda t: t["BWD_REDUCE_BLOCK"],
    "linear_bwd_bias_v1_reduce": lambda t: t["BWD_REDUCE_BLOCK"],
    "linear_gemm_v1_tiled": lambda t: (t["LIN_BM"] // t["LIN_TM"]) * (t["LIN_BN"] // t["LIN_TN"]),
}
# Files whose every kernel launches with one block-size tunable.
FILE_BLOCK = {"pool2d.cu": "POOL_BLOCK", "batchnorm.cu": "BN_BLOCK", "batchnorm_chunks.cu": "BN_BLOCK",
              "relu.cu": "ELTWISE_BLOCK", "row_norm.cu": "NORM_BLOCK", "bias_grad.cu": "BIAS_BLOCK"}  # fmt: skip


# ---------------------------------------------------------------------------------------------------- parsers
@dataclass(frozen=True)
class Resources:
    """What ptxas -v reports for one function (bytes, except registers)."""

    registers: int = 0
    stack: int = 0
    spill_stores: int = 0
    spill_loads: int = 0
    shared: int = 0
    entry: bool = False


_ENTRY = re.compile(r"Compiling entry function '([^']+)'")
_PROPS = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")


def parse_ptxas(text: str) -> dict[str, Resources]:
    """Per function named in `ptxas -v` output: its Resources (entry=True for kernels)."""
    found: dict[str, dict] = {}
    entry = props = None
    for line in text.splitlines():
        if m := _ENTRY.search(line):
            entry = m.group(1)
            found.setdefault(entry, {})["entry"] = True
        elif m := _PROPS.search(line):
            props = m.group(1)
            found.setdefault(props, {})
        elif (m := _FRAME.search(line)) and props:
            found[props].update(stack=int(m[1]), spill_stores=int(m[2]), spill_loads=int(m[3]))
        elif (m := _USED.search(line)) and entry:
            smem = _SMEM.search(line)
            found[entry].update(registers=int(m[1]), shared=int(smem[1]) if smem else 0)
    return {name: Resources(**fields) for name, fields in found.items()}


_FUNCTION = re.compile(r"^\s*Function : (\S+)")
_INSTRUCTION = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+([^;]*?)\s*;")


def parse_sass(text: str) -> dict[str, list[tuple[int, str]]]:
    """Per function of `cuobjdump -sass` output: its instructions as (address, text without the ';')."""
    functions: dict[str, list[tuple[int, str]]] = {}
    current = None
    for line in text.splitlines():
        if m := _FUNCTION.match(line):
            current = functions.setdefault(m.group(1), [])
        elif current is not None and (m := _INSTRUCTION.match(line)):
            current.append((int(m.group(1), 16), m.group(2)))
    return functions


def mnemonic(instruction: str) -> str:
    """The opcode without predicate and modifiers: '@!P0 FFMA.FTZ R1, ...' -> 'FFMA'."""
    words = instruction.split()
    if words and words[0].startswith("@"):
        words = words[1:]
    return words[0].split(".")[0] if words else ""


def counted(instructions: Iterable[tuple[int, str]]) -> list[str]:
    """The mnemonics that the FMA share counts: all but NOP and the branch to itself after the last EXIT."""
    kept = []
    for address, text in instructions:
        op = mnemonic(text)
        target = text.split()[-1] if op == "BRA" else ""
        if op == "NOP" or (target.startswith("0x") and int(target, 16) == address):
            continue
        kept.append(op)
    return kept


_NV_INFO = re.compile(r"^\.nv\.info\.(\S+)")
_MAX_THREADS = re.compile(r"Attribute:\s*EIATTR_(MAX_THREADS|REQNTID)\b")  # __launch_bounds__, .reqntid
_VALUE = re.compile(r"Value:\s*((?:0x[0-9a-f]+\s*)+)")


def parse_max_threads(text: str) -> dict[str, int]:
    """Per function of `cuobjdump -elf` output that has __launch_bounds__: its maximum threads per block."""
    found: dict[str, int] = {}
    function, pending = None, False
    for line in text.splitlines():
        if m := _NV_INFO.match(line):
            function, pending = m.group(1), False
        elif line.startswith("."):
            function, pending = None, False
        elif function and _MAX_THREADS.search(line):
            pending = True
        elif pending and (m := _VALUE.search(line)):
            found[function], pending = math.prod(int(v, 16) for v in m.group(1).split()), False
    return found


# ------------------------------------------------------------------------------------------------- occupancy
@dataclass(frozen=True)
class Occupancy:
    blocks: int  # resident blocks per SM
    warps: int  # resident warps per SM
    fraction: float  # warps / the SM's maximum
    limiter: str  # which limit set `blocks`: registers, shared, warps, threads or blocks


def occupancy(registers: int, threads: int, shared: int, sm: SMLimits = SM90) -> Occupancy:
    """Theoretical occupancy of a kernel using `registers` per thread, `threads` per block and `shared` bytes of
    shared memory per block (the reserved 1 KiB is added here)."""
    warps = -(-threads // 32)
    per_warp = -(-registers * 32 // sm.register_granularity) * sm.register_granularity
    block_shared = shared + sm.shared_reserved
    limits = {
        "registers": sm.registers // (per_warp * warps) if per_warp else sm.blocks,
        "shared": sm.shared // block_shared if shared <= sm.shared_per_block else 0,
        "warps": sm.warps // warps,
        "threads": sm.threads // threads,
        "blocks": sm.blocks,
    }
    limiter = min(limits, key=lambda k: limits[k])  # first of equals: registers before shared before warps ...
    blocks = limits[limiter]
    return Occupancy(blocks, blocks * warps, blocks * warps / sm.warps, limiter)


# ------------------------------------------------------------------------------------------------- the report
@dataclass(frozen=True)
class Row:
    """One entry point: its resources, block size and SASS counts."""

    file: str
    kernel: str
    res: Resources
    threads: int | None  # None: unknown
    bounded: bool  # threads from __launch_bounds__
    fma: int
    instructions: int

    @property
    def share(self) -> float:
        return self.fma / self.instructions if self.instructions else 0.0

    @property
    def occupancy(self) -> Occupancy | None:
        return None if self.threads is None else occupancy(self.res.registers, self.threads, self.res.shared)


def block_threads(file: str, kernel: str, tunables: dict[str, int]) -> int | None:
    """Threads per block of a kernel (entry-point name) without __launch_bounds__, from the launchers' formulas."""
    base = re.sub(r"_f(32|64)$", "", kernel)
    if base in BLOCK_THREADS:
        return BLOCK_THREADS[base](tunables)
    return tunables[FILE_BLOCK[file]] if file in FILE_BLOCK else None


def compile_command(nvcc: str, source: Path, cubin: Path) -> list[str]:
    """nvcc to an sm_90 cubin with the production tunables and ptxas's resource report."""
    flags = ["-std=c++17", "-cubin", f"-gencode=arch=compute_{ARCH},code=sm_{ARCH}", "-Xptxas", "-v"]
    return [nvcc, *flags, "-I", str(kernels_dir()), *tunable_defines(source), str(source), "-o", str(cubin)]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True)


def analyse(nvcc: str, cuobjdump: str, source: Path, tmp: Path) -> tuple[list[Row], dict[str, Resources], str]:
    """Compile one file; its rows (sorted by name), every function's ptxas Resources, and an error log ('' if ok)."""
    cubin = tmp / (source.stem + ".cubin")
    done = _run(compile_command(nvcc, source, cubin))
    if done.returncode:
        return [], {}, (done.stdout + done.stderr).strip()
    resources = parse_ptxas(done.stdout + done.stderr)
    sass, elf = _run([cuobjdump, "-sass", str(cubin)]), _run([cuobjdump, "-elf", str(cubin)])
    if sass.returncode or elf.returncode:
        return [], resources, (sass.stderr + elf.stderr).strip() or "cuobjdump failed"
    code, bounds = parse_sass(sass.stdout), parse_max_threads(elf.stdout)
    tunables = TUNABLES.get(source.name, {})
    rows = []
    for kernel in sorted(k for k, r in resources.items() if r.entry and not k.startswith("_Z")):
        ops = counted(code.get(kernel, []))
        fma = "HMMA" if "_mma_" in kernel else "DFMA" if kernel.endswith("_f64") else "FFMA"
        threads = bounds.get(kernel) or block_threads(source.name, kernel, tunables)
        rows.append(Row(source.name, kernel, resources[kernel], threads, kernel in bounds, ops.count(fma), len(ops)))
    return rows, resources, ""


def problems(rows: list[Row], functions: dict[str, Resources], floors: bool) -> list[str]:
    """What fails the command: a spill in any of `functions` (ptxas's, entry points or not, by name); with
    `floors`, a family below its FLOORS share."""
    spills = {name: r for name, r in sorted(functions.items()) if r.spill_stores or r.spill_loads}
    bad = [f"spill: {name} stores {r.spill_stores} B, loads {r.spill_loads} B" for name, r in spills.items()]
    if floors:
        for floor, best in floor_status(rows):
            if best is None or best.share < floor.share:
                got = f"best {best.kernel} {best.share:.3f}" if best else "no f32 kernel"
                bad.append(f"floor: {floor.family} needs an FFMA share >= {floor.share:.2f}, {got}")
        bad += [f"tensor cores: {r.kernel} has no HMMA instruction" for r in rows if "_mma_" in r.kernel and not r.fma]
    return bad


def floor_status(rows: list[Row]) -> list[tuple[Floor, Row | None]]:
    """Per floor, the f32 entry point of its family with the highest FMA share (None if the family has none)."""
    f32 = [r for r in rows if r.kernel.endswith("_f32")]
    return [(f, max((r for r in f32 if f.covers(r.kernel)), key=lambda r: r.share, default=None)) for f in FLOORS]


def _version(tool: str) -> str:
    """'release 13.0, V13.0.88' from a CUDA tool's --version."""
    try:
        m = re.search(r"release [\d.]+, V[\d.]+", _run([tool, "--version"]).stdout)
    except OSError:
        return "unknown"
    return m.group(0) if m else "unknown"


def markdown(rows: list[Row], nvcc: str, cuobjdump: str, enforced: bool) -> str:
    """The report: how it was made, one table row per entry point, then the floors."""
    tunables = [f"  - {f}: " + ", ".join(f"{k}={v}" for k, v in sorted(t.items())) for f, t in sorted(TUNABLES.items())]
    out = [
        "# CUDA kernels: static resources and SASS (sm_90)",
        "",
        "Generated by `python -m fastconv.backends.cuda.check --sass` (fastconv/backends/cuda/sass.py, whose",
        "docstring says exactly what is counted); no GPU involved. Do not edit by hand.",
        "",
        f"- compiler: nvcc {_version(nvcc)}; SASS read by cuobjdump {_version(cuobjdump)}",
        f"- target: `-gencode=arch=compute_{ARCH},code=sm_{ARCH} -std=c++17 -Xptxas -v`, production tunables",
        "  (launch.TUNABLES; `launch` is Python-only):",
        *tunables,
        "- occupancy: theoretical, sm_90 (65536 registers/SM in 256-register warp units, 64 warps, 2048 threads,",
        "  32 blocks, 228 KiB shared/SM with 1 KiB reserved per block), static shared memory only;",
        "  threads marked `lb` come from `__launch_bounds__`, the others from the launchers' formulas",
        "- FMA share: FFMA (f32), DFMA (f64) or HMMA (`_mma_`) / SASS instructions, NOPs and the final self-branch"
        " excluded",
        "",
        "| file | entry point | regs | spill st/ld (B) | stack (B) | smem (B) | threads | blocks/SM | occupancy "
        "| limited by | FMA | instr | FMA share |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|",
    ]
    for r in rows:
        occ = r.occupancy
        threads = "?" if r.threads is None else f"{r.threads}{' lb' if r.bounded else ''}"
        occupied = (str(occ.blocks), f"{occ.fraction:.0%}", occ.limiter) if occ else ("?", "?", "?")
        out.append(
            f"| {r.file} | `{r.kernel}` | {r.res.registers} | {r.res.spill_stores}/{r.res.spill_loads} "
            f"| {r.res.stack} | {r.res.shared} | {threads} | {' | '.join(occupied)} | {r.fma} | {r.instructions} "
            f"| {r.share:.3f} |"
        )
    out += [
        "",
        f"## FFMA floors (f32; {'enforced by --floors' if enforced else 'not enforced in this run: see --floors'})",
        "",
        "| family | floor | best kernel | FFMA share | met |",
        "|---|--:|---|--:|---|",
    ]
    for floor, best in floor_status(rows):
        name, share = (f"`{best.kernel}`", f"{best.share:.3f}") if best else ("none", "-")
        met = "yes" if best and best.share >= floor.share else "no"
        out.append(f"| {floor.family} | {floor.share:.2f} | {name} | {share} | {met} |")
    return "\n".join(out) + "\n"


def main(nvcc: str | None, cuobjdump: str | None, report: Path, floors: bool, files: list[Path] | None = None) -> int:
    """Compile, report, write `report`, and return the exit status (see the module docstring)."""
    if not nvcc or not cuobjdump:
        print("nvcc or cuobjdump not found: install the CUDA toolkit or `pip install nvidia-cuda-cuobjdump`, or pass "
              "--nvcc/--cuobjdump", file=sys.stderr)  # fmt: skip
        return 2
    start = time.perf_counter()
    sources = files or cu_files()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        biggest_first = sorted(sources, key=lambda src: -src.stat().st_size)  # the slowest compiles start first
        done = dict(zip(biggest_first, pool.map(lambda src: analyse(nvcc, cuobjdump, src, Path(tmp)), biggest_first)))
        results = [done[src] for src in sources]
    rows = [row for found, _, _ in results for row in found]
    functions = {f"{src.name}: {name}": r for src, (_, res, _) in zip(sources, results) for name, r in res.items()}
    text = markdown(rows, nvcc, cuobjdump, floors)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text)
    print(text)
    bad = [f"compile: {src.name}\n{log}" for src, (_, _, log) in zip(sources, results) if log]
    bad += problems(rows, functions, floors)
    for line in bad:
        print(f"FAIL {line}")
    seconds = time.perf_counter() - start
    print(f"static report: {len(rows)} entry points in {len(sources)} files, {seconds:.1f} s, written to {report}")
    return 1 if bad else 0
