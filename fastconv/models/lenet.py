"""LeNet-5 (LeCun et al. 1998) for 32x32 single-channel input, in its common modern form: ReLU for the squashing
functions and 2x2 max pooling for the subsampling layers, C5 as a fully connected 400 -> 120 layer.

    features:   conv 6@5x5 -> ReLU -> maxpool 2 -> conv 16@5x5 -> ReLU -> maxpool 2      (1,32,32) -> (16,5,5)
    classifier: linear 400->120 -> ReLU -> linear 120->84 -> ReLU -> linear 84->num_classes
Parameters with 10 classes: 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706.
"""

from __future__ import annotations

from typing import Any

from .. import nn


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: Any) -> Any:
        return self.classifier(nn.flatten(self.features(x), 1))


def lenet5(num_classes: int = 10) -> LeNet5:
    """LeNet-5 for (N, 1, 32, 32) input."""
    return LeNet5(num_classes)
