// bias_grad.cu: the bias gradients of conv2d and linear, as deterministic two-stage reductions.
//   conv:   gy (N, K, PQ) -> gb[k] = sum_{n, pq} gy[n, k, pq]       linear: gy (N, K) -> gb[k] = sum_n gy[n, k]
// Versions (entry points <name>_f32 / <name>_f64; v1_reduce, in conv2d_bwd.cu, launches K blocks and divides 64-bit
// integers per element; numba has v2):
//   conv2d_bwd_bias_v3_chunks    grid (K, S): block (k, s) sums chunk s (`chunk` consecutive elements of channel k's
//                                N*PQ, the same split for every dtype and path) walking plane by plane (PlaneWalk:
//                                an add and a compare per step, no division), in 16-byte packs when PQ % pack == 0
//                                and gy is aligned, else element by element; a fixed block_sum; part[s*K + k].
//   linear_bwd_bias_v3_chunks    grid (column tiles of 32, row chunks): lanes of a warp on consecutive columns (32 /
//                                V lanes of V-column packs: 128-byte rows either way), the block's other warps on
//                                rows r, r + step, ...; the row lanes' sums added in lane order through shared
//                                memory; part[s*K + k].
//   bias_grad_v3_reduce          the second stage of both: gb[k] = part[k] + part[K + k] + ... in chunk order.
//   No atomics, every order fixed by the shape: the same bits on every run.
//   Napkin math (H100, 3.35 TB/s; f32 conv gy N=32 K=64 56x56 = 25.7 MB): K*S ~ BIAS_GRID = 1056 blocks of 256
//   threads (8 per SM) stream gy once in 16-byte loads, BIAS_ITEMS = 4 issued before any is used (64 B in flight
//   per thread: ~128 KB per SM with the 8 resident blocks its 32 registers allow, far above the ~20 KB needed):
//   ~85-90% of DRAM bandwidth, ~8.5 us, against v1's 64 blocks and a 64-bit division per element (~3-10%).
//   Linear: gy is small (N*K*4 B, e.g. 256 x 1000 = 1 MB) and mostly launch-bound; the chunked grid keeps every
//   SM busy where N is large. Not measured on a GPU.
#include "common.cuh"
#include "igemm.cuh"
#include "memops.cuh"

#ifndef BIAS_BLOCK
#define BIAS_BLOCK 256
#endif
// loads each thread keeps in flight
#ifndef BIAS_ITEMS
#define BIAS_ITEMS 4
#endif
// Python-side tunable (bias.py): BIAS_GRID, the blocks a launch aims at.

// Block (k, s): the sum of elements first .. first + chunk - 1 (below N*PQ) of channel k, V per pack.
template <typename T, int V>
__device__ void bias_chunk(const T* __restrict__ gy, T* __restrict__ part, int N, int K, int PQ, int chunk) {
    __shared__ T scratch[32];
    const int k = blockIdx.x, Mp = PQ / V, count = N * Mp, per = chunk / V;  // packs of the channel, of a chunk
    const int first = blockIdx.y * per, last = min(count, first + per);
    const T* base = gy + (long long)k * PQ;
    const long long plane = (long long)K * PQ;
    T acc[V];
#pragma unroll
    for (int e = 0; e < V; ++e) acc[e] = T(0);
    PlaneWalk walk(first + threadIdx.x, blockDim.x, Mp);
    for (int j = first + threadIdx.x; j < last; j += BIAS_ITEMS * blockDim.x) {  // BIAS_ITEMS loads in flight
        Pack<T, V> v[BIAS_ITEMS];
#pragma unroll
        for (int u = 0; u < BIAS_ITEMS; ++u) {
            if (j + u * (int)blockDim.x < last) v[u] = load_pack<T, V>(base + walk.offset(plane, V));
            else
                for (int e = 0; e < V; ++e) v[u].v[e] = T(0);
            walk.advance();
        }
#pragma unroll
        for (int u = 0; u < BIAS_ITEMS; ++u)
#pragma unroll
            for (int e = 0; e < V; ++e) acc[e] += v[u].v[e];
    }
    T sum = acc[0];
#pragma unroll
    for (int e = 1; e < V; ++e) sum += acc[e];
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) part[(long long)blockIdx.y * K + k] = sum;
}
#define BIAS_PARAMS(T) const T* __restrict__ gy, T* __restrict__ part, int N, int K, int PQ, int chunk
template <typename T>
__device__ void conv2d_bwd_bias_v3_chunks(BIAS_PARAMS(T)) {
    constexpr int V = PACK(T);
    if (PQ % V == 0 && aligned16(gy)) bias_chunk<T, V>(gy, part, N, K, PQ, chunk);
    else bias_chunk<T, 1>(gy, part, N, K, PQ, chunk);
}
FC_ENTRY_POINTS(conv2d_bwd_bias_v3_chunks, BIAS_PARAMS, gy, part, N, K, PQ, chunk)

// Block (column tile blockIdx.x, row chunk blockIdx.y): columns k0 .. k0+31, rows r0 .. r0 + rows - 1 (below N).
// Thread t: column lane t % (32/V) (V columns from k0 + lane*V), row lane t / (32/V). Each column's row-lane
// sums are added in row-lane order by thread (its column) of the first warp.
template <typename T, int V>
__device__ void linear_bias_chunk(const T* __restrict__ gy, T* __restrict__ part, int N, int K, int rows) {
    __shared__ T red[BIAS_BLOCK * 16 / sizeof(T)];  // row lanes x 32 columns
    constexpr int LANES = 32 / V;
    const int lane = threadIdx.x % LANES, row_lane = threadIdx.x / LANES, row_lanes = blockDim.x / LANES;
    const int k0 = blockIdx.x * 32, col = k0 + lane * V, r0 = blockIdx.y * rows, r1 = min(N, r0 + rows);
    T acc[V];
#pragma unroll
    for (int e = 0; e < V; ++e) acc[e] = T(0);
    if (col < K) {
        for (int r = r0 + row_lane; r < r1; r += BIAS_ITEMS * row_lanes) {  // BIAS_ITEMS loads in flight
            Pack<T, V> v[BIAS_ITEMS];
#pragma unroll
            for (int u = 0; u < BIAS_ITEMS; ++u) {
                const int ru = r + u * row_lanes;
                if (ru < r1) v[u] = load_pack<T, V>(gy + (long long)ru * K + col);
                else
                    for (int e = 0; e < V; ++e) v[u].v[e] = T(0);
            }
#pragma unroll
            for (int u = 0; u < BIAS_ITEMS; ++u)
#pragma unroll
                for (int e = 0; e < V; ++e) acc[e] += v[u].v[e];
        }
    }
#pragma unroll
    for (int e = 0; e < V; ++e) red[row_lane * 32 + lane * V + e] = acc[e];
    __syncthreads();
    if (threadIdx.x < 32 && k0 + (int)threadIdx.x < K) {
        T sum = red[threadIdx.x];
        for (int l = 1; l < row_lanes; ++l) sum += red[l * 32 + threadIdx.x];
        part[(long long)blockIdx.y * K + k0 + threadIdx.x] = sum;
    }
}
#define LINEAR_BIAS_PARAMS(T) const T* __restrict__ gy, T* __restrict__ part, int N, int K, int rows
template <typename T>
__device__ void linear_bwd_bias_v3_chunks(LINEAR_BIAS_PARAMS(T)) {
    constexpr int V = PACK(T);
    if (K % V == 0 && aligned16(gy)) linear_bias_chunk<T, V>(gy, part, N, K, rows);
    else linear_bias_chunk<T, 1>(gy, part, N, K, rows);
}
FC_ENTRY_POINTS(linear_bwd_bias_v3_chunks, LINEAR_BIAS_PARAMS, gy, part, N, K, rows)

template <typename T>
__device__ void bias_grad_v3_reduce(SPLITK_REDUCE_PARAMS(T)) { splitk_reduce(SPLITK_REDUCE_ARGS); }
FC_ENTRY_POINTS(bias_grad_v3_reduce, SPLITK_REDUCE_PARAMS, SPLITK_REDUCE_ARGS)
