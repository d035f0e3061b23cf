"""Proof that it learns: LeNet-5 on the bundled digits reaches >= 97% held-out accuracy (seeded 20% split) on
the default backend; the same training steps give the same losses on 'numpy' and 'numba'; the CLI, the example
script, the shipped dataset and the model zoo entry."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
import fastconv.nn as nn
from fastconv import cli, datasets, models
from fastconv.optim import SGD, StepLR
from fastconv.train import fit, prepare_digits, train_step

ROOT = Path(__file__).resolve().parents[1]


def test_lenet5_has_61706_parameters_and_maps_32x32_to_10_logits():
    model = models.get_model("lenet5")
    assert sum(p.data.size for p in model.parameters()) == 61_706
    assert model(np.zeros((3, 1, 32, 32), np.float32)).shape == (3, 10)
    assert "lenet5" in models.list_models()
    with pytest.raises(ValueError, match="unknown model 'lenet6'"):
        models.get_model("lenet6")


def test_shipped_digits_are_scikit_learns():
    sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn (the 'data' extra) not installed")
    ref = sklearn_datasets.load_digits()
    images, labels = datasets.load_digits(scale=1, border=0)
    assert images.shape == (1797, 1, 8, 8) and labels.dtype == np.int64
    np.testing.assert_array_equal(images[:, 0] * 16, ref.images)
    np.testing.assert_array_equal(labels, ref.target)


def test_digits_at_32x32_and_the_split():
    images, labels = datasets.load_digits()
    small, _ = datasets.load_digits(scale=1, border=0)
    assert images.shape == (1797, 1, 32, 32) and images.dtype == np.float32
    assert images[:, :, :4].max() == 0 and images[:, :, 28:].max() == 0, "4-pixel empty frame"
    np.testing.assert_array_equal(images[:, :, 4:28:3, 4:28:3], small)
    train, test = datasets.split(1797, 0.2, seed=0)
    assert len(test) == 359 and len(train) == 1438 and not set(train) & set(test)
    assert np.array_equal(datasets.split(1797, 0.2, seed=0)[1], test)
    assert not np.array_equal(datasets.split(1797, 0.2, seed=1)[1], test)
    assert set(np.unique(labels[test])) == set(range(10))
    with pytest.raises(ValueError, match="scale"):
        datasets.load_digits(scale=0)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_lenet5_learns_the_digits(precision):
    """The default settings of `fastconv train lenet5 --dataset digits`, on the default backend; also with every
    conv and linear in bfloat16 (fc.use_precision), as `--precision bf16`."""
    nn.manual_seed(0)
    model = models.lenet5()
    train, test = prepare_digits(0.2, seed=0, dtype=np.float32, kind="numpy")
    opt = SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
    with fc.use_precision(precision):
        history = fit(model, train, test, opt, epochs=8, batch_size=32, scheduler=StepLR(opt, 6, 0.1), seed=0)
    assert history[-1].accuracy >= 0.97, [round(h.accuracy, 4) for h in history]
    assert history[-1].loss < 0.1 < history[0].loss


def _losses(backend, steps=4):
    nn.manual_seed(0)
    model = models.lenet5().to(backend)
    (x, y), _ = prepare_digits(0.2, seed=0, dtype=np.float32, kind="numpy")
    opt = SGD(model.parameters(), lr=0.02, momentum=0.9)
    return [
        train_step(model, nn.CrossEntropyLoss(), opt, x[i * 32 : (i + 1) * 32], y[i * 32 : (i + 1) * 32])
        for i in range(steps)
    ]


def _numba_status():
    status = fc.backends().get("numba")
    return "not registered yet (issue 3)" if status is None else status.reason


@pytest.mark.skipif(bool(_numba_status()), reason=f"numba backend unavailable: {_numba_status()}")
def test_same_training_steps_give_the_same_losses_on_numpy_and_numba():
    np.testing.assert_allclose(_losses("numba"), _losses("numpy"), rtol=1e-4)


def test_cli_train_prints_progress_loss_and_accuracy(capsys):
    assert cli.main(["train", "lenet5", "--dataset", "digits", "--epochs", "1", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "1438 training / 359 held-out images, 61,706 parameters" in out
    assert "epoch 1/1 [##############################] 45/45 loss " in out
    assert "held-out accuracy" in out and "final held-out accuracy" in out


def test_example_script_runs():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_lenet5_digits.py"), "1", "numpy"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    assert out.startswith("epoch 1: loss ") and "held-out accuracy" in out
