"""ResNet (He et al. 2015) and its widened / grouped variants, with torchvision's structure and state_dict keys.

    stem:   conv1 7x7/2 (64) -> bn1 -> relu -> maxpool 3x3/2                       (3,224,224) -> (64,56,56)
    stages: layer1..layer4 of residual blocks, the first block of layers 2-4 strided 2 with a 1x1 projection
            shortcut (`downsample.0` conv, `downsample.1` batch norm)                 -> (512*e, 7, 7)
    head:   avgpool (global) -> flatten -> fc
BasicBlock (expansion e=1): two 3x3 convs. Bottleneck (e=4): 1x1 reduce -> 3x3 (stride, groups) -> 1x1 expand,
with width = planes * width_per_group/64 * groups (ResNeXt: groups 32; Wide ResNet: width_per_group 128). The
stride sits on the 3x3 conv ("ResNet v1.5"), as torchvision.
Initialisation as torchvision: convs kaiming_normal_(fan_out, relu), batch norms weight 1 / bias 0, fc PyTorch's
default; zero_init_residual zeroes each block's last batch-norm weight.
"""

from __future__ import annotations

from typing import Any

from .. import nn
from ..nn import init


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock: only groups=1 and width_per_group=64 are defined (use a Bottleneck)")
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Any) -> Any:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(nn.add(self.bn2(self.conv2(out)), identity))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Any) -> Any:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(nn.add(self.bn3(self.conv3(out)), identity))


class ResNet(nn.Module):
    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        num_classes: int = 1000,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        self.inplanes, self.groups, self.base_width = 64, groups, width_per_group
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            setattr(self, f"layer{i + 1}", self._make_layer(block, planes, blocks, 1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                init.constant_(m.weight, 1.0)
                init.constant_(m.bias, 0.0)
        if zero_init_residual:
            for m in self.modules():
                last_bn = m.bn3 if isinstance(m, Bottleneck) else m.bn2 if isinstance(m, BasicBlock) else None
                if last_bn is not None:
                    init.constant_(last_bn.weight, 0.0)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, 1, None, self.groups, self.base_width) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Any) -> Any:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(nn.flatten(self.avgpool(x), 1))


def resnet18(num_classes: int = 1000, **kw: Any) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2]; 11,689,512 parameters with 1000 classes."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, **kw)


def resnet34(num_classes: int = 1000, **kw: Any) -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3]; 21,797,672 parameters."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, **kw)


def resnet50(num_classes: int = 1000, **kw: Any) -> ResNet:
    """ResNet-50: bottlenecks [3, 4, 6, 3]; 25,557,032 parameters."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, **kw)


def resnet101(num_classes: int = 1000, **kw: Any) -> ResNet:
    """ResNet-101: bottlenecks [3, 4, 23, 3]; 44,549,160 parameters."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, **kw)


def resnet152(num_classes: int = 1000, **kw: Any) -> ResNet:
    """ResNet-152: bottlenecks [3, 8, 36, 3]; 60,192,808 parameters."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes, **kw)


def resnext50_32x4d(num_classes: int = 1000, **kw: Any) -> ResNet:
    """ResNeXt-50 32x4d: ResNet-50 with 32 groups of width 4 in each 3x3 conv; 25,028,904 parameters."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, groups=32, width_per_group=4, **kw)


def resnext101_32x8d(num_classes: int = 1000, **kw: Any) -> ResNet:
    """ResNeXt-101 32x8d; 88,791,336 parameters."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, groups=32, width_per_group=8, **kw)


def wide_resnet50_2(num_classes: int = 1000, **kw: Any) -> ResNet:
    """Wide ResNet-50-2: bottleneck width doubled (width_per_group 128); 68,883,240 parameters."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, width_per_group=128, **kw)


def wide_resnet101_2(num_classes: int = 1000, **kw: Any) -> ResNet:
    """Wide ResNet-101-2; 126,886,696 parameters."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, width_per_group=128, **kw)
