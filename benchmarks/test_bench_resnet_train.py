"""One training step of ResNet-18 and ResNet-50 at N=8 (3x224x224, float32: forward in training mode, cross-entropy
loss, backward, SGD with momentum), fastconv on its default backend for NumPy arrays vs torch CPU in both layouts
(NCHW and channels_last), in the same run.

    OMP_WAIT_POLICY=PASSIVE pytest benchmarks/test_bench_resnet_train.py --benchmark-only --benchmark-json=run.json
    python benchmarks/burst_report.py run.json

Checked first, from the same weights and batch: the first step's loss of fastconv equals torch's, and the stem's
conv weight gradient is as close to torch's float64 one as torch's float32 gradient is. Then each implementation
keeps training on its own copy, timed interleaved (benchmarks/interleave.py), one step per turn. Work is reported
as 3x the forward's multiply-adds (the forward and the two gradient GEMMs of each layer).
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

import fastconv as fc
import fastconv.nn as nn
from fastconv import models
from fastconv.optim import SGD
from fastconv.train import train_step

torch = pytest.importorskip("torch")
from interleave import interleaved, stats  # noqa: E402
from torch_twin import torch_twin  # noqa: E402  (needs torch)

N, ROUNDS, PAUSE, LR, MOMENTUM = 8, 3, 0.25, 0.01, 0.9


def _torch_step(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)

    def step() -> float:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return float(loss)

    return step


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_train_step(benchmark, name):
    nn.manual_seed(0)
    model = models.get_model(name).train()
    twin = torch_twin(model).train()
    twin_cl = copy.deepcopy(twin).to(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 3, 224, 224)).astype(np.float32)
    y = rng.integers(0, 1000, N)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    steps = {
        "torch": _torch_step(twin, tx, ty),
        "torch channels_last": _torch_step(twin_cl, tx.contiguous(memory_format=torch.channels_last), ty),
    }
    loss_fn, opt = nn.CrossEntropyLoss(), SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    # The first step of each from the same weights: equal losses, and a stem gradient as close to the float64
    # one as torch's float32 gradient is (a random-init deep net's stem gradient is ill-conditioned in float32:
    # torch's own differs from float64 by ~3e-3 for ResNet-18 and ~2e-2 for ResNet-50, relative L2).
    twin64 = copy.deepcopy(twin).double()
    loss64 = torch.nn.functional.cross_entropy(twin64(tx.double()), ty)
    loss64.backward()
    exact = twin64.conv1.weight.grad.numpy()
    loss = train_step(model, loss_fn, opt, x, y)
    grads = {"fastconv": model.conv1.weight.grad.astype(np.float64)}
    for label, step in steps.items():
        twin_loss = step()
        assert loss == pytest.approx(twin_loss, rel=1e-4), f"{name} {label}: loss {loss} vs {twin_loss}"
        grads[label] = (twin if label == "torch" else twin_cl).conv1.weight.grad.double().numpy()
    err = {k: float(np.linalg.norm(g - exact) / np.linalg.norm(exact)) for k, g in grads.items()}
    assert err["fastconv"] <= 2 * max(err["torch"], err["torch channels_last"]) + 1e-6, f"{name}: stem gradient {err}"

    impls = dict(steps, fastconv=lambda: train_step(model, loss_fn, opt, x, y))
    times = interleaved(benchmark, impls, ROUNDS, 1, PAUSE)
    benchmark.group = "training step"
    benchmark.extra_info.update(
        {
            "model": name,
            "batch": N,
            "step": "train",
            "macs": 3 * fc.summary(model, x.shape).total_macs,
            "stem_grad_rel_err_vs_float64": err,
            "fastconv_backend": fc.select(fc.conv2d, x, model.conv1.weight.data, stride=2, padding=3)[0].backend,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
            "burst": 1,
            "times": {k: stats(ts) for k, ts in times.items()},
        }
    )
