"""Whole-model forward: ResNet-18 and ResNet-50 at N=1 and N=8 (3x224x224, float32, eval mode), fastconv on its
default backend for NumPy arrays vs torch CPU in both layouts (NCHW and channels_last), in the same run.

    OMP_WAIT_POLICY=PASSIVE pytest benchmarks/test_bench_models.py --benchmark-only --benchmark-json=run.json

Checked first: fastconv's logits equal those of the torch twin (benchmarks/torch_twin.py: the same network and
weights on torch.nn) to float32 tolerance. Timed interleaved (benchmarks/interleave.py: rotating turns, a pause
before each), so that load from other processes hits all of them alike; per-implementation median, IQR and min go
to extra_info. Each timing
is a burst of BURST forwards back to back, as in an inference loop (reported per forward): there one forward's
thread pools are still awake when the next one starts. Implementations: torch NCHW and torch channels_last
(the twin converted with .to(memory_format=torch.channels_last), its input likewise); fastconv (every layer,
the classifier's Linear included, on fastconv's own kernels: no BLAS call). OpenMP runtimes
(numba's `omp` threading layer, torch) spin while waiting by default, which on a loaded machine stalls them
badly; OMP_WAIT_POLICY=PASSIVE avoids that for both (recorded in extra_info).
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

import fastconv as fc
import fastconv.nn as nn
from fastconv import models

torch = pytest.importorskip("torch")
from interleave import interleaved, stats  # noqa: E402
from torch_twin import torch_twin  # noqa: E402  (needs torch)

ROUNDS = {1: 9, 8: 4}
BURST = 4  # forwards per timing
PAUSE = 0.25  # s before each timed burst: the previous one's thread pools stop spinning


def _implementations(model: nn.Module, twin: torch.nn.Module, x: np.ndarray) -> dict:
    """fastconv, and torch in both layouts: NCHW and channels_last (oneDNN's best), the same weights."""
    tx = torch.from_numpy(x)
    twin_cl = copy.deepcopy(twin).to(memory_format=torch.channels_last)
    tx_cl = tx.contiguous(memory_format=torch.channels_last)

    def torch_forward(net, inp):
        def run():
            with torch.no_grad():
                net(inp)

        return run

    return {
        "torch": torch_forward(twin, tx),
        "torch channels_last": torch_forward(twin_cl, tx_cl),
        "fastconv": lambda: model(x),
    }


@pytest.mark.parametrize("n", [1, 8])
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_forward(benchmark, name, n):
    nn.manual_seed(0)
    model = models.get_model(name).eval()
    twin = torch_twin(model).eval()
    x = np.random.default_rng(n).standard_normal((n, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    err = float(np.abs(model(x) - expected).max() / np.abs(expected).max())
    assert err < 1e-4, f"{name} N={n}: fastconv vs torch relative error {err:.2e}"

    times = interleaved(benchmark, _implementations(model, twin, x), ROUNDS[n], BURST, PAUSE)
    conv = fc.select(fc.conv2d, x, model.conv1.weight.data, stride=2, padding=3)[0]
    benchmark.group = "whole-model forward"
    benchmark.extra_info.update(
        {
            "model": name,
            "batch": n,
            "macs": fc.summary(model, x.shape).total_macs,
            "rel_err_vs_torch": err,
            "fastconv_backend": conv.backend,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
            "burst": BURST,
            "times": {k: stats(ts) for k, ts in times.items()},
        }
    )
