"""The composite blocks of the reference architectures, written once for both fastconv.nn and torch.nn.

`blocks(nn, add, cat)` returns the block classes built from the given framework's modules, so one definition
serves the finite-difference checks (fastconv) and the autograd cross-check (the same code on torch, with the
fastconv weights loaded by name, which also checks that the state_dict keys are torchvision's). Each follows
torchvision's structure and attribute names: ResNet's BasicBlock and Bottleneck, GoogLeNet's Inception,
DenseNet's _DenseLayer/_DenseBlock, SqueezeNet's Fire.
"""

from types import SimpleNamespace


def blocks(nn, add, cat):  # noqa: C901 - a namespace of small classes
    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)  # used twice per forward, as torchvision does
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(add(self.bn2(self.conv2(out)), identity))

    class Bottleneck(nn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, width=None):
            super().__init__()
            width = width or planes
            self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            return self.relu(add(self.bn3(self.conv3(out)), identity))

    class BasicConv2d(nn.Module):
        def __init__(self, cin, cout, kernel_size, **kw):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, kernel_size, bias=False, **kw)
            self.bn = nn.BatchNorm2d(cout, eps=0.001)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.bn(self.conv(x)))

    class Inception(nn.Module):
        def __init__(self, cin, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
            super().__init__()
            self.branch1 = BasicConv2d(cin, ch1x1, 1)
            self.branch2 = nn.Sequential(BasicConv2d(cin, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1))
            self.branch3 = nn.Sequential(BasicConv2d(cin, ch5x5red, 1), BasicConv2d(ch5x5red, ch5x5, 3, padding=1))
            self.branch4 = nn.Sequential(
                nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), BasicConv2d(cin, pool_proj, 1)
            )

        def forward(self, x):
            return cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)

    class DenseLayer(nn.Module):
        def __init__(self, cin, growth_rate, bn_size):
            super().__init__()
            self.norm1 = nn.BatchNorm2d(cin)
            self.relu1 = nn.ReLU(inplace=True)
            self.conv1 = nn.Conv2d(cin, bn_size * growth_rate, 1, bias=False)
            self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)

        def forward(self, features):  # the list of all earlier feature maps, concatenated here
            bottleneck = self.conv1(self.relu1(self.norm1(cat(features, 1))))
            return self.conv2(self.relu2(self.norm2(bottleneck)))

    class DenseBlock(nn.Module):
        def __init__(self, num_layers, cin, growth_rate, bn_size):
            super().__init__()
            for i in range(num_layers):
                self.add_module(f"denselayer{i + 1}", DenseLayer(cin + i * growth_rate, growth_rate, bn_size))

        def forward(self, x):
            features = [x]
            for layer in self.children():
                features.append(layer(features))
            return cat(features, 1)

    class Fire(nn.Module):
        def __init__(self, cin, squeeze, expand1x1, expand3x3):
            super().__init__()
            self.squeeze = nn.Conv2d(cin, squeeze, 1)
            self.squeeze_activation = nn.ReLU(inplace=True)
            self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
            self.expand1x1_activation = nn.ReLU(inplace=True)
            self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
            self.expand3x3_activation = nn.ReLU(inplace=True)

        def forward(self, x):
            x = self.squeeze_activation(self.squeeze(x))
            return cat([self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1)

    return SimpleNamespace(
        BasicBlock=BasicBlock, Bottleneck=Bottleneck, Inception=Inception, DenseBlock=DenseBlock, Fire=Fire
    )


def projection(nn, cin, cout, stride):
    """ResNet's projection shortcut: 1x1 conv with stride + batch norm (keys downsample.0.*, downsample.1.*)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


# name -> (builder(nn, namespace), input shape (N, C, H, W)); awkward odd sizes, strides that do not tile.
CASES = {
    "basic_block_projection": (lambda nn, b: b.BasicBlock(3, 4, 2, projection(nn, 3, 4, 2)), (2, 3, 7, 7)),
    "bottleneck_grouped": (
        lambda nn, b: b.Bottleneck(5, 2, 2, projection(nn, 5, 8, 2), groups=2, width=4),
        (2, 5, 5, 7),
    ),
    "inception": (lambda nn, b: b.Inception(3, 2, 2, 3, 1, 2, 2), (2, 3, 5, 5)),
    "dense_block": (lambda nn, b: b.DenseBlock(2, 3, 2, 2), (2, 3, 5, 6)),
    "fire": (lambda nn, b: b.Fire(4, 2, 3, 3), (3, 4, 5, 5)),
}
