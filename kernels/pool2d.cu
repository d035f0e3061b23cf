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
