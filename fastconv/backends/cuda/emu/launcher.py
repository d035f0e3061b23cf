"""EmuLauncher: runs the kernels of kernels/*.cu on the CPU, with NumPy arrays standing in for device memory.

Each launch copies the array arguments into guarded buffers of the runtime (fcemu_runtime.h), runs the grid and
copies the non-const ones back. Before that it checks the arguments against the entry point's C signature, which a
GPU launch would not: a wrong scalar type there silently reads garbage.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..launch import Launch, Launcher
from ..loader import source_path
from .build import Built, build

_CODES = {
    np.dtype(t): f"{np.dtype(t).kind}{np.dtype(t).itemsize}"
    for t in (np.float32, np.float64, np.int32, np.int64, np.uint32, np.uint64)
}
_ERRORS = {
    1: "invalid launch",
    2: "bad memory access",
    3: "fault",
    4: "barrier error",
    5: "warp shuffle error",
    6: "shared memory overflow",
}


_LOCK = threading.Lock()  # a library's buffers and state are global to it: one launch at a time, whichever launcher


class EmuError(RuntimeError):
    """A kernel misbehaved under the emulator (out-of-bounds access, barrier divergence, bad launch ...)."""


class _Config(ctypes.Structure):
    _fields_ = [
        ("grid", ctypes.c_uint * 3),
        ("block", ctypes.c_uint * 3),
        ("shared_bytes", ctypes.c_ulonglong),
        ("seed", ctypes.c_ulonglong),
        ("flush_denormals", ctypes.c_ulonglong),
    ]


class _Error(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_int),
        ("arg", ctypes.c_int),
        ("write", ctypes.c_int),
        ("offset", ctypes.c_longlong),
        ("block", ctypes.c_uint * 3),
        ("thread", ctypes.c_uint * 3),
        ("text", ctypes.c_char * 640),
    ]


def _code(arg: Any) -> str:
    """The C type of an argument, spelled as fcemu::type_code spells a parameter."""
    if isinstance(arg, np.ndarray):
        return f"{_CODES.get(arg.dtype, str(arg.dtype))}*"
    if isinstance(arg, np.generic) and arg.dtype in _CODES:
        return _CODES[arg.dtype]
    return type(arg).__name__


class EmuLauncher(Launcher):
    """Compiles each kernel file with the host C++ compiler (cached) and runs launches on the CPU.

    `seed` fixes the thread and block orders and the guard sides; launch i of this launcher uses (seed, i).
    `guard` puts each buffer flush against the guard page after it ('end': catches overruns to the byte), before it
    ('start': catches underruns) or either, drawn per buffer and launch ('random', the default).
    """

    kind = "numpy"

    def __init__(self, seed: int = 0, guard: str = "random") -> None:
        super().__init__()
        if guard not in ("random", "start", "end"):
            raise ValueError(f"EmuLauncher: 'guard' must be 'random', 'start' or 'end', got {guard!r}")
        self.seed, self.guard = seed, guard
        self.launches = 0
        self._libraries: dict[Path, ctypes.CDLL] = {}

    def module(self, file: str | Path) -> tuple[Built, ctypes.CDLL]:
        """The compiled library of `file` with this launcher's tunables (built or taken from the cache)."""
        built = build(source_path(file), self.tunables(str(file)))
        lib = self._libraries.get(built.library)
        if lib is None:
            lib = ctypes.CDLL(str(built.library))
            lib.fcemu_attach(ctypes.c_void_p(lib._handle))
            lib.fcemu_buffer.restype = ctypes.c_void_p
            lib.fcemu_buffer.argtypes = [ctypes.c_ulonglong, ctypes.c_int, ctypes.c_int]
            lib.fcemu_error.restype = ctypes.POINTER(_Error)
            self._libraries[built.library] = lib
        return built, lib

    def launch(self, file: str | Path, kernel: str, cfg: Launch, args: Sequence[Any]) -> None:
        built, lib = self.module(file)
        if kernel not in built.params:
            raise ValueError(f"{Path(file).name} has no entry point {kernel!r}; it has {', '.join(built.params)}")
        signature_fn = getattr(lib, f"fcemu_signature_{kernel}")
        signature_fn.restype = ctypes.c_char_p
        expected = signature_fn().decode().split(",") if built.params[kernel] else []
        self._check_args(kernel, built.params[kernel], expected, args)
        with _LOCK:
            seed, self.launches = (self.seed << 32) + self.launches, self.launches + 1
            self._run(lib, kernel, built.params[kernel], expected, cfg, args, seed)

    @staticmethod
    def _check_args(kernel: str, names: tuple[str, ...], expected: list[str], args: Sequence[Any]) -> None:
        if len(args) != len(expected):
            raise TypeError(f"{kernel}: takes {len(expected)} arguments ({', '.join(names)}), got {len(args)}")
        for name, want, arg in zip(names, expected, args):
            if _code(arg) != want.removeprefix("const "):
                raise TypeError(
                    f"{kernel}: argument {name!r} must be {want}, got {_code(arg)} (pass arrays of the "
                    f"kernel's dtype and NumPy scalars of its exact parameter type)"
                )
            if isinstance(arg, np.ndarray) and not arg.flags.c_contiguous:
                raise ValueError(f"{kernel}: argument {name!r} must be C-contiguous")

    def _run(
        self,
        lib: ctypes.CDLL,
        kernel: str,
        names: tuple[str, ...],
        expected: list[str],
        cfg: Launch,
        args: Sequence[Any],
        seed: int,
    ) -> None:
        sides = np.random.default_rng(seed).integers(0, 2, len(args))  # 1: flush against the end guard
        if self.guard != "random":
            sides[:] = self.guard == "end"
        device: dict[int, tuple[int, np.ndarray, str, bool]] = {}  # id(array) -> (buffer, array, name, const)
        slots = []  # keeps every argument's storage alive during the call
        try:
            for name, want, arg, side in zip(names, expected, args, sides):
                if isinstance(arg, np.ndarray):
                    if id(arg) not in device:
                        const = want.startswith("const ")
                        ptr = lib.fcemu_buffer(arg.nbytes, int(side), int(const))
                        if not ptr:
                            raise MemoryError(f"{kernel}: no memory for argument {name!r} ({arg.nbytes} bytes)")
                        if arg.nbytes:
                            ctypes.memmove(ptr, arg.ctypes.data, arg.nbytes)
                        device[id(arg)] = (ptr, arg, name, const)
                    slots.append(ctypes.c_void_p(device[id(arg)][0]))
                else:
                    slots.append(np.array(arg))
            argv = (ctypes.c_void_p * max(1, len(slots)))(
                *[ctypes.addressof(s) if isinstance(s, ctypes.c_void_p) else s.ctypes.data for s in slots]
            )
            flush = kernel.endswith("_f32")  # as CuPy's -ftz=true does on the GPU (fcemu_launch.h)
            grid, block = (ctypes.c_uint * 3)(*cfg.grid), (ctypes.c_uint * 3)(*cfg.block)
            config = _Config(grid, block, cfg.shared_bytes, seed, flush)
            if getattr(lib, f"fcemu_launch_{kernel}")(ctypes.byref(config), argv):
                raise EmuError(self._message(lib.fcemu_error().contents, kernel, list(device.values())))
            for ptr, arr, _, const in device.values():
                if arr.nbytes and not const:
                    ctypes.memmove(arr.ctypes.data, ptr, arr.nbytes)
        finally:
            lib.fcemu_release_buffers()

    @staticmethod
    def _message(err: _Error, kernel: str, buffers: list[tuple[int, np.ndarray, str, bool]]) -> str:
        where = f"block {tuple(err.block)}" + ("" if err.thread[0] == 0xFFFFFFFF else f" thread {tuple(err.thread)}")
        if err.code != 2:
            return f"{kernel}: {_ERRORS.get(err.code, 'error')}: {err.text.decode()} ({where})"
        _, arr, name, _ = buffers[err.arg]
        index = err.offset // arr.itemsize
        what = {1: "write", 0: "read"}.get(err.write, "access")
        inside = 0 <= err.offset < arr.nbytes
        kind = f"{what} to const argument" if inside else f"out-of-bounds {what}"
        return f"{kernel}: {kind} {name}[{index}] ({name} has {arr.size} {arr.dtype} elements; {where})"
