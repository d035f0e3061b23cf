"""The real thing: torchvision's models with random (seeded) weights, exported to a weight file (.pth,
.safetensors and .npz in turn), loaded with fastconv.models.load_weights, and run on the same input.

float32: fastconv reproduces torchvision's outputs in eval mode, and in training mode its outputs and updated
running statistics. Gradients are compared in float64 (input gradient and every parameter gradient of
sum(output * r), against torch autograd): in float32 a whole-network gradient is not determined to float32
precision, because a ReLU input that is zero to within rounding (found in GoogLeNet: one element) sends its
gradient through in one implementation and not in the other, and the training-mode backward of a deep ResNet
amplifies rounding so much that torchvision's own float32 gradients differ from its float64 ones by 3e-2 (input)
to 3e-1 (parameters). float64 leaves neither effect room, so it can show that the backward is the same function.

Marked `torchvision`; skipped where torchvision is not installed (CI). Run them in a venv that has it:
    PYTHONPATH=. /path/to/venv/bin/python -m pytest -m torchvision -s tests/test_torchvision.py
(-s prints each model's max relative errors.) Batch norms get random affine parameters and running statistics,
so eval mode is not an identity there; dropout is set to 0 so training mode is deterministic.
"""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

try:
    import torch
    import torchvision
    from torchvision import models as tvm
except ImportError:  # optional: only in a venv with torchvision
    torchvision = None

import fastconv as fc
import fastconv.nn as nn
from fastconv import models

pytestmark = [
    pytest.mark.torchvision,
    pytest.mark.skipif(torchvision is None, reason="torchvision is not installed (optional check)"),
]

# name -> (input shape, keyword arguments for both constructors)
CASES = {
    "alexnet": ((2, 3, 64, 64), {"dropout": 0.0}),
    "vgg11_bn": ((2, 3, 32, 32), {"dropout": 0.0}),
    "googlenet": ((2, 3, 64, 64), {"aux_logits": True, "transform_input": True, "dropout": 0.0, "dropout_aux": 0.0}),
    "resnet18": ((2, 3, 64, 64), {}),
    "resnet50": ((2, 3, 64, 64), {}),
    "resnext50_32x4d": ((2, 3, 64, 64), {}),
    "densenet121": ((2, 3, 64, 64), {}),
    "squeezenet1_1": ((2, 3, 64, 64), {"dropout": 0.0}),
    "squeezenet1_0": ((2, 3, 64, 64), {"dropout": 0.0}),
}
FORMATS = (".pth", ".safetensors", ".npz")
# Training mode is the ill-conditioned one: torchvision's own float32 ResNet-50 output differs from its float64
# one by 6e-5 in this setting.
TOL = {"eval": 1e-5, "train": 5e-4, "running stats": 5e-4, "grad_x (f64)": 1e-9, "grad_params (f64)": 1e-9}


def _backend() -> str:
    """The backend fastconv's layers ran on: the default for float32 NumPy arrays."""
    x, w = np.zeros((1, 1, 3, 3), np.float32), np.zeros((1, 1, 3, 3), np.float32)
    return fc.select(fc.conv2d, x, w)[0].backend


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != torchvision's {b.shape}"
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def torchvision_model(name, kw):
    torch.manual_seed(0)
    extra = {"init_weights": True} if name == "googlenet" else {}
    model = tvm.get_model(name, weights=None, **kw, **extra)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.1, generator=g)
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
    return model


def export(state, path):
    if path.suffix == ".pth":
        torch.save(state, path)
    elif path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        np.savez(path, **{k: v.numpy() for k, v in state.items()})


def outputs(y):
    return tuple(y) if isinstance(y, tuple) else (y,)


def fastconv_model(name, kw, state=None, path=None):
    with nn.no_init():
        model = models.get_model(name, **kw)
    if path is not None:
        models.load_weights(model, path)
    else:
        model.load_state_dict({k: v.numpy() for k, v in state.items()})
    return model


def float32_errors(name, shape, kw, path):
    """Eval outputs; training-mode outputs and the running statistics after that forward."""
    t_model = torchvision_model(name, kw)
    export(t_model.state_dict(), path)
    model = fastconv_model(name, kw, path=path)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = t_model.eval()(x)
        errors = {"eval": rel_err(model.eval()(x.numpy()), expected)}
        t_out = outputs(t_model.train()(x))
    out = outputs(model.train()(x.numpy()))
    errors["train"] = max(rel_err(o, t) for o, t in zip(out, t_out))
    t_state, state = t_model.state_dict(), model.state_dict()
    errors["running stats"] = max([rel_err(v, t_state[k]) for k, v in state.items() if "running" in k], default=0)
    assert all(int(v) == int(t_state[k]) for k, v in state.items() if "num_batches" in k)
    return errors


def float64_gradient_errors(name, shape, kw):
    """Training mode: input gradient and all parameter gradients (relative to the largest one: conv biases
    ahead of a batch norm have zero gradient)."""
    t_model = torchvision_model(name, kw).double().train()
    model = fastconv_model(name, kw, state=t_model.state_dict()).to(np.float64).train()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64, requires_grad=True)
    t_out = outputs(t_model(x))
    r = [
        torch.randn(o.shape, generator=torch.Generator().manual_seed(3 + i), dtype=torch.float64)
        for i, o in enumerate(t_out)
    ]
    sum((o * ri).sum() for o, ri in zip(t_out, r)).backward()
    model(x.detach().numpy())
    gx = model.backward(tuple(ri.numpy() for ri in r) if len(r) > 1 else r[0].numpy())
    t_params = dict(t_model.named_parameters())
    ours = np.concatenate([p.grad.ravel() for _, p in model.named_parameters()])
    theirs = np.concatenate([t_params[k].grad.numpy().ravel() for k, _ in model.named_parameters()])
    return {"grad_x (f64)": rel_err(gx, x.grad), "grad_params (f64)": rel_err(ours, theirs)}


@pytest.mark.parametrize("name", list(CASES))
def test_fastconv_reproduces_torchvision(name, tmp_path):
    shape, kw = CASES[name]
    path = tmp_path / f"{name}{FORMATS[list(CASES).index(name) % len(FORMATS)]}"
    errors = {**float32_errors(name, shape, kw, path), **float64_gradient_errors(name, shape, kw)}
    print(
        f"\n{name} vs torchvision {torchvision.__version__} (weights via {path.suffix}, {_backend()} backend), "
        "max relative error: " + ", ".join(f"{k} {v:.2e}" for k, v in errors.items())
    )
    assert all(v <= TOL[k] for k, v in errors.items()), errors


@pytest.mark.parametrize(
    "name",
    sorted(
        set(json.loads(gzip.open(Path(__file__).parent / "data" / "torchvision_models.json.gz", "rt").read())["models"])
        - set(CASES)
    ),
)
def test_eval_output_of_every_other_torchvision_model(name):
    """The architectures not covered above, in eval mode (float32, one image, 32x32 for VGG, else 64x64)."""
    kw = {"dropout": 0.0} if name.startswith("vgg") else {}
    t_model = torchvision_model(name, kw).eval()
    model = fastconv_model(name, kw, state=t_model.state_dict()).eval()
    x = torch.randn(
        (1, 3, 32, 32) if name.startswith("vgg") else (1, 3, 64, 64), generator=torch.Generator().manual_seed(2)
    )
    with torch.no_grad():
        err = rel_err(model(x.numpy()), t_model(x))
    print(f"\n{name} eval vs torchvision ({_backend()} backend): max relative error {err:.2e}")
    assert err <= TOL["eval"]


def test_reference_file_is_torchvisions():
    """tests/data/torchvision_models.json.gz (which the default suite compares the models with) equals what
    this torchvision reports (scripts/export_torchvision_reference.py regenerates it)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
    from export_torchvision_reference import NAMES, describe

    stored = json.loads(gzip.open(Path(__file__).parent / "data" / "torchvision_models.json.gz", "rt").read())
    assert sorted(stored["models"]) == sorted(NAMES)
    for name in NAMES:
        assert stored["models"][name] == describe(name), name
