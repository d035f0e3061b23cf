"""Each layer against its torch.nn namesake built with the same constructor arguments: forward, input and
parameter gradients, and the buffers afterwards (float64). Plus what torch cannot check: LocalResponseNorm by
finite differences, Dropout's masks, PyTorch's default initialisation bounds, and bad input."""

import math

import numpy as np
import pytest
from helpers import directional_grad_check, requires_torch, torch

import fastconv.nn as nn

# (layer, args, kwargs, input shape, mode): mode 'train', 'eval', or 'frozen' (layer in eval mode inside a root
# in training mode, so its eval-mode backward runs).
LAYERS = [
    ("Conv2d", (3, 4, 3), dict(stride=2, padding=1), (2, 3, 7, 6), "train"),
    (
        "Conv2d",
        (4, 6, (3, 2)),
        dict(dilation=2, groups=2, bias=False, padding=(2, 1), padding_mode="reflect"),
        (1, 4, 9, 7),
        "train",
    ),
    ("Conv1d", (3, 5, 4), dict(stride=2, padding=2), (2, 3, 11), "train"),
    ("BatchNorm2d", (3,), {}, (4, 3, 5, 3), "train"),
    ("BatchNorm2d", (3,), dict(momentum=None, eps=1e-3), (4, 3, 5, 3), "train"),
    ("BatchNorm2d", (3,), dict(affine=False, track_running_stats=False), (4, 3, 5, 3), "train"),
    ("BatchNorm2d", (3,), {}, (2, 3, 4, 5), "eval"),
    ("BatchNorm2d", (3,), {}, (2, 3, 4, 5), "frozen"),
    ("ReLU", (), {}, (2, 3, 4, 5), "train"),
    ("MaxPool2d", (3, 2, 1), dict(ceil_mode=True), (2, 3, 8, 7), "train"),
    ("AvgPool2d", (3, 2, 1), dict(ceil_mode=True, count_include_pad=False), (2, 3, 8, 7), "train"),
    ("AdaptiveAvgPool2d", ((2, 3),), {}, (2, 3, 7, 8), "train"),
    ("Linear", (5, 4), {}, (3, 5), "train"),
    ("Linear", (5, 4), dict(bias=False), (2, 3, 5), "train"),
    ("Flatten", (), {}, (2, 3, 4, 5), "train"),
    ("LocalResponseNorm", (5,), dict(alpha=0.5, beta=0.75, k=2.0), (2, 7, 3, 4), "train"),
    ("LocalResponseNorm", (4,), dict(alpha=1.0, beta=0.6, k=1.5), (2, 6, 5), "train"),
]


@requires_torch
@pytest.mark.torch
@pytest.mark.parametrize("case", LAYERS, ids=[f"{c[0]}{i}_{c[4]}" for i, c in enumerate(LAYERS)])
def test_layer_matches_torch(case, rng):
    name, args, kw, shape, mode = case
    layer = getattr(nn, name)(*args, **kw).to(np.float64)
    t_layer = getattr(torch.nn, name)(*args, **kw).double()
    state = layer.state_dict()
    for k, v in state.items():  # random weights and running statistics, shared by both
        v[...] = rng.uniform(0.5, 1.5, v.shape) if "var" in k else rng.standard_normal(v.shape) if v.ndim else 3
    t_layer.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    if mode != "train":
        layer.eval(), t_layer.eval()
    root = nn.Sequential(layer) if mode == "frozen" else layer

    x = rng.standard_normal(shape)
    tx = torch.tensor(x, requires_grad=True)
    y, ty = root(x), t_layer(tx)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-11, atol=1e-13)
    for k, v in layer.state_dict().items():
        np.testing.assert_allclose(v, t_layer.state_dict()[k].numpy(), rtol=1e-12, err_msg=k)
    if mode == "eval":
        with pytest.raises(RuntimeError, match="nothing to differentiate"):
            root.backward(np.ones_like(y))
        return
    r = rng.standard_normal(y.shape)
    gx = root.backward(r)
    ty.backward(torch.from_numpy(r))
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    t_params = dict(t_layer.named_parameters())
    assert sorted(t_params) == sorted(n for n, _ in layer.named_parameters())
    for n, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, t_params[n].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("size, shape", [(5, (2, 7, 3, 3)), (2, (3, 4, 5))])
def test_local_response_norm_gradient_by_finite_differences(size, shape, rng):
    lrn = nn.LocalResponseNorm(size, alpha=0.7, beta=0.75, k=1.5)
    x, r = rng.standard_normal(shape), rng.standard_normal(shape)
    lrn(x)
    gx = lrn.backward(r)
    directional_grad_check(lambda x: float(np.sum(lrn(x) * r)), {"x": x}, {"x": gx}, rng)


def test_dropout_masks_scaling_seeding_and_eval_identity(rng):
    x = rng.standard_normal((50, 40)).astype(np.float32)
    drop = nn.Dropout(0.3)
    nn.manual_seed(7)
    y = drop(x)
    kept = y != 0
    assert 0.6 < kept.mean() < 0.8, kept.mean()
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6)
    g = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(drop.backward(g), np.where(kept, g / 0.7, 0), rtol=1e-6)
    nn.manual_seed(7)
    assert np.array_equal(drop(x), y), "the same seed drops the same elements"
    assert not np.array_equal(drop(x), y), "the next draw differs"
    own = nn.Dropout(0.3, generator=np.random.default_rng(1))
    assert np.array_equal(own(x) != 0, nn.Dropout(0.3, generator=np.random.default_rng(1))(x) != 0)
    drop.eval()
    assert np.array_equal(drop(x), x) and drop._tape is None
    assert not nn.Dropout(1.0)(x).any() and np.array_equal(nn.Dropout(0.0)(x), x)


@pytest.mark.parametrize(
    "make, fan_in",
    [
        (lambda: nn.Conv2d(6, 40, (3, 5), groups=2), 3 * 15),
        (lambda: nn.Conv1d(4, 40, 7), 28),
        (lambda: nn.Linear(50, 30), 50),
    ],
)
def test_default_init_is_pytorchs_uniform_bound(make, fan_in):
    """PyTorch's reset_parameters: weight and bias uniform in +-1/sqrt(fan_in) (kaiming_uniform_, a=sqrt(5))."""
    nn.manual_seed(3)
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    for p in (layer.weight, layer.bias):
        assert p.data.dtype == np.float32
        assert np.abs(p.data).max() <= bound * (1 + 1e-6)
        assert np.abs(p.data).max() > 0.8 * bound, "spans the interval"
    nn.manual_seed(3)
    assert np.array_equal(make().weight.data, layer.weight.data), "seeded"


def test_kaiming_normal_fan_out_std_as_torchvision_resnets():
    nn.manual_seed(0)
    conv = nn.Conv2d(16, 64, 3)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    expected = math.sqrt(2 / (64 * 9))
    assert abs(conv.weight.data.std() / expected - 1) < 0.03
    nn.init.trunc_normal_(conv.weight, std=0.5, a=-1.0, b=1.0)
    assert np.abs(conv.weight.data).max() <= 1.0


@pytest.mark.parametrize(
    "make, x, error, match",
    [
        (lambda: nn.Conv2d(3, 4, 3), np.ones((1, 2, 5, 5), np.float32), ValueError, "input channels"),
        (lambda: nn.Conv2d(3, 4, 3), np.ones((1, 3, 5, 5)), TypeError, "float64"),
        (lambda: nn.Linear(4, 2), np.ones((3, 5), np.float32), ValueError, r"in_features=4"),
        (lambda: nn.Linear(4, 2), np.ones((3, 4), np.int64), TypeError, "dtype"),
        (lambda: nn.BatchNorm2d(3), np.ones((2, 3, 4), np.float32), ValueError, "4-D input"),
        (lambda: nn.MaxPool2d(4), np.ones((1, 1, 3, 3), np.float32), ValueError, "kernel"),
        (lambda: nn.LocalResponseNorm(3), np.ones((2, 3), np.float32), ValueError, "LocalResponseNorm"),
    ],
)
def test_bad_input_names_the_layer_and_shapes(make, x, error, match):
    with pytest.raises(error, match=match):
        make()(x)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: nn.Conv2d(3, 4, 3, groups=2), "groups=2"),
        (lambda: nn.Conv2d(3, 4, 0), "kernel_size"),
        (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), "padding_mode"),
        (lambda: nn.Dropout(1.5), "probability"),
        (lambda: nn.MaxPool2d(2, return_indices=True), "return_indices"),
        (lambda: nn.Linear(0, 3), "in_features"),
    ],
)
def test_bad_constructor_arguments(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


@requires_torch
@pytest.mark.torch
@pytest.mark.parametrize("dtype, reduction", [(np.float64, "mean"), (np.float64, "sum"), (np.float32, "mean")])
def test_cross_entropy_matches_torch(dtype, reduction, rng):
    logits = (rng.standard_normal((7, 5)) * 4 + 30).astype(dtype)  # large offsets: the max-shift matters
    labels = rng.integers(0, 5, 7)
    loss = nn.CrossEntropyLoss(reduction)
    value = loss(logits, labels)
    grad = loss.backward()
    t_logits = torch.tensor(logits, requires_grad=True)
    t_value = torch.nn.CrossEntropyLoss(reduction=reduction)(t_logits, torch.from_numpy(labels))
    t_value.backward()
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert isinstance(value, float) and value == pytest.approx(t_value.item(), rel=tol)
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, t_logits.grad.numpy(), rtol=tol, atol=tol)
    with pytest.raises(RuntimeError, match="one backward per call"):
        loss.backward()


@pytest.mark.parametrize(
    "logits, labels, error, match",
    [
        (np.zeros((3, 4)), np.array([0, 4, 1]), ValueError, r"\[0, 4\)"),
        (np.zeros((3, 4)), np.array([0, 1]), ValueError, r"shape \(3,\)"),
        (np.zeros((3, 4)), np.array([0.0, 1.0, 2.0]), ValueError, "integer"),
        (np.zeros(4), np.array([0]), ValueError, "2-D"),
        (np.zeros((3, 4), np.int64), np.array([0, 1, 2]), TypeError, "float32 or float64"),
    ],
)
def test_cross_entropy_rejects_bad_input(logits, labels, error, match):
    with pytest.raises(error, match=match):
        nn.CrossEntropyLoss()(logits, labels)
