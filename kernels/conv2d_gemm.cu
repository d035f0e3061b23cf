// conv2d_gemm.cu: the 1x1, stride-1, unpadded, ungrouped convolution as a plain GEMM per image, and its data
// gradient. x (N,C,H,W), w (K,C,1,1), b (K), y (N,K,H,W); HW = H*W pixels per plane:
//   y[n] (K x HW) = w (K x C) . x[n] (C x HW) (+ b[k]);   gx[n] (C x HW) = w^T (C x K) . gy[n] (K x HW)
// One kernel computes out[n] (M x HW) = A (M x Kd, row-major) . B[n] (Kd x HW) (+ bias[m]) over the flat (n,
// pixel) columns: the forward with A = w (M = K, Kd = C), the data gradient with A = w^T (the launcher's (C, K)
// copy) and B = gy.
// Versions (entry points <name>_f32 / <name>_f64; the tensor-core ones <name>_tf32_f32 / _bf16_f32):
//   conv2d_fwd_v15_gemm       igemm.cuh's BlockGemm (G1_BM x G1_BN x G1_BK, G1_TM x G1_TN per thread; half each
//   conv2d_bwd_data_v10_gemm  way for double), register-prefetch double buffering, no tap loop: a slice is BK
//                             channels and the next one a pointer add. 16-byte global loads of both operands (A:
//                             4 channels of a weight row, B: 4 pixels of a channel row; 2 for double), 16-byte
//                             shared stores of B and 16-byte output stores when HW and Kd are multiples of 16 /
//                             sizeof(T) and x, w, y are 16-byte aligned; else element loads and stores (the same
//                             kernel, a second instantiation behind a uniform branch). Deterministic split-K
//                             over the channel slices (conv2d_fwd.cu's conv2d_fwd_splitk_reduce adds the parts
//                             in split order). Bias fused.
//   conv2d_fwd_v16_gemm_mma   the same on tensor cores (mma.cuh's TensorGemm, G1T_* tiles), precision "tf32" or
//                             "bf16" on float32, with the same vector loads.
// Napkin math (H100, f32, 128x128x8, 256 threads, 1 block per SM by 130 registers): per slice a thread issues
// 2 LDG.128 (v18's im2col gather: 8 LDG.32 plus the tap bookkeeping), 1 STS.128 + 4 STS.32, 32 LDS.128 and 512
// FFMA, so the FMA pipes bound it as in v18 with fewer issue slots lost to loads: ~65-80% of the 67 TFLOP/s fp32
// peak on ResNet-50's 1x1 layers at N=32 (M = 64..2048, Kd = 64..1024, HW*N >= 6272: >= 100 tiles; the 7x7
// layers split K to reach 2 blocks per SM). Not measured on a GPU: static report only.
#include "conv_common.cuh"
#include "igemm.cuh"
#include "memops.cuh"
#include "mma.cuh"

#ifndef G1_BM
#define G1_BM 128
#endif
#ifndef G1_BN
#define G1_BN 128
#endif
#ifndef G1_BK
#define G1_BK 8
#endif
#ifndef G1_TM
#define G1_TM 8
#endif
#ifndef G1_TN
#define G1_TN 8
#endif
#ifndef G1T_BM
#define G1T_BM 128
#endif
#ifndef G1T_BN
#define G1T_BN 128
#endif
#ifndef G1T_BK
#define G1T_BK 16
#endif
#ifndef G1T_WM
#define G1T_WM 64
#endif
#ifndef G1T_WN
#define G1T_WN 32
#endif

// The block GEMM per element type and load width V (PACK(T) for the 16-byte path, 1 for elements).
template <typename T, int V>
struct G1;
template <int V>
struct G1<float, V> {
    using G = BlockGemm<float, G1_BM, G1_BN, G1_BK, G1_TM, G1_TN, false, 0, V, V>;
};
template <int V>
struct G1<double, V> {
    using G = BlockGemm<double, G1_BM / 2, G1_BN / 2, G1_BK, G1_TM / 2, G1_TN / 2, false, 0, V, V>;
};
constexpr int G1_THREADS = (G1_BM / G1_TM) * (G1_BN / G1_TN);
template <bool BF16, int V>
using G1T = TensorGemm<G1T_BM, G1T_BN, G1T_BK, G1T_WM, G1T_WN, BF16, false, V, V>;
constexpr int G1T_THREADS = 32 * (G1T_BM / G1T_WM) * (G1T_BN / G1T_WN);

// Names this thread's loads of one slice (channels c0 .. c0+BK) of A (rows m0 + a_m(t, i), channels c0 + a_k(t))
// and B (channel rows c0 + b_k(t, i) at the V pixels from its column j): with Kd and HW multiples of V, a load is
// wholly inside or wholly outside the matrices, so one test serves its V elements.
template <typename T, typename G>
struct GemmLoader {
    const T *ar, *bc, *base;  // A at (first row, c0 + a_k); B at (c0 + b_k(t, 0), the column's pixel); any input
    int c0, a_lim, b_lim, a_stride;
    long long b_stride, slice_step;  // B rows between a thread's loads; B elements per slice (BK rows)
    unsigned m_ok;
    bool col_ok;

    __device__ __forceinline__ bool a_ok(int i) const { return ((m_ok >> i) & 1) && c0 < a_lim; }
    __device__ __forceinline__ const T* a_ptr(int i) const { return ar + i * a_stride; }
    __device__ __forceinline__ bool b_ok(int i) const { return col_ok && c0 + i * G::B_STEP < b_lim; }
    __device__ __forceinline__ const T* b_ptr(int i) const { return bc + i * b_stride; }
    __device__ __forceinline__ void advance() { c0 += G::BK, ar += G::BK, bc += slice_step; }
};

// Block (column tile blockIdx.x, row tile blockIdx.y, split blockIdx.z): out rows m0.. x columns j0.. of the flat
// (n, pixel) index over this split's channel slices. splits > 1: out is a workspace of `splits` parts (split_len
// each) and has_bias 0. Each output element is written by one thread: race-free.
template <typename T, typename G>
__device__ void gemm_1x1(const T* __restrict__ a, const T* __restrict__ bm, const T* __restrict__ bias,
                         T* __restrict__ out, int has_bias, int N, int M, int Kd, int HW, int splits,
                         long long split_len, FAST_DIV_PARAMS(HW)) {
    constexpr int V = G::VA, SW = V < G::COL_RUN ? V : G::COL_RUN;  // load width; store width
    const int t = threadIdx.x, m0 = blockIdx.y * G::BM, j0 = blockIdx.x * G::BN, NHW = N * HW;
    const int total = (Kd + G::BK - 1) / G::BK, per_split = (total + splits - 1) / splits;
    const int first = blockIdx.z * per_split, slices = min(per_split, total - first);
    GemmLoader<T, G> ld;
    ld.c0 = first * G::BK, ld.a_lim = Kd - G::a_k(t), ld.b_lim = Kd - G::b_k(t, 0);
    ld.a_stride = G::A_STEP * Kd, ld.b_stride = (long long)G::B_STEP * HW, ld.slice_step = (long long)G::BK * HW;
    ld.m_ok = 0;
    for (int i = 0; i < G::A_LOADS; ++i) ld.m_ok |= unsigned(m0 + G::a_m(t, i) < M) << i;
    ld.ar = a + (long long)min(m0 + G::a_m(t, 0), M - 1) * Kd + ld.c0 + G::a_k(t);  // masked rows: a real one
    const int j = j0 + G::b_n(t, 0), jn = min(j, NHW - 1), n = fast_div(jn, HW_magic, HW_shift);
    ld.col_ok = j < NHW;
    ld.bc = bm + ((long long)n * Kd + ld.c0 + G::b_k(t, 0)) * HW + (jn - n * HW);
    ld.base = a;
    typename G::Acc acc;
    G::init(acc, [&](int m) { return has_bias && m0 + m < M ? bias[m0 + m] : T(0); });
    G::run(ld, max(slices, 0), acc);
    T* part = out + blockIdx.z * split_len;
#pragma unroll
    for (int jj = 0; jj < G::COLS; jj += G::COL_RUN) {
#pragma unroll
        for (int e0 = 0; e0 < G::COL_RUN; e0 += SW) {  // SW adjacent columns: one image, all in or all out
            const int pix = j0 + G::col_of(jj + e0), nn = fast_div(min(pix, NHW - 1), HW_magic, HW_shift);
            if (pix >= NHW) continue;
            T* column = part + (long long)nn * M * HW + (pix - nn * HW);
#pragma unroll
            for (int i = 0; i < G::ROWS; ++i) {
                const int m = m0 + G::row_of(i);
                if (m >= M) continue;
                Vec<T, SW> v;
#pragma unroll
                for (int e = 0; e < SW; ++e) v.v[e] = G::value(acc, i, jj + e0 + e);
                *reinterpret_cast<Vec<T, SW>*>(column + (long long)m * HW) = v;
            }
        }
    }
}
#define GEMM_1X1_PARAMS(T)                                                                                     \
    const T* __restrict__ a, const T* __restrict__ bm, const T* __restrict__ bias, T* __restrict__ out,        \
        int has_bias, int N, int M, int Kd, int HW, int splits, long long split_len, FAST_DIV_PARAMS(HW)
#define GEMM_1X1_ARGS a, bm, bias, out, has_bias, N, M, Kd, HW, splits, split_len, HW_magic, HW_shift

// The 16-byte path where the shapes and pointers allow it (a uniform branch), elements otherwise.
template <typename T, template <int> class Core>
__device__ __forceinline__ void gemm_1x1_dispatch(GEMM_1X1_PARAMS(T)) {
    constexpr int V = PACK(T);
    if (HW % V == 0 && Kd % V == 0 && aligned16(a, bm, out)) gemm_1x1<T, typename Core<V>::G>(GEMM_1X1_ARGS);
    else gemm_1x1<T, typename Core<1>::G>(GEMM_1X1_ARGS);
}
template <typename T>
struct G1Core {
    template <int V>
    struct Of {
        using G = typename G1<T, V>::G;
    };
};
template <typename T>
__device__ void conv2d_fwd_v15_gemm(GEMM_1X1_PARAMS(T)) {
    gemm_1x1_dispatch<T, G1Core<T>::template Of>(GEMM_1X1_ARGS);
}
FC_ENTRY_POINTS_BOUNDED(conv2d_fwd_v15_gemm, G1_THREADS, 1, GEMM_1X1_PARAMS, GEMM_1X1_ARGS)
FC_ENTRY_POINTS_BOUNDED_OF(conv2d_bwd_data_v10_gemm, conv2d_fwd_v15_gemm, G1_THREADS, 1, GEMM_1X1_PARAMS,
                           GEMM_1X1_ARGS)

template <bool BF16>
struct G1TCore {
    template <int V>
    struct Of {
        using G = G1T<BF16, V>;
    };
};
extern "C" __global__ void __launch_bounds__(G1T_THREADS, 1) conv2d_fwd_v16_gemm_mma_tf32_f32(GEMM_1X1_PARAMS(float)) {
    gemm_1x1_dispatch<float, G1TCore<false>::template Of>(GEMM_1X1_ARGS);
}
extern "C" __global__ void __launch_bounds__(G1T_THREADS, 1) conv2d_fwd_v16_gemm_mma_bf16_f32(GEMM_1X1_PARAMS(float)) {
    gemm_1x1_dispatch<float, G1TCore<true>::template Of>(GEMM_1X1_ARGS);
}
