"""SqueezeNet 1.0 and 1.1 (Iandola et al. 2016), with torchvision's structure and state_dict keys.

A Fire module squeezes with a 1x1 conv, then expands with parallel 1x1 and 3x3 convs whose outputs are
concatenated on channels. 1.0: conv 96@7x7/2 stem, pools after fire4 and fire8; 1.1: conv 64@3x3/2 stem, pools
earlier (after fire3 and fire5), 2.4x fewer MACs. Head: dropout -> 1x1 conv to the classes -> ReLU -> global
average pool. Max pools in ceil mode. Initialisation as torchvision: kaiming_uniform_ (fan_in, gain sqrt 2) on
every conv but the last, which is normal(0, 0.01); zero biases.
"""

from __future__ import annotations

from typing import Any

from .. import nn
from ..nn import init


class Fire(nn.Module):
    def __init__(self, inplanes: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: Any) -> Any:
        x = self.squeeze_activation(self.squeeze(x))
        return nn.cat([self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1)


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(3, 2, ceil_mode=True)


class SqueezeNet(nn.Module):
    def __init__(self, version: str = "1_0", num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        if version == "1_0":
            self.features = nn.Sequential(
                nn.Conv2d(3, 96, 7, 2),
                nn.ReLU(True),
                _pool(),
                Fire(96, 16, 64, 64),
                Fire(128, 16, 64, 64),
                Fire(128, 32, 128, 128),
                _pool(),
                Fire(256, 32, 128, 128),
                Fire(256, 48, 192, 192),
                Fire(384, 48, 192, 192),
                Fire(384, 64, 256, 256),
                _pool(),
                Fire(512, 64, 256, 256),
            )
        elif version == "1_1":
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, 3, 2),
                nn.ReLU(True),
                _pool(),
                Fire(64, 16, 64, 64),
                Fire(128, 16, 64, 64),
                _pool(),
                Fire(128, 32, 128, 128),
                Fire(256, 32, 128, 128),
                _pool(),
                Fire(256, 48, 192, 192),
                Fire(384, 48, 192, 192),
                Fire(384, 64, 256, 256),
                Fire(512, 64, 256, 256),
            )
        else:
            raise ValueError(f"SqueezeNet: 'version' must be '1_0' or '1_1', got {version!r}")
        final_conv = nn.Conv2d(512, num_classes, 1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), final_conv, nn.ReLU(True), nn.AdaptiveAvgPool2d((1, 1)))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if m is final_conv:
                    init.normal_(m.weight, 0.0, 0.01)
                else:
                    init.kaiming_uniform_(m.weight)
                init.constant_(m.bias, 0.0)

    def forward(self, x: Any) -> Any:
        return nn.flatten(self.classifier(self.features(x)), 1)


def squeezenet1_0(num_classes: int = 1000, **kw: Any) -> SqueezeNet:
    """SqueezeNet 1.0: 1,248,424 parameters."""
    return SqueezeNet("1_0", num_classes, **kw)


def squeezenet1_1(num_classes: int = 1000, **kw: Any) -> SqueezeNet:
    """SqueezeNet 1.1: 1,235,496 parameters."""
    return SqueezeNet("1_1", num_classes, **kw)
