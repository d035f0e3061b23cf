"""conv2d v5_rows: a register-tiled direct conv vectorised along output rows, forward and data gradient.

Layout ("phase planes"): the zero-padded input of each (n, c) is split by stride phase, plane (a, b) holding
xpad[i*sh + a, j*sw + b] for i < Hh = ceil(Hp/sh), j < Wh = ceil(Wp/sw), the sh*sw planes one after another (plus
zero slack) in a flat buffer of L elements per (n, c). Tap (r, s) then reads, for output (p, q), element
    off[r, s] + p*Wh + q,   off[r, s] = phase(r*dh % sh, s*dw % sw) * Hh*Wh + (r*dh // sh)*Wh + (s*dw // sw)
so every tap of every stride/dilation/padding is a constant offset and LANES consecutive outputs of a row read
LANES consecutive inputs: one vector load.

    conv2d_fwd_v5_rows       iteration = (n, group, block of VECS output rows, LANES-column chunk); for each block
                             of ROWS output channels a ROWS x VECS tile of LANES-wide accumulators (8 x 3 zmm with
                             AVX-512) sums over (c, r, s): per tap VECS vector loads + ROWS weight broadcasts feed
                             ROWS*VECS FMAs. Bias preloaded; the masked store (rows/columns past the edge) is the
                             epilogue; the layout change is part of every call.
    conv2d_bwd_data_v2_rows  the adjoint of the same map: gX_phase[i, j] = sum over taps t of that phase and k of
                             w[k, c, t] * gy[i - rho_t, j - sigma_t], a stride-1 correlation of zero-bordered gy
                             planes with the taps flipped, on the same kernel (per phase; for stride 1 straight
                             into gx), followed by the inverse phase split.
Speed per layer: bench_results/numba_cpu.md.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numba import prange, uintp

from ...params import ConvParams
from .config import TILE_ROWS, TILE_VECS, ceil_div, filled, inner, kernel, lanes, workspace
from .conv2d_direct import bias_or_zeros
from .simd import tile_bcast, tile_fma, tile_load, tile_store
from .simd_lanes import vec_copy, vec_lanes

ROWS, VECS = TILE_ROWS, TILE_VECS
CBLOCK = 32  # input channels per cache block (measured: 32 beat 8, 16 and no blocking on cases a, b, c, h)


@kernel
def conv_rows(xt, in0, L, Wx, offs, wt, bias, out, out0, kstride, pstride, N, P, Q, G, Cin_g, Cout_g, lanes):
    """out[n, g*Cout_g + k, p, q] (element out0 + (n*Cout + k)*kstride + p*pstride + q) = bias + sum over input
    channels c < Cin_g of group g and taps t of wt[g, k // ROWS, t, c, k % ROWS] * xt[in0 + (n*Cin + c)*L + offs[t]
    + p*Wx + q]. One iteration = one (n, g, VECS-row block, LANES-column chunk), all its output channels, so
    iterations write disjoint pixels; rows/columns/channels past the edge are computed on slack and not stored."""
    T = offs.size
    nkb = ceil_div(Cout_g, ROWS)
    npb, nqc = ceil_div(P, VECS), ceil_div(Q, lanes)
    for it in prange(N * G * npb * nqc):
        qc, pb = it % nqc, (it // nqc) % npb
        g, n = (it // (nqc * npb)) % G, it // (nqc * npb * G)
        p0, q0 = pb * VECS, qc * lanes
        xbase = in0 + (n * G + g) * Cin_g * L + p0 * Wx + q0
        for c0 in range(0, Cin_g, CBLOCK):  # input-channel blocks: their x rows stay in L1 across all kb
            for kb in range(nkb):
                ybase = out0 + (n * G * Cout_g + g * Cout_g + kb * ROWS) * kstride + p0 * pstride + q0
                m = Cout_g - kb * ROWS
                acc = tile_bcast(bias, (g * nkb + kb) * ROWS, 1, ROWS, VECS)
                if c0 > 0:  # resume the partial sums stored after the previous block
                    acc = tile_load(acc, out, ybase, kstride, pstride, m, P - p0, 0, Q - q0)
                wbase = (g * nkb + kb) * Cin_g * T * ROWS
                for t in range(T):
                    xa, wa = xbase + offs[t], wbase + t * Cin_g * ROWS
                    for c in range(c0, min(c0 + CBLOCK, Cin_g)):
                        acc = tile_fma(acc, xt, xa + c * L, Wx, wt, wa + c * ROWS, 1)
                tile_store(acc, out, ybase, kstride, pstride, m, P - p0, 0, Q - q0)


@inner
def split_plane(x, n, c, plane, sh, sw, pt, pl, Hh, Wh):
    """plane[((a*sw + b)*Hh + i)*Wh + j] = x[n, c, i*sh + a - pt, j*sw + b - pl], zero outside x and in the slack
    to the end of `plane`: zero-fill, then copy each input row's valid run (vector moves for stride 1). Indices are
    cast to uintp: a signed composite index would get Numba's negative-index wraparound and stop vectorisation."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    for e in range(plane.size):
        plane[e] = 0
    lanes, flat = vec_lanes(plane), x.reshape(-1)
    for h in range(max(0, -pt), min(H, Hh * sh - pt)):
        a, i = (h + pt) % sh, (h + pt) // sh
        for b in range(sw):
            j0 = min(max(0, -((b - pl) // sw)), Wh)  # first j with j*sw + b - pl >= 0
            j1 = max(min(Wh, (W - 1 - b + pl) // sw + 1), j0)
            row = ((a * sw + b) * Hh + i) * Wh + j0
            src = ((n * C + c) * H + h) * W + j0 * sw + b - pl
            if sw == 1:
                for j in range(0, j1 - j0, lanes):
                    vec_copy(plane, row + j, x, src + j, j1 - j0 - j)
            else:
                for j in range(j1 - j0):
                    plane[uintp(row + j)] = flat[uintp(src + sw * j)]


@kernel
def to_phase_planes(x, xt, sh, sw, pt, pl, Hh, Wh, L):
    """split_plane for every (n, c) into xt[(n*C + c)*L : +L], one plane per iteration."""
    C = x.shape[1]
    for nc in prange(x.shape[0] * C):
        split_plane(x, nc // C, nc % C, xt[nc * L : (nc + 1) * L], sh, sw, pt, pl, Hh, Wh)


@kernel
def from_phase_planes(gt, gx, sh, sw, pt, pl, Hh, Wh):
    """The inverse split: gx[n, c, h, w] = gt[n, c, phase((h+pt) % sh, (w+pl) % sw), (h+pt) // sh, (w+pl) // sw].
    One (n, c) plane per iteration."""
    N, C, H, W = gx.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for h in range(H):
            a, i = (h + pt) % sh, (h + pt) // sh
            for w in range(W):
                b, j = (w + pl) % sw, (w + pl) // sw
                gx[n, c, h, w] = gt[n, c, a * sw + b, i, j]


# ---------------------------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class Planes:
    """The phase-plane layout of (N, C, H, W) data padded by (pt, pb), (pl, pr) and split by stride (sh, sw)."""

    sh: int
    sw: int
    pt: int
    pl: int
    Hh: int
    Wh: int
    L: int  # elements per (n, c), slack included

    @classmethod
    @functools.lru_cache(maxsize=1024)  # noqa: B019 - the arguments are ints and tuples; the cache is the point
    def of(
        cls,
        H: int,
        W: int,
        pads: tuple,
        stride: tuple,
        lanes_: int,
        min_rows: int = 0,
        min_cols: int = 0,
        vecs: int = VECS,
    ):
        """Slack: a tile of `vecs` rows x lanes_ columns may start at any output and read past the last row."""
        (pt, pb), (pl, pr) = pads
        sh, sw = stride
        Hh, Wh = max(ceil_div(H + pt + pb, sh), min_rows), max(ceil_div(W + pl + pr, sw), min_cols)
        return cls(sh, sw, pt, pl, Hh, Wh, sh * sw * Hh * Wh + (vecs + 1) * Wh + lanes_)

    def offset(self, hh: int, ww: int) -> int:
        """Flat offset of padded-input position (hh, ww) relative to output (0, 0)."""
        phase = (hh % self.sh) * self.sw + ww % self.sw
        return (phase * self.Hh + hh // self.sh) * self.Wh + ww // self.sw

    def split(self, x: np.ndarray, name: str = "planes") -> np.ndarray:
        xt = workspace(name, x.shape[0] * x.shape[1] * self.L, x.dtype)
        if xt.size:
            to_phase_planes(x, xt, self.sh, self.sw, self.pt, self.pl, self.Hh, self.Wh, self.L)
        return xt


@inner
def pack_taps(wg, ts, out):
    """out (G, nkb, len(ts), Cin_g, ROWS) flat = wg (G, Cout_g, Cin_g, T)[..., ts] regrouped for conv_rows, output
    channels zero-padded to a multiple of ROWS."""
    G, Co, Ci = wg.shape[0], wg.shape[1], wg.shape[2]
    nkb, nt = ceil_div(Co, ROWS), ts.size
    for g in range(G):
        for kb in range(nkb):
            for j in range(nt):
                for c in range(Ci):
                    base = (((g * nkb + kb) * nt + j) * Ci + c) * ROWS
                    for i in range(ROWS):
                        k = kb * ROWS + i
                        out[base + i] = wg[g, k, c, ts[j]] if k < Co else 0


def pack(wg: np.ndarray, ts: np.ndarray | None = None) -> np.ndarray:
    """(G, Cout_g, Cin_g, T) weights, taps ts (all by default) -> (G, nkb, len(ts), Cin_g, ROWS) flat, output
    channels zero-padded to ROWS."""
    G, Co, Ci, T = wg.shape
    ts = np.arange(T) if ts is None else ts
    out = np.empty(G * ceil_div(Co, ROWS) * ROWS * ts.size * Ci, wg.dtype)
    pack_taps(wg, ts, out)
    return out


def bias_blocks(p: ConvParams, b, dtype) -> np.ndarray:
    nkb = ceil_div(p.Kg, ROWS)
    out = np.zeros((p.groups, nkb * ROWS), dtype)
    out[:, : p.Kg] = bias_or_zeros(p, b, dtype).reshape(p.groups, p.Kg)
    return out.reshape(-1)


def _taps(p: ConvParams) -> list[tuple[int, int]]:
    return [(r * p.dilation[0], s * p.dilation[1]) for r in range(p.R) for s in range(p.S)]


def tap_offsets(p: ConvParams, pl: Planes) -> np.ndarray:
    """Offset of each tap (r, s), row-major, in the phase-plane layout `pl`."""
    return np.array([pl.offset(hh, ww) for hh, ww in _taps(p)], np.int64)


# ---------------------------------------------------------------------------------------------- registry ops
def conv2d_fwd_v5_rows(p: ConvParams, x, w, b):
    lanes_ = lanes(x.itemsize)
    pl = Planes.of(p.H, p.W, p.padding, p.stride, lanes_)
    xt = pl.split(x)
    wt = pack(w.reshape(p.groups, p.Kg, p.Cg, p.R * p.S))
    bias = bias_blocks(p, b, x.dtype)
    return filled(
        p.y_shape,
        x.dtype,
        lambda y: conv_rows(
            xt,
            0,
            pl.L,
            pl.Wh,
            tap_offsets(p, pl),
            wt,
            bias,
            y.reshape(-1),
            0,
            p.P * p.Q,
            p.Q,
            p.N,
            p.P,
            p.Q,
            p.groups,
            p.Cg,
            p.Kg,
            lanes_,
        ),
    )


@functools.lru_cache(maxsize=1024)
def _bwd_data_layout(p: ConvParams, itemsize: int) -> tuple:
    """Once per params: the input's and gy's phase planes, and per stride phase its taps with their offsets into
    the zero-bordered gy planes (a phase without a tap has none)."""
    lanes_ = lanes(itemsize)
    (sh, sw), taps = p.stride, _taps(p)
    xl = Planes.of(p.H, p.W, p.padding, p.stride, lanes_)
    rho, sigma = max(hh // sh for hh, _ in taps), max(ww // sw for _, ww in taps)
    gl = Planes.of(p.P, p.Q, ((rho, 0), (sigma, 0)), (1, 1), lanes_, xl.Hh + rho, xl.Wh + sigma)
    phases = []
    for phase in range(sh * sw):
        ts = [t for t, (hh, ww) in enumerate(taps) if (hh % sh) * sw + ww % sw == phase]
        offs = [(rho - taps[t][0] // sh) * gl.Wh + sigma - taps[t][1] // sw for t in ts]
        phases.append((np.array(ts, np.int64), np.array(offs, np.int64)))
    return lanes_, xl, gl, phases


def conv2d_bwd_data_v2_rows(p: ConvParams, gy, w):
    """Per stride phase: a stride-1 correlation of zero-bordered gy planes with that phase's taps, flipped; for
    stride 1 written straight into gx, else into phase planes that are then merged."""
    lanes_, xl, gl, phases = _bwd_data_layout(p, gy.itemsize)
    sh, sw = p.stride
    gyt = gl.split(gy, "grad_planes")
    wg = w.reshape(p.groups, p.Kg, p.Cg, p.R * p.S).transpose(0, 2, 1, 3)  # (G, Cg, Kg, T)
    zeros = np.zeros(p.groups * ceil_div(p.Cg, ROWS) * ROWS, gy.dtype)

    def phase_conv(ts, offs, out, out0, kstride, pstride, P, Q, in0):
        args = (out, out0, kstride, pstride, p.N, P, Q, p.groups, p.Kg, p.Cg, lanes_)
        conv_rows(gyt, in0, gl.L, gl.Wh, offs, pack(wg, ts), zeros, *args)

    if (sh, sw) == (1, 1):
        in0 = p.padding[0][0] * gl.Wh + p.padding[1][0]
        ts, offs = phases[0]
        return filled(
            p.x_shape, gy.dtype, lambda gx: phase_conv(ts, offs, gx.reshape(-1), 0, p.H * p.W, p.W, p.H, p.W, in0)
        )
    gX = workspace("phase_grads", p.N * p.C * sh * sw * xl.Hh * xl.Wh, gy.dtype).reshape(
        p.N, p.C, sh * sw, xl.Hh, xl.Wh
    )
    planes = xl.Hh * xl.Wh
    for phase, (ts, offs) in enumerate(phases):
        if ts.size:
            phase_conv(ts, offs, gX.reshape(-1), phase * planes, gX.shape[2] * planes, xl.Wh, xl.Hh, xl.Wh, 0)
        else:
            gX[:, :, phase] = 0
    return filled(
        p.x_shape,
        gy.dtype,
        lambda gx: from_phase_planes(gX, gx, sh, sw, p.padding[0][0], p.padding[1][0], xl.Hh, xl.Wh),
    )
