"""Which Numba threading layer the kernels run on, and what a forked child does.

Numba runs a prange on one of three layers: "tbb" (fork-safe and thread-safe), "omp" (thread-safe; with GNU
OpenMP, the only OpenMP on most Linux machines, a child started by fork after any parallel region is killed when
it enters one: "Terminating: fork() called from a process already using GNU OpenMP") and "workqueue" (neither).
fastconv asks for "tbb": the `tbb` wheel (a dependency on the platforms that have one) puts libtbb.so.12 in the
environment's lib/ folder, which the dynamic loader does not search, so it is loaded from there first. Where tbb
cannot load, "omp" runs, and a child forked after a parallel region runs all of every kernel's parts on its
calling thread instead of the thread pool (same results, one thread): it computes instead of being killed.
FASTCONV_THREADING_LAYER=omp, tbb or workqueue asks for a layer explicitly (an unavailable one is an error).

`setup()` runs once, before the first kernel is compiled or launched; `status()` says what it chose and why.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import numba

ENV = "FASTCONV_THREADING_LAYER"
LAYERS = ("tbb", "omp", "workqueue")
STATE = {"layer": None, "why": "", "forked": False}


def _load_tbb() -> str | None:
    """Make libtbb loadable (the wheel's copy in the environment's lib/); None when it is, else why not."""
    names = ("libtbb.so.12", "libtbb.12.dylib", "tbb12.dll")
    folders = [Path(sys.prefix) / "lib", Path(sys.base_prefix) / "lib", Path(sys.prefix) / "Library" / "bin"]
    for folder in folders:
        for name in names:
            if (folder / name).exists():
                try:
                    ctypes.CDLL(str(folder / name), mode=getattr(ctypes, "RTLD_GLOBAL", 0))
                    return None
                except OSError as exc:
                    return f"{folder / name} did not load ({exc})"
    try:  # installed system-wide, where the loader looks anyway
        ctypes.CDLL(names[0], mode=getattr(ctypes, "RTLD_GLOBAL", 0))
        return None
    except OSError:
        return "no libtbb found (pip install tbb)"


def setup() -> None:
    """Choose the layer (once, before any parallel region) and watch for forks."""
    if STATE["layer"] is not None:
        return
    if os.environ.get("NUMBA_THREADING_LAYER"):  # Numba's own setting, when given, is the user's choice
        numba.get_num_threads()
        STATE["layer"], STATE["why"] = numba.threading_layer(), "NUMBA_THREADING_LAYER is set"
        if STATE["layer"] != "tbb":
            os.register_at_fork(after_in_child=_forked)
        return
    asked = os.environ.get(ENV, "").strip().lower()
    if asked and asked not in LAYERS:
        raise ValueError(f"{ENV}={asked!r}: expected one of {', '.join(LAYERS)}")
    if asked:
        if asked == "tbb" and (why_not := _load_tbb()):
            raise RuntimeError(f"{ENV}=tbb but {why_not}")
        numba.config.THREADING_LAYER = asked
        why = f"{ENV}={asked}"
    elif (why_not := _load_tbb()) is None:
        numba.config.THREADING_LAYER = "tbb"
        why = "fork-safe and thread-safe (libtbb from the tbb package)"
    else:
        numba.config.THREADING_LAYER = "default"
        why = f"tbb unavailable: {why_not}"
    numba.get_num_threads()  # starts the layer now: compiled kernels call into it (launch.py)
    STATE["layer"], STATE["why"] = numba.threading_layer(), why
    if STATE["layer"] != "tbb":
        why += "; a child forked after a parallel region runs the kernels serially (this layer is not fork-safe)"
        STATE["why"] = why
        os.register_at_fork(after_in_child=_forked)


def _forked() -> None:
    STATE["forked"] = True


def fork_unsafe_child() -> bool:
    """True in a child forked from a process whose (not fork-safe) layer ran: its kernels must not use it."""
    return STATE["forked"]


def status() -> str:
    """The layer in use and why, for `fastconv backends`."""
    setup()
    return f"threading layer {STATE['layer']} ({numba.get_num_threads()} threads): {STATE['why']}"
