"""Network in Network (Lin, Chen & Yan 2013), the ImageNet model of the paper's Caffe release.

Each "mlpconv" block is a spatial conv followed by two 1x1 convs (a small MLP shared across positions), each
with a ReLU; no fully connected layer: the last block outputs one map per class, and a global average pool
turns the maps into the logits.
    (3,224,224) mlpconv 96@11x11/4  -> maxpool 3/2 -> (96,27,27)
                mlpconv 256@5x5 p2  -> maxpool 3/2 -> (256,13,13)
                mlpconv 384@3x3 p1  -> maxpool 3/2 -> dropout 0.5 -> (384,6,6)
                mlpconv 1024@3x3 p1, 1x1 1024, 1x1 num_classes -> global average pool -> (num_classes,)
Max pools round up (ceil mode, Caffe's rounding). 7,595,176 parameters with 1000 classes; PyTorch's default
initialisation (the release's per-layer Gaussians are not part of the architecture).
"""

from __future__ import annotations

from typing import Any

from .. import nn


def mlpconv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    last_channels: int | None = None,
) -> nn.Sequential:
    """conv kxk -> ReLU -> 1x1 -> ReLU -> 1x1 (to last_channels, default out_channels) -> ReLU."""
    last = last_channels or out_channels
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
        nn.ReLU(True),
        nn.Conv2d(out_channels, out_channels, 1),
        nn.ReLU(True),
        nn.Conv2d(out_channels, last, 1),
        nn.ReLU(True),
    )


class NIN(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            mlpconv(3, 96, 11, 4),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            mlpconv(96, 256, 5, padding=2),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            mlpconv(256, 384, 3, padding=1),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Dropout(dropout),
            mlpconv(384, 1024, 3, padding=1, last_channels=num_classes),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x: Any) -> Any:
        return nn.flatten(self.avgpool(self.features(x)), 1)


def nin(num_classes: int = 1000, **kw: Any) -> NIN:
    """Network in Network for (N, 3, 224, 224) input."""
    return NIN(num_classes, **kw)
