"""GoogLeNet / Inception v1 (Szegedy et al. 2014), with torchvision's structure and state_dict keys.

    conv1 7x7/2 (64) -> maxpool1 -> conv2 1x1 (64) -> conv3 3x3 (192) -> maxpool2    (3,224,224) -> (192,28,28)
    inception3a, 3b -> maxpool3 -> 4a [aux1] 4b 4c 4d [aux2] 4e -> maxpool4 -> 5a, 5b   -> (1024,7,7)
    avgpool (global) -> flatten -> dropout 0.2 -> fc
Every conv is a BasicConv2d (conv without bias -> batch norm eps 1e-3 -> ReLU). An Inception module runs four
branches on one input and concatenates them: 1x1; 1x1 -> 3x3; 1x1 -> "5x5" (a 3x3, as torchvision's port of the
original weights has it); 3x3/1 max pool -> 1x1. Max pools round up (ceil mode).
The auxiliary heads (aux_logits=True, on by default as in torchvision) run in training mode only: adaptive
average pool to 4x4 -> BasicConv2d 1x1 (128) -> fc 2048->1024 -> ReLU -> dropout 0.7 -> fc; the model then
returns GoogLeNetOutputs(logits, aux_logits2, aux_logits1). transform_input re-normalises ImageNet-normalised
input to the [-1, 1] scaling the original weights expect.
Initialisation as torchvision: convs and linears trunc_normal_(std 0.01, within +-2), batch norms 1 / 0.
6,624,904 parameters without the auxiliary heads, 13,004,888 with them (1000 classes).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import nn
from ..arrays import array_kind, array_module
from ..nn import init


class GoogLeNetOutputs(NamedTuple):
    logits: Any
    aux_logits2: Any
    aux_logits1: Any


class BasicConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, **kw: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=False, **kw)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Any) -> Any:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(
        self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, pool_proj: int
    ) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, 1), BasicConv2d(ch5x5red, ch5x5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(in_channels, pool_proj, 1))

    def forward(self, x: Any) -> Any:
        return nn.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.avgpool = nn.AdaptiveAvgPool2d((4, 4))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Any) -> Any:
        x = nn.flatten(self.conv(self.avgpool(x)), 1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


# Per channel, x * scale + shift maps ImageNet normalisation ((v - mean) / std) to the weights' (v - 0.5) / 0.5.
_MEAN, _STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
_SCALE, _SHIFT = _STD / 0.5, (_MEAN - 0.5) / 0.5


def transform_input(x: Any) -> Any:
    """GoogLeNet's input re-normalisation as one recorded op: y[:, c] = x[:, c] * scale[c] + shift[c];
    its gradient is grad_y[:, c] * scale[c]."""
    xp = array_module(array_kind(x))
    scale = xp.asarray(_SCALE.reshape(1, 3, 1, 1).astype(x.dtype))
    shift = xp.asarray(_SHIFT.reshape(1, 3, 1, 1).astype(x.dtype))
    return nn.apply(lambda a: (a * scale + shift, None), lambda _, g: g * scale, x, name="transform_input")


class GoogLeNet(nn.Module):
    def __init__(
        self,
        num_classes: int = 1000,
        aux_logits: bool = True,
        transform_input: bool = False,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
    ) -> None:
        super().__init__()
        self.aux_logits, self.transform_input = aux_logits, transform_input
        self.conv1 = BasicConv2d(3, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.aux1 = InceptionAux(512, num_classes, dropout_aux) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes, dropout_aux) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                init.trunc_normal_(m.weight, 0.0, 0.01, -2.0, 2.0)
            elif isinstance(m, nn.BatchNorm2d):
                init.constant_(m.weight, 1.0)
                init.constant_(m.bias, 0.0)

    def forward(self, x: Any) -> Any:
        """Logits; in training mode with aux_logits, GoogLeNetOutputs(logits, aux_logits2, aux_logits1)."""
        if self.transform_input:
            x = transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux = self.aux_logits and self.training
        aux1 = self.aux1(x) if aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if aux else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(nn.flatten(self.avgpool(x), 1)))
        return GoogLeNetOutputs(x, aux2, aux1) if aux else x


def googlenet(num_classes: int = 1000, **kw: Any) -> GoogLeNet:
    """GoogLeNet (torchvision's keyword arguments: aux_logits=True, transform_input=False, dropout, dropout_aux)."""
    return GoogLeNet(num_classes, **kw)
