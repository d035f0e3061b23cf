// igemm.cuh: the SIMT block-tile GEMM core of the implicit-GEMM kernels (conv2d_fwd_v5, conv2d_bwd_data_v2 through
// it, conv2d_bwd_weight_v3), and the fixed-order split-K reduction.
//   One block computes a BM x BN tile of C = A (M x Kd) . B (Kd x N), consuming Kd in BK-deep slices. Neither
//   operand is a matrix in memory: a Loader gathers one slice's A and B elements into registers (the im2col view
//   of x, permuted weights, grad_out rows), so the tensors are read in place and im2col is never stored.
//   Block: (BM/TM) x (BN/TN) threads; thread (ty, tx) accumulates a TM x TN register tile: rows ty*4 + i
//   (+ BM/(TM/4) per group of four), columns likewise, so each kk step reads TM/4 + TN/4 aligned 4-element vectors
//   of shared memory (LDS.128 for float) for TM*TN FMAs.
//   Slices are staged in two shared buffers (register prefetch): while the FMAs run on slice t, the loads of slice
//   t+1 are in flight into registers; they are stored to the other buffer after the FMAs, then one barrier.
//   Shared rows are padded by 4 elements, which with BK = 8 and BM = BN = 128 makes both the k-fast stores (32
//   lanes = 8 kk x 4 rows, row pitch 132 words) and the 4-wide reads free of bank conflicts.
// Element ownership in a slice (the Loaders follow it): A element i of thread t is (kk, m) = (t % BK,
// t / BK + i*THREADS/BK) ("k-fast": lanes run along the reduction, which is contiguous in the weights and in
// grad_out rows); B element i is (kk, n) = (t / BN + i*THREADS/BN, t % BN) when B_KFAST is false (lanes run along
// output pixels, contiguous in x for the forward), and like A when it is true (the weight gradient's pixels).
#pragma once
#include "async_copy.cuh"
#include "common.cuh"

template <typename T, int V>
struct alignas(V * sizeof(T)) Vec {  // V consecutive elements, read from shared memory as one wide load
    T v[V];
};

template <typename T, int BM_, int BN_, int BK_, int TM_, int TN_, bool B_KFAST>
struct BlockGemm {
    static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
    static constexpr int RM = BM / TM, RN = BN / TN, THREADS = RM * RN;
    static constexpr int V = (TM % 4 == 0 && TN % 4 == 0) ? 4 : 2;  // vector width of the shared reads
    static constexpr int A_LOADS = BM * BK / THREADS, B_LOADS = BK * BN / THREADS;
    static constexpr int A_STEP = THREADS / BK, B_STEP = B_KFAST ? THREADS / BK : THREADS / BN;
    static constexpr int PAD = 4;
    static_assert(BM % TM == 0 && BN % TN == 0 && TM % V == 0 && TN % V == 0, "register tiles must divide the tile");
    static_assert(THREADS % BK == 0 && THREADS % BN == 0 && A_LOADS * THREADS == BM * BK &&
                      B_LOADS * THREADS == BK * BN,
                  "every thread loads whole columns of a slice");

    // Row of the tile held in accumulator row i of thread ty (columns: the same with tx, RN, BN).
    static __device__ __forceinline__ int row(int ty, int i) { return (i / V) * (RM * V) + ty * V + i % V; }
    static __device__ __forceinline__ int col(int tx, int j) { return (j / V) * (RN * V) + tx * V + j % V; }

    // Where element i of thread t goes in a slice's shared tile (see the ownership rule above).
    static __device__ __forceinline__ int a_k(int t) { return t % BK; }
    static __device__ __forceinline__ int a_m(int t, int i) { return t / BK + i * A_STEP; }
    static __device__ __forceinline__ int b_k(int t, int i) { return B_KFAST ? t % BK : t / BN + i * B_STEP; }
    static __device__ __forceinline__ int b_n(int t, int i) { return B_KFAST ? t / BK + i * B_STEP : t % BN; }

    // This thread's elements of the loader's current slice into registers (a_ok/a_ptr, b_ok/b_ptr name them),
    // then the loader moves to the next slice.
    template <typename Loader>
    static __device__ __forceinline__ void gather(Loader& ld, T* ra, T* rb) {
#pragma unroll
        for (int i = 0; i < A_LOADS; ++i) ra[i] = ld.a_ok(i) ? *ld.a_ptr(i) : T(0);
#pragma unroll
        for (int i = 0; i < B_LOADS; ++i) rb[i] = ld.b_ok(i) ? *ld.b_ptr(i) : T(0);
        ld.advance();
    }

    // The same as cp.async copies straight into a stage (zero-filled where not ok; ld.base is any valid address).
    template <typename Loader>
    static __device__ __forceinline__ void gather_async(Loader& ld, T (&As)[BK][BM + PAD], T (&Bs)[BK][BN + PAD],
                                                        int t) {
#pragma unroll
        for (int i = 0; i < A_LOADS; ++i) {
            const bool ok = ld.a_ok(i);
            cp_async<sizeof(T)>(&As[a_k(t)][a_m(t, i)], ok ? ld.a_ptr(i) : ld.base, ok);
        }
#pragma unroll
        for (int i = 0; i < B_LOADS; ++i) {
            const bool ok = ld.b_ok(i);
            cp_async<sizeof(T)>(&Bs[b_k(t, i)][b_n(t, i)], ok ? ld.b_ptr(i) : ld.base, ok);
        }
        ld.advance();
    }

    // acc += the sum over the `slices` slices of the loader. Call from every thread of the block, in uniform
    // control flow; slices may be 0. Register prefetch: the loop body holds two slices, one per buffer, so both
    // buffers' addresses are constants of the code.
    template <typename Loader>
    static __device__ void run(Loader& ld, int slices, T (&acc)[TM][TN]) {
        __shared__ __align__(16) T As[2][BK][BM + PAD];
        __shared__ __align__(16) T Bs[2][BK][BN + PAD];
        if (slices <= 0) return;
        T ra[A_LOADS], rb[B_LOADS];
        gather(ld, ra, rb);
        stage(As[0], Bs[0], ra, rb, threadIdx.x);
        __syncthreads();
        for (int s = 0;; s += 2) {
            step(ld, s + 1 < slices, As[0], Bs[0], As[1], Bs[1], ra, rb, acc);
            if (s + 1 >= slices) break;
            step(ld, s + 2 < slices, As[1], Bs[1], As[0], Bs[0], ra, rb, acc);
            if (s + 2 >= slices) break;
        }
    }

    // The same with a STAGES-deep cp.async pipeline: slices s+1 .. s+STAGES-1 are in flight while the FMAs run on
    // slice s; one wait and one barrier per slice (the barrier also retires the stage the next copies overwrite).
    template <int STAGES, typename Loader>
    static __device__ void run_async(Loader& ld, int slices, T (&acc)[TM][TN]) {
        static_assert(STAGES >= 2, "a pipeline of at least two stages");
        __shared__ __align__(16) T As[STAGES][BK][BM + PAD];
        __shared__ __align__(16) T Bs[STAGES][BK][BN + PAD];
        const int t = threadIdx.x;
        for (int s = 0; s < STAGES - 1; ++s) {
            if (s < slices) gather_async(ld, As[s], Bs[s], t);
            cp_async_commit();  // empty groups too: the wait below counts groups
        }
        for (int s = 0; s < slices; ++s) {
            cp_async_wait<STAGES - 2>();  // slice s has landed (this thread's copies) ...
            __syncthreads();              // ... and everyone's; everyone is done with slice s - 1
            const int next = s + STAGES - 1;
            if (next < slices) gather_async(ld, As[next % STAGES], Bs[next % STAGES], t);
            cp_async_commit();
            fma_slice(As[s % STAGES], Bs[s % STAGES], acc);
        }
    }

    // acc += Ac^T . Bc over the BK rows of one staged slice.
    static __device__ __forceinline__ void fma_slice(const T (&Ac)[BK][BM + PAD], const T (&Bc)[BK][BN + PAD],
                                                     T (&acc)[TM][TN]) {
        const int tx = threadIdx.x % RN, ty = threadIdx.x / RN;
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            T a[TM], b[TN];
#pragma unroll
            for (int i = 0; i < TM; i += V) {
                const Vec<T, V> va = *reinterpret_cast<const Vec<T, V>*>(&Ac[kk][row(ty, i)]);
                for (int e = 0; e < V; ++e) a[i + e] = va.v[e];
            }
#pragma unroll
            for (int j = 0; j < TN; j += V) {
                const Vec<T, V> vb = *reinterpret_cast<const Vec<T, V>*>(&Bc[kk][col(tx, j)]);
                for (int e = 0; e < V; ++e) b[j + e] = vb.v[e];
            }
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
    }

    // One register-prefetch slice: the next slice's loads issued (when there is one), the FMAs on (Ac, Bc), the
    // loads staged into (An, Bn), one barrier.
    template <typename Loader>
    static __device__ __forceinline__ void step(Loader& ld, bool more, const T (&Ac)[BK][BM + PAD],
                                                const T (&Bc)[BK][BN + PAD], T (&An)[BK][BM + PAD],
                                                T (&Bn)[BK][BN + PAD], T* ra, T* rb, T (&acc)[TM][TN]) {
        if (more) gather(ld, ra, rb);
        fma_slice(Ac, Bc, acc);
        if (more) stage(An, Bn, ra, rb, threadIdx.x);
        __syncthreads();
    }

    static __device__ __forceinline__ void stage(T (&As)[BK][BM + PAD], T (&Bs)[BK][BN + PAD], const T* ra,
                                                 const T* rb, int t) {
#pragma unroll
        for (int i = 0; i < A_LOADS; ++i) As[a_k(t)][a_m(t, i)] = ra[i];
#pragma unroll
        for (int i = 0; i < B_LOADS; ++i) Bs[b_k(t, i)][b_n(t, i)] = rb[i];
    }
};

// out[i] = sum over s = 0, 1, ..., splits-1 of part[s*len + i], in that order (+ bias[plane % K] when has_bias):
// the deterministic second pass of split-K. Grid (planes, chunks): blockIdx.x = plane, y = chunk of its elements.
template <typename T>
__device__ void splitk_reduce(const T* __restrict__ part, const T* __restrict__ b, T* __restrict__ out, int has_bias,
                              int splits, long long len, int plane, int K) {
    const int e = blockIdx.y * blockDim.x + threadIdx.x;
    if (e >= plane) return;
    const long long i = (long long)blockIdx.x * plane + e;
    T acc = T(0);
    for (int s = 0; s < splits; ++s) acc += part[s * len + i];
    out[i] = has_bias ? acc + b[blockIdx.x % K] : acc;
}
#define SPLITK_REDUCE_PARAMS(T)                                                                                  \
    const T* __restrict__ part, const T* __restrict__ b, T* __restrict__ out, int has_bias, int splits, long long len, \
        int plane, int K
#define SPLITK_REDUCE_ARGS part, b, out, has_bias, splits, len, plane, K
