"""Explicit SIMD register tiles for Numba: the micro-kernel building blocks of the fast conv kernels.

LLVM does not reliably keep a 2-D accumulator block in registers when it is written as a small array (it stays in
memory, or is not vectorised at all). So a tile here is a value of its own type: ROWS x VECS LLVM vectors of LANES
elements (`<16 x float>` with AVX-512), living in registers, created and updated only by the intrinsics below, which
emit vector loads, broadcasts and fused multiply-adds directly. A kernel written with them compiles to the inner loop
it reads as (checked with `inspect_asm` in the tests: vfmadd231ps on zmm registers, no spills).

    tile_zeros(like, ROWS, VECS)                 acc[i][j] = 0                    (like: an array giving the dtype)
    tile_bcast(B, off, step, ROWS, VECS)         acc[i][j] = B[off + i*step]      broadcast (bias init)
    tile_fma(acc, A, a, a_step, B, b, b_step)    acc[i][j] += B[b + i*b_step] * A[a + j*a_step : +LANES]
    tile_fma_tail(..., n)                        tile_fma with A lanes at j*LANES + l >= n read as zero (masked loads)
    tile_store(acc, Y, off, i_step, j_step, m, nj, jl, n)
                                                 Y[off + i*i_step + j*j_step + l] = acc[i][j][l] for rows i < m,
                                                 vectors j < nj and lanes with j*jl + l < n (masked store): jl = LANES
                                                 for a tile along one flat row, jl = 0 for VECS rows of n columns
    tile_store_add(...)                          the same masks, adding acc into Y
    tile_load(like, Y, off, i_step, j_step, m, nj, jl, n)   the inverse of tile_store (masked-off lanes zero)
    tile_relu(acc)                               acc = acc where acc > 0 or NaN, else 0

simd_lanes.py adds the lane-wise operations (max, argmax, dot products, strided and single vectors) on the same
tiles, built from the code-generation helpers here.

Offsets are element offsets into a C-contiguous array's data; nothing is bounds-checked, so the callers own the
padding that keeps every vector access inside its buffer. Results are deterministic: each intrinsic emits a fixed
sequence of operations.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from .config import VECTOR_BYTES

_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_ONE = ir.Constant(_I64, 1)


class Tile(types.Type):
    """ROWS x VECS SIMD vectors of `dtype` held in registers."""

    def __init__(self, dtype: types.Float, rows: int, vecs: int):
        self.dtype, self.rows, self.vecs = dtype, rows, vecs
        self.lanes = VECTOR_BYTES * 8 // dtype.bitwidth
        super().__init__(name=f"Tile({dtype}, {rows}x{vecs}x{self.lanes})")


@register_model(Tile)
class _TileModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type: Tile):
        vec = ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), fe_type.lanes)
        super().__init__(dmm, fe_type, ir.ArrayType(vec, fe_type.rows * fe_type.vecs))


def _vec_type(context, tile: Tile) -> ir.VectorType:
    return ir.VectorType(context.get_value_type(tile.dtype), tile.lanes)


def _addr(context, builder, arrty, arr, off, scaled: int = 0, step=None):
    """Pointer to element off + scaled*step (step an i64 value or None) of the array's data."""
    data = context.make_array(arrty)(context, builder, arr).data
    if step is not None and scaled:
        off = builder.add(off, builder.mul(step, ir.Constant(_I64, scaled)))
    return builder.gep(data, [off])


def _i64(context, builder, ty, val):
    return context.cast(builder, val, ty, types.int64)


def _align(vec: ir.VectorType) -> int:
    return 4 if isinstance(vec.element, ir.FloatType) else 8


def _load_vec(builder, vec, ptr):
    return builder.load(builder.bitcast(ptr, vec.as_pointer()), align=_align(vec))


def _splat(builder, vec, scalar):
    one = builder.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(_I32, vec.count), [0] * vec.count))


def _literal(fn: str, name: str, v) -> int:
    if not isinstance(v, types.IntegerLiteral):
        raise TypeError(f"{fn}: '{name}' must be a compile-time integer constant, got {v}")
    return v.literal_value


def _fma(builder, acc, a, b):
    flags = ("contract",)
    return builder.fadd(acc, builder.fmul(a, b, flags=flags), flags=flags)


# ---------------------------------------------------------------------------------------------- create
@intrinsic(prefer_literal=True)
def tile_zeros(typingctx, like, rows, vecs):
    tile = Tile(like.dtype, _literal("tile_zeros", "rows", rows), _literal("tile_zeros", "vecs", vecs))

    def codegen(context, builder, sig, args):
        vec = _vec_type(context, tile)
        return ir.Constant(ir.ArrayType(vec, tile.rows * tile.vecs), [ir.Constant(vec, None)] * tile.rows * tile.vecs)

    return tile(like, rows, vecs), codegen


@intrinsic(prefer_literal=True)
def tile_bcast(typingctx, b, off, step, rows, vecs):
    tile = Tile(b.dtype, _literal("tile_bcast", "rows", rows), _literal("tile_bcast", "vecs", vecs))

    def codegen(context, builder, sig, args):
        arr, o, st = args[0], _i64(context, builder, off, args[1]), _i64(context, builder, step, args[2])
        vec = _vec_type(context, tile)
        acc = ir.Constant(ir.ArrayType(vec, tile.rows * tile.vecs), ir.Undefined)
        for i in range(tile.rows):
            v = _splat(builder, vec, builder.load(_addr(context, builder, b, arr, o, i, st)))
            for j in range(tile.vecs):
                acc = builder.insert_value(acc, v, i * tile.vecs + j)
        return acc

    return tile(b, off, step, rows, vecs), codegen


# ---------------------------------------------------------------------------------------------- update
def _check(acc, a, b):
    if not isinstance(acc, Tile) or a.dtype != acc.dtype or b.dtype != acc.dtype:
        raise TypeError(f"a {acc} tile needs arrays of its dtype, got {a} and {b}")


def _fma_codegen(acc: Tile, tys: tuple, masked: bool):
    """acc[i][j] += B[b + i*b_step] (broadcast) * A-vector j; with `masked`, A lanes at j*LANES + l >= n load as
    zero."""

    def codegen(context, builder, sig, args):
        t, av, bv = args[0], args[1], args[4]
        ao, ast, bo, bst = (_i64(context, builder, tys[k], args[k]) for k in (2, 3, 5, 6))
        vec = _vec_type(context, acc)
        xs = []
        for j in range(acc.vecs):
            ptr = _addr(context, builder, tys[1], av, ao, j, ast)
            if masked:
                xs.append(_load_masked(context, builder, vec, ptr, j, _i64(context, builder, tys[7], args[7])))
            else:
                xs.append(_load_vec(builder, vec, ptr))
        for i in range(acc.rows):
            ptr = _addr(context, builder, tys[4], bv, bo, i, bst)
            w = _splat(builder, vec, builder.load(ptr))
            for j in range(acc.vecs):
                k = i * acc.vecs + j
                t = builder.insert_value(t, _fma(builder, builder.extract_value(t, k), w, xs[j]), k)
        return t

    return codegen


def _load_masked(context, builder, vec, ptr, j, n):
    lane = ir.Constant(ir.VectorType(_I64, vec.count), [j * vec.count + e for e in range(vec.count)])
    mask = builder.icmp_signed("<", lane, _splat(builder, ir.VectorType(_I64, vec.count), n))
    return _masked_load(builder, vec, builder.bitcast(ptr, vec.as_pointer()), mask)


def _masked_load(builder, vec, ptr, mask):
    """Lanes where mask is set from ptr, zero elsewhere; masked-off lanes are never read."""
    fn = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(vec, [vec.as_pointer(), _I32, mask.type, vec]),
        f"llvm.masked.load.v{vec.count}{_suffix(vec)}.p0",
    )
    return builder.call(fn, [ptr, ir.Constant(_I32, _align(vec)), mask, ir.Constant(vec, None)])


def _fma_intrinsic(masked: bool, doc: str):
    if masked:

        def typer(typingctx, acc, a, a_off, a_step, b, b_off, b_step, n):
            _check(acc, a, b)
            tys = (acc, a, a_off, a_step, b, b_off, b_step, n)
            return acc(*tys), _fma_codegen(acc, tys, masked)
    else:

        def typer(typingctx, acc, a, a_off, a_step, b, b_off, b_step):
            _check(acc, a, b)
            tys = (acc, a, a_off, a_step, b, b_off, b_step)
            return acc(*tys), _fma_codegen(acc, tys, masked)

    typer.__doc__ = doc
    return intrinsic(typer)


tile_fma = _fma_intrinsic(False, "acc[i][j] += B[b + i*b_step] (broadcast) * A[a + j*a_step : +LANES]")
tile_fma_tail = _fma_intrinsic(True, "tile_fma with A lanes j*LANES + l >= n read as zero")


@intrinsic
def tile_relu(typingctx, acc):
    def codegen(context, builder, sig, args):
        t = args[0]
        zero = ir.Constant(_vec_type(context, acc), None)
        for k in range(acc.rows * acc.vecs):
            v = builder.extract_value(t, k)
            nonpositive = builder.fcmp_ordered("<=", v, zero)  # false for NaN, which passes through
            t = builder.insert_value(t, builder.select(nonpositive, zero, v), k)
        return t

    return acc(acc), codegen


# ---------------------------------------------------------------------------------------------- store
def _store_intrinsic(accumulate: bool, doc: str):
    def typer(typingctx, acc, y, off, i_step, j_step, m, nj, jl, n):
        tys = (off, i_step, j_step, m, nj, jl, n)

        def codegen(context, builder, sig, args):
            t, ya = args[0], args[1]
            o, ist, jst, m_, nj_, jl_, n_ = (_i64(context, builder, ty, v) for ty, v in zip(tys, args[2:]))
            vec = _vec_type(context, acc)
            for i in range(acc.rows):
                row_ok = builder.icmp_signed("<", ir.Constant(_I64, i), m_)
                for j in range(acc.vecs):
                    ok = builder.and_(row_ok, builder.icmp_signed("<", ir.Constant(_I64, j), nj_))
                    with builder.if_then(ok):
                        row = builder.add(o, builder.mul(ist, ir.Constant(_I64, i)))
                        ptr = builder.bitcast(_addr(context, builder, y, ya, row, j, jst), vec.as_pointer())
                        left = builder.sub(n_, builder.mul(jl_, ir.Constant(_I64, j)))  # lanes of this vector in n
                        _store(builder, vec, builder.extract_value(t, i * acc.vecs + j), ptr, left, accumulate)
            return context.get_dummy_value()

        return types.none(acc, y, *tys), codegen

    typer.__doc__ = doc
    return intrinsic(typer)


def _store(builder, vec, v, ptr, left, accumulate):
    """Store (or add into memory) the lanes l < left: plain vector ops when all are, else masked ones."""
    full = builder.icmp_signed(">=", left, ir.Constant(_I64, vec.count))
    with builder.if_else(full) as (then, otherwise):
        with then:
            out = builder.fadd(builder.load(ptr, align=_align(vec)), v) if accumulate else v
            builder.store(out, ptr, align=_align(vec))
        with otherwise:
            lane = ir.Constant(ir.VectorType(_I64, vec.count), list(range(vec.count)))
            mask = builder.icmp_signed("<", lane, _splat(builder, ir.VectorType(_I64, vec.count), left))
            if accumulate:
                v = builder.fadd(_masked_load(builder, vec, ptr, mask), v)
            fn = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(ir.VoidType(), [vec, vec.as_pointer(), _I32, mask.type]),
                f"llvm.masked.store.v{vec.count}{_suffix(vec)}.p0",
            )
            builder.call(fn, [v, ptr, ir.Constant(_I32, _align(vec)), mask])


tile_store = _store_intrinsic(False, "Y[off + i*i_step + j*j_step + l] = acc[i][j][l] where stored (see module doc)")
tile_store_add = _store_intrinsic(True, "Y[off + i*i_step + j*j_step + l] += acc[i][j][l] where stored")


@intrinsic
def tile_load(typingctx, like, y, off, i_step, j_step, m, nj, jl, n):
    """acc[i][j][l] = Y[off + i*i_step + j*j_step + l] under tile_store's masks (zero elsewhere, never read);
    `like` is a tile of the wanted shape (only its type is used)."""
    tys = (off, i_step, j_step, m, nj, jl, n)

    def codegen(context, builder, sig, args):
        ya = args[1]
        o, ist, jst, m_, nj_, jl_, n_ = (_i64(context, builder, ty, v) for ty, v in zip(tys, args[2:]))
        vec = _vec_type(context, like)
        lane = ir.Constant(ir.VectorType(_I64, vec.count), list(range(vec.count)))
        acc = ir.Constant(ir.ArrayType(vec, like.rows * like.vecs), None)
        for i in range(like.rows):
            row = builder.add(o, builder.mul(ist, ir.Constant(_I64, i)))
            for j in range(like.vecs):
                ptr = builder.bitcast(_addr(context, builder, y, ya, row, j, jst), vec.as_pointer())
                left = builder.sub(n_, builder.mul(jl_, ir.Constant(_I64, j)))
                ok = builder.and_(
                    builder.icmp_signed("<", ir.Constant(_I64, i), m_),
                    builder.icmp_signed("<", ir.Constant(_I64, j), nj_),
                )
                mask = builder.and_(
                    builder.icmp_signed("<", lane, _splat(builder, lane.type, left)),
                    _splat(builder, ir.VectorType(ir.IntType(1), vec.count), ok),
                )
                acc = builder.insert_value(acc, _masked_load(builder, vec, ptr, mask), i * like.vecs + j)
        return acc

    return like(like, y, *tys), codegen


def _suffix(vec: ir.VectorType) -> str:
    return "f32" if isinstance(vec.element, ir.FloatType) else "f64"
