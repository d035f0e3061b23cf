"""Shape rules: conv_output_size by hand, predicates, and property tests (hypothesis) that every op's output
shape is the one conv_output_size gives."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv.params import conv_params

B = dict(backend="numpy")


@pytest.mark.parametrize(
    "args, out",
    [
        ((7, 3), 5),
        ((7, 3, 2), 3),
        ((7, 3, 3), 2),
        ((7, 3, 1, 1), 7),
        ((7, 3, 1, (0, 2)), 7),
        ((7, 3, 1, 0, 3), 1),
        ((32, 5, 1, 2), 32),
        ((224, 7, 2, 3), 112),
        ((56, 3, 2, 1), 28),
        ((10, 3, 2, 0, 1, True), 5),
        ((10, 3, 2, 0, 1, False), 4),
        ((5, 2, 2, 1, 1, True), 3),  # ceil gives 4, but that window would start in the right padding
        ((2, 3, 3, 0, 1, True), 1),  # a window longer than the input: one partial window by ceil_mode, as torch
        ((2, 3, 1, 1, 1, True), 2),
        ((1, 5, 3, (1, 1), 1, True), 1),
    ],
)
def test_conv_output_size_by_hand(args, out):
    assert fc.conv_output_size(*args) == out


def test_conv_output_size_rejects():
    with pytest.raises(ValueError, match="does not fit"):
        fc.conv_output_size(4, 3, dilation=2)
    with pytest.raises(ValueError, match="does not fit"):
        fc.conv_output_size(2, 3, 3)  # the ceil_mode case above, without ceil_mode
    with pytest.raises(ValueError, match="does not fit"):
        fc.conv_output_size(2, 6, 3, 0, 1, True)  # overhangs by more than a stride: no window starts in the input
    with pytest.raises(ValueError, match="'stride'"):
        fc.conv_output_size(4, 3, stride=0)
    with pytest.raises(TypeError, match="'kernel_size'"):
        fc.conv_output_size(4, 2.0)


def _p(x, w, **kw):
    args = dict(stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros")
    args.update(kw)
    return conv_params(
        "conv2d",
        x,
        w,
        None,
        args["stride"],
        args["padding"],
        args["dilation"],
        args["groups"],
        args["padding_mode"],
        np.dtype(np.float32),
    )


@pytest.mark.parametrize(
    "p, pointwise, depthwise, grouped, strided, dilated",
    [
        (_p((1, 8, 5, 5), (4, 8, 1, 1)), True, False, False, False, False),
        (_p((1, 8, 5, 5), (4, 8, 1, 1), stride=2), False, False, False, True, False),
        (_p((1, 8, 5, 5), (8, 1, 3, 3), groups=8), False, True, True, False, False),
        (_p((1, 8, 5, 5), (16, 1, 3, 3), groups=8, dilation=2, padding=2), False, True, True, False, True),
        (_p((1, 8, 5, 5), (4, 4, 3, 3), groups=2), False, False, True, False, False),
    ],
)
def test_conv_params_predicates(p, pointwise, depthwise, grouped, strided, dilated):
    assert (p.is_pointwise, p.is_depthwise, p.is_grouped, p.is_strided, p.is_dilated) == (
        pointwise,
        depthwise,
        grouped,
        strided,
        dilated,
    )


def test_conv_params_padded_and_macs():
    p = _p((2, 4, 7, 9), (6, 2, 3, 3), padding=((1, 2), (0, 3)), groups=2, stride=2)
    q = p.padded()
    assert (q.H, q.W, q.padding, q.P, q.Q) == (10, 12, ((0, 0), (0, 0)), p.P, p.Q)
    assert p.macs == 2 * 6 * p.P * p.Q * 2 * 3 * 3


dims = st.integers(1, 12)


@settings(max_examples=150, deadline=None)
@given(
    H=dims,
    W=dims,
    R=st.integers(1, 5),
    S=st.integers(1, 5),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    dh=st.integers(1, 3),
    dw=st.integers(1, 3),
    pt=st.integers(0, 3),
    pb=st.integers(0, 3),
    pl=st.integers(0, 3),
    pr=st.integers(0, 3),
)
def test_conv2d_shape_is_conv_output_size(H, W, R, S, sh, sw, dh, dw, pt, pb, pl, pr):
    fits = H + pt + pb >= dh * (R - 1) + 1 and W + pl + pr >= dw * (S - 1) + 1
    x, w = np.ones((1, 2, H, W)), np.ones((3, 2, R, S))
    kw = dict(stride=(sh, sw), dilation=(dh, dw), padding=((pt, pb), (pl, pr)))
    if not fits:
        with pytest.raises(ValueError):
            fc.conv2d(x, w, **kw, **B)
        return
    y = fc.conv2d(x, w, **kw, **B)
    assert y.shape == (1, 3, fc.conv_output_size(H, R, sh, (pt, pb), dh), fc.conv_output_size(W, S, sw, (pl, pr), dw))


@settings(max_examples=100, deadline=None)
@given(
    H=dims,
    W=dims,
    R=st.integers(1, 5),
    S=st.integers(1, 5),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    dh=st.integers(1, 2),
    dw=st.integers(1, 2),
)
def test_same_padding_gives_ceil_of_input_over_stride(H, W, R, S, sh, sw, dh, dw):
    y = fc.conv2d(np.ones((1, 1, H, W)), np.ones((1, 1, R, S)), stride=(sh, sw), dilation=(dh, dw), padding="same", **B)
    assert y.shape[2:] == (math.ceil(H / sh), math.ceil(W / sw))


@settings(max_examples=150, deadline=None)
@given(
    H=dims, W=dims, k=st.integers(1, 5), s=st.integers(1, 4), d=st.integers(1, 2), ceil=st.booleans(), data=st.data()
)
def test_pool_shape_is_conv_output_size(H, W, k, s, d, ceil, data):
    p = data.draw(st.integers(0, k // 2))
    if min(H, W) + 2 * p < d * (k - 1) + 1:
        return
    y = fc.max_pool2d(np.ones((1, 1, H, W)), k, s, p, d, ceil_mode=ceil, **B)
    want = (fc.conv_output_size(H, k, s, p, d, ceil), fc.conv_output_size(W, k, s, p, d, ceil))
    assert y.shape[2:] == want
    floor = (fc.conv_output_size(H, k, s, p, d), fc.conv_output_size(W, k, s, p, d))
    for n, o, f in zip((H, W), want, floor):
        assert f <= o <= f + 1
        assert (o - 1) * s < n + p  # every window starts inside the input or the left padding
    if d == 1:
        assert fc.avg_pool2d(np.ones((1, 1, H, W)), k, s, p, ceil_mode=ceil, **B).shape[2:] == want
