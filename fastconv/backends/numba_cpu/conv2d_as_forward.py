"""conv2d bwd-data v7_as_forward: the data gradient of a stride-1 convolution run as a forward convolution.

With stride 1, gx[n, g*Cg + c, h, v] = sum over k < Kg, r, s of gy[n, g*Kg + k, h + pt - r*dh, v + pl - s*dw] *
w[g*Kg + k, c, r, s] (rows and columns outside gy read zero): the correlation of gy, padded by (R-1)*dh - pt rows
on top and (R-1)*dh - pb below (likewise columns), with wt[g*Cg + c, k, r', s'] = w[g*Kg + k, c, R-1-r', S-1-s'],
the filters flipped and each group's (Kg, Cg) transposed. So the data gradient is a forward problem of its own,
(N, K, P, Q) in, (N, C, H, W) out, and this rung hands it to whichever forward algorithm `auto` ranks first for
that problem (winograd for 3x3, the pixel panels for late layers, conv2d_fwd_v13_unstaged for tiny calls): every
forward kernel's speed serves the backward too. What it adds is the flipped weights (`gathered`: one output
channel of wt per iteration); the forward's selection is made once per params. It takes padding no wider than
the dilated kernel on any side (the forward problem's padding is then >= 0), the common case; others fall to
v2_rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import prange

from ... import dispatch
from ...params import ConvParams
from ...plan import bound
from .config import kernel


@kernel
def gathered(w, rows, cols, out):
    """out[g*Cg + c, k, t, u] = w[g*Kg + k, c, rows[t], cols[u]]: per group, (Kg, Cg) transposed, the taps picked
    (and ordered) by rows and cols; one output row out[cc] per iteration. The filters flipped: rows = R-1, ..., 0
    and cols = S-1, ..., 0."""
    Cg = w.shape[1]
    C, Kg = out.shape[0], out.shape[1]
    for cc in prange(C):
        g, c = cc // Cg, cc % Cg
        for k in range(Kg):
            for t in range(len(rows)):
                for u in range(len(cols)):
                    out[cc, k, t, u] = w[g * Kg + k, c, rows[t], cols[u]]


def forward_problem(p: ConvParams) -> ConvParams:
    """The forward convolution whose output is p's data gradient (see the module docstring)."""
    (pt, pb), (pl, pr) = p.padding
    eh, ew = (p.R - 1) * p.dilation[0], (p.S - 1) * p.dilation[1]
    return ConvParams(
        N=p.N,
        C=p.K,
        H=p.P,
        W=p.Q,
        K=p.C,
        R=p.R,
        S=p.S,
        stride=(1, 1),
        padding=((eh - pt, eh - pb), (ew - pl, ew - pr)),
        dilation=p.dilation,
        groups=p.groups,
        padding_mode="zeros",
        dtype=p.dtype,
        has_bias=False,
        precision=p.precision,
    )


@functools.lru_cache(maxsize=1024)
def _forward(p: ConvParams) -> tuple[ConvParams, Any]:
    """The forward problem of p and the implementation auto runs for it, once per params (emptied with the plan
    cache: registrations and autotuning records change the answer)."""
    pf = forward_problem(p)
    return pf, auto_forward(pf)


def auto_forward(pf: ConvParams) -> Any:
    """The numba forward implementation `auto` runs for the forward problem pf of a data gradient."""
    return dispatch.select("conv2d", pf, "numpy", "numba", "auto", "conv2d_backward")


dispatch.on_change(_forward.cache_clear)


def supports(p: ConvParams) -> bool:
    """Stride 1 and no side padded wider than the dilated kernel."""
    (pt, pb), (pl, pr) = p.padding
    eh, ew = (p.R - 1) * p.dilation[0], (p.S - 1) * p.dilation[1]
    return p.stride == (1, 1) and max(pt, pb) <= eh and max(pl, pr) <= ew


def conv2d_bwd_data_v7_as_forward(p: ConvParams, gy: np.ndarray, w: np.ndarray) -> np.ndarray:
    pf, impl = _forward(p)
    return impl.fn(pf, gy, _flipped(p, w, *_reversed_taps(p)), None)


def _bind(p: ConvParams) -> Callable:
    """v7 for a plan's params: the forward's implementation looked up and bound once (fastconv.plan.bound)."""
    pf, impl = _forward(p)
    forward, taps = bound(impl.fn, pf), _reversed_taps(p)
    return lambda q, gy, w: forward(pf, gy, _flipped(q, w, *taps), None)


conv2d_bwd_data_v7_as_forward.bind = _bind  # type: ignore[attr-defined]


def _reversed_taps(p: ConvParams) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(p.R - 1, -1, -1), np.arange(p.S - 1, -1, -1)


def _flipped(p: ConvParams, w: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    wt = np.empty((p.C, p.Kg, p.R, p.S), w.dtype)
    gathered(w, rows, cols, wt)
    return wt
