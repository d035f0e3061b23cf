"""Training: `fastconv train lenet5 --dataset digits` and the pieces it is made of (train_step, evaluate, fit).

Mini-batch SGD with momentum and a step learning-rate schedule on a seeded held-out split; one progress bar per
epoch, then the epoch's mean training loss and held-out accuracy. Runs on the default backend or `--backend`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, NamedTuple, TextIO

import numpy as np

from . import datasets, models, nn
from .arrays import array_kind, array_module
from .optim import SGD, StepLR
from .params import ceil_div
from .precision import PRECISIONS, use_precision


class Progress:
    """A one-line text progress bar: redrawn in place on a terminal, drawn once when finished otherwise."""

    def __init__(self, total: int, label: str, stream: TextIO, width: int = 30) -> None:
        self.total, self.label, self.stream, self.width = total, label, stream, width
        self.live = bool(getattr(stream, "isatty", lambda: False)())

    def update(self, done: int, note: str = "") -> None:
        if self.live or done == self.total:
            filled = self.width * done // max(self.total, 1)
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} {note}")
            self.stream.flush()

    def close(self, summary: str) -> None:
        self.stream.write(f" {summary}\n")
        self.stream.flush()


class EpochResult(NamedTuple):
    epoch: int
    loss: float  # mean training loss over the epoch's batches
    accuracy: float  # held-out accuracy after the epoch
    seconds: float


def train_step(model: nn.Module, loss_fn: nn.CrossEntropyLoss, optimizer: SGD, x: Any, y: Any) -> float:
    """One SGD step on the batch (x, y); returns the batch loss."""
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    model.backward(loss_fn.backward(), need_input=False)  # the images need no gradient
    optimizer.step()
    return loss


def evaluate(model: nn.Module, x: Any, y: Any, batch_size: int = 256) -> float:
    """Accuracy of the model's argmax prediction (in eval mode; the previous mode is restored)."""
    was_training = model.training
    model.eval()
    correct = 0
    for lo in range(0, len(x), batch_size):
        logits = model(x[lo : lo + batch_size])
        xp = array_module(array_kind(logits))
        correct += int((logits.argmax(axis=1) == xp.asarray(y[lo : lo + batch_size])).sum())
    model.train(was_training)
    return correct / max(len(x), 1)


def fit(
    model: nn.Module,
    train: tuple[Any, Any],
    test: tuple[Any, Any],
    optimizer: SGD,
    epochs: int,
    batch_size: int,
    scheduler: StepLR | None = None,
    seed: int = 0,
    stream: TextIO | None = None,
) -> list[EpochResult]:
    """Train for `epochs` passes over `train` (shuffled by a generator seeded with `seed`), evaluating on
    `test` after each; prints a progress bar and a summary line per epoch to `stream` (None: silent)."""
    x_train, y_train = train
    order_rng = np.random.default_rng(seed)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    n_batches = ceil_div(len(x_train), batch_size)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        bar = Progress(n_batches, f"epoch {epoch}/{epochs}", stream) if stream else None
        order = order_rng.permutation(len(x_train))
        losses = []
        for b in range(n_batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            losses.append(train_step(model, loss_fn, optimizer, x_train[idx], y_train[idx]))
            if bar:
                bar.update(b + 1, f"loss {np.mean(losses):.4f}")
        if scheduler is not None:
            scheduler.step()
        accuracy = evaluate(model, *test)
        history.append(EpochResult(epoch, float(np.mean(losses)), accuracy, time.perf_counter() - start))
        if bar:
            bar.close(f"held-out accuracy {100 * accuracy:.2f}% ({history[-1].seconds:.1f} s)")
    return history


def prepare_digits(test_fraction: float, seed: int, dtype: Any, kind: str) -> tuple[tuple, tuple]:
    """The 32x32 digits split into ((x_train, y_train), (x_test, y_test)), standardised with the training
    images' mean and standard deviation, in `dtype` and array kind `kind`."""
    images, labels = datasets.load_digits()
    train_idx, test_idx = datasets.split(len(images), test_fraction, seed)
    mean, std = images[train_idx].mean(), images[train_idx].std()
    xp = array_module(kind)

    def part(idx: np.ndarray) -> tuple[Any, Any]:
        return xp.asarray(((images[idx] - mean) / std).astype(dtype)), xp.asarray(labels[idx])

    return part(train_idx), part(test_idx)


def _run(args: argparse.Namespace) -> int:
    nn.manual_seed(args.seed)
    model = models.get_model(args.model, num_classes=10)
    dtype = np.dtype(args.dtype)
    model.to(dtype)
    if args.backend:
        model.to(args.backend)
    kind = array_kind(next(model.parameters()).data)
    train, test = prepare_digits(args.test_fraction, args.seed, dtype, kind)
    optimizer = SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    scheduler = StepLR(optimizer, args.step_size, args.gamma)
    print(
        f"{args.model} on digits: {len(train[0])} training / {len(test[0])} held-out images, "
        f"{sum(p.data.size for p in model.parameters()):,} parameters, {dtype}, backend "
        f"{args.backend or 'default'}, precision {args.precision}"
    )
    start = time.perf_counter()
    with use_precision(args.precision):
        history = fit(model, train, test, optimizer, args.epochs, args.batch_size, scheduler, args.seed, sys.stdout)
    print(
        f"final held-out accuracy {100 * history[-1].accuracy:.2f}% after {args.epochs} epochs "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (LeNet-5 on the bundled digits)")
    p.add_argument("model", choices=models.list_models())
    p.add_argument(
        "--dataset",
        choices=["digits"],
        default="digits",
        help="scikit-learn's 1,797 8x8 digits, shipped with fastconv, as 32x32 images",
    )
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--step-size", type=int, default=6, help="epochs between learning-rate cuts")
    p.add_argument("--gamma", type=float, default=0.1, help="learning-rate factor at each cut")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0, help="seeds the weights, the split and the batch order")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--backend", default=None, help="backend name (default: by array kind)")
    p.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help="compute precision of the convs and linear layers"
    )
    p.set_defaults(run=_run)
