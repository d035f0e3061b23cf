"""Intel AMX (Advanced Matrix Extensions) from Numba: the tile instructions as inline assembly.

AMX adds eight tile registers tmm0..tmm7 of up to 16 rows x 64 bytes and `tdpbf16ps`, which multiplies a
16 x 32 bfloat16 tile A by a 32 x 16 bfloat16 tile B and adds the 16 x 16 float32 product into a tile C: 16*16*32
= 8192 multiply-adds per instruction. B is read in VNNI order: each 64-byte row holds 16 columns of 2 consecutive
k values, (B[2i][j], B[2i+1][j]) for j = 0..15; A's rows are plain, 32 k values each.

The micro-kernel here keeps one 2 x 2 block of accumulators in tiles (tmm0..tmm3: A rows 0-15 and 16-31 times B
columns 0-15 and 16-31), loads two A tiles (tmm4, tmm5) and two B tiles (tmm6, tmm7) per step of 32 k values
and issues four tdpbf16ps: each tile loaded is used twice. The tile registers are named in the assembly, outside
LLVM's register allocator (which does not know them), so a kernel must issue these intrinsics as one thread's
straight sequence: amx_configure, then amx_begin / amx_step... / amx_end, then amx_release.

Linux hands out AMX state only on request: `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)` once per
process (threads and forked children inherit it); the tile configuration (ldtilecfg) is per thread, so each
parallel iteration loads it. `status()` says whether this machine can run the AMX kernels, and why not.
"""

from __future__ import annotations

import ctypes
import functools
import sys

import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_I64 = ir.IntType(64)
ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA, SYS_ARCH_PRCTL = 0x1023, 18, 158
TILE_ROWS, TILE_BYTES = 16, 64  # every tile used here: 16 rows of 64 bytes (32 bfloat16 or 16 float32)
BLOCK = 2 * TILE_ROWS  # rows (and columns) of the accumulator block


@functools.cache
def status() -> str | None:
    """None when the AMX kernels can run here; else what is missing."""
    if sys.platform != "linux":
        return "AMX kernels need Linux (its arch_prctl hands out the tile state)"
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError as exc:
        return f"cannot read /proc/cpuinfo ({exc})"
    missing = [f for f in ("amx_tile", "amx_bf16") if f not in flags]
    if missing:
        return f"this CPU lacks {' and '.join(missing)} (AMX with bfloat16)"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0:
        return f"the kernel refused the AMX tile state (arch_prctl errno {ctypes.get_errno()})"
    llvm.initialize_native_asmparser()  # inline assembly needs the native assembler parser
    return None


def tile_config() -> np.ndarray:
    """The 64-byte ldtilecfg operand: palette 1, eight tiles of 16 rows x 64 bytes."""
    cfg = np.zeros(64, np.uint8)
    cfg[0] = 1
    for t in range(8):
        cfg[16 + 2 * t] = TILE_BYTES  # colsb[t], a little-endian u16
        cfg[48 + t] = TILE_ROWS
    return cfg


def _address(context, builder, arrty, arr, off):
    """The byte address (i64) of element `off` of the array's data."""
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.ptrtoint(builder.gep(data, [off]), _I64)


def _asm(builder, text: str, constraints: str, args: list) -> None:
    fty = ir.FunctionType(ir.VoidType(), [a.type for a in args])
    builder.asm(fty, text, constraints, args, side_effect=True)


def _i64(context, builder, ty, v):
    return context.cast(builder, v, ty, types.int64)


@intrinsic
def amx_configure(typingctx, cfg):
    """ldtilecfg from the uint8 array `cfg` (tile_config())."""
    sig = types.void(cfg)

    def codegen(context, builder, sig, args):
        _asm(builder, "ldtilecfg ($0)", "r,~{memory}", [_address(context, builder, sig.args[0], args[0], _I64(0))])
        return context.get_dummy_value()

    return sig, codegen


def _block_intrinsic(name: str, store: bool, doc: str):
    """amx_begin (tileloadd) or amx_end (tilestored) of the accumulator block: tmm0/tmm1 are rows 0-15, columns
    0-15 / 16-31 of the float32 block at element `off` of c, tmm2/tmm3 rows 16-31; `row_stride` in elements."""

    def typer(typingctx, c, off, row_stride):
        sig = types.void(c, off, row_stride)

        def codegen(context, builder, sig, args):
            base = _address(context, builder, sig.args[0], args[0], _i64(context, builder, sig.args[1], args[1]))
            stride = builder.mul(_i64(context, builder, sig.args[2], args[2]), _I64(4))
            for t, (i, j) in enumerate(((0, 0), (0, 16), (16, 0), (16, 16))):
                at = builder.add(base, builder.add(builder.mul(stride, _I64(i)), _I64(4 * j)))
                text = f"tilestored %tmm{t}, ($0,$1,1)" if store else f"tileloadd ($0,$1,1), %tmm{t}"
                _asm(builder, text, "r,r,~{memory}", [at, stride])
            return context.get_dummy_value()

        return sig, codegen

    typer.__name__ = typer.__qualname__ = name  # each intrinsic under its own name
    typer.__doc__ = doc
    return intrinsic(typer)


amx_begin = _block_intrinsic("amx_begin", False, "Load the accumulator block from float32 array c.")
amx_end = _block_intrinsic("amx_end", True, "Store the accumulator block into float32 array c, as amx_begin loads it.")


@intrinsic
def amx_step(typingctx, a, a_off, a_stride, b, b_off, b_stride):
    """One step of 32 k values: A tiles (uint16 bfloat16 bits) at elements a_off and a_off + 16 rows, B tiles
    (VNNI) at b_off and b_off + 32 elements (64 bytes: 16 columns of pairs); strides in elements; four tdpbf16ps."""
    sig = types.void(a, a_off, a_stride, b, b_off, b_stride)

    def codegen(context, builder, sig, args):
        a_at = _address(context, builder, sig.args[0], args[0], _i64(context, builder, sig.args[1], args[1]))
        b_at = _address(context, builder, sig.args[3], args[3], _i64(context, builder, sig.args[4], args[4]))
        sa = builder.mul(_i64(context, builder, sig.args[2], args[2]), _I64(2))
        sb = builder.mul(_i64(context, builder, sig.args[5], args[5]), _I64(2))
        loads = (
            (4, a_at, sa),
            (5, builder.add(a_at, builder.mul(sa, _I64(TILE_ROWS))), sa),
            (6, b_at, sb),
            (7, builder.add(b_at, _I64(TILE_BYTES)), sb),
        )
        for t, at, stride in loads:
            _asm(builder, f"tileloadd ($0,$1,1), %tmm{t}", "r,r,~{memory}", [at, stride])
        for acc, ta, tb in ((0, 4, 6), (1, 4, 7), (2, 5, 6), (3, 5, 7)):
            _asm(builder, f"tdpbf16ps %tmm{tb}, %tmm{ta}, %tmm{acc}", "~{memory}", [])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def amx_release(typingctx):
    """tilerelease: the tile state back to its initial (unused) state, so context switches do not save it."""
    sig = types.void()

    def codegen(context, builder, sig, args):
        _asm(builder, "tilerelease", "~{memory}", [])
        return context.get_dummy_value()

    return sig, codegen


PANEL_TILE = TILE_ROWS * TILE_BYTES  # bytes of one tile packed contiguously (rows 64 bytes apart): 1 KiB


def _block_step(builder, a0, a1, sa, b0, b1, sb) -> None:
    """Load A tiles at a0, a1 (rows sa bytes apart) into tmm4, tmm5 and B tiles at b0, b1 (rows sb apart) into
    tmm6, tmm7, and add their four products into tmm0..tmm3, each tdpbf16ps issued once its two tiles are in."""
    loads = {4: (a0, sa), 6: (b0, sb), 7: (b1, sb), 5: (a1, sa)}
    order = ((4, None), (6, (0, 4, 6)), (7, (1, 4, 7)), (5, (2, 5, 6)), (None, (3, 5, 7)))
    for load, dot in order:
        if load is not None:
            at, stride = loads[load]
            _asm(builder, f"tileloadd ($0,$1,1), %tmm{load}", "r,r,~{memory}", [at, stride])
        if dot is not None:
            acc, ta, tb = dot
            _asm(builder, f"tdpbf16ps %tmm{tb}, %tmm{ta}, %tmm{acc}", "~{memory}", [])


@intrinsic
def amx_panel_step(typingctx, a, a_off, b, b_off):
    """One step of 32 k values on packed panels: the two A tiles (rows 0-15 and 16-31) 1 KiB apart from element
    a_off of a, the two VNNI B tiles (columns 0-15 and 16-31) 1 KiB apart from element b_off of b, rows 64 bytes
    apart; four tdpbf16ps into tmm0..tmm3."""
    sig = types.void(a, a_off, b, b_off)

    def codegen(context, builder, sig, args):
        a_at = _address(context, builder, sig.args[0], args[0], _i64(context, builder, sig.args[1], args[1]))
        b_at = _address(context, builder, sig.args[2], args[2], _i64(context, builder, sig.args[3], args[3]))
        tile, row = _I64(PANEL_TILE), _I64(TILE_BYTES)
        _block_step(builder, a_at, builder.add(a_at, tile), row, b_at, builder.add(b_at, tile), row)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def amx_step_at(typingctx, a, a0_off, a1_off, a_stride, b, b0_off, b1_off, b_stride):
    """amx_panel_step with every tile anywhere: A tiles at elements a0_off and a1_off of a, rows a_stride elements
    apart; B tiles (VNNI) at elements b0_off and b1_off of b, rows b_stride elements apart."""
    sig = types.void(a, a0_off, a1_off, a_stride, b, b0_off, b1_off, b_stride)

    def codegen(context, builder, sig, args):
        at = [
            _address(context, builder, sig.args[i], args[i], _i64(context, builder, sig.args[j], args[j]))
            for i, j in ((0, 1), (0, 2), (4, 5), (4, 6))
        ]
        size = [context.get_abi_sizeof(context.get_data_type(sig.args[i].dtype)) for i in (0, 4)]
        sa, sb = (builder.mul(_i64(context, builder, sig.args[j], args[j]), _I64(n)) for j, n in zip((3, 7), size))
        _block_step(builder, at[0], at[1], sa, at[2], at[3], sb)
        return context.get_dummy_value()

    return sig, codegen
