"""Awkward-shape cases shared by every backend's tests: sizes that are multiples of no tile (7, 9, 3, 5),
batch 1 and 3, stride 2, dilation 2, groups, depthwise, every padding form and mode, empty batch; linear layers
with batch 0/1/3/17, 1, 5 and 33 features, leading batch dimensions."""

from __future__ import annotations

from typing import NamedTuple


class ConvCase(NamedTuple):
    id: str
    x: tuple  # (N, C, H, W) or (N, C, L)
    w: tuple  # (K, C/groups, R, S) or (K, C/groups, S)
    kw: dict
    bias: bool = True


CONV2D_CASES = [
    ConvCase("basic_p1", (3, 5, 9, 7), (7, 5, 3, 3), dict(padding=1)),
    ConvCase("batch1_nobias", (1, 3, 7, 7), (2, 3, 3, 3), dict(), bias=False),
    ConvCase("stride2_rect", (1, 3, 11, 9), (4, 3, 3, 5), dict(stride=2, padding=(1, 2))),
    ConvCase("stride3_nontiling", (2, 3, 7, 7), (5, 3, 3, 3), dict(stride=3)),
    ConvCase("dilated2", (3, 4, 13, 11), (5, 4, 3, 3), dict(dilation=2, padding=2)),
    ConvCase("dilated_strided", (2, 3, 15, 12), (4, 3, 3, 2), dict(dilation=(2, 3), stride=(2, 1), padding=1)),
    ConvCase("grouped3", (2, 6, 9, 7), (9, 2, 3, 3), dict(groups=3, padding=1)),
    ConvCase("grouped_strided", (3, 8, 9, 9), (12, 2, 3, 3), dict(groups=4, stride=2, padding=1)),
    ConvCase("depthwise", (3, 7, 9, 9), (7, 1, 3, 3), dict(groups=7, padding=1)),
    ConvCase("depthwise_mult2", (2, 5, 7, 9), (10, 1, 5, 3), dict(groups=5, stride=2, padding=((2, 1), (0, 1)))),
    ConvCase("pointwise", (3, 9, 7, 5), (5, 9, 1, 1), dict()),
    ConvCase("pointwise_strided", (2, 9, 7, 5), (5, 9, 1, 1), dict(stride=2)),
    ConvCase("pointwise_grouped", (2, 6, 5, 7), (9, 2, 1, 1), dict(groups=3)),
    ConvCase("same_stride1_even", (3, 4, 9, 7), (6, 4, 4, 2), dict(padding="same")),
    ConvCase("same_stride3", (3, 4, 10, 7), (6, 4, 4, 3), dict(padding="same", stride=3)),
    ConvCase("valid", (2, 3, 9, 7), (4, 3, 5, 3), dict(padding="valid")),
    ConvCase("asymmetric_pad", (1, 3, 7, 7), (2, 3, 3, 3), dict(padding=((0, 2), (1, 0)), stride=(1, 2))),
    ConvCase("stem7x7_s2", (2, 3, 19, 17), (4, 3, 7, 7), dict(stride=2, padding=3)),
    ConvCase("kernel_is_input", (2, 3, 5, 5), (4, 3, 5, 5), dict()),
    ConvCase("one_pixel", (3, 5, 1, 1), (4, 5, 1, 1), dict()),
    ConvCase("wide_channels", (1, 33, 5, 6), (17, 33, 3, 3), dict(padding=1)),
    ConvCase("reflect", (2, 3, 7, 9), (4, 3, 3, 3), dict(padding=2, padding_mode="reflect")),
    ConvCase("replicate_strided", (2, 3, 7, 9), (4, 3, 3, 5), dict(padding=(1, 3), stride=2, padding_mode="replicate")),
    ConvCase(
        "circular_grouped",
        (2, 4, 6, 5),
        (6, 2, 3, 3),
        dict(padding=((2, 1), (3, 0)), groups=2, padding_mode="circular"),
    ),
    ConvCase("empty_batch", (0, 4, 7, 7), (3, 4, 3, 3), dict(padding=1)),
]

CONV1D_CASES = [
    ConvCase("basic", (3, 5, 17), (7, 5, 3), dict(padding=1)),
    ConvCase("strided_dilated", (2, 4, 19), (6, 2, 3), dict(stride=2, dilation=3, groups=2, padding=(2, 1))),
    ConvCase("same_reflect", (2, 3, 11), (4, 3, 4), dict(padding="same", padding_mode="reflect")),
    ConvCase("empty_batch", (0, 3, 9), (2, 3, 3), dict()),
]


class PoolCase(NamedTuple):
    id: str
    x: tuple
    kw: dict


MAX_POOL_CASES = [
    PoolCase("k2s2", (3, 5, 9, 7), dict(kernel_size=2)),
    PoolCase("k3s2p1", (2, 4, 9, 11), dict(kernel_size=3, stride=2, padding=1)),
    PoolCase("k3s2_ceil", (2, 3, 10, 7), dict(kernel_size=3, stride=2, ceil_mode=True)),
    PoolCase("rect_ceil_pad", (1, 3, 9, 8), dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True)),
    PoolCase("dilated", (2, 3, 13, 11), dict(kernel_size=3, stride=1, padding=1, dilation=2)),
    PoolCase("dilated_ceil", (2, 3, 12, 9), dict(kernel_size=2, stride=3, padding=1, dilation=3, ceil_mode=True)),
    PoolCase("global_like", (3, 2, 5, 5), dict(kernel_size=5)),
    PoolCase("empty_batch", (0, 3, 7, 7), dict(kernel_size=3, stride=2)),
    # every window's rows fall in the padding (rows -1 and 2 of a 2-row input): -inf, index -1, no gradient
    PoolCase("all_padding_rows", (2, 3, 2, 9), dict(kernel_size=2, stride=(1, 2), padding=1, dilation=(3, 1))),
    # windows longer than the padded input, one partial window by ceil_mode (torch gives (2, 3, 1, 2))
    PoolCase("overhang_ceil", (2, 3, 2, 2), dict(kernel_size=3, stride=(3, 1), padding=(0, 1), ceil_mode=True)),
]

AVG_POOL_CASES = [
    PoolCase("k2s2", (3, 5, 9, 7), dict(kernel_size=2)),
    PoolCase("k3s2p1_incl", (2, 4, 9, 11), dict(kernel_size=3, stride=2, padding=1)),
    PoolCase("k3s2p1_excl", (2, 4, 9, 11), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    PoolCase("ceil_incl", (2, 3, 10, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    PoolCase(
        "ceil_excl", (2, 3, 10, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    ),
    PoolCase("rect", (1, 3, 9, 8), dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 0), ceil_mode=True)),
    PoolCase("empty_batch", (0, 3, 7, 7), dict(kernel_size=3)),
    PoolCase("overhang_ceil", (2, 3, 2, 2), dict(kernel_size=3, stride=(3, 1), padding=(0, 1), ceil_mode=True)),
    PoolCase(
        "overhang_excl",
        (1, 2, 3, 1),
        dict(kernel_size=(5, 4), stride=4, padding=(2, 1), ceil_mode=True, count_include_pad=False),
    ),
]

ADAPTIVE_CASES = [
    PoolCase("7to3", (3, 4, 7, 9), dict(output_size=3)),
    PoolCase("rect_up", (2, 3, 5, 4), dict(output_size=(7, 6))),
    PoolCase("keep_h", (2, 3, 5, 9), dict(output_size=(None, 2))),
    PoolCase("to1", (3, 5, 9, 7), dict(output_size=1)),
    PoolCase("empty_batch", (0, 3, 7, 7), dict(output_size=2)),
]

BN_SHAPES = [(3, 5, 7, 9), (4, 3, 1, 1), (2, 6, 11), (5, 7), (1, 3, 9, 7)]
ELTWISE_SHAPES = [(3, 5, 7, 9), (17,), (2, 3), (0, 4, 5, 5)]


class LinearCase(NamedTuple):
    id: str
    x: tuple  # (*, in_features)
    K: int  # out_features
    bias: bool = True

    @property
    def w(self) -> tuple:
        return (self.K, self.x[-1])

    @property
    def y(self) -> tuple:
        return self.x[:-1] + (self.K,)


LINEAR_CASES = [
    LinearCase("row", (1, 5), 7),
    LinearCase("batch3", (3, 33), 17),
    LinearCase("batch17_nobias", (17, 5), 33, bias=False),
    LinearCase("one_to_one", (3, 1), 1),
    LinearCase("vector", (33,), 5),  # x 1-D, as torch.nn.functional.linear allows
    LinearCase("leading_dims", (2, 3, 9), 5),
    LinearCase("empty_batch", (0, 5), 3),
    LinearCase("no_in_features", (3, 0), 4),  # y = bias
    LinearCase("no_out_features", (3, 5), 0),
]


class NormCase(NamedTuple):
    """A group/layer/instance norm call: kind, x shape, its argument (num_groups or normalized_shape), affine."""

    id: str
    kind: str
    x: tuple
    arg: object = None
    affine: bool = True


NORM_CASES = [
    NormCase("group3", "group", (3, 6, 5, 4), 3),
    NormCase("group1_layerlike", "group", (2, 4, 3, 3), 1),
    NormCase("group_per_channel", "group", (2, 5, 7), 5),
    NormCase("group_no_affine", "group", (4, 6, 2, 3), 2, False),
    NormCase("group_2d_input", "group", (5, 8), 4),
    NormCase("layer_last", "layer", (3, 5, 9), 9),
    NormCase("layer_last2", "layer", (2, 3, 4, 5), (4, 5)),
    NormCase("layer_all", "layer", (3, 7), (3, 7), False),
    NormCase("layer_long_row", "layer", (2, 1100), 1100),
    NormCase("instance", "instance", (3, 4, 6, 5)),
    NormCase("instance_1d", "instance", (2, 3, 9)),
    NormCase("instance_no_affine", "instance", (1, 5, 3, 3), None, False),
    NormCase("empty_batch", "group", (0, 4, 3, 3), 2),
]

# conv_transpose2d: weight (C_in, C_out/groups, R, S); output_padding up to max(stride, dilation) - 1
TRANSPOSE_CASES = [
    ConvCase("s2_p1_op1", (2, 4, 5, 6), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ConvCase("s1_p0", (3, 3, 4, 5), (3, 2, 2, 3), dict(), bias=False),
    ConvCase(
        "grouped_rect", (2, 4, 5, 6), (4, 2, 3, 2), dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 2), groups=2)
    ),
    # output_padding >= stride (allowed by dilation) and > padding: the equivalent conv has an extra output row
    ConvCase("op_over_stride", (1, 3, 4, 4), (3, 2, 3, 3), dict(stride=1, output_padding=1, dilation=2)),
    ConvCase(
        "depthwise_dilated",
        (2, 6, 3, 5),
        (6, 1, 2, 3),
        dict(stride=2, padding=1, groups=6, dilation=(1, 2), output_padding=(0, 1)),
    ),
    ConvCase("s3_k1", (2, 5, 3, 4), (5, 4, 1, 1), dict(stride=3, output_padding=2)),
    ConvCase("one_pixel", (1, 2, 1, 1), (2, 3, 4, 4), dict(stride=2, padding=1)),
    ConvCase("empty_batch", (0, 3, 4, 4), (3, 2, 3, 3), dict(stride=2)),
]
