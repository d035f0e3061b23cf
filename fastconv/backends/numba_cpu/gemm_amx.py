"""A cache-blocked bfloat16 GEMM on AMX tiles: Y[b] (M, N) = A (M, L) @ B[b] (N, L)^T + bias, float32 in and out.

    linear_gemm_v5_amx_blocked   linear and both its gradients as this GEMM (A, B strided views of x, w, gy):
                                     forward   Y = y (N, K),  A = x,     B = w
                                     grad x    Y = gx (N, C), A = gy,    B = w^T
                                     grad w    Y = gw (K, C), A = gy^T,  B = x^T  (the batch is the reduction)

Both operands are rounded to bfloat16 (round to nearest, ties to even; NaN stays NaN) and packed once per call into
tile order, so that every tile load reads 1 KiB of consecutive bytes: A as (M/32, L/32, 2, 16, 32) — for each
block of 32 rows and step of 32 reduction values, its two 16 x 32 A tiles one after the other — and B as
(N/32, L/32, 2, 16, 16) uint32, the VNNI pairs (B[j, 2i], B[j, 2i + 1]) of two 16-column B tiles. Rows and
columns past the ends and reduction values past L are packed as zeros, so the tile loop has no edges.

The tile loop (amx.amx_panel_step) keeps a 2 x 2 block of 16 x 16 float32 accumulators in tmm0..tmm3 and per step
loads two A tiles and two B tiles into tmm4..tmm7, each used twice: 4 x 8192 multiply-adds from 4 KiB. One parallel
iteration (task) owns a block of TASK_M x TASK_N results of one product b: per slice of KC steps, for each 32-column
micro-panel of B (KC x 2 KiB) it runs every 32-row block of the task (A's TASK_M x KC slice, in L2), the
accumulators starting from the bias (slice 0) or from the partial sums the previous slice stored. Long slices
measured best here (2048 reduction values: 597 GFLOP/s against 403 with slices of 512, whose B micro-panel would
stay in L1, and 500-545 with the partial sums kept in task scratch instead of y; bench_results/bf16_cpu.md). Each
result is owned by one task and summed in a fixed order (slice by slice, step by step), so the thread count never
changes a bit. Whole blocks are stored straight into Y; a task reaching past M or N works in its own scratch and
copies the valid part. Each task loads the tile configuration (ldtilecfg is per thread) and releases the tiles when
done.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...arrays import empty
from . import amx
from .config import ceil_div, inner, kernel, workspace
from .conv2d_amx import linear_entries, to_bf16

B32 = amx.BLOCK  # rows (columns) of the accumulator block, and reduction values per step
TASK_M, TASK_N = 8, 8  # 32-row and 32-column blocks per task: 256 x 256 results
KC = 64  # steps of 32 per reduction slice (2048 values): fewer accumulator reloads beat L1 residence here
A_TILE, B_TILE = amx.PANEL_TILE // 2, amx.PANEL_TILE // 4  # elements of one packed tile (uint16, uint32)


@inner
def rounded_block(src, r0, c0, tmp):
    """tmp[i, j] = bfloat16 bits of src[r0 + i, c0 + j] (src: float32 bits), zero past src's ends; callers pass
    src with its second axis the contiguous one, so every row of the block is one run of memory."""
    R, C = src.shape
    if r0 + B32 <= R and c0 + B32 <= C:
        for i in range(B32):
            for j in range(B32):
                tmp[i, j] = to_bf16(src[r0 + i, c0 + j])
    else:
        for i in range(B32):
            for j in range(B32):
                r, c = r0 + i, c0 + j
                tmp[i, j] = to_bf16(src[r, c]) if r < R and c < C else np.uint32(0)


@kernel
def pack_a(src, ap, transposed):
    """ap[mb, kt, h, r, c] = bfloat16 bits of A[32 mb + 16 h + r, 32 kt + c], zero past the ends; src = A's
    float32 bits (M, L), or A.T's (L, M) when `transposed`. Blocks of 32 x 32 are read along src's rows; a task
    walks along them (all steps of one 32-row block, or all row blocks of one step), so each task reads 32 runs of
    memory and no page is revisited by many tasks."""
    blocks, steps = ap.shape[0], ap.shape[1]
    outer, inner_ = (steps, blocks) if transposed else (blocks, steps)
    for t in prange(outer):
        tmp = np.empty((B32, B32), np.uint32)
        for u in range(inner_):
            if not transposed:  # a block of A is one 32 x 32 block of ap
                rounded_block(src, t * B32, u * B32, ap[t, u].reshape((B32, B32)))
                continue
            rounded_block(src, t * B32, u * B32, tmp)  # src is A.T: rows are reduction values
            for h in range(2):
                for r in range(16):
                    out = ap[u, t, h, r]
                    for c in range(B32):
                        out[c] = np.uint16(tmp[c, h * 16 + r])


@kernel
def pack_b(src, bp, transposed):
    """bp[b, nb, kt, h, i, j] = the bfloat16 pair (B[b][n, 2i'], B[b][n, 2i' + 1]) as one uint32, low half first,
    n = 32 nb + 16 h + j and i' = 16 kt + i, zero past the ends; src = the float32 bits of B (batch, N, L), or
    of B transposed (batch, L, N) when `transposed`; tasks walk along src's rows as pack_a's."""
    batch, blocks, steps = bp.shape[0], bp.shape[1], bp.shape[2]
    per = steps if transposed else blocks
    for t in prange(batch * per):
        b = t // per
        tmp = np.empty((B32, B32), np.uint32)
        for u in range(blocks if transposed else steps):
            nb, kt = (u, np.int64(t % per)) if transposed else (np.int64(t % per), u)
            if transposed:
                rounded_block(src[b], kt * B32, nb * B32, tmp)
            else:
                rounded_block(src[b], nb * B32, kt * B32, tmp)
            for h in range(2):
                for i in range(16):
                    out = bp[b, nb, kt, h, i]
                    for j in range(16):
                        if transposed:
                            lo, hi = tmp[2 * i, h * 16 + j], tmp[2 * i + 1, h * 16 + j]
                        else:
                            lo, hi = tmp[h * 16 + j, 2 * i], tmp[h * 16 + j, 2 * i + 1]
                        out[j] = lo | (hi << np.uint32(16))


@kernel
def gemm_tiles(ap, bp, init, i_ld, i_col, y, M, N, steps, cfg, task_m, task_n, kc):
    """y (flat, batch x M x N) = the product of the packed panels plus `init`, whose (32 mb + r, 32 nb + c)
    element sits at mb*32*i_ld + nb*32*i_col + r*i_ld + c (a column bias: i_ld = 0, i_col = 1; a row bias tile:
    i_ld = 32, i_col = 0)."""
    m_blocks, n_blocks = ceil_div(M, B32), ceil_div(N, B32)
    tm, tn = ceil_div(m_blocks, task_m), ceil_div(n_blocks, task_n)
    batch = y.size // (M * N)
    for t in prange(batch * tm * tn):
        b, i, j = t // (tm * tn), (t // tn) % tm, t % tn
        mb0, nb0 = i * task_m, j * task_n
        mb1, nb1 = min(m_blocks, mb0 + task_m), min(n_blocks, nb0 + task_n)
        whole = mb1 * B32 <= M and nb1 * B32 <= N
        if whole:
            dst, base, ld = y, b * M * N + mb0 * B32 * N + nb0 * B32, N
        else:
            ld = (nb1 - nb0) * B32
            dst, base = np.empty((mb1 - mb0) * B32 * ld, np.float32), 0
        amx.amx_configure(cfg)
        for k0 in range(0, steps, kc):
            for nb in range(nb0, nb1):
                b_at = ((b * n_blocks + nb) * steps + k0) * 2 * B_TILE
                for mb in range(mb0, mb1):
                    at = base + (mb - mb0) * B32 * ld + (nb - nb0) * B32
                    if k0 == 0:
                        amx.amx_begin(init, mb * B32 * i_ld + nb * B32 * i_col, i_ld)
                    else:
                        amx.amx_begin(dst, at, ld)
                    a_at = (mb * steps + k0) * 2 * A_TILE
                    for kt in range(min(kc, steps - k0)):
                        amx.amx_panel_step(ap, a_at + kt * 2 * A_TILE, bp, b_at + kt * 2 * B_TILE)
                    amx.amx_end(dst, at, ld)
        amx.amx_release()
        if not whole:
            for r in range(min(M - mb0 * B32, (mb1 - mb0) * B32)):
                row = b * M * N + (mb0 * B32 + r) * N + nb0 * B32
                for c in range(min(N - nb0 * B32, ld)):
                    y[row + c] = dst[r * ld + c]


def aligned(name: str, shape: tuple, dtype) -> np.ndarray:
    """Scratch (config.workspace, contents undefined) starting on a 64-byte boundary: a tile row straddling two
    cache lines loads several times slower."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) * dtype.itemsize
    raw = workspace(name, n + 64, np.dtype(np.uint8))
    start = -raw.ctypes.data % 64
    return raw[start : start + n].view(dtype).reshape(shape)


def pack(a: np.ndarray, b3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The packed panels of A (M, L) and B (batch, N, L), any strides (float32)."""
    (M, L), (batch, N, _) = a.shape, b3.shape
    steps = ceil_div(L, B32)
    ap = aligned("amx_gemm_a", (ceil_div(M, B32), steps, 2, 16, B32), np.uint16)
    bp = aligned("amx_gemm_b", (batch, ceil_div(N, B32), steps, 2, 16, 16), np.uint32)
    a_t = a.strides[0] < a.strides[1]  # read along the contiguous axis
    b_t = b3.strides[1] < b3.strides[2]
    pack_a((a.T if a_t else a).view(np.uint32), ap, a_t)
    pack_b((b3.transpose(0, 2, 1) if b_t else b3).view(np.uint32), bp, b_t)
    return ap, bp


def run_gemm(ap, bp, y3: np.ndarray, init: np.ndarray, i_ld: int, i_col: int) -> None:
    """y3 (batch, M, N), C-contiguous, = the packed product plus init (see gemm_tiles)."""
    _, M, N = y3.shape
    args = (M, N, ap.shape[1], amx.tile_config(), TASK_M, TASK_N, KC)
    gemm_tiles(ap.reshape(-1), bp.reshape(-1), init, i_ld, i_col, y3.reshape(-1), *args)


def matmul(a: np.ndarray, bt: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """a (M, L) @ bt.T (bt: (N, L)) + bias (N), any strides."""
    (M, _), N = a.shape, bt.shape[0]
    y = empty((M, N), np.float32)
    if y.size:
        init = np.zeros(ceil_div(N, B32) * B32, np.float32)
        if bias is not None:
            init[:N] = bias
        ap, bp = pack(a, bt[None])
        run_gemm(ap, bp, y[None], init, 0, 1)
    return y


linear_gemm_v5_amx_blocked, linear_gemm_v5_amx_blocked_bwd_data, linear_gemm_v5_amx_blocked_bwd_weight = linear_entries(
    matmul, "linear_gemm_v5_amx_blocked"
)
