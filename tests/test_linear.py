"""fastconv.linear / linear_backward: the float64 reference (finite differences, a hand-computed case, torch), every
numba algorithm against it on awkward shapes and on shapes past its tiles, float32 and float64, outputs poisoned
(conftest); NaN propagation; identical results with 1 and 2 threads; what algo="auto" picks. The CUDA kernel runs
in tests/test_backend_cuda.py through the same conformance checks."""

import re

import conformance as cf
import numba
import numpy as np
import pytest
from cases import LINEAR_CASES, LinearCase
from helpers import assert_close, directional_grad_check, rand, requires_torch, torch
from test_backend_numba_props import one_vs_two  # noqa: F401  (fixture)

import fastconv as fc
from fastconv import dispatch
from fastconv.backends.numba_cpu import config
from fastconv.backends.numba_cpu.linear import DOT_ROWS, DOT_VECS, linear_dot

B = "numba"
F32, F64 = np.float32, np.float64
DTYPES = [F32, F64]

# Past the register tiles: linear_gemm_v3_packed's 8-row tiles with rows left over, two column panels (the second
# partial), two KC slices of the reduction; linear_dot_v2_rows's 4-row groups, leftover rows and masked feature/lane
# tails; more than one row block; the weight gradient cut into batch chunks (few output tiles, a long batch).
TILE_CASES = [
    LinearCase("tiles", (19, 150), 53),
    LinearCase("row_blocks", (130, 20), 9),
    LinearCase("chunked_weight_grad", (300, 7), 5, bias=False),
]
ALL = LINEAR_CASES + TILE_CASES
ids = lambda cases: [c.id for c in cases]  # noqa: E731


def table(op):
    """Every fp32 algorithm on every case (the bf16 ones are test_precision.py's)."""
    dispatch.algos(op, B)  # loads the backend
    fp32 = [
        a
        for a in dispatch.algos(op, B)
        if "fp32" in getattr(dispatch.implementation(op, B, a).traits, "precisions", ("fp32",))
    ]
    return [pytest.param(a, c, id=f"{a}-{c.id}") for a in fp32 for c in ALL]


# ---------------------------------------------------------------------------------------------- the reference
def test_reference_hand_computed():
    x = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, 3.0]])
    w = np.array([[2.0, -1.0], [0.5, 4.0], [1.0, 1.0]])
    b = np.array([0.25, -2.0, 1.0])
    y = fc.linear(x, w, b, backend="numpy")
    np.testing.assert_array_equal(y, [[0.25, 6.5, 4.0], [-2.25, -0.5, 0.5], [-2.75, 10.0, 4.0]])
    gx, gw, gb = fc.linear_backward(np.ones((3, 3)), x, w, backend="numpy")
    np.testing.assert_array_equal(gx, [[3.5, 4.0]] * 3)
    np.testing.assert_array_equal(gw, [[0.0, 5.5]] * 3)
    np.testing.assert_array_equal(gb, [3.0, 3.0, 3.0])


@pytest.mark.parametrize("shape, K", [((3, 5), 4), ((2, 3, 7), 2)])
def test_reference_gradient_by_finite_differences(shape, K, rng):
    x, w, b = rng.standard_normal(shape), rng.standard_normal((K, shape[-1])), rng.standard_normal(K)
    gy = rng.standard_normal(shape[:-1] + (K,))

    def f(x, w, b):
        return float(np.sum(gy * fc.linear(x, w, b, backend="numpy")))

    gx, gw, gb = fc.linear_backward(gy, x, w, backend="numpy")
    directional_grad_check(f, {"x": x, "w": w, "b": b}, {"x": gx, "w": gw, "b": gb}, rng)


@requires_torch
@pytest.mark.parametrize("backend", ["numpy", B])
def test_matches_torch_forward_and_autograd(backend, rng):
    x, w, b = rand(rng, (2, 3, 20)), rand(rng, (9, 20)), rand(rng, (9,))
    gy = rand(rng, (2, 3, 9))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.linear(tx, tw, tb)
    ty.backward(torch.from_numpy(gy))
    assert_close(fc.linear(x, w, b, backend=backend), ty.detach().numpy(), "linear", F64, "forward vs torch")
    for name, g, t in zip(("x", "weight", "bias"), fc.linear_backward(gy, x, w, backend=backend), (tx, tw, tb)):
        assert_close(g, t.grad.numpy(), "linear", F64, f"grad {name} vs torch")


# ---------------------------------------------------------------------------------------------- numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo, case", table("linear"))
def test_numba_forward(algo, case, dtype, rng):
    cf.check_linear_forward(B, algo, case, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ALL, ids=ids(ALL))
def test_numba_backward(case, dtype, rng):
    cf.check_linear_backward(B, "auto", case, dtype, rng)


@pytest.mark.parametrize("algo", ["linear_dot_v2_rows", "linear_gemm_v3_packed"])
def test_numba_non_contiguous_input(algo, rng):
    cf.check_linear_forward(B, algo, TILE_CASES[0], F32, rng, non_contiguous=True)


def test_numba_backward_parts(rng):
    """Each gradient alone, and none at all."""
    for need in ((True, False, False), (False, True, False), (False, False, True), (False, False, False)):
        cf.check_linear_backward(B, "linear_gemm_v3_packed", TILE_CASES[0], F32, rng, need=need)


def test_auto_picks_by_batch_size():
    w = np.zeros((10, 6), F32)
    for n, algo in (
        (1, "linear_dot_v2_rows"),
        (127, "linear_dot_v2_rows"),
        (128, "linear_gemm_v3_packed"),
        (1000, "linear_gemm_v3_packed"),
    ):
        assert fc.select(fc.linear, np.zeros((n, 6), F32), w) == (("linear", B, algo),)
    assert [s.algo for s in fc.select(fc.linear_backward, np.zeros((3, 10), F32), np.zeros((3, 6), F32), w)] == [
        "linear_gemm_v3_packed",
        "linear_gemm_v3_packed",
        "linear_bwd_bias_v2_columns",
    ]


@pytest.mark.parametrize("algo", ["linear_dot_v2_rows", "linear_gemm_v3_packed"])
def test_numba_nan_propagates(algo, rng):
    """A NaN in x spoils its row of y, a NaN in w its column; in the backward likewise; nothing else."""
    case = TILE_CASES[0]
    x, w, b = rand(rng, case.x, F32), rand(rng, case.w, F32), rand(rng, (case.K,), F32)
    x[3, 7], w[40, 100] = np.nan, np.nan
    ref = fc.linear(x.astype(F64), w.astype(F64), b.astype(F64), backend="numpy")
    assert np.isnan(ref).sum() == case.K + case.x[0] - 1
    assert_close(fc.linear(x, w, b, backend=B, algo=algo), ref, "linear", F32, algo)
    gy = rand(rng, case.y, F32)
    gy[5, 2] = np.nan
    got = fc.linear_backward(gy, x, w, backend=B)
    for g, r in zip(got, fc.linear_backward(gy.astype(F64), x.astype(F64), w.astype(F64), backend="numpy")):
        assert np.isnan(r).any() and not np.isnan(r).all()
        assert_close(g, r, "linear", F32, "backward")


@pytest.mark.parametrize(
    "case", [c for c in ALL if c.id in ("batch3", "tiles", "chunked_weight_grad")], ids=lambda c: c.id
)
def test_numba_threads(case, rng, one_vs_two):  # noqa: F811
    x, w, b, gy = (rand(rng, s, F32) for s in (case.x, case.w, (case.K,), case.y))
    one_vs_two(
        lambda: [
            fc.linear(x, w, b, backend=B, algo="linear_dot_v2_rows"),
            fc.linear(x, w, b, backend=B, algo="linear_gemm_v3_packed"),
            *fc.linear_backward(gy, x, w, backend=B),
        ]
    )


def test_dot_tile_stays_in_registers():
    """linear_dot_v2_rows's inner loop is the 4 x 4 tile's 16 vector FMAs, with no vector register spilled to the stack
    (compiled afresh: cached code cannot be inspected)."""
    fresh = numba.njit(fastmath=set(config.FASTMATH))(linear_dot.py_func)
    fresh.compile((numba.typeof(np.zeros(1, F32)),) * 4 + (numba.int64,) * 5)
    reg = "zmm" if config.VECTOR_BYTES == 64 else "ymm"
    loops = [
        block
        for block in re.split(r"\n\.LBB\S+:", fresh.inspect_asm(fresh.signatures[0]))
        if len(re.findall(rf"vfmadd\w+\s+.*%{reg}", block)) == DOT_ROWS * DOT_VECS
    ]
    assert loops, f"no loop body with {DOT_ROWS * DOT_VECS} {reg} FMAs"
    assert not [line for block in loops for line in block.splitlines() if "rsp" in line and reg in line]
