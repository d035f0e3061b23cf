// memops.cuh: what the memory-bound kernels (batchnorm.cu, relu.cu, pool2d.cu v2+) share.
//   Pack<T, V>       V consecutive elements; load_pack / store_pack move them as one 16-byte access (float4,
//                    double2) when V = PACK(T) = 16 / sizeof(T), as scalars when V = 1.
//   aligned16        whether pointers are 16-byte aligned (a kernel takes its vector path only if they all are).
//   PlaneWalk        a thread's walk over one channel of an NCHW tensor, in packs, with a fixed stride: the pack's
//                    plane n and offset hw are carried from step to step (an add and a compare), never divided.
//   block_sum_all    a block-wide sum of K values that every thread receives, in a fixed order (deterministic).
// No system headers (NVRTC has none); compiles under the host emulator too (fastconv/backends/cuda/emu/fcemu.h).
#pragma once

template <typename T>
struct Vec16;  // the 16-byte vector type of T and its width (PACK<T>: elements of T in one 16-byte access)
template <>
struct Vec16<float> {
    typedef float4 type;
    enum { width = 4 };
};
template <>
struct Vec16<double> {
    typedef double2 type;
    enum { width = 2 };
};
#define PACK(T) ((int)Vec16<T>::width)

template <typename T, int V>
struct Pack {
    T v[V];
};

template <typename T, int V>
struct PackIO {  // V == pack_width<T>(): one vector access
    static __device__ __forceinline__ Pack<T, V> load(const T* p) {
        const typename Vec16<T>::type q = *reinterpret_cast<const typename Vec16<T>::type*>(p);
        Pack<T, V> r;
        const T* e = reinterpret_cast<const T*>(&q);
#pragma unroll
        for (int i = 0; i < V; ++i) r.v[i] = e[i];
        return r;
    }
    static __device__ __forceinline__ void store(T* p, const Pack<T, V>& r) {
        typename Vec16<T>::type q;
        T* e = reinterpret_cast<T*>(&q);
#pragma unroll
        for (int i = 0; i < V; ++i) e[i] = r.v[i];
        *reinterpret_cast<typename Vec16<T>::type*>(p) = q;
    }
};
template <typename T>
struct PackIO<T, 1> {
    static __device__ __forceinline__ Pack<T, 1> load(const T* p) { return Pack<T, 1>{{*p}}; }
    static __device__ __forceinline__ void store(T* p, const Pack<T, 1>& r) { *p = r.v[0]; }
};
template <typename T, int V>
__device__ __forceinline__ Pack<T, V> load_pack(const T* p) {
    return PackIO<T, V>::load(p);
}
template <typename T, int V>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, V>& r) {
    PackIO<T, V>::store(p, r);
}

__device__ __forceinline__ bool aligned16(const void* a, const void* b = nullptr, const void* c = nullptr) {
    return (((unsigned long long)a | (unsigned long long)b | (unsigned long long)c) & 15ULL) == 0;
}

// Pack j of one channel, j = n * Mp + hw (Mp packs per plane), lies at element n * plane + hw * V from the channel's
// first element (plane = C * M elements between the channel's planes of consecutive n). A walk starts at j and
// moves by `step` packs per advance(); the quotient and remainder of step by Mp are taken once, at the start.
struct PlaneWalk {
    int n, hw, step_n, step_hw, Mp;
    __device__ __forceinline__ PlaneWalk(int j, int step, int Mp_) : Mp(Mp_) {
        n = j / Mp, hw = j - n * Mp;
        step_n = step / Mp, step_hw = step - step_n * Mp;
    }
    __device__ __forceinline__ void advance() {
        hw += step_hw, n += step_n;
        if (hw >= Mp) hw -= Mp, ++n;
    }
    __device__ __forceinline__ long long offset(long long plane, int V) const { return n * plane + (long long)hw * V; }
};

// Sums v[0..K) over the block (blockDim.x a multiple of 32, at most 1024) and returns the sums to every thread in v.
// Warps reduce with shuffles; lane 0 of each writes its sums to scratch; after one barrier every thread adds the
// warps' sums in warp order, so all threads get the same bits, run after run. scratch: 2 * 32 * K values of shared
// memory; `parity` alternates between two halves so that the next call's writes never race with this call's
// reads (a thread writes half h again only after the barrier of the call in between). Uniform control flow only.
template <typename T, int K>
__device__ __forceinline__ void block_sum_all(T (&v)[K], T* scratch, int& parity) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    T* half = scratch + parity * 32 * K;
    parity ^= 1;
#pragma unroll
    for (int k = 0; k < K; ++k) {
        for (int offset = 16; offset > 0; offset >>= 1) v[k] += __shfl_xor_sync(0xffffffffu, v[k], offset);
        if (lane == 0) half[k * 32 + warp] = v[k];
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < K; ++k) {
        v[k] = half[k * 32];
        for (int w = 1; w < warps; ++w) v[k] += half[k * 32 + w];
    }
}
