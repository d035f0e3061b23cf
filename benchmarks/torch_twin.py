"""The torch.nn twin of a fastconv ResNet, for the torch CPU baseline of test_bench_models.py (torchvision is not
in the main venv). `torch_twin(model)` rebuilds the module tree with torch layers of the same configuration and
copies every parameter and buffer; blocks and the network get torchvision's forward. The benchmark checks the
twin's output against fastconv's before timing either."""

from __future__ import annotations

import numpy as np
import torch

import fastconv.nn as nn
from fastconv.models.resnet import BasicBlock, Bottleneck, ResNet


class _Twin(torch.nn.Module):
    def __init__(self, source: nn.Module) -> None:
        super().__init__()
        for name, child in source.named_children():
            self.add_module(name, torch_twin(child))


class _Block(_Twin):
    """BasicBlock (conv1/bn1, conv2/bn2) or Bottleneck (+ conv3/bn3): conv-bn-relu pairs, the last without
    ReLU before the shortcut add."""

    def __init__(self, source: BasicBlock | Bottleneck) -> None:
        super().__init__(source)
        if source.downsample is None:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        pairs = [(self.conv1, self.bn1), (self.conv2, self.bn2)] + (
            [(self.conv3, self.bn3)] if hasattr(self, "conv3") else []
        )
        out = x
        for conv, bn in pairs[:-1]:
            out = self.relu(bn(conv(out)))
        conv, bn = pairs[-1]
        return self.relu(bn(conv(out)) + identity)


class _ResNet(_Twin):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _leaf(m: nn.Module) -> torch.nn.Module:
    if isinstance(m, nn.Conv2d):
        return torch.nn.Conv2d(
            m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups, m.bias is not None
        )
    if isinstance(m, nn.BatchNorm2d):
        return torch.nn.BatchNorm2d(m.num_features, m.eps, m.momentum)
    if isinstance(m, nn.Linear):
        return torch.nn.Linear(m.in_features, m.out_features, m.bias is not None)
    if isinstance(m, nn.ReLU):
        return torch.nn.ReLU(inplace=True)
    if isinstance(m, nn.MaxPool2d):
        return torch.nn.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return torch.nn.AdaptiveAvgPool2d(m.output_size)
    raise TypeError(f"torch_twin: no torch twin for {type(m).__name__}")


def torch_twin(m: nn.Module) -> torch.nn.Module:
    """The torch twin of a fastconv ResNet (or of one of its parts), with the same weights and mode."""
    if isinstance(m, ResNet):
        twin = _ResNet(m)
    elif isinstance(m, (BasicBlock, Bottleneck)):
        twin = _Block(m)
    elif isinstance(m, nn.Sequential):
        twin = torch.nn.Sequential(*(torch_twin(c) for c in m))
    else:
        twin = _leaf(m)
    if isinstance(m, ResNet):  # the root copies every array once
        twin.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in m.state_dict().items()}, strict=True)
    return twin.train(m.training)
