"""Build check: compile every kernels/*.cu with nvcc for sm_80 and sm_90; any error or warning fails.

    python -m fastconv.backends.cuda.check [--nvcc PATH] [--arch 80 --arch 90]
    python -m fastconv.backends.cuda.check --sass [--floors] [--report PATH] [--cuobjdump PATH]

Warnings are errors (-Werror all-warnings, including ptxas register spills), so a kernel that only compiled under
the host emulator, or that spills on either architecture, fails here. CI (.ci/run) runs this before the tests.
With --sass, instead of the build check: the static report of sass.py (sm_90 registers, spills, shared memory,
occupancy and SASS FFMA share per entry point, written to bench_results/cuda_static.md), failing on any spill and,
with --floors, on a kernel family below its FFMA floor.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .launch import TUNABLES
from .loader import cu_files, kernels_dir


def tunable_defines(source: Path) -> list[str]:
    """The production tunables of a kernel file as nvcc -D options."""
    return [f"-D{k}={v}" for k, v in sorted(TUNABLES.get(source.name, {}).items())]


def nvcc_command(nvcc: str, source: Path, out: Path, archs: list[str]) -> list[str]:
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    defines = tunable_defines(source)
    return [
        nvcc,
        "-std=c++17",
        "-c",
        *gencode,
        "-Werror",
        "all-warnings",
        "-Xptxas",
        "-warn-spills",
        "-Xcompiler",
        "-Wall",
        "-I",
        str(kernels_dir()),
        *defines,
        str(source),
        "-o",
        str(out),
    ]


def find_cuobjdump(nvcc: str | None = None) -> str | None:
    """cuobjdump from $CUOBJDUMP, PATH, nvcc's folder, or the nvidia-cuda-cuobjdump wheel."""
    candidates = [os.environ.get("CUOBJDUMP"), shutil.which("cuobjdump")]
    if nvcc:
        candidates.append(str(Path(nvcc).resolve().parent / "cuobjdump"))
    try:
        import nvidia  # the namespace package of NVIDIA's pip wheels

        candidates += sorted(f for p in nvidia.__path__ for f in glob.glob(os.path.join(p, "cu*", "bin", "cuobjdump")))
    except ImportError:
        pass
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def check(nvcc: str, archs: list[str]) -> int:
    """Compile every kernel file; print one line per file and the logs of failures. Returns the failure count."""
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:

        def one(src: Path) -> tuple[Path, subprocess.CompletedProcess, float]:
            start = time.perf_counter()
            done = subprocess.run(
                nvcc_command(nvcc, src, Path(tmp, src.stem + ".o"), archs), capture_output=True, text=True
            )
            return src, done, time.perf_counter() - start

        failures = 0
        for src, done, seconds in pool.map(one, cu_files()):
            log = (done.stdout + done.stderr).strip()
            ok = done.returncode == 0 and not log
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {src.name} (sm_{', sm_'.join(archs)}, {seconds:.1f} s)")
            if log:
                print(log)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastconv.backends.cuda.check", description=__doc__.split("\n")[0])
    parser.add_argument("--nvcc", default=os.environ.get("NVCC") or shutil.which("nvcc"), help="nvcc to use")
    parser.add_argument("--arch", action="append", help="compute capability, e.g. 80 (default: 80 and 90)")
    parser.add_argument("--sass", action="store_true", help="the static sm_90 report of sass.py instead")
    parser.add_argument("--floors", action="store_true", help="with --sass: also fail below sass.FLOORS")
    parser.add_argument("--report", type=Path, default=Path("bench_results/cuda_static.md"), help="with --sass")
    parser.add_argument("--cuobjdump", default=None, help="with --sass (default: $CUOBJDUMP, PATH, the pip wheel)")
    args = parser.parse_args(argv)
    if args.sass:
        if args.arch:
            parser.error("--sass reports sm_90 only: drop --arch")
        from . import sass  # imports this module

        return sass.main(args.nvcc, args.cuobjdump or find_cuobjdump(args.nvcc), args.report, args.floors)
    if args.floors:
        parser.error("--floors needs --sass")
    if not args.nvcc:
        print("nvcc not found: install the CUDA toolkit or pass --nvcc", file=sys.stderr)
        return 2
    failures = check(args.nvcc, args.arch or ["80", "90"])
    total = len(cu_files())
    print(f"nvcc build check: {total - failures} of {total} kernel files compiled without warnings")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
