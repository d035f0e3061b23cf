"""The small Keras-style CNN of the course material (a Fashion-MNIST classifier), for (N, 1, 28, 28) input.

    conv 64@7x7 same -> ReLU -> maxpool 2                      -> (64,14,14)
    conv 128@3x3 same -> ReLU -> conv 128@3x3 same -> ReLU -> maxpool 2    -> (128,7,7)
    conv 256@3x3 same -> ReLU -> conv 256@3x3 same -> ReLU -> maxpool 2    -> (256,3,3)
    flatten -> dense 128 -> ReLU -> dropout 0.5 -> dense 64 -> ReLU -> dropout 0.5 -> dense num_classes
1,413,834 parameters with 10 classes. Keras's defaults for initialisation: Glorot-uniform weights, zero biases.
The logits come without the softmax (nn.CrossEntropyLoss takes logits).
"""

from __future__ import annotations

from typing import Any

from .. import nn
from ..nn import init


def _conv(in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel_size, padding="same"), nn.ReLU()]


class SimpleCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv(in_channels, 64, 7),
            nn.MaxPool2d(2),
            *_conv(64, 128, 3),
            *_conv(128, 128, 3),
            nn.MaxPool2d(2),
            *_conv(128, 256, 3),
            *_conv(256, 256, 3),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(256 * 3 * 3, 128),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(64, num_classes),
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                init.xavier_uniform_(m.weight)
                init.constant_(m.bias, 0.0)

    def forward(self, x: Any) -> Any:
        return self.classifier(nn.flatten(self.features(x), 1))


def simple_cnn(num_classes: int = 10, **kw: Any) -> SimpleCNN:
    """The course's Keras CNN for 28x28 single-channel images."""
    return SimpleCNN(num_classes, **kw)
