"""Host build of one kernel file for the emulator, cached on disk.

A preprocessor-only pass (with FCEMU_LISTING, where __global__ and __shared__ become markers) finds the file's
extern "C" entry points, their parameter names and its dynamic shared memory array. A generated translation unit
includes fcemu.h, the .cu, and exports each entry point; the host C++ compiler turns it into a shared library.
Libraries are cached under `cache_dir()`, keyed by a hash of everything that goes into them (sources, headers,
-D tunables, flags, compiler version), so a test run compiles each (file, tunables) once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..loader import headers_digest, kernels_dir

EMU_DIR = Path(__file__).resolve().parent
# -fno-extern-tls-init: `extern __shared__` is an extern thread_local declared in an inline function, which GCC 12
# otherwise reaches through a TLS wrapper that returns null.
# -fvisibility=hidden, -fno-gnu-unique: nothing but the FCEMU_API entry points leaves the library, so builds of one
# file with different tunables can share a process (weak template code and static locals would otherwise merge).
FLAGS = (
    "-std=c++17",
    "-O1",
    "-fPIC",
    "-shared",
    "-fno-strict-aliasing",
    "-fno-extern-tls-init",
    "-fvisibility=hidden",
    "-fvisibility-inlines-hidden",
    "-fno-gnu-unique",
)
_ENTRY = re.compile(
    r'extern\s+"C"\s+__fcemu_global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)'
)
_DYNAMIC = re.compile(
    r"extern\s+__fcemu_shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s*)?"
    r"((?:\w+\s+)*?\w+)\s+(\w+)\s*\[\s*\]"
)  # (type, name) of `extern __shared__ type name[]`


class EmuBuildError(RuntimeError):
    """The host compiler rejected a kernel file; the message holds its log."""


@dataclass(frozen=True)
class Built:
    library: Path
    params: dict[str, tuple[str, ...]]  # entry point -> parameter names


def compiler() -> str | None:
    """The host C++ compiler ($CXX or g++), or None when there is none."""
    return shutil.which(os.environ.get("CXX", "g++"))


@functools.lru_cache(maxsize=1)
def _compiler_id() -> str:
    out = subprocess.run([compiler() or "g++", "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0]


def cache_dir() -> Path:
    """$FASTCONV_CACHE_DIR, else $XDG_CACHE_HOME/fastconv, else ~/.cache/fastconv; libraries go in emu/."""
    root = os.environ.get("FASTCONV_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "fastconv"
    )
    return Path(root) / "emu"


def _defines(defines: dict[str, int]) -> list[str]:
    return [f"-D{name}={value}" for name, value in sorted(defines.items())]


def _run(cmd: list[str], what: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise EmuBuildError(f"{what} failed ({' '.join(cmd)}):\n{done.stderr}")
    return done.stdout


def _listing(source: Path, defines: dict[str, int]) -> tuple[dict[str, tuple[str, ...]], tuple[str, str] | None]:
    """Entry points with their parameter names, and the dynamic shared array (type, name) if any."""
    text = _run(
        [
            compiler() or "g++",
            "-x",
            "c++",
            "-std=c++17",
            "-E",
            "-P",
            "-DFCEMU_LISTING",
            "-include",
            str(EMU_DIR / "fcemu.h"),
            "-I",
            str(kernels_dir()),
            *_defines(defines),
            str(source),
        ],
        f"preprocessing {source.name}",
    )
    params = {}
    for name, plist in _ENTRY.findall(text):
        params[name] = tuple(re.findall(r"\w+", p)[-1] for p in plist.split(",") if p.strip())
    dynamic = {(" ".join(t.split()), n) for t, n in _DYNAMIC.findall(text)}
    if len(dynamic) > 1:
        raise EmuBuildError(
            f"{source.name}: the emulator supports one extern __shared__ array per file, found "
            f"{sorted(n for _, n in dynamic)}"
        )
    if not params:
        raise EmuBuildError(f'{source.name}: no extern "C" __global__ entry points found')
    return params, next(iter(dynamic), None)


def _key(source: Path, defines: dict[str, int]) -> str:
    h = hashlib.sha256()
    emu_headers = [path.read_bytes() for path in sorted(EMU_DIR.glob("*.h"))]
    for part in (
        source.read_bytes(),
        *emu_headers,
        headers_digest().encode(),
        repr(sorted(defines.items())).encode(),
        " ".join(FLAGS).encode(),
        _compiler_id().encode(),
        str(source).encode(),
    ):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:20]


def build(source: Path, defines: dict[str, int]) -> Built:
    """The compiled library of `source` with these -D tunables, from the cache or freshly built."""
    out = cache_dir() / f"{source.stem}-{_key(source, defines)}.so"
    meta = out.with_suffix(".json")
    if out.is_file() and meta.is_file():
        return Built(out, {k: tuple(v) for k, v in json.loads(meta.read_text()).items()})
    params, dynamic = _listing(source, defines)
    smem_type, smem_name = dynamic or ("unsigned char", "fcemu_no_dynamic_smem")
    unit = "\n".join(
        [
            f'#include "{EMU_DIR / "fcemu.h"}"',
            f'#include "{source}"',
            f"FCEMU_DYNAMIC_SMEM({smem_type}, {smem_name})",
            *(f"FCEMU_EXPORT({n})" for n in params),
            "",
        ]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        cpp, lib = Path(tmp, f"{source.stem}.cpp"), Path(tmp, out.name)
        cpp.write_text(unit)
        _run(
            [
                compiler() or "g++",
                *FLAGS,
                "-I",
                str(kernels_dir()),
                *_defines(defines),
                str(cpp),
                "-o",
                str(lib),
                "-ldl",
            ],
            f"compiling {source.name} for the emulator",
        )
        Path(tmp, "meta.json").write_text(json.dumps(params))
        os.replace(lib, out)  # atomic: a concurrent run sees the old state or the whole library
        os.replace(Path(tmp, "meta.json"), meta)
    return Built(out, params)
