"""conv2d bwd-data v13_phases: the data gradient of a strided convolution as one forward convolution per phase.

With stride (sh, sw), gx[n, g*Cg + c, h, v] = sum over k < Kg and the taps (r, s) with h + pt - r*dh = p*sh and
v + pl - s*dw = q*sw for an integer (p, q) inside gy of gy[n, g*Kg + k, p, q] * w[g*Kg + k, c, r, s]. Split the
rows of gx by phase a = h mod sh (the columns likewise, b): the rows h = a + sh*i take only the taps r with
(a + pt - r*dh) mod sh == 0, each reading gy row i + o_r, o_r = (a + pt - r*dh) / sh. Taken with r descending,
those offsets rise in equal steps (dh / gcd(sh, dh)), so phase (a, b) of gx is a stride-1 forward convolution of
gy: its kernel the phase's taps (dilation that step), top padding -o_r of the first tap, bottom padding what gives
ceil((H - a) / sh) rows, its filters w's taps of that phase with each group's (Kg, Cg) transposed (`gathered`).
Each phase goes to the forward algorithm `auto` ranks first for it (for a 3x3 stride-2 conv: a 1x1 phase, two 1x2
and a 2x2) and its output is copied into gx's rows and columns of that phase; a phase no tap reaches (three of
the four of a 1x1 stride-2 conv) is zero. No multiply-add meets the zeros a stride leaves between gy's rows, as
the stride-1 data gradient of a zero-dilated gy would. Where a padding comes out negative (gy rows or columns
the phase never reads: unusual paddings or sizes) it is 0 and the outputs that adds are cropped. Stride 1 is
one phase: conv2d_bwd_data_v7_as_forward.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from math import gcd
from typing import Any, NamedTuple

import numpy as np

from ... import dispatch
from ...arrays import empty
from ...params import ConvParams
from ...plan import bound
from .conv2d_as_forward import auto_forward, gathered


class _Axis(NamedTuple):
    """One phase along one axis: the taps in the forward kernel's order, its dilation and padding, and which of
    the forward problem's outputs are the phase's (`size` of them from `crop`)."""

    taps: tuple[int, ...]
    dilation: int
    padding: tuple[int, int]
    crop: int
    size: int


def _axis(a: int, pad: int, taps: int, dil: int, stride: int, n_in: int, n_out: int) -> _Axis | None:
    """Phase a of one axis (see the module docstring), or None when no tap reaches it or it has no output. A
    padding that would be negative (gy rows the phase never reads) is 0 instead, and the outputs it adds are
    cropped."""
    rows = tuple(r for r in range(taps - 1, -1, -1) if (a + pad - r * dil) % stride == 0)
    size = (n_out - a + stride - 1) // stride
    if not rows or size <= 0:
        return None
    first, last = ((a + pad - r * dil) // stride for r in (rows[0], rows[-1]))
    top, bottom = -first, size - n_in + last
    return _Axis(rows, dil // gcd(stride, dil), (max(top, 0), max(bottom, 0)), max(-top, 0), size)


class Phase(NamedTuple):
    a: int  # gx rows a, a + sh, ...
    b: int  # gx columns b, b + sw, ...
    pf: ConvParams | None  # the forward problem; None: no tap reaches the phase (it is zero)
    rows: np.ndarray  # the taps of w along each axis, in pf's kernel order
    cols: np.ndarray
    window: tuple[slice, slice]  # the phase's rows and columns of pf's output


def phases(p: ConvParams) -> list[Phase]:
    """The sh*sw phases of p's data gradient."""
    (sh, sw), ((pt, _), (pl, _)), (dh, dw) = p.stride, p.padding, p.dilation
    out = []
    for a in range(sh):
        ra = _axis(a, pt, p.R, dh, sh, p.P, p.H)
        for b in range(sw):
            cb = _axis(b, pl, p.S, dw, sw, p.Q, p.W)
            if ra is None or cb is None:
                out.append(Phase(a, b, None, np.empty(0, np.int64), np.empty(0, np.int64), (slice(0), slice(0))))
                continue
            pf = ConvParams(
                N=p.N,
                C=p.K,
                H=p.P,
                W=p.Q,
                K=p.C,
                R=len(ra.taps),
                S=len(cb.taps),
                stride=(1, 1),
                padding=(ra.padding, cb.padding),
                dilation=(ra.dilation, cb.dilation),
                groups=p.groups,
                padding_mode="zeros",
                dtype=p.dtype,
                has_bias=False,
                precision=p.precision,
            )
            window = slice(ra.crop, ra.crop + ra.size), slice(cb.crop, cb.crop + cb.size)
            out.append(Phase(a, b, pf, np.array(ra.taps, np.int64), np.array(cb.taps, np.int64), window))
    return out


def supports(p: ConvParams) -> bool:
    return p.stride != (1, 1)


@functools.lru_cache(maxsize=1024)
def _planned(p: ConvParams) -> tuple[tuple[Phase, Any], ...]:
    """Each phase with the forward implementation auto runs for it, once per params (emptied with the plan cache:
    registrations and autotuning records change the answer)."""
    return tuple((ph, None if ph.pf is None else auto_forward(ph.pf)) for ph in phases(p))


dispatch.on_change(_planned.cache_clear)


def _run(p: ConvParams, planned: tuple[tuple[Phase, Callable | None], ...], gy: np.ndarray, w: np.ndarray):
    gx = empty(p.x_shape, gy.dtype)  # every element lies in one phase, which writes it
    sh, sw = p.stride
    for ph, forward in planned:
        view = gx[:, :, ph.a :: sh, ph.b :: sw]
        if forward is None:
            view[...] = 0
        else:
            wt = np.empty((p.C, p.Kg, len(ph.rows), len(ph.cols)), w.dtype)
            gathered(w, ph.rows, ph.cols, wt)
            view[...] = forward(ph.pf, gy, wt, None)[(..., *ph.window)]
    return gx


def conv2d_bwd_data_v13_phases(p: ConvParams, gy: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _run(p, tuple((ph, impl and impl.fn) for ph, impl in _planned(p)), gy, w)


def _bind(p: ConvParams) -> Callable:
    """v13 for a plan's params: each phase's forward looked up and bound once (fastconv.plan.bound)."""
    planned = tuple((ph, impl and bound(impl.fn, ph.pf)) for ph, impl in _planned(p))
    return lambda q, gy, w: _run(q, planned, gy, w)


conv2d_bwd_data_v13_phases.bind = _bind  # type: ignore[attr-defined]
