"""VGG (Simonyan & Zisserman 2014), configurations A, B, D, E as VGG-11/13/16/19, with and without batch norm,
with torchvision's structure and state_dict keys.

    features:   stacks of 3x3 pad-1 convs (each followed by [batch norm and] ReLU), a 2x2/2 max pool after each
                stack                                                               (3,224,224) -> (512,7,7)
    avgpool:    adaptive average pool to 7x7 (an identity at 224x224)
    classifier: linear 25088->4096 -> ReLU -> dropout -> linear 4096->4096 -> ReLU -> dropout -> linear 4096->classes
Initialisation as torchvision: convs kaiming_normal_(fan_out, relu) with zero bias, batch norms 1 / 0,
linears normal(0, 0.01) with zero bias.
"""

from __future__ import annotations

from typing import Any

from .. import nn
from ..nn import init

# Numbers are conv widths, "M" a max pool.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_features(config: list[int | str], batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(channels, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                init.constant_(m.bias, 0.0)
            elif isinstance(m, nn.BatchNorm2d):
                init.constant_(m.weight, 1.0)
                init.constant_(m.bias, 0.0)
            elif isinstance(m, nn.Linear):
                init.normal_(m.weight, 0.0, 0.01)
                init.constant_(m.bias, 0.0)

    def forward(self, x: Any) -> Any:
        return self.classifier(nn.flatten(self.avgpool(self.features(x)), 1))


def _vgg(config: str, batch_norm: bool, num_classes: int, **kw: Any) -> VGG:
    return VGG(make_features(CONFIGS[config], batch_norm), num_classes, **kw)


def vgg11(num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-11 (configuration A): 132,863,336 parameters."""
    return _vgg("A", False, num_classes, **kw)


def vgg11_bn(num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-11 with batch norm: 132,868,840 parameters."""
    return _vgg("A", True, num_classes, **kw)


def vgg13(num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-13 (configuration B): 133,047,848 parameters."""
    return _vgg("B", False, num_classes, **kw)


def vgg13_bn(num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-13 with batch norm: 133,053,736 parameters."""
    return _vgg("B", True, num_classes, **kw)


def vgg16(num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-16 (configuration D): 138,357,544 parameters."""
    return _vgg("D", False, num_classes, **kw)


def vgg16_bn(num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-16 with batch norm: 138,365,992 parameters."""
    return _vgg("D", True, num_classes, **kw)


def vgg19(num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-19 (configuration E): 143,667,240 parameters."""
    return _vgg("E", False, num_classes, **kw)


def vgg19_bn(num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-19 with batch norm: 143,678,248 parameters."""
    return _vgg("E", True, num_classes, **kw)
