"""The reference against torch.nn.functional (forward and autograd gradients) on a seeded grid of awkward shapes:
odd sizes 1-19, non-square kernels 1-5, stride 1-3, dilation 1-3, every padding form and mode, groups 1/2/4 and
depthwise. Skipped when torch is not installed.

Torch's conv2d takes no asymmetric padding, no 'same' with stride > 1 and no padding_mode; the oracle pads
explicitly with F.pad, computing the pads here from DESIGN.md's formula (independently of fastconv.params).
"""

import math

import numpy as np
import pytest
from helpers import requires_torch, torch

import fastconv as fc

pytestmark = [requires_torch, pytest.mark.torch]
if torch is not None:
    import torch.nn.functional as F

B = dict(backend="numpy")
TORCH_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _pads_for_oracle(padding, size, kernel, stride, dilation):
    """((top, bottom), (left, right)) from any padding form, written independently of fastconv.params."""
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        out = []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            total = max((math.ceil(n / s) - 1) * s + d * (k - 1) + 1 - n, 0)
            out.append((total // 2, total - total // 2))
        return tuple(out)
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if isinstance(padding[0], int):
        return ((padding[0], padding[0]), (padding[1], padding[1]))
    return tuple(tuple(p) for p in padding)


def _random_conv_case(rng):
    while True:
        kind = rng.choice(["dense", "g2", "g4", "depthwise"])
        groups = {"dense": 1, "g2": 2, "g4": 4}.get(kind)
        if kind == "depthwise":
            C = int(rng.integers(1, 7))
            groups, K = C, C * int(rng.integers(1, 3))
        else:
            C, K = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
        R, S = (int(v) for v in rng.integers(1, 6, 2))
        stride, dilation = tuple(int(v) for v in rng.integers(1, 4, 2)), tuple(int(v) for v in rng.integers(1, 4, 2))
        H, W = (int(v) for v in rng.integers(1, 20, 2))
        form = rng.choice(["int", "pair", "pairs", "valid", "same"])
        padding = {
            "int": int(rng.integers(0, 4)),
            "pair": tuple(int(v) for v in rng.integers(0, 4, 2)),
            "pairs": tuple(tuple(int(v) for v in rng.integers(0, 4, 2)) for _ in range(2)),
            "valid": "valid",
            "same": "same",
        }[form]
        mode = str(rng.choice(list(TORCH_MODE)))
        pads = _pads_for_oracle(padding, (H, W), (R, S), stride, dilation)
        if mode == "reflect" and any(max(p) >= n for p, n in zip(pads, (H, W))):
            continue
        if mode == "circular" and any(max(p) > n for p, n in zip(pads, (H, W))):
            continue
        if any(n + sum(p) < d * (k - 1) + 1 for n, p, k, d in zip((H, W), pads, (R, S), dilation)):
            continue
        N = int(rng.integers(1, 4))
        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
        return (N, C, H, W), (K, C // groups, R, S), kw, pads


GRID = np.random.default_rng(2024)
CONV_GRID = [_random_conv_case(GRID) for _ in range(160)]


@pytest.mark.parametrize("case", CONV_GRID, ids=[f"{i}" for i in range(len(CONV_GRID))])
def test_conv2d_and_gradients_match_torch(case, rng):
    x_shape, w_shape, kw, pads = case
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    (t, bt), (lf, rt) = pads
    txp = F.pad(tx, (lf, rt, t, bt), mode=TORCH_MODE[kw["padding_mode"]])
    ty = F.conv2d(txp, tw, tb, stride=kw["stride"], dilation=kw["dilation"], groups=kw["groups"])
    y = fc.conv2d(x, w, b, **kw, **B)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(gy))
    grads = fc.conv2d_backward(gy, x, w, **kw, **B)
    for g, tg in zip(grads, (tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(g, tg.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "kw",
    [
        dict(stride=2, padding=1, dilation=2, groups=2),
        dict(padding="same", dilation=3),
        dict(padding=2, padding_mode="circular"),
    ],
)
def test_conv1d_matches_torch(kw, rng):
    x, w = rng.standard_normal((3, 4, 13)), rng.standard_normal((6, 4 // kw.get("groups", 1), 3))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = F.conv1d(F.pad(tx, (2, 2), mode="circular"), tw) if "padding_mode" in kw else F.conv1d(tx, tw, **kw)
    y = fc.conv1d(x, w, **kw, **B)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(gy))
    gx, gw, _ = fc.conv1d_backward(gy, x, w, **kw, **B)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-10, atol=1e-10)


def _random_pool_case(rng, with_dilation):
    while True:
        k = tuple(int(v) for v in rng.integers(1, 6, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        p = tuple(int(rng.integers(0, ki // 2 + 1)) for ki in k)
        d = tuple(int(v) for v in rng.integers(1, 4, 2)) if with_dilation else (1, 1)
        H, W = (int(v) for v in rng.integers(1, 20, 2))
        if any(n + 2 * pi < di * (ki - 1) + 1 - si for n, pi, ki, di, si in zip((H, W), p, k, d, s)):
            continue  # far from any window: nothing to learn; the rest includes windows overhanging the input
        return (int(rng.integers(1, 3)), int(rng.integers(1, 4)), H, W), k, s, p, d, bool(rng.integers(0, 2))


POOL_GRID = np.random.default_rng(7)
MAX_GRID = [_random_pool_case(POOL_GRID, True) for _ in range(80)]
AVG_GRID = [_random_pool_case(POOL_GRID, False) + (bool(POOL_GRID.integers(0, 2)),) for _ in range(80)]


@pytest.mark.parametrize("case", MAX_GRID, ids=[f"{i}" for i in range(len(MAX_GRID))])
def test_max_pool2d_matches_torch(case, rng):
    shape, k, s, p, d, ceil = case
    x = rng.standard_normal(shape)
    tx = torch.tensor(x, requires_grad=True)
    try:
        ty, tidx = F.max_pool2d(tx, k, s, p, d, ceil_mode=ceil, return_indices=True)
    except RuntimeError:  # torch finds no window: fastconv must refuse too
        with pytest.raises(ValueError, match="max_pool2d: kernel"):
            fc.max_pool2d(x, k, s, p, d, ceil_mode=ceil, **B)
        return
    y, idx = fc.max_pool2d(x, k, s, p, d, ceil_mode=ceil, return_indices=True, **B)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    covered = ~np.isneginf(y)  # windows with no input element: torch's index there is unspecified
    np.testing.assert_array_equal(idx[covered], tidx.numpy()[covered])
    gy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(gy * covered))
    np.testing.assert_allclose(
        fc.max_pool2d_backward(gy * covered, x, k, s, p, d, ceil, **B), tx.grad.numpy(), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("case", AVG_GRID, ids=[f"{i}" for i in range(len(AVG_GRID))])
def test_avg_pool2d_matches_torch(case, rng):
    shape, k, s, p, _, ceil, incl = case
    x = rng.standard_normal(shape)
    tx = torch.tensor(x, requires_grad=True)
    try:
        ty = F.avg_pool2d(tx, k, s, p, ceil_mode=ceil, count_include_pad=incl)
    except RuntimeError:  # torch finds no window: fastconv must refuse too
        with pytest.raises(ValueError, match="avg_pool2d: kernel"):
            fc.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=incl, **B)
        return
    y = fc.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=incl, **B)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    gy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(
        fc.avg_pool2d_backward(gy, x, k, s, p, ceil, incl, **B), tx.grad.numpy(), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize(
    "in_hw, out_hw", [((7, 9), (3, 4)), ((5, 4), (7, 6)), ((13, 1), (5, 1)), ((9, 7), (1, 1)), ((6, 11), (6, 11))]
)
def test_adaptive_avg_pool2d_matches_torch(in_hw, out_hw, rng):
    x = rng.standard_normal((2, 3) + in_hw)
    tx = torch.tensor(x, requires_grad=True)
    ty = F.adaptive_avg_pool2d(tx, out_hw)
    np.testing.assert_allclose(fc.adaptive_avg_pool2d(x, out_hw, **B), ty.detach().numpy(), rtol=1e-12)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(fc.adaptive_avg_pool2d_backward(gy, x, out_hw, **B), tx.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("shape", [(4, 3, 5, 7), (3, 5, 9), (6, 4), (2, 3, 1, 1)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(shape, training, rng):
    C = shape[1]
    x, w, b = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(C), rng.standard_normal(C)
    rm, rv = rng.standard_normal(C), rng.random(C) + 0.5
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    ty = F.batch_norm(tx, trm, trv, tw, tb, training=training, momentum=0.2, eps=1e-4)
    y = fc.batch_norm(x, rm, rv, w, b, training=training, momentum=0.2, eps=1e-4, **B)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-12)
    gy = rng.standard_normal(shape)
    ty.backward(torch.tensor(gy))
    grads = fc.batch_norm_backward(
        gy, x, rm if training else trm.numpy(), rv if training else trv.numpy(), w, training, eps=1e-4, **B
    )
    for g, tg in zip(grads, (tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(g, tg.numpy(), rtol=1e-9, atol=1e-10)


def test_relu_matches_torch(rng):
    x = rng.standard_normal((3, 4, 5))
    x[0, 0, :2] = [0.0, np.nan]
    tx = torch.tensor(x, requires_grad=True)
    ty = F.relu(tx)
    y = fc.relu(x, **B)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    gy = rng.standard_normal(x.shape)
    ty.backward(torch.tensor(gy))
    np.testing.assert_array_equal(fc.relu_backward(gy, y, **B), tx.grad.numpy())


NORM_GRID = [
    ("group", (4, 6, 5, 7), 3),
    ("group", (3, 5, 9), 5),
    ("group", (2, 8, 1, 1), 1),
    ("layer", (3, 4, 7), 7),
    ("layer", (2, 3, 5, 4), (5, 4)),
    ("instance", (3, 4, 5, 6), None),
    ("instance", (2, 3, 11), None),
]


@pytest.mark.parametrize("kind, shape, arg", NORM_GRID, ids=[f"{k}-{s}" for k, s, _ in NORM_GRID])
def test_norms_match_torch(kind, shape, arg, rng):
    """Forward, the running statistics of instance norm and every gradient, against torch float64 autograd."""
    x = rng.standard_normal(shape) * 2 + 1
    a_shape = (shape[1],) if kind != "layer" else ((arg,) if isinstance(arg, int) else arg)
    w, b = rng.standard_normal(a_shape), rng.standard_normal(a_shape)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    if kind == "group":
        y, ty = fc.group_norm(x, arg, w, b, eps=1e-4, **B), F.group_norm(tx, arg, tw, tb, eps=1e-4)
    elif kind == "layer":
        norm = (arg,) if isinstance(arg, int) else arg
        y, ty = fc.layer_norm(x, arg, w, b, eps=1e-4, **B), F.layer_norm(tx, norm, tw, tb, eps=1e-4)
    else:
        rm, rv = rng.standard_normal(shape[1]), np.abs(rng.standard_normal(shape[1])) + 0.5
        trm, trv = torch.tensor(rm), torch.tensor(rv)
        y = fc.instance_norm(x, rm, rv, w, b, momentum=0.2, eps=1e-4, **B)
        ty = F.instance_norm(tx, trm, trv, tw, tb, use_input_stats=True, momentum=0.2, eps=1e-4)
        np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-12, atol=1e-12)
        ye = fc.instance_norm(x, rm, rv, w, b, use_input_stats=False, eps=1e-4, **B)
        tye = F.instance_norm(tx, trm, trv, tw, tb, use_input_stats=False, eps=1e-4)
        np.testing.assert_allclose(ye, tye.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(shape)
    expected = torch.autograd.grad(ty, (tx, tw, tb), torch.tensor(gy))
    if kind == "group":
        got = fc.group_norm_backward(gy, x, arg, w, eps=1e-4, **B)
    elif kind == "layer":
        got = fc.layer_norm_backward(gy, x, arg, w, eps=1e-4, **B)
    else:
        got = fc.instance_norm_backward(gy, x, w, eps=1e-4, **B)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-9, atol=1e-9)
