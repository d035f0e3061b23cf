// batchnorm_chunks.cu: batch norm v3 over x seen as (N, C, M), as batchnorm.cu (v1) defines it:
//   training: mean[c], var[c] = mean and biased variance over (n, m); eval: the running statistics.
//   y = (x - mean[c]) * w[c] / sqrt(var[c] + eps) + b[c];   xhat = (x - mean[c]) / sqrt(var[c] + eps)
//   gb[c] = sum gy, gw[c] = sum gy * xhat;  gx = w invstd / count * (count gy - gb - xhat gw) (training, count = N*M),
//   gx = gy w invstd (eval).
// Versions (entry points <name>_f32 / <name>_f64):
// v3 (numba has v2): grids (C, S): block (c, s) works on chunk s of channel c's N*M elements (S chunks of
//   BN_BLOCK * BN_ITEMS * 16 bytes, a whole number of tiles, so C * S ~ BN_GRID blocks); each thread walks its chunk
//   plane by plane (PlaneWalk: an add and a compare per pack, no division), in 16-byte packs (float4, double2) when
//   M % pack == 0 and the arrays are 16-byte aligned, else one element at a time; BN_ITEMS packs per thread per tile.
//   batch_norm_stats_v3_chunks       partial moments per block: per tile (BN_BLOCK x BN_ITEMS packs, in registers)
//                                    the sum, then the squared deviations from the tile's own mean (two passes over
//                                    registers, as v1's two passes over memory), merged tile after tile by Chan's
//                                    pairwise update; 4 values per block to a workspace. Reads x once.
//                                    Deterministic: fixed orders, no atomics.
//   batch_norm_bwd_reduce_v3_chunks  the same, also sum gy and sum gy (x - tile mean) (reads gy and x once).
//   batch_norm_fwd_v3_chunks         elementwise; each block first merges its channel's S partials (warp 0, a fixed
//                                    tree), so the statistics, the scale w / sqrt(var + eps) and the batch mean/var
//                                    outputs (block s = 0) are computed once per block, not per element. Eval: the
//                                    running statistics, no workspace.
//   batch_norm_bwd_data_v3_chunks    elementwise, merging the bwd_reduce partials the same way into gw, gb (written
//                                    by block s = 0) and the per-channel coefficients of gx.
//   Registry: batch_norm_fwd_v3_chunks (stats + fwd in training), batch_norm_bwd_v3_chunks (bwd_reduce + bwd_data).
//   Napkin math (H100, 3.35 TB/s; f32 ResNet-50 layer N=32 C=64 56x56 = 6.4M elements, 25.7 MB): DRAM bytes per
//   element: training forward 4 (x) + 4 (x) + 4 (y) = 12 (v1: 16), eval 8; backward 8 (gy, x) + 8 (gy, x) + 4 (gx)
//   = 20 (v1: 28). Each pass is a streaming read/write with 16-byte loads over C * S ~ 1000 blocks of 256 threads
//   (~8 per SM over the launch; 2-5 resident at a time, by the 46-82 registers ptxas gives them on sm_90), each
//   thread with BN_ITEMS x 16 B in flight (x2 in the backward): 32-80 KB in flight per SM, above the ~20 KB that
//   3.35 TB/s at ~0.8 us latency needs per SM, so each pass should run near the copy bandwidth, ~85-90% of 3.35
//   TB/s (the 2 barriers per 4096-element tile and the S-way merges are hidden by the other resident blocks):
//   training forward ~77 MB in ~27 us, backward ~128 MB in ~45 us. Estimates; not yet measured on a GPU.
#include "common.cuh"
#include "memops.cuh"

#ifndef BN_BLOCK
#define BN_BLOCK 256
#endif
#ifndef BN_ITEMS
#define BN_ITEMS 4
#endif
// blocks a v3 launch aims at (the launcher sizes S from it): 8 per SM of an H100's 132
#ifndef BN_GRID
#define BN_GRID 1056
#endif

// Moments of a run of a channel's elements: count n, mean, m2 = sum (x - mean)^2, g = sum gy, r = sum gy (x - mean).
template <typename T>
struct Moments {
    long long n;
    T mean, m2, g, r;
};

// Chan et al.'s pairwise update: the moments of run a followed by run b (exact algebra; the order of the merges is
// part of the result's bits, so callers fix it).
template <typename T>
__device__ __forceinline__ Moments<T> merge_moments(const Moments<T>& a, const Moments<T>& b) {
    if (b.n == 0) return a;
    if (a.n == 0) return b;
    const long long n = a.n + b.n;
    const T f = T(b.n) / T(n), delta = b.mean - a.mean;
    Moments<T> m;
    m.n = n;
    m.mean = a.mean + delta * f;
    m.m2 = a.m2 + b.m2 + delta * delta * T(a.n) * f;
    m.g = a.g + b.g;
    m.r = a.r + b.r + (a.mean - m.mean) * a.g + (b.mean - m.mean) * b.g;
    return m;
}

// Chunk blockIdx.y of channel blockIdx.x in packs of V elements, [begin, end): chunks of chunk_elems elements (a
// multiple of every pack width); the launcher keeps N*M + chunk_elems < 2^31 (supports), so ints hold them.
template <int V>
__device__ __forceinline__ void chunk_bounds(int N, int M, int chunk_elems, int& begin, int& end) {
    const int chunk = chunk_elems / V;
    begin = (int)blockIdx.y * chunk;
    end = min(begin + chunk, N * (M / V));
}

// The packs [begin, end) of channel blockIdx.x (M / V packs per plane, planes C * M elements apart) in tiles of
// BN_ITEMS packs per thread, thread t taking packs t, t + BN_BLOCK, ... of a tile (coalesced): f(packs, off, ok)
// gets the tile's number of packs in range, the element offsets of the thread's packs from the channel's first
// element and which are in range. The tile loop is the same for every thread, so f may hold barriers.
template <int V, typename F>
__device__ __forceinline__ void for_each_tile(int begin, int end, int C, int M, F f) {
    PlaneWalk walk(begin + (int)threadIdx.x, BN_BLOCK, M / V);
    const long long plane = (long long)C * M;
    for (int t0 = begin; t0 < end; t0 += BN_BLOCK * BN_ITEMS) {
        long long off[BN_ITEMS];
        bool ok[BN_ITEMS];
#pragma unroll
        for (int k = 0; k < BN_ITEMS; ++k) {
            ok[k] = t0 + k * BN_BLOCK + (int)threadIdx.x < end;
            off[k] = walk.offset(plane, V);
            walk.advance();
        }
        f(min(BN_BLOCK * BN_ITEMS, end - t0), off, ok);
    }
}
#define BN_TILE_ARGS int packs, const long long(&off)[BN_ITEMS], const bool(&ok)[BN_ITEMS]

// Block (c, s): the moments of chunk s of channel c (of x; with GRAD also of gy against x), written to
// ws[(k * C + c) * S + s] for k = mean, m2, g, r. Per tile: the thread's sums over its registers (pack, then
// element order), block_sum_all, the tile's mean, the deviations from it (registers again), block_sum_all, and a
// merge into the block's run. All threads hold the same run (block_sum_all gives every thread the sums).
template <typename T, int V, bool GRAD>
__device__ void bn_moments(const T* __restrict__ x, const T* __restrict__ gy, T* __restrict__ ws, int N, int C,
                           int M, int chunk_elems) {
    constexpr int K = GRAD ? 2 : 1;
    __shared__ T scratch[2 * 32 * K];
    int begin, end, parity = 0;
    chunk_bounds<V>(N, M, chunk_elems, begin, end);
    const T* xc = x + (long long)blockIdx.x * M;
    const T* gc = gy + (long long)blockIdx.x * M;
    Moments<T> run = {0, T(0), T(0), T(0), T(0)};
    for_each_tile<V>(begin, end, C, M, [&](BN_TILE_ARGS) {
        Pack<T, V> xv[BN_ITEMS], gv[BN_ITEMS];
#pragma unroll
        for (int k = 0; k < BN_ITEMS; ++k) {
            xv[k] = ok[k] ? load_pack<T, V>(xc + off[k]) : Pack<T, V>{};
            gv[k] = GRAD && ok[k] ? load_pack<T, V>(gc + off[k]) : Pack<T, V>{};
        }
        T sums[K] = {};
#pragma unroll
        for (int k = 0; k < BN_ITEMS; ++k)
#pragma unroll
            for (int i = 0; i < V; ++i) {
                sums[0] += xv[k].v[i];
                if (GRAD) sums[K - 1] += gv[k].v[i];
            }
        block_sum_all(sums, scratch, parity);
        Moments<T> tile = {(long long)packs * V, T(0), T(0), sums[K - 1], T(0)};
        tile.mean = sums[0] / T(tile.n);
        T dev[K] = {};
#pragma unroll
        for (int k = 0; k < BN_ITEMS; ++k)
#pragma unroll
            for (int i = 0; i < V; ++i)
                if (ok[k]) {
                    const T d = xv[k].v[i] - tile.mean;
                    dev[0] += d * d;
                    if (GRAD) dev[K - 1] += gv[k].v[i] * d;
                }
        block_sum_all(dev, scratch, parity);
        tile.m2 = dev[0];
        if (GRAD) tile.r = dev[K - 1];
        run = merge_moments(run, tile);
    });
    if (threadIdx.x == 0) {
        const long long cs = (long long)blockIdx.x * gridDim.y + blockIdx.y, CS = (long long)C * gridDim.y;
        ws[cs] = run.mean, ws[CS + cs] = run.m2, ws[2 * CS + cs] = run.g, ws[3 * CS + cs] = run.r;
    }
}

// The 16-byte path when M is a whole number of packs and every array it touches is 16-byte aligned.
template <typename T, bool GRAD>
__device__ void bn_moments_v3(const T* __restrict__ x, const T* __restrict__ gy, T* __restrict__ ws, int N, int C,
                              int M, int chunk_elems) {
    constexpr int V = PACK(T);
    if (M % V == 0 && aligned16(x, gy)) bn_moments<T, V, GRAD>(x, gy, ws, N, C, M, chunk_elems);
    else bn_moments<T, 1, GRAD>(x, gy, ws, N, C, M, chunk_elems);
}
template <typename T>
__device__ void batch_norm_stats_v3_chunks(const T* __restrict__ x, T* __restrict__ ws, int N, int C, int M,
                                           int chunk) {
    bn_moments_v3<T, false>(x, x, ws, N, C, M, chunk);
}
#define STATS_V3_PARAMS(T) const T* __restrict__ x, T* __restrict__ ws, int N, int C, int M, int chunk
FC_ENTRY_POINTS(batch_norm_stats_v3_chunks, STATS_V3_PARAMS, x, ws, N, C, M, chunk)
template <typename T>
__device__ void batch_norm_bwd_reduce_v3_chunks(const T* __restrict__ gy, const T* __restrict__ x, T* __restrict__ ws,
                                                int N, int C, int M, int chunk) {
    bn_moments_v3<T, true>(x, gy, ws, N, C, M, chunk);
}
#define BWD_REDUCE_V3_PARAMS(T) \
    const T* __restrict__ gy, const T* __restrict__ x, T* __restrict__ ws, int N, int C, int M, int chunk
FC_ENTRY_POINTS(batch_norm_bwd_reduce_v3_chunks, BWD_REDUCE_V3_PARAMS, gy, x, ws, N, C, M, chunk)

// The moments of channel blockIdx.x from the gridDim.y partials of bn_moments (same grid, same chunks), returned to
// every thread: warp 0's lane l merges partials l, l + 32, ... in order, then lanes merge pairwise (l with l + 16,
// then l + 8, ...): a fixed tree, so the same bits in every block and every run. Call from uniform control flow.
template <typename T>
__device__ Moments<T> channel_moments(const T* __restrict__ ws, int N, int C, int M, int chunk_elems) {
    __shared__ Moments<T> total;
    if (threadIdx.x < 32) {
        const int S = (int)gridDim.y;
        const long long CS = (long long)C * S, NM = (long long)N * M;
        Moments<T> run = {0, T(0), T(0), T(0), T(0)};
        for (int s = (int)threadIdx.x; s < S; s += 32) {
            const long long cs = (long long)blockIdx.x * S + s, rest = NM - (long long)s * chunk_elems;
            const Moments<T> part = {rest < chunk_elems ? rest : chunk_elems, ws[cs], ws[CS + cs], ws[2 * CS + cs],
                                     ws[3 * CS + cs]};
            run = merge_moments(run, part);
        }
        for (int offset = 16; offset > 0; offset >>= 1) {
            Moments<T> other;
            other.n = __shfl_down_sync(0xffffffffu, run.n, offset);
            other.mean = __shfl_down_sync(0xffffffffu, run.mean, offset);
            other.m2 = __shfl_down_sync(0xffffffffu, run.m2, offset);
            other.g = __shfl_down_sync(0xffffffffu, run.g, offset);
            other.r = __shfl_down_sync(0xffffffffu, run.r, offset);
            if ((int)threadIdx.x < offset) run = merge_moments(run, other);
        }
        if (threadIdx.x == 0) total = run;
    }
    __syncthreads();
    return total;
}

// Block (c, s): y = (x - mean) * scale + b over chunk s of channel c, scale = w / sqrt(var + eps) once per thread.
// training: mean, var are the batch's (channel_moments of the partials of batch_norm_stats_v3_chunks), which block
// s = 0 also writes to bmean, bvar; eval: the given running statistics. Each y written once: race-free.
template <typename T, int V>
__device__ void bn_fwd(const T* __restrict__ x, const T* __restrict__ ws, const T* __restrict__ rmean,
                       const T* __restrict__ rvar, const T* __restrict__ w, const T* __restrict__ b, T* __restrict__ y,
                       T* __restrict__ bmean, T* __restrict__ bvar, T eps, int training, int N, int C, int M,
                       int chunk_elems) {
    const int c = blockIdx.x;
    T mu, var;
    if (training) {
        const Moments<T> m = channel_moments(ws, N, C, M, chunk_elems);
        mu = m.mean, var = m.m2 / T(m.n);
        if (blockIdx.y == 0 && threadIdx.x == 0) bmean[c] = mu, bvar[c] = var;
    } else {
        mu = rmean[c], var = rvar[c];
    }
    const T scale = w[c] / sqrt(var + eps), shift = b[c];
    int begin, end;
    chunk_bounds<V>(N, M, chunk_elems, begin, end);
    const T* xc = x + (long long)c * M;
    T* yc = y + (long long)c * M;
    for_each_tile<V>(begin, end, C, M, [&](BN_TILE_ARGS) {
        Pack<T, V> v[BN_ITEMS];
#pragma unroll
        for (int k = 0; k < BN_ITEMS; ++k)
            if (ok[k]) v[k] = load_pack<T, V>(xc + off[k]);
#pragma unroll
        for (int k = 0; k < BN_ITEMS; ++k)
            if (ok[k]) {
#pragma unroll
                for (int i = 0; i < V; ++i) v[k].v[i] = (v[k].v[i] - mu) * scale + shift;
                store_pack<T, V>(yc + off[k], v[k]);
            }
    });
}
#define FWD_V3_PARAMS(T)                                                                                          \
    const T* __restrict__ x, const T* __restrict__ ws, const T* __restrict__ rmean, const T* __restrict__ rvar,   \
        const T* __restrict__ w, const T* __restrict__ b, T* __restrict__ y, T* __restrict__ bmean,                \
        T* __restrict__ bvar, T eps, int training, int N, int C, int M, int chunk
template <typename T>
__device__ void batch_norm_fwd_v3_chunks(FWD_V3_PARAMS(T)) {
    if (M % PACK(T) == 0 && aligned16(x, y))
        bn_fwd<T, PACK(T)>(x, ws, rmean, rvar, w, b, y, bmean, bvar, eps, training, N, C, M, chunk);
    else
        bn_fwd<T, 1>(x, ws, rmean, rvar, w, b, y, bmean, bvar, eps, training, N, C, M, chunk);
}
FC_ENTRY_POINTS(batch_norm_fwd_v3_chunks, FWD_V3_PARAMS, x, ws, rmean, rvar, w, b, y, bmean, bvar, eps, training, N, C,
                M, chunk)

// Block (c, s): gx over chunk s of channel c from the channel's sums (channel_moments of the partials of
// batch_norm_bwd_reduce_v3_chunks): gb = sum gy, gw = sum gy (x - mean) * invstd (block s = 0 writes both), mean and
// var the batch's (training) or the running ones (eval). training: gx = w invstd / count * (count gy - gb - xhat gw),
// xhat = (x - mean) invstd; eval: gx = gy * w invstd. The coefficients once per thread; each gx written once.
template <typename T, int V>
__device__ void bn_bwd_data(const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ ws,
                            const T* __restrict__ rmean, const T* __restrict__ rvar, const T* __restrict__ w,
                            T* __restrict__ gx, T* __restrict__ gw, T* __restrict__ gb, T eps, int training, int N,
                            int C, int M, int chunk_elems) {
    const int c = blockIdx.x;
    const Moments<T> m = channel_moments(ws, N, C, M, chunk_elems);
    const T mu = training ? m.mean : rmean[c], var = training ? m.m2 / T(m.n) : rvar[c];
    const T invstd = T(1) / sqrt(var + eps), count = T(m.n);
    const T sum_g = m.g, sum_gxhat = (m.r + (m.mean - mu) * m.g) * invstd;  // sum gy (x - mu): m.r is about m.mean
    if (blockIdx.y == 0 && threadIdx.x == 0) gw[c] = sum_gxhat, gb[c] = sum_g;
    const T k_train = w[c] * invstd / count, k_eval = w[c] * invstd, k_x = invstd * sum_gxhat;
    int begin, end;
    chunk_bounds<V>(N, M, chunk_elems, begin, end);
    const long long channel = (long long)c * M;
    for_each_tile<V>(begin, end, C, M, [&](BN_TILE_ARGS) {
        Pack<T, V> g[BN_ITEMS], v[BN_ITEMS];
#pragma unroll
        for (int k = 0; k < BN_ITEMS; ++k)
            if (ok[k]) {
                g[k] = load_pack<T, V>(gy + channel + off[k]);
                if (training) v[k] = load_pack<T, V>(x + channel + off[k]);
            }
#pragma unroll
        for (int k = 0; k < BN_ITEMS; ++k)
            if (ok[k]) {
#pragma unroll
                for (int i = 0; i < V; ++i)
                    g[k].v[i] = training ? k_train * (count * g[k].v[i] - sum_g - (v[k].v[i] - mu) * k_x)
                                         : g[k].v[i] * k_eval;
                store_pack<T, V>(gx + channel + off[k], g[k]);
            }
    });
}
#define BWD_DATA_V3_PARAMS(T)                                                                                   \
    const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ ws, const T* __restrict__ rmean,   \
        const T* __restrict__ rvar, const T* __restrict__ w, T* __restrict__ gx, T* __restrict__ gw,             \
        T* __restrict__ gb, T eps, int training, int N, int C, int M, int chunk
template <typename T>
__device__ void batch_norm_bwd_data_v3_chunks(BWD_DATA_V3_PARAMS(T)) {
    if (M % PACK(T) == 0 && aligned16(gy, x, gx))
        bn_bwd_data<T, PACK(T)>(gy, x, ws, rmean, rvar, w, gx, gw, gb, eps, training, N, C, M, chunk);
    else
        bn_bwd_data<T, 1>(gy, x, ws, rmean, rvar, w, gx, gw, gb, eps, training, N, C, M, chunk);
}
FC_ENTRY_POINTS(batch_norm_bwd_data_v3_chunks, BWD_DATA_V3_PARAMS, gy, x, ws, rmean, rvar, w, gx, gw, gb, eps, training,
                N, C, M, chunk)
