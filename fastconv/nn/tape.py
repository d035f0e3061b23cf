"""The define-by-run tape that gives composite modules their backward.

When a module is called from outside any other module's forward (a *root* call) in training mode, a Tape records
every differentiable op that runs inside it: each `apply(forward, backward, *inputs)` becomes one node holding
its backward function, what its forward saved for it, and the slots its inputs came from. `Tape.backward`
replays the nodes in reverse, summing the gradients of arrays that feed several ops (branches, shortcuts).

Arrays are plain NumPy/CuPy arrays, so the tape tells them apart by object identity: while the root forward runs
it maps id(array) -> slot and keeps every registered array alive (ids stay unique); closing the tape drops that
map, so afterwards only what each op chose to save stays in memory, and each node's saved state is released as
soon as backward has used it. Composite forward code must therefore route every array through recorded ops:
layers and the glue in fastconv.nn.ops (add, cat, flatten). An array made by plain NumPy inside a recorded
forward (`x.reshape(...)`, `out += shortcut`) is refused or, for an in-place update, invisible, so use the glue.

An Observer installed with `observe(observer)` watches a forward from inside (fastconv.summary uses one): it is
told when each module call begins and ends, and every op that goes through `apply` runs through its `run`, which
may inspect the op or compute its output some other way (the summary works out shapes without computing).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..arrays import array_kind, check_array, describe

Forward = Callable[..., tuple[Any, Any]]  # (*inputs) -> (output, saved)
Backward = Callable[[Any, Any], Any]  # (saved, grad_output) -> grad of the input, or a tuple of one per input

# None: no root call is running; False: a root call runs without recording (eval mode); else the recording Tape.
_ACTIVE: contextvars.ContextVar[Tape | bool | None] = contextvars.ContextVar("fastconv_tape", default=None)


class Observer:
    """Watches module calls and ops while installed by `observe`; the defaults change nothing."""

    def enter(self, module: Any) -> None:
        """A module's __call__ begins."""

    def exit(self, module: Any) -> None:
        """A module's __call__ ends (also when it raised)."""

    def run(self, name: str, forward: Forward, inputs: tuple) -> tuple[Any, Any]:
        """Run one op recorded through `apply`: returns forward's (output, saved)."""
        return forward(*inputs)


_OBSERVER: contextvars.ContextVar[Observer | None] = contextvars.ContextVar("fastconv_observer", default=None)


@contextlib.contextmanager
def observe(observer: Observer) -> Iterator[Observer]:
    """Install `observer` for the forward passes run inside the with-block."""
    token = _OBSERVER.set(observer)
    try:
        yield observer
    finally:
        _OBSERVER.reset(token)


def current_observer() -> Observer | None:
    return _OBSERVER.get()


@dataclass
class _Node:
    backward: Backward
    saved: Any
    sources: list[int]  # slot of each input
    optional_input_grad: bool = False  # backward takes a third argument, need_input


class Tape:
    """The ops of one root forward call; slots 0..n-1 are the root's array inputs, slot n+k is node k's output."""

    def __init__(self, inputs: tuple) -> None:
        self.n_inputs = 0
        self.nodes: list[_Node] = []
        self._slots: dict[int, int] = {}
        self._alive: list[Any] = []  # keeps registered arrays (and so their ids) alive until close()
        for a in inputs:
            if array_kind(a) is not None:
                self._register(a)
                self.n_inputs += 1
        self._outputs: Any = None  # slot, or tuple of slots (None for an output that is not an array)
        self._output_meta: dict[int, tuple] = {}  # slot -> (shape, dtype, kind) for checking grad_out

    def _register(self, a: Any) -> int:
        slot = len(self._alive)
        self._slots[id(a)] = slot
        self._alive.append(a)
        return slot

    def source(self, a: Any, op: str) -> int:
        """The slot that produced array `a`; refuses arrays this forward did not produce."""
        if array_kind(a) is None:
            raise TypeError(f"{op}: expected a NumPy or CuPy array, got {describe(a)}")
        slot = self._slots.get(id(a))
        if slot is None:
            raise ValueError(
                f"{op}: got a {describe(a)} that no recorded op produced, so its gradient could not flow back. "
                "Inside a module's forward, transform arrays only with layers and fastconv.nn.ops (add, cat, "
                "flatten), not with plain NumPy/CuPy calls"
            )
        return slot

    def push(self, backward: Backward, saved: Any, sources: list[int], output: Any, optional: bool = False) -> None:
        self.nodes.append(_Node(backward, saved, sources, optional))
        self._register(output)

    def close(self, outputs: Any, where: str) -> None:
        """Record which slots the root returned, then drop the id map and the arrays kept alive for it."""

        def slot_of(a: Any) -> int | None:
            if a is None:
                return None
            slot = self.source(a, where)
            self._output_meta[slot] = (tuple(a.shape), a.dtype, array_kind(a))
            return slot

        self._outputs = tuple(slot_of(a) for a in outputs) if isinstance(outputs, (tuple, list)) else slot_of(outputs)
        self._slots, self._alive = {}, []

    def backward(self, seeds: list[tuple[int, Any]], need_input: bool = True) -> Any:
        """Replay the nodes in reverse from `seeds` (see `seed`); returns the gradient of each root array input
        (one array when there is one input; None for an input no output depends on). Without `need_input`, a
        node whose inputs are all root inputs is told that their gradient is not wanted (a layer registered
        with an optional input gradient then skips it) and None is returned."""
        grads: list[Any] = [None] * (self.n_inputs + len(self.nodes))
        for slot, g in seeds:
            grads[slot] = accumulate(grads[slot], g)
        for k in range(len(self.nodes) - 1, -1, -1):
            node, g = self.nodes[k], grads[self.n_inputs + k]
            grads[self.n_inputs + k] = None
            saved, node.saved = node.saved, None  # released as soon as it is used
            if g is None:
                continue
            if node.optional_input_grad:
                wanted = need_input or any(s >= self.n_inputs for s in node.sources)
                in_grads = node.backward(saved, g, wanted)
            else:
                in_grads = node.backward(saved, g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for slot, gi in zip(node.sources, in_grads):
                if gi is not None:
                    grads[slot] = accumulate(grads[slot], gi)
        self.nodes = []
        if not need_input:
            return None
        return grads[0] if self.n_inputs == 1 else tuple(grads[: self.n_inputs])

    def seed(self, grad_out: Any, where: str) -> list[tuple[int, Any]]:
        """(slot, gradient) pairs for the root outputs, checked against what forward returned."""
        if isinstance(self._outputs, tuple):
            if not isinstance(grad_out, (tuple, list)) or len(grad_out) != len(self._outputs):
                raise ValueError(
                    f"{where}: forward returned {len(self._outputs)} outputs, so 'grad_out' must be a "
                    f"tuple of {len(self._outputs)} arrays (None for an unused one), got "
                    f"{describe(grad_out)}"
                )
            pairs = list(zip(self._outputs, grad_out))
        else:
            pairs = [(self._outputs, grad_out)]
        seeds = []
        for slot, g in pairs:
            if g is None or slot is None:
                continue
            shape, dtype, kind = self._output_meta[slot]
            check_array(where, "grad_out", g, None)
            if tuple(g.shape) != shape or g.dtype != dtype or array_kind(g) != kind:
                raise ValueError(
                    f"{where}: 'grad_out' is a {array_kind(g)} {describe(g)}, but the output it "
                    f"belongs to is a {kind} {dtype} array of shape {shape}"
                )
            seeds.append((slot, g))
        return seeds


def accumulate(total: Any, g: Any) -> Any:
    """total + g, where total may be None (nothing yet). Never adds in place: `g` may be shared."""
    return g if total is None else total + g


def apply(
    forward: Forward, backward: Backward, *inputs: Any, name: str = "op", optional_input_grad: bool = False
) -> Any:
    """Run one differentiable op: `forward(*inputs) -> (output, saved)`; when a recording root call is active,
    record it so that the root's backward calls `backward(saved, grad_output)`, which returns the gradient of the
    input (or a tuple, one per input; None where there is none). Outside recording, `saved` is dropped at once.
    `name` names the op in error messages. With `optional_input_grad`, backward is called as
    `backward(saved, grad_output, need_input)` and may return None when need_input is False."""
    tape, observer = _ACTIVE.get(), _OBSERVER.get()
    run = forward if observer is None else (lambda *xs: observer.run(name, forward, xs))
    if not isinstance(tape, Tape):
        return run(*inputs)[0]
    sources = [tape.source(a, name) for a in inputs]
    output, saved = run(*inputs)
    tape.push(backward, saved, sources, output, optional_input_grad)
    return output


def recording() -> bool:
    """True inside a root call that records its ops (a backward will follow)."""
    return isinstance(_ACTIVE.get(), Tape)


def is_root_call() -> bool:
    """True when no module's forward is running: a module called now is a root call."""
    return _ACTIVE.get() is None


def begin_root_call(record: bool, inputs: tuple) -> tuple[Tape | None, contextvars.Token]:
    """Open the scope of one root call: a fresh Tape when recording (training mode), else no tape at all. Returns
    the tape and the token that `end_root_call` takes (a pair of calls, not a context manager: this runs on every
    module call)."""
    tape = Tape(inputs) if record else None
    return tape, _ACTIVE.set(tape if record else False)


def end_root_call(token: contextvars.Token) -> None:
    _ACTIVE.reset(token)
