// conv2d_bwd.cu: gradients of conv2d_fwd.cu (same shapes and geometry: x (N,C,H,W), w (K,Cg,R,S), gy (N,K,P,Q)).
//   gx[n,c,h,w] = sum over (k in c's group, r, s) with p = (h + pt - r*dh)/sh, q = (w + pl - s*dw)/sw whole and
//                 inside [0,P) x [0,Q) of gy[n,k,p,q] * w[k, c % Cg, r, s]
//   gw[k,c,r,s] = sum_{n,p,q} gy[n,k,p,q] * x[n, g*Cg + c, p*sh - pt + r*dh, q*sw - pl + s*dw]   (0 outside x)
//   gb[k]       = sum_{n,p,q} gy[n,k,p,q]
// Versions (entry points <name>_f32 / <name>_f64):
//   conv2d_bwd_data_v1_naive     one thread per gx element (grid-stride, BWD_BLOCK threads), gathering its taps: no
//                                atomics, each gx written once.
//   conv2d_bwd_weight_v1_naive   one block (BWD_REDUCE_BLOCK threads) per gw element: threads stride over N*P*Q, then
//                                block_sum. Deterministic: the same order on every run.
//   conv2d_bwd_weight_v2_atomic  grid (K*Cg*R*S, BWD_SPLIT): block (e, part) reduces part of e's N*P*Q products and
//                                atomically adds it to gw[e] (zeroed first). Order of the adds varies: not
//                                deterministic, so only run when named.
//   conv2d_bwd_bias_v1_reduce    one block per output channel, block_sum over N*P*Q. Deterministic. Also the
//                                entry point linear_bwd_bias_v1_reduce (N rows, one pixel each).
#include "conv_common.cuh"

#ifndef BWD_BLOCK
#define BWD_BLOCK 256
#endif
#ifndef BWD_REDUCE_BLOCK
#define BWD_REDUCE_BLOCK 256
#endif
#ifndef BWD_SPLIT
#define BWD_SPLIT 8
#endif

// gx element i = ((n*C + c)*H + h)*W + w (grid-stride) gathers every (k, r, s) whose window covers it
// (for_each_window). Written once: race-free.
template <typename T>
__device__ void conv2d_bwd_data_v1_naive(const T* __restrict__ gy, const T* __restrict__ w, T* __restrict__ gx,
                                         CONV_GEOMETRY_PARAMS) {
    const int Cg = C / groups, Kg = K / groups;
    const long long total = (long long)N * C * H * W;
    for (long long i = global_thread_index(); i < total; i += global_thread_count()) {
        const int iw = (int)(i % W), ih = (int)(i / W % H), c = (int)(i / ((long long)H * W) % C);
        const long long n = i / ((long long)C * H * W);
        const int g = c / Cg;
        T acc = T(0);
        for_each_window(ih, iw, R, S, sh, sw, pt, pl, dh, dw, P, Q, [&](int p, int q, int r, int s) {
            for (int k = g * Kg; k < (g + 1) * Kg; ++k)
                acc += gy[((n * K + k) * P + p) * Q + q] * w[(((long long)k * Cg + c % Cg) * R + r) * S + s];
        });
        gx[i] = acc;
    }
}
#define BWD_DATA_PARAMS(T) const T* __restrict__ gy, const T* __restrict__ w, T* __restrict__ gx, CONV_GEOMETRY_PARAMS
FC_ENTRY_POINTS(conv2d_bwd_data_v1_naive, BWD_DATA_PARAMS, gy, w, gx, CONV_GEOMETRY_ARGS)

// Sum of gy[n,k,p,q] * x[...] over the flat (n, p, q) indices first, first + stride, ... below NPQ, for weight
// element e = ((k*Cg + c)*R + r)*S + s.
template <typename T>
__device__ T weight_grad_partial(const T* __restrict__ gy, const T* __restrict__ x, long long e, long long first,
                                 long long stride, CONV_GEOMETRY_PARAMS) {
    const int Cg = C / groups, Kg = K / groups, PQ = P * Q;
    const int s = (int)(e % S), r = (int)(e / S % R), c = (int)(e / ((long long)R * S) % Cg);
    const int k = (int)(e / ((long long)Cg * R * S));
    const long long NPQ = (long long)N * PQ;
    T acc = T(0);
    for (long long j = first; j < NPQ; j += stride) {
        const long long n = j / PQ;
        const int p = (int)(j % PQ) / Q, q = (int)(j % PQ) % Q;
        const T* xc = x + (n * C + (long long)(k / Kg) * Cg + c) * H * W;
        acc += gy[(n * K + k) * PQ + p * Q + q] * padded_read(xc, p * sh - pt + r * dh, q * sw - pl + s * dw, H, W);
    }
    return acc;
}

// Block e computes gw[e]: thread t sums products t, t + BWD_REDUCE_BLOCK, ...; block_sum adds the partials in a
// fixed tree. Thread 0 alone writes: race-free and deterministic.
template <typename T>
__device__ void conv2d_bwd_weight_v1_naive(const T* __restrict__ gy, const T* __restrict__ x, T* __restrict__ gw,
                                           CONV_GEOMETRY_PARAMS) {
    __shared__ T scratch[32];
    const T part = weight_grad_partial(gy, x, blockIdx.x, threadIdx.x, BWD_REDUCE_BLOCK, CONV_GEOMETRY_ARGS);
    const T total = block_sum(part, scratch);
    if (threadIdx.x == 0) gw[blockIdx.x] = total;
}
#define BWD_WEIGHT_PARAMS(T) const T* __restrict__ gy, const T* __restrict__ x, T* __restrict__ gw, CONV_GEOMETRY_PARAMS
FC_ENTRY_POINTS(conv2d_bwd_weight_v1_naive, BWD_WEIGHT_PARAMS, gy, x, gw, CONV_GEOMETRY_ARGS)

// Block (e, part) sums the products part*BLOCK + t, stepping by BWD_SPLIT*BLOCK, reduces them in the block and adds
// the result to gw[e] with one atomicAdd: the BWD_SPLIT adds to gw[e] land in any order (float rounding differs).
template <typename T>
__device__ void conv2d_bwd_weight_v2_atomic(const T* __restrict__ gy, const T* __restrict__ x, T* __restrict__ gw,
                                            CONV_GEOMETRY_PARAMS) {
    __shared__ T scratch[32];
    const long long first = (long long)blockIdx.y * BWD_REDUCE_BLOCK + threadIdx.x;
    const T part = weight_grad_partial(gy, x, blockIdx.x, first, (long long)BWD_SPLIT * BWD_REDUCE_BLOCK,
                                       CONV_GEOMETRY_ARGS);
    const T total = block_sum(part, scratch);
    if (threadIdx.x == 0) atomicAdd(gw + blockIdx.x, total);
}
FC_ENTRY_POINTS(conv2d_bwd_weight_v2_atomic, BWD_WEIGHT_PARAMS, gy, x, gw, CONV_GEOMETRY_ARGS)

// Block k: threads stride over the N*P*Q gradients of channel k, block_sum, thread 0 writes gb[k].
template <typename T>
__device__ void conv2d_bwd_bias_v1_reduce(const T* __restrict__ gy, T* __restrict__ gb, int N, int K, int PQ) {
    __shared__ T scratch[32];
    const int k = blockIdx.x;
    T acc = T(0);
    for (long long j = threadIdx.x; j < (long long)N * PQ; j += BWD_REDUCE_BLOCK) acc += gy[(j / PQ * K + k) * PQ + j % PQ];
    const T total = block_sum(acc, scratch);
    if (threadIdx.x == 0) gb[k] = total;
}
#define BWD_BIAS_PARAMS(T) const T* __restrict__ gy, T* __restrict__ gb, int N, int K, int PQ
FC_ENTRY_POINTS(conv2d_bwd_bias_v1_reduce, BWD_BIAS_PARAMS, gy, gb, N, K, PQ)
// linear's bias gradient is the same reduction with one pixel per channel (PQ = 1), under its own name.
FC_ENTRY_POINTS_OF(linear_bwd_bias_v1_reduce, conv2d_bwd_bias_v1_reduce, BWD_BIAS_PARAMS, gy, gb, N, K, PQ)
