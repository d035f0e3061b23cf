"""fastconv.models: reference architectures built from fastconv.nn.

    model = fastconv.models.get_model("lenet5", num_classes=10)
    fastconv.models.list_models()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..nn import Module
from .lenet import lenet5

_MODELS: dict[str, Callable[..., Module]] = {"lenet5": lenet5}


def list_models() -> list[str]:
    """The names get_model accepts."""
    return sorted(_MODELS)


def get_model(name: str, **kwargs: Any) -> Module:
    """Build the named model with fresh weights (seed with fastconv.nn.manual_seed)."""
    if name not in _MODELS:
        raise ValueError(f"get_model: unknown model {name!r}; available: {', '.join(list_models())}")
    return _MODELS[name](**kwargs)


__all__ = ["get_model", "lenet5", "list_models"]
