"""Two fastconv checkouts against each other on the quick suite's convolutions, forward and backward.

    python benchmarks/versions.py BASE_CHECKOUT [--runs 3] [--out bench_results/kernel_launch.json]

Times conv2d and conv2d_backward (numba backend, auto, float32, default threads) on the quick suite's conv
problems a-h plus a late layer (N8 C512 7x7 K512 3x3) and two small ones that sit just above the serial-call
threshold, for this checkout and for BASE_CHECKOUT, each in a process of its own (PYTHONPATH pointing at it, a
Numba cache of its own warmed by a first run), the two alternating run by run. Within a run every call is timed
in bursts of 5 back-to-back calls after one untimed call, 7 bursts; a run reports the median of the bursts'
fastest calls. Reported: per case the ratio base time / this time for each run and their median (above 1: this
checkout is faster), and the geomeans.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, time
import numpy as np
import fastconv as fc
from fastconv.bench.cases import CPU_CONV
rng = np.random.default_rng(0)
extra = [("late", (8, 512, 7, 7), (512, 512, 3, 3), dict(padding=1)),
         ("small", (1, 16, 14, 14), (16, 16, 3, 3), dict(padding=1)),
         ("mid", (2, 32, 28, 28), (32, 32, 3, 3), dict(padding=1))]
cases = [(p.name, (p.N, p.C, p.H, p.W), (p.K, p.C // p.groups, p.R, p.S),
          dict(stride=p.stride, padding=p.padding, dilation=p.dilation, groups=p.groups)) for p in CPU_CONV] + extra
out = {}
for name, xs, ws, kw in cases:
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    gy = np.ones_like(fc.conv2d(x, w, **kw))
    for op, f in (("fwd", lambda: fc.conv2d(x, w, **kw)), ("bwd", lambda: fc.conv2d_backward(gy, x, w, **kw))):
        f()
        fastest = []
        for _ in range(7):
            f()
            times = []
            for _ in range(5):
                t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
            fastest.append(min(times))
        out[f"{name} {op}"] = float(np.median(fastest))
print(json.dumps(out))
"""


def _run(checkout: Path, cache: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout), NUMBA_CACHE_DIR=cache)
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _geomean(values: list[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path, help="the other checkout (its repository root)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as base_cache, tempfile.TemporaryDirectory() as this_cache:
        for checkout, cache in ((args.base, base_cache), (ROOT, this_cache)):
            _run(checkout, cache)  # compiles into its cache
        runs = [(_run(args.base, base_cache), _run(ROOT, this_cache)) for _ in range(args.runs)]
    ratios = {k: [b[k] / t[k] for b, t in runs] for k in runs[0][0]}
    medians = {k: sorted(v)[len(v) // 2] for k, v in ratios.items()}
    quick = [v for k, v in medians.items() if k.split()[0] not in ("late", "small", "mid")]
    doc = {
        "base": str(args.base),
        "load average": os.getloadavg(),
        "seconds": {"base": [b for b, _ in runs], "this": [t for _, t in runs]},
        "base/this per run": ratios,
        "median": medians,
        "geomean quick a-h": _geomean(quick),
        "geomean all": _geomean(list(medians.values())),
    }
    for k, v in medians.items():
        print(f"{k:20s} {v:6.3f}   runs {' '.join(f'{r:.2f}' for r in ratios[k])}")
    print(f"geomean quick a-h {doc['geomean quick a-h']:.3f}, all {doc['geomean all']:.3f}")
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
