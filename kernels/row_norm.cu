// row_norm.cu: group, layer and instance norm as one "row norm" (fastconv/params/norm.py), and its gradient.
//   x seen as (R, E): row r normalised by its own mean and biased variance; affine index a(r, e) = (r % G)*Cg + e/M.
//   y = (x - mean_r) * rstd_r * w[a] + b[a],  rstd_r = 1 / sqrt(var_r + eps)
//   gh = gy * w[a];  gx = rstd_r * (gh - mean_e(gh) - xhat * mean_e(gh * xhat));  gw[a] = sum gy xhat, gb[a] = sum gy
// Versions (entry points <name>_f32 / <name>_f64):
//   row_norm_fwd_v1           one block (NORM_BLOCK threads, a multiple of 32) per row: mean, then the squared
//                             deviations, with block_sum (two passes, deterministic), then the row written.
//   row_norm_bwd_v1           one block per row: its statistics, sum(gh) and sum(gh * xhat) with block_sum, the
//                             row of gx written; keeps the row's mean and rstd for row_norm_affine_grads_v1.
//   row_norm_affine_grads_v1  one block per affine element: its (row, element) pairs strided over the threads,
//                             gw and gb with block_sum; deterministic, no atomics.
//   Memory traffic: forward reads x three times, writes y once; backward reads x and gy three times, writes gx.
#include "common.cuh"

#ifndef NORM_BLOCK
#define NORM_BLOCK 256
#endif

// The mean and biased variance of row x[0:E] (two passes, block_sum); valid in every thread.
template <typename T>
__device__ void row_stats(const T* __restrict__ x, long long E, T* scratch, T* shared_mean, T& mean, T& var) {
    T acc = T(0);
    for (long long e = threadIdx.x; e < E; e += NORM_BLOCK) acc += x[e];
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) *shared_mean = acc / T(E);
    __syncthreads();
    mean = *shared_mean;
    acc = T(0);
    for (long long e = threadIdx.x; e < E; e += NORM_BLOCK) {
        const T d = x[e] - mean;
        acc += d * d;
    }
    acc = block_sum(acc, scratch);
    __syncthreads();
    if (threadIdx.x == 0) *shared_mean = acc / T(E);
    __syncthreads();
    var = *shared_mean;
    __syncthreads();
}

// Block r: row r's statistics, then its elements (each written by one thread: race-free).
template <typename T>
__device__ void row_norm_fwd_v1(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                T* __restrict__ y, T* __restrict__ mean, T* __restrict__ var, long long E, int G,
                                int Cg, long long M, T eps) {
    __shared__ T scratch[32];
    __shared__ T shared;
    const long long r = blockIdx.x;
    const T* xr = x + r * E;
    T mu, v;
    row_stats(xr, E, scratch, &shared, mu, v);
    const T rstd = T(1) / sqrt(v + eps);
    const long long a0 = (long long)(r % G) * Cg;
    for (long long e = threadIdx.x; e < E; e += NORM_BLOCK) {
        const long long a = a0 + e / M;
        y[r * E + e] = (xr[e] - mu) * rstd * w[a] + b[a];
    }
    if (threadIdx.x == 0) mean[r] = mu, var[r] = v;
}
#define FWD_PARAMS(T)                                                                                         \
    const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, T* __restrict__ y,            \
        T* __restrict__ mean, T* __restrict__ var, long long E, int G, int Cg, long long M, T eps
FC_ENTRY_POINTS(row_norm_fwd_v1, FWD_PARAMS, x, w, b, y, mean, var, E, G, Cg, M, eps)

// Block r: gx of row r; mean[r] and rstd[r] kept for the affine gradients.
template <typename T>
__device__ void row_norm_bwd_v1(const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ w,
                                T* __restrict__ gx, T* __restrict__ mean, T* __restrict__ rstd, long long E, int G,
                                int Cg, long long M, T eps) {
    __shared__ T scratch[32];
    __shared__ T shared;
    __shared__ T sums[2];
    const long long r = blockIdx.x;
    const T *xr = x + r * E, *gr = gy + r * E;
    T mu, v;
    row_stats(xr, E, scratch, &shared, mu, v);
    const T inv = T(1) / sqrt(v + eps);
    const long long a0 = (long long)(r % G) * Cg;
    T s1 = T(0), s2 = T(0);
    for (long long e = threadIdx.x; e < E; e += NORM_BLOCK) {
        const T gh = gr[e] * w[a0 + e / M];
        s1 += gh;
        s2 += gh * (xr[e] - mu) * inv;
    }
    s1 = block_sum(s1, scratch);
    __syncthreads();
    s2 = block_sum(s2, scratch);
    if (threadIdx.x == 0) sums[0] = s1 / T(E), sums[1] = s2 / T(E);
    __syncthreads();
    const T m1 = sums[0], m2 = sums[1];
    for (long long e = threadIdx.x; e < E; e += NORM_BLOCK) {
        const T gh = gr[e] * w[a0 + e / M];
        gx[r * E + e] = inv * (gh - m1 - (xr[e] - mu) * inv * m2);
    }
    if (threadIdx.x == 0) mean[r] = mu, rstd[r] = inv;
}
#define BWD_PARAMS(T)                                                                                         \
    const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ gx,          \
        T* __restrict__ mean, T* __restrict__ rstd, long long E, int G, int Cg, long long M, T eps
FC_ENTRY_POINTS(row_norm_bwd_v1, BWD_PARAMS, gy, x, w, gx, mean, rstd, E, G, Cg, M, eps)

// Block a: gw[a], gb[a] over rows r = n*G + a/Cg (n < R/G) and elements e in [(a % Cg)*M, (a % Cg + 1)*M),
// pair j = n*M + m strided over the threads, then block_sum.
template <typename T>
__device__ void row_norm_affine_grads_v1(const T* __restrict__ gy, const T* __restrict__ x,
                                         const T* __restrict__ mean, const T* __restrict__ rstd, T* __restrict__ gw,
                                         T* __restrict__ gb, long long R, long long E, int G, int Cg, long long M) {
    __shared__ T scratch[32];
    const int a = blockIdx.x, g = a / Cg, c = a % Cg;
    const long long pairs = R / G * M;
    T sw = T(0), sb = T(0);
    for (long long j = threadIdx.x; j < pairs; j += NORM_BLOCK) {
        const long long r = j / M * G + g, i = r * E + c * M + j % M;
        sw += gy[i] * (x[i] - mean[r]) * rstd[r];
        sb += gy[i];
    }
    sw = block_sum(sw, scratch);
    __syncthreads();
    sb = block_sum(sb, scratch);
    if (threadIdx.x == 0) gw[a] = sw, gb[a] = sb;
}
#define AFFINE_PARAMS(T)                                                                                       \
    const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ rstd, \
        T* __restrict__ gw, T* __restrict__ gb, long long R, long long E, int G, int Cg, long long M
FC_ENTRY_POINTS(row_norm_affine_grads_v1, AFFINE_PARAMS, gy, x, mean, rstd, gw, gb, R, E, G, Cg, M)
