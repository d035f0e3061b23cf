"""fastconv.models: reference architectures built from fastconv.nn.

    model = fastconv.models.get_model("resnet50")          # fresh weights; seed with fastconv.nn.manual_seed
    fastconv.models.load_weights(model, "resnet50.safetensors")   # torchvision's state_dict keys
    fastconv.models.list_models()

Where torchvision has the model, the state_dict keys, shapes and initialisation are torchvision's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..nn import Module
from .alexnet import alexnet, alexnet_paper, zfnet
from .densenet import densenet121, densenet161, densenet169, densenet201
from .googlenet import googlenet
from .lenet import lenet5
from .nin import nin
from .resnet import (
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
    resnext101_32x8d,
    wide_resnet50_2,
    wide_resnet101_2,
)
from .simple_cnn import simple_cnn
from .squeezenet import squeezenet1_0, squeezenet1_1
from .vgg import vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from .weights import load_weights, read_weights

_MODELS: dict[str, Callable[..., Module]] = {
    f.__name__: f
    for f in (
        lenet5,
        simple_cnn,
        alexnet,
        alexnet_paper,
        zfnet,
        nin,
        vgg11,
        vgg11_bn,
        vgg13,
        vgg13_bn,
        vgg16,
        vgg16_bn,
        vgg19,
        vgg19_bn,
        googlenet,
        resnet18,
        resnet34,
        resnet50,
        resnet101,
        resnet152,
        resnext50_32x4d,
        resnext101_32x8d,
        wide_resnet50_2,
        wide_resnet101_2,
        densenet121,
        densenet161,
        densenet169,
        densenet201,
        squeezenet1_0,
        squeezenet1_1,
    )
}

# The input each model is designed for, (C, H, W); fastconv.summary and the CLI default to it.
INPUT_SHAPES: dict[str, tuple[int, int, int]] = {
    **{name: (3, 224, 224) for name in _MODELS},
    "lenet5": (1, 32, 32),
    "simple_cnn": (1, 28, 28),
    "alexnet_paper": (3, 227, 227),
}


def list_models() -> list[str]:
    """The names get_model accepts."""
    return sorted(_MODELS)


def get_model(name: str, **kwargs: Any) -> Module:
    """Build the named model with fresh weights (seed with fastconv.nn.manual_seed)."""
    if name not in _MODELS:
        raise ValueError(f"get_model: unknown model {name!r}; available: {', '.join(list_models())}")
    return _MODELS[name](**kwargs)


__all__ = ["INPUT_SHAPES", "get_model", "list_models", "load_weights", "read_weights", *_MODELS]
