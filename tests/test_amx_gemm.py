"""linear_gemm_v5_amx_blocked (fastconv/backends/numba_cpu/gemm_amx.py): the cache-blocked AMX GEMM's tile, task
and reduction-slice edges (M, N, L not multiples of 16/32, tasks cut by the ends, several slices) for linear and
both gradients against the float64 product of the bf16-rounded operands, with poisoned outputs and poisoned
packing scratch; strided operands; thread-count independence; NaN; auto's choice."""

import numpy as np
import pytest
from amx_helpers import assert_thread_independent, poisoned_scratch, r64, requires_amx, tunables
from helpers import assert_close, rand

import fastconv as fc

F64 = np.float64
__all__ = ["poisoned_scratch", "tunables"]  # fixtures
ALGO = "linear_gemm_v5_amx_blocked"


pytestmark = requires_amx

# (rows, features in, features out): one element, below/at/past one tile and one block, tasks cut by the ends
SHAPES = [(1, 1, 1), (15, 31, 17), (16, 32, 16), (31, 33, 47), (33, 65, 37), (64, 64, 64), (257, 100, 300)]


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{m}x{c}x{k}" for m, c, k in SHAPES])
def test_linear_and_gradients_against_rounded_float64(shape, tunables, poisoned_scratch, rng):
    m, c, k = shape
    x, w, b = rand(rng, (m, c), np.float32), rand(rng, (k, c), np.float32), rand(rng, (k,), np.float32)
    y = fc.linear(x, w, b, precision="bf16", algo=ALGO)
    assert_close(y, r64(x) @ r64(w).T + b, "linear", np.float32, f"{shape} {tunables} forward")
    gy = rand(rng, (m, k), np.float32)
    gx, gw, _ = fc.linear_backward(gy, x, w, need_bias=False, precision="bf16", algo=ALGO)
    assert_close(gx, r64(gy) @ r64(w), "linear", np.float32, f"{shape} {tunables} grad_x")
    assert_close(gw, r64(gy).T @ r64(x), "linear", np.float32, f"{shape} {tunables} grad_weight")


def test_long_reduction_spans_several_slices(poisoned_scratch, rng):
    from fastconv.backends.numba_cpu import gemm_amx

    L = gemm_amx.KC * gemm_amx.B32 + 37  # two slices, the second one short
    x, w = rand(rng, (40, L), np.float32), rand(rng, (33, L), np.float32)
    y = fc.linear(x, w, precision="bf16", algo=ALGO)
    assert_close(y, r64(x) @ r64(w).T, "linear", np.float32, f"L={L}")


@pytest.mark.parametrize("order", ["a.T", "b.T", "both", "sliced"])
def test_strided_operands(order, rng):
    from fastconv.backends.numba_cpu import gemm_amx

    a, bt = rand(rng, (70, 45), np.float32), rand(rng, (50, 45), np.float32)
    if order in ("a.T", "both"):
        a = np.ascontiguousarray(a.T).T
    if order in ("b.T", "both"):
        bt = np.ascontiguousarray(bt.T).T
    if order == "sliced":
        a, bt = rand(rng, (70, 90), np.float32)[:, ::2], rand(rng, (100, 45), np.float32)[::2]
    y = gemm_amx.matmul(a, bt, None)
    assert y.flags.c_contiguous
    assert_close(y, r64(a) @ r64(bt).T, "linear", np.float32, order)


def test_results_do_not_depend_on_threads(rng):
    x, w = rand(rng, (300, 2100), np.float32), rand(rng, (70, 2100), np.float32)
    gy = rand(rng, (300, 70), np.float32)

    def run():
        gx, gw, _ = fc.linear_backward(gy, x, w, need_bias=False, precision="bf16", algo=ALGO)
        return fc.linear(x, w, precision="bf16", algo=ALGO), gx, gw

    assert_thread_independent(run)


def test_nan_and_inf_reach_the_output(rng):
    x, w = rand(rng, (5, 40), np.float32), rand(rng, (6, 40), np.float32)
    x[1, 3], x[3, 39] = np.nan, np.inf
    y = fc.linear(x, w, precision="bf16", algo=ALGO)
    ref = r64(x) @ r64(w).T
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ref))


def test_auto_takes_it_for_bf16_linear():
    x, w = np.ones((64, 64), np.float32), np.ones((32, 64), np.float32)
    assert fc.select(fc.linear, x, w, precision="bf16")[0].algo == ALGO
    assert fc.select(fc.linear, x, w)[0].algo != ALGO  # fp32 is not its precision
