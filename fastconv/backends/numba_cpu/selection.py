"""How `algo="auto"` ranks the numba conv algorithms: a table derived from measured data, not from guesses.

Each call falls in the first category whose predicate holds; the category lists the algorithms fastest first, as
measured by `benchmarks/test_numba_cpu.py` on the shared problems (fastconv.bench.cases: float32, 2 threads) and
recorded with the per-case medians in bench_results/numba_cpu.json ("selection" and "selection_bwd_weight" there show
which cases decided each row). The channels_last row is the exception: conv2d_fwd_v9_nhwc is the only algorithm that
reads such an x without a copy, so it ranks first for the ungrouped calls it serves (informal timing in its module
header; the grouped ones fall through to the rows below, where its 64-wide channel vectors would be mostly padding, as
conv2d_fwd_v7_blocked's are). tests/test_backend_numba_select.py checks that `auto` follows this table and that the
table agrees with the recorded measurements. Algorithms a category does not list rank below the listed ones."""

from __future__ import annotations

from collections.abc import Callable

from ...params import ConvParams
from . import conv2d_as_forward, conv2d_chunks, conv2d_im2col, conv2d_nhwc_gemm, conv2d_winograd

#: Work below which auto takes the unstaged forward (conv2d_unstaged.py; its data gradient then runs it on the
#: flipped problem, conv2d_bwd_data_v7_as_forward), and below which it takes conv2d_bwd_weight_v1_naive for the
#: weight gradient, in a call's multiply-adds times sh*sw (the forward's wide rows compute every column between two
#: outputs). Measured with `benchmarks/overhead.py --small` (bench_results/
#: overhead.md): against the best other algorithm the unstaged forward wins up to about 1.5e5 and loses from 4.5e5,
#: its data gradient wins below 2e4, ties near 4e4 and loses from 1.1e5; the naive weight gradient wins below 1e4
#: and loses from 2e4.
SMALL_WORK, NAIVE_WORK = 1 << 16, 1 << 14


def _small(p: ConvParams, limit: int = SMALL_WORK) -> bool:
    return p.macs * p.stride[0] * p.stride[1] < limit


_PANELS = "conv2d_fwd_v11_panels"
_POINTWISE = ("conv2d_fwd_v6_pointwise", "conv2d_fwd_v5_rows", "conv2d_fwd_v7_blocked", "conv2d_fwd_v1_naive")
_STRIDED = ("conv2d_fwd_v5_rows", "conv2d_fwd_v7_blocked", "conv2d_fwd_v1_naive")
_3X3 = ("conv2d_fwd_v8_winograd", "conv2d_fwd_v5_rows", "conv2d_fwd_v7_blocked", "conv2d_fwd_v1_naive")
_DENSE = ("conv2d_fwd_v5_rows", "conv2d_fwd_v7_blocked", "conv2d_fwd_v1_naive")


# conv2d_fwd_v11_panels's rows (bench_results/late_layers.md: ResNet-50's 14x14 and 7x7 layers and its strided
# ones, C and K >= 256, batch 8): it leads v6_pointwise on 1x1 planes of 14x14 and 7x7 (v6 stays ahead on 56x56),
# v5_rows on the strided layers with C, K >= 256 and winograd on the 7x7 3x3 layer (winograd stays ahead on 14x14).
def _wide(p: ConvParams) -> bool:
    return p.C >= 256 and p.K >= 256


def _nhwc_gemm(p: ConvParams) -> bool:  # conv2d_fwd_v12_nhwc_gemm ahead of v9_nhwc there (late_layers.md)
    return conv2d_nhwc_gemm.supports(p) and _wide(p)


def _late_3x3(p: ConvParams) -> bool:  # v11_panels on x copied to NCHW beats v9_nhwc on a channels_last x too
    return conv2d_winograd.supports(p) and p.P * p.Q <= 49 and _wide(p)


def _small_pointwise(p: ConvParams) -> bool:
    return p.is_pointwise and p.P * p.Q <= 196 and _wide(p)


# The phases of a strided data gradient (conv2d_bwd_data_v13_phases: 1x2, 2x1 and 2x2 kernels for 3x3 stride 2)
# on planes of 14x14 and less with C, K >= 256: v11_panels 1.1-2.9x v5_rows (bench_results/bwd_data_strided.md).
def _dense_small_plane(p: ConvParams) -> bool:
    return not p.is_grouped and p.P * p.Q <= 196 and _wide(p)


# conv2d_bwd_weight_v8_chunks's rows (bench_results/bwd_weight.md: the 3x3 and 1x1 layers of ResNet-18/50, batch 8,
# at 1 and 2 threads): ahead of v4_blocked on every 1x1 layer (1.1-2x) and the stride-1 3x3 layers of 14x14 and
# 7x7 planes; ahead of v3_pointwise on the 1x1 layers but those of 56x56 planes and at most 128 output channels,
# where v3's lane-wise dot products read x in place and v8's channels-last copy of a large x is not paid back by
# few output channels (3-10x ahead on 14x14 and 7x7 planes). v4_blocked keeps the strided 3x3 layers (5-11% ahead
# at 2 threads, a tie at 1) and the larger stride-1 planes (a tie).
_CHUNKS = "conv2d_bwd_weight_v8_chunks"
_BLOCKED_W = ("conv2d_bwd_weight_v4_blocked", "conv2d_bwd_weight_v1_naive")
_POINTWISE_W = ("conv2d_bwd_weight_v3_pointwise", *_BLOCKED_W)


def _dot_pointwise(p: ConvParams) -> bool:
    return p.is_pointwise and (p.P * p.Q >= 3136 and p.K <= 128 or not conv2d_chunks.supports(p))


def _chunks_first(p: ConvParams) -> bool:
    return conv2d_chunks.supports(p) and (p.is_1x1 or not p.is_strided and p.P * p.Q <= 196)


# conv2d_bwd_weight_v9_im2col's row (bench_results/bwd_weight_im2col.md): windowed convs with fewer than 64 input
# channels, whose channel vectors v4_blocked and v8_chunks fill only partly: the ResNet stem (C = 3, 7x7 stride 2)
# 10.8x v4_blocked, C = 4-32 at 56x56 1.6-12x; at C = 64 v4 is 1.6x ahead.
def _few_channels(p: ConvParams) -> bool:
    return not p.is_1x1 and p.C < 64 and conv2d_im2col.supports(p)


# (category, predicate, algorithms fastest first) per registry op; first matching category wins. channels_last:
# conv2d_fwd_v9_nhwc reading x in place against copying x to NCHW (a slow strided transpose in NumPy) for the NCHW
# choice; conv2d_fwd_v9_nhwc won or tied on every ungrouped problem of the recorded runs, the copy on the grouped ones
# (conv2d_fwd_v9_nhwc's 64-wide channel vectors are mostly padding there). These timings are the noisiest of the suite
# (an earlier pair of runs had the copy ahead by 16-20% on a and d).
RULES: dict[str, list[tuple[str, Callable[[ConvParams], bool], tuple[str, ...]]]] = {
    "conv2d": [
        ("channels_last_1x1", _nhwc_gemm, ("conv2d_fwd_v12_nhwc_gemm", "conv2d_fwd_v9_nhwc")),
        ("channels_last", lambda p: p.channels_last and not p.is_grouped and not _late_3x3(p), ("conv2d_fwd_v9_nhwc",)),
        ("small", _small, ("conv2d_fwd_v13_unstaged",)),
        (
            "depthwise",
            lambda p: p.is_depthwise,
            ("conv2d_fwd_v4_depthwise", "conv2d_fwd_v5_rows", "conv2d_fwd_v1_naive"),
        ),
        ("pointwise_small_plane", _small_pointwise, (_PANELS, *_POINTWISE)),
        ("pointwise", lambda p: p.is_pointwise, _POINTWISE),
        ("grouped", lambda p: p.is_grouped, ("conv2d_fwd_v5_rows", "conv2d_fwd_v1_naive", "conv2d_fwd_v7_blocked")),
        ("strided_wide", lambda p: p.is_strided and _wide(p), (_PANELS, *_STRIDED)),
        ("strided", lambda p: p.is_strided, _STRIDED),
        ("3x3_late", _late_3x3, (_PANELS, *_3X3)),
        ("3x3", conv2d_winograd.supports, _3X3),
        ("dense_small_plane", _dense_small_plane, (_PANELS, *_DENSE)),
        ("dense", lambda p: True, _DENSE),
    ],
    "conv2d_bwd_data": [
        (
            "small",
            lambda p: _small(p) and conv2d_as_forward.supports(p),
            ("conv2d_bwd_data_v7_as_forward", "conv2d_bwd_data_v2_rows"),
        ),
        (  # bench_results/bwd_data_strided.md: v7 (the forward's v11_panels) 1.0-2.1x v3 on the 14x14 and 7x7 layers
            "pointwise_small_plane",
            _small_pointwise,
            ("conv2d_bwd_data_v7_as_forward", "conv2d_bwd_data_v3_pointwise", "conv2d_bwd_data_v2_rows"),
        ),
        (
            "pointwise",
            lambda p: p.is_pointwise,
            ("conv2d_bwd_data_v3_pointwise", "conv2d_bwd_data_v2_rows", "conv2d_bwd_data_v1_naive"),
        ),
        (  # bench_results/bwd_data_as_forward.md: 1.3-2.5x v2_rows on the 3x3 stride-1 ResNet layers
            "as_forward",
            lambda p: conv2d_as_forward.supports(p) and not p.is_grouped,
            ("conv2d_bwd_data_v7_as_forward", "conv2d_bwd_data_v2_rows", "conv2d_bwd_data_v1_naive"),
        ),
        (  # bench_results/bwd_data_strided.md: ahead of v2_rows on the strided ResNet layers
            "strided",
            lambda p: p.is_strided and not p.is_grouped,
            ("conv2d_bwd_data_v13_phases", "conv2d_bwd_data_v2_rows", "conv2d_bwd_data_v1_naive"),
        ),
        ("any", lambda p: True, ("conv2d_bwd_data_v2_rows", "conv2d_bwd_data_v1_naive")),
    ],
    "conv2d_bwd_weight": [
        ("small", lambda p: _small(p, NAIVE_WORK), ("conv2d_bwd_weight_v1_naive", "conv2d_bwd_weight_v4_blocked")),
        ("depthwise", lambda p: p.is_depthwise, ("conv2d_bwd_weight_v1_naive", "conv2d_bwd_weight_v4_blocked")),
        ("pointwise_wide_plane", _dot_pointwise, (*_POINTWISE_W[:1], _CHUNKS, *_POINTWISE_W[1:])),
        ("few_channels", _few_channels, ("conv2d_bwd_weight_v9_im2col", *_BLOCKED_W)),
        ("chunks", _chunks_first, (_CHUNKS, *_BLOCKED_W)),
        ("any", lambda p: True, _BLOCKED_W),
    ],
}


def category(op: str, p: ConvParams) -> tuple[str, tuple[str, ...]]:
    """The first rule of `op` that matches p: (category name, ranked algorithms)."""
    for name, matches, ranking in RULES[op]:
        if matches(p):
            return name, ranking
    raise AssertionError(f"the last rule of {op} matches every call")  # pragma: no cover


def priority(op: str, algo: str) -> Callable[[ConvParams], float]:
    """The dispatch priority of `algo` for `op`: higher for earlier places in the matching rule's ranking."""

    def rank(p: ConvParams) -> float:
        _, ranking = category(op, p)
        return len(ranking) - ranking.index(algo) if algo in ranking else 0

    return rank
