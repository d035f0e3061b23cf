"""Launch code of conv2d_fwd.cu and conv2d_bwd.cu, shared by the "cuda" and "cuda-emu" backends.

Each function takes the Launcher first, then the registry op's arguments (see fastconv.dispatch), allocates its
outputs with `launcher.empty` and returns them. Grid, block and shared memory come from ceil_div and the tunables.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...params import ConvParams
from .launch import MAX_GRID_YZ, Launch, Launcher, ceil_div, suffix

FWD, BWD = "conv2d_fwd.cu", "conv2d_bwd.cu"


def geometry(p: ConvParams) -> list[np.int32]:
    """The CONV_GEOMETRY_PARAMS of conv_common.cuh, in order."""
    (pt, _), (pl, _) = p.padding
    return [
        np.int32(v) for v in (p.N, p.C, p.H, p.W, p.K, p.R, p.S, p.P, p.Q, *p.stride, pt, pl, *p.dilation, p.groups)
    ]


# ---------------------------------------------------------------------------------------------- forward launches
def _v1(launcher: Launcher, p: ConvParams) -> Launch:
    return launcher.grid_stride(p.N * p.K * p.P * p.Q, launcher.tunables(FWD)["V1_BLOCK"])


def _v2(launcher: Launcher, p: ConvParams) -> Launch:
    t = launcher.tunables(FWD)
    tp, tq, kpb = t["V2_TP"], t["V2_TQ"], t["V2_KPB"]
    ih = (tp - 1) * p.stride[0] + (p.R - 1) * p.dilation[0] + 1
    iw = (tq - 1) * p.stride[1] + (p.S - 1) * p.dilation[1] + 1
    smem = (ih * iw + kpb * p.R * p.S) * p.dtype.itemsize
    return Launch((ceil_div(p.Q, tq), ceil_div(p.P, tp), p.N * p.groups * ceil_div(p.Kg, kpb)), (tq, tp, 1), smem)


def _v3(launcher: Launcher, p: ConvParams) -> Launch:
    t = launcher.tunables(FWD)
    threads = (t["V3_BM"] // t["V3_TM"]) * (t["V3_BN"] // t["V3_TN"])
    return Launch((ceil_div(p.N * p.P * p.Q, t["V3_BN"]), ceil_div(p.Kg, t["V3_BM"]), p.groups), (threads, 1, 1))


def _v4(launcher: Launcher, p: ConvParams) -> Launch:
    block = launcher.tunables(FWD)["V4_BLOCK"]
    return Launch((p.N * p.K, ceil_div(p.P * p.Q, block), 1), (block, 1, 1), p.R * p.S * p.dtype.itemsize)


FORWARD = {  # algo (= kernel name) -> launch geometry
    "conv2d_fwd_v1_naive": _v1,
    "conv2d_fwd_v2_smem_tiled": _v2,
    "conv2d_fwd_v3_implicit_gemm": _v3,
    "conv2d_fwd_v4_depthwise": _v4,
}


def fits(cfg: Launch) -> bool:
    """Within CUDA's grid limits and the 48 KiB of dynamic shared memory we use without opting in."""
    return cfg.grid[0] < 2**31 and max(cfg.grid[1:]) <= MAX_GRID_YZ and cfg.shared_bytes <= 48 * 1024


def forward_supports(launcher: Launcher, algo: str, p: ConvParams) -> bool:
    if algo == "conv2d_fwd_v4_depthwise" and not p.is_depthwise:
        return False
    return fits(FORWARD[algo](launcher, p))


def forward(launcher: Launcher, algo: str, p: ConvParams, x: Any, w: Any, b: Any) -> Any:
    y = launcher.empty(p.y_shape, p.dtype)
    if y.size:
        cfg = FORWARD[algo](launcher, p)
        bias = b if b is not None else launcher.empty((1,), p.dtype)  # never read when has_bias is 0
        launcher.launch(FWD, f"{algo}_{suffix(p.dtype)}", cfg, [x, w, bias, y, np.int32(b is not None), *geometry(p)])
    return y


# ---------------------------------------------------------------------------------------------- backward launches
def backward_data(launcher: Launcher, algo: str, p: ConvParams, gy: Any, w: Any) -> Any:
    gx = launcher.empty(p.x_shape, p.dtype)
    if gx.size:
        cfg = launcher.grid_stride(gx.size, launcher.tunables(BWD)["BWD_BLOCK"])
        launcher.launch(BWD, f"{algo}_{suffix(p.dtype)}", cfg, [gy, w, gx, *geometry(p)])
    return gx


def backward_weight(launcher: Launcher, algo: str, p: ConvParams, gy: Any, x: Any) -> Any:
    gw = launcher.empty(p.w_shape, p.dtype)
    t = launcher.tunables(BWD)
    split = t["BWD_SPLIT"] if algo == "conv2d_bwd_weight_v2_atomic" else 1
    if split > 1:
        gw[...] = 0
    cfg = Launch((gw.size, split, 1), (t["BWD_REDUCE_BLOCK"], 1, 1))
    launcher.launch(BWD, f"{algo}_{suffix(p.dtype)}", cfg, [gy, x, gw, *geometry(p)])
    return gw


def backward_bias(launcher: Launcher, p: ConvParams, gy: Any) -> Any:
    gb = launcher.empty((p.K,), p.dtype)
    cfg = Launch((p.K, 1, 1), (launcher.tunables(BWD)["BWD_REDUCE_BLOCK"], 1, 1))
    launcher.launch(
        BWD,
        f"conv2d_bwd_bias_v1_reduce_{suffix(p.dtype)}",
        cfg,
        [gy, gb, np.int32(p.N), np.int32(p.K), np.int32(p.P * p.Q)],
    )
    return gb
