"""fastconv.optim: SGD with PyTorch's exact update rule, and a step learning-rate schedule.

torch.optim.SGD, for each parameter p with gradient g (in this order):
    g = g + weight_decay * p
    momentum:  buf = g on the first step, else buf = momentum * buf + (1 - dampening) * g
               g = g + momentum * buf (nesterov)  or  g = buf
    p = p - lr * g
Updates are in place, in the parameter's dtype and array kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .nn.module import Parameter


def _check_real(fn: str, name: str, v: Any) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
        raise ValueError(f"{fn}: '{name}' must be a number >= 0, got {v!r}")
    return float(v)


class SGD:
    """Stochastic gradient descent: SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)."""

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("SGD: got an empty parameter list")
        bad = [type(p).__name__ for p in self.params if not isinstance(p, Parameter)]
        if bad:
            raise TypeError(f"SGD: 'params' must be fastconv.nn.Parameter objects, got {bad[0]}")
        self.lr = _check_real("SGD", "lr", lr)
        self.momentum = _check_real("SGD", "momentum", momentum)
        self.dampening = _check_real("SGD", "dampening", dampening)
        self.weight_decay = _check_real("SGD", "weight_decay", weight_decay)
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        self.nesterov = bool(nesterov)
        self._buffers: list[Any] = [None] * len(self.params)

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            if self.momentum:
                buf = self._buffers[i]
                if buf is None:
                    buf = self._buffers[i] = g.copy()
                else:
                    buf *= self.momentum
                    buf += (1 - self.dampening) * g
                g = g + self.momentum * buf if self.nesterov else buf
            p.data -= self.lr * g

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


class StepLR:
    """Multiply the optimizer's learning rate by `gamma` every `step_size` calls of `step()` (once per epoch), as
    torch.optim.lr_scheduler.StepLR: lr = initial_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: SGD, step_size: int, gamma: float = 0.1) -> None:
        if not isinstance(step_size, int) or isinstance(step_size, bool) or step_size < 1:
            raise ValueError(f"StepLR: 'step_size' must be an int >= 1, got {step_size!r}")
        self.optimizer, self.step_size = optimizer, step_size
        self.gamma = _check_real("StepLR", "gamma", gamma)
        self.base_lr, self.epoch = optimizer.lr, 0

    def step(self) -> None:
        self.epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)

    def get_last_lr(self) -> float:
        return self.optimizer.lr
