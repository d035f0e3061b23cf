"""Lane-wise operations on the register tiles of simd.py: comparisons for pooling, dot products, single vectors.

    tile_add(a, b); tile_sub(a, b)               a + b; a - b, lane by lane (tiles of one type)
    tile_zip(a, b)                               the 1x2 tile [a0, b0, a1, b1, ...] of two 1x1 tiles
    tile_max(a, b)                               b where b > a or b is NaN, else a (NaN propagates; on ties a)
    tile_argmax(v, k, t, cv, ck, ct)             lane-wise (v, k, t) = (cv, ck, ct) where cv is the first maximum
                                                 in key order: cv > v, or cv NaN and v not, or (cv == v or both
                                                 NaN) and ck < k (keys: the candidates' positions)
    tile_dot(acc, A, a, a_step, B, b, b_step)    acc[i][j] += A[a + i*a_step : +LANES] * B[b + j*b_step : +LANES]
                                                 (lane-wise products: each lane sums its own share of a dot product)
    tile_dot_tail(acc, A, a, a_step, m, B, b, b_step, nj, n)
                                                 tile_dot with A vectors i >= m, B vectors j >= nj and lanes >= n
                                                 read as zero (masked loads)
    tile_store_sums(acc, Y, off, i_step, j_step, m, nj)
                                                 Y[off + i*i_step + j*j_step] = sum of the lanes of acc[i][j] for
                                                 i < m, j < nj (lanes added in a fixed halving tree)
    vec_load(A, off, step)                       a 1x1 tile of A[off + l*step]: one load for step 1, two loads and
                                                 a shuffle for step 2 (reads A[off + 2*LANES - 1]), else per lane
    vec_lanes(A); vec_copy(D, d, A, a, n)        LANES; one vector move of min(n, LANES) elements (masked)
    tile_scale_shift(acc, B, b)                  acc = acc * B[b] + B[b + 1] (broadcast scalars, one FMA a vector)
    tile_mul_add(acc, a, b)                      acc += a * b, lane by lane, for three tiles of one shape
    tile_stream(acc, Y, off, j_step)             Y[off + j*j_step : +LANES] = acc[0][j]: non-temporal stores
                                                 (past the caches) where aligned to VECTOR_BYTES, else plain ones
    vec_gap(A, off)                              elements from A[off] to the next VECTOR_BYTES-aligned one
    prefetch(A, off)                             a hint that A[off] will be read soon (never faults)

As in simd.py: element offsets into C-contiguous data, no bounds checks, a fixed sequence of operations.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .config import VECTOR_BYTES
from .simd import (
    _I32,
    _I64,
    _ONE,
    Tile,
    _addr,
    _align,
    _check,
    _fma,
    _i64,
    _load_vec,
    _masked_load,
    _splat,
    _suffix,
    _vec_type,
)


def _lanewise(name: str, op, doc: str):
    """An intrinsic name(a, b) on two tiles of one type: op(builder, a-vector, b-vector) for each vector."""

    def typer(typingctx, a, b):
        if not isinstance(a, Tile) or a != b:
            raise TypeError(f"{name}: needs two tiles of one type, got {a} and {b}")

        def codegen(context, builder, sig, args):
            ta, tb = args
            for k in range(a.rows * a.vecs):
                ta = builder.insert_value(
                    ta, op(builder, builder.extract_value(ta, k), builder.extract_value(tb, k)), k
                )
            return ta

        return a(a, b), codegen

    typer.__doc__ = doc
    return intrinsic(typer)


def _max(builder, va, vb):
    take = builder.or_(builder.fcmp_ordered(">", vb, va), builder.fcmp_unordered("uno", vb, vb))
    return builder.select(take, vb, va)


tile_add = _lanewise("tile_add", lambda builder, va, vb: builder.fadd(va, vb), "a + b, lane by lane")
tile_sub = _lanewise("tile_sub", lambda builder, va, vb: builder.fsub(va, vb), "a - b, lane by lane")
tile_max = _lanewise("tile_max", _max, "b where b > a or b is NaN, else a, lane by lane")


@intrinsic
def tile_zip(typingctx, a, b):
    """The 1x2 tile whose 2*LANES lanes are a0, b0, a1, b1, ...: two 1x1 tiles interleaved (shuffles only)."""
    if not isinstance(a, Tile) or a != b or (a.rows, a.vecs) != (1, 1):
        raise TypeError(f"tile_zip: needs two 1x1 tiles of one type, got {a} and {b}")
    out = Tile(a.dtype, 1, 2)

    def codegen(context, builder, sig, args):
        va, vb = (builder.extract_value(t, 0) for t in args)
        n = a.lanes
        zipped = ir.Constant(ir.ArrayType(va.type, 2), ir.Undefined)
        for half in range(2):
            pick = [e for lane in range(half * n // 2, (half + 1) * n // 2) for e in (lane, n + lane)]
            mixed = builder.shuffle_vector(va, vb, ir.Constant(ir.VectorType(_I32, n), pick))
            zipped = builder.insert_value(zipped, mixed, half)
        return zipped

    return out(a, b), codegen


@intrinsic
def tile_argmax(typingctx, v, k, t, cv, ck, ct):
    if not isinstance(v, Tile) or any(a != v for a in (k, t, cv, ck, ct)):
        raise TypeError(f"tile_argmax: needs six tiles of one type, got {(v, k, t, cv, ck, ct)}")
    out = types.UniTuple(v, 3)

    def codegen(context, builder, sig, args):
        tv, tk, tt, cvs, cks, cts = args
        for i in range(v.rows * v.vecs):
            a, b = builder.extract_value(tv, i), builder.extract_value(cvs, i)
            a_nan, b_nan = builder.fcmp_unordered("uno", a, a), builder.fcmp_unordered("uno", b, b)
            same = builder.or_(builder.fcmp_ordered("==", b, a), builder.and_(a_nan, b_nan))
            earlier = builder.fcmp_ordered("<", builder.extract_value(cks, i), builder.extract_value(tk, i))
            take = builder.or_(
                builder.or_(builder.fcmp_ordered(">", b, a), builder.and_(b_nan, builder.not_(a_nan))),
                builder.and_(same, earlier),
            )
            tv = builder.insert_value(tv, builder.select(take, b, a), i)
            tk = builder.insert_value(
                tk, builder.select(take, builder.extract_value(cks, i), builder.extract_value(tk, i)), i
            )
            tt = builder.insert_value(
                tt, builder.select(take, builder.extract_value(cts, i), builder.extract_value(tt, i)), i
            )
        return context.make_tuple(builder, out, [tv, tk, tt])

    return out(v, k, t, cv, ck, ct), codegen


def _dot_codegen(acc: Tile, tys: tuple, masked: bool):
    """acc[i][j] += A-vector i * B-vector j, lane by lane; with `masked`, vectors past m (A) or nj (B) and lanes
    past n load as zero."""

    def codegen(context, builder, sig, args):
        vec = _vec_type(context, acc)
        if masked:
            m, nj, n = (_i64(context, builder, tys[k], args[k]) for k in (4, 8, 9))
        ao, ast = (_i64(context, builder, tys[k], args[k]) for k in (2, 3))
        bo, bst = (_i64(context, builder, tys[k], args[k]) for k in ((6, 7) if masked else (5, 6)))
        barr, bty = (args[5], tys[5]) if masked else (args[4], tys[4])

        def operand(arrty, arr, off, step, count, k, limit):
            ptr = _addr(context, builder, arrty, arr, off, k, step)
            if not masked:
                return _load_vec(builder, vec, ptr)
            lane = ir.Constant(ir.VectorType(_I64, vec.count), list(range(vec.count)))
            inside = builder.icmp_signed("<", ir.Constant(_I64, k), count)
            mask = builder.and_(
                builder.icmp_signed("<", lane, _splat(builder, lane.type, limit)),
                _splat(builder, ir.VectorType(ir.IntType(1), vec.count), inside),
            )
            return _masked_load(builder, vec, builder.bitcast(ptr, vec.as_pointer()), mask)

        xs = [
            operand(tys[1], args[1], ao, ast, m if masked else None, i, n if masked else None) for i in range(acc.rows)
        ]
        ys = [operand(bty, barr, bo, bst, nj if masked else None, j, n if masked else None) for j in range(acc.vecs)]
        t = args[0]
        for i in range(acc.rows):
            for j in range(acc.vecs):
                k = i * acc.vecs + j
                t = builder.insert_value(t, _fma(builder, builder.extract_value(t, k), xs[i], ys[j]), k)
        return t

    return codegen


@intrinsic
def tile_dot(typingctx, acc, a, a_off, a_step, b, b_off, b_step):
    """acc[i][j] += A[a + i*a_step : +LANES] * B[b + j*b_step : +LANES], lane by lane"""
    _check(acc, a, b)
    tys = (acc, a, a_off, a_step, b, b_off, b_step)
    return acc(*tys), _dot_codegen(acc, tys, False)


@intrinsic
def tile_dot_tail(typingctx, acc, a, a_off, a_step, m, b, b_off, b_step, nj, n):
    """tile_dot with A vectors i >= m, B vectors j >= nj and lanes >= n read as zero"""
    _check(acc, a, b)
    tys = (acc, a, a_off, a_step, m, b, b_off, b_step, nj, n)
    return acc(*tys), _dot_codegen(acc, tys, True)


@intrinsic
def tile_store_sums(typingctx, acc, y, off, i_step, j_step, m, nj):
    """Y[off + i*i_step + j*j_step] = the sum of acc[i][j]'s lanes, for i < m and j < nj. The lanes are added in a
    fixed tree (upper half onto lower half until one is left), so the result does not depend on anything else."""
    tys = (off, i_step, j_step, m, nj)

    def codegen(context, builder, sig, args):
        t, ya = args[0], args[1]
        o, ist, jst, m_, nj_ = (_i64(context, builder, ty, v) for ty, v in zip(tys, args[2:]))
        for i in range(acc.rows):
            for j in range(acc.vecs):
                v, width = builder.extract_value(t, i * acc.vecs + j), acc.lanes
                while width > 1:
                    width //= 2
                    lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, width), list(range(width))))
                    hi = builder.shuffle_vector(
                        v, v, ir.Constant(ir.VectorType(_I32, width), list(range(width, 2 * width)))
                    )
                    v = builder.fadd(lo, hi)
                total = builder.extract_element(v, ir.Constant(_I32, 0))
                ok = builder.and_(
                    builder.icmp_signed("<", ir.Constant(_I64, i), m_),
                    builder.icmp_signed("<", ir.Constant(_I64, j), nj_),
                )
                with builder.if_then(ok):
                    at = builder.add(
                        o, builder.add(builder.mul(ist, ir.Constant(_I64, i)), builder.mul(jst, ir.Constant(_I64, j)))
                    )
                    builder.store(total, _addr(context, builder, y, ya, at))
        return context.get_dummy_value()

    return types.none(acc, y, *tys), codegen


def _lanes_of(arr) -> int:
    return VECTOR_BYTES * 8 // arr.dtype.bitwidth


@intrinsic
def vec_lanes(typingctx, arr):
    """LANES for the array's dtype, a compile-time constant."""

    def codegen(context, builder, sig, args):
        return ir.Constant(_I64, _lanes_of(arr))

    return types.int64(arr), codegen


@intrinsic
def vec_load(typingctx, arr, off, step):
    """A 1x1 tile of arr[off + l*step], l < LANES; step 1 and 2 with vector loads (step 2 reads 2*LANES
    contiguous elements and keeps the even ones), any other step lane by lane."""
    tile = Tile(arr.dtype, 1, 1)

    def codegen(context, builder, sig, args):
        a = args[0]
        o, st = _i64(context, builder, off, args[1]), _i64(context, builder, step, args[2])
        vec = _vec_type(context, tile)
        out = cgutils.alloca_once(builder, vec)
        with builder.if_else(builder.icmp_signed("==", st, ir.Constant(_I64, 1))) as (one, other):
            with one:
                builder.store(_load_vec(builder, vec, _addr(context, builder, arr, a, o)), out)
            with other:
                with builder.if_else(builder.icmp_signed("==", st, ir.Constant(_I64, 2))) as (two, any_step):
                    with two:
                        lo = _load_vec(builder, vec, _addr(context, builder, arr, a, o))
                        hi = _load_vec(builder, vec, _addr(context, builder, arr, a, o, vec.count, _ONE))
                        even = ir.Constant(ir.VectorType(_I32, vec.count), list(range(0, 2 * vec.count, 2)))
                        builder.store(builder.shuffle_vector(lo, hi, even), out)
                    with any_step:
                        v = ir.Constant(vec, ir.Undefined)
                        for lane in range(vec.count):
                            x = builder.load(_addr(context, builder, arr, a, o, lane, st))
                            v = builder.insert_element(v, x, ir.Constant(_I32, lane))
                        builder.store(v, out)
        return builder.insert_value(ir.Constant(ir.ArrayType(vec, 1), ir.Undefined), builder.load(out), 0)

    return tile(arr, off, step), codegen


@intrinsic
def vec_copy(typingctx, dst, d_off, src, s_off, n):
    """dst[d_off : +k] = src[s_off : +k] for k = min(n, LANES): one vector move, masked when n < LANES (no
    element past k is read or written)."""
    if dst.dtype != src.dtype:
        raise TypeError(f"vec_copy: {dst} and {src} differ in dtype")

    def codegen(context, builder, sig, args):
        da, sa = args[0], args[2]
        do, so, k = (_i64(context, builder, ty, v) for ty, v in ((d_off, args[1]), (s_off, args[3]), (n, args[4])))
        vec = ir.VectorType(context.get_value_type(dst.dtype), _lanes_of(dst))
        sp = builder.bitcast(_addr(context, builder, src, sa, so), vec.as_pointer())
        dp = builder.bitcast(_addr(context, builder, dst, da, do), vec.as_pointer())
        full = builder.icmp_signed(">=", k, ir.Constant(_I64, vec.count))
        with builder.if_else(full) as (then, otherwise):
            with then:
                builder.store(builder.load(sp, align=_align(vec)), dp, align=_align(vec))
            with otherwise:
                lane = ir.Constant(ir.VectorType(_I64, vec.count), list(range(vec.count)))
                mask = builder.icmp_signed("<", lane, _splat(builder, ir.VectorType(_I64, vec.count), k))
                fn = cgutils.get_or_insert_function(
                    builder.module,
                    ir.FunctionType(ir.VoidType(), [vec, vec.as_pointer(), _I32, mask.type]),
                    f"llvm.masked.store.v{vec.count}{_suffix(vec)}.p0",
                )
                builder.call(fn, [_masked_load(builder, vec, sp, mask), dp, ir.Constant(_I32, _align(vec)), mask])
        return context.get_dummy_value()

    return types.none(dst, d_off, src, s_off, n), codegen


@intrinsic
def tile_scale_shift(typingctx, acc, b, off):
    """acc = acc * B[off] + B[off + 1], the two scalars broadcast: one fused multiply-add per vector."""
    _check(acc, b, b)

    def codegen(context, builder, sig, args):
        t, o = args[0], _i64(context, builder, off, args[2])
        vec = _vec_type(context, acc)
        scale, shift = (
            _splat(builder, vec, builder.load(_addr(context, builder, b, args[1], o, k, _ONE))) for k in (0, 1)
        )
        for k in range(acc.rows * acc.vecs):
            t = builder.insert_value(t, _fma(builder, shift, builder.extract_value(t, k), scale), k)
        return t

    return acc(acc, b, off), codegen


@intrinsic
def tile_mul_add(typingctx, acc, a, b):
    """acc += a * b lane by lane (one fused multiply-add per vector); the three tiles have one type."""
    if not isinstance(acc, Tile) or a != acc or b != acc:
        raise TypeError(f"tile_mul_add: needs three tiles of one type, got {acc}, {a} and {b}")

    def codegen(context, builder, sig, args):
        t, ta, tb = args
        for k in range(acc.rows * acc.vecs):
            prod = (builder.extract_value(ta, k), builder.extract_value(tb, k))
            t = builder.insert_value(t, _fma(builder, builder.extract_value(t, k), *prod), k)
        return t

    return acc(acc, a, b), codegen


@intrinsic
def tile_stream(typingctx, acc, y, off, j_step):
    """Y[off + j*j_step : +LANES] = acc[0][j] for every vector of a one-row tile. A vector whose address is a
    multiple of VECTOR_BYTES is stored non-temporally (written to memory around the caches, without first reading
    the line: for outputs too large to stay in cache), any other with a plain store."""
    if acc.rows != 1 or acc.dtype != y.dtype:
        raise TypeError(f"tile_stream: needs a one-row tile of the array's dtype, got {acc} and {y}")

    def codegen(context, builder, sig, args):
        t, ya = args[0], args[1]
        o, st = _i64(context, builder, off, args[2]), _i64(context, builder, j_step, args[3])
        vec = _vec_type(context, acc)
        hint = builder.module.add_metadata([ir.Constant(_I32, 1)])
        for j in range(acc.vecs):
            ptr = builder.bitcast(_addr(context, builder, y, ya, o, j, st), vec.as_pointer())
            v = builder.extract_value(t, j)
            offset = builder.and_(builder.ptrtoint(ptr, _I64), ir.Constant(_I64, VECTOR_BYTES - 1))
            with builder.if_else(builder.icmp_unsigned("==", offset, ir.Constant(_I64, 0))) as (aligned, other):
                with aligned:
                    builder.store(v, ptr, align=VECTOR_BYTES).set_metadata("nontemporal", hint)
                with other:
                    builder.store(v, ptr, align=_align(vec))
        return context.get_dummy_value()

    return types.none(acc, y, off, j_step), codegen


@intrinsic
def vec_gap(typingctx, arr, off):
    """How many elements lie from arr[off] up to the first element at a multiple of VECTOR_BYTES (0 to LANES-1)."""

    def codegen(context, builder, sig, args):
        ptr = builder.ptrtoint(_addr(context, builder, arr, args[0], _i64(context, builder, off, args[1])), _I64)
        to_next = builder.and_(builder.neg(ptr), ir.Constant(_I64, VECTOR_BYTES - 1))
        return builder.udiv(to_next, ir.Constant(_I64, arr.dtype.bitwidth // 8))

    return types.int64(arr, off), codegen


@intrinsic
def prefetch(typingctx, arr, off):
    """Hint that arr[off] will be read soon (a software prefetch into all cache levels; it never faults, even past
    the array's end)."""

    def codegen(context, builder, sig, args):
        ptr = builder.bitcast(
            _addr(context, builder, arr, args[0], _i64(context, builder, off, args[1])), ir.IntType(8).as_pointer()
        )
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [ptr.type, _I32, _I32, _I32]), "llvm.prefetch.p0"
        )
        builder.call(fn, [ptr, ir.Constant(_I32, 0), ir.Constant(_I32, 3), ir.Constant(_I32, 1)])
        return context.get_dummy_value()

    return types.none(arr, off), codegen
