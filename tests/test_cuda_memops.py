"""The memory-bound CUDA kernels (batch norm, ReLU, max pooling), every registered version, against the float64
reference, called through their registry entries with chosen launchers and tunables:
- at SMALL_TUNABLES, where the small shapes span several chunks per channel, several tiles per block and blocks;
- at the production tunables on shapes with several chunks per channel (and several blocks);
- on planes whose size is no multiple of the 16-byte pack (the element-by-element path) and on 16-byte packable
  planes placed one element past 16-byte alignment (the emulator's buffers shifted by one element, CuPy views one
  element into a buffer): the kernels must see it and take the element path;
- twice under different emulator schedules (block and thread orders): bit-identical results.
Outputs and workspaces are poisoned (conftest), so an element never written shows as NaN."""

import importlib
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import pytest
from cases import AVG_POOL_CASES, MAX_POOL_CASES, PoolCase
from helpers import assert_close, rand

import fastconv as fc
from fastconv import dispatch
from fastconv.params import EltwiseParams, batch_norm_params, pool_params

F64 = np.float64
SMALL, PRODUCTION = "small", "production"


def _unavailable(name: str) -> pytest.MarkDecorator:
    status = fc.backends()[name]
    return pytest.mark.skipif(not status.available, reason=f"{name}: {status.reason}")


class Device(NamedTuple):
    backend: str
    launcher: Any
    xp: Any  # numpy or cupy

    def to_device(self, a: np.ndarray, misaligned: bool = False) -> Any:
        """a on the device; with `misaligned`, a CuPy view one element into a larger buffer (on the emulator the
        launcher shifts its buffers instead, see `launcher_for`)."""
        if self.xp is np or not misaligned:
            return self.xp.asarray(a)
        buf = self.xp.empty(a.size + 1, a.dtype)
        view = buf[1:].reshape(a.shape)
        view[...] = self.xp.asarray(a)
        return view

    def from_device(self, a: Any) -> Any:
        return a if a is None or self.xp is np else self.xp.asnumpy(a)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("cuda-emu", marks=_unavailable("cuda-emu")),
        pytest.param("cuda", marks=[pytest.mark.gpu, _unavailable("cuda")]),
    ],
)
def device(request) -> Device:
    if request.param == "cuda":
        import cupy

        return Device("cuda", importlib.import_module("fastconv.backends.cuda").LAUNCHER, cupy)
    return Device("cuda-emu", importlib.import_module("fastconv.backends.cuda.emu").LAUNCHER, np)


def shifted_emu_launcher(seed: int = 0) -> Any:
    """An EmuLauncher whose buffers all start one element (4 or 8 bytes, as the dtype) past 16-byte alignment (the
    start of a page plus the shift; the guard page before them is then that many bytes away)."""
    from fastconv.backends.cuda.emu import EmuLauncher

    class Shifted(EmuLauncher):
        shift = 4

        def module(self, file):
            built, lib = super().module(file)
            if not getattr(lib, "_fc_shifted", False):
                alloc = lib.fcemu_buffer
                lib.fcemu_buffer = lambda nbytes, _side, const: (
                    None if not (p := alloc(nbytes + 8, 0, const)) else p + self.shift
                )
                lib._fc_shifted = True
            return built, lib

    return Shifted(seed=seed)


def launcher_for(device: Device, misaligned: bool, seed: int | None) -> Any:
    from fastconv.backends.cuda.emu import EmuLauncher

    if device.backend == "cuda-emu" and misaligned:
        return shifted_emu_launcher(seed or 0)
    if device.backend == "cuda-emu" and seed is not None:
        return EmuLauncher(seed=seed)
    return device.launcher


def run(device: Device, op: str, algo: str, tunables: str, *args, misaligned=False, seed=None, dtype=None):
    """Run (op, algo)'s registered launch code on `device` with `tunables`; args are NumPy arrays (moved to the
    device) or anything else (passed as is). Returns the outputs as NumPy arrays."""
    from fastconv.backends.cuda.launch import SMALL_TUNABLES

    launcher = launcher_for(device, misaligned, seed)
    if hasattr(launcher, "shift") and dtype is not None:
        launcher.shift = np.dtype(dtype).itemsize
    impl = dispatch.implementation(op, device.backend, algo).fn  # partial(fn, LAUNCHER, ...)
    fn = partial(impl.func, launcher, *impl.args[1:], **impl.keywords)
    moved = [device.to_device(a, misaligned) if isinstance(a, np.ndarray) else a for a in args]
    with launcher.override(SMALL_TUNABLES if tunables == SMALL else {}):
        out = fn(*moved)
    return tuple(device.from_device(o) for o in out) if isinstance(out, tuple) else device.from_device(out)


def algos(op: str) -> list[str]:
    return dispatch.algos(op, "cuda-emu")


# ---------------------------------------------------------------------------------------------- batch norm
# (tunables, shape): small shapes at SMALL_TUNABLES (64 threads x 2 packs a tile: 512 float32 elements), larger ones
# at the production tunables (256 x 4 packs: 4096); spatial sizes with M % 4 == 0 (packs) and not (elements).
BN_CASES = [
    (SMALL, (3, 5, 7, 9)),
    (SMALL, (4, 3, 16, 24)),  # packs; 3 tiles per channel over 2 chunks (BN_GRID 4): a chunk of 2 tiles
    (SMALL, (2, 3, 33, 35)),  # elements; 9 tiles in 2 chunks
    (SMALL, (7, 2, 5)),
    (SMALL, (40, 3)),  # M = 1: every "plane" one element
    (SMALL, (1, 3, 9, 7)),
    (PRODUCTION, (4, 3, 48, 50)),  # packs; 3 chunks of one tile per channel
    (PRODUCTION, (5, 2, 37, 41)),  # elements; 2 chunks of 4 tiles per channel
    (PRODUCTION, (2, 70, 8, 8)),  # many channels, one chunk each
]
BN_IDS = [f"{t}-{'x'.join(map(str, s))}" for t, s in BN_CASES]


def bn_inputs(rng, shape, dtype):
    C = shape[1]
    x = rand(rng, shape, dtype) * 3 + 1
    w, b, gy = rand(rng, (C,), dtype), rand(rng, (C,), dtype), rand(rng, shape, dtype)
    rm, rv = rand(rng, (C,), dtype), np.abs(rand(rng, (C,), dtype)) + 0.5
    return x, w, b, rm, rv, gy


def bn_params(shape, training, dtype):
    shapes = {"weight": (shape[1],), "bias": (shape[1],), "running_mean": (shape[1],), "running_var": (shape[1],)}
    return batch_norm_params("batch_norm", shape, shapes, training, 0.1, 1e-3, np.dtype(dtype))


def bn_reference(x, w, b, rm, rv, gy, training):
    x, w, b, rm, rv, gy = (a.astype(F64) for a in (x, w, b, rm, rv, gy))
    y = fc.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training, eps=1e-3, backend="numpy")
    grads = fc.batch_norm_backward(gy, x, rm, rv, w, training, eps=1e-3, backend="numpy")
    axes = (0, *range(2, x.ndim))
    return y, x.mean(axis=axes), x.var(axis=axes), grads


def check_batch_norm(device, algo_fwd, algo_bwd, tunables, shape, training, dtype, rng, misaligned=False):
    x, w, b, rm, rv, gy = bn_inputs(rng, shape, dtype)
    p = bn_params(shape, training, dtype)
    y_ref, mean_ref, var_ref, grads_ref = bn_reference(x, w, b, rm, rv, gy, training)
    what = f"{algo_fwd}/{algo_bwd} {shape} training={training} {tunables}"
    kw = dict(misaligned=misaligned, dtype=dtype)
    y, mean, var = run(device, "batch_norm", algo_fwd, tunables, p, x, w, b, rm, rv, **kw)
    assert_close(y, y_ref, "bn", dtype, what)
    if training:
        assert_close(mean, mean_ref, "bn", dtype, what + " batch mean")
        assert_close(var, var_ref, "bn", dtype, what + " batch var")
    else:
        assert mean is None and var is None
    grads = run(device, "batch_norm_bwd", algo_bwd, tunables, p, gy, x, w, rm, rv, **kw)
    for name, got, ref in zip(("grad_x", "grad_weight", "grad_bias"), grads, grads_ref):
        assert_close(got, ref, "bn", dtype, f"{what} {name}")


BN_ALGOS = list(zip(algos("batch_norm"), algos("batch_norm_bwd")))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("tunables, shape", BN_CASES, ids=BN_IDS)
@pytest.mark.parametrize("algo_fwd, algo_bwd", BN_ALGOS)
def test_batch_norm(algo_fwd, algo_bwd, tunables, shape, training, dtype, device, rng):
    check_batch_norm(device, algo_fwd, algo_bwd, tunables, shape, training, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tunables, shape", [(SMALL, (4, 3, 16, 24)), (PRODUCTION, (4, 3, 48, 50))])
@pytest.mark.parametrize("algo_fwd, algo_bwd", BN_ALGOS)
def test_batch_norm_misaligned_planes(algo_fwd, algo_bwd, tunables, shape, dtype, device, rng):
    for training in (True, False):
        check_batch_norm(device, algo_fwd, algo_bwd, tunables, shape, training, dtype, rng, misaligned=True)


def test_batch_norm_auto_picks_v3(device):
    x = device.to_device(np.zeros((2, 3, 4, 4)))
    c = device.to_device(np.ones(3))
    assert fc.select(fc.batch_norm, x, c, c, c, c, backend=device.backend)[0].algo == "batch_norm_fwd_v3_chunks"


# ---------------------------------------------------------------------------------------------- ReLU
RELU_CASES = [(SMALL, (3, 5, 7, 9)), (SMALL, (17,)), (SMALL, (2, 3)), (SMALL, (0, 4, 5, 5)), (SMALL, (1037,))]
RELU_CASES += [(PRODUCTION, (4099,)), (PRODUCTION, (3 * 4096 + 5,)), (PRODUCTION, (2, 64, 96))]


def check_relu(device, algo_fwd, algo_bwd, tunables, shape, dtype, rng, misaligned=False):
    x = rand(rng, shape, dtype)
    x.flat[: min(x.size, 3)] = [np.nan, -0.0, 0.0][: min(x.size, 3)]
    p = EltwiseParams(shape, np.dtype(dtype))
    kw = dict(misaligned=misaligned, dtype=dtype)
    y = run(device, "relu", algo_fwd, tunables, p, x, **kw)
    y_ref = fc.relu(x.astype(F64), backend="numpy")
    assert_close(y, y_ref, "eltwise", dtype, f"{algo_fwd} {shape} {tunables}")
    gy = rand(rng, shape, dtype)
    gx = run(device, "relu_bwd", algo_bwd, tunables, p, gy, y_ref.astype(dtype), **kw)
    gx_ref = fc.relu_backward(gy.astype(F64), y_ref, backend="numpy")
    assert_close(gx, gx_ref, "eltwise", dtype, f"{algo_bwd} {shape} {tunables}")


RELU_ALGOS = list(zip(algos("relu"), algos("relu_bwd")))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tunables, shape", RELU_CASES)
@pytest.mark.parametrize("algo_fwd, algo_bwd", RELU_ALGOS)
def test_relu(algo_fwd, algo_bwd, tunables, shape, dtype, device, rng):
    check_relu(device, algo_fwd, algo_bwd, tunables, shape, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algo_fwd, algo_bwd", RELU_ALGOS)
def test_relu_misaligned(algo_fwd, algo_bwd, dtype, device, rng):
    check_relu(device, algo_fwd, algo_bwd, PRODUCTION, (2 * 4096 + 8,), dtype, rng, misaligned=True)


# ---------------------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("tunables, shape", [(SMALL, (4, 3, 16, 24)), (PRODUCTION, (5, 2, 37, 41))])
@pytest.mark.parametrize("algo_fwd, algo_bwd", BN_ALGOS)
def test_batch_norm_is_bit_identical_run_to_run(algo_fwd, algo_bwd, tunables, shape, device, rng):
    """Two runs (on the emulator under different block and thread orders) give the same bits."""
    x, w, b, rm, rv, gy = bn_inputs(rng, shape, np.float32)
    p = bn_params(shape, True, np.float32)
    runs = [
        (
            run(device, "batch_norm", algo_fwd, tunables, p, x, w, b, rm, rv, seed=seed),
            run(device, "batch_norm_bwd", algo_bwd, tunables, p, gy, x, w, rm, rv, seed=seed),
        )
        for seed in (11, 12)
    ]
    first, second = (np.concatenate([a.ravel() for pair in r for a in pair]) for r in runs)
    assert first.tobytes() == second.tobytes()


def test_batch_norm_v3_refuses_channels_past_32_bit_indices():
    """N * prod(spatial) >= 2^31 per channel: v3's supports() says no (no launch), auto falls back to v1."""
    p = bn_params((2**15, 2, 2**8, 2**8), True, np.float32)
    for op, v1, v3 in (
        ("batch_norm", "batch_norm_fwd_v1", "batch_norm_fwd_v3_chunks"),
        ("batch_norm_bwd", "batch_norm_bwd_v1", "batch_norm_bwd_v3_chunks"),
    ):
        assert not dispatch.implementation(op, "cuda-emu", v3).supports(p)
        assert dispatch.select(op, p, "numpy", "cuda-emu").algo == v1


# ---------------------------------------------------------------------------------------------- pooling
# at the production tunables (256-thread tiles): the ResNet stem (several row and column tiles per plane), small
# planes packed several to a block, a wide plane, dilation with an odd size
POOL_PRODUCTION = [
    PoolCase("stem", (2, 3, 112, 112), dict(kernel_size=3, stride=2, padding=1)),
    PoolCase("planes7", (4, 6, 14, 14), dict(kernel_size=2)),
    PoolCase("wide_s1", (1, 2, 20, 70), dict(kernel_size=3, stride=1, padding=1, ceil_mode=True)),
]
MAX_PRODUCTION = POOL_PRODUCTION + [PoolCase("dilated", (2, 2, 40, 37), dict(kernel_size=3, stride=2, dilation=2))]
AVG_PRODUCTION = POOL_PRODUCTION + [
    PoolCase("excl", (2, 2, 40, 37), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False))
]


def pool_cases(small: list, production: list) -> list:
    cases = [(SMALL, c) for c in small] + [(PRODUCTION, c) for c in production]
    return [pytest.param(t, c, id=f"{t}-{c.id}") for t, c in cases]


def pool_of(case: PoolCase, dtype) -> Any:
    kw = dict(stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=True) | case.kw
    args = [kw[k] for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "count_include_pad")]
    return pool_params("max_pool2d", case.x, *args, np.dtype(dtype))


def pool_data(rng, shape, dtype, ties: bool) -> np.ndarray:
    """Random data, or small integers (many tied maxima) with a NaN."""
    if not ties:
        return rand(rng, shape, dtype)
    x = rng.integers(-2, 3, shape).astype(dtype)
    if x.size:
        x.flat[x.size // 3] = np.nan
    return x


MAX_ALGOS = list(zip(algos("max_pool2d"), algos("max_pool2d_bwd")))
AVG_ALGOS = list(zip(algos("avg_pool2d"), algos("avg_pool2d_bwd")))


@pytest.mark.parametrize("ties", [False, True], ids=["random", "ties_nan"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tunables, case", pool_cases(MAX_POOL_CASES, MAX_PRODUCTION))
@pytest.mark.parametrize("algo_fwd, algo_bwd", MAX_ALGOS)
def test_max_pool(algo_fwd, algo_bwd, tunables, case, dtype, ties, device, rng):
    x, p = pool_data(rng, case.x, dtype, ties), pool_of(case, dtype)
    what = f"{algo_fwd}/{algo_bwd} {case.id} {tunables}"
    kw = {k: v for k, v in case.kw.items() if k != "count_include_pad"}
    y_ref, idx_ref = fc.max_pool2d(x.astype(F64), **kw, return_indices=True, backend="numpy")
    y, idx = run(device, "max_pool2d", algo_fwd, tunables, p, x, True)
    assert_close(y, y_ref, "pool", dtype, what)
    assert idx.dtype == np.int64 and np.array_equal(idx, idx_ref), f"{what}: indices differ"
    y_only, none = run(device, "max_pool2d", algo_fwd, tunables, p, x, False)
    assert none is None and np.array_equal(y_only, y, equal_nan=True)
    gy = rand(rng, y_ref.shape, dtype)
    gx = run(device, "max_pool2d_bwd", algo_bwd, tunables, p, gy, x)
    gx_ref = fc.max_pool2d_backward(gy.astype(F64), x.astype(F64), **kw, backend="numpy")
    assert_close(gx, gx_ref, "pool", dtype, what + " backward")
    v1 = run(device, "max_pool2d_bwd", "max_pool2d_bwd_v1", tunables, p, gy, x)
    assert gx.tobytes() == v1.tobytes(), f"{what}: backward bits differ from max_pool2d_bwd_v1"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tunables, case", pool_cases(AVG_POOL_CASES, AVG_PRODUCTION))
@pytest.mark.parametrize("algo_fwd, algo_bwd", AVG_ALGOS)
def test_avg_pool(algo_fwd, algo_bwd, tunables, case, dtype, device, rng):
    x, p = rand(rng, case.x, dtype), pool_of(case, dtype)
    what = f"{algo_fwd}/{algo_bwd} {case.id} {tunables}"
    y = run(device, "avg_pool2d", algo_fwd, tunables, p, x)
    y_ref = fc.avg_pool2d(x.astype(F64), **case.kw, backend="numpy")
    assert_close(y, y_ref, "pool", dtype, what)
    gy = rand(rng, y_ref.shape, dtype)
    gx = run(device, "avg_pool2d_bwd", algo_bwd, tunables, p, gy)
    gx_ref = fc.avg_pool2d_backward(gy.astype(F64), x.astype(F64), **case.kw, backend="numpy")
    assert_close(gx, gx_ref, "pool", dtype, what + " backward")
    v1 = run(device, "avg_pool2d_bwd", "avg_pool2d_bwd_v1", tunables, p, gy)
    assert gx.tobytes() == v1.tobytes(), f"{what}: backward bits differ from avg_pool2d_bwd_v1"


def test_pool_v3_refuses_what_it_cannot_launch():
    """A window too large for the backward's shared memory: v3 backward says no, auto takes v1."""
    p = pool_of(PoolCase("huge", (1, 1, 300, 300), dict(kernel_size=200, stride=1)), np.float64)
    assert dispatch.implementation("max_pool2d", "cuda-emu", "max_pool2d_fwd_v3_tiles").supports(p)
    for op in ("max_pool2d_bwd", "avg_pool2d_bwd"):
        assert not dispatch.implementation(op, "cuda-emu", op.replace("_bwd", "_bwd_v3_tiles")).supports(p)
        assert dispatch.select(op, p, "numpy", "cuda-emu").algo == op.replace("_bwd", "_bwd_v1")


def test_pool_auto_picks_v3(device):
    x = device.to_device(np.zeros((1, 2, 8, 8)))
    gy = device.to_device(np.zeros((1, 2, 4, 4)))
    b = device.backend
    assert fc.select(fc.max_pool2d, x, 2, backend=b)[0].algo == "max_pool2d_fwd_v3_tiles"
    assert fc.select(fc.max_pool2d_backward, gy, x, 2, backend=b)[0].algo == "max_pool2d_bwd_v3_tiles"
    assert fc.select(fc.avg_pool2d_backward, gy, x, 2, backend=b)[0].algo == "avg_pool2d_bwd_v3_tiles"
