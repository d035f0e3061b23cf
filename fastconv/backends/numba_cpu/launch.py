"""Running a kernel's parts on Numba's threading layer without compiling the kernel with parallel=True.

`parallel=True` compiles a kernel's prange body a second time, as an outlined "gufunc", with about half a second
of fixed cost per kernel: a cold first 3x3 conv spent more than half of its 7.1 s there (AMD EPYC, 2 vCPUs), and
small calls needed a second, serial compilation of every kernel. Here a kernel is compiled once, without it, as a
function of (its arguments, part, parts, slot) that runs one part of its closing loop (config.kernel); called with
slot -1 it instead runs `run_parts`, which this module emits into the same compiled function:

    launch(arguments, parts per thread)          a function of its own (kept out of the kernel's code):
        threads = get_num_threads()
        one thread:  kernel(*arguments, 0, 1, 0)
        otherwise:   numba_parallel_for(trampoline, [0, 1, .. parts-1], ...) with parts = threads * parts per thread
    trampoline(args, dims, steps, data)          what the layer calls on each of its threads, for a run of indices:
        kernel(*arguments, part, parts, get_thread_id()) for each part index it got

`numba_parallel_for`, `get_num_threads` and `get_thread_id` are the threading layer's own entry points, the ones
Numba's parfor code calls (tbb, omp or workqueue, chosen in threads.py); the layer spreads the part indices over
its threads as it spreads a prange's. The kernel calls itself there by its own LLVM function, so nothing is
linked or compiled twice. The arguments stay in the caller's stack frame, borrowed by the threads for the call.
A part that raises sets a flag the call returns (the exception object stays on its thread); the caller then runs
the kernel serially, which raises it (config.Kernel).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: The most parts one call may have (their indices live in a fixed stack array).
MAX_PARTS = 1024

_I8P = ir.IntType(8).as_pointer()
_INTP = cgutils.intp_t
_I32 = ir.IntType(32)


def _field(builder, record, index):
    return builder.gep(record, [ir.Constant(_I32, 0), ir.Constant(_I32, index)])


def _layer_value(builder, name):
    """get_num_threads() or get_thread_id() of the threading layer, as intp."""
    return builder.call(cgutils.get_or_insert_function(builder.module, ir.FunctionType(_INTP, []), name), [])


def _borrowed(context, builder, typ, value):
    """An array argument without its reference count (meminfo and parent NULL, as Numba passes arrays to a parfor
    body): the caller holds the arrays for the whole call, so views the kernel makes of them on several threads
    need not update one shared counter."""
    if not isinstance(typ, types.Array):
        return value
    array = context.make_array(typ)(context, builder, value=value)
    array.meminfo = cgutils.get_null_value(array.meminfo.type)
    array.parent = cgutils.get_null_value(array.parent.type)
    return array._getvalue()


def _call(context, builder, kernel, kernel_types, arguments, part, parts, slot, failed):
    """kernel(*arguments, part, parts, slot) (arguments: a list of values); a raised exception sets *failed to 1."""
    values = [*arguments, part, parts, slot]
    status, _ = context.call_conv.call_function(builder, kernel, types.intp, kernel_types, values)
    with builder.if_then(status.is_error, likely=False):
        builder.store(ir.Constant(_INTP, 1), failed)


def _trampoline(context, module, kernel, kernel_types, record_type):
    """The C-signature function the threading layer calls: runs the parts whose indices it is handed."""
    fn_type = ir.FunctionType(ir.VoidType(), [_I8P.as_pointer(), _INTP.as_pointer(), _INTP.as_pointer(), _I8P])
    fn = ir.Function(module, fn_type, name=module.get_unique_name(f"{kernel.name}_parts"))
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block())
    args, dims, _steps, data = fn.args
    indices = b.bitcast(b.load(args), _INTP.as_pointer())
    record = b.bitcast(data, record_type.as_pointer())
    arguments, parts = b.load(_field(b, record, 0)), b.load(_field(b, record, 1))
    arguments = [_borrowed(context, b, t, v) for t, v in zip(kernel_types, cgutils.unpack_tuple(b, arguments))]
    slot = _layer_value(b, "get_thread_id")
    with cgutils.for_range(b, b.load(dims)) as loop:
        part = b.load(b.gep(indices, [loop.index]))
        _call(context, b, kernel, kernel_types, arguments, part, parts, slot, _field(b, record, 2))
    b.ret_void()
    return fn


def _launch(context, module, kernel, kernel_types, arguments_type):
    """launch(arguments, parts per thread) -> failed: the parts on the layer's threads (see the module doc)."""
    fn = ir.Function(module, ir.FunctionType(_INTP, [arguments_type, _INTP]), module.get_unique_name("launch"))
    fn.linkage = "internal"
    fn.attributes.add("noinline")  # built inside the kernel, it made the kernel's own loops 15% slower
    b = ir.IRBuilder(fn.append_basic_block())
    arguments, per_thread = fn.args
    record = cgutils.alloca_once(b, ir.LiteralStructType([arguments_type, _INTP, _INTP]))
    failed = _field(b, record, 2)
    b.store(ir.Constant(_INTP, 0), failed)
    threads = _layer_value(b, "get_num_threads")
    zero, one = ir.Constant(_INTP, 0), ir.Constant(_INTP, 1)
    with b.if_else(b.icmp_signed("<=", threads, one)) as (alone, shared):
        with alone:
            _call(context, b, kernel, kernel_types, cgutils.unpack_tuple(b, arguments), zero, one, zero, failed)
        with shared:
            parts = b.mul(threads, per_thread)
            limit = ir.Constant(_INTP, MAX_PARTS)
            parts = b.select(b.icmp_signed(">", parts, limit), limit, parts)
            b.store(arguments, _field(b, record, 0))
            b.store(parts, _field(b, record, 1))
            indices = cgutils.alloca_once(b, _INTP, size=MAX_PARTS)
            with cgutils.for_range(b, parts) as loop:
                b.store(loop.index, b.gep(indices, [loop.index]))
            trampoline = _trampoline(context, module, kernel, kernel_types, record.type.pointee)
            array_args = cgutils.alloca_once_value(b, b.bitcast(indices, _I8P))
            dims = cgutils.alloca_once_value(b, parts)
            steps = cgutils.alloca_once_value(b, ir.Constant(_INTP, 8))  # from one part index to the next
            parallel_for = cgutils.get_or_insert_function(
                module, ir.FunctionType(ir.VoidType(), [_I8P] * 5 + [_INTP] * 3), "numba_parallel_for"
            )
            pointers = [b.bitcast(v, _I8P) for v in (trampoline, array_args, dims, steps, record)]
            b.call(parallel_for, [*pointers, zero, one, threads])  # no inner dimensions, one array (the indices)
    b.ret(b.load(failed))
    return fn


@intrinsic
def run_parts(typingctx, arguments, per_thread):
    """Inside a kernel compiled by config.kernel (whose last three parameters are part, parts, slot): run that
    same compiled function as kernel(*arguments, part, parts, slot) for every part, get_num_threads() *
    per_thread of them, on the threading layer's threads. Returns 1 if a part raised, else 0."""
    kernel_types = (*arguments.types, types.intp, types.intp, types.intp)

    def codegen(context, builder, sig, llargs):
        values, count = llargs
        launch = _launch(context, builder.module, builder.function, kernel_types, values.type)
        return builder.call(launch, [values, count])

    return types.intp(arguments, types.intp), codegen
