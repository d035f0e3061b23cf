"""Whole-model forward: ResNet-18 and ResNet-50 at N=1 and N=8 (3x224x224, float32, eval mode), fastconv on its
default backend for NumPy arrays vs torch CPU, in the same run.

    OMP_WAIT_POLICY=PASSIVE pytest benchmarks/test_bench_models.py --benchmark-only --benchmark-json=run.json

Checked first: fastconv's logits equal those of the torch twin (benchmarks/torch_twin.py: the same network and
weights on torch.nn) to float32 tolerance. Timed interleaved, as benchmarks/test_numba_cpu.py: one benchmark round
runs each implementation once, in an order that rotates every round, with a short pause before each, so that load
from other processes hits all of them alike; per-implementation median, IQR and min go to extra_info. Each timing
is a burst of BURST forwards back to back, as in an inference loop (reported per forward): there one forward's
thread pools are still awake when the next one starts. Implementations: torch; fastconv (every layer,
the classifier's Linear included, on fastconv's own kernels: no BLAS call). OpenMP runtimes
(numba's `omp` threading layer, torch) spin while waiting by default, which on a loaded machine stalls them
badly; OMP_WAIT_POLICY=PASSIVE avoids that for both (recorded in extra_info).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import fastconv as fc
import fastconv.nn as nn
from fastconv import models

torch = pytest.importorskip("torch")
from torch_twin import torch_twin  # noqa: E402  (needs torch)

ROUNDS = {1: 9, 8: 4}
BURST = 4  # forwards per timing
PAUSE = 0.25  # s before each timed burst: the previous one's thread pools stop spinning


def _stats(ts: list[float]) -> dict:
    q1, med, q3 = np.percentile(ts, [25, 50, 75])
    return {"median_s": float(med), "iqr_s": float(q3 - q1), "min_s": float(min(ts)), "rounds": len(ts)}


def _implementations(model: nn.Module, twin: torch.nn.Module, x: np.ndarray) -> dict:
    tx = torch.from_numpy(x)

    def torch_forward():
        with torch.no_grad():
            for _ in range(BURST):
                twin(tx)

    def fastconv_forward():
        for _ in range(BURST):
            model(x)

    return {"torch": torch_forward, "fastconv": fastconv_forward}


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

    fns = _implementations(model, twin, x)
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)

    def one_round():
        for k in order:
            time.sleep(PAUSE)
            t = time.perf_counter()
            fns[k]()
            times[k].append((time.perf_counter() - t) / BURST)
        order.append(order.pop(0))

    benchmark.pedantic(one_round, rounds=ROUNDS[n], warmup_rounds=1)
    conv = fc.select(fc.conv2d, x, model.conv1.weight.data, stride=2, padding=3)[0]
    benchmark.group = "whole-model forward"
    benchmark.extra_info.update({
        "model": name, "batch": n, "macs": fc.summary(model, x.shape).total_macs, "rel_err_vs_torch": err,
        "fastconv_backend": conv.backend,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"), "burst": BURST,
        "times": {k: _stats(ts[1:]) for k, ts in times.items()},  # the first call of each is the warm-up
    })
