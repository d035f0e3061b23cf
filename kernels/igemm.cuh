// igemm.cuh: the block-tile GEMM cores of the implicit-GEMM kernels (conv2d_fwd_v5/v6/v7, conv2d_bwd_data_v2
// through them, conv2d_bwd_weight_v3), and the fixed-order split-K reduction.
//   One block computes a BM x BN tile of C = A (M x Kd) . B (Kd x N), consuming Kd in BK-deep slices. Neither
//   operand is a matrix in memory: a Loader names this thread's elements of a slice (a_ok/a_ptr, b_ok/b_ptr; the
//   im2col view of x, permuted weights, grad_out rows) and advance()s to the next, so the tensors are read in place
//   and im2col is never stored.
//   Slices<...> stages slices in shared memory, two ways: `run` with register prefetch (while the math runs on
//   slice t, the loads of slice t+1 are in flight into registers; stored to the other buffer after it, then one
//   barrier; the loop body holds two slices, one per buffer, so both buffers' addresses are constants of the
//   code), `run_async<STAGES>` with a cp.async pipeline (async_copy.cuh). The math on a staged slice is the
//   caller's: BlockGemm's FMAs (SIMT) or mma.cuh's TensorGemm (tensor cores).
//   BlockGemm: (BM/TM) x (BN/TN) threads; thread (ty, tx) accumulates a TM x TN register tile: rows ty*4 + i
//   (+ BM/(TM/4) per group of four), columns likewise, so each kk step reads TM/4 + TN/4 aligned 4-element vectors
//   of shared memory (LDS.128 for float) for TM*TN FMAs. Shared rows are padded by 4 elements, which with BK = 8
//   and BM = BN = 128 makes both the k-fast stores (32 lanes = 8 kk x 4 rows, row pitch 132 words) and the 4-wide
//   reads free of bank conflicts.
// Element ownership in a slice (the Loaders follow it): A element i of thread t is (kk, m) = (t % BK,
// t / BK + i*THREADS/BK) ("k-fast": lanes run along the reduction, which is contiguous in the weights and in
// grad_out rows); B element i is (kk, n) = (t / BN + i*THREADS/BN, t % BN) when B_KFAST is false (lanes run along
// output pixels, contiguous in x for the forward), and like A when it is true (the weight gradient's pixels).
// Vector loads (Slices' VA, VB > 1, the 1x1 GEMM's 16-byte path): load i of A covers kk = (t % (BK/VA))*VA + e,
// e < VA, of row t / (BK/VA) + i*THREADS/(BK/VA); of B, columns (t % (BN/VB))*VB + e of row t / (BN/VB) +
// i*THREADS/(BN/VB). With VA = VB = 1 these are the rules above.
// Every core exposes the accumulator tile the same way, for the epilogues: Acc, ROWS x COLS values per thread,
// row_of(i) and col_of(j) in the block tile, value(acc, i, j), init(acc, row_value), and COL_RUN: how many
// consecutive accumulator columns lie side by side in the tile (for wide stores).
#pragma once
#include "async_copy.cuh"
#include "common.cuh"

template <typename T, int V>
struct alignas(V * sizeof(T)) Vec {  // V consecutive elements, read from shared memory as one wide load
    T v[V];
};

// The shared slice buffers of one tile shape, STAGES deep: a function of the shape alone, so instantiations of a
// kernel that differ only in their load widths (the 1x1 GEMM's two paths) share one allocation.
template <typename T, int STAGES, int BK, int BMP, int BNP>
__device__ __forceinline__ void slice_buffers(T (*&As)[BK][BMP], T (*&Bs)[BK][BNP]) {
    __shared__ __align__(16) T a[STAGES][BK][BMP];
    __shared__ __align__(16) T b[STAGES][BK][BNP];
    As = a, Bs = b;
}

template <typename T, int BM_, int BN_, int BK_, int THREADS_, bool B_KFAST, int PAD_, int VA_ = 1, int VB_ = 1>
struct Slices {
    static constexpr int BM = BM_, BN = BN_, BK = BK_, THREADS = THREADS_, PAD = PAD_, VA = VA_, VB = VB_;
    static constexpr int AK = BK / VA, BNV = BN / VB;  // threads along a slice's k (A), along its columns (B)
    static constexpr int A_LOADS = BM * BK / (THREADS * VA), B_LOADS = BK * BN / (THREADS * VB);
    static constexpr int A_STEP = THREADS / AK, B_STEP = B_KFAST ? THREADS / BK : THREADS / BNV;
    static_assert(THREADS % AK == 0 && THREADS % BNV == 0 && A_LOADS * THREADS * VA == BM * BK &&
                      B_LOADS * THREADS * VB == BK * BN && BK % VA == 0 && BN % VB == 0 && (VB == 1 || !B_KFAST),
                  "every thread loads whole columns of a slice");
    using ATile = T[BK][BM + PAD];
    using BTile = T[BK][BN + PAD];

    // Where element e of load i of thread t goes in a slice's shared tile (see the ownership rule above; a load is
    // VA consecutive k of one A row, VB consecutive columns of one B row).
    static __device__ __forceinline__ int a_k(int t, int e = 0) { return t % AK * VA + e; }
    static __device__ __forceinline__ int a_m(int t, int i) { return t / AK + i * A_STEP; }
    static __device__ __forceinline__ int b_k(int t, int i) { return B_KFAST ? t % BK : t / BNV + i * B_STEP; }
    static __device__ __forceinline__ int b_n(int t, int i, int e = 0) {
        return B_KFAST ? t / BK + i * B_STEP : t % BNV * VB + e;
    }

    // This thread's elements of the loader's current slice into registers (V-wide loads where V > 1: the loader's
    // pointers are then V-element aligned), then the loader moves on.
    template <typename Loader>
    static __device__ __forceinline__ void gather(Loader& ld, T* ra, T* rb) {
#pragma unroll
        for (int i = 0; i < A_LOADS; ++i) load<VA>(ld.a_ok(i), ld.a_ptr(i), ra + i * VA);
#pragma unroll
        for (int i = 0; i < B_LOADS; ++i) load<VB>(ld.b_ok(i), ld.b_ptr(i), rb + i * VB);
        ld.advance();
    }
    template <int V>
    static __device__ __forceinline__ void load(bool ok, const T* p, T* r) {
        if constexpr (V == 1) {
            r[0] = ok ? *p : T(0);
        } else {
            Vec<T, V> v;
            if (ok) v = *reinterpret_cast<const Vec<T, V>*>(p);
            else
                for (int e = 0; e < V; ++e) v.v[e] = T(0);
#pragma unroll
            for (int e = 0; e < V; ++e) r[e] = v.v[e];
        }
    }

    // The same as cp.async copies straight into a stage (zero-filled where not ok; ld.base is any valid address).
    template <typename Loader>
    static __device__ __forceinline__ void gather_async(Loader& ld, ATile& As, BTile& Bs, int t) {
        static_assert(VA == 1 && VB == 1, "cp.async slices are gathered element by element");
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

    static __device__ __forceinline__ void stage(ATile& As, BTile& Bs, const T* ra, const T* rb, int t) {
#pragma unroll
        for (int i = 0; i < A_LOADS; ++i)
#pragma unroll
            for (int e = 0; e < VA; ++e) As[a_k(t, e)][a_m(t, i)] = ra[i * VA + e];
#pragma unroll
        for (int i = 0; i < B_LOADS; ++i) {
            if constexpr (VB == 1) {
                Bs[b_k(t, i)][b_n(t, i)] = rb[i];
            } else {  // VB consecutive columns: one wide store (rows of BN + 4 elements keep it aligned)
                Vec<T, VB> v;
#pragma unroll
                for (int e = 0; e < VB; ++e) v.v[e] = rb[i * VB + e];
                *reinterpret_cast<Vec<T, VB>*>(&Bs[b_k(t, i)][b_n(t, i)]) = v;
            }
        }
    }

    // math(As, Bs) on each of the `slices` slices of the loader, register prefetch. Call from every thread of the
    // block, in uniform control flow; slices may be 0.
    template <typename Loader, typename Math>
    static __device__ void run(Loader& ld, int slices, Math math) {
        ATile* As;
        BTile* Bs;
        slice_buffers<T, 2, BK, BM + PAD, BN + PAD>(As, Bs);
        if (slices <= 0) return;
        T ra[A_LOADS * VA], rb[B_LOADS * VB];
        gather(ld, ra, rb);
        stage(As[0], Bs[0], ra, rb, threadIdx.x);
        __syncthreads();
        for (int s = 0;; s += 2) {
            step(ld, s + 1 < slices, As[0], Bs[0], As[1], Bs[1], ra, rb, math);
            if (s + 1 >= slices) break;
            step(ld, s + 2 < slices, As[1], Bs[1], As[0], Bs[0], ra, rb, math);
            if (s + 2 >= slices) break;
        }
    }

    // One register-prefetch slice: the next slice's loads issued (when there is one), the math on (Ac, Bc), the
    // loads staged into (An, Bn), one barrier.
    template <typename Loader, typename Math>
    static __device__ __forceinline__ void step(Loader& ld, bool more, const ATile& Ac, const BTile& Bc, ATile& An,
                                                BTile& Bn, T* ra, T* rb, Math& math) {
        if (more) gather(ld, ra, rb);
        math(Ac, Bc);
        if (more) stage(An, Bn, ra, rb, threadIdx.x);
        __syncthreads();
    }

    // The same through a STAGES-deep cp.async pipeline: slices s+1 .. s+STAGES-1 are in flight while the math runs
    // on slice s; one wait and one barrier per slice (the barrier also retires the stage the next copies overwrite).
    template <int STAGES, typename Loader, typename Math>
    static __device__ void run_async(Loader& ld, int slices, Math math) {
        static_assert(STAGES >= 2, "a pipeline of at least two stages");
        ATile* As;
        BTile* Bs;
        slice_buffers<T, STAGES, BK, BM + PAD, BN + PAD>(As, Bs);
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
            math(As[s % STAGES], Bs[s % STAGES]);
        }
    }
};

// SIMT FMAs: STAGES 0 stages by register prefetch, else by a cp.async pipeline that deep. VA, VB: elements per
// global load of A (consecutive k) and B (consecutive columns), 1 by default (register prefetch only above 1).
template <typename T, int BM, int BN, int BK, int TM_, int TN_, bool B_KFAST, int STAGES = 0, int VA = 1, int VB = 1>
struct BlockGemm : Slices<T, BM, BN, BK, (BM / TM_) * (BN / TN_), B_KFAST, 4, VA, VB> {
    using Base = Slices<T, BM, BN, BK, (BM / TM_) * (BN / TN_), B_KFAST, 4, VA, VB>;
    static constexpr int TM = TM_, TN = TN_, RM = BM / TM, RN = BN / TN, ROWS = TM, COLS = TN;
    static constexpr int V = (TM % 4 == 0 && TN % 4 == 0) ? 4 : 2;  // vector width of the shared reads
    static constexpr int COL_RUN = V;  // accumulator columns j, j+1, .. j+COL_RUN-1 (j % COL_RUN == 0) are adjacent
    static_assert(BM % TM == 0 && BN % TN == 0 && TM % V == 0 && TN % V == 0, "register tiles must divide the tile");
    using Acc = T[TM][TN];

    // Row of the tile held in accumulator row i of this thread (columns: the same with tx, RN, BN).
    static __device__ __forceinline__ int row_of(int i) { return (i / V) * (RM * V) + threadIdx.x / RN * V + i % V; }
    static __device__ __forceinline__ int col_of(int j) { return (j / V) * (RN * V) + threadIdx.x % RN * V + j % V; }
    static __device__ __forceinline__ T value(const Acc& acc, int i, int j) { return acc[i][j]; }
    template <typename RowValue>
    static __device__ __forceinline__ void init(Acc& acc, RowValue row_value) {
#pragma unroll
        for (int i = 0; i < TM; ++i) {
            const T v = row_value(row_of(i));
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] = v;
        }
    }

    template <typename Loader>
    static __device__ void run(Loader& ld, int slices, Acc& acc) {
        auto math = [&](const typename Base::ATile& Ac, const typename Base::BTile& Bc) { fma_slice(Ac, Bc, acc); };
        if constexpr (STAGES == 0) Base::run(ld, slices, math);
        else Base::template run_async<STAGES>(ld, slices, math);
    }

    // acc += Ac^T . Bc over the BK rows of one staged slice.
    static __device__ __forceinline__ void fma_slice(const typename Base::ATile& Ac, const typename Base::BTile& Bc,
                                                     Acc& acc) {
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            T a[TM], b[TN];
#pragma unroll
            for (int i = 0; i < TM; i += V) {
                const Vec<T, V> va = *reinterpret_cast<const Vec<T, V>*>(&Ac[kk][row_of(i)]);
                for (int e = 0; e < V; ++e) a[i + e] = va.v[e];
            }
#pragma unroll
            for (int j = 0; j < TN; j += V) {
                const Vec<T, V> vb = *reinterpret_cast<const Vec<T, V>*>(&Bc[kk][col_of(j)]);
                for (int e = 0; e < V; ++e) b[j + e] = vb.v[e];
            }
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
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
