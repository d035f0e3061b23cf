"""PNG plots for the report (matplotlib, Agg backend; imported only by the report when matplotlib is installed).

bars: per case, one bar per implementation, its rate (log scale), convolutions (GFLOP/s) and pooling/BN (GB/s) in
two panels. roofline: achieved GFLOP/s against arithmetic intensity (FLOPs per compulsory byte), under the
measured GEMM peak and copy-bandwidth slope of the same run, one plot per device.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

from .ops import UNIT  # noqa: E402
from .tables import ceiling, rate  # noqa: E402

MARKERS = {
    "fwd": "o",
    "bwd-data": "s",
    "bwd-weight": "D",
    "pool-fwd": "^",
    "pool-bwd": "v",
    "bn-fwd": "P",
    "bn-bwd": "X",
}


def _colors(impls: Sequence[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {impl: cmap(i % 10) for i, impl in enumerate(impls)}


def bars(records: Sequence[dict[str, Any]], path: Path, title: str) -> Path | None:
    impls = list(dict.fromkeys(r["impl"] for r in records))
    colors = _colors(impls)
    panels = [u for u in ("GFLOP/s", "GB/s") if any(UNIT[r["op"]] == u for r in records)]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.6 * len(panels)), squeeze=False)
    for ax, unit in zip(axes[:, 0], panels):
        keys = list(dict.fromkeys((r["case"], r["op"]) for r in records if UNIT[r["op"]] == unit))
        width = 0.8 / len(impls)
        for j, impl in enumerate(impls):
            by_key = {(r["case"], r["op"]): rate(r) for r in records if r["impl"] == impl}
            xs = [i + (j - (len(impls) - 1) / 2) * width for i in range(len(keys))]
            ax.bar(xs, [by_key.get(k) or 0 for k in keys], width, label=impl, color=colors[impl])
        ax.set_xticks(range(len(keys)), [f"{c}\n{o}" for c, o in keys], fontsize=7, rotation=30, ha="right")
        if any(rate(r) for r in records if UNIT[r["op"]] == unit):
            ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "nothing timed (see the failed checks)", transform=ax.transAxes, ha="center")
        ax.set_ylabel(f"{unit} (median)")
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0, 0].set_title(title)
    axes[0, 0].legend(fontsize=7, ncol=min(len(impls), 5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def roofline(
    records: Sequence[dict[str, Any]], peak: float | None, bandwidth: float | None, path: Path, title: str
) -> Path | None:
    points = [
        (r["flops"] / r["bytes"], r["flops"] / r["time_s"]["median"] / 1e9, r)
        for r in records
        if rate(r) is not None and r["bytes"]
    ]
    if not points:
        return None
    impls = list(dict.fromkeys(r["impl"] for _, _, r in points))
    colors = _colors(impls)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    xs = [x for x, _, _ in points]
    lo, hi = min(xs) / 2, max(xs) * 2
    if peak and bandwidth:
        knee = peak / bandwidth
        grid = sorted({lo, hi, min(max(knee, lo), hi)})
        ax.plot(
            grid,
            [min(peak, bandwidth * x) for x in grid],
            "k-",
            lw=2,
            label=f"roof: {peak:.0f} GFLOP/s, {bandwidth:.1f} GB/s",
        )
    for x, y, r in points:
        ax.scatter(x, y, color=colors[r["impl"]], marker=MARKERS[r["op"]], s=36, edgecolors="none")
    for impl in impls:
        ax.scatter([], [], color=colors[impl], marker="o", label=impl)
    for op in dict.fromkeys(r["op"] for _, _, r in points):
        ax.scatter([], [], color="grey", marker=MARKERS[op], label=op)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per compulsory byte)")
    ax.set_ylabel("GFLOP/s (median)")
    ax.set_title(title)
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rooflines(
    records: Sequence[dict[str, Any]], ceilings: Sequence[dict[str, Any]], out_dir: Path, stem: str, title: str
) -> list[Path | None]:
    """One roofline per device among the records, each under that device's measured ceilings."""
    out = []
    for device in dict.fromkeys(r["device"] for r in records):
        mine = [r for r in records if r["device"] == device]
        threads = mine[0]["threads"]
        peak, bandwidth = ceiling(ceilings, "GFLOP/s", device, threads), ceiling(ceilings, "GB/s", device, threads)
        out.append(
            roofline(mine, peak, bandwidth, out_dir / f"roofline-{stem}-{device}.png", f"roofline {title} ({device})")
        )
    return out
