// probes.cu: small kernels that test the emulator itself (tests/test_emulator.py), some of them deliberately wrong.
#include "async_copy.cuh"
#include "common.cuh"
#include "mma.cuh"

// y = x reversed within each block, through static shared memory; without the barrier a thread may read a slot
// that its partner has not written yet.
template <bool SYNC>
__device__ void reverse(const float* x, float* y) {
    __shared__ float s[256];
    const int t = threadIdx.x;
    const long long i = (long long)blockIdx.x * blockDim.x + t;
    s[t] = x[i];
    if (SYNC) __syncthreads();
    y[i] = s[blockDim.x - 1 - t];
}
extern "C" __global__ void reverse_synced(const float* x, float* y) { reverse<true>(x, y); }
extern "C" __global__ void reverse_unsynced(const float* x, float* y) { reverse<false>(x, y); }

// The same through dynamic shared memory (blockDim.x floats).
extern "C" __global__ void reverse_dynamic(const float* x, float* y) {
    float* s = dynamic_smem<float>();  // common.cuh: extern __shared__ unsigned char fc_dynamic_smem[]
    const int t = threadIdx.x;
    const long long i = (long long)blockIdx.x * blockDim.x + t;
    s[t] = x[i];
    __syncthreads();
    y[i] = s[blockDim.x - 1 - t];
}

// Writes `extra` floats past the blockDim.x floats of dynamic shared memory it was given.
extern "C" __global__ void dynamic_overflow(int extra) {
    dynamic_smem<float>()[threadIdx.x + extra] = 1.0f;
}

// sums[b] = sum of block b's elements of x (block_sum of common.cuh: shuffles, shared memory, barriers).
extern "C" __global__ void block_sums(const double* x, double* sums) {
    __shared__ double scratch[32];
    const double total = block_sum(x[(long long)blockIdx.x * blockDim.x + threadIdx.x], scratch);
    if (threadIdx.x == 0) sums[blockIdx.x] = total;
}

// out[4 t + k]: lane values v = 100 * warp + lane through shfl down 3, xor 5, up 2, idx 7 (width 8).
extern "C" __global__ void shuffles(int* out) {
    const int t = threadIdx.x, v = 100 * (t / 32) + t % 32;
    out[4 * t + 0] = __shfl_down_sync(0xffffffffu, v, 3);
    out[4 * t + 1] = __shfl_xor_sync(0xffffffffu, v, 5);
    out[4 * t + 2] = __shfl_up_sync(0xffffffffu, v, 2);
    out[4 * t + 3] = __shfl_sync(0xffffffffu, v, 7, 8);
}

// order[global thread] = the rank in which it ran its first step, across the whole grid.
extern "C" __global__ void run_order(int* counter, int* order) {
    order[blockIdx.x * blockDim.x + threadIdx.x] = atomicAdd(counter, 1);
}

// Every thread adds its value into one cell.
extern "C" __global__ void atomic_total(const float* x, float* total, double* total64) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    atomicAdd(total, x[i]);
    atomicAdd(total64, (double)x[i]);
}

// Deliberately wrong kernels: each must stop the launch with a clear error.
extern "C" __global__ void early_exit_then_barrier(int n) {
    if ((int)threadIdx.x >= n) return;
    __syncthreads();
}
extern "C" __global__ void divergent_barriers() {
    if (threadIdx.x % 2) {
        __syncthreads();
    } else {
        __syncthreads();
    }
}
extern "C" __global__ void shuffle_with_exited_lanes(int* out) {
    if (threadIdx.x >= 16) return;
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, (int)threadIdx.x, 1);
}
extern "C" __global__ void read_at(const float* x, float* y, long long offset) { y[0] = x[offset]; }
extern "C" __global__ void write_const(const float* x) { const_cast<float*>(x)[threadIdx.x] = 0.0f; }
extern "C" __global__ void divide(const int* x, int* y) { y[threadIdx.x] = 7 / x[threadIdx.x]; }

// y = x reversed within each block, through shared memory filled by cp.async in two committed groups (first and
// second half of the block); `waits` picks the bug: 0 waits for both groups, 1 only for the older one (wait_group
// 1: the second half may still be in flight), 2 never waits. Elements with odd index are copied as zero-fill.
extern "C" __global__ void reverse_async(const float* x, float* y, int waits) {
    __shared__ __align__(16) float s[256];
    const int t = threadIdx.x, half = blockDim.x / 2;
    const long long i = (long long)blockIdx.x * blockDim.x + t;
    if (t < half) cp_async<4>(&s[t], &x[i], i % 2 == 0);
    cp_async_commit();
    if (t >= half) cp_async<4>(&s[t], &x[i], i % 2 == 0);
    cp_async_commit();
    if (waits == 0) cp_async_wait<0>();
    if (waits == 1) cp_async_wait<1>();
    __syncthreads();
    y[i] = s[blockDim.x - 1 - t];
}

// One warp: d (16x8) = a (16xK, row-major) . b (Kx8, row-major) + c by one mma.sync, the fragments gathered by the
// layout in mma.cuh (K = 8 tf32, 16 bf16); `swap` exchanges fragments a1 and a2 (a layout bug to catch).
template <bool BF16>
__device__ void one_mma(const float* a, const float* b, const float* c, float* d, int swap) {
    const int l = threadIdx.x, g = l / 4, t = l % 4, K = BF16 ? 16 : 8;
    unsigned fa[4], fb[2];
    if (BF16) {
        fa[0] = pack_bf16(a[g * K + 2 * t], a[g * K + 2 * t + 1]);
        fa[1] = pack_bf16(a[(g + 8) * K + 2 * t], a[(g + 8) * K + 2 * t + 1]);
        fa[2] = pack_bf16(a[g * K + 2 * t + 8], a[g * K + 2 * t + 9]);
        fa[3] = pack_bf16(a[(g + 8) * K + 2 * t + 8], a[(g + 8) * K + 2 * t + 9]);
        fb[0] = pack_bf16(b[2 * t * 8 + g], b[(2 * t + 1) * 8 + g]);
        fb[1] = pack_bf16(b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g]);
    } else {
        fa[0] = to_tf32(a[g * K + t]), fa[1] = to_tf32(a[(g + 8) * K + t]);
        fa[2] = to_tf32(a[g * K + t + 4]), fa[3] = to_tf32(a[(g + 8) * K + t + 4]);
        fb[0] = to_tf32(b[t * 8 + g]), fb[1] = to_tf32(b[(t + 4) * 8 + g]);
    }
    if (swap) {
        const unsigned keep = fa[1];
        fa[1] = fa[2], fa[2] = keep;
    }
    float acc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
    mma<BF16>(acc, fa, fb);
    d[g * 8 + 2 * t] = acc[0], d[g * 8 + 2 * t + 1] = acc[1];
    d[(g + 8) * 8 + 2 * t] = acc[2], d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}
extern "C" __global__ void mma_tf32(const float* a, const float* b, const float* c, float* d, int swap) {
    one_mma<false>(a, b, c, d, swap);
}
extern "C" __global__ void mma_bf16(const float* a, const float* b, const float* c, float* d, int swap) {
    one_mma<true>(a, b, c, d, swap);
}
