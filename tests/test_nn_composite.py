"""Gradients of whole composite blocks, which have no hand-written backward (the tape derives it): ResNet basic
block with projection shortcut, grouped bottleneck, Inception module, dense block (concat of all earlier
features), fire module. Checked by central finite differences in float64 on the numpy backend, and against torch
autograd (the same block code run on torch.nn with the fastconv weights, loaded strictly by name)."""

import numpy as np
import pytest
from helpers import directional_grad_check, requires_torch, torch
from nn_blocks import CASES, blocks

import fastconv.nn as nn

FC_BLOCKS = blocks(nn, nn.add, nn.cat)


def _build(name, seed=0):
    nn.manual_seed(seed)
    build, shape = CASES[name]
    return build(nn, FC_BLOCKS).to(np.float64).to("numpy"), shape


def _set_params(model, values):
    for name, p in model.named_parameters():
        p.data = values[name]


@pytest.mark.parametrize("name", list(CASES))
def test_block_gradients_by_finite_differences(name, rng):
    model, shape = _build(name)
    params = {
        n: rng.standard_normal(p.shape) * 0.5 + (1.0 if ".bn" in n or "norm" in n else 0.0)
        for n, p in model.named_parameters()
    }
    x = rng.standard_normal(shape)
    r = rng.standard_normal(model(x).shape)

    def loss(x, **values):
        _set_params(model, values)
        return float(np.sum(model(x) * r))

    _set_params(model, params)
    model.zero_grad()
    model(x)
    gx = model.backward(r)
    grads = {"x": gx, **{n: p.grad for n, p in model.named_parameters()}}
    directional_grad_check(loss, {"x": x, **params}, grads, rng, n_dirs=2)


def test_frozen_batch_norm_inside_a_training_block_by_finite_differences(rng):
    """A block in training mode whose batch norms are in eval mode (fine-tuning): their backward uses the
    running statistics."""
    model, shape = _build("basic_block_projection")
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
            m.running_mean[...] = rng.standard_normal(m.num_features)
            m.running_var[...] = rng.uniform(0.5, 2.0, m.num_features)
    x = rng.standard_normal(shape)
    r = rng.standard_normal(model(x).shape)
    params = {n: p.data.copy() for n, p in model.named_parameters()}
    model(x)
    gx = model.backward(r)

    def loss(x, **values):
        _set_params(model, values)
        return float(np.sum(model(x) * r))

    directional_grad_check(
        loss, {"x": x, **params}, {"x": gx, **{n: p.grad for n, p in model.named_parameters()}}, rng, n_dirs=2
    )


@requires_torch
@pytest.mark.torch
@pytest.mark.parametrize("name", list(CASES))
def test_block_matches_torch_autograd(name, rng):
    model, shape = _build(name)
    build, _ = CASES[name]
    t_model = build(torch.nn, blocks(torch.nn, torch.add, torch.cat)).double()
    t_model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}, strict=True)
    assert list(model.state_dict()) == list(t_model.state_dict()), "state_dict keys and order are torch's"

    x = rng.standard_normal(shape)
    tx = torch.tensor(x, requires_grad=True)
    y, ty = model(x), t_model(tx)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    r = rng.standard_normal(y.shape)
    gx = model.backward(r)
    ty.backward(torch.from_numpy(r))
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    t_params = dict(t_model.named_parameters())
    for n, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, t_params[n].grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=n)
    t_state = t_model.state_dict()
    for k, v in model.state_dict().items():  # running statistics and num_batches_tracked after one step
        np.testing.assert_allclose(v, t_state[k].numpy(), rtol=1e-12, atol=1e-14, err_msg=k)
    model.eval(), t_model.eval()  # eval mode: running statistics, nothing recorded
    with torch.no_grad():
        np.testing.assert_allclose(model(x), t_model(torch.from_numpy(x)).numpy(), rtol=1e-10, atol=1e-12)
    assert all(m._tape is None for m in model.modules())
