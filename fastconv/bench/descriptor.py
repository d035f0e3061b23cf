"""oneDNN benchdnn problem descriptors: parse them into problems and print problems as them.

A descriptor is a run of `<key><integer>` entries in any order, `_` allowed between entries, and an optional
name last: `g32mb8ic128ih56oc128oh56kh3ph1n"resnext:layer1.0.conv2"`. The grammar and its defaults follow
benchdnn's conv, pool and bnorm drivers (2-D only):
  conv   g mb ic ih iw oc oh ow kh kw sh sw ph pw dh dw n     (needs ic, oc, ih, kh)
  pool   mb ic ih iw oh ow kh kw sh sw ph pw dh dw n          (needs ic, ih, kh; no oc)
  bnorm  mb ic ih iw eps n                                    (needs ic, ih)
Defaults: g 1, mb 2, stride 1, dilation 0 (benchdnn counts dilation from 0: `dh1` is PyTorch's dilation=2),
bnorm eps 1/16. The w entries copy the h entries when no w entry is given ("square"); otherwise iw and kw are both
needed. An output size without a padding gives padding ((o-1)*s - i + span) / 2 rounded toward zero; a padding
without an output size gives the output size; neither gives padding 0. The bottom/right padding is whatever
makes the output size come out: pad_end = (o-1)*s - i + span - pad_begin (span = (k-1)*(d+1)+1).

Printing follows benchdnn: g only when > 1, mb only when != 2, the w entries only when some differ from h, strides
only when one is not 1, padding always, dilation only when used, the name last and quoted.
"""

from __future__ import annotations

import re

from ..params import conv_output_size
from .cases import ConvProblem, NormProblem, PoolProblem, Problem, padding_arg, pair_arg

CONV_KEYS = ("g", "mb", "ic", "ih", "iw", "oc", "oh", "ow", "kh", "kw", "sh", "sw", "ph", "pw", "dh", "dw")
POOL_KEYS = ("mb", "ic", "ih", "iw", "oh", "ow", "kh", "kw", "sh", "sw", "ph", "pw", "dh", "dw")
BNORM_KEYS = ("mb", "ic", "ih", "iw", "eps")
KINDS = {"conv": CONV_KEYS, "pool": POOL_KEYS, "bnorm": BNORM_KEYS}
_3D_KEYS = ("id", "od", "kd", "sd", "pd", "dd")
BENCHDNN_BNORM_EPS = 1.0 / 16
_ENTRY = re.compile(
    r"(eps|mb|ic|ih|iw|oc|oh|ow|kh|kw|sh|sw|ph|pw|dh|dw|id|od|kd|sd|pd|dd|g)"
    r"(\d+(?:\.\d*)?(?:e[-+]?\d+)?)"
)
_NAME_OK = re.compile(r'[^\s"]*')


def _error(text: str, why: str) -> ValueError:
    return ValueError(f"descriptor {text!r}: {why}")


def _entries(text: str) -> tuple[dict[str, str], str]:
    """Split a descriptor into its entries (key -> digits) and its name."""
    entries: dict[str, str] = {}
    pos, name = 0, ""
    while pos < len(text):
        if text[pos] == "_":
            pos += 1
            continue
        if text[pos] == "n":
            name = text[pos + 1 :]
            if len(name) >= 2 and name[0] == name[-1] == '"':
                name = name[1:-1]
            if not _NAME_OK.fullmatch(name):
                raise _error(text, f"the name {name!r} must not contain spaces or quotes")
            break
        m = _ENTRY.match(text, pos)
        if not m:
            raise _error(
                text,
                f"cannot read an entry at {text[pos:]!r} (entries are <key><number>, "
                f'keys {", ".join(CONV_KEYS)}, eps; the name comes last as n"...")',
            )
        key, value = m.groups()
        if key in entries:
            raise _error(text, f"entry {key!r} is given twice")
        entries[key] = value
        pos = m.end()
    if any(k in entries for k in _3D_KEYS):
        raise _error(text, "3-D problems (id, od, kd, sd, pd, dd) are not supported; fastconv is 2-D")
    return entries, name


def _kind(entries: dict[str, str]) -> str:
    if "oc" in entries or "g" in entries:
        return "conv"
    return "pool" if "kh" in entries or "kw" in entries else "bnorm"


def _ints(text: str, entries: dict[str, str], keys: tuple[str, ...], kind: str) -> dict[str, int]:
    unknown = [k for k in entries if k not in keys]
    if unknown:
        raise _error(
            text, f"entries {', '.join(unknown)} do not belong to a {kind} descriptor (it takes {', '.join(keys)})"
        )
    out = {}
    for key, value in entries.items():
        if key != "eps" and not value.isdigit():
            raise _error(text, f"entry {key!r} needs an integer, got {value!r}")
        out[key] = float(value) if key == "eps" else int(value)
    return out


def _spatial(text: str, e: dict[str, int]) -> dict[str, dict[str, int]]:
    """Per dimension h, w: i, k, s, d (benchdnn's 0-based dilation), p (begin), o, and pad_end."""
    has_w = any(k in e for k in ("iw", "ow", "kw", "sw", "pw", "dw"))
    dims = {}
    for dim in ("h", "w"):
        if dim == "w" and not has_w:
            dims["w"] = dict(dims["h"])
            continue
        if f"i{dim}" not in e or f"k{dim}" not in e:
            raise _error(
                text, f"needs i{dim} and k{dim}" + (" (iw and kw once any w entry is given)" if dim == "w" else "")
            )
        i, k, s, d = e[f"i{dim}"], e[f"k{dim}"], e.get(f"s{dim}", 1), e.get(f"d{dim}", 0)
        if min(i, k, s) < 1:
            raise _error(text, f"i{dim}, k{dim} and s{dim} must be >= 1")
        span = (k - 1) * (d + 1) + 1
        if f"o{dim}" in e:
            o = e[f"o{dim}"]
            p = e.get(f"p{dim}", int(((o - 1) * s - i + span) / 2))  # C division: rounds toward zero
        else:
            p = e.get(f"p{dim}", 0)
            o = (i - span + 2 * p) // s + 1
        if o < 1 or p < 0:
            raise _error(text, f"o{dim}={o}, p{dim}={p}: the {dim} output must be >= 1 and the padding >= 0")
        dims[dim] = dict(i=i, k=k, s=s, d=d, p=p, o=o, end=(o - 1) * s - i + span - p)
    return dims


def _output_size(i: int, k: int, s: int, pad: int | tuple[int, int], dilation: int, ceil_mode: bool = False) -> int:
    """conv_output_size, 0 where the kernel does not fit."""
    try:
        return conv_output_size(i, k, s, pad, dilation, ceil_mode)
    except ValueError:
        return 0


def _conv_padding(text: str, dims: dict[str, dict[str, int]]) -> tuple:
    """PyTorch-style padding giving the descriptor's output sizes: symmetric where that gives them."""
    pads = []
    for dim, v in dims.items():
        for pair in ((v["p"], v["p"]), (v["p"], max(v["end"], 0))):
            if _output_size(v["i"], v["k"], v["s"], pair, v["d"] + 1) == v["o"]:
                pads.append(pair)
                break
        else:
            raise _error(
                text,
                f"o{dim}={v['o']} is too small for i{dim}={v['i']} k{dim}={v['k']} "
                f"s{dim}={v['s']} p{dim}={v['p']} (rows would be dropped inside the input)",
            )
    return padding_arg(tuple(pads))


def parse(text: str, kind: str | None = None) -> Problem:
    """A benchdnn descriptor as a ConvProblem, PoolProblem or NormProblem. `kind` ('conv', 'pool', 'bnorm')
    defaults to: conv when oc or g is given, pool when a kernel is given, else bnorm."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"descriptor: expected a non-empty string, got {text!r}")
    text = text.strip()
    entries, name = _entries(text)
    kind = kind or _kind(entries)
    if kind not in KINDS:
        raise ValueError(f"descriptor: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    e = _ints(text, entries, KINDS[kind], kind)
    if "ic" not in e or e["ic"] < 1:
        raise _error(text, "needs ic >= 1")
    mb = e.get("mb", 2)
    if kind == "bnorm":
        if "ih" not in e:
            raise _error(text, "needs ih")
        return NormProblem(name, mb, e["ic"], e["ih"], e.get("iw", e["ih"]), e.get("eps", BENCHDNN_BNORM_EPS))
    dims = _spatial(text, e)
    h, w = dims["h"], dims["w"]
    if kind == "pool":
        return _pool(text, name, mb, e["ic"], h, w)
    g, oc = e.get("g", 1), e.get("oc", 0)
    if g < 1 or oc < 1 or e["ic"] % g or oc % g:
        raise _error(text, f"needs oc >= 1 and g >= 1 dividing ic and oc (ic={e['ic']}, oc={oc}, g={g})")
    return ConvProblem(
        name,
        mb,
        e["ic"],
        h["i"],
        w["i"],
        oc,
        h["k"],
        w["k"],
        stride=pair_arg(h["s"], w["s"]),
        padding=_conv_padding(text, dims),
        dilation=pair_arg(h["d"] + 1, w["d"] + 1),
        groups=g,
    )


def _pool(text: str, name: str, mb: int, ic: int, h: dict, w: dict) -> PoolProblem:
    """max_pool2d has symmetric padding; an output size that needs more than that is ceil_mode."""
    for ceil_mode in (False, True):
        if all(
            v["p"] * 2 <= v["k"] and _output_size(v["i"], v["k"], v["s"], v["p"], v["d"] + 1, ceil_mode) == v["o"]
            for v in (h, w)
        ):
            return PoolProblem(
                name,
                mb,
                ic,
                h["i"],
                w["i"],
                kernel=pair_arg(h["k"], w["k"]),
                stride=pair_arg(h["s"], w["s"]),
                padding=pair_arg(h["p"], w["p"]),
                dilation=pair_arg(h["d"] + 1, w["d"] + 1),
                ceil_mode=ceil_mode,
            )
    raise _error(
        text,
        "max_pool2d cannot express it: padding must be at most half the kernel and the output "
        "size must be what floor or ceil mode gives with symmetric padding",
    )


def _spatial_text(triples: list[tuple[str, int, int]], square: bool) -> str:
    """benchdnn's printing of (key, h, w) triples; strides and dilations only when not the default."""
    default = {"s": 1, "d": 0}
    out = []
    for key, h, w in triples:
        if key not in default or h != default[key] or w != default[key]:
            out.append(f"{key}h{h}" if square else f"{key}h{h}{key}w{w}")
    return "".join(out)


def to_descriptor(problem: Problem) -> str:
    """The benchdnn descriptor of a problem (validated through fastconv.params first)."""
    p = problem.params()
    head = f"mb{p.N}" if p.N != 2 else ""
    tail = f'n"{problem.name}"' if problem.name else ""
    if isinstance(problem, NormProblem):
        N, C, H, W = p.shape
        return f"{head}ic{C}ih{H}" + (f"iw{W}" if W != H else "") + f"eps{problem.eps!r}" + tail
    if isinstance(problem, PoolProblem):
        kernel, stride, pads, dil, oc = p.kernel, p.stride, p.padding, p.dilation, ""
    else:
        kernel, stride, dil, oc = (p.R, p.S), p.stride, p.dilation, f"oc{p.K}"
        pads = (p.padding[0][0], p.padding[1][0])
        head = (f"g{p.groups}" if p.groups > 1 else "") + head
    triples = [
        ("i", p.H, p.W),
        ("o", p.P, p.Q),
        ("k", *kernel),
        ("s", *stride),
        ("p", *pads),
        ("d", dil[0] - 1, dil[1] - 1),
    ]
    square = all(h == w for _, h, w in triples)
    return head + f"ic{p.C}" + _spatial_text(triples[:1], square) + oc + _spatial_text(triples[1:], square) + tail
