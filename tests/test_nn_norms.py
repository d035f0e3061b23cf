"""nn.GroupNorm, nn.LayerNorm and nn.InstanceNorm2d against torch.nn's layers loaded with the same state_dict:
keys, forward, input and parameter gradients, running statistics, eval mode (also inside a training forward)."""

import numpy as np
import pytest
from helpers import requires_torch, torch

import fastconv.nn as nn

pytestmark = [requires_torch, pytest.mark.torch]

LAYERS = [
    ("GroupNorm", (3, 6), {}),
    ("GroupNorm", (2, 6), {"affine": False}),
    ("LayerNorm", ((5, 4),), {}),
    ("LayerNorm", (4,), {"bias": False}),
    ("InstanceNorm2d", (6,), {"affine": True, "track_running_stats": True}),
    ("InstanceNorm2d", (6,), {}),
]


def _pair(name, args, kw, rng):
    ours, theirs = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in ours.state_dict().items():
        if v.dtype.kind == "f":
            v[...] = np.abs(rng.standard_normal(v.shape)) + 0.5 if "var" in k else rng.standard_normal(v.shape)
    theirs.load_state_dict({k: torch.tensor(np.array(v)) for k, v in ours.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("name, args, kw", LAYERS, ids=[f"{n}-{kw}" for n, _, kw in LAYERS])
def test_norm_layer_matches_torch(name, args, kw, rng):
    ours, theirs = _pair(name, args, kw, rng)
    x = rng.standard_normal((2, 6, 5, 4)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = ours.backward(gy)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for p_name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, getattr(theirs, p_name).grad.numpy(), rtol=1e-4, atol=1e-4)
    for b_name, b in ours.named_buffers():
        np.testing.assert_allclose(b, getattr(theirs, b_name).numpy(), rtol=1e-5, atol=1e-6)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_an_eval_instance_norm_inside_a_training_forward_uses_its_running_statistics(rng):
    ours, theirs = _pair("InstanceNorm2d", (6,), {"affine": True, "track_running_stats": True}, rng)
    conv, tconv = nn.Conv2d(3, 6, 3), torch.nn.Conv2d(3, 6, 3)
    tconv.load_state_dict({k: torch.tensor(v) for k, v in conv.state_dict().items()})
    model, tmodel = nn.Sequential(conv, ours), torch.nn.Sequential(tconv, theirs)
    ours.eval(), theirs.eval()  # the rest trains
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    y, ty = model(x), tmodel(tx)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_allclose(
        model.backward(gy), torch.autograd.grad(ty, tx, torch.tensor(gy))[0].numpy(), rtol=1e-4, atol=1e-5
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="GroupNorm: num_groups=4 must divide num_channels=6"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="InstanceNorm2d: expected a 4-D input"):
        nn.InstanceNorm2d(3)(np.ones((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="layer_norm: 'normalized_shape'"):
        nn.LayerNorm(5)(np.ones((2, 4), np.float32))


def test_summary_counts_norm_parameters_as_torch():
    import fastconv as fc

    model = nn.Sequential(
        nn.Conv2d(3, 6, 3), nn.GroupNorm(3, 6), nn.InstanceNorm2d(6, affine=True), nn.LayerNorm((6, 4))
    )
    tmodel = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3),
        torch.nn.GroupNorm(3, 6),
        torch.nn.InstanceNorm2d(6, affine=True),
        torch.nn.LayerNorm((6, 4)),
    )
    s = fc.summary(model, (1, 3, 8, 6))
    assert [r.params for r in s.rows] == [sum(p.numel() for p in m.parameters()) for m in tmodel]
    assert [r.output_shape for r in s.rows] == [(1, 6, 6, 4)] * 4
