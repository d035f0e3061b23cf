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
//   conv2d_bwd_weight_v6_implicit_gemm  per group the GEMM gw (Kg x Cg*R*S) = gy (Kg x N*P*Q) . im2col(x)^T on
//                                igemm.cuh's block GEMM (WG_BM x WG_BN x WG_BK, WG_TM x WG_TN per thread; half for
//                                double), the reduction over pixels split deterministically (gridDim.z = groups x
//                                splits; partials summed in split order by conv2d_bwd_weight_splitk_reduce): no
//                                atomics, the same bits on every run. A slice is BK consecutive pixels: each
//                                thread decodes its pixel once and steps it; the columns' (c, r, s) are fixed per
//                                thread. Napkin math (H100, f32): the same 512 FMAs per slice per thread as the
//                                forward v18; split-K gives ~2 blocks per SM even for 64-channel layers, so ~60-75%
//                                of fp32 peak on the ResNet layers (the partial sums add splits x |gw| of traffic).
//   conv2d_bwd_weight_v7_mma     v6 on tensor cores (mma.cuh's TensorGemm, WT_* tiles): precision="tf32" or "bf16"
//                                on float32, entry points <name>_tf32_f32 / _bf16_f32; the same split-K.
//   (the data gradient's implicit GEMM, conv2d_bwd_data_v5_implicit_gemm, is conv2d_fwd.cu's v18 kernel run once per
//    stride phase on grad_out and the flipped weights: fastconv/backends/cuda/igemm.py)
#include "conv_common.cuh"
#include "igemm.cuh"
#include "mma.cuh"

#ifndef BWD_BLOCK
#define BWD_BLOCK 256
#endif
#ifndef BWD_REDUCE_BLOCK
#define BWD_REDUCE_BLOCK 256
#endif
#ifndef BWD_SPLIT
#define BWD_SPLIT 8
#endif
#ifndef WG_BM
#define WG_BM 128
#endif
#ifndef WG_BN
#define WG_BN 128
#endif
#ifndef WG_BK
#define WG_BK 8
#endif
#ifndef WG_TM
#define WG_TM 8
#endif
#ifndef WG_TN
#define WG_TN 8
#endif
#ifndef WT_BM
#define WT_BM 128
#endif
#ifndef WT_BN
#define WT_BN 128
#endif
#ifndef WT_BK
#define WT_BK 16
#endif
#ifndef WT_WM
#define WT_WM 64
#endif
#ifndef WT_WN
#define WT_WN 32
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

// The v6 block GEMM per element type: double tiles are half as wide each way (64 double accumulators would spill).
template <typename T>
struct WG;
template <>
struct WG<float> {
    using G = BlockGemm<float, WG_BM, WG_BN, WG_BK, WG_TM, WG_TN, true>;
};
template <>
struct WG<double> {
    using G = BlockGemm<double, WG_BM / 2, WG_BN / 2, WG_BK, WG_TM / 2, WG_TN / 2, true>;
};
constexpr int WG_THREADS = (WG_BM / WG_TM) * (WG_BN / WG_TN);

// Names one slice (pixels j .. j+BK of the flat (n, p, q) index) of A = gy and B = im2col(x)^T for this thread:
// its pixel is j + t%BK; A rows m0 + t/BK + i*A_STEP; B columns (c, r, s) = col0 + t/BK + i*B_STEP, fixed per thread.
template <typename T, typename G>
struct WgLoader {
    const T *gyn, *xn, *base;  // gy and x of the pixel's image; any input
    int p, q, j, j_end, P, Q, H, W, sh, sw, pt, pl, img_gy, img_x, a_row, a_step, pq, h, w;
    int x_off[G::B_LOADS], dr[G::B_LOADS], ds[G::B_LOADS];  // column: channel offset + tap offset; tap row, col
    unsigned m_ok, c_ok;
    bool pix;

    __device__ __forceinline__ bool a_ok(int i) const { return pix && ((m_ok >> i) & 1); }
    __device__ __forceinline__ const T* a_ptr(int i) const { return gyn + a_row + i * a_step + pq; }
    __device__ __forceinline__ bool b_ok(int i) const {
        return pix && ((c_ok >> i) & 1) && (unsigned)(h + dr[i]) < (unsigned)H && (unsigned)(w + ds[i]) < (unsigned)W;
    }
    __device__ __forceinline__ const T* b_ptr(int i) const { return xn + x_off[i] + h * W + w; }

    __device__ __forceinline__ void locate() { pix = j < j_end, pq = p * Q + q, h = p * sh - pt, w = q * sw - pl; }
    __device__ __forceinline__ void advance() {  // the pixel BK further along the rows, the images
        j += G::BK;
        q += G::BK;
        while (q >= Q) {
            q -= Q;
            if (++p == P) p = 0, gyn += img_gy, xn += img_x;
        }
        locate();
    }
};

// Block (column tile blockIdx.x, row tile blockIdx.y, blockIdx.z = g*splits + split): gw rows m0.. (output
// channels of group g) x columns col0.. of the flat (c, r, s) index over this split's pixels. splits > 1: gw is a
// workspace of `splits` gw-sized parts (split_len each), summed in split order afterwards. Each element is written
// by one thread: race-free.
template <typename T, typename G>  // G: the block's math (igemm.cuh's BlockGemm, mma.cuh's TensorGemm)
__device__ void conv2d_bwd_weight_igemm(const T* __restrict__ gy, const T* __restrict__ x, T* __restrict__ gw,
                                        CONV_GEOMETRY_PARAMS, int splits, long long split_len, FAST_DIV_PARAMS(PQ),
                                        FAST_DIV_PARAMS(Q)) {
    const int Cg = C / groups, Kg = K / groups, RS = R * S, CRS = Cg * RS, PQ = P * Q, HW = H * W, t = threadIdx.x;
    const int g = blockIdx.z / splits, split = blockIdx.z % splits, m0 = blockIdx.y * G::BM;
    const int col0 = blockIdx.x * G::BN, NPQ = N * PQ, total = (NPQ + G::BK - 1) / G::BK;
    const int per_split = (total + splits - 1) / splits, first = split * per_split;
    const int slices = min(per_split, total - first);
    WgLoader<T, G> ld;
    ld.P = P, ld.Q = Q, ld.H = H, ld.W = W, ld.sh = sh, ld.sw = sw, ld.pt = pt, ld.pl = pl;
    ld.img_gy = K * PQ, ld.img_x = C * HW, ld.a_step = G::A_STEP * PQ;
    ld.j = first * G::BK + t % G::BK, ld.j_end = min(NPQ, (first + max(slices, 0)) * G::BK);
    const int jn = min(ld.j, NPQ - 1), n = fast_div(jn, PQ_magic, PQ_shift), pq = jn - n * PQ;
    ld.p = fast_div(pq, Q_magic, Q_shift), ld.q = pq - ld.p * Q;
    ld.gyn = gy + (long long)n * K * PQ, ld.xn = x + (long long)n * C * HW, ld.base = x;
    ld.locate();
    ld.m_ok = 0, ld.c_ok = 0;
    for (int i = 0; i < G::A_LOADS; ++i) ld.m_ok |= unsigned(m0 + t / G::BK + i * G::A_STEP < Kg) << i;
    ld.a_row = (g * Kg + min(m0 + t / G::BK, Kg - 1)) * PQ;
#pragma unroll
    for (int i = 0; i < G::B_LOADS; ++i) {
        const int col = col0 + t / G::BK + i * G::B_STEP, cl = min(col, CRS - 1), c = cl / RS, r = cl % RS / S;
        const int s = cl % S;
        ld.c_ok |= unsigned(col < CRS) << i;
        ld.dr[i] = r * dh, ld.ds[i] = s * dw;
        ld.x_off[i] = (g * Cg + c) * HW + r * dh * W + s * dw;
    }
    typename G::Acc acc;
    G::init(acc, [](int) { return T(0); });
    G::run(ld, max(slices, 0), acc);
    T* out = gw + split * split_len + (long long)g * Kg * CRS;
#pragma unroll
    for (int i = 0; i < G::ROWS; ++i) {
        const int m = m0 + G::row_of(i);
#pragma unroll
        for (int jj = 0; jj < G::COLS; ++jj) {
            const int col = col0 + G::col_of(jj);
            if (m < Kg && col < CRS) out[m * CRS + col] = G::value(acc, i, jj);
        }
    }
}
#define BWD_WEIGHT_V3_PARAMS(T) \
    BWD_WEIGHT_PARAMS(T), int splits, long long split_len, FAST_DIV_PARAMS(PQ), FAST_DIV_PARAMS(Q)
#define BWD_WEIGHT_V3_ARGS gy, x, gw, CONV_GEOMETRY_ARGS, splits, split_len, PQ_magic, PQ_shift, Q_magic, Q_shift
template <typename T>
__device__ void conv2d_bwd_weight_v6_implicit_gemm(BWD_WEIGHT_V3_PARAMS(T)) {
    conv2d_bwd_weight_igemm<T, typename WG<T>::G>(BWD_WEIGHT_V3_ARGS);
}
FC_ENTRY_POINTS_BOUNDED(conv2d_bwd_weight_v6_implicit_gemm, WG_THREADS, 1, BWD_WEIGHT_V3_PARAMS, BWD_WEIGHT_V3_ARGS)
// v7: tensor cores, float32 only, one entry point per precision (tf32, bf16).
template <bool BF16>
using WT = TensorGemm<WT_BM, WT_BN, WT_BK, WT_WM, WT_WN, BF16, true>;
constexpr int WT_THREADS = 32 * (WT_BM / WT_WM) * (WT_BN / WT_WN);
extern "C" __global__ void __launch_bounds__(WT_THREADS, 1)
    conv2d_bwd_weight_v7_mma_tf32_f32(BWD_WEIGHT_V3_PARAMS(float)) {
    conv2d_bwd_weight_igemm<float, WT<false>>(BWD_WEIGHT_V3_ARGS);
}
extern "C" __global__ void __launch_bounds__(WT_THREADS, 1)
    conv2d_bwd_weight_v7_mma_bf16_f32(BWD_WEIGHT_V3_PARAMS(float)) {
    conv2d_bwd_weight_igemm<float, WT<true>>(BWD_WEIGHT_V3_ARGS);
}

template <typename T>
__device__ void conv2d_bwd_weight_splitk_reduce(SPLITK_REDUCE_PARAMS(T)) { splitk_reduce(SPLITK_REDUCE_ARGS); }
FC_ENTRY_POINTS(conv2d_bwd_weight_splitk_reduce, SPLITK_REDUCE_PARAMS, SPLITK_REDUCE_ARGS)
