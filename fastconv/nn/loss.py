"""CrossEntropyLoss: softmax cross-entropy over class logits, as torch.nn.CrossEntropyLoss (class-index targets)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..arrays import array_kind, array_module, check_array


class CrossEntropyLoss:
    """`loss(logits, labels)` -> the mean (or summed) loss as a float; `loss.backward()` -> d(loss)/d(logits).

    logits (N, C) float, labels (N,) integer class indices in [0, C). With z = logits - max per row,
    loss_i = log(sum_c exp(z_ic)) - z_i,label; the gradient is (softmax(logits) - onehot(label)) / N ('mean').
    Computed in the logits' dtype and array kind (labels are moved to it); one backward per call.
    """

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"CrossEntropyLoss: 'reduction' must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction
        self._saved: tuple[Any, Any] | None = None

    def __call__(self, logits: Any, labels: Any) -> float:
        fn = "CrossEntropyLoss"
        check_array(fn, "logits", logits, 2, "(N, C)")
        xp = array_module(array_kind(logits))
        labels = xp.asarray(labels.get() if array_kind(labels) == "cupy" and xp is np else labels)
        N, C = logits.shape
        if labels.dtype.kind not in "iu" or labels.shape != (N,):
            raise ValueError(
                f"{fn}: 'labels' must be an integer array of shape ({N},) for 'logits' shape "
                f"{(N, C)}, got {labels.dtype} array of shape {tuple(labels.shape)}"
            )
        if N and (int(labels.min()) < 0 or int(labels.max()) >= C):
            raise ValueError(
                f"{fn}: 'labels' must lie in [0, {C}), got values from {int(labels.min())} to {int(labels.max())}"
            )
        z = logits - logits.max(axis=1, keepdims=True)
        e = xp.exp(z)
        total = e.sum(axis=1, keepdims=True)
        rows = xp.arange(N)
        losses = xp.log(total[:, 0]) - z[rows, labels]
        self._saved = (e / total, labels)
        return float(losses.sum() / (N if self.reduction == "mean" else 1))

    def backward(self) -> Any:
        """Gradient of the last call's loss w.r.t. its logits."""
        if self._saved is None:
            raise RuntimeError("CrossEntropyLoss.backward: call the loss first (one backward per call)")
        probs, labels = self._saved
        self._saved = None
        xp = array_module(array_kind(probs))
        grad = probs
        grad[xp.arange(len(labels)), labels] -= 1
        if self.reduction == "mean":
            grad /= max(len(labels), 1)
        return grad
