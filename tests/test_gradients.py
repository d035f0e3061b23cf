"""Every backward of the reference checked by central finite differences in float64 on random data.

The scalar checked is L = sum(op(inputs) * r) for a fixed random r, so dL/d(input) is the op's backward applied
to grad_out = r; each input is perturbed along random directions (helpers.directional_grad_check).
"""

import conformance as cf
import numpy as np
import pytest
from cases import ADAPTIVE_CASES, AVG_POOL_CASES, BN_SHAPES, CONV1D_CASES, CONV2D_CASES, MAX_POOL_CASES, NORM_CASES
from helpers import directional_grad_check, rand

import fastconv as fc

B = dict(backend="numpy")
nonempty = lambda cases: [c for c in cases if c.x[0] > 0]  # noqa: E731


@pytest.mark.parametrize(
    "case",
    nonempty(CONV2D_CASES + CONV1D_CASES),
    ids=[c.id + f"_{len(c.x) - 2}d" for c in nonempty(CONV2D_CASES + CONV1D_CASES)],
)
def test_conv_gradients(case, rng):
    fwd, bwd = (fc.conv2d, fc.conv2d_backward) if len(case.x) == 4 else (fc.conv1d, fc.conv1d_backward)
    x, w, b = rand(rng, case.x), rand(rng, case.w), rand(rng, (case.w[0],))
    r = rand(rng, fwd(x, w, b, **case.kw, **B).shape)
    gx, gw, gb = bwd(r, x, w, **case.kw, **B)
    directional_grad_check(
        lambda x, w, b: float(np.sum(fwd(x, w, b, **case.kw, **B) * r)),
        {"x": x, "w": w, "b": b},
        {"x": gx, "w": gw, "b": gb},
        rng,
    )


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("case", nonempty(MAX_POOL_CASES), ids=[c.id for c in nonempty(MAX_POOL_CASES)])
def test_max_pool_gradient(case, layout, rng):
    """channels_last: x and grad_out in that order, on the numba kernels max_pool2d_fwd/bwd_v3_nhwc (float64)."""
    put = cf.channels_last if layout == "channels_last" else (lambda a: a)
    be = dict(backend="numba") if layout == "channels_last" else B
    x = rand(rng, case.x)
    r = rand(rng, fc.max_pool2d(x, **case.kw, **B).shape)
    gx = fc.max_pool2d_backward(put(r), put(x), **case.kw, **be)

    def loss(x):  # a window that holds no input gives -inf and no gradient: left out of the sum
        y = fc.max_pool2d(put(x), **case.kw, **be)
        return float(np.sum(np.where(np.isinf(y), 0.0, y * r)))

    directional_grad_check(loss, {"x": x}, {"x": gx}, rng, h=1e-7)


@pytest.mark.parametrize("case", nonempty(AVG_POOL_CASES), ids=[c.id for c in nonempty(AVG_POOL_CASES)])
def test_avg_pool_gradient(case, rng):
    x = rand(rng, case.x)
    r = rand(rng, fc.avg_pool2d(x, **case.kw, **B).shape)
    gx = fc.avg_pool2d_backward(r, x, **case.kw, **B)
    directional_grad_check(lambda x: float(np.sum(fc.avg_pool2d(x, **case.kw, **B) * r)), {"x": x}, {"x": gx}, rng)


@pytest.mark.parametrize("case", nonempty(ADAPTIVE_CASES), ids=[c.id for c in nonempty(ADAPTIVE_CASES)])
def test_adaptive_and_global_pool_gradient(case, rng):
    x = rand(rng, case.x)
    for fwd, bwd, kw in (
        (fc.adaptive_avg_pool2d, fc.adaptive_avg_pool2d_backward, case.kw),
        (fc.global_avg_pool2d, fc.global_avg_pool2d_backward, {}),
    ):
        r = rand(rng, fwd(x, **kw, **B).shape)
        gx = bwd(r, x, **kw, **B)
        directional_grad_check(
            lambda x, fwd=fwd, kw=kw, r=r: float(np.sum(fwd(x, **kw, **B) * r)), {"x": x}, {"x": gx}, rng
        )


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape,layout", [(s, "nchw") for s in BN_SHAPES] + [((3, 19, 7, 9), "channels_last")])
def test_batch_norm_gradients(shape, layout, training, rng):
    """channels_last: x and grad_out in that order, on the numba kernels batch_norm_fwd/bwd_v3_nhwc (float64)."""
    C = shape[1]
    put = cf.channels_last if layout == "channels_last" else (lambda a: a)
    be = dict(backend="numba") if layout == "channels_last" else B
    x, w, b = rand(rng, shape) * 2 + 0.5, rand(rng, (C,)), rand(rng, (C,))
    rm, rv = rand(rng, (C,)), np.abs(rand(rng, (C,))) + 0.5

    def loss(x, w, b):  # running stats are copied so the check does not drift them
        return float(np.sum(fc.batch_norm(put(x), rm.copy(), rv.copy(), w, b, training, eps=1e-3, **be) * r))

    r = rand(rng, shape)
    gx, gw, gb = fc.batch_norm_backward(put(r), put(x), rm, rv, w, training, eps=1e-3, **be)
    directional_grad_check(loss, {"x": x, "w": w, "b": b}, {"x": gx, "w": gw, "b": gb}, rng)


def test_relu_gradient(rng):
    x = rand(rng, (3, 4, 5, 6))
    r = rand(rng, x.shape)
    gx = fc.relu_backward(r, fc.relu(x, **B), **B)
    directional_grad_check(lambda x: float(np.sum(fc.relu(x, **B) * r)), {"x": x}, {"x": gx}, rng)


@pytest.mark.parametrize("case", [c for c in NORM_CASES if c.x[0]], ids=[c.id for c in NORM_CASES if c.x[0]])
def test_norm_gradients(case, rng):
    """The reference group/layer/instance norm gradients by central finite differences (x, weight and bias)."""
    x = rand(rng, case.x) * 2 + 0.5
    a_shape = (case.x[1],) if case.kind != "layer" else ((case.arg,) if isinstance(case.arg, int) else case.arg)
    w, b = rand(rng, a_shape), rand(rng, a_shape)
    r = rand(rng, case.x)

    def forward(x, w, b):
        if case.kind == "group":
            return fc.group_norm(x, case.arg, w, b, eps=1e-3, **B)
        if case.kind == "layer":
            return fc.layer_norm(x, case.arg, w, b, eps=1e-3, **B)
        return fc.instance_norm(x, None, None, w, b, eps=1e-3, **B)

    if case.kind == "group":
        gx, gw, gb = fc.group_norm_backward(r, x, case.arg, w, eps=1e-3, **B)
    elif case.kind == "layer":
        gx, gw, gb = fc.layer_norm_backward(r, x, case.arg, w, eps=1e-3, **B)
    else:
        gx, gw, gb = fc.instance_norm_backward(r, x, w, eps=1e-3, **B)
    directional_grad_check(
        lambda x, w, b: float(np.sum(forward(x, w, b) * r)), {"x": x, "w": w, "b": b}, {"x": gx, "w": gw, "b": gb}, rng
    )
