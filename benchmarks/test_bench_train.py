"""One LeNet-5 training step (batch 32, 32x32 digits, float32: forward, loss, backward, SGD) per CPU backend.

Checked first: the step's loss equals the float64 NumPy reference's on the same weights and batch.
    pytest benchmarks/test_bench_train.py --benchmark-only
"""

import numpy as np
import pytest

import fastconv as fc
import fastconv.nn as nn
from fastconv.models import lenet5
from fastconv.optim import SGD
from fastconv.train import prepare_digits, train_step

(X, Y), _ = prepare_digits(0.2, seed=0, dtype=np.float32, kind="numpy")


def _step_setup(backend, dtype):
    nn.manual_seed(0)
    model = lenet5().to(dtype).to(backend)
    return model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.02, momentum=0.9)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_lenet5_train_step(benchmark, backend):
    status = fc.backends().get(backend)
    if status is None or not status.available:
        pytest.skip(f"backend {backend!r} not available here")
    x, y = X[:32], Y[:32]
    ref = train_step(*_step_setup("numpy", np.float64), x.astype(np.float64), y)
    model, loss_fn, opt = _step_setup(backend, np.float32)
    assert train_step(model, loss_fn, opt, x, y) == pytest.approx(ref, rel=1e-5)
    benchmark(train_step, model, loss_fn, opt, x, y)
