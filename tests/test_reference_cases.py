"""The reference against tiny cases computed by hand (or by a closed form independent of the conv code)."""

import numpy as np
import pytest

import fastconv as fc
from fastconv.padding import source_index

B = dict(backend="numpy")


@pytest.mark.parametrize("stride, rows", [(1, [1, 2, 3, 4, 5]), (2, [1, 3, 5]), (3, [1, 4])])
def test_7x7_input_3x3_ones_filter(stride, rows):
    # x[h, w] = 7h + w: a 3x3 window's sum is 9x its centre, so y = 9 * x at the window centres.
    # Stride 3 does not tile 7 (the last row/column is dropped): 2x2 output.
    x = np.arange(49.0).reshape(1, 1, 7, 7)
    w = np.ones((1, 1, 3, 3))
    y = fc.conv2d(x, w, stride=stride, **B)
    centres = np.array(rows)
    assert y.shape == (1, 1, len(rows), len(rows))
    np.testing.assert_array_equal(y[0, 0], 9 * x[0, 0][np.ix_(centres, centres)])


def test_cross_correlation_not_flipped():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(fc.conv2d(x, w, **B)[0, 0], [[37, 47], [67, 77]])


def test_ten_5x5_filters_pad2_on_32x32x3():
    """The classic CS231n layer: 'same' output size, 10*3*5*5 + 10 = 760 parameters, and two outputs summed by hand
    (a corner, where 2 rows and 2 columns of the window fall in the zero padding, and an interior one)."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((1, 3, 32, 32)), rng.standard_normal((10, 3, 5, 5)), rng.standard_normal(10)
    y = fc.conv2d(x, w, b, padding=2, **B)
    assert y.shape == (1, 10, 32, 32)
    for k, p, q in ((0, 0, 0), (7, 13, 21)):
        total = b[k]
        for c in range(3):
            for r in range(5):
                for s in range(5):
                    h, v = p - 2 + r, q - 2 + s
                    if 0 <= h < 32 and 0 <= v < 32:
                        total += x[0, c, h, v] * w[k, c, r, s]
        assert abs(y[0, k, p, q] - total) <= 1e-12 * abs(total)
    layer = fc.nn.Conv2d(3, 10, 5, padding=2)
    assert fc.summary(layer, (1, 3, 32, 32)).total_params == 760


def test_channels_and_groups_by_hand():
    # two groups of one channel each; output k of group g sees only input channel g
    x = np.stack([np.full((3, 3), 1.0), np.full((3, 3), 10.0)])[None]
    w = np.array([1.0, 2.0, 3.0, 4.0]).reshape(4, 1, 1, 1)
    y = fc.conv2d(x, w, np.array([0.0, 0.0, 0.0, 0.5]), groups=2, **B)
    np.testing.assert_array_equal(y[0, :, 0, 0], [1.0, 2.0, 30.0, 40.5])


def test_padding_modes_on_1_2_3():
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 1, 3)
    one = np.ones((1, 1, 1))
    expected = {
        "zeros": [0, 0, 1, 2, 3, 0, 0],
        "reflect": [3, 2, 1, 2, 3, 2, 1],
        "replicate": [1, 1, 1, 2, 3, 3, 3],
        "circular": [2, 3, 1, 2, 3, 1, 2],
    }
    for mode, want in expected.items():
        np.testing.assert_array_equal(fc.conv1d(x, one, padding=2, padding_mode=mode, **B)[0, 0], want, mode)
    np.testing.assert_array_equal(source_index(3, 2, 2, "reflect"), [2, 1, 0, 1, 2, 1, 0])


def test_same_padding_stride2_puts_extra_on_bottom_right():
    # in 6, k 3, stride 2: out 3, total pad (3-1)*2 + 3 - 6 = 1 -> (0, 1): windows start at rows 0, 2, 4
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0, 0] = 1.0  # picks each window's top-left element
    y = fc.conv2d(x, w, stride=2, padding="same", **B)
    np.testing.assert_array_equal(y[0, 0], x[0, 0, ::2, ::2])


def test_max_pool_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y, idx = fc.max_pool2d(x, 2, return_indices=True, **B)
    np.testing.assert_array_equal(y[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(idx[0, 0], [[5, 7], [13, 15]])
    gx = fc.max_pool2d_backward(np.ones((1, 1, 2, 2)), x, 2, **B)
    np.testing.assert_array_equal(gx[0, 0].ravel().nonzero()[0], [5, 7, 13, 15])


def test_max_pool_nan_and_ties():
    x = np.array([[1.0, 3.0], [3.0, np.nan]]).reshape(1, 1, 2, 2)
    assert np.isnan(fc.max_pool2d(x, 2, **B)).all()
    y, idx = fc.max_pool2d(np.array([[2.0, 2.0], [1.0, 0.0]]).reshape(1, 1, 2, 2), 2, return_indices=True, **B)
    assert y.item() == 2.0 and idx.item() == 0  # the first maximum wins


def test_max_pool_padding_loses_to_minus_inf():
    """A window of -inf inputs takes its first input element, never the (-inf) padding before it (PyTorch)."""
    x = np.full((1, 1, 4, 5), -np.inf)
    y, idx = fc.max_pool2d(x, 3, 2, 1, return_indices=True, **B)
    np.testing.assert_array_equal(idx[0, 0], [[0, 1, 3], [5, 6, 8]])  # window (i, j) starts at (2i - 1, 2j - 1)
    gx = fc.max_pool2d_backward(np.ones((1, 1, 2, 3)), x, 3, 2, 1, **B)
    np.testing.assert_array_equal(gx[0, 0].ravel().nonzero()[0], [0, 1, 3, 5, 6, 8])


def test_avg_pool_divisors_by_hand():
    x = np.ones((1, 1, 2, 2))
    np.testing.assert_allclose(fc.avg_pool2d(x, 3, stride=1, padding=1, **B)[0, 0], np.full((2, 2), 4 / 9))
    np.testing.assert_array_equal(
        fc.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False, **B)[0, 0], np.ones((2, 2))
    )
    # ceil_mode: in 5, k 2, s 2 -> 3 windows; the last covers [4, 6) and is clipped to size 1 even with
    # count_include_pad, since it lies beyond the (zero) padding
    y = fc.avg_pool2d(np.arange(5.0).reshape(1, 1, 1, 5), (1, 2), ceil_mode=True, **B)
    np.testing.assert_array_equal(y[0, 0, 0], [0.5, 2.5, 4.0])


def test_adaptive_avg_pool_windows_by_hand():
    # 5 -> 3: windows [0, 2), [1, 4), [3, 5)
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    np.testing.assert_allclose(fc.adaptive_avg_pool2d(x, (1, 3), **B)[0, 0, 0], [0.5, 2.0, 3.5])
    np.testing.assert_allclose(fc.global_avg_pool2d(x, **B)[0, 0], [[2.0]])


def test_batch_norm_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(4, 1)
    rm, rv = np.zeros(1), np.ones(1)
    y = fc.batch_norm(x, rm, rv, None, None, training=True, momentum=0.1, eps=0.0, **B)
    np.testing.assert_allclose(y[:, 0], (np.array([1, 2, 3, 4]) - 2.5) / np.sqrt(1.25))
    np.testing.assert_allclose(rm, [0.25])
    np.testing.assert_allclose(rv, [0.9 + 0.1 * 5 / 3])  # unbiased variance 5/3 goes into running_var
    y_eval = fc.batch_norm(x, rm, rv, np.array([2.0]), np.array([1.0]), training=False, eps=0.0, **B)
    np.testing.assert_allclose(y_eval[:, 0], (np.array([1, 2, 3, 4]) - 0.25) / np.sqrt(rv[0]) * 2 + 1)


def test_relu_by_hand():
    x = np.array([-1.0, 0.0, 2.0, np.nan])
    np.testing.assert_array_equal(fc.relu(x, **B), [0.0, 0.0, 2.0, np.nan])
    np.testing.assert_array_equal(fc.relu_backward(np.full(4, 5.0), fc.relu(x, **B), **B), [0, 0, 5, 5])


def test_adaptive_avg_pool_keeps_nan_inside_its_windows():
    x = np.arange(20.0).reshape(1, 1, 4, 5)
    x[0, 0, 0, 0] = np.nan
    y = fc.adaptive_avg_pool2d(x, (2, 2), **B)  # rows [0, 2), [2, 4); columns [0, 3), [2, 5)
    np.testing.assert_array_equal(np.isnan(y[0, 0]), [[True, False], [False, False]])
    np.testing.assert_allclose(y[0, 0, 1, 1], x[0, 0, 2:4, 2:5].mean())
    gx = fc.adaptive_avg_pool2d_backward(np.array([[[[np.nan, 1.0], [1.0, 1.0]]]]), x, (2, 2), **B)
    assert np.isnan(gx[0, 0, :2, :3]).all() and not np.isnan(gx[0, 0, 2:]).any()
