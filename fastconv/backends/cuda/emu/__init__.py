"""The "cuda-emu" backend: the kernels of kernels/*.cu compiled by the host C++ compiler and run on the CPU, NumPy
in and NumPy out, through the same launch code as "cuda" (only the Launcher differs). Slow; it exists so that CI
and machines without a GPU run every CUDA kernel. Used only when named (backend="cuda-emu")."""

from __future__ import annotations

import sys

from ....dispatch import set_unavailable_probe
from ..ops import register_all
from .build import compiler
from .launcher import EmuError, EmuLauncher

__all__ = ["LAUNCHER", "EmuError", "EmuLauncher"]

LAUNCHER = EmuLauncher()


def probe() -> str | None:
    if not sys.platform.startswith("linux"):
        return f"the CUDA emulator needs Linux (ucontext fibers, guard pages); this is {sys.platform}"
    if compiler() is None:
        return "no host C++ compiler found (set $CXX or install g++)"
    return None


register_all("cuda-emu", LAUNCHER)
set_unavailable_probe("cuda-emu", probe)
