"""SGD and StepLR against torch.optim on the same parameters and gradients (float64), and their argument checks."""

import numpy as np
import pytest
from helpers import requires_torch, torch

from fastconv.nn import Parameter
from fastconv.optim import SGD, StepLR

CONFIGS = [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.9, weight_decay=1e-2),
    dict(momentum=0.8, dampening=0.3, weight_decay=5e-3),
    dict(momentum=0.9, nesterov=True, weight_decay=1e-3),
]


@requires_torch
@pytest.mark.torch
@pytest.mark.parametrize("kw", CONFIGS, ids=[str(c) for c in CONFIGS])
def test_sgd_matches_torch_step_for_step(kw, rng):
    shapes = [(4, 3, 3, 3), (4,), (2, 5)]
    params = [Parameter(rng.standard_normal(s)) for s in shapes]
    t_params = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = SGD(params, lr=0.1, **kw)
    t_opt = torch.optim.SGD(t_params, lr=0.1, **kw)
    for step in range(4):
        for i, (p, tp) in enumerate(zip(params, t_params)):
            g = rng.standard_normal(p.shape)
            p.grad = None if (step == 1 and i == 1) else g  # a parameter without a gradient is skipped
            tp.grad = None if p.grad is None else torch.from_numpy(g.copy())
        opt.step()
        t_opt.step()
        for p, tp in zip(params, t_params):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-13, atol=1e-14)


@requires_torch
@pytest.mark.torch
def test_step_lr_matches_torch():
    opt = SGD([Parameter(np.zeros(2))], lr=0.5)
    t_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.5)
    sched, t_sched = StepLR(opt, step_size=3, gamma=0.2), torch.optim.lr_scheduler.StepLR(t_opt, 3, 0.2)
    for _ in range(10):
        t_opt.step()
        sched.step()
        t_sched.step()
        assert sched.get_last_lr() == pytest.approx(t_sched.get_last_lr()[0], rel=1e-14)


def test_sgd_keeps_dtype_and_array_identity():
    data = np.ones(3, np.float32)
    p = Parameter(data)
    p.grad = np.full(3, 2.0, np.float32)
    opt = SGD([p], lr=0.25, momentum=0.9)
    opt.step()
    opt.step()
    assert p.data is data and p.data.dtype == np.float32
    np.testing.assert_allclose(p.data, 1 - 0.25 * 2 - 0.25 * (0.9 * 2 + 2), rtol=1e-6)
    opt.zero_grad()
    assert p.grad is None


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda p: SGD([], lr=0.1), ValueError, "empty parameter list"),
        (lambda p: SGD([np.ones(2)], lr=0.1), TypeError, "Parameter"),
        (lambda p: SGD(p, lr=-1.0), ValueError, "'lr'"),
        (lambda p: SGD(p, lr=0.1, nesterov=True), ValueError, "nesterov"),
        (lambda p: SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "nesterov"),
        (lambda p: StepLR(SGD(p, lr=0.1), step_size=0), ValueError, "step_size"),
    ],
)
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make([Parameter(np.ones(2))])
