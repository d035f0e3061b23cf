"""Parameter, Module (the PyTorch-like container), Layer (a module with its own backward) and Sequential.

Naming follows PyTorch exactly, so state_dict keys match torchvision's: a module's own parameters then its
buffers, in registration order, then each child's under "<child name>.", depth first (`layer1.0.conv1.weight`,
`bn1.running_mean`, `bn1.num_batches_tracked`). Children, parameters and buffers register by attribute assignment
(or `add_module` / `register_buffer`), as in PyTorch.

Gradients: calling a module in training mode from outside any forward records its ops on a tape (fastconv.nn.tape);
`module.backward(grad_out)` replays it once and returns the input gradient, accumulating each parameter's `.grad`.
In eval mode nothing is recorded and no backward state is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from .. import dispatch
from ..arrays import FLOAT_DTYPES, array_kind, array_module
from . import tape as _tape


class Parameter:
    """A trainable array (`.data`) and its accumulated gradient (`.grad`, None until a backward reaches it)."""

    __slots__ = ("data", "grad")

    def __init__(self, data: Any) -> None:
        if array_kind(data) is None:
            raise TypeError(f"Parameter: 'data' must be a NumPy or CuPy array, got {type(data).__name__}")
        self.data = data
        self.grad: Any = None

    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    def __repr__(self) -> str:
        return f"Parameter({array_kind(self.data)} {self.data.dtype} {self.shape})"


class LoadResult(NamedTuple):
    """What `load_state_dict(strict=False)` skipped."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer and model: forward via `__call__`, backward via the tape."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        self.training = True
        self.backend: str | None = None  # the fastconv backend its ops run on; None: chosen per call
        self._tape: _tape.Tape | None = None

    # ------------------------------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        registries = self.__dict__.get("_parameters"), self.__dict__.get("_buffers"), self.__dict__.get("_modules")
        params, buffers, modules = registries
        if params is None:
            raise AttributeError(f"{type(self).__name__}: call Module.__init__() before assigning '{name}'")
        if isinstance(value, (Parameter, Module)):
            for registry in registries:
                registry.pop(name, None)
            self.__dict__.pop(name, None)
            (params if isinstance(value, Parameter) else modules)[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: '{name}' is a parameter; assign a Parameter or None, "
                    f"got {type(value).__name__}"
                )
            params[name] = None
        elif name in buffers:
            buffers[name] = value
        elif name in modules:
            raise TypeError(f"{type(self).__name__}: '{name}' is a submodule; assign a Module")
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:  # only reached when normal lookup fails
        for registry in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(registry, {})
            if name in found:
                return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def register_buffer(self, name: str, array: Any) -> None:
        """A non-trainable array saved in the state_dict (running statistics); None reserves the name."""
        if array is not None and array_kind(array) is None:
            raise TypeError(f"register_buffer: '{name}' must be an array or None, got {type(array).__name__}")
        self.__dict__.pop(name, None)
        self._buffers[name] = array

    def add_module(self, name: str, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"add_module: '{name}' must be a Module, got {type(module).__name__}")
        setattr(self, name, module)

    # ------------------------------------------------------------------------------------------ traversal
    def _walk(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name prefix, module) depth first, self first; a module reachable twice is listed twice."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child._walk(f"{prefix}{name}.")

    def named_modules(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for prefix, m in self._walk():
            if id(m) not in seen:
                seen.add(id(m))
                yield prefix.rstrip("."), m

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return iter(self._modules.items())

    def children(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Each parameter once (a shared one under its first name), in state_dict order."""
        seen = set()
        for prefix, m in self._walk():
            for name, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield prefix + name, p

    def parameters(self) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters())

    def named_buffers(self) -> Iterator[tuple[str, Any]]:
        for prefix, m in self._walk():
            for name, b in m._buffers.items():
                if b is not None:
                    yield prefix + name, b

    # ------------------------------------------------------------------------------------------ state
    def _slots(self) -> dict[str, tuple[Module, str, bool]]:
        """state_dict key -> (owning module, attribute, is_parameter), in PyTorch's order."""
        slots = {}
        for prefix, m in self._walk():
            for name, p in m._parameters.items():
                if p is not None:
                    slots[prefix + name] = (m, name, True)
            for name, b in m._buffers.items():
                if b is not None:
                    slots[prefix + name] = (m, name, False)
        return slots

    def state_dict(self) -> dict[str, Any]:
        """Every parameter and buffer array by dotted name (the arrays themselves, not copies)."""
        return {
            key: (m._parameters[a].data if is_param else m._buffers[a])
            for key, (m, a, is_param) in self._slots().items()
        }

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> LoadResult:
        """Copy arrays in by name, converted to each slot's array kind and dtype. A shape mismatch is always an
        error; missing and unexpected keys are one when `strict`. The ValueError lists every problem."""
        slots = self._slots()
        missing = [k for k in slots if k not in state]
        unexpected = [k for k in state if k not in slots]
        mismatched = []
        for key in (k for k in state if k in slots):
            shape, want = tuple(np.shape(state[key])), tuple(np.shape(self._slot_array(slots[key])))
            if shape != want:
                mismatched.append(f"{key}: shape {shape} in the state dict, {want} in the model")
        problems = [f"size mismatch for {m}" for m in mismatched]
        if strict:
            problems += [f"missing key: {k}" for k in missing] + [f"unexpected key: {k}" for k in unexpected]
        if problems:
            raise ValueError(
                f"load_state_dict: {len(problems)} problem(s) loading into {type(self).__name__}:\n  "
                + "\n  ".join(problems)
            )
        for key in (k for k in state if k in slots):
            m, attr, is_param = slots[key]
            old = self._slot_array(slots[key])
            new = array_module(array_kind(old)).asarray(_host_or_same(state[key], old), dtype=old.dtype).copy()
            if is_param:
                m._parameters[attr].data = new
            else:
                m._buffers[attr] = new
        return LoadResult(missing, unexpected)

    @staticmethod
    def _slot_array(slot: tuple[Module, str, bool]) -> Any:
        m, attr, is_param = slot
        return m._parameters[attr].data if is_param else m._buffers[attr]

    # ------------------------------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        """Training mode (batch statistics, dropout, a recorded forward) or, with mode=False, eval mode."""
        for m in self.modules():
            m.training = bool(mode)
            if not mode:
                m._tape = None
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def to(self, target: str | type | np.dtype) -> Module:
        """`to("numba")`, `to("cuda")`, ...: run every op on that backend and move parameters and buffers to its
        array kind (CuPy for "cuda"); `to(np.float64)`: cast parameters, gradients and float buffers."""
        if isinstance(target, str):
            try:
                status = dispatch.backend_status(target)  # loads only that backend
            except KeyError:
                raise ValueError(f"Module.to: unknown backend {target!r}; fastconv.backends() lists them") from None
            if not status.available:
                raise RuntimeError(f"Module.to: backend {target!r} is not available here: {status.reason}")
            convert = lambda a: _to_kind(a, status.array_kind)  # noqa: E731
        else:
            dtype = np.dtype(target)
            if dtype not in FLOAT_DTYPES:
                raise TypeError(f"Module.to: dtype must be float32 or float64, got {dtype}")
            convert = lambda a: a.astype(dtype) if a.dtype.kind == "f" else a  # noqa: E731
        for m in self.modules():
            if isinstance(target, str):
                m.backend = target
            m._tape = None
            for p in m._parameters.values():
                if p is not None:
                    p.data = convert(p.data)
                    p.grad = None if p.grad is None else convert(p.grad)
            for name, b in m._buffers.items():
                m._buffers[name] = None if b is None else convert(b)
        return self

    def __getstate__(self) -> dict:
        """What pickle and copy.deepcopy keep: everything but the per-call state (a pending backward's tape, the
        plan of the last call, fastconv.nn.layers._run), which holds compiled functions and is rebuilt on use."""
        state = self.__dict__.copy()
        state.pop("_plan_memo", None)
        state["_tape"] = None
        return state

    # ------------------------------------------------------------------------------------------ calling
    def __call__(self, *inputs: Any) -> Any:
        observer = _tape.current_observer()
        if observer is None:
            return self._call(inputs)
        observer.enter(self)
        try:
            return self._call(inputs)
        finally:
            observer.exit(self)

    def _call(self, inputs: tuple) -> Any:
        if not _tape.is_root_call():
            return self.forward(*inputs)
        object.__setattr__(self, "_tape", None)  # a plain attribute: skip the registries' __setattr__ per call
        tape, token = _tape.begin_root_call(self.training, inputs)
        try:
            out = self.forward(*inputs)
            if tape is not None:
                tape.close(out, f"{type(self).__name__}.forward")
        finally:
            _tape.end_root_call(token)
        object.__setattr__(self, "_tape", tape)
        return out

    def backward(self, grad_out: Any, need_input: bool = True) -> Any:
        """Gradient of the last training-mode forward: returns d(loss)/d(input) and adds each parameter's
        gradient into `.grad`. grad_out matches the forward's output (a tuple of arrays for a tuple output).
        With need_input=False the input gradient is not computed where that saves work (the first conv or
        linear layer skips its data gradient) and None is returned: what a training step wants. One backward
        per forward, as the saved state is released while it runs."""
        where = f"{type(self).__name__}.backward"
        if self._tape is None:
            raise RuntimeError(
                f"{where}: nothing to differentiate; call the module in training mode first (each "
                "forward allows one backward; eval mode records nothing)"
            )
        seeds = self._tape.seed(grad_out, where)  # a bad grad_out leaves the tape for a corrected call
        tape = self._tape
        object.__setattr__(self, "_tape", None)
        return tape.backward(seeds, bool(need_input))

    # ------------------------------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        return head + "\n" + "\n".join(lines) + "\n)"


def _to_kind(a: Any, kind: str) -> Any:
    if array_kind(a) == kind:
        return a
    return a.get() if kind == "numpy" else array_module("cupy").asarray(a)


def _host_or_same(value: Any, like: Any) -> Any:
    """A CuPy value bound for a NumPy slot comes to the host; anything else passes (asarray converts it)."""
    return value.get() if array_kind(value) == "cupy" and array_kind(like) == "numpy" else value


class Layer(Module):
    """A module that is one differentiable op: subclasses define `forward_op(x) -> (y, saved)` and
    `backward_op(saved, grad_y) -> grad_x` (adding parameter gradients into `.grad`). Each call is one tape node,
    so a layer used twice in one forward (a shared ReLU) gets two nodes with their own saved state. A layer with
    `optional_input_grad = True` has `backward_op(saved, grad_y, need_input)` and skips grad_x when it is not
    needed (Module.backward's need_input)."""

    optional_input_grad = False

    def forward(self, x: Any) -> Any:
        return _tape.apply(
            self.forward_op, self.backward_op, x, name=type(self).__name__, optional_input_grad=self.optional_input_grad
        )


class Sequential(Module):
    """Children run in order; named "0", "1", ... or by the keys of one dict argument, as PyTorch."""

    def __init__(self, *modules: Module | dict[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())
