"""fastconv.nn: PyTorch-like layers with forward and backward over the fastconv kernels.

    import fastconv.nn as nn
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 14 * 14, 10))
    logits = model(x)                       # training mode: the forward is recorded
    loss = nn.CrossEntropyLoss(); value = loss(logits, labels)
    model.backward(loss.backward())         # fills each parameter's .grad

Composite modules write only a forward, combining layers with `add`, `cat` and `flatten`; their backward comes
from the tape (fastconv.nn.tape). `apply(forward, backward, *inputs)` records a custom differentiable op.
"""

from .array_layers import Dropout, Flatten, LocalResponseNorm
from .init import manual_seed, no_init
from .layers import AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv1d, Conv2d, Linear, MaxPool2d, ReLU
from .loss import CrossEntropyLoss
from .module import Layer, LoadResult, Module, Parameter, Sequential
from .norm_layers import GroupNorm, InstanceNorm2d, LayerNorm
from .ops import add, cat, flatten
from .tape import apply
from .transpose_layers import ConvTranspose2d

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm2d",
    "GroupNorm",
    "InstanceNorm2d",
    "LayerNorm",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Layer",
    "Linear",
    "LoadResult",
    "LocalResponseNorm",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "add",
    "apply",
    "cat",
    "flatten",
    "manual_seed",
    "no_init",
]
