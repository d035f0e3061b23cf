"""Numba's on-disk cache never serves a kernel compiled from sources that have changed since, even when the change
is in another file than the kernel's own (numba_cpu/cache.py)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = (
    "import numpy as np, fastconv as fc\n"
    "print(fc.relu(np.array([-1.0, 2.0, -3.0, 4.0], np.float32), backend='numba').tolist())\n"
)


def _run(package_root: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    env.pop("NUMBA_CACHE_DIR", None)  # the copy's own __pycache__
    done = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=600, cwd=package_root
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.slow
def test_an_edit_in_a_helper_module_recompiles_the_kernels_that_use_it(tmp_path):
    shutil.copytree(ROOT / "fastconv", tmp_path / "fastconv", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "kernels", tmp_path / "kernels")
    assert _run(tmp_path) == "[0.0, 2.0, 0.0, 4.0]"
    assert _run(tmp_path) == "[0.0, 2.0, 0.0, 4.0]", "the second run loads the cache"
    # relu's kernel is in relu.py; the ReLU itself is simd.tile_relu, an intrinsic of another file: flip it
    simd = tmp_path / "fastconv" / "backends" / "numba_cpu" / "simd.py"
    text = simd.read_text()
    assert text.count('fcmp_ordered("<=", v, zero)') == 1
    simd.write_text(text.replace('fcmp_ordered("<=", v, zero)', 'fcmp_ordered(">=", v, zero)'))
    assert _run(tmp_path) == "[-1.0, 0.0, -3.0, 0.0]", "the edited intrinsic runs, not the cached kernel"


def _kept() -> int:
    from fastconv.backends.numba_cpu import config  # noqa: PLC0415

    return sum(b.nbytes for cache in config._ALL_WORKSPACES for b in cache.values())


def test_workspaces_are_bounded_and_released(monkeypatch):
    """Scratch kept between calls stays within WORKSPACE_BYTES (a larger buffer is the call's own) and
    release_workspaces frees it; results do not change."""
    import numpy as np  # noqa: PLC0415

    import fastconv as fc  # noqa: PLC0415
    from fastconv.backends.numba_cpu import config  # noqa: PLC0415

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 32, 30, 30)).astype(np.float32), rng.standard_normal((32, 32, 3, 3))
    w = w.astype(np.float32)
    expected = fc.conv2d(x, w, padding=1, algo="conv2d_fwd_v7_blocked")
    fc.release_workspaces()
    assert _kept() == 0
    monkeypatch.setattr(config, "WORKSPACE_BYTES", 64 << 10)
    for algo in ("conv2d_fwd_v7_blocked", "conv2d_fwd_v5_rows", "conv2d_fwd_v8_winograd"):
        y = fc.conv2d(x, w, padding=1, algo=algo)
        assert np.allclose(y, expected, rtol=1e-4, atol=1e-4)
        assert _kept() <= 64 << 10
    monkeypatch.undo()
    fc.conv2d(x, w, padding=1, algo="conv2d_fwd_v7_blocked")
    assert _kept() > 64 << 10
    fc.release_workspaces()
    assert _kept() == 0
    assert np.array_equal(fc.conv2d(x, w, padding=1, algo="conv2d_fwd_v7_blocked"), expected)


def test_warmup_runs_the_calls_and_refuses_unknown_names(capsys):
    from fastconv.cli import main  # noqa: PLC0415

    assert main(["warmup", "--ops", "relu,pool", "--dtypes", "float32"]) == 0
    assert "fastconv warmup: 7 calls" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown conv2d"):
        main(["warmup", "--ops", "conv2d"])


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


@pytest.mark.slow
@pytest.mark.skipif(_memory_bytes() < 22 << 30, reason="needs about 18 GB: two float32 arrays of 2^31+ elements")
def test_a_conv_over_more_than_2_31_elements_indexes_correctly():
    """A 1x1 conv on one plane of 46341^2 > 2^31 elements (x and y 8.6 GB each): 32-bit index arithmetic would
    wrap past element 2^31 and write the wrong places."""
    import numpy as np  # noqa: PLC0415

    import fastconv as fc  # noqa: PLC0415

    side = 46341
    x = np.empty((1, 1, side, side), np.float32)
    flat = x.reshape(-1)
    flat[:] = 1.0
    probes = np.array([0, 2**31 - 1, 2**31, 2**31 + 7, flat.size - 1])
    flat[probes] = np.arange(2.0, 2.0 + probes.size, dtype=np.float32)
    w, b = np.full((1, 1, 1, 1), 3.0, np.float32), np.full(1, 0.5, np.float32)
    y = fc.conv2d(x, w, b).reshape(-1)
    assert y.size == flat.size > 2**31
    np.testing.assert_array_equal(y[probes], 3 * flat[probes] + 0.5)
    assert float(y[2**31 + 1]) == 3.5 and float(y[2**31 - 2]) == 3.5
    del x, flat, y
