"""Whole-model forward: ResNet-18 and ResNet-50 at N=1 and N=8 (3x224x224, float32, eval mode), fastconv on its
default backend for NumPy arrays vs torch CPU, in the same run.

Checked first: fastconv's logits equal the torch twin's (benchmarks/torch_twin.py: the same network and
weights on torch.nn) to float32 tolerance. Each timing is one forward (one warm-up, then 5 rounds at N=1 and 3 at
N=8; compare medians); the machine is shared, so compare fastconv with torch only within one run.
    pytest benchmarks/test_bench_models.py --benchmark-only --benchmark-json=bench_results/<file>.json
"""

import numpy as np
import pytest

import fastconv as fc
import fastconv.nn as nn
from fastconv import models

torch = pytest.importorskip("torch")
from torch_twin import torch_twin  # noqa: E402  (needs torch)

CASES = [(name, n) for name in ("resnet18", "resnet50") for n in (1, 8)]
_MODELS: dict = {}


def _pair(name):
    """(fastconv model, its torch twin), built once per name, seeded, eval mode."""
    if name not in _MODELS:
        nn.manual_seed(0)
        model = models.get_model(name).eval()
        _MODELS[name] = model, torch_twin(model).eval()
    return _MODELS[name]


def _input(n):
    return np.random.default_rng(n).standard_normal((n, 3, 224, 224)).astype(np.float32)


@pytest.mark.parametrize("impl", ["fastconv", "torch"])
@pytest.mark.parametrize("name, n", CASES)
def test_forward(benchmark, name, n, impl):
    model, twin = _pair(name)
    x = _input(n)
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
        got = model(x)
    err = float(np.abs(got - expected).max() / np.abs(expected).max())
    assert err < 1e-4, f"{name} N={n}: fastconv vs torch relative error {err:.2e}"
    conv = fc.select(fc.conv2d, x, model.conv1.weight.data, stride=2, padding=3)[0]
    benchmark.extra_info.update({"model": name, "batch": n, "impl": impl, "rel_err_vs_torch": err,
                                 "fastconv_backend": conv.backend, "torch": torch.__version__,
                                 "torch_threads": torch.get_num_threads()})
    benchmark.group = f"{name} N={n}"
    rounds = 5 if n == 1 else 3
    if impl == "fastconv":
        benchmark.pedantic(model, (x,), rounds=rounds, warmup_rounds=1)
    else:
        with torch.no_grad():
            benchmark.pedantic(twin, (torch.from_numpy(x),), rounds=rounds, warmup_rounds=1)
