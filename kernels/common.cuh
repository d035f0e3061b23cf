// common.cuh: what every kernel file shares.
//   FC_ENTRY_POINTS  one extern "C" entry point per float type (name_f32, name_f64) around a kernel template, so
//                    each kernel has one source; the launchers pick the entry point by dtype. FC_ENTRY_POINTS_OF
//                    gives a kernel template the entry points of another op's name (one kernel, two registry ops,
//                    each under its own name).
//   dynamic_smem     the launch's dynamic shared memory (`extern __shared__`) as T*.
//   for_each_window  the output windows that read one input element (backward gathers).
//   index helpers    flat thread index and thread count as 64-bit integers (tensors may exceed 2^31 elements).
//   reductions       warp_sum (shuffles) and block_sum (warps, then one warp over the warp sums): deterministic,
//                    the same order on every run for a given block size.
// Compiles under nvcc/NVRTC and under the host emulator (fastconv/backends/cuda/emu/fcemu.h). No system headers:
// NVRTC has none.
#pragma once

// FC_ENTRY_POINTS(name, PARAMS, args...): PARAMS(T) expands to the parameter list for element type T.
#define FC_ENTRY_POINTS_OF(name, kernel, PARAMS, ...)                                          \
    extern "C" __global__ void name##_f32(PARAMS(float)) { kernel<float>(__VA_ARGS__); } \
    extern "C" __global__ void name##_f64(PARAMS(double)) { kernel<double>(__VA_ARGS__); }
#define FC_ENTRY_POINTS(name, PARAMS, ...) FC_ENTRY_POINTS_OF(name, name, PARAMS, __VA_ARGS__)
// The same with __launch_bounds__(threads, min_blocks): the launch always uses `threads` threads per block, and
// ptxas keeps registers low enough for min_blocks resident blocks per SM.
#define FC_ENTRY_POINTS_BOUNDED_OF(name, kernel, threads, min_blocks, PARAMS, ...)                             \
    extern "C" __global__ void __launch_bounds__(threads, min_blocks) name##_f32(PARAMS(float)) {               \
        kernel<float>(__VA_ARGS__);                                                                              \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(threads, min_blocks) name##_f64(PARAMS(double)) {              \
        kernel<double>(__VA_ARGS__);                                                                             \
    }
#define FC_ENTRY_POINTS_BOUNDED(name, threads, min_blocks, PARAMS, ...) \
    FC_ENTRY_POINTS_BOUNDED_OF(name, name, threads, min_blocks, PARAMS, __VA_ARGS__)

__device__ __forceinline__ long long global_thread_index() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ long long global_thread_count() { return (long long)gridDim.x * blockDim.x; }

// The launch's dynamic shared memory as an array of T (one extern array for every kernel of a file, as CUDA
// requires when templates of different T share it).
template <typename T>
__device__ __forceinline__ T* dynamic_smem() {
    extern __shared__ __align__(16) unsigned char fc_dynamic_smem[];
    return reinterpret_cast<T*>(fc_dynamic_smem);
}

template <typename T>
__device__ __forceinline__ bool is_nan(T v) { return v != v; }

template <typename T>
__device__ __forceinline__ T negative_infinity();
template <>
__device__ __forceinline__ float negative_infinity<float>() { return __int_as_float(0xff800000); }
template <>
__device__ __forceinline__ double negative_infinity<double>() {
    return __longlong_as_double((long long)0xfff0000000000000ULL);
}

// Calls f(p, q, r, s) for every output window (p, q) whose tap (r, s) lands on input (h, w), with windows at
// p*sh - pt + r*dh (likewise columns): p = (h + pt - r*dh) / sh when that division is exact and p < P. The adjoint
// of a window scan, for gather-style backward kernels (each input element collects its own sum: no atomics).
template <typename F>
__device__ __forceinline__ void for_each_window(int h, int w, int R, int S, int sh, int sw, int pt, int pl, int dh,
                                                int dw, int P, int Q, F f) {
    for (int r = 0; r < R; ++r) {
        const int hp = h + pt - r * dh;
        if (hp < 0 || hp % sh || hp / sh >= P) continue;
        for (int s = 0; s < S; ++s) {
            const int wq = w + pl - s * dw;
            if (wq < 0 || wq % sw || wq / sw >= Q) continue;
            f(hp / sh, wq / sw, r, s);
        }
    }
}

// Sum over the 32 lanes of a full warp; every lane gets the total (butterfly of __shfl_xor_sync).
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// Sum over a block whose size is a multiple of 32 (at most 1024); the result is valid in thread 0.
// `scratch` holds 32 values of shared memory; call from every thread, in uniform control flow.
template <typename T>
__device__ T block_sum(T v, T* scratch) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? scratch[lane] : T(0);
        v = warp_sum(v);
    }
    __syncthreads();  // scratch may be reused right after
    return v;
}
