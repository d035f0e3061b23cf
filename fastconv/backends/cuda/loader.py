"""Where the CUDA C sources are, and what a compiled module depends on.

The kernels live in `fastconv/_kernels` inside an installed wheel (pyproject force-includes the source tree's
`kernels/` there) and in `kernels/` at the root of a source checkout.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[2]  # .../fastconv


@functools.lru_cache(maxsize=1)
def kernels_dir() -> Path:
    """The folder holding the .cu files and their shared headers."""
    for candidate in (_PACKAGE / "_kernels", _PACKAGE.parent / "kernels"):
        if (candidate / "common.cuh").is_file():
            return candidate
    raise FileNotFoundError(
        f"fastconv: no CUDA kernel sources found in {_PACKAGE / '_kernels'} or {_PACKAGE.parent / 'kernels'}"
    )


def source_path(file: str | Path) -> Path:
    """A kernel file by name ('relu.cu', in kernels_dir) or by path (e.g. a test kernel)."""
    path = Path(file)
    return path if path.is_absolute() else kernels_dir() / path


@functools.lru_cache(maxsize=1)
def headers_digest() -> str:
    """Hash of every shared header: part of each module's cache key, since a .cu includes them. Read once per
    process (the headers of an installed package do not change under it)."""
    h = hashlib.sha256()
    for header in sorted(kernels_dir().glob("*.cuh")):
        h.update(header.name.encode() + b"\0" + header.read_bytes())
    return h.hexdigest()[:16]


def cu_files() -> list[Path]:
    """Every kernel source file."""
    return sorted(kernels_dir().glob("*.cu"))
