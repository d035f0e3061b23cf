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
#include "conv_common.cuh"

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
