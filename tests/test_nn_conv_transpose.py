"""nn.ConvTranspose2d against torch.nn.ConvTranspose2d loaded with the same state_dict (keys, forward, input and
parameter gradients, unbatched input), its initialisation, its constructor errors, and fastconv.summary's MACs
against torch's flop counter."""

import math

import numpy as np
import pytest
from helpers import requires_torch, torch

import fastconv as fc
import fastconv.nn as nn

CONFIGS = [
    ((4, 6, 3), dict(stride=2, padding=1, output_padding=1)),
    ((4, 6, (2, 3)), dict(stride=(2, 1), groups=2, bias=False)),
    ((6, 3, 3), dict(dilation=2, output_padding=1, groups=3)),
    ((4, 4, 1), dict(stride=3, output_padding=2)),
]
IDS = [str(i) for i in range(len(CONFIGS))]


@requires_torch
@pytest.mark.torch
@pytest.mark.parametrize("args, kw", CONFIGS, ids=IDS)
@pytest.mark.parametrize("unbatched", [False, True])
def test_matches_torch(args, kw, unbatched, rng):
    ours, theirs = nn.ConvTranspose2d(*args, **kw), torch.nn.ConvTranspose2d(*args, **kw)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()
    }
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((args[0], 5, 4) if unbatched else (2, args[0], 5, 4)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = ours.backward(gy)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, getattr(theirs, name).grad.numpy(), rtol=1e-4, atol=1e-4)


def test_initialisation_bounds_as_torch():
    layer = nn.ConvTranspose2d(8, 12, 3, groups=2)  # weight (8, 6, 3, 3): torch's fan-in is 6 * 9
    bound = 1 / math.sqrt(6 * 9)
    w, b = layer.weight.data, layer.bias.data
    assert w.shape == (8, 6, 3, 3) and b.shape == (12,)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(b).max() <= bound


@pytest.mark.parametrize(
    "args, kw, message",
    [
        ((4, 6, 3), dict(groups=4), "groups=4 must divide in_channels=4 and out_channels=6"),
        ((4, 6, 3), dict(stride=2, output_padding=2), "'output_padding' (2, 2) must be smaller than stride"),
        ((4, 6, 3), dict(padding_mode="reflect"), "only padding_mode='zeros'"),
        ((4, 6, 0), {}, "'kernel_size'"),
    ],
)
def test_constructor_errors(args, kw, message):
    with pytest.raises(ValueError) as info:
        nn.ConvTranspose2d(*args, **kw)
    assert str(info.value).startswith("ConvTranspose2d: ") and message in str(info.value)


def test_forward_errors_name_the_op():
    with pytest.raises(ValueError, match=r"conv_transpose2d: 'weight' shape \(4, 6, 3, 3\)"):
        nn.ConvTranspose2d(4, 6, 3)(np.zeros((1, 3, 5, 5), np.float32))


@requires_torch
@pytest.mark.torch
def test_summary_macs_and_params_as_torch():
    from torch.utils.flop_counter import FlopCounterMode

    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1),
        nn.ConvTranspose2d(6, 4, (2, 3), dilation=2, groups=2, bias=False),
    )
    tmodel = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
        torch.nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1),
        torch.nn.ConvTranspose2d(6, 4, (2, 3), dilation=2, groups=2, bias=False),
    )
    shape = (2, 3, 10, 9)
    s = fc.summary(model, shape)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        ty = tmodel(torch.zeros(shape))
    assert s.rows[-1].output_shape == tuple(ty.shape)
    assert [r.params for r in s.rows] == [sum(p.numel() for p in m.parameters()) for m in tmodel]
    assert sum(r.macs for r in s.rows) * 2 == counter.get_total_flops()
