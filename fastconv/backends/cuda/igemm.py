"""Launch code of the implicit-GEMM kernels (kernels/igemm.cuh), shared by the "cuda" and "cuda-emu" backends.

- conv2d_fwd_v18_implicit_gemm: the forward, on weights permuted to (K, R, S, C/groups); conv2d_fwd_v19_cp_async the
  same through a cp.async pipeline (its geometry and launch are v18's).
- conv2d_bwd_data_v5_implicit_gemm: the data gradient as the same kernel on grad_out, one launch per stride phase
  (a, b): gx[:, :, a::sh, b::sw] is a stride-1 convolution of gy with the taps r whose windows land on rows
  a + sh*i (r*dh = a + pt mod sh, every sh/gcd(sh, dh)-th tap), flipped and transposed. No work is spent on the
  zeros a strided data gradient would otherwise multiply; a phase no tap reaches is zero.
- conv2d_bwd_weight_v6_implicit_gemm: gw = gy . im2col(x)^T per group.
- conv2d_fwd_v20_mma, conv2d_bwd_data_v6_mma, conv2d_bwd_weight_v7_mma: the same three on tensor cores (mma.cuh),
  for precision "tf32" or "bf16" on float32 (entry point <algo>_<precision>_f32), on devices of compute
  capability 8.0 or later; they round the operands themselves (traits precisions), so the plan does not.
Split-K (`split_count`) is deterministic: each split sums a fixed range of the reduction into its own part of a
workspace and the *_splitk_reduce kernels add the parts in split order, so results repeat bit for bit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import arrays
from ...params import ConvParams
from .launch import Launch, Launcher, ceil_div, suffix

FWD, BWD = "conv2d_fwd.cu", "conv2d_bwd.cu"
FORWARD, FORWARD_ASYNC, DATA, WEIGHT = (
    "conv2d_fwd_v18_implicit_gemm",
    "conv2d_fwd_v19_cp_async",
    "conv2d_bwd_data_v5_implicit_gemm",
    "conv2d_bwd_weight_v6_implicit_gemm",
)
MMA_FORWARD, MMA_DATA, MMA_WEIGHT = "conv2d_fwd_v20_mma", "conv2d_bwd_data_v6_mma", "conv2d_bwd_weight_v7_mma"
MMA_PRECISIONS = ("tf32", "bf16")
_TILES = {  # algo -> the tunables' prefix of its block tile
    FORWARD: "V18_",
    FORWARD_ASYNC: "V18_",
    DATA: "V18_",
    WEIGHT: "WG_",
    MMA_FORWARD: "V20_",
    MMA_DATA: "V20_",
    MMA_WEIGHT: "WT_",
}
MIN_ROWS = 8  # fewer GEMM rows per group (output channels) than this leave the 128-row tile mostly idle


def fast_divisor(d: int) -> tuple[np.uint32, np.int32]:
    """(magic, shift) with n // d == (umulhi(n, magic) + n) >> shift for 0 <= n < 2**31 (conv_common.cuh)."""
    if not 1 <= d < 2**31:
        raise ValueError(f"fast_divisor: d must be in [1, 2**31), got {d}")
    shift = (d - 1).bit_length()
    return np.uint32((2**32 * ((1 << shift) - d)) // d + 1), np.int32(shift)


def tile(launcher: Launcher, algo: str, dtype: Any) -> tuple[int, int, int, int]:
    """(BM, BN, BK, threads) of an algo's block GEMM: SIMT tiles (BM, BN, BK, TM, TN) at the tunables for float32,
    half each way for float64; tensor-core tiles (BM, BN, BK, WM, WN: 32 threads per WM x WN warp tile)."""
    prefix = _TILES[algo]
    t = launcher.tunables(BWD if prefix in ("WG_", "WT_") else FWD)
    bm, bn, bk = (t[prefix + k] for k in ("BM", "BN", "BK"))
    if algo in (MMA_FORWARD, MMA_DATA, MMA_WEIGHT):
        return bm, bn, bk, 32 * (bm // t[prefix + "WM"]) * (bn // t[prefix + "WN"])
    half = 2 if np.dtype(dtype) == np.float64 else 1
    return bm // half, bn // half, bk, (bm // t[prefix + "TM"]) * (bn // t[prefix + "TN"])


def entry(algo: str, p: ConvParams) -> str:
    """The kernel's entry point for p: <algo>_<precision>_f32 for the tensor-core kernels, <algo>_<f32|f64>."""
    return f"{algo}_{p.precision}_f32" if algo in (MMA_FORWARD, MMA_DATA, MMA_WEIGHT) else f"{algo}_{suffix(p.dtype)}"


def _mma_ok(launcher: Launcher, algo: str, p: ConvParams) -> bool:
    """Tensor-core kernels take float32 at precision tf32 or bf16 on sm_80+; the others take only fp32 (reduced
    precisions reach them through the plan's operand rounding)."""
    if algo not in (MMA_FORWARD, MMA_DATA, MMA_WEIGHT):
        return True
    return p.dtype == np.float32 and p.precision in MMA_PRECISIONS and launcher.compute_capability() >= 80


def split_count(launcher: Launcher, blocks: int, slices: int) -> int:
    """Splits of a reduction of `slices` BK-slices over `blocks` tiles: enough for SPLITK_TARGET_BLOCKS blocks,
    each split at least SPLITK_MIN_SLICES long, at most SPLITK_MAX; no split left empty. A pure function of the
    shape, so the reduction order (and the result) is the same on every run."""
    t = launcher.tunables("launch")
    if not 0 < blocks < t["SPLITK_TARGET_BLOCKS"] or slices < 2 * t["SPLITK_MIN_SLICES"]:
        return 1
    want = min(ceil_div(t["SPLITK_TARGET_BLOCKS"], blocks), slices // t["SPLITK_MIN_SLICES"], t["SPLITK_MAX"])
    return ceil_div(slices, ceil_div(slices, max(want, 1)))


class _Conv:
    """The geometry a v18 launch takes (conv_common.cuh's CONV_GEOMETRY_PARAMS), for a forward or a phase."""

    def __init__(self, N, C, H, W, K, R, S, P, Q, stride, pad, dil, groups):  # noqa: PLR0913 - the geometry
        self.N, self.C, self.H, self.W, self.K, self.R, self.S, self.P, self.Q = N, C, H, W, K, R, S, P, Q
        self.stride, self.pad, self.dil, self.groups = stride, pad, dil, groups

    def args(self) -> list[np.int32]:
        g = (self.N, self.C, self.H, self.W, self.K, self.R, self.S, self.P, self.Q)
        return [np.int32(v) for v in (*g, *self.stride, *self.pad, *self.dil, self.groups)]


def _forward_conv(p: ConvParams) -> _Conv:
    (pt, _), (pl, _) = p.padding
    return _Conv(p.N, p.C, p.H, p.W, p.K, p.R, p.S, p.P, p.Q, p.stride, (pt, pl), p.dilation, p.groups)


def _forward_launch(launcher: Launcher, c: _Conv, dtype: Any, algo: str) -> tuple[Launch, int]:
    bm, bn, bk, threads = tile(launcher, algo, dtype)
    blocks = (ceil_div(c.N * c.P * c.Q, bn), ceil_div(c.K // c.groups, bm))
    splits = split_count(launcher, blocks[0] * blocks[1] * c.groups, c.R * c.S * ceil_div(c.C // c.groups, bk))
    return Launch((*blocks, c.groups * splits), (threads, 1, 1)), splits


def _fits(cfg: Launch, *sizes: int) -> bool:
    return cfg.grid[0] < 2**31 and max(cfg.grid[1:]) <= 65535 and max(sizes) < 2**31


def _forward_fits(launcher: Launcher, c: _Conv, dtype: Any, algo: str) -> bool:
    cfg, _ = _forward_launch(launcher, c, dtype, algo)
    per_image = (c.C * c.H * c.W, c.K * c.P * c.Q)
    return c.K // c.groups >= MIN_ROWS and _fits(cfg, c.N * c.P * c.Q, c.K * c.R * c.S * (c.C // c.groups), *per_image)


def _run_forward(launcher, algo, name, c: _Conv, x, wp, b, out, place, dtype) -> None:
    """One launch of entry point `name` (a v18-geometry kernel) for `c`, writing out[n, k, oh0 + p*osh, ow0 + q*osw]
    (place = (oh0, ow0, osh, osw)) of an out of shape (N, K, OH, OW); split-K through a workspace when the shape
    asks for it."""
    cfg, splits = _forward_launch(launcher, c, dtype, algo)
    fast = [*fast_divisor(c.P * c.Q), *fast_divisor(c.Q)]
    bias = b if b is not None else launcher.empty((1,), dtype)  # never read when has_bias is 0
    if splits == 1:
        geometry = [*c.args(), *(np.int32(v) for v in (*place, *out.shape[2:])), np.int32(1), np.int64(0)]
        launcher.launch(FWD, name, cfg, [x, wp, bias, out, np.int32(b is not None), *geometry, *fast])
        return
    dense = (c.N, c.K, c.P, c.Q)
    part = launcher.empty((splits, *dense), dtype)
    geometry = [*c.args(), *(np.int32(v) for v in (0, 0, 1, 1, c.P, c.Q)), np.int32(splits), np.int64(part[0].size)]
    launcher.launch(FWD, name, cfg, [x, wp, bias, part, np.int32(0), *geometry, *fast])
    target = out if tuple(out.shape) == dense else launcher.empty(dense, dtype)
    _reduce(launcher, FWD, part, b, target, splits, c.N * c.K, c.P * c.Q, c.K, "V1_BLOCK")
    if target is not out:
        oh0, ow0, osh, osw = place
        out[:, :, oh0::osh, ow0::osw] = target


def _reduce(launcher, file, part, b, out, splits, planes, plane, K, block_tunable) -> None:
    block = launcher.tunables(file)[block_tunable]
    bias = b if b is not None else launcher.empty((1,), out.dtype)
    kernel = "conv2d_fwd_splitk_reduce" if file == FWD else "conv2d_bwd_weight_splitk_reduce"
    args = [part, bias, out, np.int32(b is not None), np.int32(splits), np.int64(part[0].size)]
    launcher.launch(
        file,
        f"{kernel}_{suffix(out.dtype)}",
        Launch((planes, ceil_div(plane, block), 1), (block, 1, 1)),
        [*args, np.int32(plane), np.int32(K)],
    )


# ---------------------------------------------------------------------------------------------- forward
def forward_supports(launcher: Launcher, p: ConvParams, algo: str = FORWARD) -> bool:
    return _mma_ok(launcher, algo, p) and _forward_fits(launcher, _forward_conv(p), p.dtype, algo)


def forward(launcher: Launcher, p: ConvParams, x: Any, w: Any, b: Any, algo: str = FORWARD) -> Any:
    y = launcher.empty(p.y_shape, p.dtype)
    if y.size:
        wp = arrays.array_module(launcher.kind).ascontiguousarray(w.transpose(0, 2, 3, 1))
        _run_forward(launcher, algo, entry(algo, p), _forward_conv(p), x, wp, b, y, (0, 0, 1, 1), p.dtype)
    return y


# ---------------------------------------------------------------------------------------------- data gradient
def _phase_taps(a: int, pad: int, stride: int, dil: int, R: int, out: int) -> tuple[list[int], int, int, int]:
    """Taps of phase a along one axis, flipped (largest tap first), the phase's padding and dilation, and its
    output length: rows a + stride*i, i < length, read gy rows i + (a + pad - r*dil) / stride."""
    taps = [r for r in range(R) if (a + pad - r * dil) % stride == 0][::-1]
    length = len(range(a, out, stride))
    if not taps:
        return taps, 0, 1, length
    step = dil // math.gcd(stride, dil)  # gy rows between consecutive taps of the phase
    return taps, -((a + pad - taps[0] * dil) // stride), step, length


def _phases(p: ConvParams):
    """(a, b, row taps, col taps, _Conv) of every stride phase of the data gradient that some tap reaches."""
    (pt, _), (pl, _) = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    for a in range(sh):
        rows, pad_r, dil_r, Ha = _phase_taps(a, pt, sh, dh, p.R, p.H)
        for b in range(sw):
            cols, pad_c, dil_c, Wb = _phase_taps(b, pl, sw, dw, p.S, p.W)
            conv = _Conv(
                p.N, p.K, p.P, p.Q, p.C, len(rows), len(cols), Ha, Wb, (1, 1), (pad_r, pad_c), (dil_r, dil_c), p.groups
            )
            yield a, b, rows, cols, conv


def backward_data_supports(launcher: Launcher, p: ConvParams, algo: str = DATA) -> bool:
    phases = [c for *_, c in _phases(p) if c.R and c.S and c.P and c.Q]
    return _mma_ok(launcher, algo, p) and all(_forward_fits(launcher, c, p.dtype, algo) for c in phases)


def backward_data(launcher: Launcher, p: ConvParams, gy: Any, w: Any, algo: str = DATA) -> Any:
    xp = arrays.array_module(launcher.kind)
    gx = launcher.empty(p.x_shape, p.dtype)
    if not gx.size:
        return gx
    per_group = w.reshape(p.groups, p.Kg, p.Cg, p.R, p.S)
    for a, b, rows, cols, c in _phases(p):
        if not (c.R and c.S and gy.size):
            gx[:, :, a :: p.stride[0], b :: p.stride[1]] = 0
        elif c.P and c.Q:  # (C, taps, taps, Kg): row g*Cg + c, then the flipped taps, then group g's Kg channels
            taps = per_group[:, :, :, xp.asarray(rows)][:, :, :, :, xp.asarray(cols)]
            wp = xp.ascontiguousarray(taps.transpose(0, 2, 3, 4, 1).reshape(p.C, c.R, c.S, p.Kg))
            _run_forward(launcher, algo, entry(algo, p), c, gy, wp, None, gx, (a, b, *p.stride), p.dtype)
    return gx


# ---------------------------------------------------------------------------------------------- weight gradient
def _weight_launch(launcher: Launcher, p: ConvParams, algo: str = WEIGHT) -> tuple[Launch, int]:
    bm, bn, bk, threads = tile(launcher, algo, p.dtype)
    blocks = (ceil_div(p.Cg * p.R * p.S, bn), ceil_div(p.Kg, bm))
    splits = split_count(launcher, blocks[0] * blocks[1] * p.groups, ceil_div(p.N * p.P * p.Q, bk))
    return Launch((*blocks, p.groups * splits), (threads, 1, 1)), splits


def backward_weight_supports(launcher: Launcher, p: ConvParams, algo: str = WEIGHT) -> bool:
    cfg, _ = _weight_launch(launcher, p, algo)
    sizes = (p.N * p.P * p.Q, p.K * p.P * p.Q, p.C * p.H * p.W)
    return _mma_ok(launcher, algo, p) and p.Kg >= MIN_ROWS and _fits(cfg, *sizes)


def backward_weight(launcher: Launcher, p: ConvParams, gy: Any, x: Any, algo: str = WEIGHT) -> Any:
    gw, done = launcher.reduction_output(p.w_shape, p.dtype, gy.size)
    if done:
        return gw
    cfg, splits = _weight_launch(launcher, p, algo)
    out = gw if splits == 1 else launcher.empty((splits, *p.w_shape), p.dtype)
    fast = [*fast_divisor(p.P * p.Q), *fast_divisor(p.Q)]
    geometry = [*_forward_conv(p).args(), np.int32(splits), np.int64(gw.size)]
    launcher.launch(BWD, entry(algo, p), cfg, [gy, x, out, *geometry, *fast])
    if splits > 1:
        _reduce(launcher, BWD, out, None, gw, splits, p.K, p.Cg * p.R * p.S, p.K, "BWD_BLOCK")
    return gw
