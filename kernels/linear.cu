// linear.cu: fully connected layer (as torch.nn.functional.linear) and its gradients, row-major matrices.
//   x (N, C), w (K, C), optional b (K)  ->  y (N, K),  y[n,k] = b[k] + sum_c x[n,c] * w[k,c]
//   gx (N, C) = gy @ w;   gw (K, C) = gy^T @ x;   gb (K) = sum_n gy[n, :] (linear_bwd_bias_v1_reduce in conv2d_bwd.cu)
//   FLOPs 2*N*C*K per product; compulsory bytes (N*C + K*C + N*K) * sizeof(T).
// The three products are one strided GEMM, Y (M, J) row-major:
//   Y[m, j] = bias[j] + sum_{r < R} A[m, r] * B[r, j],   A[m, r] = a[m*a_m + r*a_r],   B[r, j] = b[r*b_r + j*b_j]
//     forward  Y = y:  A = x     (a_m = C, a_r = 1),  B = w^T (b_r = 1, b_j = C)
//     grad x   Y = gx: A = gy    (a_m = K, a_r = 1),  B = w   (b_r = C, b_j = 1)
//     grad w   Y = gw: A = gy^T  (a_m = 1, a_r = K),  B = x   (b_r = C, b_j = 1)
// so no operand is transposed in memory.
// Versions (entry points <name>_f32 / <name>_f64):
//   linear_gemm_v1_tiled  block = one LIN_BM x LIN_BN tile of Y, (BM/TM)*(BN/TN) threads each holding a
//                         LIN_TM x LIN_TN register tile; per LIN_BK-deep slice of r the block stages A (BM x BK)
//                         and B (BK x BN) in static shared memory, consecutive threads walking each operand along
//                         its unit stride (coalesced whichever orientation), rows padded by one word (no bank
//                         conflicts on the transposing stores). Every output is summed in r order by one thread:
//                         deterministic, no atomics.
#include "common.cuh"

#ifndef LIN_BM
#define LIN_BM 64
#endif
#ifndef LIN_BN
#define LIN_BN 64
#endif
#ifndef LIN_BK
#define LIN_BK 8
#endif
#ifndef LIN_TM
#define LIN_TM 4
#endif
#ifndef LIN_TN
#define LIN_TN 4
#endif

#define LINEAR_GEMM_PARAMS(T)                                                                                  \
    const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ bias, T* __restrict__ y, int has_bias, \
        int M, int J, int R, long long a_m, long long a_r, long long b_r, long long b_j

// Block (blockIdx.x, blockIdx.y): Y rows m0 = blockIdx.y*BM .. +BM, columns j0 = blockIdx.x*BN .. +BN. Per slice:
// stage A and B (zero outside the matrices), barrier, rank-BK update of the register tile, barrier (the next slice
// overwrites the stage). Thread (ty, tx) owns rows ty + i*BM/TM and columns tx + j*BN/TN: neighbouring threads read
// neighbouring shared words and write neighbouring outputs. Each output written by one thread: race-free.
template <typename T>
__device__ void linear_gemm_v1_tiled(LINEAR_GEMM_PARAMS(T)) {
    constexpr int RM = LIN_BM / LIN_TM, RN = LIN_BN / LIN_TN, THREADS = RM * RN;
    __shared__ T As[LIN_BK][LIN_BM + 1];
    __shared__ T Bs[LIN_BK][LIN_BN + 1];
    const int m0 = blockIdx.y * LIN_BM, j0 = blockIdx.x * LIN_BN, tx = threadIdx.x % RN, ty = threadIdx.x / RN;
    T acc[LIN_TM][LIN_TN];
    for (int i = 0; i < LIN_TM; ++i)
        for (int j = 0; j < LIN_TN; ++j) acc[i][j] = T(0);
    for (int r0 = 0; r0 < R; r0 += LIN_BK) {
        for (int e = threadIdx.x; e < LIN_BM * LIN_BK; e += THREADS) {
            const bool along_r = a_r == 1;  // consecutive threads take consecutive addresses
            const int mm = along_r ? e / LIN_BK : e % LIN_BM, rr = along_r ? e % LIN_BK : e / LIN_BM;
            const int m = m0 + mm, r = r0 + rr;
            As[rr][mm] = (m < M && r < R) ? a[m * a_m + r * a_r] : T(0);
        }
        for (int e = threadIdx.x; e < LIN_BK * LIN_BN; e += THREADS) {
            const bool along_j = b_j == 1;
            const int jj = along_j ? e % LIN_BN : e / LIN_BK, rr = along_j ? e / LIN_BN : e % LIN_BK;
            const int j = j0 + jj, r = r0 + rr;
            Bs[rr][jj] = (j < J && r < R) ? b[r * b_r + j * b_j] : T(0);
        }
        __syncthreads();
        for (int kk = 0; kk < LIN_BK; ++kk) {
            T av[LIN_TM], bv[LIN_TN];
            for (int i = 0; i < LIN_TM; ++i) av[i] = As[kk][ty + i * RM];
            for (int j = 0; j < LIN_TN; ++j) bv[j] = Bs[kk][tx + j * RN];
            for (int i = 0; i < LIN_TM; ++i)
                for (int j = 0; j < LIN_TN; ++j) acc[i][j] += av[i] * bv[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < LIN_TM; ++i) {
        const int m = m0 + ty + i * RM;
        for (int j = 0; j < LIN_TN; ++j) {
            const int col = j0 + tx + j * RN;
            if (m < M && col < J) y[(long long)m * J + col] = has_bias ? acc[i][j] + bias[col] : acc[i][j];
        }
    }
}
FC_ENTRY_POINTS(linear_gemm_v1_tiled, LINEAR_GEMM_PARAMS, a, b, bias, y, has_bias, M, J, R, a_m, a_r, b_r, b_j)
