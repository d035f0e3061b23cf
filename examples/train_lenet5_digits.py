"""Train LeNet-5 on the digits shipped with fastconv: the loop behind `fastconv train lenet5 --dataset digits`.

PYTHONPATH=. python examples/train_lenet5_digits.py [epochs] [backend]
"""

import sys

import numpy as np

import fastconv.nn as nn
from fastconv.models import lenet5
from fastconv.optim import SGD, StepLR
from fastconv.train import evaluate, prepare_digits, train_step

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 8
nn.manual_seed(0)  # weights, dropout: one seed
model = lenet5(num_classes=10)
if len(sys.argv) > 2:
    model.to(sys.argv[2])  # e.g. "numpy", "numba"
(x_train, y_train), test = prepare_digits(test_fraction=0.2, seed=0, dtype=np.float32, kind="numpy")
loss_fn = nn.CrossEntropyLoss()
optimizer = SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
scheduler = StepLR(optimizer, step_size=6, gamma=0.1)
order_rng = np.random.default_rng(0)

for epoch in range(1, epochs + 1):
    order = order_rng.permutation(len(x_train))
    losses = [
        train_step(model, loss_fn, optimizer, x_train[idx], y_train[idx])
        for idx in np.array_split(order, len(order) // 32)
    ]
    scheduler.step()
    print(f"epoch {epoch}: loss {np.mean(losses):.4f}, held-out accuracy {100 * evaluate(model, *test):.2f}%")
