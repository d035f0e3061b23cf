"""Weight files: `load_weights(model, path)` reads .npz, .safetensors and .pth/.pt into a model by state_dict key.

Keys are torchvision's (`layer1.0.conv1.weight`, `bn1.running_mean`, ...), so a torchvision state_dict saved
with `numpy.savez`, `safetensors.torch.save_file` or `torch.save` loads as it is. .safetensors needs the
safetensors package (its NumPy API; `pip install fastconv[weights]`); .pth needs torch, read with
`weights_only=True`. Nothing is loaded unless every key fits: the error lists each missing, unexpected and
mis-shaped key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..nn import LoadResult, Module

_SHOWN = 12  # keys listed per kind of problem


def _read_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise ImportError(
            f"load_weights: reading {path!r} needs the safetensors package "
            "(pip install safetensors, or fastconv[weights])"
        ) from None
    return load_file(path)


def _read_torch(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"load_weights: reading {path!r} needs PyTorch (pip install torch); .npz and "
            ".safetensors files need no torch"
        ) from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and set(state) == {"state_dict"}:
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"load_weights: {path!r} does not hold a state_dict (a mapping of names to tensors)")
    out = {}
    for key, t in state.items():
        t = t.detach().cpu()
        out[key] = (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    return out


_READERS = {".npz": _read_npz, ".safetensors": _read_safetensors, ".pth": _read_torch, ".pt": _read_torch}


def read_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a weight file by key, as NumPy arrays (format chosen by the file's extension)."""
    path = os.fspath(path)
    reader = _READERS.get(os.path.splitext(path)[1].lower())
    if reader is None:
        raise ValueError(f"load_weights: cannot tell the format of {path!r}; use one of {', '.join(sorted(_READERS))}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_weights: no such file {path!r}")
    return reader(path)


def _listing(what: str, items: list[str]) -> list[str]:
    if not items:
        return []
    shown = items[:_SHOWN] + ([f"... and {len(items) - _SHOWN} more"] if len(items) > _SHOWN else [])
    return [f"{len(items)} {what}:"] + [f"    {s}" for s in shown]


def check_state(model: Module, state: Mapping[str, Any], strict: bool = True) -> list[str]:
    """The report lines of every key of `state` that does not fit `model` (empty when it loads)."""
    own = {k: tuple(np.shape(v)) for k, v in model.state_dict().items()}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [
        f"{k}: {tuple(np.shape(v))} in the file, {own[k]} in the model"
        for k, v in state.items()
        if k in own and tuple(np.shape(v)) != own[k]
    ]
    lines = _listing("mis-shaped keys", misshaped)
    if strict:
        lines = (
            _listing("missing keys (in the model, not in the file)", missing)
            + _listing("unexpected keys (in the file, not in the model)", unexpected)
            + lines
        )
    return lines


def load_weights(model: Module, path: str | os.PathLike, strict: bool = True) -> LoadResult:
    """Load a .npz, .safetensors or .pth/.pt state_dict into `model` (arrays converted to the model's dtype and
    array kind). With strict=False, missing and unexpected keys are skipped (and returned); a mis-shaped key is
    always an error. Raises ValueError listing every problem, before anything is loaded."""
    state = read_weights(path)
    problems = check_state(model, state, strict)
    if problems:
        raise ValueError(
            f"load_weights: {os.fspath(path)!r} does not fit {type(model).__name__}:\n  " + "\n  ".join(problems)
        )
    return model.load_state_dict(state, strict=strict)
