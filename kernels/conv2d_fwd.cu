// conv2d_fwd.cu: 2-D convolution forward (cross-correlation, as PyTorch), NCHW, groups, zero padding.
//   x (N,C,H,W), w (K,Cg,R,S) with Cg = C/groups, Kg = K/groups, optional b (K)  ->  y (N,K,P,Q)
//   P = floor((H + pt + pb - dh*(R-1) - 1) / sh) + 1, Q likewise (computed by fastconv.params; pb, pr only shape P, Q)
//   y[n,k,p,q] = b[k] + sum_{c,r,s} x[n, g*Cg + c, p*sh - pt + r*dh, q*sw - pl + s*dw] * w[k,c,r,s],  g = k / Kg
//   FLOPs 2*N*K*P*Q*Cg*R*S; compulsory bytes (x + w + y) * sizeof(T).
// Versions (entry points <name>_f32 / <name>_f64):
//   conv2d_fwd_v1_naive         one thread per output, grid-stride over N*K*P*Q, V1_BLOCK threads; every tap read
//                               from global memory (caches only).
//   conv2d_fwd_v2_smem_tiled    block (V2_TQ, V2_TP) = one output tile of one image for V2_KPB output channels of a
//                               group; per input channel the tile's input patch and the KPB*R*S weights go to dynamic
//                               shared memory; each thread accumulates KPB outputs. Reuse: R*S*KPB per staged input.
//   conv2d_fwd_v3_implicit_gemm per group the GEMM (Kg x Cg*R*S) . (Cg*R*S x N*P*Q), the right matrix gathered from x on
//                               the fly (im2col never stored); block tile V3_BM x V3_BN, V3_BK-deep slices in static
//                               shared memory, each of (BM/TM)*(BN/TN) threads holds a V3_TM x V3_TN register tile.
//   conv2d_fwd_v4_depthwise     groups == C: block = V4_BLOCK output pixels of one (n, k) plane, its R*S filter staged
//                               in dynamic shared memory; one thread per output pixel.
//   conv2d_fwd_v18_implicit_gemm igemm.cuh's block GEMM (V18_BM x V18_BN x V18_BK, V18_TM x V18_TN per thread; half of
//                               each for double) with the reduction ordered (r, s, c) over weights permuted to
//                               (K, R, S, Cg): a slice is one tap x BK channels, so the padding test is made once per
//                               tap and the channel step is a pointer add; deterministic split-K over the slices
//                               (gridDim.z = groups x splits, partials reduced in split order by
//                               conv2d_fwd_splitk_reduce). Also writes a strided output placement (oh0 + p*osh,
//                               ow0 + q*osw in an OH x OW plane), which the data gradient's stride phases use.
//                               Napkin math (H100, f32, 128x128x8, 256 threads, ~150 registers: one block of 8
//                               warps per SM): per slice a thread runs 512 FMAs against 4+4 global loads, 32
//                               LDS.128 and 8 STS, so the FMA pipes are the limit once the next slice's loads are
//                               hidden behind 1024 FMA cycles: ~60-75% of the 67 TFLOP/s fp32 peak on layers with
//                               K >= 128 and N*P*Q >= 16k (too few tiles for the 132 SMs, e.g. 7x7 planes: split-K).
//                               Also the entry point conv2d_bwd_data_v5_implicit_gemm (the data gradient).
//   conv2d_fwd_v19_cp_async      v18 with the slices brought in by cp.async (async_copy.cuh, sm_80+; plain loads
//                               before) into a V19_STAGES-deep shared pipeline instead of through registers: no
//                               staging registers or STS, one wait + barrier per slice, copies of V19_STAGES-1
//                               slices in flight. BK stays 8 so 4 stages fit static shared memory (34 KB; BK=16 x 3
//                               stages would need the 48 KB opt-in). Expected above v18 where latency, not the FMA
//                               pipes, limits it (low occupancy, long-latency loads); not measured on a GPU yet, so
//                               `auto` keeps v18.
//   conv2d_fwd_v20_mma           tensor cores (mma.cuh): precision="tf32" (mma m16n8k8) or "bf16" (m16n8k16) on
//                               float32 tensors, entry points <name>_tf32_f32 / _bf16_f32. v18's loader and
//                               register-prefetch staging (V20_BM x V20_BN x V20_BK, float in shared memory, rounded
//                               as fragments are read); (BM/WM) x (BN/WN) warps each own a WM x WN tile of 16x8 mma
//                               tiles. Napkin math (H100, 128x128x16, 8 warps of 64x32): per slice a warp issues 32
//                               (tf32) or 16 (bf16) mma for 64+32 fragment LDS and cvt; bounded by those shared
//                               reads and the SIMT gather, ~25-40% of the 495 (tf32) / 990 (bf16) TFLOP/s dense peak:
//                               far above any fp32 kernel, below cuDNN's ldmatrix/cp.async pipelines (left to do).
//                               Also the data gradient's conv2d_bwd_data_v6_mma.
#include "conv_common.cuh"
#include "igemm.cuh"
#include "mma.cuh"

#ifndef V1_BLOCK
#define V1_BLOCK 256
#endif
#ifndef V2_TP
#define V2_TP 8
#endif
#ifndef V2_TQ
#define V2_TQ 16
#endif
#ifndef V2_KPB
#define V2_KPB 4
#endif
#ifndef V3_BM
#define V3_BM 64
#endif
#ifndef V3_BN
#define V3_BN 64
#endif
#ifndef V3_BK
#define V3_BK 8
#endif
#ifndef V3_TM
#define V3_TM 4
#endif
#ifndef V3_TN
#define V3_TN 4
#endif
#ifndef V4_BLOCK
#define V4_BLOCK 256
#endif
#ifndef V18_BM
#define V18_BM 128
#endif
#ifndef V18_BN
#define V18_BN 128
#endif
#ifndef V18_BK
#define V18_BK 8
#endif
#ifndef V18_TM
#define V18_TM 8
#endif
#ifndef V18_TN
#define V18_TN 8
#endif
#ifndef V19_STAGES
#define V19_STAGES 4
#endif
#ifndef V20_BM
#define V20_BM 128
#endif
#ifndef V20_BN
#define V20_BN 128
#endif
#ifndef V20_BK
#define V20_BK 16
#endif
#ifndef V20_WM
#define V20_WM 64
#endif
#ifndef V20_WN
#define V20_WN 32
#endif

#define CONV_FWD_PARAMS(T) \
    const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, T* __restrict__ y, int has_bias, \
    CONV_GEOMETRY_PARAMS

// One thread per output y[n,k,p,q] (flat index i, grid-stride): sums Cg*R*S products in a fixed order. Each output
// is written by one thread, so race-free. Taps outside the input are skipped (zero padding).
template <typename T>
__device__ void conv2d_fwd_v1_naive(CONV_FWD_PARAMS(T)) {
    const int Cg = C / groups, Kg = K / groups;
    const long long total = (long long)N * K * P * Q;
    for (long long i = global_thread_index(); i < total; i += global_thread_count()) {
        const int q = (int)(i % Q), p = (int)(i / Q % P), k = (int)(i / ((long long)P * Q) % K);
        const long long n = i / ((long long)K * P * Q);
        T acc = T(0);
        for (int c = 0; c < Cg; ++c) {
            const T* xc = x + (n * C + (long long)(k / Kg) * Cg + c) * H * W;
            const T* wkc = w + ((long long)k * Cg + c) * R * S;
            for (int r = 0; r < R; ++r)
                for (int s = 0; s < S; ++s)
                    acc += padded_read(xc, p * sh - pt + r * dh, q * sw - pl + s * dw, H, W) * wkc[r * S + s];
        }
        y[i] = has_bias ? acc + b[k] : acc;
    }
}
FC_ENTRY_POINTS(conv2d_fwd_v1_naive, CONV_FWD_PARAMS, x, w, b, y, has_bias, CONV_GEOMETRY_ARGS)

// Block (V2_TQ, V2_TP): output tile rows p0.., cols q0.. of image n, output channels kb*KPB.. of group g (blockIdx.z
// = (n*groups + g)*KB + kb). Per input channel: stage the zero-padded patch (IH x IW) and KPB*R*S weights, barrier,
// accumulate, barrier (the next channel overwrites the stage). Each output written by one thread: race-free.
template <typename T>
__device__ void conv2d_fwd_v2_smem_tiled(CONV_FWD_PARAMS(T)) {
    const int Cg = C / groups, Kg = K / groups, KB = (Kg + V2_KPB - 1) / V2_KPB;
    const int kb = blockIdx.z % KB, g = blockIdx.z / KB % groups;
    const long long n = blockIdx.z / KB / groups;
    const int IH = (V2_TP - 1) * sh + (R - 1) * dh + 1, IW = (V2_TQ - 1) * sw + (S - 1) * dw + 1;
    const int tid = threadIdx.y * V2_TQ + threadIdx.x, p = blockIdx.y * V2_TP + threadIdx.y;
    const int q = blockIdx.x * V2_TQ + threadIdx.x, h0 = blockIdx.y * V2_TP * sh - pt, w0 = blockIdx.x * V2_TQ * sw - pl;
    T* patch = dynamic_smem<T>();  // IH*IW inputs, then KPB*R*S weights
    T* wt = patch + IH * IW;
    T acc[V2_KPB];
    for (int j = 0; j < V2_KPB; ++j) acc[j] = T(0);
    for (int c = 0; c < Cg; ++c) {
        const T* xc = x + (n * C + (long long)g * Cg + c) * H * W;
        for (int i = tid; i < IH * IW; i += V2_TP * V2_TQ) patch[i] = padded_read(xc, h0 + i / IW, w0 + i % IW, H, W);
        for (int i = tid; i < V2_KPB * R * S; i += V2_TP * V2_TQ) {
            const int kk = kb * V2_KPB + i / (R * S);
            wt[i] = kk < Kg ? w[((long long)(g * Kg + kk) * Cg + c) * R * S + i % (R * S)] : T(0);
        }
        __syncthreads();
        for (int r = 0; r < R; ++r)
            for (int s = 0; s < S; ++s) {
                const T v = patch[(threadIdx.y * sh + r * dh) * IW + threadIdx.x * sw + s * dw];
                for (int j = 0; j < V2_KPB; ++j) acc[j] += v * wt[(j * R + r) * S + s];
            }
        __syncthreads();
    }
    for (int j = 0; j < V2_KPB; ++j) {
        const int k = g * Kg + kb * V2_KPB + j;
        if (p < P && q < Q && kb * V2_KPB + j < Kg)
            y[((n * K + k) * P + p) * Q + q] = has_bias ? acc[j] + b[k] : acc[j];
    }
}
FC_ENTRY_POINTS(conv2d_fwd_v2_smem_tiled, CONV_FWD_PARAMS, x, w, b, y, has_bias, CONV_GEOMETRY_ARGS)

// Block (blockIdx.x, blockIdx.y, g): output channels m0..m0+BM of group g times pixels j0..j0+BN of the flat
// (n, p, q) index. Per BK slice of the reduction index kr = (c*R + r)*S + s: stage A = w (BM x BK) and B = im2col(x)
// (BK x BN, zero outside the input or the matrices), barrier, rank-BK update of the register tile, barrier.
// Thread (ty, tx) owns rows ty + i*BM/TM and columns tx + j*BN/TN: neighbours read neighbouring shared words and
// write neighbouring pixels. Each output written by one thread: race-free.
template <typename T>
__device__ void conv2d_fwd_v3_implicit_gemm(CONV_FWD_PARAMS(T)) {
    constexpr int THREADS = (V3_BM / V3_TM) * (V3_BN / V3_TN), RM = V3_BM / V3_TM, RN = V3_BN / V3_TN;
    __shared__ T As[V3_BK][V3_BM];
    __shared__ T Bs[V3_BK][V3_BN];
    const int Cg = C / groups, Kg = K / groups, g = blockIdx.z, RS = R * S, Kr = Cg * RS, PQ = P * Q;
    const int m0 = blockIdx.y * V3_BM, tx = threadIdx.x % RN, ty = threadIdx.x / RN;
    const long long j0 = (long long)blockIdx.x * V3_BN, NPQ = (long long)N * PQ;
    T acc[V3_TM][V3_TN];
    for (int i = 0; i < V3_TM; ++i)
        for (int j = 0; j < V3_TN; ++j) acc[i][j] = T(0);
    for (int k0 = 0; k0 < Kr; k0 += V3_BK) {
        for (int i = threadIdx.x; i < V3_BM * V3_BK; i += THREADS) {
            const int m = m0 + i / V3_BK, kr = k0 + i % V3_BK;
            As[i % V3_BK][i / V3_BK] = (m < Kg && kr < Kr) ? w[(long long)(g * Kg + m) * Kr + kr] : T(0);
        }
        for (int i = threadIdx.x; i < V3_BK * V3_BN; i += THREADS) {
            const long long j = j0 + i % V3_BN;
            const int kr = k0 + i / V3_BN;
            T v = T(0);
            if (j < NPQ && kr < Kr) {
                const long long n = j / PQ;
                const int pq = (int)(j % PQ), c = kr / RS, r = kr % RS / S, s = kr % S;
                v = padded_read(x + (n * C + (long long)g * Cg + c) * H * W, pq / Q * sh - pt + r * dh,
                                pq % Q * sw - pl + s * dw, H, W);
            }
            Bs[i / V3_BN][i % V3_BN] = v;
        }
        __syncthreads();
        for (int kk = 0; kk < V3_BK; ++kk) {
            T a[V3_TM], bv[V3_TN];
            for (int i = 0; i < V3_TM; ++i) a[i] = As[kk][ty + i * RM];
            for (int j = 0; j < V3_TN; ++j) bv[j] = Bs[kk][tx + j * RN];
            for (int i = 0; i < V3_TM; ++i)
                for (int j = 0; j < V3_TN; ++j) acc[i][j] += a[i] * bv[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < V3_TM; ++i) {
        const int m = m0 + ty + i * RM, k = g * Kg + m;
        for (int j = 0; j < V3_TN; ++j) {
            const long long pix = j0 + tx + j * RN;
            if (m < Kg && pix < NPQ)
                y[(pix / PQ * K + k) * PQ + pix % PQ] = has_bias ? acc[i][j] + b[k] : acc[i][j];
        }
    }
}
FC_ENTRY_POINTS(conv2d_fwd_v3_implicit_gemm, CONV_FWD_PARAMS, x, w, b, y, has_bias, CONV_GEOMETRY_ARGS)

// groups == C, K = C*mult: block (blockIdx.x = n*K + k, blockIdx.y) computes V4_BLOCK pixels of plane (n, k) from
// input channel k / mult. The plane's R*S filter is staged once in shared memory (barrier before use; threads past
// the plane still stage and wait). Each output written by one thread: race-free.
template <typename T>
__device__ void conv2d_fwd_v4_depthwise(CONV_FWD_PARAMS(T)) {
    const long long nk = blockIdx.x;
    const int k = (int)(nk % K), PQ = P * Q, pq = blockIdx.y * V4_BLOCK + threadIdx.x;
    T* filt = dynamic_smem<T>();
    for (int i = threadIdx.x; i < R * S; i += V4_BLOCK) filt[i] = w[(long long)k * R * S + i];
    __syncthreads();
    if (pq >= PQ) return;
    const T* xc = x + (nk / K * C + k / (K / C)) * H * W;
    const int p = pq / Q, q = pq % Q;
    T acc = T(0);
    for (int r = 0; r < R; ++r)
        for (int s = 0; s < S; ++s) acc += padded_read(xc, p * sh - pt + r * dh, q * sw - pl + s * dw, H, W) * filt[r * S + s];
    y[nk * PQ + pq] = has_bias ? acc + b[k] : acc;
}
FC_ENTRY_POINTS(conv2d_fwd_v4_depthwise, CONV_FWD_PARAMS, x, w, b, y, has_bias, CONV_GEOMETRY_ARGS)

// The block GEMM of v18 (STAGES 0) and v19 per element type: double tiles are half as wide each way (64 double
// accumulators would spill).
template <typename T, int STAGES>
struct V5;
template <int STAGES>
struct V5<float, STAGES> {
    using G = BlockGemm<float, V18_BM, V18_BN, V18_BK, V18_TM, V18_TN, false, STAGES>;
};
template <int STAGES>
struct V5<double, STAGES> {
    using G = BlockGemm<double, V18_BM / 2, V18_BN / 2, V18_BK, V18_TM / 2, V18_TN / 2, false, STAGES>;
};
constexpr int V18_THREADS = (V18_BM / V18_TM) * (V18_BN / V18_TN);
template <bool BF16>
using V20 = TensorGemm<V20_BM, V20_BN, V20_BK, V20_WM, V20_WN, BF16, false>;
constexpr int V20_THREADS = 32 * (V20_BM / V20_WM) * (V20_BN / V20_WN);

// Names one slice (tap r, s; channels c0 .. c0+BK) of A = permuted weights and B = im2col(x) for this thread:
// A: row m = m0 + t/BK + i*A_STEP, channel c0 + t%BK; B: channel c0 + t/BN + i*B_STEP at its pixel (one per thread).
// Per slice the pointers step by BK channels; a new tap rewinds them by the channels walked and moves one tap.
template <typename T, typename G>
struct V5Loader {
    const T *wc, *xc, *base;  // weights at (first row, tap, c0 + t%BK); x at (pixel, channel c0 + t/BN); any input
    int Cg, HW, W, H, S, dh, dw, h0, w0, r, s, c0, off, a_lim, b_lim, a_stride, b_stride;
    unsigned m_ok;
    bool tap_ok;

    __device__ __forceinline__ bool a_ok(int i) const { return ((m_ok >> i) & 1) && c0 < a_lim; }
    __device__ __forceinline__ const T* a_ptr(int i) const { return wc + i * a_stride; }
    __device__ __forceinline__ bool b_ok(int i) const { return tap_ok && c0 + i * G::B_STEP < b_lim; }
    __device__ __forceinline__ const T* b_ptr(int i) const { return xc + i * b_stride + off; }

    __device__ void set_tap() {  // the tap's padding test and offset, once per tap
        const int h = h0 + r * dh, w = w0 + s * dw;
        tap_ok = (unsigned)h < (unsigned)H && (unsigned)w < (unsigned)W;
        off = h * W + w;
    }
    __device__ __forceinline__ void advance() {  // the next BK channels of this tap, or the next tap
        c0 += G::BK;
        wc += G::BK;
        xc += G::BK * HW;
        if (c0 >= Cg) {
            wc += Cg - c0;  // = the next tap's channel c0 = 0
            xc -= (long long)c0 * HW;
            c0 = 0;
            if (++s == S) s = 0, ++r;
            set_tap();
        }
    }
};

// Block (pixel tile blockIdx.x, row tile blockIdx.y, blockIdx.z = g*splits + split): rows m0.. of group g's Kg
// output channels times pixels j0.. of the flat (n, p, q) index, over this split's share of the Cg*R*S reduction.
// splits > 1: y is a workspace of `splits` output-sized parts (split_len elements each) and has_bias is 0; the
// parts are summed in split order afterwards. Each output element is written by one thread: race-free.
template <typename T, typename G>  // G: the block's math (igemm.cuh's BlockGemm, mma.cuh's TensorGemm)
__device__ void conv2d_fwd_igemm(const T* __restrict__ x, const T* __restrict__ wp, const T* __restrict__ b,
                                            T* __restrict__ y, int has_bias, CONV_GEOMETRY_PARAMS, int oh0, int ow0,
                                            int osh, int osw, int OH, int OW, int splits, long long split_len,
                                            FAST_DIV_PARAMS(PQ), FAST_DIV_PARAMS(Q)) {
    const int Cg = C / groups, Kg = K / groups, PQ = P * Q, HW = H * W, t = threadIdx.x;
    const int g = blockIdx.z / splits, split = blockIdx.z % splits, m0 = blockIdx.y * G::BM;
    const int j0 = blockIdx.x * G::BN, NPQ = N * PQ, chunks = (Cg + G::BK - 1) / G::BK, total = R * S * chunks;
    const int per_split = (total + splits - 1) / splits, first = split * per_split;
    const int slices = min(per_split, total - first);
    V5Loader<T, G> ld;
    ld.Cg = Cg, ld.HW = HW, ld.W = W, ld.H = H, ld.S = S, ld.dh = dh, ld.dw = dw;
    ld.a_lim = Cg - t % G::BK, ld.b_lim = Cg - t / G::BN;
    ld.a_stride = G::A_STEP * R * S * Cg, ld.b_stride = G::B_STEP * HW;
    ld.m_ok = 0;
    for (int i = 0; i < G::A_LOADS; ++i) ld.m_ok |= unsigned(m0 + t / G::BK + i * G::A_STEP < Kg) << i;
    const int j = j0 + t % G::BN, jn = min(j, NPQ - 1), n = fast_div(jn, PQ_magic, PQ_shift), pq = jn - n * PQ;
    const int p = fast_div(pq, Q_magic, Q_shift);
    ld.h0 = j < NPQ ? p * sh - pt : -(1 << 30), ld.w0 = (pq - p * Q) * sw - pl;  // pixels past the end: no tap
    const int tap = slices > 0 ? first / chunks : 0;
    ld.r = tap / S, ld.s = tap % S, ld.c0 = first % chunks * G::BK;
    ld.set_tap();
    const int mrow = min(m0 + t / G::BK, Kg - 1);  // rows past Kg are masked: point them at a real row
    ld.wc = wp + ((long long)(g * Kg + mrow) * R * S + tap) * Cg + ld.c0 + t % G::BK;
    ld.xc = x + ((long long)n * C + g * Cg + t / G::BN + ld.c0) * HW;
    ld.base = x;
    typename G::Acc acc;  // the bias is the accumulators' start (split parts start at 0)
    G::init(acc, [&](int m) { return has_bias && m0 + m < Kg ? b[g * Kg + m0 + m] : T(0); });
    G::run(ld, max(slices, 0), acc);
    const long long plane = (long long)OH * OW;
    long long row[G::ROWS];  // each accumulator row's offset in y, -1 past Kg
#pragma unroll
    for (int i = 0; i < G::ROWS; ++i) {
        const int m = m0 + G::row_of(i);
        row[i] = m < Kg ? (g * Kg + m) * plane : -1;
    }
    T* out = y + split * split_len;
#pragma unroll
    for (int jj = 0; jj < G::COLS; ++jj) {
        const int pix = j0 + G::col_of(jj), nn = fast_div(pix, PQ_magic, PQ_shift), ppq = pix - nn * PQ;
        const int pp = fast_div(ppq, Q_magic, Q_shift), qq = ppq - pp * Q;
        if (pix >= NPQ) continue;
        T* column = out + nn * K * plane + (oh0 + pp * osh) * OW + ow0 + qq * osw;
#pragma unroll
        for (int i = 0; i < G::ROWS; ++i)
            if (row[i] >= 0) column[row[i]] = G::value(acc, i, jj);
    }
}
#define CONV_FWD_V5_PARAMS(T)                                                                                   \
    CONV_FWD_PARAMS(T), int oh0, int ow0, int osh, int osw, int OH, int OW, int splits, long long split_len, \
        FAST_DIV_PARAMS(PQ), FAST_DIV_PARAMS(Q)
#define CONV_FWD_V5_ARGS \
    x, w, b, y, has_bias, CONV_GEOMETRY_ARGS, oh0, ow0, osh, osw, OH, OW, splits, split_len, PQ_magic, PQ_shift, Q_magic, Q_shift
template <typename T>
__device__ void conv2d_fwd_v18_implicit_gemm(CONV_FWD_V5_PARAMS(T)) {
    conv2d_fwd_igemm<T, typename V5<T, 0>::G>(CONV_FWD_V5_ARGS);
}
template <typename T>
__device__ void conv2d_fwd_v19_cp_async(CONV_FWD_V5_PARAMS(T)) {
    conv2d_fwd_igemm<T, typename V5<T, V19_STAGES>::G>(CONV_FWD_V5_ARGS);
}
FC_ENTRY_POINTS_BOUNDED(conv2d_fwd_v18_implicit_gemm, V18_THREADS, 1, CONV_FWD_V5_PARAMS, CONV_FWD_V5_ARGS)
FC_ENTRY_POINTS_BOUNDED(conv2d_fwd_v19_cp_async, V18_THREADS, 1, CONV_FWD_V5_PARAMS, CONV_FWD_V5_ARGS)
// The data gradient's implicit GEMM is the v18 kernel on grad_out and the flipped weights, one launch per stride
// phase (fastconv/backends/cuda/igemm.py), under its own name; v6 is v20's tensor-core version of it.
FC_ENTRY_POINTS_BOUNDED_OF(conv2d_bwd_data_v5_implicit_gemm, conv2d_fwd_v18_implicit_gemm, V18_THREADS, 1,
                           CONV_FWD_V5_PARAMS, CONV_FWD_V5_ARGS)
// v20 (and the data gradient's v6): float32 only, one entry point per precision (tf32, bf16).
#define FC_MMA_ENTRY_POINTS(name, kernel)                                                                  \
    extern "C" __global__ void __launch_bounds__(V20_THREADS, 1) name##_tf32_f32(CONV_FWD_V5_PARAMS(float)) { \
        kernel<float, V20<false>>(CONV_FWD_V5_ARGS);                                                          \
    }                                                                                                        \
    extern "C" __global__ void __launch_bounds__(V20_THREADS, 1) name##_bf16_f32(CONV_FWD_V5_PARAMS(float)) { \
        kernel<float, V20<true>>(CONV_FWD_V5_ARGS);                                                           \
    }
FC_MMA_ENTRY_POINTS(conv2d_fwd_v20_mma, conv2d_fwd_igemm)
FC_MMA_ENTRY_POINTS(conv2d_bwd_data_v6_mma, conv2d_fwd_igemm)

template <typename T>
__device__ void conv2d_fwd_splitk_reduce(SPLITK_REDUCE_PARAMS(T)) { splitk_reduce(SPLITK_REDUCE_ARGS); }
FC_ENTRY_POINTS(conv2d_fwd_splitk_reduce, SPLITK_REDUCE_PARAMS, SPLITK_REDUCE_ARGS)
