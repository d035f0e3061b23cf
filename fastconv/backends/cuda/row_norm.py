"""Launch code of row_norm.cu (group, layer and instance norm), shared by the "cuda" and "cuda-emu" backends."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...params import NormParams
from .launch import Launch, Launcher, suffix

FILE = "row_norm.cu"


def _geometry(p: NormParams) -> list:
    return [np.int64(p.E), np.int32(p.G), np.int32(p.Cg), np.int64(p.M)]


def row_norm(launcher: Launcher, p: NormParams, x: Any, w: Any, b: Any):
    y = launcher.empty(p.shape, p.dtype)
    mean, var = launcher.empty((p.rows,), p.dtype), launcher.empty((p.rows,), p.dtype)
    if y.size:
        cfg = Launch((p.rows, 1, 1), (launcher.tunables(FILE)["NORM_BLOCK"], 1, 1))
        args = [x, w, b, y, mean, var, *_geometry(p), p.dtype.type(p.eps)]
        launcher.launch(FILE, f"row_norm_fwd_v1_{suffix(p.dtype)}", cfg, args)
    else:
        mean[...], var[...] = 0, 0
    return y, mean, var


def row_norm_bwd(launcher: Launcher, p: NormParams, gy: Any, x: Any, w: Any):
    gx, gw, gb = (launcher.empty(shape, p.dtype) for shape in (p.shape, (p.A,), (p.A,)))
    if not gx.size:
        gw[...], gb[...] = 0, 0
        return gx, gw, gb
    mean, rstd = launcher.empty((p.rows,), p.dtype), launcher.empty((p.rows,), p.dtype)
    block = (launcher.tunables(FILE)["NORM_BLOCK"], 1, 1)
    args = [gy, x, w, gx, mean, rstd, *_geometry(p), p.dtype.type(p.eps)]
    launcher.launch(FILE, f"row_norm_bwd_v1_{suffix(p.dtype)}", Launch((p.rows, 1, 1), block), args)
    args = [gy, x, mean, rstd, gw, gb, np.int64(p.rows), *_geometry(p)]
    launcher.launch(FILE, f"row_norm_affine_grads_v1_{suffix(p.dtype)}", Launch((p.A, 1, 1), block), args)
    return gx, gw, gb
