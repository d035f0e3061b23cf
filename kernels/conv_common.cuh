// conv_common.cuh: the geometry every conv kernel takes, and the zero-padded input read.
//   x (N,C,H,W), w (K,C/groups,R,S), y (N,K,P,Q); stride (sh,sw), top/left padding (pt,pl), dilation (dh,dw).
//   Input row of output row p and tap r: h = p*sh - pt + r*dh (likewise w); outside [0,H) x [0,W) it reads 0.
#pragma once
#include "common.cuh"

#define CONV_GEOMETRY_PARAMS \
    int N, int C, int H, int W, int K, int R, int S, int P, int Q, int sh, int sw, int pt, int pl, int dh, int dw, int groups
#define CONV_GEOMETRY_ARGS N, C, H, W, K, R, S, P, Q, sh, sw, pt, pl, dh, dw, groups

// x[h, w] of one input plane, 0 outside it (zero padding).
template <typename T>
__device__ __forceinline__ T padded_read(const T* __restrict__ plane, int h, int w, int H, int W) {
    return ((unsigned)h < (unsigned)H && (unsigned)w < (unsigned)W) ? plane[(long long)h * W + w] : T(0);
}

// n / d for 0 <= n < 2^31 and d >= 1 by a multiply and a shift: (umulhi(n, magic) + n) >> shift, with shift =
// ceil(log2 d) and magic = floor(2^32 * (2^shift - d) / d) + 1 precomputed on the host
// (fastconv.backends.cuda.conv.fast_divisor; Granlund and Montgomery's method). Runtime division costs ~20
// instructions; this costs 3, which matters where a kernel decodes a flat pixel index per element.
__device__ __forceinline__ int fast_div(int n, unsigned magic, int shift) {
    return (int)((__umulhi((unsigned)n, magic) + (unsigned)n) >> shift);
}
#define FAST_DIV_PARAMS(d) unsigned d##_magic, int d##_shift
