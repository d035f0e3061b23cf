"""Regenerate tests/data/torchvision_models.json.gz: for each torchvision model that fastconv.models also has,
its state_dict keys with their shapes (in order) and the parameter count and GMACs torchvision publishes in its
weights' metadata (`num_params`, `_ops`). The default test suite checks fastconv's models against this file,
so it runs without torchvision; tests marked `torchvision` check the file against torchvision itself.

Needs torchvision (a separate venv: pip install torch==2.14.1 torchvision==0.29.1); run from the repository
root: PYTHONPATH=. python scripts/export_torchvision_reference.py
"""

import gzip
import json
import sys
from pathlib import Path

import torch
import torchvision
from torchvision import models as tvm

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "torchvision_models.json.gz"
NAMES = [
    "alexnet",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "googlenet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
    "squeezenet1_0",
    "squeezenet1_1",
]


def describe(name: str) -> dict:
    """Keys/shapes of the model as torchvision builds it without weights (GoogLeNet: with its aux heads)."""
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = tvm.get_model(name, weights=None)
    meta = tvm.get_model_weights(name).DEFAULT.meta
    return {
        "num_params": meta["num_params"],
        "gmacs": meta["_ops"],
        "state_dict": [[k, list(v.shape)] for k, v in model.state_dict().items()],
    }


if __name__ == "__main__":
    reference = {"torchvision": torchvision.__version__, "models": {n: describe(n) for n in NAMES}}
    with gzip.open(OUT, "wt") as f:
        json.dump(reference, f, separators=(",", ":"))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes) from torchvision {torchvision.__version__}", file=sys.stderr)
