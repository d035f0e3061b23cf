"""Suites: named lists of cases. `quick` is fastconv.bench.cases.QUICK; every model of fastconv.models is a suite of
its own: the distinct conv layers of that architecture, derived from the model definition, never typed by hand.

Derivation: `fastconv.summary` walks the model on its design input (models.INPUT_SHAPES) without computing any
convolution and lists each conv with the ConvParams of its call; duplicates (same shape, stride, padding, dilation,
groups) are merged and counted, and each distinct layer is named after its first use (`resnet50:layer1.0.conv2`).
The batch size is then set to the run's batch.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

from .. import models, nn
from ..model_summary import summary
from ..params import ConvParams
from .cases import ALL_OPS, CONV_OPS, OP_GROUPS, QUICK, Case, ConvProblem


def conv_layers(model: Any, input_shape: tuple[int, ...], prefix: str) -> list[tuple[ConvProblem, int]]:
    """The distinct convs of `model` on an input of `input_shape`, in first-use order, each with how many layers
    share it."""
    distinct: dict[ConvParams, list] = {}
    with warnings.catch_warnings():  # a layer whose stride drops input rows is still a layer to benchmark
        warnings.simplefilter("ignore")
        layers = summary(model, input_shape).conv_layers()
    for name, p in layers:
        key = dataclasses.replace(p, N=1)
        if key in distinct:
            distinct[key][1] += 1
        else:
            distinct[key] = [ConvProblem.from_params(f"{prefix}:{name}", p), 1]
    return [(problem, count) for problem, count in distinct.values()]


def arch_problems(name: str, input_chw: tuple[int, int, int] | None = None) -> list[tuple[ConvProblem, int]]:
    """The distinct conv layers of architecture `name` at batch 1, with their multiplicities."""
    if name not in models.list_models():
        raise LookupError(f"no architecture {name!r} in fastconv.models; it has {', '.join(models.list_models())}")
    with nn.no_init():  # the weights play no part in the shapes
        model = models.get_model(name)
    return conv_layers(model, (1, *(input_chw or models.INPUT_SHAPES[name])), name)


def suite_names() -> list[str]:
    return ["quick", *models.list_models()]


def expand_ops(ops: list[str] | None) -> tuple[str, ...]:
    """`--ops` values (ops or the family names 'pool', 'bn') as ops; None means all."""
    if not ops:
        return ALL_OPS
    unknown = [o for o in ops if o not in OP_GROUPS]
    if unknown:
        raise ValueError(f"unknown op(s) {', '.join(unknown)}; choose from {', '.join(OP_GROUPS)}")
    return tuple(dict.fromkeys(op for o in ops for op in OP_GROUPS[o]))


def suite_cases(name: str, ops: tuple[str, ...] = ALL_OPS, input_chw: tuple[int, int, int] | None = None) -> list[Case]:
    """The cases of a suite whose op is in `ops` (an architecture suite has every conv op of every layer)."""
    if name == "quick":
        return [c for c in QUICK if c.op in ops]
    if name not in models.list_models():
        raise LookupError(f"unknown suite {name!r}; suites: {', '.join(suite_names())}")
    return [Case(p, op) for p, _ in arch_problems(name, input_chw) for op in CONV_OPS if op in ops]


def with_batch(cases: list[Case], batch: int | None) -> list[Case]:
    """The cases with every problem's N set to `batch` (None keeps them)."""
    if batch is None:
        return cases
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    return [Case(dataclasses.replace(c.problem, N=batch), c.op) for c in cases]
