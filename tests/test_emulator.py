"""The CUDA emulator itself: shared memory and barriers, shuffles, atomics, seeded orders, and the errors that stop
a misbehaving kernel (the probe kernels in tests/emu/probes.cu, some deliberately wrong)."""

import re
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_close

import fastconv as fc

pytestmark = pytest.mark.skipif(
    not fc.backends()["cuda-emu"].available, reason=f"cuda-emu: {fc.backends()['cuda-emu'].reason}"
)
PROBES = str(Path(__file__).parent / "emu" / "probes.cu")


def emu(**kw):
    from fastconv.backends.cuda.emu import EmuLauncher

    return EmuLauncher(**kw)


def one_block(threads, shared=0, blocks=1):
    from fastconv.backends.cuda.launch import Launch

    return Launch((blocks, 1, 1), (threads, 1, 1), shared)


def reversed_blocks(x, threads):
    return x.reshape(-1, threads)[:, ::-1].ravel()


def test_barrier_makes_shared_memory_tiling_work():
    x = np.arange(4 * 64, dtype=np.float32)
    for kernel, shared in (("reverse_synced", 0), ("reverse_dynamic", 64 * 4)):
        y = fc.arrays.empty(x.shape, np.float32)
        emu().launch(PROBES, kernel, one_block(64, shared, blocks=4), [x, y])
        np.testing.assert_array_equal(y, reversed_blocks(x, 64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_missing_barrier_gives_a_wrong_answer(seed):
    x = np.arange(4 * 64, dtype=np.float32)
    y = np.zeros_like(x)
    emu(seed=seed).launch(PROBES, "reverse_unsynced", one_block(64, blocks=4), [x, y])
    wrong = y != reversed_blocks(x, 64)
    assert wrong.sum() > 16, f"only {wrong.sum()} of {x.size} elements differ without the barrier"


def test_cp_async_lands_at_the_wait_and_zero_fills():
    x = np.arange(1, 4 * 64 + 1, dtype=np.float32)
    want = reversed_blocks(np.where(np.arange(x.size) % 2 == 0, x, 0), 64)
    y = fc.arrays.empty(x.shape, np.float32)
    emu().launch(PROBES, "reverse_async", one_block(64, blocks=4), [x, y, np.int32(0)])
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("waits, wrong", [(1, "second half"), (2, "all")])
def test_a_missing_cp_async_wait_gives_a_wrong_answer(waits, wrong):
    """Copies not covered by a wait_group have not landed: their slots still hold the block-start poison (NaN)."""
    x = np.arange(1, 4 * 64 + 1, dtype=np.float32)
    y = np.zeros_like(x)
    emu().launch(PROBES, "reverse_async", one_block(64, blocks=4), [x, y, np.int32(waits)])
    stale = np.isnan(y).reshape(4, 64)
    # thread t reads slot 63 - t: the slots of the second half (32..63) are read by threads 0..31
    assert stale[:, :32].all()
    assert stale[:, 32:].all() == (wrong == "all") and stale[:, 32:].any() == (wrong == "all")


@pytest.mark.parametrize("kind, k", [("tf32", 8), ("bf16", 16)])
def test_mma_follows_the_ptx_fragment_layout(kind, k, rng):
    """One mma.sync: D = A.B + C on operands rounded as fastconv.precision rounds them; a swapped fragment is wrong."""
    from fastconv.precision import rounded

    a, b, c = (rng.standard_normal(s).astype(np.float32) for s in ((16, k), (k, 8), (16, 8)))
    want = rounded(a, kind).astype(np.float64) @ rounded(b, kind).astype(np.float64) + c
    for swap in (0, 1):
        d = fc.arrays.empty((16, 8), np.float32)
        emu().launch(PROBES, f"mma_{kind}", one_block(32), [a, b, c, d, np.int32(swap)])
        if swap:
            assert np.abs(d - want).max() > 0.1
        else:
            np.testing.assert_allclose(d, want, rtol=1e-5, atol=1e-5)


def test_mma_needs_the_whole_warp():
    from fastconv.backends.cuda.emu import EmuError

    a, b, c = np.zeros((16, 8), np.float32), np.zeros((8, 8), np.float32), np.zeros((16, 8), np.float32)
    with pytest.raises(EmuError, match="fewer than 32 threads"):
        emu().launch(PROBES, "mma_tf32", one_block(16), [a, b, c, np.zeros((16, 8), np.float32), np.int32(0)])


def test_thread_order_is_shuffled_and_seeded():
    def order(seed):
        counter, out = np.zeros(1, np.int32), np.zeros(3 * 64, np.int32)
        emu(seed=seed).launch(PROBES, "run_order", one_block(64, blocks=3), [counter, out])
        assert sorted(out) == list(range(out.size))
        return out

    a, b = order(5), order(6)
    assert np.array_equal(a, order(5))
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, np.arange(a.size)), "threads ran in index order"


def test_block_sum_with_shuffles_and_shared_memory(rng):
    x = rng.standard_normal(5 * 96)
    sums = fc.arrays.empty((5,), np.float64)
    emu().launch(PROBES, "block_sums", one_block(96, blocks=5), [x, sums])
    np.testing.assert_allclose(sums, x.reshape(5, 96).sum(axis=1), rtol=1e-13)


def test_shuffle_semantics():
    out = np.zeros(64 * 4, np.int32)
    emu().launch(PROBES, "shuffles", one_block(64), [out])
    t = np.arange(64)
    lane, v = t % 32, 100 * (t // 32) + t % 32
    base = v - lane
    expected = np.stack(
        [np.where(lane + 3 < 32, v + 3, v), base + (lane ^ 5), np.where(lane >= 2, v - 2, v), base + (lane & ~7) + 7],
        axis=1,
    )
    np.testing.assert_array_equal(out.reshape(64, 4), expected)


def test_atomics_add_every_contribution(rng):
    x = rng.standard_normal(3 * 64).astype(np.float32)
    total, total64 = np.zeros(1, np.float32), np.zeros(1)
    emu().launch(PROBES, "atomic_total", one_block(64, blocks=3), [x, total, total64])
    assert total64[0] == pytest.approx(x.astype(np.float64).sum(), rel=1e-12)
    assert total[0] == pytest.approx(x.sum(), rel=1e-5)


@pytest.mark.parametrize(
    "kernel, args, threads, message",
    [
        ("early_exit_then_barrier", [np.int32(10)], 64, r"54 threads exited while 10 wait at __syncthreads\(\)"),
        ("divergent_barriers", [], 64, r"threads wait at different __syncthreads\(\) \(.*probes.cu:\d+ and"),
        ("shuffle_with_exited_lanes", [np.zeros(64, np.int32)], 64, "deadlock: warp 0 waits in a shuffle"),
        ("write_const", [np.zeros(64, np.float32)], 64, r"write to const argument x\[\d+\]"),
        ("divide", [np.zeros(4, np.int32), np.zeros(4, np.int32)], 4, "integer division by zero"),
        ("dynamic_overflow", [np.int32(1)], 64, "wrote dynamic shared memory at byte 256, beyond the 256 bytes"),
    ],
)
def test_misbehaving_kernels_stop_with_a_clear_error(kernel, args, threads, message):
    from fastconv.backends.cuda.emu import EmuError

    with pytest.raises(EmuError, match=message):
        emu().launch(PROBES, kernel, one_block(threads, shared=256), args)


@pytest.mark.parametrize("guard, offset, element", [("end", 64, 64), ("end", 1000, 1000), ("start", -1, -1)])
def test_out_of_bounds_reads_are_caught(guard, offset, element):
    from fastconv.backends.cuda.emu import EmuError

    x, y = np.zeros(64, np.float32), np.zeros(1, np.float32)
    with pytest.raises(EmuError, match=re.escape(f"out-of-bounds read x[{element}] (x has 64 float32 elements")):
        emu(guard=guard).launch(PROBES, "read_at", one_block(1), [x, y, np.int64(offset)])


def test_out_of_bounds_write_of_a_real_kernel_is_caught():
    """relu_fwd_v1 told that the array is one element longer than it is."""
    from fastconv.backends.cuda.emu import EmuError

    x, y = np.ones(100, np.float32), np.zeros(100, np.float32)
    with pytest.raises(EmuError, match=r"out-of-bounds (read x|write y)\[100\]"):
        emu(guard="end").launch("relu.cu", "relu_fwd_v1_f32", one_block(32, blocks=4), [x, y, np.int64(101)])


def test_launch_is_checked_against_the_signature_and_the_limits():
    from fastconv.backends.cuda.emu import EmuError

    x, y = np.zeros(64, np.float32), np.zeros(64, np.float32)
    with pytest.raises(TypeError, match="argument 'n' must be i8, got i4"):
        emu().launch("relu.cu", "relu_fwd_v1_f32", one_block(32), [x, y, np.int32(64)])
    with pytest.raises(TypeError, match=r"argument 'x' must be const f4\*, got f8\*"):
        emu().launch("relu.cu", "relu_fwd_v1_f32", one_block(32), [x.astype(np.float64), y, np.int64(64)])
    with pytest.raises(ValueError, match="no entry point 'relu_fwd_v9_f32'"):
        emu().launch("relu.cu", "relu_fwd_v9_f32", one_block(32), [x, y, np.int64(64)])
    with pytest.raises(EmuError, match="more than 1024 threads per block"):
        emu().launch("relu.cu", "relu_fwd_v1_f32", one_block(2048), [x, y, np.int64(64)])
    with pytest.raises(EmuError, match="48 KiB"):
        emu().launch("relu.cu", "relu_fwd_v1_f32", one_block(32, shared=49153), [x, y, np.int64(64)])


def test_libraries_are_cached_on_disk(tmp_path, monkeypatch):
    from fastconv.backends.cuda.emu import build
    from fastconv.backends.cuda.loader import source_path

    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    first = build.build(source_path("relu.cu"), {"ELTWISE_BLOCK": 64})
    stamp = first.library.stat().st_mtime_ns
    again = build.build(source_path("relu.cu"), {"ELTWISE_BLOCK": 64})
    assert again.library == first.library and again.library.stat().st_mtime_ns == stamp
    other = build.build(source_path("relu.cu"), {"ELTWISE_BLOCK": 32})
    assert other.library != first.library
    assert first.params["relu_bwd_v1_f64"] == ("gy", "y", "gx", "n")


def test_python_tunables_match_the_defaults_in_the_sources():
    """Each .cu repeats its tunables' defaults under #ifndef (for standalone nvcc); they must agree with launch.py."""
    from fastconv.backends.cuda.launch import SMALL_TUNABLES, TUNABLES
    from fastconv.backends.cuda.loader import cu_files

    files = {f.name: f.read_text() for f in cu_files()}
    assert set(files) == set(TUNABLES) - {"launch"}
    for name, text in files.items():
        in_source = {k: int(v) for k, v in re.findall(r"#ifndef (\w+)\n#define \1 (\d+)", text)}
        assert in_source == TUNABLES[name], name
    assert set(SMALL_TUNABLES) == {k for t in TUNABLES.values() for k in t}


def test_tunables_the_kernels_cannot_use_are_rejected():
    with pytest.raises(ValueError, match="V3_BM % V3_TM"):
        with emu().override({"V3_BM": 10, "V3_TM": 4}):
            pass
    with pytest.raises(ValueError, match="BN_BLOCK % 32"):
        with emu().override({"BN_BLOCK": 48}):
            pass
    with pytest.raises(ValueError, match="unknown tunables"):
        with emu().override({"TILE": 4}):
            pass


def test_builds_with_different_tunables_coexist_in_one_process(rng):
    # Each tunables set is its own library; template code and static shared arrays must not be shared between them
    # (they were, through weak and GNU-unique symbols, before the libraries were built with hidden visibility).
    from fastconv.backends.cuda.emu import LAUNCHER
    from fastconv.backends.cuda.launch import SMALL_TUNABLES

    x, w = rng.standard_normal((2, 6, 7, 9)).astype(np.float32), rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    kw = dict(stride=(2, 1), padding=((1, 0), (0, 1)), groups=2, backend="cuda-emu", algo="conv2d_fwd_v3_implicit_gemm")
    ref = fc.conv2d(x.astype(np.float64), w.astype(np.float64), **{**kw, "backend": "numpy", "algo": "auto"})
    with LAUNCHER.override(SMALL_TUNABLES):
        small = fc.conv2d(x, w, **kw)
    default = fc.conv2d(x, w, **kw)
    assert_close(small, ref, "conv", np.float32, "small tunables")
    assert_close(default, ref, "conv", np.float32, "default tunables after a small-tunables build")
