// conv2d_depthwise.cu: depthwise 2-D convolution (groups == C, K = m*C: channel multiplier m), forward and both
// gradients, NCHW, zero padding. Same geometry as conv2d_fwd.cu (conv_common.cuh), with Cg = 1, Kg = m:
//   x (N,C,H,W), w (K,1,R,S), b (K), y/gy (N,K,P,Q); output channel k = c*m + j reads input channel c = k / m.
//   y[n,k,p,q]  = b[k] + sum_{r,s} x[n, k/m, p*sh - pt + r*dh, q*sw - pl + s*dw] * w[k,0,r,s]
//   gx[n,c,h,w] = sum over j < m and the (r, s) with p = (h + pt - r*dh)/sh, q likewise, whole and inside P x Q,
//                 of gy[n, c*m+j, p, q] * w[c*m+j, 0, r, s]
//   gw[k,0,r,s] = sum_{n,p,q} gy[n,k,p,q] * x[n, k/m, p*sh - pt + r*dh, q*sw - pl + s*dw]
// Versions (entry points <name>_f32 / <name>_f64; v4_depthwise, in conv2d_fwd.cu, reads every tap from global):
//   conv2d_fwd_v14_depthwise_halo        block = `planes` slots x (tpt x tq) threads (all powers of two, chosen
//   conv2d_bwd_data_v9_depthwise_halo    by the launcher from the plane's size: small planes share a block, no
//   conv2d_bwd_weight_v5_depthwise_halo  thread idles on a 32-wide tile of a 7x7 plane); slot z owns one plane
//                                        (n, c) and a tile of tq columns x tpt*DW_ROWS rows; thread (ty, tx) of a
//                                        slot computes DW_ROWS outputs of one column (rows ty*DW_ROWS + i). The tile's
//                                        input halo (fwd, wgrad: x; dgrad: gy) goes to dynamic shared memory, read
//                                        from global DW_LOADS rows at a time per thread (independent loads in
//                                        flight); the filter is staged in shared memory and read into registers.
//   Taps run in groups of DW_TAPS = 9 with their shared-memory offsets in registers, the inner loops unrolled: a
//   3x3 (any R*S == 9) filter is one group with no guards; other R, S take ceil(R*S/9) groups, the last guarded
//   (the weight gradient, which keeps 9 accumulators per thread, then streams its units once per group).
//   A float 3x3 filter at unit stride and dilation reads its column's (DW_ROWS + 2) x 3 window into registers
//   once (dw_window): 4.5 shared loads per output instead of 9, in all three passes.
//   fwd: m outputs per staged halo (j loop), bias fused. dgrad: the gather form (no atomics): for each j the gy
//   halo of plane (n, c*m+j) is staged; with stride > 1 a tap contributes where (h + pt - r*dh) is a multiple of
//   sh (host-precomputed fast divisors, no division instruction); unit stride takes a path with no tests.
//   wgrad: deterministic two-stage reduction, no atomics: a 2-D grid (channel slots x chunks) in which block
//   (g, s) sums chunk s of the (image, tile) units of `planes` output channels into 9 register accumulators per
//   thread (gy read straight into registers, x through the halo), reduces them in a fixed shared-memory tree and
//   writes part[s][k][tap]; conv2d_bwd_weight_v5_depthwise_halo_reduce adds the chunks in chunk order.
//   Napkin math (H100: 3.35 TB/s DRAM, 132 SMs; f32 3x3 stride 1, a 56x56 plane, 32x32 tiles of 256 threads):
//   per output the forward moves ~8.5 B (x with a 1.13x halo, y), 9 FMAs and 4.5 LDS.32: DRAM allows ~390 G
//   outputs/s, the shared-memory port (32 words/clk/SM) ~1.6 T, the FMA pipes ~3.7 T, so DRAM bounds it. A
//   block holds ~5 KB of halo and 64 registers per thread (__launch_bounds__(256, 4); the data gradient 80, 3
//   blocks): 4 resident blocks, each thread with DW_LOADS = 4 loads in flight in its halo phase, ~16 KB per SM
//   against the ~20 KB that full bandwidth needs at ~0.8 us latency, and blocks between barriers overlap the
//   others' loads: expected ~55-75% of DRAM bandwidth once N*C*tiles fill several waves (the data gradient
//   alike; the weight gradient reads x and gy once, ~8.5 B per output, plus a 9-tap tree per block, ~55-70%).
//   Not measured on a GPU: estimates from the static report (bench_results/cuda_static.md).
#include "conv_common.cuh"
#include "igemm.cuh"

#ifndef DW_THREADS
#define DW_THREADS 256
#endif
#ifndef DW_ROWS
#define DW_ROWS 4
#endif
#ifndef DW_LOADS
#define DW_LOADS 4
#endif
// resident blocks per SM that __launch_bounds__ asks ptxas to leave registers for (4 x 256 threads: <= 64 each;
// the data gradient's 3: at 64, its double version spills)
constexpr int DW_MIN_BLOCKS = 4, DW_DATA_MIN_BLOCKS = 3;
// Python-side tunables (launch code only): DW_TQ_MAX (widest column tile), DW_GRID (wgrad blocks aimed at).
constexpr int DW_TAPS = 9;

// The thread's place in a block of `planes` slots of (1 << lp) x (1 << lq) threads (blockDim.x = planes << (lq + lp),
// at most DW_THREADS: the launcher takes fewer planes where their halos would not fit the shared memory).
struct DwThread {
    int tx, ty, z, gt, lq, lp;
    __device__ __forceinline__ DwThread(int lq_, int lp_) : lq(lq_), lp(lp_) {
        const int t = threadIdx.x;
        tx = t & ((1 << lq) - 1), ty = (t >> lq) & ((1 << lp) - 1), z = t >> (lq + lp), gt = t & ((1 << (lq + lp)) - 1);
    }
    __device__ __forceinline__ int planes() const { return (int)blockDim.x >> (lq + lp); }
    __device__ __forceinline__ int slot_threads() const { return 1 << (lq + lp); }
};

// halo[hr*IW + hc] = plane[h0 + hr, w0 + hc] (0 outside the plane, or everywhere when !live), by the threads of one
// slot: columns tx, tx + tq, ...; DW_LOADS rows ty, ty + tpt, ... per batch, all loads of a batch issued before
// any store. Consecutive lanes read consecutive columns (coalesced).
template <typename T>
__device__ __forceinline__ void dw_load_halo(T* __restrict__ halo, const T* __restrict__ plane, bool live, int h0,
                                             int w0, int IH, int IW, int H, int W, const DwThread& th) {
    const int nq = 1 << th.lq, np = 1 << th.lp;
    for (int hc = th.tx; hc < IW; hc += nq) {
        const int w = w0 + hc;
        const bool col_ok = live && (unsigned)w < (unsigned)W;
        for (int hr0 = th.ty; hr0 < IH; hr0 += np * DW_LOADS) {
            T v[DW_LOADS];
#pragma unroll
            for (int u = 0; u < DW_LOADS; ++u) {
                const int hr = hr0 + u * np, h = h0 + hr;
                v[u] = col_ok && hr < IH && (unsigned)h < (unsigned)H ? plane[h * W + w] : T(0);
            }
#pragma unroll
            for (int u = 0; u < DW_LOADS; ++u)
                if (hr0 + u * np < IH) halo[(hr0 + u * np) * IW + hc] = v[u];
        }
    }
}

// Taps g0 .. g0+8 of an R x S filter: their (r, s), and whether each exists (GUARD: R*S is not a multiple of 9).
template <bool GUARD>
struct DwTaps {
    int r[DW_TAPS], s[DW_TAPS];
    bool ok[DW_TAPS];
    __device__ __forceinline__ DwTaps(int g0, int R, int S) {
#pragma unroll
        for (int u = 0; u < DW_TAPS; ++u) {
            const int tap = g0 + u, rr = tap / S;
            ok[u] = !GUARD || tap < R * S;
            r[u] = ok[u] ? rr : 0, s[u] = ok[u] ? tap - rr * S : 0;
        }
    }
};

// The slot's plane pid = n*C + c of the N*C input planes, clamped to the last for slots past the end (live false:
// they load zeros and write nothing), and its m filters (m*R*S values from w[c*m]) staged after the block's halos.
struct DwPlane {
    bool live;
    long long pid;
    int c;
};
template <typename T>
__device__ __forceinline__ DwPlane dw_plane(const T* __restrict__ w, const DwThread& th, int N, int C, int mRS,
                                            int IH, int IW, T*& wt) {
    const long long plane_id = (long long)blockIdx.x * th.planes() + th.z, total = (long long)N * C;
    const long long pid = plane_id < total ? plane_id : total - 1;
    const int c = (int)(pid % C);
    wt = dynamic_smem<T>() + th.planes() * IH * IW + th.z * mRS;
    for (int i = th.gt; i < mRS; i += th.slot_threads()) wt[i] = w[(long long)c * mRS + i];
    return DwPlane{plane_id < total, pid, c};
}

#define DW_TILE_PARAMS int lq, int lp, int IH, int IW
#define DW_TILE_ARGS lq, lp, IH, IW

// WIN: a 3x3 filter at unit stride and dilation. Every tap of a thread's DW_ROWS outputs then reads one element of
// the (DW_ROWS + 2) x 3 window of its column, which goes to registers once: 3 (DW_ROWS + 2) shared loads instead of
// 9 DW_ROWS. The same fma sequence as the generic path (taps in order per output), so the same bits.
// float only: the double window (2 x 18 registers) would spill under the 64-register bound.
constexpr int DW_WIN = DW_ROWS + 2;
template <typename T>
__device__ __forceinline__ bool dw_windowed(int R, int S, int sh, int sw, int dh, int dw) {
    return sizeof(T) == 4 && R == 3 && S == 3 && sh == 1 && sw == 1 && dh == 1 && dw == 1;
}
template <typename T>
__device__ __forceinline__ void dw_window(const T* __restrict__ halo, int row0, int col0, int IW, T (&win)[DW_WIN][3]) {
#pragma unroll
    for (int a = 0; a < DW_WIN; ++a)
#pragma unroll
        for (int b = 0; b < 3; ++b) win[a][b] = halo[(row0 + a) * IW + col0 + b];
}

// Forward. Block (plane group blockIdx.x, row tile blockIdx.y, column tile blockIdx.z); slot z computes outputs
// rows p0 + ty*DW_ROWS + i, column q0 + tx of the m planes (n, c*m + j) from one staged halo of x plane (n, c).
// Each output is written by one thread: race-free.
template <typename T, bool GUARD, bool WIN>
__device__ void dw_forward(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                           T* __restrict__ y, int has_bias, CONV_GEOMETRY_PARAMS, DW_TILE_PARAMS) {
    const DwThread th(lq, lp);
    const int m = K / C, RS = R * S, TP = (1 << lp) * DW_ROWS, tq = 1 << lq;
    T* wt;  // this slot's m filters
    const DwPlane slot = dw_plane(w, th, N, C, m * RS, IH, IW, wt);
    const bool live = slot.live;
    const long long pid = slot.pid;
    const int c = slot.c, p0 = blockIdx.y * TP, q0 = blockIdx.z * tq;
    T* halo = dynamic_smem<T>() + th.z * IH * IW;
    dw_load_halo(halo, x + pid * H * W, live, p0 * sh - pt, q0 * sw - pl, IH, IW, H, W, th);
    __syncthreads();
    const int q = q0 + th.tx, prow = th.ty * DW_ROWS;
    if (!live || q >= Q) return;  // no barrier follows
    const long long nk = pid / C * K + (long long)c * m;  // output plane of j = 0
    T win[DW_WIN][3];
    if constexpr (WIN) dw_window(halo, prow, th.tx, IW, win);
    for (int j = 0; j < m; ++j) {
        T acc[DW_ROWS];
        const T bias = has_bias ? b[c * m + j] : T(0);
#pragma unroll
        for (int i = 0; i < DW_ROWS; ++i) acc[i] = bias;
        if constexpr (WIN) {
            T wr[DW_TAPS];
#pragma unroll
            for (int u = 0; u < DW_TAPS; ++u) wr[u] = wt[j * DW_TAPS + u];
#pragma unroll
            for (int i = 0; i < DW_ROWS; ++i)
#pragma unroll
                for (int u = 0; u < DW_TAPS; ++u) acc[i] = fma(wr[u], win[i + u / 3][u % 3], acc[i]);
        }
        for (int g0 = 0; !WIN && g0 < RS; g0 += DW_TAPS) {
            const DwTaps<GUARD> tp(g0, R, S);
            T wr[DW_TAPS];
            int off[DW_TAPS];
#pragma unroll
            for (int u = 0; u < DW_TAPS; ++u) wr[u] = tp.ok[u] ? wt[j * RS + g0 + u] : T(0);
#pragma unroll
            for (int u = 0; u < DW_TAPS; ++u) off[u] = tp.r[u] * dh * IW + tp.s[u] * dw;
#pragma unroll
            for (int i = 0; i < DW_ROWS; ++i) {
                const T* row = halo + (prow + i) * sh * IW + th.tx * sw;
#pragma unroll
                for (int u = 0; u < DW_TAPS; ++u)
                    if (tp.ok[u]) acc[i] = fma(wr[u], row[off[u]], acc[i]);
            }
        }
        T* out = y + (nk + j) * P * Q + q;
#pragma unroll
        for (int i = 0; i < DW_ROWS; ++i)
            if (p0 + prow + i < P) out[(p0 + prow + i) * Q] = acc[i];
    }
}
#define DW_FWD_PARAMS(T)                                                                                          \
    const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, T* __restrict__ y, int has_bias, \
        CONV_GEOMETRY_PARAMS, DW_TILE_PARAMS
#define DW_FWD_ARGS x, w, b, y, has_bias, CONV_GEOMETRY_ARGS, DW_TILE_ARGS
template <typename T>
__device__ void conv2d_fwd_v14_depthwise_halo(DW_FWD_PARAMS(T)) {
    if (dw_windowed<T>(R, S, sh, sw, dh, dw)) dw_forward<T, false, true>(DW_FWD_ARGS);
    else if ((R * S) % DW_TAPS == 0) dw_forward<T, false, false>(DW_FWD_ARGS);
    else dw_forward<T, true, false>(DW_FWD_ARGS);
}
FC_ENTRY_POINTS_BOUNDED(conv2d_fwd_v14_depthwise_halo, DW_THREADS, DW_MIN_BLOCKS, DW_FWD_PARAMS, DW_FWD_ARGS)

// floor(a / b) for b > 0 and any a (once per block).
__device__ __forceinline__ int floor_div(int a, int b) { return a >= 0 ? a / b : -((b - 1 - a) / b); }

// Data gradient. Block (plane group, row tile, column tile) of gx; slot z computes gx rows h0 + ty*DW_ROWS + i,
// column w0 + tx of plane (n, c). gy rows pa .. pa + IH - 1 (columns likewise) are the halo: every (p, q) that
// a tap of the tile reaches, zero outside P x Q. Per j: barrier, stage the gy halo of (n, c*m + j), barrier,
// gather. UNIT (sh = sw = 1): every tap counts. Each gx element written by one thread: race-free.
template <typename T, bool GUARD, bool UNIT, bool WIN>
__device__ void dw_backward_data(const T* __restrict__ gy, const T* __restrict__ w, T* __restrict__ gx,
                                 CONV_GEOMETRY_PARAMS, DW_TILE_PARAMS, FAST_DIV_PARAMS(sh), FAST_DIV_PARAMS(sw)) {
    const DwThread th(lq, lp);
    const int m = K / C, RS = R * S, TH = (1 << lp) * DW_ROWS, tq = 1 << lq;
    T* wt;
    const DwPlane slot = dw_plane(w, th, N, C, m * RS, IH, IW, wt);
    const bool live = slot.live;
    const long long pid = slot.pid;
    const int c = slot.c, h0 = blockIdx.y * TH, w0 = blockIdx.z * tq;
    const int pa = floor_div(h0 + pt - (R - 1) * dh, sh), qa = floor_div(w0 + pl - (S - 1) * dw, sw);
    const int base_h = h0 + pt - pa * sh, base_w = w0 + pl - qa * sw;  // >= (R-1)*dh, (S-1)*dw
    T* halo = dynamic_smem<T>() + th.z * IH * IW;
    const int hl = th.ty * DW_ROWS, iw = w0 + th.tx;
    T acc[DW_ROWS];
#pragma unroll
    for (int i = 0; i < DW_ROWS; ++i) acc[i] = T(0);
    const long long nk = pid / C * K + (long long)c * m;
    for (int j = 0; j < m; ++j) {
        __syncthreads();  // the previous j's halo is no longer read
        dw_load_halo(halo, gy + (nk + j) * P * Q, live, pa, qa, IH, IW, P, Q, th);
        __syncthreads();
        if constexpr (WIN) {  // base_h = base_w = 2: tap (r, s) of row i reads window (i + 2 - r, 2 - s)
            T win[DW_WIN][3];
            dw_window(halo, hl, th.tx, IW, win);
#pragma unroll
            for (int i = 0; i < DW_ROWS; ++i)
#pragma unroll
                for (int u = 0; u < DW_TAPS; ++u)
                    acc[i] = fma(wt[j * DW_TAPS + u], win[i + 2 - u / 3][2 - u % 3], acc[i]);
        }
        for (int g0 = 0; !WIN && g0 < RS; g0 += DW_TAPS) {
            const DwTaps<GUARD> tp(g0, R, S);
            int col[DW_TAPS];  // halo column of each tap, -1 where it lands between outputs (stride > 1)
#pragma unroll
            for (int u = 0; u < DW_TAPS; ++u) {
                const int v = th.tx + base_w - tp.s[u] * dw, qq = UNIT ? v : fast_div(v, sw_magic, sw_shift);
                col[u] = tp.ok[u] && (UNIT || qq * sw == v) ? qq : -1;
            }
#pragma unroll
            for (int i = 0; i < DW_ROWS; ++i)
#pragma unroll
                for (int u = 0; u < DW_TAPS; ++u) {
                    const int v = hl + i + base_h - tp.r[u] * dh, pp = UNIT ? v : fast_div(v, sh_magic, sh_shift);
                    if (col[u] >= 0 && (UNIT || pp * sh == v))
                        acc[i] = fma(wt[j * RS + g0 + u], halo[pp * IW + col[u]], acc[i]);
                }
        }
    }
    if (!live || iw >= W) return;
    T* out = gx + pid * H * W + iw;
#pragma unroll
    for (int i = 0; i < DW_ROWS; ++i)
        if (h0 + hl + i < H) out[(h0 + hl + i) * W] = acc[i];
}
#define DW_DATA_PARAMS(T)                                                                                      \
    const T* __restrict__ gy, const T* __restrict__ w, T* __restrict__ gx, CONV_GEOMETRY_PARAMS, DW_TILE_PARAMS, \
        FAST_DIV_PARAMS(sh), FAST_DIV_PARAMS(sw)
#define DW_DATA_ARGS gy, w, gx, CONV_GEOMETRY_ARGS, DW_TILE_ARGS, sh_magic, sh_shift, sw_magic, sw_shift
template <typename T>
__device__ void conv2d_bwd_data_v9_depthwise_halo(DW_DATA_PARAMS(T)) {
    const bool full = (R * S) % DW_TAPS == 0, unit = sh == 1 && sw == 1;
    if (dw_windowed<T>(R, S, sh, sw, dh, dw)) dw_backward_data<T, false, true, true>(DW_DATA_ARGS);
    else if (full && unit) dw_backward_data<T, false, true, false>(DW_DATA_ARGS);
    else if (unit) dw_backward_data<T, true, true, false>(DW_DATA_ARGS);
    else dw_backward_data<T, true, false, false>(DW_DATA_ARGS);
}
FC_ENTRY_POINTS_BOUNDED(conv2d_bwd_data_v9_depthwise_halo, DW_THREADS, DW_DATA_MIN_BLOCKS, DW_DATA_PARAMS, DW_DATA_ARGS)

// Weight gradient, first stage. Block (channel group blockIdx.x, chunk blockIdx.y): slot z owns output channel
// k = blockIdx.x*planes + z and sums its taps over units first .. last-1 of the N x tiles_p x tiles_q (image,
// tile) units: per unit, gy of the thread's DW_ROWS outputs into registers, the x halo of (n, k/m) into shared
// memory, barrier, 9 accumulators per thread, barrier. Then per tap a fixed shared-memory tree over the slot's
// threads, and part[(chunk*K + k)*R*S + tap] written once: deterministic, race-free.
template <typename T, bool GUARD, bool WIN>
__device__ void dw_backward_weight(const T* __restrict__ gy, const T* __restrict__ x, T* __restrict__ part,
                                   CONV_GEOMETRY_PARAMS, DW_TILE_PARAMS, int tiles_p, int tiles_q, int per_chunk) {
    const DwThread th(lq, lp);
    const int m = K / C, RS = R * S, TP = (1 << lp) * DW_ROWS, tq = 1 << lq, G = th.slot_threads();
    const int k_id = blockIdx.x * th.planes() + th.z, k = min(k_id, K - 1), c = k / m;
    const bool live = k_id < K;
    const int units = N * tiles_p * tiles_q, first = blockIdx.y * per_chunk, last = min(units, first + per_chunk);
    T* halo = dynamic_smem<T>() + th.z * IH * IW;
    T* red = dynamic_smem<T>() + th.planes() * IH * IW;  // blockDim.x values: the tap reduction
    const int prow = th.ty * DW_ROWS;
    for (int g0 = 0; g0 < RS; g0 += DW_TAPS) {
        const DwTaps<GUARD> tp(g0, R, S);
        int off[DW_TAPS];
        T acc[DW_TAPS];
#pragma unroll
        for (int u = 0; u < DW_TAPS; ++u) off[u] = tp.r[u] * dh * IW + tp.s[u] * dw, acc[u] = T(0);
        int tile_q = first % tiles_q, tile_p = first / tiles_q % tiles_p, n = first / tiles_q / tiles_p;
        for (int unit = first; unit < last; ++unit) {
            const int p0 = tile_p * TP, q0 = tile_q * tq, q = q0 + th.tx;
            const T* gyp = gy + ((long long)n * K + k) * P * Q;
            T gv[DW_ROWS];
#pragma unroll
            for (int i = 0; i < DW_ROWS; ++i) {
                const int p = p0 + prow + i;
                gv[i] = live && p < P && q < Q ? gyp[p * Q + q] : T(0);
            }
            __syncthreads();  // the previous unit's halo is no longer read
            dw_load_halo(halo, x + ((long long)n * C + c) * H * W, live, p0 * sh - pt, q0 * sw - pl, IH, IW, H, W, th);
            __syncthreads();
            if constexpr (WIN) {
                T win[DW_WIN][3];
                dw_window(halo, prow, th.tx, IW, win);
#pragma unroll
                for (int i = 0; i < DW_ROWS; ++i)
#pragma unroll
                    for (int u = 0; u < DW_TAPS; ++u) acc[u] = fma(gv[i], win[i + u / 3][u % 3], acc[u]);
            } else {
#pragma unroll
                for (int i = 0; i < DW_ROWS; ++i) {
                    const T* row = halo + (prow + i) * sh * IW + th.tx * sw;
#pragma unroll
                    for (int u = 0; u < DW_TAPS; ++u) acc[u] = fma(gv[i], row[off[u]], acc[u]);
                }
            }
            if (++tile_q == tiles_q) {
                tile_q = 0;
                if (++tile_p == tiles_p) tile_p = 0, ++n;
            }
        }
#pragma unroll
        for (int u = 0; u < DW_TAPS; ++u) {  // fixed tree over the slot's G threads
            __syncthreads();
            red[threadIdx.x] = acc[u];
            __syncthreads();
            for (int half = G / 2; half > 0; half /= 2) {
                if (th.gt < half) red[threadIdx.x] += red[threadIdx.x + half];
                __syncthreads();
            }
            if (th.gt == 0 && live && tp.ok[u]) part[((long long)blockIdx.y * K + k) * RS + g0 + u] = red[threadIdx.x];
        }
    }
}
#define DW_WEIGHT_PARAMS(T)                                                                                    \
    const T* __restrict__ gy, const T* __restrict__ x, T* __restrict__ part, CONV_GEOMETRY_PARAMS, DW_TILE_PARAMS, \
        int tiles_p, int tiles_q, int per_chunk
#define DW_WEIGHT_ARGS gy, x, part, CONV_GEOMETRY_ARGS, DW_TILE_ARGS, tiles_p, tiles_q, per_chunk
template <typename T>
__device__ void conv2d_bwd_weight_v5_depthwise_halo(DW_WEIGHT_PARAMS(T)) {
    if (dw_windowed<T>(R, S, sh, sw, dh, dw)) dw_backward_weight<T, false, true>(DW_WEIGHT_ARGS);
    else if ((R * S) % DW_TAPS == 0) dw_backward_weight<T, false, false>(DW_WEIGHT_ARGS);
    else dw_backward_weight<T, true, false>(DW_WEIGHT_ARGS);
}
FC_ENTRY_POINTS_BOUNDED(conv2d_bwd_weight_v5_depthwise_halo, DW_THREADS, DW_MIN_BLOCKS, DW_WEIGHT_PARAMS,
                        DW_WEIGHT_ARGS)

// Second stage: gw[i] = part[0][i] + part[1][i] + ... in chunk order (igemm.cuh's fixed-order split reduction).
template <typename T>
__device__ void conv2d_bwd_weight_v5_depthwise_halo_reduce(SPLITK_REDUCE_PARAMS(T)) {
    splitk_reduce(SPLITK_REDUCE_ARGS);
}
FC_ENTRY_POINTS_BOUNDED(conv2d_bwd_weight_v5_depthwise_halo_reduce, DW_THREADS, 1, SPLITK_REDUCE_PARAMS,
                        SPLITK_REDUCE_ARGS)
