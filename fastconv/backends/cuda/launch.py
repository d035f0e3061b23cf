"""What both launchers share: tunables, launch geometry and the Launcher interface.

Launch configurations (grid, block, shared memory) are computed in Python by the op modules (conv.py, pool.py,
norm.py, linear.py) from `ceil_div` and the tunables below, and handed to a Launcher: CuPyLauncher runs them on a GPU,
EmuLauncher on the CPU. Tunables reach the .cu files as -D options, so the C side always sees the values the
Python side computed with; each .cu repeats the defaults under `#ifndef` so it also compiles standalone (a test
checks that the two agree).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ... import arrays, dispatch
from ...params import ceil_div

TUNABLES: dict[str, dict[str, int]] = {  # per .cu file; "launch": Python-only limits of the launch code
    # SPLITK_*: split-K of the implicit GEMMs (igemm.py split_count); 264 blocks = 2 per SM of a 132-SM H100
    # DW_*: depthwise tiles (depthwise.py): the widest column tile, the weight gradient's blocks aimed at;
    # BIAS_GRID: the blocks a bias-gradient launch aims at (bias.py)
    "launch": {
        "MAX_BLOCKS": 65536,
        "SPLITK_TARGET_BLOCKS": 264,
        "SPLITK_MIN_SLICES": 8,
        "SPLITK_MAX": 64,
        "DW_TQ_MAX": 32,
        "DW_GRID": 1056,
        "BIAS_GRID": 1056,
    },
    "conv2d_fwd.cu": {
        "V1_BLOCK": 256,
        "V2_TP": 8,
        "V2_TQ": 16,
        "V2_KPB": 4,
        "V3_BM": 64,
        "V3_BN": 64,
        "V3_BK": 8,
        "V3_TM": 4,
        "V3_TN": 4,
        "V4_BLOCK": 256,
        "V18_BM": 128,
        "V18_BN": 128,
        "V18_BK": 8,
        "V18_TM": 8,
        "V18_TN": 8,
        "V19_STAGES": 4,
        "V20_BM": 128,
        "V20_BN": 128,
        "V20_BK": 16,
        "V20_WM": 64,
        "V20_WN": 32,
    },
    "conv2d_bwd.cu": {
        "BWD_BLOCK": 256,
        "BWD_REDUCE_BLOCK": 256,
        "BWD_SPLIT": 8,
        "WG_BM": 128,
        "WG_BN": 128,
        "WG_BK": 8,
        "WG_TM": 8,
        "WG_TN": 8,
        "WT_BM": 128,
        "WT_BN": 128,
        "WT_BK": 16,
        "WT_WM": 64,
        "WT_WN": 32,
    },
    "conv2d_depthwise.cu": {"DW_THREADS": 256, "DW_ROWS": 4, "DW_LOADS": 4},
    "conv2d_gemm.cu": {
        "G1_BM": 128,
        "G1_BN": 128,
        "G1_BK": 8,
        "G1_TM": 8,
        "G1_TN": 8,
        "G1T_BM": 128,
        "G1T_BN": 128,
        "G1T_BK": 16,
        "G1T_WM": 64,
        "G1T_WN": 32,
    },
    "bias_grad.cu": {"BIAS_BLOCK": 256, "BIAS_ITEMS": 4},
    "pool2d.cu": {"POOL_BLOCK": 256},
    "batchnorm.cu": {"BN_BLOCK": 256},
    "batchnorm_chunks.cu": {"BN_BLOCK": 256, "BN_ITEMS": 4, "BN_GRID": 1056},
    "relu.cu": {"ELTWISE_BLOCK": 256, "ELTWISE_ITEMS": 4},
    "row_norm.cu": {"NORM_BLOCK": 256},
    "linear.cu": {"LIN_BM": 64, "LIN_BN": 64, "LIN_BK": 8, "LIN_TM": 4, "LIN_TN": 4},
}

# Launch sizes for tests: small enough that the tiny test shapes span several blocks and partial tiles (grid-stride
# loops capped lower than the data, so they wrap), while reductions keep two warps.
SMALL_TUNABLES: dict[str, int] = {
    "V1_BLOCK": 32,
    "V2_TP": 2,
    "V2_TQ": 4,
    "V2_KPB": 3,
    "V3_BM": 8,
    "V3_BN": 16,
    "V3_BK": 4,
    "V3_TM": 2,
    "V3_TN": 2,
    "V4_BLOCK": 16,
    "V18_BM": 16,
    "V18_BN": 16,
    "V18_BK": 4,
    "V18_TM": 4,
    "V18_TN": 4,
    "V19_STAGES": 3,
    "V20_BM": 32,
    "V20_BN": 16,
    "V20_BK": 16,
    "V20_WM": 16,
    "V20_WN": 8,
    "WT_BM": 32,
    "WT_BN": 16,
    "WT_BK": 16,
    "WT_WM": 16,
    "WT_WN": 8,
    "WG_BM": 16,
    "WG_BN": 16,
    "WG_BK": 4,
    "WG_TM": 4,
    "WG_TN": 4,
    "SPLITK_TARGET_BLOCKS": 6,
    "SPLITK_MIN_SLICES": 2,
    "SPLITK_MAX": 4,
    "G1_BM": 16,
    "G1_BN": 16,
    "G1_BK": 4,
    "G1_TM": 4,
    "G1_TN": 4,
    "G1T_BM": 32,
    "G1T_BN": 32,
    "G1T_BK": 16,
    "G1T_WM": 16,
    "G1T_WN": 16,
    "BIAS_BLOCK": 64,
    "BIAS_ITEMS": 2,
    "BIAS_GRID": 4,
    "DW_THREADS": 32,
    "DW_ROWS": 2,
    "DW_LOADS": 2,
    "DW_TQ_MAX": 4,
    "DW_GRID": 4,
    "BWD_BLOCK": 32,
    "BWD_REDUCE_BLOCK": 64,
    "BWD_SPLIT": 3,
    "POOL_BLOCK": 64,
    "BN_BLOCK": 64,
    "BN_ITEMS": 2,
    "BN_GRID": 4,
    "ELTWISE_BLOCK": 32,
    "ELTWISE_ITEMS": 2,
    "NORM_BLOCK": 64,
    "MAX_BLOCKS": 3,
    "LIN_BM": 8,
    "LIN_BN": 16,
    "LIN_BK": 4,
    "LIN_TM": 2,
    "LIN_TN": 2,
}

MAX_GRID_X = 2**31 - 1
MAX_GRID_YZ = 65535


def check_tunables(t: dict[str, int]) -> None:
    """Reject tunables the kernels cannot work with: register tiles must divide block tiles, and blocks that reduce
    with warp shuffles (block_sum, warp_sum) must be whole warps."""
    bad = [
        f"{a} % {b}"
        for a, b in (("V3_BM", "V3_TM"), ("V3_BN", "V3_TN"), ("LIN_BM", "LIN_TM"), ("LIN_BN", "LIN_TN"))
        if t[a] % t[b]
    ]
    bad += [e for prefix in ("V18_", "WG_", "G1_") for e in _block_gemm_errors(prefix, t)]
    bad += _vector_errors(t)
    bad += ["V19_STAGES >= 2"] if t["V19_STAGES"] < 2 else []
    bad += [e for prefix in ("V20_", "WT_", "G1T_") for e in _tensor_gemm_errors(prefix, t)]
    bad += [f"{n} a power of two" for n in ("DW_THREADS", "DW_TQ_MAX") if t[n] < 1 or t[n] & (t[n] - 1)]
    reducing = ("BWD_REDUCE_BLOCK", "BIAS_BLOCK", "BN_BLOCK", "POOL_BLOCK", "NORM_BLOCK")
    bad += [f"{n} % 32" for n in reducing if t[n] % 32 or not 0 < t[n] <= 1024]
    if bad:
        raise ValueError(f"tunables: these must be 0 (and blocks at most 1024 threads): {', '.join(bad)}")


def _tensor_gemm_errors(prefix: str, t: dict[str, int]) -> list[str]:
    """What mma.cuh's TensorGemm asserts: warp tiles of whole 16 x 8 mma tiles, slices of whole k16 steps."""
    bm, bn, bk, wm, wn = (t[prefix + k] for k in ("BM", "BN", "BK", "WM", "WN"))
    threads = 32 * (bm // wm) * (bn // wn) if wm and wn and not bm % wm and not bn % wn else 0
    if wm % 16 or wn % 8 or bk % 16 or not threads or threads > 1024 or threads % bk or threads % bn:
        return [f"{prefix}tile {bm}x{bn}x{bk} over {wm}x{wn} warp tiles"]
    return [] if (bm * bk) % threads == 0 and (bk * bn) % threads == 0 else [f"{prefix}loads per thread"]


def _vector_errors(t: dict[str, int]) -> list[str]:
    """What the 1x1 GEMM's 16-byte loads add to Slices' assertions: slices of whole V-wide loads (V = 4 floats on
    the G1_ tile and G1T_, 2 doubles on the half G1_ tile)."""
    g1 = (t["G1_BM"] // t["G1_TM"]) * (t["G1_BN"] // t["G1_TN"]) if t["G1_TM"] and t["G1_TN"] else 0
    g1t = 32 * (t["G1T_BM"] // t["G1T_WM"]) * (t["G1T_BN"] // t["G1T_WN"]) if t["G1T_WM"] and t["G1T_WN"] else 0
    tiles = (
        ("G1_", t["G1_BM"], t["G1_BN"], t["G1_BK"], g1, 4),
        ("G1_", t["G1_BM"] // 2, t["G1_BN"] // 2, t["G1_BK"], g1, 2),
        ("G1T_", t["G1T_BM"], t["G1T_BN"], t["G1T_BK"], g1t, 4),
    )
    return [
        f"{prefix}tile {bm}x{bn}x{bk} in {v}-wide loads over {threads} threads"
        for prefix, bm, bn, bk, threads, v in tiles
        if not threads
        or bk % v
        or bn % v
        or threads % (bk // v or 1)
        or threads % (bn // v or 1)
        or (bm * bk) % (threads * v)
        or (bk * bn) % (threads * v)
        or bm * bk < threads * v
        or bk * bn < threads * v
    ]


def _block_gemm_errors(prefix: str, t: dict[str, int]) -> list[str]:
    """What igemm.cuh's BlockGemm asserts, for the float32 tile and the float64 one (half each way)."""
    bm, bn, bk, tm, tn = (t[prefix + k] for k in ("BM", "BN", "BK", "TM", "TN"))
    bad = [f"{prefix}{n} % 2" for n, v in (("BM", bm), ("BN", bn), ("TM", tm), ("TN", tn)) if v % 2]
    for m, n, i, j in ((bm, bn, tm, tn), (bm // 2, bn // 2, tm // 2, tn // 2)):
        threads = (m // i) * (n // j) if i and j and not m % i and not n % j else 0
        if not threads or threads % bk or threads % n or (m * bk) % threads or threads > 1024:
            bad.append(
                f"{prefix}tile {m}x{n}x{bk} over {i}x{j} per thread (threads % BK, threads % BN, BM*BK % threads)"
            )
    return bad


@dataclass(frozen=True)
class Launch:
    """One kernel launch: grid and block in threads per dimension (x, y, z), dynamic shared memory in bytes."""

    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared_bytes: int = 0


def suffix(dtype: Any) -> str:
    """Entry-point suffix of a dtype: each kernel has one extern "C" entry point per float type."""
    return {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}[np.dtype(dtype)]


class Launcher(abc.ABC):
    """Runs kernels of kernels/*.cu. Subclasses implement `launch` and set `kind` ('numpy' or 'cupy')."""

    kind = "numpy"

    def __init__(self) -> None:
        self.overrides: dict[str, int] = {}

    def tunables(self, file: str) -> dict[str, int]:
        """The tunables of `file`: the defaults with this launcher's overrides."""
        base = TUNABLES.get(Path(file).name, {})
        return {name: self.overrides.get(name, value) for name, value in base.items()}

    @contextlib.contextmanager
    def override(self, values: dict[str, int]) -> Iterator[None]:
        """Within the block, launch with these tunables (e.g. SMALL_TUNABLES in tests); entering and leaving it
        empties the plan cache, whose plans (their supports() answers) were made under the tunables before."""
        unknown = set(values) - {n for t in TUNABLES.values() for n in t}
        if unknown:
            raise ValueError(f"override: unknown tunables {sorted(unknown)}")
        check_tunables({**{n: v for t in TUNABLES.values() for n, v in t.items()}, **self.overrides, **values})
        before = self.overrides
        self.overrides = {**before, **values}
        dispatch.changed()
        try:
            yield
        finally:
            self.overrides = before
            dispatch.changed()

    def compute_capability(self) -> int:
        """The device's compute capability, major * 10 + minor. The emulator runs every instruction the kernels use,
        as a sm_90 device would (CuPyLauncher asks the device)."""
        return 90

    def grid_stride(self, n: int, block: int) -> Launch:
        """A 1-D launch for a grid-stride loop over n items: at least one block, at most MAX_BLOCKS."""
        return Launch((max(1, min(ceil_div(n, block), self.tunables("launch")["MAX_BLOCKS"])), 1, 1), (block, 1, 1))

    def empty(self, shape: tuple, dtype: Any) -> Any:
        """An output buffer (poisoned under tests) of this launcher's array kind."""
        return arrays.empty(shape, dtype, self.kind)

    def reduction_output(self, shape: tuple, dtype: Any, terms: int) -> tuple[Any, bool]:
        """The output of a sum over `terms` items each (a weight gradient over the pixels), and whether it is
        already final with no launch: empty, or zeros when there is nothing to add."""
        out = self.empty(shape, dtype)
        if out.size and not terms:
            out[...] = 0
        return out, not (out.size and terms)

    @abc.abstractmethod
    def launch(self, file: str, kernel: str, cfg: Launch, args: Sequence[Any]) -> None:
        """Run entry point `kernel` of `file` compiled with this launcher's tunables. `args` are arrays of the
        launcher's kind (passed as device pointers) and NumPy scalars of the kernel's exact parameter types."""
