"""Memory-bound ops on the GPU against the device copy bandwidth measured in the same process, and the per-call
host overhead (issue 14's targets: >= 70% of the copy bandwidth, <= 10 us from Python to the launch).

Copy: cupy.copyto of COPY_MIB MiB device to device; GB/s counts the bytes read and written.
Ops on x of SHAPE in float32 (ResNet-50's stem output at N=32, 103 MB): ReLU and its backward, max pooling 3x3 s2
p1 and its backward, average pooling and its backward, batch norm (training) and its backward, the conv bias
gradient (a per-channel sum), each through its plan (fastconv.plan: the timed call is the launch path). Bytes: each
input read once and each output written once, as `fastconv bench` counts them. A call's time is the median over
ROUNDS of REPS back-to-back calls between two CUDA events (launch work overlaps the previous kernel). torch's
equivalents on the same tensors are timed the same way when torch sees the GPU, and their outputs checked against
fastconv's. Host overhead: perf_counter around HOST_CALLS calls on a tiny array, synchronized at the end.

    python -m fastconv.gpucheck.memops --out memops.json       (also writes memops.md beside it)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastconv as fc

SHAPE = (32, 64, 112, 112)
COPY_MIB = 256
REPS, ROUNDS, HOST_CALLS = 10, 7, 2000
POOL = dict(kernel_size=3, stride=2, padding=1)


def op_bytes(name: str, x_elems: int, y_elems: int, channels: int) -> int:
    """Compulsory float32 bytes of op `name` on x of x_elems elements (y_elems: a pooling output)."""
    counts = {
        "relu": 2 * x_elems,
        "relu_backward": 3 * x_elems,
        "max_pool2d": x_elems + y_elems,
        "max_pool2d_backward": y_elems + 2 * x_elems,  # gy, x (maxima found again), gx
        "avg_pool2d": x_elems + y_elems,
        "avg_pool2d_backward": y_elems + x_elems,
        "batch_norm": 2 * x_elems + 2 * channels,
        "batch_norm_backward": 3 * x_elems + 3 * channels,
        "conv_bias_grad": x_elems + channels,
    }
    return 4 * counts[name]


def _timer(make_event: Callable[[], Any], elapsed_ms: Callable[[Any, Any], float]):
    def per_call(fn: Callable[[], Any]) -> float:
        fn()  # compile, plan, warm
        times = []
        for _ in range(ROUNDS):
            start, end = make_event(), make_event()
            start.record()
            for _ in range(REPS):
                fn()
            end.record()
            end.synchronize()
            times.append(elapsed_ms(start, end) / 1e3 / REPS)
        return statistics.median(times)

    return per_call


def _calls(cp: Any, torch: Any | None) -> dict[str, tuple[Callable, Callable | None]]:
    """(fastconv call, torch call or None) per op, on the same device arrays."""
    x = cp.random.standard_normal(SHAPE, dtype=cp.float32)
    gy = cp.random.standard_normal(SHAPE, dtype=cp.float32)
    c = SHAPE[1]
    gamma, beta = cp.ones(c, cp.float32), cp.zeros(c, cp.float32)
    y = fc.relu(x)
    gp = cp.random.standard_normal(fc.max_pool2d(x, **POOL).shape, dtype=cp.float32)
    x_stub = cp.broadcast_to(cp.zeros((), cp.float32), (SHAPE[0], 3, *SHAPE[2:]))
    w_stub = cp.broadcast_to(cp.zeros((), cp.float32), (c, 3, 1, 1))
    plans = {
        "relu": (fc.plan(fc.relu, x), (x,)),
        "relu_backward": (fc.plan(fc.relu_backward, gy, y), (gy, y)),
        "max_pool2d": (fc.plan(fc.max_pool2d, x, **POOL), (x,)),
        "max_pool2d_backward": (fc.plan(fc.max_pool2d_backward, gp, x, **POOL), (gp, x)),
        "avg_pool2d": (fc.plan(fc.avg_pool2d, x, **POOL), (x,)),
        "avg_pool2d_backward": (fc.plan(fc.avg_pool2d_backward, gp, x, **POOL), (gp, x)),
        "batch_norm": (fc.plan(fc.batch_norm, x, None, None, gamma, beta, training=True), (x, None, None, gamma, beta)),
        "batch_norm_backward": (
            fc.plan(fc.batch_norm_backward, gy, x, None, None, gamma, True),
            (gy, x, None, None, gamma),
        ),
    }
    ours = {k: (lambda plan=plan, a=a: plan.run(*a)) for k, (plan, a) in plans.items()}
    bias = fc.plan(fc.conv2d_backward, gy, x_stub, w_stub, need_input=False, need_weight=False)
    ours["conv_bias_grad"] = lambda: bias.run(gy, x_stub, w_stub)[2]
    theirs = _torch_calls(torch, x, gy, y, gp, gamma, beta) if torch is not None else {}
    return {k: (fn, theirs.get(k)) for k, fn in ours.items()}


def _torch_calls(torch: Any, *arrays: Any) -> dict[str, Callable]:
    F, aten = torch.nn.functional, torch.ops.aten  # noqa: N806
    x, gy, y, gp, gamma, beta = (torch.from_dlpack(a) for a in arrays)
    k, s, pad = [3, 3], [2, 2], [1, 1]
    _, idx = aten.max_pool2d_with_indices(x, k, s, pad)
    _, mean, invstd = aten.native_batch_norm(x, gamma, None, None, None, True, 0.1, 1e-5)
    return {
        "relu": lambda: torch.relu(x),
        "relu_backward": lambda: aten.threshold_backward(gy, y, 0),
        "max_pool2d": lambda: F.max_pool2d(x, k, s, pad),
        "max_pool2d_backward": lambda: aten.max_pool2d_with_indices_backward(gp, x, k, s, pad, [1, 1], False, idx),
        "avg_pool2d": lambda: F.avg_pool2d(x, k, s, pad),
        "avg_pool2d_backward": lambda: aten.avg_pool2d_backward(gp, x, k, s, pad, False, True, None),
        "batch_norm": lambda: F.batch_norm(x, None, None, gamma, beta, True, 0.1, 1e-5),
        "batch_norm_backward": lambda: aten.native_batch_norm_backward(
            gy, x, gamma, None, None, mean, invstd, True, 1e-5, [True, True, True]
        ),
        "conv_bias_grad": lambda: gy.sum(dim=(0, 2, 3)),
    }


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, tuple | list) else out


def _rel_err(a: Any, b: Any, cp: Any) -> float:
    a, b = cp.asarray(_first(a), dtype=cp.float64), cp.asarray(_first(b), dtype=cp.float64)
    scale = max(float(cp.abs(b).max()), 1e-30)
    return float(cp.abs(a - b).max()) / scale


def _host_overhead(cp: Any) -> dict[str, float]:
    """Microseconds per call from Python on tiny arrays (the launch path without GPU work to speak of)."""
    t = cp.ones((1, 4, 8, 8), cp.float32)
    w = cp.ones((4, 4, 3, 3), cp.float32)
    out = cp.empty_like(t)
    relu, conv = fc.plan(fc.relu, t), fc.plan(fc.conv2d, t, w, padding=1)
    calls = {
        "fastconv relu plan.run": lambda: relu.run(t),
        "fastconv.relu": lambda: fc.relu(t),
        "fastconv conv2d plan.run": lambda: conv.run(t, w, None),
        "fastconv.conv2d": lambda: fc.conv2d(t, w, padding=1),
        "cupy.multiply (a CuPy elementwise launch)": lambda: cp.multiply(t, 2.0, out=out),
    }
    found = {}
    for name, fn in calls.items():
        fn()
        cp.cuda.get_current_stream().synchronize()
        start = time.perf_counter()
        for _ in range(HOST_CALLS):
            fn()
        cp.cuda.get_current_stream().synchronize()
        found[name] = (time.perf_counter() - start) / HOST_CALLS * 1e6
    return found


def _copy_time(cp: Any, per_call: Callable) -> float:
    """Seconds per device-to-device copy of COPY_MIB MiB (the buffers are freed on return)."""
    src = cp.ones(COPY_MIB << 18, cp.float32)
    dst = cp.empty_like(src)
    return per_call(lambda: cp.copyto(dst, src))


def measure() -> dict[str, Any]:
    import cupy as cp  # noqa: PLC0415

    try:
        import torch  # noqa: PLC0415

        torch = torch if torch.cuda.is_available() else None
    except ImportError:
        torch = None
    ours = _timer(cp.cuda.Event, cp.cuda.get_elapsed_time)
    copy_s = _copy_time(cp, ours)
    copy_gbs = 2 * (COPY_MIB << 20) / copy_s / 1e9
    theirs = torch and _timer(lambda: torch.cuda.Event(enable_timing=True), lambda a, b: a.elapsed_time(b))
    n, c, h, w = SHAPE
    y_elems = n * c * fc.conv_output_size(h, 3, 2, 1) * fc.conv_output_size(w, 3, 2, 1)
    rows = []
    for name, (fn, tfn) in _calls(cp, torch).items():
        nbytes = op_bytes(name, n * c * h * w, y_elems, c)
        t = ours(fn)
        row = {"op": name, "shape": list(SHAPE), "bytes": nbytes, "time_s": t, "gbs": nbytes / t / 1e9}
        row["share_of_copy"] = row["gbs"] / copy_gbs
        if tfn is not None:
            tt = theirs(tfn)
            row.update(torch_time_s=tt, torch_gbs=nbytes / tt / 1e9, torch_share_of_copy=nbytes / tt / 1e9 / copy_gbs)
            row["max_rel_err_vs_torch"] = _rel_err(fn(), tfn(), cp)
        rows.append(row)
    name = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"]
    return {
        "device": name.decode() if isinstance(name, bytes) else str(name),
        "copy": {"mib": COPY_MIB, "time_s": copy_s, "gbs": copy_gbs, "how": "cupy.copyto, read + write bytes"},
        "ops": rows,
        "host_overhead_us": _host_overhead(cp),
        "method": f"median of {ROUNDS} rounds of {REPS} back-to-back calls between CUDA events",
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table (and the host overhead lines)."""
    copy = report["copy"]
    lines = [
        f"Device copy bandwidth ({copy['mib']} MiB, {copy['how']}): **{copy['gbs']:.0f} GB/s**; "
        f"{report['method']}; target >= 70% of the copy bandwidth.",
        "",
        "| op | shape | MB | fastconv GB/s | % of copy | torch GB/s | % of copy | max rel err vs torch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["ops"]:
        t = (
            (f"{r['torch_gbs']:.0f}", f"{100 * r['torch_share_of_copy']:.0f}%", f"{r['max_rel_err_vs_torch']:.1e}")
            if "torch_gbs" in r
            else ("-", "-", "-")
        )
        shape = "x".join(map(str, r["shape"]))
        lines.append(
            f"| {r['op']} | {shape} | {r['bytes'] / 1e6:.0f} | {r['gbs']:.0f} | {100 * r['share_of_copy']:.0f}% | "
            + " | ".join(t)
            + " |"
        )
    lines += ["", "Host overhead per call (us; target <= 10 for fastconv):", ""]
    lines += [f"- {k}: {v:.1f}" for k, v in report["host_overhead_us"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastconv.gpucheck.memops", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write (and .md beside it)")
    args = parser.parse_args(argv)
    status = fc.backends()["cuda"]
    if not status.available:
        print(f"memops: the cuda backend is not available: {status.reason}", file=sys.stderr)
        return 2
    report = measure()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
