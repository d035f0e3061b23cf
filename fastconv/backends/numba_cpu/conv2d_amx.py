"""bfloat16 convolution and linear on AMX tiles (precision="bf16", float32 in and out, float32 accumulation).

    conv2d_fwd_v10_amx   any ungrouped conv (stride, dilation, zero padding, 1x1 included) as an implicit GEMM:
                         y[k, pixel] = sum over (r, s, c) of w[k, c, r, s] * x[c, pixel shifted by (r, s)]
    conv2d_bwd_data_v4_amx  the data gradient of a stride-1 conv: the same GEMM over grad_out with the flipped
                         weights (a pad larger than the kernel's reach, or a stride, takes the emulated rung)
    linear_gemm_v4_amx   linear as the same GEMM (its rows are the pixels of a 1x1 conv over a 1 x N plane)

The input is packed once per call into bfloat16 planes in VNNI order, the B operand of tdpbf16ps: channel pairs
interleaved (x[2i, pixel], x[2i+1, pixel]), zero padding written in, channels padded to a multiple of 32. A
strided conv reads every sw-th column: the planes are split by phase, (row mod sh, column mod sw), so that the
pixels of one output row are consecutive in the plane of each (r, s). Within a phase plane the pixels are
flattened with the plane's width Wq, so a window offset is one constant shift of the flattened index and a tile
of 16 output pixels is 16 consecutive plane pixels; the Wq - Q columns past each output row are computed and
dropped (for a 7x7 map with 3x3 windows, 7 of every 9 computed pixels are kept).

The weights are packed (per call) into A tiles: (R*S, K, C) bfloat16, K and C padded to multiples of 32. Each
parallel iteration computes one block of 32 output channels x 32 flattened pixels of one sample in four
accumulator tiles initialised with the bias, stepping through (r, s) and 32 channels at a time (amx.py's 2 x 2
micro-kernel: 8192 x 4 multiply-adds per step from 4 tile loads), and scatters the block into y. The sum order
is fixed by the shape, so the thread count never changes a result. Rounding to bfloat16 is round to nearest,
ties to even, as fastconv.precision's; NaN stays NaN.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...arrays import empty
from ...params import ConvParams, LinearParams, ceil_div
from ...precision import rounded as generic_rounded
from . import amx
from .config import inner, kernel

BAND_PIXELS = 512  # flattened output pixels (whole output rows) of one parallel iteration, at least
MIN_MACS_PER_INPUT = 256  # below it, auto prefers the emulated rung (priority)
ROUND_CHUNK = 1 << 16  # elements per parallel iteration of round_bf16


def supports(p: ConvParams) -> bool:
    return p.precision == "bf16" and p.groups == 1 and p.dtype == np.float32 and amx.status() is None


def priority(p: ConvParams) -> float:
    """Ahead of the emulated rung (an fp32 kernel on rounded operands) where the work per input element pays for
    the packing: measured here (benchmarks/bf16_cpu.py) the AMX kernel wins from about 256 multiply-adds per
    input element (late layers, 3x3 stride 2) and loses below (a 1x1 conv to 64 channels: 64)."""
    return 100 if p.macs >= MIN_MACS_PER_INPUT * p.N * p.C * p.H * p.W else -100


def priority_bwd_data(p: ConvParams) -> float:
    """As priority, the input being grad_out (N, K, P, Q)."""
    return 100 if p.macs >= MIN_MACS_PER_INPUT * p.N * p.K * p.P * p.Q else -100


def supports_linear(p: LinearParams) -> bool:
    return p.precision == "bf16" and p.dtype == np.float32 and amx.status() is None


def requires() -> str:
    why = amx.status()
    return "precision='bf16', float32, groups=1 and AMX" + (f" ({why})" if why else "")


@inner
def to_bf16(u):
    """The bfloat16 bits (in a uint32) of the float32 with bits u: round to nearest, ties to even; a NaN stays a
    (quiet) NaN. Branch-free, so loops over it vectorise."""
    rounded_ = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    quiet = (u >> np.uint32(16)) | np.uint32(0x40)
    return quiet if (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000) else rounded_


@kernel
def round_bf16(xu, out):
    """out = x rounded to bfloat16 (kept as float32 bits), x and out flat uint32 views: the emulated rung's
    rounding (fastconv.precision.rounded) in one pass."""
    n = xu.size
    for t in prange(ceil_div(n, ROUND_CHUNK)):
        for i in range(t * ROUND_CHUNK, min(n, (t + 1) * ROUND_CHUNK)):
            out[i] = to_bf16(xu[i]) << np.uint32(16)


def rounded(a: np.ndarray, precision: str) -> np.ndarray:
    """fastconv.precision.rounded for the numba backend: bf16 of float32 arrays by round_bf16, the rest there."""
    if precision != "bf16" or a.dtype != np.float32:
        return generic_rounded(a, precision)
    x = np.ascontiguousarray(a)
    out = np.empty(x.shape, np.float32)
    round_bf16(x.reshape(-1).view(np.uint32), out.reshape(-1).view(np.uint32))
    return out


@kernel
def pack_planes(xu, xv, top, left, sh, sw, wq):
    """xv[n, i, phase, f] = the bfloat16 pair (x[n, 2i], x[n, 2i + 1]) at padded position (h, w) as one uint32,
    with phase (h % sh) * sw + w % sw and flattened index f = (h // sh) * wq + w // sw; xv starts zeroed."""
    N, C, H, W = xu.shape
    pairs = ceil_div(C, 2)
    for t in prange(N * pairs):
        n, i = t // pairs, t % pairs
        two = 2 * i + 1 < C
        for h in range(H):
            hp = h + top
            for phase_w in range(min(sw, W)):
                w0 = (phase_w - left) % sw  # the first column of this column phase
                out = xv[n, i, (hp % sh) * sw + phase_w]
                f0 = (hp // sh) * wq + (w0 + left) // sw
                lo, hi = xu[n, 2 * i, h], xu[n, 2 * i + 1 if two else 2 * i, h]
                for j in range(ceil_div(W - w0, sw)):
                    pair = to_bf16(lo[w0 + j * sw])
                    if two:
                        pair |= to_bf16(hi[w0 + j * sw]) << np.uint32(16)
                    out[f0 + j] = pair


@kernel
def pack_weights(wu, wa):
    """wa[r*S + s, k, c] = bfloat16 bits of w[k, c, r, s] (wu: w's float32 bits); wa starts zeroed."""
    K, C, R, S = wu.shape
    for k in prange(K):
        for r in range(R):
            for s in range(S):
                out = wa[r * S + s, k]
                for c in range(C):
                    out[c] = np.uint16(to_bf16(wu[k, c, r, s]))


@kernel
def amx_conv(xv, wa, bias_tile, y, cfg, Kp, Cp, phases, plane, R, S, sh, sw, dh, dw, wq, band):
    """y[n, k, p, q] for every (n, 32 k, `band` output rows) task; xv (uint16), wa and bias_tile flat (see the
    module docstring for their layouts)."""
    N, K, P, Q = y.shape
    b_stride = 2 * phases * plane  # uint16 elements from one channel pair's planes to the next
    k_blocks, bands = ceil_div(K, amx.BLOCK), ceil_div(P, band)
    width = ceil_div(band * wq, amx.BLOCK) * amx.BLOCK  # flattened pixels a task computes
    for t in prange(N * k_blocks * bands):
        n = t // (k_blocks * bands)
        k0 = (t // bands) % k_blocks * amx.BLOCK
        p0 = t % bands * band
        c = np.empty(amx.BLOCK * width, np.float32)  # the task's (32, width) block of results
        amx.amx_configure(cfg)
        for j0 in range(0, width, amx.BLOCK):
            f0 = p0 * wq + j0
            amx.amx_begin(bias_tile, k0 * amx.BLOCK, amx.BLOCK)
            for r in range(R):
                for s in range(S):
                    phase = (r * dh % sh) * sw + s * dw % sw
                    shift = (r * dh // sh) * wq + s * dw // sw
                    a0 = ((r * S + s) * Kp + k0) * Cp
                    for c0 in range(0, Cp, amx.BLOCK):
                        b0 = ((n * (Cp // 2) + c0 // 2) * phases + phase) * 2 * plane + 2 * (f0 + shift)
                        amx.amx_step(wa, a0 + c0, Cp, xv, b0, b_stride)
            amx.amx_end(c, j0, width)
        amx.amx_release()
        for i in range(min(amx.BLOCK, K - k0)):
            for p in range(p0, min(p0 + band, P)):
                row = i * width + (p - p0) * wq
                for q in range(Q):
                    y[n, k0 + i, p, q] = c[row + q]


def aligned_zeros(shape: tuple, dtype) -> np.ndarray:
    """A zeroed array whose data starts on a 64-byte boundary: a tile row that straddles two cache lines loads
    about four times slower (measured here: 24 ns against 6 ns a tileloadd)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(n + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start : start + n].view(dtype).reshape(shape)


def _gemm(x4: np.ndarray, w4: np.ndarray, b: np.ndarray | None, y4: np.ndarray, p: ConvParams) -> None:
    """y4 (N, K, P, Q) = the conv of p over x4 (N, C, H, W) and w4, any strides of x4, w4 and y4."""
    (top, bottom), (left, right) = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    Kp, Cp = ceil_div(p.K, amx.BLOCK) * amx.BLOCK, ceil_div(p.C, amx.BLOCK) * amx.BLOCK
    hq, wq = ceil_div(p.H + top + bottom, sh), ceil_div(p.W + left + right, sw)
    band = min(p.P, ceil_div(BAND_PIXELS, wq))
    reach = (p.P - 1 + band) * wq + amx.BLOCK + ((p.R - 1) * dh // sh) * wq + (p.S - 1) * dw // sw
    plane = ceil_div(max(hq * wq, reach), 16) * 16  # a multiple of 64 bytes: every B tile row stays aligned
    xv = aligned_zeros((p.N, Cp // 2, sh * sw, plane), np.uint32)
    pack_planes(x4.view(np.uint32), xv, top, left, sh, sw, wq)
    bias_tile = aligned_zeros((Kp, amx.BLOCK), np.float32)
    if b is not None:
        bias_tile[: p.K] = b[:, None]
    wa = aligned_zeros((p.R * p.S, Kp, Cp), np.uint16)
    pack_weights(w4.view(np.uint32), wa)
    geometry = (Kp, Cp, sh * sw, plane, p.R, p.S, sh, sw, dh, dw, wq, band)
    amx_conv(xv.view(np.uint16).reshape(-1), wa.reshape(-1), bias_tile.reshape(-1), y4, amx.tile_config(), *geometry)


def supports_bwd_data(p: ConvParams) -> bool:
    """Stride 1 with each pad at most the dilated kernel's reach, where the data gradient is a convolution."""
    (t, b), (lf, rt) = p.padding
    reach_h, reach_w = p.dilation[0] * (p.R - 1), p.dilation[1] * (p.S - 1)
    return supports(p) and p.stride == (1, 1) and max(t, b) <= reach_h and max(lf, rt) <= reach_w


def data_gradient(conv, p: ConvParams, gy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The data gradient of a stride-1 conv as `conv(x, w, b, y, q)`, a forward conv, over gy: gx[c, h, w] = sum
    over (k, r', s') of w[k, c, R-1-r', S-1-s'] * gy[k, h + r'*dh - t', ...] with pads t' = dh*(R-1) - t (and
    likewise for the other sides), the flipped weights read as (C, K, R, S) (a view)."""
    gx = empty(p.x_shape, np.float32)
    if gx.size:
        (t, b), (lf, rt) = p.padding
        (dh, dw), reach = p.dilation, (p.dilation[0] * (p.R - 1), p.dilation[1] * (p.S - 1))
        pads = ((reach[0] - t, reach[0] - b), (reach[1] - lf, reach[1] - rt))
        q = ConvParams(p.N, p.K, p.P, p.Q, p.C, p.R, p.S, (1, 1), pads, (dh, dw), 1, "zeros", p.dtype, False)
        conv(gy, w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1], None, gx, q)
    return gx


def conv_entries(conv, forward: str, bwd_data: str) -> tuple:
    """The registry entry points of a forward conv `conv(x, w, b, y, p)` (y preallocated, written whole): the
    forward, and the data gradient of a stride-1 conv through data_gradient; named `forward` and `bwd_data`."""

    def fwd(p: ConvParams, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        y = empty(p.y_shape, np.float32)
        if y.size:
            conv(x, w, b, y, p)
        return y

    def bwd(p: ConvParams, gy: np.ndarray, w: np.ndarray) -> np.ndarray:
        return data_gradient(conv, p, gy, w)

    for fn, name in ((fwd, forward), (bwd, bwd_data)):
        fn.__name__ = fn.__qualname__ = name
    return fwd, bwd


conv2d_fwd_v10_amx, conv2d_bwd_data_v4_amx = conv_entries(_gemm, "conv2d_fwd_v10_amx", "conv2d_bwd_data_v4_amx")


def _matmul(a: np.ndarray, bt: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """a (M, L) @ bt.T (bt: (R, L)) + bias as a 1x1 conv whose 1 x M plane is a's rows (a and the result seen
    transposed; any strides)."""
    (M, L), R = a.shape, bt.shape[0]
    out = empty((M, R), np.float32)
    if out.size:
        conv = ConvParams(
            1, L, 1, M, R, 1, 1, (1, 1), ((0, 0), (0, 0)), (1, 1), 1, "zeros", np.dtype(np.float32), False
        )
        _gemm(a.T[None, :, None, :], bt[:, :, None, None], bias, out.T[None, :, None, :], conv)
    return out


def linear_entries(matmul, name: str) -> tuple:
    """linear's forward and both gradients as one GEMM `matmul(a, bt, bias) = a @ bt.T + bias` (any strides), as
    linear_gemm_v3_packed: y = x @ w.T + b, gx (N, C) = gy @ w, gw (K, C) = gy.T @ x (the batch is the reduction)."""

    def forward(p: LinearParams, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        return matmul(x, w, b)

    def bwd_data(p: LinearParams, gy: np.ndarray, w: np.ndarray) -> np.ndarray:
        return matmul(gy, w.T, None)

    def bwd_weight(p: LinearParams, gy: np.ndarray, x: np.ndarray) -> np.ndarray:
        return matmul(gy.T, x.T, None)

    for fn, suffix in ((forward, ""), (bwd_data, "_bwd_data"), (bwd_weight, "_bwd_weight")):
        fn.__name__ = fn.__qualname__ = name + suffix
    return forward, bwd_data, bwd_weight


linear_gemm_v4_amx, linear_gemm_v4_amx_bwd_data, linear_gemm_v4_amx_bwd_weight = linear_entries(
    _matmul, "linear_gemm_v4_amx"
)
