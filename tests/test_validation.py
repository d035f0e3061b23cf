"""Bad input gets a TypeError/ValueError whose message names the function, the argument and the shapes."""

import numpy as np
import pytest

import fastconv as fc

X = np.ones((2, 4, 7, 7), np.float32)
W = np.ones((6, 4, 3, 3), np.float32)


def raises(exc, *fragments):
    """pytest.raises that also checks each fragment appears in the message."""

    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(exc)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *a):
            out = self.ctx.__exit__(*a)
            for f in fragments:
                assert f in str(self.info.value), f"{f!r} not in message: {self.info.value}"
            return out

    return _Check()


CONV_BAD = [
    ("non_array_x", dict(x=X.tolist()), TypeError, ["conv2d", "'x'", "list"]),
    ("int_dtype", dict(x=X.astype(np.int32)), TypeError, ["'x'", "int32", "(2, 4, 7, 7)"]),
    ("complex_weight", dict(weight=W.astype(np.complex64)), TypeError, ["'weight'", "complex64"]),
    ("float16", dict(x=X.astype(np.float16)), TypeError, ["float16"]),
    ("mixed_dtype", dict(weight=W.astype(np.float64)), TypeError, ["'weight'", "float64", "float32", "(6, 4, 3, 3)"]),
    ("x_2d", dict(x=X[0, 0]), ValueError, ["'x'", "4-D", "unbatched (C, H, W)", "(7, 7)"]),
    ("weight_5d", dict(weight=W[None]), ValueError, ["'weight'", "(1, 6, 4, 3, 3)"]),
    (
        "channel_mismatch",
        dict(weight=np.ones((6, 3, 3, 3), np.float32)),
        ValueError,
        ["'weight' shape (6, 3, 3, 3)", "'x' shape (2, 4, 7, 7)"],
    ),
    ("groups_not_dividing_C", dict(groups=3), ValueError, ["groups=3", "4 input channels"]),
    (
        "groups_not_dividing_K",
        dict(weight=np.ones((5, 2, 3, 3), np.float32), groups=2),
        ValueError,
        ["groups=2", "5 output channels"],
    ),
    ("groups_zero", dict(groups=0), ValueError, ["'groups'"]),
    ("groups_float", dict(groups=1.0), TypeError, ["'groups'"]),
    ("negative_padding", dict(padding=-1), ValueError, ["'padding'", "-1"]),
    ("negative_padding_pairs", dict(padding=((0, -1), (1, 1))), ValueError, ["'padding'"]),
    ("zero_stride", dict(stride=0), ValueError, ["'stride'"]),
    ("negative_stride", dict(stride=(1, -2)), ValueError, ["'stride'"]),
    ("zero_dilation", dict(dilation=0), ValueError, ["'dilation'"]),
    ("float_stride", dict(stride=1.5), TypeError, ["'stride'"]),
    ("stride_triple", dict(stride=(1, 1, 1)), TypeError, ["'stride'"]),
    (
        "kernel_too_large",
        dict(weight=np.ones((6, 4, 9, 3), np.float32)),
        ValueError,
        ["larger than the padded input", "(2, 4, 7, 7)"],
    ),
    ("dilated_kernel_too_large", dict(dilation=4), ValueError, ["span 9"]),
    ("unknown_padding_string", dict(padding="full"), ValueError, ["'padding'", "'full'"]),
    ("bad_padding_type", dict(padding=(1, 2, 3)), TypeError, ["'padding'"]),
    ("unknown_padding_mode", dict(padding_mode="mirror"), ValueError, ["'padding_mode'", "mirror"]),
    ("reflect_pad_too_big", dict(padding=7, padding_mode="reflect"), ValueError, ["reflect", "(2, 4, 7, 7)"]),
    ("bias_wrong_length", dict(bias=np.ones(5, np.float32)), ValueError, ["'bias'", "(6,)", "(5,)"]),
    ("bias_2d", dict(bias=np.ones((6, 1), np.float32)), ValueError, ["'bias'"]),
    ("unknown_backend", dict(backend="tpu"), ValueError, ["unknown backend 'tpu'", "numpy"]),
    ("unknown_algo", dict(algo="winograd9"), ValueError, ["'winograd9'", "reference"]),
]


@pytest.mark.parametrize("case", CONV_BAD, ids=[c[0] for c in CONV_BAD])
def test_conv2d_rejects(case):
    _, override, exc, fragments = case
    args = dict(x=X, weight=W, bias=None)
    args.update(override)
    with raises(exc, "conv2d", *fragments):
        fc.conv2d(**args)


def test_conv2d_backward_rejects_wrong_grad_out_shape():
    with raises(ValueError, "conv2d_backward", "'grad_out' shape (2, 6, 7, 7)", "(2, 6, 5, 5)"):
        fc.conv2d_backward(np.ones((2, 6, 7, 7), np.float32), X, W)
    with raises(TypeError, "conv2d_backward", "'grad_out'"):
        fc.conv2d_backward(np.ones((2, 6, 5, 5)), X, W)


def test_conv1d_rejects():
    with raises(ValueError, "conv1d", "'x'", "3-D", "(2, 4, 7, 7)"):
        fc.conv1d(X, W[..., 0])
    with raises(TypeError, "conv1d", "'padding'"):
        fc.conv1d(X[..., 0], W[..., 0], padding=((1, 1), (1, 1)))


POOL_BAD = [
    ("pad_over_half_kernel", dict(kernel_size=3, padding=2), ValueError, ["'padding'", "half"]),
    ("zero_kernel", dict(kernel_size=0), ValueError, ["'kernel_size'"]),
    ("zero_stride", dict(kernel_size=2, stride=0), ValueError, ["'stride'"]),
    ("kernel_too_large", dict(kernel_size=9), ValueError, ["(2, 4, 7, 7)"]),
    ("ceil_mode_not_bool", dict(kernel_size=2, ceil_mode="yes"), TypeError, ["'ceil_mode'"]),
]


@pytest.mark.parametrize("fn", [fc.max_pool2d, fc.avg_pool2d])
@pytest.mark.parametrize("case", POOL_BAD, ids=[c[0] for c in POOL_BAD])
def test_pooling_rejects(fn, case):
    _, kw, exc, fragments = case
    with raises(exc, fn.__name__, *fragments):
        fn(X, **kw)


def test_pooling_rejects_bad_arrays_and_grad_out():
    with raises(ValueError, "max_pool2d", "'x'", "(7, 7)"):
        fc.max_pool2d(X[0, 0], 2)
    with raises(ValueError, "max_pool2d_backward", "'grad_out' shape (2, 4, 2, 2)", "(2, 4, 3, 3)"):
        fc.max_pool2d_backward(np.ones((2, 4, 2, 2), np.float32), X, 2)
    with raises(ValueError, "avg_pool2d_backward", "'grad_out'"):
        fc.avg_pool2d_backward(np.ones((2, 4, 3, 2), np.float32), X, 2)
    with raises(ValueError, "adaptive_avg_pool2d", "'output_size'"):
        fc.adaptive_avg_pool2d(X, 0)
    with raises(TypeError, "adaptive_avg_pool2d", "'output_size'"):
        fc.adaptive_avg_pool2d(X, (2, 2, 2))
    with raises(ValueError, "global_avg_pool2d_backward", "'grad_out'"):
        fc.global_avg_pool2d_backward(np.ones((2, 4, 2, 1), np.float32), X)


def test_batch_norm_rejects():
    c4, c3 = np.ones(4, np.float32), np.ones(3, np.float32)
    with raises(ValueError, "batch_norm", "'weight'", "(4,)", "(3,)"):
        fc.batch_norm(X, c4, c4, c3, c4)
    with raises(ValueError, "batch_norm", "'running_var'", "(3,)"):
        fc.batch_norm(X, c4, c3, c4, c4)
    with raises(TypeError, "batch_norm", "'running_mean'", "float64"):
        fc.batch_norm(X, c4.astype(np.float64), c4, c4, c4)
    with raises(ValueError, "batch_norm", "running_mean"):
        fc.batch_norm(X, None, None, c4, c4, training=False)
    with raises(ValueError, "batch_norm", "more than one value per channel", "(1, 4, 1, 1)"):
        fc.batch_norm(X[:1, :, :1, :1], c4.copy(), c4.copy(), c4, c4, training=True)
    with raises(TypeError, "batch_norm", "'momentum'"):
        fc.batch_norm(X, c4.copy(), c4.copy(), c4, c4, training=True, momentum=None)
    with raises(ValueError, "batch_norm", "'eps'"):
        fc.batch_norm(X, c4, c4, c4, c4, eps=-1.0)
    with raises(ValueError, "batch_norm_backward", "'grad_out'", "(2, 4, 7, 6)"):
        fc.batch_norm_backward(X[..., :6].copy(), X, c4, c4, c4, False)


def test_relu_rejects():
    with raises(TypeError, "relu", "'x'", "int64"):
        fc.relu(np.arange(3))
    with raises(ValueError, "relu_backward", "'grad_out' shape (3,)", "(4,)"):
        fc.relu_backward(np.ones(3), np.ones(4))


def test_backend_errors():
    with raises(ValueError, "set_backend", "unknown backend 'gpu'"):
        fc.set_backend("gpu")
    with raises(ValueError, "use_backend", "unknown backend"):
        with fc.use_backend("nope"):
            pass
    with raises(TypeError, "conv2d", "backend"):
        fc.conv2d(X, W, backend=3)


def test_errors_leave_inputs_untouched():
    x, w = X.copy(), W.copy()
    with pytest.raises(ValueError):
        fc.conv2d(x, w, stride=0)
    assert np.array_equal(x, X) and np.array_equal(w, W)


XL, WL = np.ones((4, 5), np.float32), np.ones((3, 5), np.float32)
LINEAR_BAD = [
    ("non_array_x", dict(x=XL.tolist()), TypeError, ["'x'", "list"]),
    ("int_x", dict(x=XL.astype(np.int64)), TypeError, ["'x'", "int64", "(4, 5)"]),
    ("mixed_dtype", dict(weight=WL.astype(np.float64)), TypeError, ["'weight'", "float64", "float32", "(3, 5)"]),
    ("weight_1d", dict(weight=WL[0]), ValueError, ["'weight'", "2-D", "(out_features, in_features)", "(5,)"]),
    ("weight_3d", dict(weight=WL[None]), ValueError, ["'weight'", "(1, 3, 5)"]),
    ("x_0d", dict(x=np.ones((), np.float32)), ValueError, ["'x'", "at least one dimension", "()"]),
    (
        "feature_mismatch",
        dict(x=np.ones((4, 6), np.float32)),
        ValueError,
        ["'x' shape (4, 6)", "6 features", "'weight' shape (3, 5)", "in_features=5"],
    ),
    ("bias_wrong_length", dict(bias=np.ones(4, np.float32)), ValueError, ["'bias'", "(3,)", "(4,)"]),
    ("bias_2d", dict(bias=np.ones((3, 1), np.float32)), ValueError, ["'bias'", "(3, 1)"]),
    ("bias_dtype", dict(bias=np.ones(3)), TypeError, ["'bias'", "float64"]),
    ("unknown_algo", dict(algo="winograd9"), ValueError, ["'winograd9'", "reference"]),
]


@pytest.mark.parametrize("case", LINEAR_BAD, ids=[c[0] for c in LINEAR_BAD])
def test_linear_rejects(case):
    _, override, exc, fragments = case
    args = dict(x=XL, weight=WL, bias=None) | override
    with raises(exc, "linear", *fragments):
        fc.linear(**args)


def test_linear_backward_rejects():
    with raises(ValueError, "linear_backward", "'grad_out' shape (4, 5)", "(4, 3)"):
        fc.linear_backward(np.ones((4, 5), np.float32), XL, WL)
    with raises(TypeError, "linear_backward", "'grad_out'", "float64"):
        fc.linear_backward(np.ones((4, 3)), XL, WL)
    with raises(ValueError, "linear_backward", "'x' shape (4, 6)", "'weight' shape (3, 5)"):
        fc.linear_backward(np.ones((4, 3), np.float32), np.ones((4, 6), np.float32), WL)
    with raises(ValueError, "linear_backward", "no algorithm 'linear_dot_v2_rows'"):
        fc.linear_backward(np.ones((4, 3), np.float32), XL, WL, backend="numba", algo="linear_dot_v2_rows")


def test_norm_arguments_are_checked():
    x = np.ones((2, 6, 4, 4), np.float32)
    c6 = np.ones(6, np.float32)
    with raises(ValueError, "group_norm", "'num_groups'=4 must be >= 1 and divide the 6 channels"):
        fc.group_norm(x, 4)
    with raises(TypeError, "group_norm", "'num_groups' must be an int"):
        fc.group_norm(x, 2.0)
    with raises(ValueError, "group_norm", "'weight' must have shape (6,)"):
        fc.group_norm(x, 3, np.ones(5, np.float32))
    with raises(ValueError, "layer_norm", "'normalized_shape' (4, 5) must equal the last dimensions"):
        fc.layer_norm(x, (4, 5))
    with raises(ValueError, "layer_norm", "'weight' must have shape (4, 4)"):
        fc.layer_norm(x, (4, 4), np.ones(16, np.float32))
    with raises(TypeError, "layer_norm", "'normalized_shape' must be an int or a non-empty sequence"):
        fc.layer_norm(x, ())
    with raises(ValueError, "instance_norm", "use_input_stats=False needs 'running_mean' and 'running_var'"):
        fc.instance_norm(x, use_input_stats=False)
    with raises(ValueError, "instance_norm", "more than 1 spatial element"):
        fc.instance_norm(np.ones((2, 6, 1, 1), np.float32))
    with raises(ValueError, "instance_norm", "give both 'running_mean' and 'running_var'"):
        fc.instance_norm(x, c6)
    with raises(TypeError, "group_norm", "'weight' has dtype float64"):
        fc.group_norm(x, 3, c6.astype(np.float64))
    with raises(ValueError, "group_norm_backward", "'grad_out' shape (2, 6, 4, 3)"):
        fc.group_norm_backward(np.ones((2, 6, 4, 3), np.float32), x, 3)
