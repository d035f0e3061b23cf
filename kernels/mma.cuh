// mma.cuh: warp-level tensor-core products (mma.sync, sm_80+) and TensorGemm, the tensor-core math of the
// implicit-GEMM kernels (conv2d_fwd_v20_mma, conv2d_bwd_data_v6_mma, conv2d_bwd_weight_v7_mma).
//   mma_tf32(d, a, b)   d (16x8 f32) += a (16x8 tf32) . b (8x8 tf32)     mma.sync.aligned.m16n8k8.row.col.f32.tf32
//   mma_bf16(d, a, b)   d (16x8 f32) += a (16x16 bf16) . b (16x8 bf16)   mma.sync.aligned.m16n8k16.row.col.f32.bf16
// Fragments as the PTX ISA lays them out (groupID g = lane / 4, t = lane % 4): tf32 A a0 (g, t), a1 (g+8, t),
// a2 (g, t+4), a3 (g+8, t+4); B b0 (t, g), b1 (t+4, g). bf16 A regs (low half first) (g, 2t..2t+1),
// (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..); B (2t..2t+1, g), (2t+8.., g). C/D c0, c1 (g, 2t..2t+1), c2, c3 (g+8, ..).
// Operands are rounded the way fastconv.precision specifies: tf32 to nearest, ties away (cvt.rna.tf32.f32), bf16
// to nearest even (cvt.rn.bf16x2.f32). The emulator (FCEMU) runs each mma as a warp collective that gathers all 32
// lanes' fragments by the same layout, so a wrong fragment index gives a wrong product in CI.
#pragma once
#include "igemm.cuh"

__device__ __forceinline__ unsigned to_tf32(float x) {
#if defined(FCEMU)
    return fcemu::round_tf32(x);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
#else
    return __float_as_uint(x);  // never launched below sm_80 (the launchers check the device)
#endif
}

// (lo, hi) as two bfloat16 in one register, lo in the low half.
__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
#if defined(FCEMU)
    return fcemu::round_bf16(lo) | (fcemu::round_bf16(hi) << 16);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#else
    return (void)lo, (void)hi, 0u;  // never launched below sm_80
#endif
}

template <bool BF16>
__device__ __forceinline__ void mma(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
#if defined(FCEMU)
    fcemu::mma_sync(BF16 ? fcemu::MMA_BF16_M16N8K16 : fcemu::MMA_TF32_M16N8K8, d, a, b);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if constexpr (BF16)
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm volatile(
            "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// Block tile BM x BN over BK-deep slices on (BM/WM) x (BN/WN) warps; warp (wy, wx) owns rows wy*WM.. and columns
// wx*WN.. as (WM/16) x (WN/8) mma tiles of 16 x 8. Slices are staged in float (padded rows of BM + 8 floats:
// the tf32 fragment reads (4 k-rows x 8 rows per warp) fall on 32 distinct banks) and rounded as the fragments are
// read, so one staging path serves both precisions.
template <int BM, int BN, int BK, int WM, int WN, bool BF16, bool B_KFAST, int VA = 1, int VB = 1>
struct TensorGemm : Slices<float, BM, BN, BK, 32 * (BM / WM) * (BN / WN), B_KFAST, 8, VA, VB> {
    using Base = Slices<float, BM, BN, BK, 32 * (BM / WM) * (BN / WN), B_KFAST, 8, VA, VB>;
    static constexpr int WARPS_N = BN / WN, MI = WM / 16, NI = WN / 8, KSTEP = BF16 ? 16 : 8;
    static constexpr int ROWS = 2 * MI, COLS = 2 * NI, COL_RUN = 2;
    static_assert(BM % WM == 0 && BN % WN == 0 && WM % 16 == 0 && WN % 8 == 0 && BK % KSTEP == 0,
                  "warp tiles of whole 16 x 8 mma tiles, slices of whole mma steps");
    using Acc = float[MI][NI][4];

    static __device__ __forceinline__ int wm0() { return threadIdx.x / 32 / WARPS_N * WM; }
    static __device__ __forceinline__ int wn0() { return threadIdx.x / 32 % WARPS_N * WN; }
    static __device__ __forceinline__ int row_of(int i) { return wm0() + i / 2 * 16 + threadIdx.x % 32 / 4 + i % 2 * 8; }
    static __device__ __forceinline__ int col_of(int j) { return wn0() + j / 2 * 8 + threadIdx.x % 4 * 2 + j % 2; }
    static __device__ __forceinline__ float value(const Acc& acc, int i, int j) {
        return acc[i / 2][j / 2][i % 2 * 2 + j % 2];
    }
    template <typename RowValue>
    static __device__ __forceinline__ void init(Acc& acc, RowValue row_value) {
#pragma unroll
        for (int i = 0; i < ROWS; ++i) {
            const float v = row_value(row_of(i));
#pragma unroll
            for (int j = 0; j < COLS; ++j) acc[i / 2][j / 2][i % 2 * 2 + j % 2] = v;
        }
    }

    template <typename Loader>
    static __device__ void run(Loader& ld, int slices, Acc& acc) {
        Base::run(ld, slices, [&](const typename Base::ATile& Ac, const typename Base::BTile& Bc) {
            mma_slice(Ac, Bc, acc);
        });
    }

    // acc += Ac^T . Bc over one staged slice: BK / KSTEP steps of MI x NI mma tiles per warp.
    static __device__ __forceinline__ void mma_slice(const typename Base::ATile& Ac, const typename Base::BTile& Bc,
                                                     Acc& acc) {
        const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4, m0 = wm0() + g, n0 = wn0() + g;
#pragma unroll
        for (int k0 = 0; k0 < BK; k0 += KSTEP) {
            unsigned a[MI][4], b[NI][2];
#pragma unroll
            for (int mi = 0; mi < MI; ++mi) {
                const int m = m0 + mi * 16;
                if constexpr (BF16) {
                    const int k = k0 + 2 * t;
                    a[mi][0] = pack_bf16(Ac[k][m], Ac[k + 1][m]);
                    a[mi][1] = pack_bf16(Ac[k][m + 8], Ac[k + 1][m + 8]);
                    a[mi][2] = pack_bf16(Ac[k + 8][m], Ac[k + 9][m]);
                    a[mi][3] = pack_bf16(Ac[k + 8][m + 8], Ac[k + 9][m + 8]);
                } else {
                    a[mi][0] = to_tf32(Ac[k0 + t][m]);
                    a[mi][1] = to_tf32(Ac[k0 + t][m + 8]);
                    a[mi][2] = to_tf32(Ac[k0 + t + 4][m]);
                    a[mi][3] = to_tf32(Ac[k0 + t + 4][m + 8]);
                }
            }
#pragma unroll
            for (int ni = 0; ni < NI; ++ni) {
                const int n = n0 + ni * 8;
                if constexpr (BF16) {
                    const int k = k0 + 2 * t;
                    b[ni][0] = pack_bf16(Bc[k][n], Bc[k + 1][n]);
                    b[ni][1] = pack_bf16(Bc[k + 8][n], Bc[k + 9][n]);
                } else {
                    b[ni][0] = to_tf32(Bc[k0 + t][n]);
                    b[ni][1] = to_tf32(Bc[k0 + t + 4][n]);
                }
            }
#pragma unroll
            for (int mi = 0; mi < MI; ++mi)
#pragma unroll
                for (int ni = 0; ni < NI; ++ni) mma<BF16>(acc[mi][ni], a[mi], b[ni]);
        }
    }
};
