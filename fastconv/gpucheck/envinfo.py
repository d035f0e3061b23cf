"""The environment facts of a gpu-check run: GPUs (nvidia-smi and CuPy), driver, CUDA runtime, CuPy, torch and its
CUDA/cuDNN, Numba, nvcc and compute-sanitizer, the host CPU. Each probe that fails records why, never raises.

    python -m fastconv.gpucheck.envinfo --out env.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..bench import machine
from .steps import find_sanitizer


def _command(argv: list[str], timeout: float = 15.0) -> str | None:
    """The stripped output of a command, or None when it is missing or fails."""
    if shutil.which(argv[0]) is None and not Path(argv[0]).is_file():
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"failed: {exc}"
    if done.returncode:
        return f"failed ({done.returncode}): {done.stderr.strip()[:300]}"
    return (done.stdout or done.stderr).strip()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cupy() -> dict[str, Any]:
    try:
        import cupy  # noqa: PLC0415
    except ImportError as exc:
        return {"error": f"not importable: {exc}"}
    out: dict[str, Any] = {"version": cupy.__version__}
    try:
        rt = cupy.cuda.runtime
        out["runtime"], out["driver"] = rt.runtimeGetVersion(), rt.driverGetVersion()
        out["devices"] = []
        for i in range(rt.getDeviceCount()):
            p = rt.getDeviceProperties(i)
            name = p["name"].decode() if isinstance(p["name"], bytes) else str(p["name"])
            out["devices"].append(
                {
                    "name": name,
                    "compute_capability": f"{p['major']}.{p['minor']}",
                    "sms": p["multiProcessorCount"],
                    "memory_bytes": p["totalGlobalMem"],
                    "l2_bytes": p.get("l2CacheSize"),
                    "shared_per_block_optin": p.get("sharedMemPerBlockOptin"),
                }
            )
    except Exception as exc:  # no driver or device
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def _torch_build() -> dict[str, Any] | None:
    """torch's version and CUDA version read from torch/version.py without importing torch (seconds)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    found: dict[str, Any] = {}
    path = Path(next(iter(spec.submodule_search_locations)), "version.py")
    for line in path.read_text().splitlines() if path.is_file() else []:
        m = re.match(r"(__version__|cuda)\s*(?::[^=]*)?=\s*['\"]?([^'\"]*)", line)
        if m:
            found[m[1].strip("_")] = m[2].strip()
    return found if "version" in found else None


def _torch() -> dict[str, Any]:
    """torch's versions; a CPU-only build (no CUDA version) is not imported: it has no cuDNN and no device."""
    build = _torch_build()
    if build is not None and build.get("cuda") in (None, "None"):
        return {"version": build["version"], "cuda": None, "cudnn": None, "cuda_available": False}
    try:
        import torch  # noqa: PLC0415
    except ImportError as exc:
        return {"error": f"not importable: {exc}"}
    out: dict[str, Any] = {"version": torch.__version__, "cuda": torch.version.cuda}
    try:
        out["cudnn"] = torch.backends.cudnn.version()
        out["cuda_available"] = torch.cuda.is_available()
        if out["cuda_available"]:
            out["device"] = torch.cuda.get_device_name(0)
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def facts() -> dict[str, Any]:
    sanitizer = find_sanitizer()
    smi = "nvidia-smi"
    query = "--query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit,pstate"
    return {
        "nvidia_smi_L": _command([smi, "-L"]),
        "nvidia_smi_query": _command([smi, query, "--format=csv"]),
        "cupy": _cupy(),
        "torch": _torch(),
        "numba": _version("numba"),
        "numpy": _version("numpy"),
        "pytest": _version("pytest"),
        "python": platform.python_version(),
        "executable": sys.executable,
        "nvcc": _command(["nvcc", "--version"]),
        "compute_sanitizer": {"path": sanitizer, "version": sanitizer and _command([sanitizer, "--version"])},
        "machine": machine.fingerprint(),
        "software": machine.software(),
        "env": {k: os.environ.get(k) for k in ("CUDA_HOME", "CUDA_PATH", "PATH", "PYTHONPATH")},
    }


def lines(f: dict[str, Any]) -> list[str]:
    """The facts in a few lines, as the run prints them and summary.md shows them."""
    cupy, torch = f["cupy"], f["torch"]
    gpus = ", ".join(f"{d['name']} (sm {d['compute_capability']}, {d['sms']} SMs)" for d in cupy.get("devices", []))
    cuda = cupy.get("error") or f"CUDA runtime {cupy.get('runtime')}, driver {cupy.get('driver')}"
    san = f["compute_sanitizer"]
    san_version = (san["version"] or "").strip().splitlines()
    cpu, sw = f["machine"]["cpu"], f["software"]
    torch_error = f"; {torch['error']}" if "error" in torch else ""
    return [
        f"GPUs (nvidia-smi -L): {f['nvidia_smi_L'] or 'nvidia-smi not found'}",
        f"GPUs (CuPy): {gpus or 'none'}; {cuda}",
        f"CuPy {cupy.get('version', '-')}; torch {torch.get('version', '-')} (CUDA {torch.get('cuda')}, cuDNN "
        f"{torch.get('cudnn')}, device: {torch.get('device', 'none')}){torch_error}",
        f"Numba {f['numba']}, NumPy {f['numpy']}, pytest {f['pytest']}, Python {f['python']}",
        f"compute-sanitizer: {san['path']}, {san_version[-1]}" if san["path"] else "compute-sanitizer: not found",
        f"host: {cpu['model']}, {cpu['usable_cores']} usable cores; fastconv {sw['fastconv']} git {sw['git_sha']}"
        + (" (dirty)" if sw["git_dirty"] else ""),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastconv.gpucheck.envinfo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    f = facts()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(f, indent=1, default=str) + "\n")
    print("\n".join(lines(f)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
