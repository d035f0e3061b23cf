"""ReLU forward and backward over flat arrays, one chunk of CHUNK elements per parallel iteration.

relu_fwd_v2_stream  out = x where x > 0 or x is NaN, else 0: batch norm's elementwise pass (scale 1, shift 0) with
                    the ReLU applied in registers, aligned vectors streamed out with non-temporal stores.
relu_bwd_v2_planes  gx = gy where y > 0 or y is NaN, else 0, a loop LLVM vectorises.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ...arrays import empty
from ...params import EltwiseParams
from .batchnorm import affine_plane
from .config import ceil_div, kernel

CHUNK = 1 << 14  # elements per relu iteration: large enough to amortise the loop, small enough to balance


@kernel
def relu_mask(g, y, out, chunk):
    """out = g where y > 0 or y is NaN, else 0: relu_bwd(gy, y). One chunk of the flat arrays per iteration."""
    for i in prange(ceil_div(y.size, chunk)):
        gs, ys, os = g[i * chunk : (i + 1) * chunk], y[i * chunk : (i + 1) * chunk], out[i * chunk : (i + 1) * chunk]
        for j in range(ys.size):  # indices from 0 on views: no wraparound check, so it vectorises
            os[j] = 0 if ys[j] <= 0 else gs[j]


@kernel
def relu_forward(x, out, chunk):
    """out = x where x > 0 or x is NaN, else 0, streamed as batch norm's output. One chunk of the flat arrays per
    iteration."""
    coef = np.zeros(5, x.dtype)
    coef[0], coef[2] = 1, 1
    for i in prange(ceil_div(x.size, chunk)):
        xs = x[i * chunk : (i + 1) * chunk]
        affine_plane(out[i * chunk : (i + 1) * chunk], xs, xs, coef, True, False, True)


# ---------------------------------------------------------------------------------------------- registry ops
def relu_fwd_v2_stream(p: EltwiseParams, x):
    y = empty(p.shape, x.dtype)
    relu_forward(x.reshape(-1), y.reshape(-1), CHUNK)
    return y


def relu_bwd_v2_planes(p: EltwiseParams, gy, y):
    gx = empty(p.shape, gy.dtype)
    relu_mask(gy.reshape(-1), y.reshape(-1), gx.reshape(-1), CHUNK)
    return gx
