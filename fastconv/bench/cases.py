"""The benchmark problems every suite shares: the CPU cases of the Numba issue (a-h), their backward passes,
max pooling and batch norm. One definition, used by benchmarks/ (pytest-benchmark) and `fastconv bench`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConvProblem:
    """conv2d of x (N, C, H, W) with w (K, C/groups, R, S)."""

    name: str
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
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


@dataclass(frozen=True)
class PoolProblem:
    name: str
    N: int
    C: int
    H: int
    W: int
    kwargs: dict = field(default_factory=dict, hash=False)


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

CPU_MAX_POOL = PoolProblem("maxpool_3x3_s2_p1", 8, 64, 112, 112, dict(kernel_size=3, stride=2, padding=1))
CPU_BATCH_NORM = PoolProblem("bn_train", 8, 64, 112, 112)
