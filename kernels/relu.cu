// relu.cu: ReLU forward and backward, elementwise over a flat array of n elements (any shape).
//   y = max(x, 0), NaN stays NaN;  gx = gy where y > 0, else 0 (PyTorch: 0 where y <= 0; NaN y passes gy)
//   relu_fwd_v1 / relu_bwd_v1: grid-stride loop, one element per thread per step, ELTWISE_BLOCK threads a block.
//   Memory traffic: fwd 2 n elements, bwd 3 n; no reuse, so the roofline is the copy bandwidth.
//   relu_fwd_v3_packs / relu_bwd_v3_packs (numba has v2): tiles of ELTWISE_BLOCK x ELTWISE_ITEMS 16-byte packs
//     (float4, double2) when every array is 16-byte aligned, thread t taking packs t, t + ELTWISE_BLOCK, ... of a
//     tile (coalesced), all its loads issued before its stores; blocks stride over the tiles (grid capped at
//     MAX_BLOCKS); the n % pack tail elements by block 0; one element per step when misaligned. Napkin math (H100,
//     3.35 TB/s): 8 (fwd) or 12 (bwd) bytes per f32 element with 4 x 16 B loads in flight per thread, 2048 threads
//     per SM (~128 KB per SM in flight, well above what latency x bandwidth needs): ~90% of DRAM bandwidth, the
//     copy roofline (v1: one 4-byte load per thread per step, 64-bit index math per element; estimated ~60-75%).
#include "common.cuh"
#include "memops.cuh"

#ifndef ELTWISE_BLOCK
#define ELTWISE_BLOCK 256
#endif
#ifndef ELTWISE_ITEMS
#define ELTWISE_ITEMS 4
#endif

// y[i] = max(x[i], 0): thread t handles i = t, t + threads, ...; each i written once, so race-free.
template <typename T>
__device__ void relu_fwd_v1(const T* __restrict__ x, T* __restrict__ y, long long n) {
    for (long long i = global_thread_index(); i < n; i += global_thread_count()) {
        const T v = x[i];
        y[i] = (v > T(0) || is_nan(v)) ? v : T(0);
    }
}
#define RELU_FWD_PARAMS(T) const T* __restrict__ x, T* __restrict__ y, long long n
FC_ENTRY_POINTS(relu_fwd_v1, RELU_FWD_PARAMS, x, y, n)

// gx[i] = y[i] <= 0 ? 0 : gy[i], same mapping as the forward.
template <typename T>
__device__ void relu_bwd_v1(const T* __restrict__ gy, const T* __restrict__ y, T* __restrict__ gx, long long n) {
    for (long long i = global_thread_index(); i < n; i += global_thread_count()) gx[i] = y[i] <= T(0) ? T(0) : gy[i];
}
#define RELU_BWD_PARAMS(T) const T* __restrict__ gy, const T* __restrict__ y, T* __restrict__ gx, long long n
FC_ENTRY_POINTS(relu_bwd_v1, RELU_BWD_PARAMS, gy, y, gx, n)

// The packs of V elements [0, n / V) in tiles of ELTWISE_ITEMS packs per thread, block b taking tiles b, b + grid,
// ...: f(off, ok) gets the element offsets of the thread's packs of a tile and which are below n / V; then the
// last n % V elements, one per thread of block 0, through f1(i). Each element is passed once: race-free.
template <int V, typename F, typename F1>
__device__ __forceinline__ void for_each_pack(long long n, F f, F1 f1) {
    const long long packs = n / V, tile = (long long)ELTWISE_BLOCK * ELTWISE_ITEMS;
    for (long long t0 = blockIdx.x * tile; t0 < packs; t0 += gridDim.x * tile) {
        long long off[ELTWISE_ITEMS];
        bool ok[ELTWISE_ITEMS];
#pragma unroll
        for (int k = 0; k < ELTWISE_ITEMS; ++k) {
            const long long j = t0 + k * ELTWISE_BLOCK + threadIdx.x;
            ok[k] = j < packs, off[k] = j * V;
        }
        f(off, ok);
    }
    if (blockIdx.x == 0 && threadIdx.x < n - packs * V) f1(packs * V + threadIdx.x);
}
#define PACKS_ARGS const long long(&off)[ELTWISE_ITEMS], const bool(&ok)[ELTWISE_ITEMS]

template <typename T>
__device__ __forceinline__ T relu_of(T v) {
    return (v > T(0) || is_nan(v)) ? v : T(0);
}

template <typename T, int V>
__device__ void relu_fwd(const T* __restrict__ x, T* __restrict__ y, long long n) {
    for_each_pack<V>(
        n,
        [&](PACKS_ARGS) {
            Pack<T, V> v[ELTWISE_ITEMS];
#pragma unroll
            for (int k = 0; k < ELTWISE_ITEMS; ++k)
                if (ok[k]) v[k] = load_pack<T, V>(x + off[k]);
#pragma unroll
            for (int k = 0; k < ELTWISE_ITEMS; ++k)
                if (ok[k]) {
#pragma unroll
                    for (int i = 0; i < V; ++i) v[k].v[i] = relu_of(v[k].v[i]);
                    store_pack<T, V>(y + off[k], v[k]);
                }
        },
        [&](long long i) { y[i] = relu_of(x[i]); });
}
// y = relu(x) (as v1) over 16-byte packs when x and y are 16-byte aligned, else element by element.
template <typename T>
__device__ void relu_fwd_v3_packs(const T* __restrict__ x, T* __restrict__ y, long long n) {
    if (aligned16(x, y)) relu_fwd<T, PACK(T)>(x, y, n);
    else relu_fwd<T, 1>(x, y, n);
}
FC_ENTRY_POINTS(relu_fwd_v3_packs, RELU_FWD_PARAMS, x, y, n)

template <typename T, int V>
__device__ void relu_bwd(const T* __restrict__ gy, const T* __restrict__ y, T* __restrict__ gx, long long n) {
    for_each_pack<V>(
        n,
        [&](PACKS_ARGS) {
            Pack<T, V> g[ELTWISE_ITEMS], v[ELTWISE_ITEMS];
#pragma unroll
            for (int k = 0; k < ELTWISE_ITEMS; ++k)
                if (ok[k]) g[k] = load_pack<T, V>(gy + off[k]), v[k] = load_pack<T, V>(y + off[k]);
#pragma unroll
            for (int k = 0; k < ELTWISE_ITEMS; ++k)
                if (ok[k]) {
#pragma unroll
                    for (int i = 0; i < V; ++i) g[k].v[i] = v[k].v[i] <= T(0) ? T(0) : g[k].v[i];
                    store_pack<T, V>(gx + off[k], g[k]);
                }
        },
        [&](long long i) { gx[i] = y[i] <= T(0) ? T(0) : gy[i]; });
}
// gx = gy where y > 0 (as v1), over 16-byte packs when gy, y and gx are 16-byte aligned.
template <typename T>
__device__ void relu_bwd_v3_packs(const T* __restrict__ gy, const T* __restrict__ y, T* __restrict__ gx, long long n) {
    if (aligned16(gy, y, gx)) relu_bwd<T, PACK(T)>(gy, y, gx, n);
    else relu_bwd<T, 1>(gy, y, gx, n);
}
FC_ENTRY_POINTS(relu_bwd_v3_packs, RELU_BWD_PARAMS, gy, y, gx, n)
