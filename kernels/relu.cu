// relu.cu: ReLU forward and backward, elementwise over a flat array of n elements (any shape).
//   y = max(x, 0), NaN stays NaN;  gx = gy where y > 0, else 0 (PyTorch: 0 where y <= 0; NaN y passes gy)
//   relu_fwd_v1 / relu_bwd_v1: grid-stride loop, one element per thread per step, ELTWISE_BLOCK threads a block.
//   Memory traffic: fwd 2 n elements, bwd 3 n; no reuse, so the roofline is the copy bandwidth.
#include "common.cuh"

#ifndef ELTWISE_BLOCK
#define ELTWISE_BLOCK 256
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
