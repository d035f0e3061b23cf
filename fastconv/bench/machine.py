"""The machine fingerprint stored with every result file: CPU, ISA, caches, memory, GPUs, software, git sha.

Everything here is read, never guessed: a value that cannot be found is None (null in the JSON).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

import fastconv

# The ISA extensions that matter for these kernels (x86 /proc/cpuinfo "flags", Arm "Features").
ISA_OF_INTEREST = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512cd",
    "avx512bw",
    "avx512dq",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "asimdhp",
    "sve",
    "sve2",
    "bf16",
    "i8mm",
)
ENV_OF_INTEREST = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMBA_THREADING_LAYER",
    "CUDA_VISIBLE_DEVICES",
    "CUPY_TF32",
)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cpuinfo() -> dict[str, str]:
    """The first processor's entries of /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in info:
            info[key.strip()] = value.strip()
    return info


def _size_bytes(text: str) -> int | None:
    m = re.fullmatch(r"(\d+)\s*([KMG]?)B?", text.strip(), re.I)
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2).upper()] if m else None


def cache_bytes() -> dict[int, int]:
    """Data/unified cache size per level of cpu0, from sysfs (empty elsewhere)."""
    sizes: dict[int, int] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            size = _size_bytes((index / "size").read_text())
            if size:
                sizes[int((index / "level").read_text())] = size
        except (OSError, ValueError):
            continue
    return sizes


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def cpu_info() -> dict[str, Any]:
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    caches = cache_bytes()
    ident = [f"{k} {info[k]}" for k in ("vendor_id", "cpu family", "model", "stepping") if k in info]
    return {
        "model": info.get("model name") or platform.processor() or platform.machine(),
        "id": ", ".join(ident),
        "logical_cores": os.cpu_count() or 1,
        "usable_cores": usable_cores(),
        "isa": [f for f in ISA_OF_INTEREST if f in flags],
        "l2_bytes": caches.get(2),
        "l3_bytes": caches.get(3),
    }


def gpu_info() -> list[dict[str, Any]]:
    """Each CUDA device CuPy can see (empty without CuPy or a device)."""
    if importlib.util.find_spec("cupy") is None:
        return []
    try:
        import cupy  # noqa: PLC0415

        runtime = cupy.cuda.runtime
        count = runtime.getDeviceCount()
        driver, rt = runtime.driverGetVersion(), runtime.runtimeGetVersion()
    except Exception:  # CuPy present but no driver or no device
        return []
    gpus = []
    for i in range(count):
        props = runtime.getDeviceProperties(i)
        name = props["name"]
        gpus.append(
            {
                "name": name.decode() if isinstance(name, bytes) else str(name),
                "memory_bytes": int(props["totalGlobalMem"]),
                "compute_capability": f"{props['major']}.{props['minor']}",
                "driver": _nvidia_smi_driver() or _cuda_version(driver),
                "cuda_runtime": _cuda_version(rt),
            }
        )
    return gpus


def _cuda_version(v: int) -> str:
    return f"{v // 1000}.{v % 1000 // 10}"


def _nvidia_smi_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out.strip() else None


def _version(dist_prefix: str) -> str | None:
    """Installed version of a distribution, or of the first one whose name starts with the prefix + '-'
    (cupy ships as cupy-cuda12x, cupy-cuda13x ...)."""
    try:
        return importlib.metadata.version(dist_prefix)
    except importlib.metadata.PackageNotFoundError:
        pass
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith(dist_prefix + "-"):
            return f"{dist.version} ({name})"
    return None


def _blas() -> str | None:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # older NumPy without mode="dicts"
        return None


def git_revision() -> tuple[str | None, bool | None]:
    """(sha, dirty) of the fastconv source tree: the package's own checkout, else the current directory when
    it is a fastconv checkout (an installed copy run from its source tree, as the README's quick start does)."""
    here = Path(fastconv.__file__).resolve().parent.parent
    for root in (here, Path.cwd()):
        pyproject = root / "pyproject.toml"
        if not pyproject.is_file() or 'name = "fastconv"' not in pyproject.read_text():
            continue
        try:
            sha = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=20, check=True
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        return sha, bool(dirty)
    return None, None


def software() -> dict[str, Any]:
    sha, dirty = git_revision()
    return {
        "fastconv": fastconv.__version__,
        "git_sha": sha,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas(),
        "numba": _version("numba"),
        "cupy": _version("cupy"),
        "torch": _version("torch"),
    }


def default_label(cpu: dict[str, Any], gpus: list[dict[str, Any]]) -> str:
    """A short machine name for table columns: the CPU model without trademarks, the usable cores, the GPU."""
    model = re.sub(r"\((R|TM|tm|r)\)|CPU|@.*$|\s+Processor", " ", cpu["model"])
    label = f"{' '.join(model.split())} {cpu['usable_cores']}c"
    return label + (f" + {gpus[0]['name']}" if gpus else "")


def fingerprint(label: str | None = None) -> dict[str, Any]:
    cpu, gpus = cpu_info(), gpu_info()
    return {
        "label": label or default_label(cpu, gpus),
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu,
        "memory_bytes": _memory_bytes(),
        "gpus": gpus,
        "env": {k: os.environ.get(k) for k in ENV_OF_INTEREST},
    }
