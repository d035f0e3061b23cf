// async_copy.cuh: cp.async (sm_80+), global -> shared copies that bypass the registers.
//   cp_async<BYTES>(smem, gmem, valid)  BYTES in {4, 8, 16}, both addresses aligned to BYTES; valid false writes
//                                       zeros and reads nothing (gmem must still be a valid address).
//   cp_async_commit()                   closes the group of copies this thread issued since the last commit.
//   cp_async_wait<N>()                  waits until at most the N newest committed groups are in flight; their
//                                       data is visible to other threads after a __syncthreads() that follows.
// Before sm_80 the copy is an ordinary load and store (so every wait is already satisfied); under the host
// emulator (FCEMU) copies land only at the wait that covers them (fcemu_runtime.h), so a missing wait reads stale
// shared memory in CI.
#pragma once

template <int BYTES>
__device__ __forceinline__ void cp_async(void* smem, const void* gmem, bool valid) {
    static_assert(BYTES == 4 || BYTES == 8 || BYTES == 16, "cp.async copies 4, 8 or 16 bytes");
#if defined(FCEMU)
    fcemu::cp_async(smem, gmem, BYTES, valid ? BYTES : 0);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(dst), "l"(gmem), "n"(BYTES),
                 "r"(valid ? BYTES : 0)
                 : "memory");
#else
    struct alignas(BYTES) Chunk {
        unsigned char b[BYTES];
    };
    *static_cast<Chunk*>(smem) = valid ? *static_cast<const Chunk*>(gmem) : Chunk{};
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(FCEMU)
    fcemu::cp_async_commit();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(FCEMU)
    fcemu::cp_async_wait(N);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}
