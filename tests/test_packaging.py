"""Packaging promises: import needs no compiler, CuPy or GPU; the README's commands are the ones CI runs."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


def test_import_loads_no_backend_module_and_no_compiler():
    out = _run(
        "import sys, fastconv; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numba', 'llvmlite', 'cupy', 'fastconv')))"
    )
    loaded = eval(out)
    assert not [m for m in loaded if not m.startswith("fastconv")], loaded
    assert not [m for m in loaded if m.startswith("fastconv.backends.")], loaded


def test_import_works_when_cupy_is_missing():
    _run(
        "import sys; sys.modules['cupy'] = None; import fastconv, numpy as np; "
        "fastconv.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), backend='numpy')"
    )


def _quick_start() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start\s+```bash\n(.*?)```", readme, re.S)
    assert block, "README has no Quick start bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_quick_start_is_two_commands_and_ci_runs_the_test_one():
    commands = _quick_start()
    assert len(commands) == 2, commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines(), f"CI must run the README's test command {commands[1]!r}"


@pytest.mark.skipif(not (ROOT / "README.md").exists(), reason="run from a source checkout")
def test_cli_demo_runs():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastconv",
            "demo",
            "--shape",
            "1",
            "3",
            "9",
            "7",
            "4",
            "3",
            "--backend",
            "numpy",
            "--repeat",
            "1",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "numpy/reference" in out and "max relative error" in out


def test_first_calls_from_many_threads_all_find_the_backend():
    # the backend module is imported on first use; threads arriving meanwhile must wait for its registrations
    _run("""
import threading, numpy as np, fastconv as fc
barrier, errors = threading.Barrier(8), []
def first_call():
    barrier.wait()
    try:
        fc.max_pool2d(np.ones((1, 1, 4, 4)), 2)
    except Exception as exc:
        errors.append(exc)
threads = [threading.Thread(target=first_call) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
assert not errors, errors
""")
