// fcemu.h: the CUDA surface our kernels use, for the host C++ compiler (the "cuda-emu" backend).
//
// A kernel file is compiled by g++ as `#include "fcemu.h"` + `#include "kernel.cu"` + one FCEMU_EXPORT line per
// extern "C" __global__ entry point (build.py writes that file). Each GPU thread of a block runs as a fiber
// (fcemu_runtime.h); the built-in indices read the running fiber's state.
//   __shared__          -> thread_local: one copy per OS thread = per block (blocks run one at a time), shared by
//                          all fibers of the block; also valid in `extern __shared__ T name[]` (dynamic shared
//                          memory, whose storage build.py defines once, FCEMU_DYNAMIC_SMEM_BYTES long).
//   __syncthreads()     -> the fiber yields; the block goes on when every thread waits at the same barrier.
//   __shfl_*_sync       -> a warp collective: lanes yield until every lane of the mask has arrived.
//   atomics             -> GCC __atomic builtins (fibers never switch inside one, so they are atomic here).
//   mma.sync            -> fcemu::mma_sync (mma.cuh): a warp collective of all 32 lanes; the lane that completes it
//                          assembles A, B and C from every lane's fragments by the PTX ISA layout, multiplies in
//                          double and hands each lane its D fragment.
//   cp.async            -> fcemu::cp_async / commit / wait (async_copy.cuh): a copy lands in shared memory only when
//                          a wait_group covering it runs, so a missing wait reads stale data.
// With FCEMU_LISTING (a preprocessor-only pass) only markers are defined, so build.py can find the entry points and
// the dynamic shared array in the preprocessed source.
#pragma once

#ifdef FCEMU_LISTING
#define __global__ __fcemu_global__
#define __shared__ __fcemu_shared__
#else

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#define FCEMU 1  // kernels' own headers test this where the emulator stands in for inline PTX (async_copy.cuh)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __shared__ thread_local
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace fcemu {
struct Thread;
extern Thread* current;           // the fiber that runs now
extern uint3 block_idx;           // of the block that runs now
extern dim3 block_dim, grid_dim;  // of the launch
const uint3& thread_idx();
void syncthreads(const char* file, int line);
enum ShuffleKind { SHFL_IDX, SHFL_UP, SHFL_DOWN, SHFL_XOR };
unsigned long long warp_exchange(unsigned mask, unsigned long long bits, ShuffleKind kind, int arg, int width);
enum MmaKind { MMA_TF32_M16N8K8 = 16, MMA_BF16_M16N8K16 };  // after the ShuffleKinds: one "kind" per collective
void mma_sync(MmaKind kind, float* d, const unsigned* a, const unsigned* b);
unsigned round_tf32(float x);  // cvt.rna.tf32.f32
unsigned round_bf16(float x);  // cvt.rn.bf16.f32, the 16 bits
void cp_async(void* dst, const void* src, int bytes, int src_bytes);
void cp_async_commit();
void cp_async_wait(int newest_pending);

template <typename T>
T shuffle(unsigned mask, T v, ShuffleKind kind, int arg, int width) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type wider than 8 bytes");
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    bits = warp_exchange(mask, bits, kind, arg, width);
    T out;
    std::memcpy(&out, &bits, sizeof(T));
    return out;
}

template <typename T, typename F>
T atomic_update(T* p, F f) {  // compare-and-swap loop, for the types and ops GCC has no fetch_op for
    T old, next;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    do {
        next = f(old);
    } while (!__atomic_compare_exchange(p, &old, &next, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
}
}  // namespace fcemu

#define threadIdx (::fcemu::thread_idx())
#define blockIdx (static_cast<const uint3&>(::fcemu::block_idx))
#define blockDim (static_cast<const dim3&>(::fcemu::block_dim))
#define gridDim (static_cast<const dim3&>(::fcemu::grid_dim))
#define warpSize 32
#define __syncthreads() ::fcemu::syncthreads(__FILE__, __LINE__)

// ---------------------------------------------------------------------------------------------- warp shuffles
template <typename T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) { return fcemu::shuffle(mask, v, fcemu::SHFL_IDX, src, width); }
template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32) { return fcemu::shuffle(mask, v, fcemu::SHFL_UP, d, width); }
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) {
    return fcemu::shuffle(mask, v, fcemu::SHFL_DOWN, d, width);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    return fcemu::shuffle(mask, v, fcemu::SHFL_XOR, lane_mask, width);
}

// ---------------------------------------------------------------------------------------------- atomics
template <typename T>
T atomicAdd(T* p, T v) {
    if constexpr (std::is_floating_point<T>::value) {
        return fcemu::atomic_update(p, [v](T old) { return old + v; });
    } else {
        return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
    }
}
template <typename T>
T atomicSub(T* p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
template <typename T>
T atomicMax(T* p, T v) { return fcemu::atomic_update(p, [v](T old) { return old < v ? v : old; }); }
template <typename T>
T atomicMin(T* p, T v) { return fcemu::atomic_update(p, [v](T old) { return v < old ? v : old; }); }
template <typename T>
T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
template <typename T>
T atomicCAS(T* p, T expected, T desired) {
    __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return expected;
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---------------------------------------------------------------------------------------------- math
using std::fabs;
using std::fma;
using std::fmax;
using std::fmin;
using std::isinf;
using std::isnan;
using std::sqrt;
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
template <typename T>
T __ldg(const T* p) { return *p; }
inline unsigned __umulhi(unsigned a, unsigned b) { return unsigned((1ULL * a * b) >> 32); }

// ---------------------------------------------------------------------------------------------- vector types
// As CUDA's vector_types.h: 16-byte aligned aggregates, so a load through a float4* or double2* is one 16-byte
// access (LDG.128 on the GPU) and needs a 16-byte aligned address there. The kernels check alignment first.
struct __align__(16) float4 {
    float x, y, z, w;
};
struct __align__(16) double2 {
    double x, y;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline double2 make_double2(double x, double y) { return double2{x, y}; }

#include "fcemu_runtime.h"
#endif  // FCEMU_LISTING
