// batchnorm.cu: batch norm over x seen as (N, C, M), M = product of the spatial sizes; and its gradient: v1.
//   training: mean[c], var[c] = mean and biased variance over (n, m); eval: the running statistics.
//   y = (x - mean[c]) * w[c] / sqrt(var[c] + eps) + b[c];   xhat = (x - mean[c]) / sqrt(var[c] + eps)
//   gb[c] = sum gy, gw[c] = sum gy * xhat;  gx = w invstd / count * (count gy - gb - xhat gw) (training, count = N*M),
//   gx = gy w invstd (eval).
// Versions (entry points <name>_f32 / <name>_f64):
//   batch_norm_stats_v1     one block (BN_BLOCK threads, a multiple of 32) per channel: two passes (mean, then the
//                           squared deviations) with block_sum; deterministic.
//   batch_norm_fwd_v1       elementwise, grid-stride, BN_BLOCK threads.
//   batch_norm_bwd_reduce_v1 one block per channel: gb and gw with block_sum; deterministic.
//   batch_norm_bwd_data_v1  elementwise, grid-stride.
//   Memory traffic: training forward reads x three times and writes y once; backward reads x, gy twice, writes gx.
//   v1 launches C blocks for the reductions (64 of an H100's 132 SMs busy at C = 64) and divides 64-bit integers
//   per element (j / M, j % M, i / M % C): ~3-10% of DRAM bandwidth.
// The v3 kernels (chunked 2-D grids, 16-byte packs) are in batchnorm_chunks.cu.
#include "common.cuh"
#include "memops.cuh"

#ifndef BN_BLOCK
#define BN_BLOCK 256
#endif


// Element j of channel c in the (N, C, M) view: the block's threads stride over j < N*M.
template <typename T>
__device__ __forceinline__ T channel_at(const T* __restrict__ a, long long j, int c, int C, long long M) {
    return a[(j / M * C + c) * M + j % M];
}

// Block c: mean = block_sum(x) / count, broadcast through shared memory, then var = block_sum((x - mean)^2) / count.
template <typename T>
__device__ void batch_norm_stats_v1(const T* __restrict__ x, T* __restrict__ mean, T* __restrict__ var, int N, int C,
                                    long long M) {
    __shared__ T scratch[32];
    __shared__ T block_mean;
    const int c = blockIdx.x;
    const long long count = (long long)N * M;
    T acc = T(0);
    for (long long j = threadIdx.x; j < count; j += BN_BLOCK) acc += channel_at(x, j, c, C, M);
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) block_mean = acc / T(count);
    __syncthreads();
    const T mu = block_mean;
    acc = T(0);
    for (long long j = threadIdx.x; j < count; j += BN_BLOCK) {
        const T d = channel_at(x, j, c, C, M) - mu;
        acc += d * d;
    }
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) mean[c] = mu, var[c] = acc / T(count);
}
#define STATS_PARAMS(T) const T* __restrict__ x, T* __restrict__ mean, T* __restrict__ var, int N, int C, long long M
FC_ENTRY_POINTS(batch_norm_stats_v1, STATS_PARAMS, x, mean, var, N, C, M)

// Element i (grid-stride) of channel c = (i / M) % C: normalise with the given statistics. Written once: race-free.
template <typename T>
__device__ void batch_norm_fwd_v1(const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ var,
                                  const T* __restrict__ w, const T* __restrict__ b, T* __restrict__ y, T eps,
                                  long long total, int C, long long M) {
    for (long long i = global_thread_index(); i < total; i += global_thread_count()) {
        const int c = (int)(i / M % C);
        y[i] = (x[i] - mean[c]) * (w[c] / sqrt(var[c] + eps)) + b[c];
    }
}
#define FWD_PARAMS(T)                                                                                     \
    const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ var, const T* __restrict__ w, \
        const T* __restrict__ b, T* __restrict__ y, T eps, long long total, int C, long long M
FC_ENTRY_POINTS(batch_norm_fwd_v1, FWD_PARAMS, x, mean, var, w, b, y, eps, total, C, M)

// Block c: gb[c] = sum gy and gw[c] = sum gy * xhat over the channel, both with block_sum.
template <typename T>
__device__ void batch_norm_bwd_reduce_v1(const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ mean,
                                         const T* __restrict__ var, T* __restrict__ gw, T* __restrict__ gb, T eps,
                                         int N, int C, long long M) {
    __shared__ T scratch[32];
    const int c = blockIdx.x;
    const T mu = mean[c], invstd = T(1) / sqrt(var[c] + eps);
    T sum_gy = T(0), sum_gy_xhat = T(0);
    for (long long j = threadIdx.x; j < (long long)N * M; j += BN_BLOCK) {
        const T g = channel_at(gy, j, c, C, M);
        sum_gy += g;
        sum_gy_xhat += g * (channel_at(x, j, c, C, M) - mu) * invstd;
    }
    sum_gy = block_sum(sum_gy, scratch);
    sum_gy_xhat = block_sum(sum_gy_xhat, scratch);
    if (threadIdx.x == 0) gb[c] = sum_gy, gw[c] = sum_gy_xhat;
}
#define BWD_REDUCE_PARAMS(T)                                                                                 \
    const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ var, \
        T* __restrict__ gw, T* __restrict__ gb, T eps, int N, int C, long long M
FC_ENTRY_POINTS(batch_norm_bwd_reduce_v1, BWD_REDUCE_PARAMS, gy, x, mean, var, gw, gb, eps, N, C, M)

// Element i (grid-stride): gx from gy, x and the channel's statistics and sums (batch_norm_bwd_reduce_v1). Written
// once: race-free.
template <typename T>
__device__ void batch_norm_bwd_data_v1(const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ mean,
                                       const T* __restrict__ var, const T* __restrict__ w, const T* __restrict__ gw,
                                       const T* __restrict__ gb, T* __restrict__ gx, T eps, int training,
                                       long long total, int C, long long M) {
    const T count = T(total / C);
    for (long long i = global_thread_index(); i < total; i += global_thread_count()) {
        const int c = (int)(i / M % C);
        const T invstd = T(1) / sqrt(var[c] + eps);
        if (training) {
            const T xhat = (x[i] - mean[c]) * invstd;
            gx[i] = w[c] * invstd / count * (count * gy[i] - gb[c] - xhat * gw[c]);
        } else {
            gx[i] = gy[i] * (w[c] * invstd);
        }
    }
}
#define BWD_DATA_PARAMS(T)                                                                                   \
    const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ var, \
        const T* __restrict__ w, const T* __restrict__ gw, const T* __restrict__ gb, T* __restrict__ gx, T eps,  \
        int training, long long total, int C, long long M
FC_ENTRY_POINTS(batch_norm_bwd_data_v1, BWD_DATA_PARAMS, gy, x, mean, var, w, gw, gb, gx, eps, training, total, C, M)
