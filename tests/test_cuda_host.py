"""Host side of the "cuda" backend without a GPU: CuPyLauncher builds a module once per (file, tunables) and looks
a kernel function up once, so a launch does no option, digest or tunable work (a stand-in `cupy` module records
what it is asked)."""

import sys
import types

import numpy as np
import pytest

from fastconv.backends.cuda.cupy_launcher import CuPyLauncher, nvrtc_options
from fastconv.backends.cuda.launch import SMALL_TUNABLES, Launch


class _Recorder:
    def __init__(self):
        self.modules, self.lookups, self.launches = [], [], []


@pytest.fixture
def fake_cupy(monkeypatch):
    rec = _Recorder()

    class RawModule:
        def __init__(self, code, options):
            rec.modules.append(options)

        def get_function(self, name):
            rec.lookups.append(name)
            return lambda grid, block, args, shared_mem=0: rec.launches.append((name, grid, block, args, shared_mem))

    class CompileException(Exception):
        pass

    cupy = types.ModuleType("cupy")
    cupy.RawModule = RawModule
    cupy.cuda = types.SimpleNamespace(compiler=types.SimpleNamespace(CompileException=CompileException))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    return rec


def test_launches_reuse_the_module_and_the_function(fake_cupy):
    launcher = CuPyLauncher()
    cfg = Launch((2, 1, 1), (32, 1, 1))
    for _ in range(3):
        launcher.launch("relu.cu", "relu_fwd_v1_f32", cfg, [np.int32(5)])
    assert len(fake_cupy.modules) == 1 and fake_cupy.lookups == ["relu_fwd_v1_f32"]
    assert len(fake_cupy.launches) == 3 and fake_cupy.launches[0][1:4] == ((2, 1, 1), (32, 1, 1), (np.int32(5),))
    assert fake_cupy.modules[0] == nvrtc_options("relu.cu", launcher.tunables("relu.cu"))


def test_other_tunables_get_their_own_module(fake_cupy):
    launcher = CuPyLauncher()
    cfg = Launch((1, 1, 1), (32, 1, 1))
    launcher.launch("relu.cu", "relu_fwd_v1_f32", cfg, [])
    with launcher.override(SMALL_TUNABLES):
        launcher.launch("relu.cu", "relu_fwd_v1_f32", cfg, [])
        launcher.launch("relu.cu", "relu_fwd_v1_f32", cfg, [])
    launcher.launch("relu.cu", "relu_fwd_v1_f32", cfg, [])
    assert len(fake_cupy.modules) == 2  # default tunables, then the small ones; each built once
    assert fake_cupy.lookups == ["relu_fwd_v1_f32"] * 2
    small = f"-DELTWISE_BLOCK={SMALL_TUNABLES['ELTWISE_BLOCK']}"
    assert small in fake_cupy.modules[1] and small not in fake_cupy.modules[0]


def test_overriding_tunables_empties_the_plan_cache():
    """A plan (its supports() answers, the kernels auto chose) made under one set of tunables is not reused under
    another: entering and leaving an override both empty the cache."""
    import fastconv as fc  # noqa: PLC0415
    from fastconv.backends.cuda.emu import LAUNCHER  # noqa: PLC0415

    x, w = np.ones((1, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3), np.float32)
    fc.plan(fc.conv2d, x, w, backend="cuda-emu")
    assert fc.plan_cache_info().size > 0
    with LAUNCHER.override(SMALL_TUNABLES):
        assert fc.plan_cache_info().size == 0
        inside = fc.plan(fc.conv2d, x, w, backend="cuda-emu")
        assert fc.plan(fc.conv2d, x, w, backend="cuda-emu") is inside
    assert fc.plan_cache_info().size == 0
    assert fc.plan(fc.conv2d, x, w, backend="cuda-emu") is not inside
