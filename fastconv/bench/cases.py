"""The benchmark problems every suite shares: the CPU cases of the Numba issue (a-h), their backward passes,
max pooling and batch norm. One definition, used by benchmarks/ (pytest-benchmark) and `fastconv bench`.

A *problem* is a shape (conv, pooling or batch norm); a *case* is a problem with the op that is timed on it
(`fwd`, `bwd-data`, `bwd-weight`, `pool-fwd`, `pool-bwd`, `bn-fwd`, `bn-bwd`). Problems print and parse as oneDNN
benchdnn problem descriptors (fastconv.bench.descriptor); shape math comes from fastconv.params.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..params import BatchNormParams, ConvParams, PoolParams, batch_norm_params, conv_params, pool_params

Pair = int | tuple[int, int]
Padding = int | tuple[int, int] | tuple[tuple[int, int], tuple[int, int]]


def pair_arg(h: int, w: int) -> Pair:
    """(h, w) as fastconv takes it: one int when both are equal."""
    return h if h == w else (h, w)


def padding_arg(pads: tuple[tuple[int, int], tuple[int, int]]) -> Padding:
    """((top, bottom), (left, right)) in its shortest form: an int, (pad_h, pad_w), or the pairs."""
    (t, b), (lf, rt) = pads
    return pair_arg(t, lf) if (t, lf) == (b, rt) else ((t, b), (lf, rt))


@dataclass(frozen=True)
class ConvProblem:
    """conv2d of x (N, C, H, W) with w (K, C/groups, R, S); stride/padding/dilation as fastconv.conv2d takes them."""

    name: str
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: Pair = 1
    padding: Padding = 0
    dilation: Pair = 1
    groups: int = 1

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.K, self.C // self.groups, self.R, self.S)

    @property
    def kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    @classmethod
    def from_params(cls, name: str, p: ConvParams) -> ConvProblem:
        """The problem of a validated conv (zero padding), padding in its shortest form."""
        return cls(
            name,
            p.N,
            p.C,
            p.H,
            p.W,
            p.K,
            p.R,
            p.S,
            stride=pair_arg(*p.stride),
            padding=padding_arg(p.padding),
            dilation=pair_arg(*p.dilation),
            groups=p.groups,
        )

    def params(self, dtype: Any = np.float32) -> ConvParams:
        """The validated ConvParams (raises ValueError naming the problem when the shape is impossible)."""
        return conv_params(
            f"conv problem {self.name!r}",
            self.x_shape,
            self.w_shape,
            None,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            "zeros",
            np.dtype(dtype),
        )


@dataclass(frozen=True)
class PoolProblem:
    """max_pool2d over x (N, C, H, W); stride None means stride = kernel, as PyTorch."""

    name: str
    N: int
    C: int
    H: int
    W: int
    kernel: Pair
    stride: Pair | None = None
    padding: Pair = 0
    dilation: Pair = 1
    ceil_mode: bool = False

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def kwargs(self) -> dict:
        return dict(
            kernel_size=self.kernel,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            ceil_mode=self.ceil_mode,
        )

    def params(self, dtype: Any = np.float32) -> PoolParams:
        return pool_params(
            f"pool problem {self.name!r}",
            self.x_shape,
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            True,
            np.dtype(dtype),
        )


@dataclass(frozen=True)
class NormProblem:
    """batch_norm in training mode over x (N, C, H, W), affine, without running statistics."""

    name: str
    N: int
    C: int
    H: int
    W: int
    eps: float = 1e-5

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    def params(self, dtype: Any = np.float32) -> BatchNormParams:
        return batch_norm_params(
            f"batch-norm problem {self.name!r}", self.x_shape, {}, True, 0.1, self.eps, np.dtype(dtype)
        )


Problem = ConvProblem | PoolProblem | NormProblem

CONV_OPS = ("fwd", "bwd-data", "bwd-weight")
POOL_OPS = ("pool-fwd", "pool-bwd")
BN_OPS = ("bn-fwd", "bn-bwd")
ALL_OPS = CONV_OPS + POOL_OPS + BN_OPS
# What `--ops` accepts: a single op, or a family name standing for its ops.
OP_GROUPS = {"pool": POOL_OPS, "bn": BN_OPS, **{op: (op,) for op in ALL_OPS}}


def ops_for(problem: Problem) -> tuple[str, ...]:
    """The ops that can be timed on a problem."""
    if isinstance(problem, ConvProblem):
        return CONV_OPS
    return POOL_OPS if isinstance(problem, PoolProblem) else BN_OPS


@dataclass(frozen=True)
class Case:
    """One timed unit: an op on a problem."""

    problem: Problem
    op: str

    def __post_init__(self) -> None:
        if self.op not in ops_for(self.problem):
            raise ValueError(
                f"Case: op {self.op!r} does not apply to {type(self.problem).__name__} "
                f"{self.problem.name!r}; it takes {', '.join(ops_for(self.problem))}"
            )


CPU_CONV = (
    ConvProblem("a_3x3", 8, 64, 56, 56, 64, 3, 3, padding=1),
    ConvProblem("b_1x1", 8, 256, 56, 56, 64, 1, 1),
    ConvProblem("c_3x3_s2", 8, 128, 28, 28, 128, 3, 3, stride=2, padding=1),
    ConvProblem("d_7x7_s2", 8, 3, 224, 224, 64, 7, 7, stride=2, padding=3),
    ConvProblem("e_depthwise", 8, 256, 56, 56, 256, 3, 3, padding=1, groups=256),
    ConvProblem("f_grouped_g32", 8, 128, 56, 56, 128, 3, 3, padding=1, groups=32),
    ConvProblem("g_dilated", 8, 64, 56, 56, 64, 3, 3, padding=2, dilation=2),
    ConvProblem("h_3x3_n1", 1, 64, 56, 56, 64, 3, 3, padding=1),
)

CPU_CONV_BACKWARD = tuple(p for p in CPU_CONV if p.name in ("a_3x3", "b_1x1"))

CPU_MAX_POOL = PoolProblem("maxpool_3x3_s2_p1", 8, 64, 112, 112, kernel=3, stride=2, padding=1)
CPU_BATCH_NORM = NormProblem("bn_train", 8, 64, 112, 112)

# The `quick` suite: forward a-h, backward (data and weight) of a and b, max-pool and BN forward + backward.
QUICK = (
    tuple(Case(p, "fwd") for p in CPU_CONV)
    + tuple(Case(p, op) for p in CPU_CONV_BACKWARD for op in ("bwd-data", "bwd-weight"))
    + tuple(Case(CPU_MAX_POOL, op) for op in POOL_OPS)
    + tuple(Case(CPU_BATCH_NORM, op) for op in BN_OPS)
)
