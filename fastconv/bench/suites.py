"""Suites: named lists of cases. `quick` is fastconv.bench.cases.QUICK; every model of fastconv.models is a suite of
its own: the distinct conv layers of that architecture, derived by running the model, never typed by hand.

Derivation (DESIGN.md §5 Module contract): build the model with `get_model(name)`, put it in eval mode, run one
image through it while every conv2d the dispatcher runs is recorded with its validated ConvParams, drop
duplicates (same shape, stride, padding, dilation, groups), and name each layer after the conv weight of its shape
in `named_parameters()` order (`resnet50:layer1.0.conv2`). The batch size is then set to the run's batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import dispatch
from ..params import ConvParams
from .cases import ALL_OPS, CONV_OPS, OP_GROUPS, QUICK, Case, ConvProblem

# Input (C, H, W) of the models that do not take ImageNet's 3x224x224.
ARCH_INPUT = {"lenet5": (1, 32, 32), "simple_cnn": (1, 28, 28), "alexnet_paper": (3, 227, 227)}
DEFAULT_INPUT = (3, 224, 224)
MODELS_PENDING = ("architecture suites need fastconv.models (issue 6: reference architectures), which this "
                  "build does not have yet")


def _models() -> Any:
    try:
        from .. import models  # noqa: PLC0415 - optional until the models issue lands
    except ImportError as exc:
        raise LookupError(MODELS_PENDING) from exc
    return models


def arch_names() -> list[str]:
    """The architecture suites available here (empty while fastconv.models does not exist)."""
    try:
        return list(_models().list_models())
    except LookupError:
        return []


@contextlib.contextmanager
def record_convs() -> Iterator[list[ConvParams]]:
    """Within the block, every conv2d that fastconv dispatches appends its ConvParams to the yielded list."""
    seen: list[ConvParams] = []
    original = dispatch.select

    def recording_select(op: str, p: Any, *args: Any, **kwargs: Any) -> dispatch.Impl:
        if op == "conv2d":
            seen.append(p)
        return original(op, p, *args, **kwargs)

    dispatch.select = recording_select
    try:
        yield seen
    finally:
        dispatch.select = original


def conv_layers(model: Any, x: np.ndarray, prefix: str) -> list[tuple[ConvProblem, int]]:
    """The distinct convs one forward pass of `model` on `x` runs, in first-use order, each with how many layers
    share it. Names come from the 4-D '*weight' parameters, matched by shape in order."""
    model.eval()
    with record_convs() as seen:
        model(x)
    weights = [(name.rsplit(".", 1)[0], tuple(param.data.shape)) for name, param in model.named_parameters()
               if name.endswith("weight") and getattr(param.data, "ndim", 0) == 4]
    distinct: dict[ConvParams, list] = {}
    for i, p in enumerate(seen):
        match = next((j for j, (_, shape) in enumerate(weights) if shape == p.w_shape), None)
        name = weights.pop(match)[0] if match is not None else f"conv{i}"
        key = dataclasses.replace(p, N=1)
        if key in distinct:
            distinct[key][1] += 1
        else:
            distinct[key] = [ConvProblem.from_params(f"{prefix}:{name}", p), 1]
    return [(problem, count) for problem, count in distinct.values()]


def arch_problems(name: str, input_chw: tuple[int, int, int] | None = None) -> list[tuple[ConvProblem, int]]:
    """The distinct conv layers of architecture `name` at batch 1, with their multiplicities."""
    models = _models()
    if name not in models.list_models():
        raise LookupError(f"no architecture {name!r} in fastconv.models; it has {', '.join(models.list_models())}")
    chw = input_chw or ARCH_INPUT.get(name, DEFAULT_INPUT)
    return conv_layers(models.get_model(name), np.zeros((1, *chw), np.float32), name)


def suite_names() -> list[str]:
    return ["quick", *arch_names()]


def expand_ops(ops: list[str] | None) -> tuple[str, ...]:
    """`--ops` values (ops or the family names 'pool', 'bn') as ops; None means all."""
    if not ops:
        return ALL_OPS
    unknown = [o for o in ops if o not in OP_GROUPS]
    if unknown:
        raise ValueError(f"unknown op(s) {', '.join(unknown)}; choose from {', '.join(OP_GROUPS)}")
    return tuple(dict.fromkeys(op for o in ops for op in OP_GROUPS[o]))


def suite_cases(name: str, ops: tuple[str, ...] = ALL_OPS,
                input_chw: tuple[int, int, int] | None = None) -> list[Case]:
    """The cases of a suite whose op is in `ops` (an architecture suite has every conv op of every layer)."""
    if name == "quick":
        return [c for c in QUICK if c.op in ops]
    if name not in arch_names():
        if not arch_names():
            raise LookupError(f"unknown suite {name!r}: the only suite here is 'quick'; {MODELS_PENDING}")
        raise LookupError(f"unknown suite {name!r}; suites: {', '.join(suite_names())}")
    return [Case(p, op) for p, _ in arch_problems(name, input_chw) for op in CONV_OPS if op in ops]


def with_batch(cases: list[Case], batch: int | None) -> list[Case]:
    """The cases with every problem's N set to `batch` (None keeps them)."""
    if batch is None:
        return cases
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    return [Case(dataclasses.replace(c.problem, N=batch), c.op) for c in cases]
