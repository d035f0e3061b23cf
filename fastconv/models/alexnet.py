"""AlexNet and its 2013 refinement ZFNet.

alexnet: torchvision's single-tower variant (from "One weird trick", Krizhevsky 2014): 64/192/384/256/256 conv
    widths, no response normalisation, adaptive pool to 6x6; 61,100,840 parameters; PyTorch's default init.
alexnet_paper: the 2012 network (Krizhevsky, Sutskever & Hinton), whose two GPUs are expressed as groups=2 on
    conv2, conv4 and conv5 (the layers whose kernels saw only their own GPU's half of the previous layer):
        (3,227,227) conv1 96@11x11/4 -> ReLU -> LRN -> maxpool 3/2     -> (96,27,27)
        conv2 256@5x5 pad 2, groups 2 -> ReLU -> LRN -> maxpool 3/2     -> (256,13,13)
        conv3 384@3x3 pad 1 -> ReLU; conv4 384@3x3 pad 1, groups 2 -> ReLU; conv5 256@3x3 pad 1, groups 2 -> ReLU
        maxpool 3/2 -> (256,6,6) -> fc 9216->4096 -> fc 4096->4096 (ReLU, dropout 0.5 after each) -> fc 4096->1000
    LRN: size 5, alpha 1e-4, beta 0.75, k 2. 60,965,224 parameters. Input 227x227 (the paper's "224" does not
    tile: (224 - 11) / 4 is not an integer). Init as the paper: weights N(0, 0.01); biases 1 in conv2, conv4,
    conv5 and the hidden fully connected layers (fc6, fc7), 0 elsewhere.
zfnet: Zeiler & Fergus 2013, AlexNet with a 7x7/2 first layer and a 5x5/2 second one (one tower, no groups):
        (3,224,224) conv1 96@7x7/2 pad 1 -> ReLU -> maxpool 3/2 -> LRN  -> (96,55,55)
        conv2 256@5x5/2 -> ReLU -> maxpool 3/2 -> LRN                   -> (256,13,13)
        conv3 384, conv4 384, conv5 256 (3x3 pad 1, ReLU) -> maxpool 3/2 -> (256,6,6) -> the AlexNet classifier
    Pools in ceil mode (Caffe's rounding), which gives the paper's 55 and 13; 62,357,608 parameters; the paper's
    init: weights N(0, 0.01), biases 0.
"""

from __future__ import annotations

from typing import Any

from .. import nn
from ..nn import init


class AlexNet(nn.Module):
    """features -> [avgpool] -> flatten -> classifier (the structure, and state_dict keys, of all three)."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential, avgpool: nn.Module | None = None):
        super().__init__()
        self.features = features
        self.avgpool = avgpool
        self.classifier = classifier

    def forward(self, x: Any) -> Any:
        x = self.features(x)
        if self.avgpool is not None:
            x = self.avgpool(x)
        return self.classifier(nn.flatten(x, 1))


def _classifier(in_features: int, num_classes: int, dropout: float) -> nn.Sequential:
    """fc6 -> ReLU -> dropout -> fc7 -> ReLU -> dropout -> fc8, as the 2012 paper."""
    return nn.Sequential(
        nn.Linear(in_features, 4096),
        nn.ReLU(True),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(True),
        nn.Dropout(dropout),
        nn.Linear(4096, num_classes),
    )


def _init_gaussian(model: nn.Module, bias_one: tuple[nn.Module, ...] = ()) -> None:
    """Weights N(0, 0.01); biases 1 for the layers in `bias_one`, 0 for the others."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            init.normal_(m.weight, 0.0, 0.01)
            init.constant_(m.bias, 1.0 if any(m is b for b in bias_one) else 0.0)


def alexnet(num_classes: int = 1000, dropout: float = 0.5) -> AlexNet:
    """torchvision's AlexNet for (N, 3, 224, 224) input (any size >= 63 works: the pool is adaptive)."""
    features = nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2),
        nn.ReLU(True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(True),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(True),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(True),
        nn.MaxPool2d(3, 2),
    )
    classifier = nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(256 * 6 * 6, 4096),
        nn.ReLU(True),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(True),
        nn.Linear(4096, num_classes),
    )
    return AlexNet(features, classifier, nn.AdaptiveAvgPool2d((6, 6)))


def _lrn() -> nn.LocalResponseNorm:
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)


def alexnet_paper(num_classes: int = 1000, dropout: float = 0.5) -> AlexNet:
    """The 2012 two-GPU AlexNet as one network with groups=2, for (N, 3, 227, 227) input."""
    conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
    conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
    conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
    features = nn.Sequential(
        nn.Conv2d(3, 96, 11, 4),
        nn.ReLU(True),
        _lrn(),
        nn.MaxPool2d(3, 2),
        conv2,
        nn.ReLU(True),
        _lrn(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1),
        nn.ReLU(True),
        conv4,
        nn.ReLU(True),
        conv5,
        nn.ReLU(True),
        nn.MaxPool2d(3, 2),
    )
    classifier = _classifier(256 * 6 * 6, num_classes, dropout)
    model = AlexNet(features, classifier)
    _init_gaussian(model, bias_one=(conv2, conv4, conv5, classifier[0], classifier[3]))  # [0], [3]: fc6, fc7
    return model


def zfnet(num_classes: int = 1000, dropout: float = 0.5) -> AlexNet:
    """ZFNet (Zeiler & Fergus 2013) for (N, 3, 224, 224) input."""
    features = nn.Sequential(
        nn.Conv2d(3, 96, 7, 2, 1),
        nn.ReLU(True),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        _lrn(),
        nn.Conv2d(96, 256, 5, 2),
        nn.ReLU(True),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        _lrn(),
        nn.Conv2d(256, 384, 3, padding=1),
        nn.ReLU(True),
        nn.Conv2d(384, 384, 3, padding=1),
        nn.ReLU(True),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(True),
        nn.MaxPool2d(3, 2, ceil_mode=True),
    )
    model = AlexNet(features, _classifier(256 * 6 * 6, num_classes, dropout))
    _init_gaussian(model)
    return model
