"""conv_transpose2d: the reference against the scatter definition written here, against torch float64 autograd
on a seeded grid of awkward shapes, its gradients by finite differences, plans, and argument errors. (Every
backend against the reference: test_backend_*.py, cases.TRANSPOSE_CASES.)"""

import numpy as np
import pytest
from cases import TRANSPOSE_CASES
from helpers import directional_grad_check, rand, requires_torch, torch

import fastconv as fc

B = dict(backend="numpy")


def scatter_definition(x, w, b, stride, padding, output_padding, groups, dilation):
    """y[n, g*Cog+o, h*s - p + r*d, v*s - p + c*d] += x[n, g*Cig+i, h, v] * w[g*Cig+i, o, r, c], then cropped
    to the output size torch documents (independent of fastconv.params)."""
    (sh, sw), (ph, pw), (oh, ow), (dh, dw) = (
        (v, v) if isinstance(v, int) else v for v in (stride, padding, output_padding, dilation)
    )
    N, C_in, H, W = x.shape
    _, Cog, R, S = w.shape
    Cig = C_in // groups
    Ho = (H - 1) * sh - 2 * ph + dh * (R - 1) + oh + 1
    Wo = (W - 1) * sw - 2 * pw + dw * (S - 1) + ow + 1
    full = np.zeros((N, Cog * groups, (H - 1) * sh + dh * (R - 1) + 1 + oh, (W - 1) * sw + dw * (S - 1) + 1 + ow))
    for g in range(groups):
        xg, wg = x[:, g * Cig : (g + 1) * Cig], w[g * Cig : (g + 1) * Cig]
        for r in range(R):
            for c in range(S):
                contrib = np.einsum("nihv,io->nohv", xg, wg[:, :, r, c])
                rows = slice(r * dh, r * dh + (H - 1) * sh + 1, sh)
                cols = slice(c * dw, c * dw + (W - 1) * sw + 1, sw)
                full[:, g * Cog : (g + 1) * Cog, rows, cols] += contrib
    y = full[:, :, ph : ph + Ho, pw : pw + Wo]
    return y if b is None else y + b[None, :, None, None]


def _kw(case):
    return dict(stride=1, padding=0, output_padding=0, groups=1, dilation=1) | case.kw


NONEMPTY = [c for c in TRANSPOSE_CASES if c.x[0] > 0]


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=[c.id for c in TRANSPOSE_CASES])
def test_reference_is_the_scatter_definition(case, rng):
    kw = _kw(case)
    x, w = rand(rng, case.x), rand(rng, case.w)
    b = rand(rng, (case.w[1] * kw["groups"],)) if case.bias else None
    y = fc.conv_transpose2d(x, w, b, **case.kw, **B)
    np.testing.assert_allclose(y, scatter_definition(x, w, b, **kw), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", NONEMPTY, ids=[c.id for c in NONEMPTY])
def test_gradients_by_finite_differences(case, rng):
    groups = case.kw.get("groups", 1)
    x, w, b = rand(rng, case.x), rand(rng, case.w), rand(rng, (case.w[1] * groups,))
    r = rand(rng, fc.conv_transpose2d(x, w, b, **case.kw, **B).shape)
    gx, gw, gb = fc.conv_transpose2d_backward(r, x, w, **case.kw, **B)
    directional_grad_check(
        lambda x, w, b: float(np.sum(fc.conv_transpose2d(x, w, b, **case.kw, **B) * r)),
        {"x": x, "w": w, "b": b},
        {"x": gx, "w": gw, "b": gb},
        rng,
    )


def _random_case(rng):
    """A random valid call: odd sizes, groups, strides, dilation, output_padding < max(stride, dilation)."""
    groups = int(rng.choice([1, 2, 3]))
    c_in, c_out = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    k = tuple(int(v) for v in rng.integers(1, 5, 2))
    s = tuple(int(v) for v in rng.integers(1, 4, 2))
    d = tuple(int(v) for v in rng.integers(1, 4, 2))
    op = tuple(int(rng.integers(0, max(si, di))) for si, di in zip(s, d))
    hw = tuple(int(v) for v in rng.integers(1, 10, 2))
    while True:
        p = tuple(int(rng.integers(0, 3)) for _ in range(2))
        out = [(n - 1) * si - 2 * pi + di * (ki - 1) + oi + 1 for n, si, pi, di, ki, oi in zip(hw, s, p, d, k, op)]
        if min(out) >= 1:
            break
    kw = dict(stride=s, padding=p, output_padding=op, groups=groups, dilation=d)
    return (int(rng.integers(1, 3)), c_in) + hw, (c_in, c_out // groups) + k, kw


GRID_RNG = np.random.default_rng(11)
GRID = [_random_case(GRID_RNG) for _ in range(40)]


@requires_torch
@pytest.mark.torch
@pytest.mark.parametrize("case", GRID, ids=[str(i) for i in range(len(GRID))])
def test_matches_torch(case, rng):
    import torch.nn.functional as F

    x_shape, w_shape, kw = case
    x, w, b = rand(rng, x_shape), rand(rng, w_shape), rand(rng, (w_shape[1] * kw["groups"],))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = F.conv_transpose2d(tx, tw, tb, **kw)
    y = fc.conv_transpose2d(x, w, b, **kw, **B)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-11, atol=1e-11)
    gy = rand(rng, y.shape)
    ty.backward(torch.tensor(gy))
    for backend in ("numpy", "numba"):
        grads = fc.conv_transpose2d_backward(gy, x, w, **kw, backend=backend)
        for g, t in zip(grads, (tx, tw, tb)):
            np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_unbatched_and_plans(rng):
    x, w, b = rand(rng, (4, 5, 6)), rand(rng, (4, 3, 3, 3)), rand(rng, (3,))
    kw = dict(stride=2, padding=1, output_padding=1)
    y = fc.conv_transpose2d(x, w, b, **kw)
    np.testing.assert_allclose(y, fc.conv_transpose2d(x[None], w, b, **kw, **B)[0], rtol=1e-12, atol=1e-12)
    plan = fc.plan(fc.conv_transpose2d, x, w, b, **kw, need_backward=True)
    assert [s.op for s in plan.selection] == ["conv2d_bwd_data"]
    gx, gw, gb = plan.backward(need_input=False).run(np.ones_like(y), x, w)
    assert gx is None
    _, rw, rb = fc.conv_transpose2d_backward(np.ones((1,) + y.shape), x[None], w, **kw, **B)
    np.testing.assert_allclose(gw, rw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gb, rb, rtol=1e-12, atol=1e-12)
    assert [s.op for s in plan.backward().selection] == ["conv2d", "conv2d_bwd_weight", "conv2d_bwd_bias"]


X, W = np.zeros((2, 4, 5, 5), np.float32), np.zeros((4, 3, 3, 3), np.float32)


@pytest.mark.parametrize(
    "kw, exc, fragments",
    [
        (dict(stride=2, output_padding=2), ValueError, ["'output_padding' (2, 2)", "stride (2, 2)", "dilation"]),
        (dict(output_padding=1), ValueError, ["'output_padding'"]),
        (dict(weight=np.zeros((3, 3, 3, 3), np.float32)), ValueError, ["'weight' shape (3, 3, 3, 3)", "(2, 4, 5, 5)"]),
        (dict(groups=3), ValueError, ["groups=3", "(2, 4, 5, 5)"]),
        (dict(bias=np.zeros(4, np.float32)), ValueError, ["'bias'", "(3,)", "(4,)"]),
        (dict(padding=4), ValueError, ["spatial size (-1, -1)", "padding (4, 4)"]),
        (dict(padding="same"), TypeError, ["'padding'"]),
        (dict(stride=0), ValueError, ["'stride'"]),
        (dict(weight=np.zeros((4, 3, 3), np.float32)), ValueError, ["'weight'", "4-D"]),
        (dict(x=X.astype(np.float64)), TypeError, ["'weight'", "float32", "float64"]),
    ],
)
def test_bad_arguments(kw, exc, fragments):
    args = dict(x=X, weight=W, bias=None) | kw
    with pytest.raises(exc) as info:
        fc.conv_transpose2d(**args)
    message = str(info.value)
    assert message.startswith("conv_transpose2d"), message
    for f in fragments:
        assert f in message, (f, message)


def test_backward_rejects_wrong_grad_out():
    with pytest.raises(ValueError, match=r"conv_transpose2d_backward: 'grad_out' shape \(2, 3, 9, 9\)"):
        fc.conv_transpose2d_backward(np.zeros((2, 3, 9, 9), np.float32), X, W, stride=2)
