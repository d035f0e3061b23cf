"""Unbatched inputs, as torch takes them: conv2d and pooling on (C, H, W), conv1d on (C, L), their backward ops,
the plans of such calls and the nn layers; every backend against the float64 reference of the batch of one, and
against torch where it is installed."""

import numpy as np
import pytest
from helpers import requires_torch, torch

import fastconv as fc
from fastconv import nn

BACKENDS = ["numpy", "numba", "cuda-emu"]


def _poisoned_call(fn, *args, **kw):
    """fn's result, with the inputs checked untouched."""
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    out = fn(*args, **kw)
    for a, c in zip(args, copies):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, c)
    return out


CASES = [
    # (forward op, its backward op, x shape, weight shape or None, kwargs)
    (fc.conv2d, fc.conv2d_backward, (3, 9, 8), (4, 3, 3, 2), dict(stride=(2, 1), padding=1)),
    (fc.conv2d, fc.conv2d_backward, (4, 7, 7), (4, 2, 3, 3), dict(groups=2, dilation=2, padding="same")),
    (fc.conv1d, fc.conv1d_backward, (3, 13), (5, 3, 4), dict(stride=2, padding=2, dilation=2)),
    (fc.max_pool2d, fc.max_pool2d_backward, (3, 9, 8), None, dict(kernel_size=3, stride=2, padding=1)),
    (fc.avg_pool2d, fc.avg_pool2d_backward, (2, 7, 5), None, dict(kernel_size=2, ceil_mode=True)),
    (fc.adaptive_avg_pool2d, fc.adaptive_avg_pool2d_backward, (3, 7, 9), None, dict(output_size=(3, 4))),
    (fc.global_avg_pool2d, fc.global_avg_pool2d_backward, (3, 5, 4), None, {}),
]
IDS = [f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unbatched_equals_batch_of_one(case, backend, dtype, rng):
    fwd, bwd, x_shape, w_shape, kw = case
    x = rng.standard_normal(x_shape).astype(dtype)
    arrays = (x,) if w_shape is None else (x, rng.standard_normal(w_shape).astype(dtype))
    y = _poisoned_call(fwd, *arrays, **kw, backend=backend)
    ref = fwd(x[None], *arrays[1:], **kw, backend="numpy")
    assert y.shape == ref.shape[1:] and y.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, ref[0], **tol)

    gy = rng.standard_normal(y.shape).astype(dtype)
    grads = _poisoned_call(bwd, gy, *arrays, **kw, backend=backend)
    ref_grads = bwd(gy[None], x[None], *arrays[1:], **kw, backend="numpy")
    if w_shape is None:
        grads, ref_grads = (grads,), (ref_grads,)
    assert grads[0].shape == x.shape
    np.testing.assert_allclose(grads[0], ref_grads[0][0], **tol)
    for g, r in zip(grads[1:], ref_grads[1:]):
        np.testing.assert_allclose(g, r, **tol)


@requires_torch
@pytest.mark.torch
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unbatched_matches_torch(case, rng):
    import torch.nn.functional as F

    fwd, bwd, x_shape, w_shape, kw = case
    x = rng.standard_normal(x_shape)
    arrays = (x,) if w_shape is None else (x, rng.standard_normal(w_shape))
    targs = [torch.tensor(a, requires_grad=True) for a in arrays]
    name = fwd.__name__
    if name == "global_avg_pool2d":
        ty = F.adaptive_avg_pool2d(*targs, 1)
    else:
        ty = getattr(F, name)(*targs, **kw)
    y = fwd(*arrays, **kw, backend="numpy")
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    gy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(gy))
    grads = bwd(gy, *arrays, **kw, backend="numpy")
    grads = (grads,) if w_shape is None else grads[:2]
    for g, t in zip(grads, targs):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_max_pool2d_unbatched_indices(rng):
    x = rng.standard_normal((2, 6, 5))
    y, idx = fc.max_pool2d(x, 2, return_indices=True, backend="numpy")
    y1, idx1 = fc.max_pool2d(x[None], 2, return_indices=True, backend="numpy")
    assert y.shape == idx.shape == (2, 3, 2)
    np.testing.assert_array_equal(idx, idx1[0])
    np.testing.assert_array_equal(y, y1[0])


def test_unbatched_plan_and_its_backward(rng):
    x, w = rng.standard_normal((3, 8, 8)), rng.standard_normal((4, 3, 3, 3))
    plan = fc.plan(fc.conv2d, x, w, padding=1, need_backward=True)
    y = plan.run(x, w, None)
    assert y.shape == (4, 8, 8)
    gx, gw, gb = plan.backward(need_bias=False).run(np.ones_like(y), x, w)
    rx, rw, _ = fc.conv2d_backward(np.ones((1, 4, 8, 8)), x[None], w, padding=1, backend="numpy")
    np.testing.assert_allclose(gx, rx[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-10)
    assert gb is None
    with pytest.raises(ValueError, match=r"conv2d plan: 'x' has shape \(1, 3, 8, 8\), not \(3, 8, 8\)"):
        plan.run(x[None], w, None)


def test_unbatched_errors_name_the_call():
    x, w = np.zeros((3, 8, 8)), np.zeros((4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: .*unbatched 'x' of shape \(3, 8, 8\) taken as a batch of one"):
        fc.conv2d(x, w)
    with pytest.raises(ValueError, match=r"conv2d: 'x' must be 4-D \(N, C, H, W\) or unbatched \(C, H, W\)"):
        fc.conv2d(np.zeros((8, 8)), w)
    with pytest.raises(ValueError, match=r"conv2d_backward: 'x' is unbatched .* 'grad_out' must be 3-D too"):
        fc.conv2d_backward(np.zeros((1, 4, 6, 6)), x, np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"max_pool2d_backward: 'x' is unbatched .* 'grad_out' must be 3-D too"):
        fc.max_pool2d_backward(np.zeros((1, 3, 4, 4)), x, 2)


def test_nn_layers_take_unbatched_inputs(rng):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(2))
    x = rng.standard_normal((3, 8, 8)).astype(np.float32)
    y = model(x)
    assert y.shape == (4, 2, 2)
    gx = model.backward(np.ones_like(y))
    grads = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    y1 = model(x[None])
    np.testing.assert_allclose(y, y1[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gx, model.backward(np.ones_like(y1))[0], rtol=1e-6, atol=1e-6)
    for g, p in zip(grads, model.parameters()):
        np.testing.assert_allclose(g, p.grad, rtol=1e-5, atol=1e-5)
