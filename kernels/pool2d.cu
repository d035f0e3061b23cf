// pool2d.cu: max / average / adaptive / global average pooling, forward and backward, NCHW.
//   x (N,C,H,W) -> y (N,C,P,Q); window (kh,kw), stride (sh,sw), symmetric padding (ph,pw), dilation (dh,dw)
//   P = floor or ceil((H + 2ph - dh*(kh-1) - 1) / sh) + 1 (ceil_mode as PyTorch; computed by fastconv.params)
//   window (p,q) taps rows h = p*sh - ph + r*dh, r < kh (likewise columns); taps outside the input are skipped.
//   max: first maximum in row-major tap order, NaN wins; idx = h*W + w of it in its plane (-1: window holds no input).
//   avg: sum / divisor, divisor as PyTorch (window clipped to the padded input; to the input if !count_include_pad).
//   adaptive: y[p,q] = mean of rows [floor(p*H/P), ceil((p+1)*H/P)) x columns likewise.   global: mean of the plane.
// Versions (entry points <name>_f32 / <name>_f64); all one thread per output or input element, grid-stride, POOL_BLOCK
// threads, except global_avg_pool2d_fwd_v1 (one warp per plane, POOL_BLOCK/32 warps a block, warp_sum).
//   max_pool2d_fwd_v1, avg_pool2d_fwd_v1, adaptive_avg_pool2d_fwd_v1: thread per output, reads its window.
//   max_pool2d_bwd_v1 (from the forward's indices), avg_pool2d_bwd_v1, adaptive_avg_pool2d_bwd_v1 (and its
//   global_avg_pool2d_bwd_v1 entry points): thread per input
//   element gathers from the windows that cover it, so no atomics and each gx written once.
//   v1 decomposes every flat index with 64-bit divisions (i % Q, i / Q % P, i / (P*Q): ~100+ instructions per
//   element), and max_pool2d_bwd_v1 needs the forward's int64 indices, which the registry's max_pool2d_bwd(p, gy, x)
//   does not carry (the public max_pool2d_backward(grad_out, x, ...) takes x, not indices: DESIGN.md), so the
//   backward first re-ran the whole forward, writing y and 8-byte indices to DRAM and reading them back.
// v3 (numba has v2): tiles of POOL_BLOCK threads (a power of two) as planes x rows x columns, TPL x TH x TW, each
//   a power of two chosen by the launcher from the sizes (TW up to 32, TH and TPL to fill the block: small planes
//   share a block); a thread's (plane, row, column) are shifts and masks of threadIdx.x, and the grid (planes / TPL,
//   rows / TH, columns / TW) gives the rest: no division per element.
//   max_pool2d_fwd_v3_tiles, avg_pool2d_fwd_v3_tiles: one output per thread, v1's window scan (same ties, NaN,
//     divisor).
//   max_pool2d_bwd_v3_tiles, avg_pool2d_bwd_v3_tiles: one input element per thread. The block first computes, for
//     every window that covers its tile, the window's argmax tap (max: the forward's scan, recomputed once per
//     window, not once per input element) and its gy (avg: gy / divisor) into dynamic shared memory, and tables of
//     which window row (column) tap r (s) of each tile row (column) lands in (divisions per table entry, once per
//     block); after one barrier each thread sums, in v1's (r, s) order, the gy of the windows whose argmax it is
//     (all of them: avg). Same bits as v1. Shared memory: TPL x WP x WQ windows x (sizeof(T) + 4) + (TH kh + TW kw)
//     x 4 bytes.
//   Napkin math (H100, 3.35 TB/s; ResNet stem max pool 3x3 s2 p1, N=32 C=64 112x112 -> 56x56, f32): forward reads
//   x (103 MB) and writes y (26 MB): 129 MB, ~43 us at 90% of DRAM bandwidth; the window overlap (2.25 reads per
//   element) is served by L1/L2, 9 loads per output issue in ~1/2 of the time DRAM needs. Backward v3 reads x and gy
//   and writes gx: 232 MB, ~77 us at 90% (v1: forward with indices 180 MB + backward 180 MB: 360 MB and two 64-bit
//   division chains per element, ~10-30% of bandwidth). Per input element the backward issues ~40-60 instructions
//   (the window scans amortised, the shared-memory gather), near what 3.35 TB/s leaves an SM (~70 per element), so
//   expect 70-90% of DRAM bandwidth.
#include "common.cuh"

#ifndef POOL_BLOCK
#define POOL_BLOCK 256
#endif

#define POOL_GEOMETRY_PARAMS \
    int N, int C, int H, int W, int P, int Q, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw
#define POOL_GEOMETRY_ARGS N, C, H, W, P, Q, kh, kw, sh, sw, ph, pw, dh, dw

// Output i = ((n*C + c)*P + p)*Q + q scans its window; written once.
template <typename T>
__device__ void max_pool2d_fwd_v1(const T* __restrict__ x, T* __restrict__ y, long long* __restrict__ idx,
                                  int need_indices, POOL_GEOMETRY_PARAMS) {
    const long long total = (long long)N * C * P * Q;
    for (long long i = global_thread_index(); i < total; i += global_thread_count()) {
        const int q = (int)(i % Q), p = (int)(i / Q % P);
        const T* plane = x + i / ((long long)P * Q) * H * W;
        T best = negative_infinity<T>();
        long long arg = -1;
        for (int r = 0; r < kh; ++r) {
            const int h = p * sh - ph + r * dh;
            if (h < 0 || h >= H) continue;
            for (int s = 0; s < kw; ++s) {
                const int w = q * sw - pw + s * dw;
                if (w < 0 || w >= W) continue;
                const T v = plane[(long long)h * W + w];
                if (arg < 0 || v > best || (is_nan(v) && !is_nan(best))) best = v, arg = (long long)h * W + w;
            }
        }
        y[i] = best;
        if (need_indices) idx[i] = arg;
    }
}
#define MAX_FWD_PARAMS(T) \
    const T* __restrict__ x, T* __restrict__ y, long long* __restrict__ idx, int need_indices, POOL_GEOMETRY_PARAMS
FC_ENTRY_POINTS(max_pool2d_fwd_v1, MAX_FWD_PARAMS, x, y, idx, need_indices, POOL_GEOMETRY_ARGS)

// Input element i (grid-stride) sums contribution(o, hw, p, q) over the windows (p, q) that cover it, o being the
// flat output index of the window and hw = h*W + w. Written once: race-free, no atomics.
template <typename T, typename F>
__device__ void gather_windows(T* __restrict__ gx, POOL_GEOMETRY_PARAMS, F contribution) {
    const long long total = (long long)N * C * H * W;
    for (long long i = global_thread_index(); i < total; i += global_thread_count()) {
        const int w = (int)(i % W), h = (int)(i / W % H);
        const long long plane = i / ((long long)H * W) * P * Q;
        T acc = T(0);
        for_each_window(h, w, kh, kw, sh, sw, ph, pw, dh, dw, P, Q, [&](int p, int q, int, int) {
            acc += contribution(plane + p * Q + q, (long long)h * W + w, p, q);
        });
        gx[i] = acc;
    }
}

// Input element i gathers gy of the windows whose max it was (idx from max_pool2d_fwd_v1).
template <typename T>
__device__ void max_pool2d_bwd_v1(const T* __restrict__ gy, const long long* __restrict__ idx, T* __restrict__ gx,
                                  POOL_GEOMETRY_PARAMS) {
    gather_windows(gx, POOL_GEOMETRY_ARGS, [&](long long o, long long hw, int, int) { return idx[o] == hw ? gy[o] : T(0); });
}
#define MAX_BWD_PARAMS(T) \
    const T* __restrict__ gy, const long long* __restrict__ idx, T* __restrict__ gx, POOL_GEOMETRY_PARAMS
FC_ENTRY_POINTS(max_pool2d_bwd_v1, MAX_BWD_PARAMS, gy, idx, gx, POOL_GEOMETRY_ARGS)

// PyTorch's avg_pool2d divisor of window (p, q) (dilation 1).
__device__ __forceinline__ int avg_divisor(int p, int q, int include_pad, POOL_GEOMETRY_PARAMS) {
    int h0 = p * sh - ph, w0 = q * sw - pw;
    int h1 = min(h0 + kh, H + ph), w1 = min(w0 + kw, W + pw);
    if (include_pad) return (h1 - h0) * (w1 - w0);
    h0 = max(h0, 0), w0 = max(w0, 0), h1 = min(h1, H), w1 = min(w1, W);
    return (h1 - h0) * (w1 - w0);
}

// Output i sums its window clipped to the input (padding adds 0) and divides by PyTorch's divisor; written once.
template <typename T>
__device__ void avg_pool2d_fwd_v1(const T* __restrict__ x, T* __restrict__ y, int include_pad, POOL_GEOMETRY_PARAMS) {
    const long long total = (long long)N * C * P * Q;
    for (long long i = global_thread_index(); i < total; i += global_thread_count()) {
        const int q = (int)(i % Q), p = (int)(i / Q % P);
        const T* plane = x + i / ((long long)P * Q) * H * W;
        T acc = T(0);
        for (int h = max(p * sh - ph, 0); h < min(p * sh - ph + kh, H); ++h)
            for (int w = max(q * sw - pw, 0); w < min(q * sw - pw + kw, W); ++w) acc += plane[(long long)h * W + w];
        y[i] = acc / T(avg_divisor(p, q, include_pad, POOL_GEOMETRY_ARGS));
    }
}
#define AVG_FWD_PARAMS(T) const T* __restrict__ x, T* __restrict__ y, int include_pad, POOL_GEOMETRY_PARAMS
FC_ENTRY_POINTS(avg_pool2d_fwd_v1, AVG_FWD_PARAMS, x, y, include_pad, POOL_GEOMETRY_ARGS)

// Input element i gathers gy / divisor of each window that covers it.
template <typename T>
__device__ void avg_pool2d_bwd_v1(const T* __restrict__ gy, T* __restrict__ gx, int include_pad, POOL_GEOMETRY_PARAMS) {
    gather_windows(gx, POOL_GEOMETRY_ARGS, [&](long long o, long long, int p, int q) {
        return gy[o] / T(avg_divisor(p, q, include_pad, POOL_GEOMETRY_ARGS));
    });
}
#define AVG_BWD_PARAMS(T) const T* __restrict__ gy, T* __restrict__ gx, int include_pad, POOL_GEOMETRY_PARAMS
FC_ENTRY_POINTS(avg_pool2d_bwd_v1, AVG_BWD_PARAMS, gy, gx, include_pad, POOL_GEOMETRY_ARGS)

// Adaptive window of output row p over H rows: [floor(p*H/P), ceil((p+1)*H/P)).
__device__ __forceinline__ int window_start(int p, int H, int P) { return (int)((long long)p * H / P); }
__device__ __forceinline__ int window_end(int p, int H, int P) { return (int)(((long long)(p + 1) * H + P - 1) / P); }

// Output i averages its adaptive window; written once.
template <typename T>
__device__ void adaptive_avg_pool2d_fwd_v1(const T* __restrict__ x, T* __restrict__ y, int NC, int H, int W, int P, int Q) {
    for (long long i = global_thread_index(); i < (long long)NC * P * Q; i += global_thread_count()) {
        const int q = (int)(i % Q), p = (int)(i / Q % P);
        const T* plane = x + i / ((long long)P * Q) * H * W;
        const int h0 = window_start(p, H, P), h1 = window_end(p, H, P), w0 = window_start(q, W, Q), w1 = window_end(q, W, Q);
        T acc = T(0);
        for (int h = h0; h < h1; ++h)
            for (int w = w0; w < w1; ++w) acc += plane[(long long)h * W + w];
        y[i] = acc / T((h1 - h0) * (w1 - w0));
    }
}
#define ADAPTIVE_FWD_PARAMS(T) const T* __restrict__ x, T* __restrict__ y, int NC, int H, int W, int P, int Q
FC_ENTRY_POINTS(adaptive_avg_pool2d_fwd_v1, ADAPTIVE_FWD_PARAMS, x, y, NC, H, W, P, Q)

// Input (h, w) lies in output rows floor(h*P/H) .. ceil((h+1)*P/H) - 1 (and likewise columns).
template <typename T>
__device__ void adaptive_avg_pool2d_bwd_v1(const T* __restrict__ gy, T* __restrict__ gx, int NC, int H, int W, int P, int Q) {
    for (long long i = global_thread_index(); i < (long long)NC * H * W; i += global_thread_count()) {
        const int w = (int)(i % W), h = (int)(i / W % H);
        const T* plane = gy + i / ((long long)H * W) * P * Q;
        T acc = T(0);
        for (int p = window_start(h, P, H); p < window_end(h, P, H); ++p)
            for (int q = window_start(w, Q, W); q < window_end(w, Q, W); ++q) {
                const int area = (window_end(p, H, P) - window_start(p, H, P)) * (window_end(q, W, Q) - window_start(q, W, Q));
                acc += plane[(long long)p * Q + q] / T(area);
            }
        gx[i] = acc;
    }
}
#define ADAPTIVE_BWD_PARAMS(T) const T* __restrict__ gy, T* __restrict__ gx, int NC, int H, int W, int P, int Q
FC_ENTRY_POINTS(adaptive_avg_pool2d_bwd_v1, ADAPTIVE_BWD_PARAMS, gy, gx, NC, H, W, P, Q)
// The global pooling gradient is the adaptive one with P = Q = 1 (one window: the whole plane), under its own name.
FC_ENTRY_POINTS_OF(global_avg_pool2d_bwd_v1, adaptive_avg_pool2d_bwd_v1, ADAPTIVE_BWD_PARAMS, gy, gx, NC, H, W, P, Q)

// Warp v of the grid averages planes v, v + warps, ...: lanes stride over the plane, warp_sum, lane 0 writes. The
// loop bound is the same for all lanes of a warp, so every shuffle has its full warp.
template <typename T>
__device__ void global_avg_pool2d_fwd_v1(const T* __restrict__ x, T* __restrict__ y, long long NC, long long HW) {
    const long long warps = global_thread_count() / 32;
    for (long long plane = global_thread_index() / 32; plane < NC; plane += warps) {
        T acc = T(0);
        for (long long j = threadIdx.x % 32; j < HW; j += 32) acc += x[plane * HW + j];
        acc = warp_sum(acc);
        if (threadIdx.x % 32 == 0) y[plane] = acc / T(HW);
    }
}
#define GLOBAL_FWD_PARAMS(T) const T* __restrict__ x, T* __restrict__ y, long long NC, long long HW
FC_ENTRY_POINTS(global_avg_pool2d_fwd_v1, GLOBAL_FWD_PARAMS, x, y, NC, HW)

// ---------------------------------------------------------------------------------------------- v3
// Thread threadIdx.x of a TPL x TH x TW tile (TW = 2^lw, TH = 2^lh, TPL = POOL_BLOCK / (TW * TH)): its plane in the
// block, row and column.
__device__ __forceinline__ void tile_coords(int lw, int lh, int& pl, int& row, int& col) {
    const int t = (int)threadIdx.x;
    col = t & ((1 << lw) - 1), row = (t >> lw) & ((1 << lh) - 1), pl = t >> (lw + lh);
}

// The max of window (p, q) of a plane as v1 scans it (first maximum in row-major tap order, NaN wins): value, tap
// r * kw + s and h * W + w of it (-1 and -inf when the window holds no input).
template <typename T>
__device__ __forceinline__ T window_max(const T* __restrict__ plane, int p, int q, int& tap, int& hw,
                                        POOL_GEOMETRY_PARAMS) {
    T best = negative_infinity<T>();
    tap = -1, hw = -1;
    for (int r = 0; r < kh; ++r) {
        const int h = p * sh - ph + r * dh;
        if (h < 0 || h >= H) continue;
        for (int s = 0; s < kw; ++s) {
            const int w = q * sw - pw + s * dw;
            if (w < 0 || w >= W) continue;
            const T v = plane[h * W + w];
            if (tap < 0 || v > best || (is_nan(v) && !is_nan(best))) best = v, tap = r * kw + s, hw = h * W + w;
        }
    }
    return best;
}

// The mean of window (p, q) as avg_pool2d_fwd_v1 computes it (window clipped to the input, PyTorch's divisor).
template <typename T>
__device__ __forceinline__ T window_mean(const T* __restrict__ plane, int p, int q, int include_pad,
                                         POOL_GEOMETRY_PARAMS) {
    T acc = T(0);
    for (int h = max(p * sh - ph, 0); h < min(p * sh - ph + kh, H); ++h)
        for (int w = max(q * sw - pw, 0); w < min(q * sw - pw + kw, W); ++w) acc += plane[h * W + w];
    return acc / T(avg_divisor(p, q, include_pad, POOL_GEOMETRY_ARGS));
}

// Output (plane, p, q) of the thread's tile position: its window's max (and index) or mean. Written once; no
// barriers, so threads past the edges just return. H * W < 2^31 (supports).
template <typename T, bool MAX>
__device__ void pool_fwd_v3(const T* __restrict__ x, T* __restrict__ y, long long* __restrict__ idx, int need_indices,
                            int include_pad, int lw, int lh, POOL_GEOMETRY_PARAMS) {
    int pl, row, col;
    tile_coords(lw, lh, pl, row, col);
    const long long plane = (long long)blockIdx.x * (POOL_BLOCK >> (lw + lh)) + pl;
    const int p = ((int)blockIdx.y << lh) + row, q = ((int)blockIdx.z << lw) + col;
    if (plane >= (long long)N * C || p >= P || q >= Q) return;
    const T* xp = x + plane * H * W;
    const long long o = (plane * P + p) * Q + q;
    if (MAX) {
        int tap, hw;
        y[o] = window_max(xp, p, q, tap, hw, POOL_GEOMETRY_ARGS);
        if (need_indices) idx[o] = hw;
    } else {
        y[o] = window_mean(xp, p, q, include_pad, POOL_GEOMETRY_ARGS);
    }
}
template <typename T>
__device__ void max_pool2d_fwd_v3_tiles(const T* __restrict__ x, T* __restrict__ y, long long* __restrict__ idx,
                                  int need_indices, int lw, int lh, POOL_GEOMETRY_PARAMS) {
    pool_fwd_v3<T, true>(x, y, idx, need_indices, 0, lw, lh, POOL_GEOMETRY_ARGS);
}
#define MAX_FWD_V3_PARAMS(T)                                                                                     \
    const T* __restrict__ x, T* __restrict__ y, long long* __restrict__ idx, int need_indices, int lw, int lh, \
        POOL_GEOMETRY_PARAMS
FC_ENTRY_POINTS(max_pool2d_fwd_v3_tiles, MAX_FWD_V3_PARAMS, x, y, idx, need_indices, lw, lh, POOL_GEOMETRY_ARGS)
template <typename T>
__device__ void avg_pool2d_fwd_v3_tiles(const T* __restrict__ x, T* __restrict__ y, int include_pad, int lw, int lh,
                                  POOL_GEOMETRY_PARAMS) {
    pool_fwd_v3<T, false>(x, y, nullptr, 0, include_pad, lw, lh, POOL_GEOMETRY_ARGS);
}
#define AVG_FWD_V3_PARAMS(T) \
    const T* __restrict__ x, T* __restrict__ y, int include_pad, int lw, int lh, POOL_GEOMETRY_PARAMS
FC_ENTRY_POINTS(avg_pool2d_fwd_v3_tiles, AVG_FWD_V3_PARAMS, x, y, include_pad, lw, lh, POOL_GEOMETRY_ARGS)

// floor(a / b) and ceil(a / b) for b > 0 and any sign of a.
__device__ __forceinline__ int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
__device__ __forceinline__ int ceil_div_signed(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// table[i * k + t] = the window (row or column) index, from `lo`, whose tap t lands on tile position i (input index
// base + i), or -1: tap t of window j reads j * stride - pad + t * dil.
__device__ __forceinline__ void tap_table(int* table, int i, int base, int n, int k, int stride, int pad, int dil,
                                          int lo, int hi) {
    for (int t = 0; t < k; ++t) {
        const int a = base + i + pad - t * dil, j = a >= 0 ? a / stride : -1;
        table[i * k + t] = base + i < n && a >= 0 && j * stride == a && j >= lo && j <= hi ? j - lo : -1;
    }
}

// Block (planes, rows, columns) tile of the input; one element per thread: see the file header. WPS x WQS: the
// windows per plane the shared arrays hold (the launcher's bound on how many windows can cover TH rows, TW
// columns). Every gx of the tile written once, by its thread: race-free; one barrier, in uniform control flow.
template <typename T, bool MAX>
__device__ void pool_bwd_v3(const T* __restrict__ gy, const T* __restrict__ x, T* __restrict__ gx, int include_pad,
                            int lw, int lh, int WPS, int WQS, POOL_GEOMETRY_PARAMS) {
    int pl, row, col;
    tile_coords(lw, lh, pl, row, col);
    const int TW = 1 << lw, TH = 1 << lh, TPL = POOL_BLOCK >> (lw + lh);
    const int h0 = (int)blockIdx.y * TH, w0 = (int)blockIdx.z * TW;
    // the windows that cover rows [h0, h0 + TH) and columns [w0, w0 + TW) of the input
    const int p_lo = max(0, ceil_div_signed(h0 + ph - (kh - 1) * dh, sh));
    const int p_hi = min(P - 1, floor_div(min(h0 + TH, H) - 1 + ph, sh));
    const int q_lo = max(0, ceil_div_signed(w0 + pw - (kw - 1) * dw, sw));
    const int q_hi = min(Q - 1, floor_div(min(w0 + TW, W) - 1 + pw, sw));
    T* g = dynamic_smem<T>();                   // [TPL][WPS][WQS] gy (avg: gy / divisor) of each window
    int* taps = reinterpret_cast<int*>(g + TPL * WPS * WQS);  // [TPL][WPS][WQS] argmax tap (max)
    int* rows = taps + TPL * WPS * WQS;         // [TH][kh]
    int* cols = rows + TH * kh;                 // [TW][kw]
    const long long plane = (long long)blockIdx.x * TPL + pl;
    const bool live = plane < (long long)N * C;
    if ((int)threadIdx.x < TH) tap_table(rows, (int)threadIdx.x, h0, H, kh, sh, ph, dh, p_lo, p_hi);
    if ((int)threadIdx.x < TW) tap_table(cols, (int)threadIdx.x, w0, W, kw, sw, pw, dw, q_lo, q_hi);
    const T* xp = x + plane * H * W;
    const T* gp = gy + plane * P * Q;
    for (int wr = row; live && wr <= p_hi - p_lo; wr += TH)
        for (int wc = col; wc <= q_hi - q_lo; wc += TW) {
            const int p = p_lo + wr, q = q_lo + wc, slot = (pl * WPS + wr) * WQS + wc;
            if (MAX) {
                int tap, hw;
                window_max(xp, p, q, tap, hw, POOL_GEOMETRY_ARGS);
                taps[slot] = tap, g[slot] = gp[p * Q + q];
            } else {
                g[slot] = gp[p * Q + q] / T(avg_divisor(p, q, include_pad, POOL_GEOMETRY_ARGS));
            }
        }
    __syncthreads();
    const int h = h0 + row, w = w0 + col;
    if (!live || h >= H || w >= W) return;
    T acc = T(0);
    for (int r = 0; r < kh; ++r) {
        const int pr = rows[row * kh + r];
        if (pr < 0) continue;
        for (int s = 0; s < kw; ++s) {
            const int qs = cols[col * kw + s], slot = (pl * WPS + pr) * WQS + qs;
            if (qs >= 0 && (!MAX || taps[slot] == r * kw + s)) acc += g[slot];
        }
    }
    gx[plane * H * W + h * W + w] = acc;
}
template <typename T>
__device__ void max_pool2d_bwd_v3_tiles(const T* __restrict__ gy, const T* __restrict__ x, T* __restrict__ gx, int lw,
                                  int lh, int WPS, int WQS, POOL_GEOMETRY_PARAMS) {
    pool_bwd_v3<T, true>(gy, x, gx, 0, lw, lh, WPS, WQS, POOL_GEOMETRY_ARGS);
}
#define MAX_BWD_V3_PARAMS(T)                                                                                     \
    const T* __restrict__ gy, const T* __restrict__ x, T* __restrict__ gx, int lw, int lh, int WPS, int WQS, \
        POOL_GEOMETRY_PARAMS
FC_ENTRY_POINTS(max_pool2d_bwd_v3_tiles, MAX_BWD_V3_PARAMS, gy, x, gx, lw, lh, WPS, WQS, POOL_GEOMETRY_ARGS)
template <typename T>
__device__ void avg_pool2d_bwd_v3_tiles(const T* __restrict__ gy, T* __restrict__ gx, int include_pad, int lw, int lh,
                                  int WPS, int WQS, POOL_GEOMETRY_PARAMS) {
    pool_bwd_v3<T, false>(gy, gy, gx, include_pad, lw, lh, WPS, WQS, POOL_GEOMETRY_ARGS);
}
#define AVG_BWD_V3_PARAMS(T)                                                                                 \
    const T* __restrict__ gy, T* __restrict__ gx, int include_pad, int lw, int lh, int WPS, int WQS, \
        POOL_GEOMETRY_PARAMS
FC_ENTRY_POINTS(avg_pool2d_bwd_v3_tiles, AVG_BWD_V3_PARAMS, gy, gx, include_pad, lw, lh, WPS, WQS, POOL_GEOMETRY_ARGS)
