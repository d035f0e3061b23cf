"""Parameter initialisers with PyTorch's formulas (torch.nn.init), drawn from one seeded NumPy generator.

Every random draw of fastconv.nn (initial weights, dropout masks) comes from `default_generator()` unless a
generator is passed, so `fastconv.nn.manual_seed(0)` before building and training a model makes the whole run
reproducible, and identical on every backend (values are drawn on the host, then moved). Values are drawn in
float64 and stored in the parameter's dtype and array kind. Inside `with no_init():` every initialiser leaves
its parameter as it is (zeros, batch-norm weights one), for a model whose weights are loaded or never read
(fastconv.summary): building VGG-16 then draws no 138 M random numbers.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..arrays import array_kind, array_module
from .module import Parameter

_GENERATOR = [np.random.default_rng(0)]
_SKIP: contextvars.ContextVar[bool] = contextvars.ContextVar("fastconv_no_init", default=False)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the generator behind every fastconv.nn random draw; returns it."""
    _GENERATOR[0] = np.random.default_rng(seed)
    return _GENERATOR[0]


def default_generator() -> np.random.Generator:
    return _GENERATOR[0]


@contextlib.contextmanager
def no_init() -> Iterator[None]:
    """Within it, initialisers draw nothing and leave parameters unchanged."""
    token = _SKIP.set(True)
    try:
        yield
    finally:
        _SKIP.reset(token)


def _fill(p: Parameter, draw: Callable[[], np.ndarray]) -> Parameter:
    """p.data = draw(), unless inside no_init()."""
    if _SKIP.get():
        return p
    xp = array_module(array_kind(p.data))
    p.data = xp.asarray(draw().astype(p.data.dtype))
    return p


def fans(shape: tuple) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight (out, in, *kernel), as torch.nn.init: in/out times the kernel size."""
    if len(shape) < 2:
        raise ValueError(f"fans: a weight needs at least 2 dimensions to have fans, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def gain(nonlinearity: str, a: float = 0.0) -> float:
    """torch.nn.init.calculate_gain for the nonlinearities the models use."""
    gains = {
        "linear": 1.0,
        "conv2d": 1.0,
        "sigmoid": 1.0,
        "tanh": 5.0 / 3,
        "relu": math.sqrt(2.0),
        "leaky_relu": math.sqrt(2.0 / (1 + a * a)),
    }
    if nonlinearity not in gains:
        raise ValueError(f"gain: unknown nonlinearity {nonlinearity!r}; known: {', '.join(gains)}")
    return gains[nonlinearity]


def _kaiming_std(p: Parameter, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: 'mode' must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fans(p.shape)[0 if mode == "fan_in" else 1]
    return gain(nonlinearity, a) / math.sqrt(fan)


def uniform_(
    p: Parameter, low: float = 0.0, high: float = 1.0, generator: np.random.Generator | None = None
) -> Parameter:
    return _fill(p, lambda: (generator or default_generator()).uniform(low, high, p.shape))


def normal_(
    p: Parameter, mean: float = 0.0, std: float = 1.0, generator: np.random.Generator | None = None
) -> Parameter:
    return _fill(p, lambda: (generator or default_generator()).normal(mean, std, p.shape))


def trunc_normal_(
    p: Parameter,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: np.random.Generator | None = None,
) -> Parameter:
    """Normal(mean, std) restricted to [a, b] (absolute bounds, as torch), by redrawing what falls outside."""

    def draw() -> np.ndarray:
        gen = generator or default_generator()
        values = gen.normal(mean, std, p.shape)
        outside = (values < a) | (values > b)
        while outside.any():
            values[outside] = gen.normal(mean, std, int(outside.sum()))
            outside = (values < a) | (values > b)
        return values

    return _fill(p, draw)


def constant_(p: Parameter, value: float) -> Parameter:
    return _fill(p, lambda: np.full(p.shape, value))


def xavier_uniform_(p: Parameter, gain: float = 1.0, generator: np.random.Generator | None = None) -> Parameter:
    """U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out)) (Glorot uniform, Keras's default)."""
    fan_in, fan_out = fans(p.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(p, -bound, bound, generator)


def kaiming_uniform_(
    p: Parameter,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Parameter:
    """U(-bound, bound) with bound = gain * sqrt(3 / fan). PyTorch's default Conv/Linear weight init is
    a = sqrt(5), which gives bound = 1 / sqrt(fan_in)."""
    bound = math.sqrt(3.0) * _kaiming_std(p, a, mode, nonlinearity)
    return uniform_(p, -bound, bound, generator)


def kaiming_normal_(
    p: Parameter,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Parameter:
    """N(0, std) with std = gain / sqrt(fan) (torchvision's ResNets: mode='fan_out', nonlinearity='relu')."""
    return normal_(p, 0.0, _kaiming_std(p, a, mode, nonlinearity), generator)


def default_weight_and_bias(weight: Parameter, bias: Parameter | None) -> None:
    """PyTorch's reset_parameters for Conv*d and Linear: kaiming_uniform_(a=sqrt(5)) on the weight, the bias
    U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(fans(weight.shape)[0])
        uniform_(bias, -bound, bound)


def new_parameter(shape: tuple, value: float = 0.0, dtype: Any = np.float32) -> Parameter:
    """A float32 host parameter filled with `value` (initialisers then overwrite it; zeros are allocated
    lazily by the OS, so a parameter never written costs no memory traffic)."""
    return Parameter(np.zeros(shape, dtype) if value == 0 else np.full(shape, value, dtype))
