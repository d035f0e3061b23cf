"""DenseNet (Huang et al. 2016), with torchvision's structure and state_dict keys.

    features: conv0 7x7/2 -> norm0 -> relu0 -> pool0 3x3/2, then dense blocks separated by transitions
              (batch norm -> ReLU -> 1x1 conv halving the channels -> 2x2/2 average pool), then norm5
    head:     ReLU -> global average pool -> flatten -> classifier
Each dense layer reads the concatenation of every earlier feature map of its block and adds `growth_rate`
channels: batch norm -> ReLU -> 1x1 conv (bn_size * growth_rate) -> batch norm -> ReLU -> 3x3 conv (growth_rate).
Initialisation as torchvision: convs kaiming_normal_ (fan_in, gain sqrt 2), batch norms 1 / 0, classifier bias 0.
"""

from __future__ import annotations

from typing import Any

from .. import nn
from ..nn import init


class _DenseLayer(nn.Module):
    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else None

    def forward(self, features: list[Any]) -> Any:
        """`features`: every earlier feature map of the block, concatenated here."""
        bottleneck = self.conv1(self.relu1(self.norm1(nn.cat(features, 1))))
        out = self.conv2(self.relu2(self.norm2(bottleneck)))
        return out if self.dropout is None else self.dropout(out)


class _DenseBlock(nn.Module):
    def __init__(
        self, num_layers: int, num_input_features: int, bn_size: int, growth_rate: int, drop_rate: float
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = _DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size, drop_rate)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: Any) -> Any:
        features = [x]
        for layer in self.children():
            features.append(layer(features))
        return nn.cat(features, 1)


class _Transition(nn.Sequential):
    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__(
            {
                "norm": nn.BatchNorm2d(num_input_features),
                "relu": nn.ReLU(inplace=True),
                "conv": nn.Conv2d(num_input_features, num_output_features, 1, bias=False),
                "pool": nn.AvgPool2d(2, 2),
            }
        )


class DenseNet(nn.Module):
    def __init__(
        self,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        stem = {
            "conv0": nn.Conv2d(3, num_init_features, 7, 2, 3, bias=False),
            "norm0": nn.BatchNorm2d(num_init_features),
            "relu0": nn.ReLU(inplace=True),
            "pool0": nn.MaxPool2d(3, 2, 1),
        }
        self.features = nn.Sequential(stem)
        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(
                f"denseblock{i + 1}", _DenseBlock(num_layers, channels, bn_size, growth_rate, drop_rate)
            )
            channels += num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", _Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                init.constant_(m.weight, 1.0)
                init.constant_(m.bias, 0.0)
            elif isinstance(m, nn.Linear):
                init.constant_(m.bias, 0.0)

    def forward(self, x: Any) -> Any:
        return self.classifier(nn.flatten(self.avgpool(self.relu(self.features(x))), 1))


def densenet121(num_classes: int = 1000, **kw: Any) -> DenseNet:
    """DenseNet-121: growth 32, blocks (6, 12, 24, 16); 7,978,856 parameters."""
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes, **kw)


def densenet161(num_classes: int = 1000, **kw: Any) -> DenseNet:
    """DenseNet-161: growth 48, blocks (6, 12, 36, 24), 96 initial features; 28,681,000 parameters."""
    return DenseNet(48, (6, 12, 36, 24), 96, num_classes=num_classes, **kw)


def densenet169(num_classes: int = 1000, **kw: Any) -> DenseNet:
    """DenseNet-169: growth 32, blocks (6, 12, 32, 32); 14,149,480 parameters."""
    return DenseNet(32, (6, 12, 32, 32), 64, num_classes=num_classes, **kw)


def densenet201(num_classes: int = 1000, **kw: Any) -> DenseNet:
    """DenseNet-201: growth 32, blocks (6, 12, 48, 32); 20,013,928 parameters."""
    return DenseNet(32, (6, 12, 48, 32), 64, num_classes=num_classes, **kw)
