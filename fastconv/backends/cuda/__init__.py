"""The "cuda" backend: the CUDA C kernels of kernels/*.cu on CuPy arrays, launched by CuPyLauncher.

Importing this module needs neither CuPy nor a GPU: CuPy is imported when the backend is probed or first used.
The same launch code also serves "cuda-emu" (fastconv.backends.cuda.emu), which runs the kernels on the CPU.
"""

from __future__ import annotations

from ...dispatch import set_unavailable_probe
from .cupy_launcher import CuPyLauncher, probe
from .ops import register_all

LAUNCHER = CuPyLauncher()
register_all("cuda", LAUNCHER)
set_unavailable_probe("cuda", probe)
