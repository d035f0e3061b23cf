"""fastconv.summary(model, input_shape): per-layer output shape, parameters, MACs, activation memory and receptive
field, without running the convolutions; and `fastconv summary MODEL` on the command line.

How: the model runs one eval-mode forward on a zero input under an Observer (fastconv.nn.tape). Each built-in
layer's output is not computed: fastconv.layer_rules gives its shape, MACs and windows, and a zero array of that
shape stands in for it. Glue ops (add, cat, flatten), custom ops (nn.apply) and unknown layers run for real on
those zeros, so any forward code works and the data flow (branches, shortcuts) is the model's own; those count
no MACs and are taken as pointwise in space (flatten excepted, below).

Per row (one per op: a layer call, or a glue op named `<module>.<op>`):
  - params: the parameters of the layer, counted at its first call only.
  - macs: multiply-adds, each counted once (conv and linear only; see fastconv.layer_rules).
  - activation_bytes: bytes of the new array the op's output needs, 0 where the output can share its input's
    memory: ReLU(inplace=True), dropout (an identity in eval mode), flatten (a view), an adaptive pool to its own
    input size. Summary.activation_bytes adds the input's bytes: it is the forward's activation memory when
    nothing is freed, per batch of input_shape[0] images.
  - rf_size, rf_jump: receptive field of one output element in input pixels, and the input distance between
    neighbouring outputs, as (H, W). A window of span k and stride s maps (r, j) to (r + (k-1) j, j s); a flatten
    of an (H, W) map sees all of it; where branches meet (add, cat) each is the maximum over the inputs.
  - warning: the layer's stride does not tile its input: the last rows/columns of the input (not padding) are
    never read (e.g. 7x7 input, 3x3 kernel, stride 3). Each is also issued as a UserWarning.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .arrays import array_kind, array_module
from .layer_rules import Effect, Window, rule_for
from .nn import Layer, Module
from .nn.tape import Forward, Observer, observe
from .params import ConvParams


@dataclass(frozen=True)
class Row:
    name: str
    kind: str  # the layer's class name, or the glue op's name
    input_shape: tuple  # of the first input
    output_shape: tuple
    params: int
    macs: int
    activation_bytes: int
    rf_size: tuple[int, int]
    rf_jump: tuple[int, int]
    warning: str = ""
    conv: ConvParams | None = field(default=None, repr=False)  # a conv's validated call (benchmark suites)


@dataclass
class Summary:
    model: str
    input_shape: tuple
    rows: list[Row]
    total_params: int  # every parameter of the model, also those no row used (GoogLeNet's aux heads)
    input_bytes: int

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def activation_bytes(self) -> int:
        return self.input_bytes + sum(r.activation_bytes for r in self.rows)

    @property
    def warnings(self) -> list[str]:
        return [r.warning for r in self.rows if r.warning]

    def conv_layers(self) -> list[tuple[str, ConvParams]]:
        """(row name, ConvParams of the call with its input shape) for each convolution, in forward order."""
        return [(r.name, r.conv) for r in self.rows if r.conv is not None]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in asdict(r).items() if k != "conv"} for r in self.rows]

    def to_json(self) -> str:
        totals = {
            "total_params": self.total_params,
            "total_macs": self.total_macs,
            "activation_bytes": self.activation_bytes,
            "input_bytes": self.input_bytes,
        }
        return json.dumps(
            {
                "model": self.model,
                "input_shape": self.input_shape,
                **totals,
                "warnings": self.warnings,
                "rows": self.as_dicts(),
            },
            indent=1,
        )

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(self.as_dicts()[0]) if self.rows else ["name"])
        writer.writeheader()
        for d in self.as_dicts():
            writer.writerow({k: "x".join(map(str, v)) if isinstance(v, tuple) else v for k, v in d.items()})
        return out.getvalue()

    def __str__(self) -> str:
        head = ("layer", "kind", "output", "params", "MACs", "act bytes", "RF", "jump")
        body = [
            (
                r.name + (" !" if r.warning else ""),
                r.kind,
                _dims(r.output_shape),
                f"{r.params:,}",
                f"{r.macs:,}",
                f"{r.activation_bytes:,}",
                _dims(r.rf_size, square=True),
                _dims(r.rf_jump, square=True),
            )
            for r in self.rows
        ]
        widths = [max(len(c) for c in col) for col in zip(head, *body)]
        fmt = "  ".join(f"{{:{'<' if i < 3 else '>'}{w}}}" for i, w in enumerate(widths))
        used = sum(r.params for r in self.rows)
        lines = [f"{self.model}, input {_dims(self.input_shape)}", fmt.format(*head), "-" * (sum(widths) + 14)]
        lines += [fmt.format(*b) for b in body]
        lines += [
            "-" * (sum(widths) + 14),
            f"parameters   {self.total_params:,}"
            + (f" ({self.total_params - used:,} not used by this forward)" if used != self.total_params else ""),
            f"MACs         {self.total_macs:,} ({self.total_macs / 1e9:.3f} G)",
            f"activations  {self.activation_bytes:,} bytes ({self.activation_bytes / 1e6:.1f} MB, "
            f"input {self.input_bytes:,} bytes included)",
        ]
        lines += [f"! {w}" for w in self.warnings]
        return "\n".join(lines)


def _dims(shape: tuple, square: bool = False) -> str:
    if square and len(set(shape)) == 1:
        return str(shape[0])
    return "x".join(map(str, shape))


@dataclass
class _Field:
    """Receptive field (size, jump) of an array along H and W."""

    size: tuple[int, int] = (1, 1)
    jump: tuple[int, int] = (1, 1)

    def through(self, windows: tuple) -> _Field:
        size = tuple(r + (w.span - 1) * j for r, j, w in zip(self.size, self.jump, windows))
        return _Field(size, tuple(j * w.stride for j, w in zip(self.jump, windows)))

    @staticmethod
    def merge(fields: list[_Field]) -> _Field:
        return _Field(
            tuple(max(f.size[i] for f in fields) for i in range(2)),
            tuple(max(f.jump[i] for f in fields) for i in range(2)),
        )


class _Recorder(Observer):
    """Follows one forward: the stack of module calls names each op; arrays carry their receptive field."""

    def __init__(self, model: Module) -> None:
        self.names = {id(m): name for name, m in model.named_modules()}
        self.stack: list[Module] = []
        self.rows: list[Row] = []
        self.fields: dict[int, _Field] = {}
        self.alive: list[Any] = []  # keeps every array (and so its id) alive until the summary is done
        self.counted: set[int] = set()  # layers whose parameters a row already holds

    def enter(self, module: Module) -> None:
        self.stack.append(module)

    def exit(self, module: Module) -> None:
        self.stack.pop()

    def track(self, a: Any, f: _Field) -> None:
        self.alive.append(a)
        self.fields[id(a)] = f

    def run(self, name: str, forward: Forward, inputs: tuple) -> tuple[Any, Any]:
        owner = self.stack[-1] if self.stack else None
        path = self.names.get(id(owner), "") if owner is not None else ""
        leaf = owner is not None and not owner._modules
        row_name = path if leaf else ".".join(s for s in (path, name) if s)
        kind = type(owner).__name__ if leaf else name
        where = f"summary: {row_name or kind} ({kind})"
        f_in = _Field.merge([self.fields.get(id(a), _Field()) for a in inputs])
        rule = rule_for(owner) if isinstance(owner, Layer) else None
        if rule is not None:
            x = inputs[0]
            effect = rule(owner, x, where)
            out = array_module(array_kind(x)).zeros(effect.output_shape, x.dtype)
        else:
            out, _ = forward(*inputs)
            view = any(array_module(array_kind(out)).may_share_memory(out, a) for a in inputs)
            effect = Effect(tuple(out.shape), windows=_flatten_windows(inputs[0], out), stores_output=not view)
        f_out = f_in.through(effect.windows) if effect.windows else f_in
        self.track(out, f_out)
        self.rows.append(self._row(owner if leaf else None, row_name or kind, kind, inputs[0], out, effect, f_out))
        return out, None

    def _row(self, layer: Module | None, name: str, kind: str, x: Any, out: Any, effect: Effect, f: _Field) -> Row:
        params = 0
        if layer is not None and id(layer) not in self.counted:
            self.counted.add(id(layer))
            params = sum(p.data.size for p in layer.parameters())
        note = ""
        tails = [w.untouched_tail() for w in effect.windows or ()]
        if any(tails):
            h, w = effect.windows
            note = (
                f"{name} ({kind}): stride {_dims((h.stride, w.stride), True)} does not tile its "
                f"{h.in_size}x{w.in_size} input (window {_dims((h.span, w.span), True)}, padding "
                f"{_dims((h.pad_begin, w.pad_begin), True)}): the last {tails[0]} row(s) and {tails[1]} "
                "column(s) are never read"
            )
        nbytes = out.size * out.dtype.itemsize if effect.stores_output else 0
        return Row(
            name, kind, tuple(x.shape), tuple(out.shape), params, effect.macs, nbytes, f.size, f.jump, note, effect.conv
        )


def _flatten_windows(x: Any, out: Any) -> tuple | None:
    """A glue op that merges the spatial axes of an (N, C, H, W) input (flatten) reads the whole map at once:
    one window of the full size. Other glue ops are pointwise."""
    if x.ndim == 4 and out.ndim < 4 and x.shape[2] * x.shape[3] > 1:
        return tuple(Window(n, n, n) for n in x.shape[2:])
    return None


def summary(model: Module, input_shape: tuple[int, ...]) -> Summary:
    """Summarise `model` for one forward on an input of `input_shape` (N, C, H, W), in eval mode (the model's
    modes are restored). Nothing is computed but shapes; the input has the dtype and array kind of the model's
    first parameter (float32 NumPy without parameters)."""
    if not isinstance(model, Module):
        raise TypeError(f"summary: 'model' must be a fastconv.nn.Module, got {type(model).__name__}")
    if (
        not isinstance(input_shape, (tuple, list))
        or not input_shape
        or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in input_shape)
    ):
        raise ValueError(
            f"summary: 'input_shape' must be a tuple of positive ints such as (1, 3, 224, 224), got {input_shape!r}"
        )
    first = next(model.parameters(), None)
    like = np.zeros((), np.float32) if first is None else first.data
    x = array_module(array_kind(like)).zeros(tuple(int(n) for n in input_shape), like.dtype)
    modes = [(m, m.training) for m in model.modules()]
    recorder = _Recorder(model)
    recorder.track(x, _Field())
    model.eval()
    try:
        with observe(recorder):
            model(x)
    finally:
        for m, mode in modes:
            m.training = mode
    result = Summary(
        type(model).__name__,
        tuple(x.shape),
        recorder.rows,
        sum(p.data.size for p in model.parameters()),
        x.size * x.dtype.itemsize,
    )
    for w in result.warnings:
        warnings.warn(w, stacklevel=2)
    return result


# ---------------------------------------------------------------------------------------------- command line
def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--input must be comma-separated ints like 1,3,224,224, got {text!r}"
        ) from None
    if not all(n > 0 for n in shape):
        raise argparse.ArgumentTypeError(f"--input sizes must be positive, got {text!r}")
    return shape


def _run(args: argparse.Namespace) -> int:
    from . import models, nn

    with nn.no_init():  # the summary reads no weight values
        model = models.get_model(args.model)
    shape = args.input or (1, *models.INPUT_SHAPES[args.model])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the table lists them
        result = summary(model, shape)
    result.model = args.model
    print({"table": str, "json": Summary.to_json, "csv": Summary.to_csv}[args.format](result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from . import models

    p = sub.add_parser("summary", help="per-layer shapes, parameters, MACs, activation memory, receptive field")
    p.add_argument("model", choices=models.list_models())
    p.add_argument(
        "--input",
        type=_shape,
        default=None,
        metavar="N,C,H,W",
        help="input shape (default: the model's design size with N=1)",
    )
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.set_defaults(run=_run)
