"""Timing: wall-clock on the CPU, CUDA events on a GPU; rotating input copies; repeat policy; a progress bar.

Rotation: a small case timed on the same buffers again and again runs from cache, which real use (a layer's input
was just written by the previous layer, then evicted by others) does not enjoy. Each timed call therefore takes
the next of several copies of its inputs, enough copies to fill `rotate_bytes` (at most MAX_COPIES).
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

MAX_COPIES = 16


@dataclass(frozen=True)
class Policy:
    """How long to time one implementation on one case."""

    warmup: int = 1  # untimed calls after the checked one
    min_repeats: int = 5
    min_time_s: float = 0.25  # keep repeating until both min_repeats and min_time_s are reached ...
    max_time_s: float = 2.0  # ... but stop once the timed calls took this long (a slow one is timed once)
    max_repeats: int = 200


def copies_for(nbytes: int, rotate_bytes: int) -> int:
    """How many copies of an input set of `nbytes` fill `rotate_bytes` (1 to MAX_COPIES)."""
    return max(1, min(MAX_COPIES, math.ceil(rotate_bytes / max(nbytes, 1))))


class CpuTimer:
    """perf_counter around a call that has finished when it returns."""

    def __call__(self, fn: Callable[[], Any]) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


class CudaEventTimer:
    """A pair of CUDA events recorded around the call on the current stream; `make_event` builds one
    (cupy.cuda.Event or torch.cuda.Event(enable_timing=True)); elapsed_time is in milliseconds for both."""

    def __init__(self, make_event: Callable[[], Any], synchronize: Callable[[], Any]):
        self.make_event, self.synchronize = make_event, synchronize

    def __call__(self, fn: Callable[[], Any]) -> float:
        start, end = self.make_event(), self.make_event()
        self.synchronize()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return _elapsed_ms(start, end) / 1e3


def _elapsed_ms(start: Any, end: Any) -> float:
    if hasattr(start, "elapsed_time"):  # torch.cuda.Event
        return float(start.elapsed_time(end))
    import cupy  # noqa: PLC0415 - only reached with CuPy events

    return float(cupy.cuda.get_elapsed_time(start, end))


def measure(
    call: Callable[[int], Any], timer: Callable[[Callable[[], Any]], float], copies: int, policy: Policy
) -> dict[str, float | int]:
    """Warm up, then time call(i) on rotating copy i % copies until the policy is met. Returns the statistics
    the results file stores: median, min and max seconds and the number of timed calls."""
    for i in range(policy.warmup):
        call(i % copies)
    times: list[float] = []
    spent = 0.0
    while len(times) < policy.max_repeats:
        enough = len(times) >= policy.min_repeats and spent >= policy.min_time_s
        if times and (enough or spent >= policy.max_time_s):
            break
        i = len(times) + policy.warmup
        times.append(timer(lambda i=i: call(i % copies)))
        spent += times[-1]
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "repeats": len(times)}


class Progress:
    """A one-line progress bar on a terminal (nothing when the stream is not one, or when disabled)."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool | None = None, width: int = 24):
        self.total, self.done, self.width = max(total, 1), 0, width
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = time.perf_counter()

    def step(self, label: str) -> None:
        """Show that the item `label` is starting."""
        if not self.enabled:
            return
        filled = self.width * self.done // self.total
        elapsed = time.perf_counter() - self.start
        eta = f" ~{elapsed / self.done * (self.total - self.done):.0f}s left" if self.done else ""
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total}{eta} {label[:60]:<60}")
        self.stream.flush()
        self.done += 1

    def close(self) -> None:
        if self.enabled:
            self.stream.write(f"\r{' ' * (self.width + 90)}\r")
            self.stream.flush()
