"""First-call latency of the numba backend in a fresh process, with a cold and with a warm kernel cache.

    python benchmarks/numba_compile_latency.py [--tests]    # -> bench_results/numba_compile.json

Each measurement is a new Python process whose Numba cache lives in a directory of its own (NUMBA_CACHE_DIR):
"cold" starts from an empty one (every kernel compiles), "warm" reuses what the cold run wrote (kernels load from
disk). Reported per process: `import fastconv`, then the first call of each step of a small training step on
N8 C64 56x56 (conv 3x3 forward, conv backward, max-pool, batch norm train fwd+bwd, ReLU), float32. With --tests,
also the wall time of the numba test files, cold and warm.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, time
t = time.perf_counter()
import numpy as np
import fastconv as fc
out = {"import fastconv": time.perf_counter() - t}
rng = np.random.default_rng(0)
x = rng.standard_normal((8, 64, 56, 56)).astype(np.float32)
w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
b = rng.standard_normal(64).astype(np.float32)
steps = [
    ("conv2d 3x3 forward", lambda: fc.conv2d(x, w, b, padding=1)),
    ("conv2d 3x3 forward, again", lambda: fc.conv2d(x, w, b, padding=1)),
    ("conv2d backward", lambda: fc.conv2d_backward(x, x, w, padding=1)),
    ("max_pool2d", lambda: fc.max_pool2d(x, 3, 2, 1)),
    ("batch_norm train fwd+bwd", lambda: (fc.batch_norm(x, None, None, b, b, training=True),
                                          fc.batch_norm_backward(x, x, None, None, b, True))),
    ("relu fwd+bwd", lambda: fc.relu_backward(x, fc.relu(x))),
]
for name, fn in steps:
    t = time.perf_counter()
    fn()
    out[name] = time.perf_counter() - t
print(json.dumps(out))
"""


def _run(args: list[str], cache: str) -> tuple[float, str]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    out = subprocess.run(args, env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t, out


def latency() -> dict:
    with tempfile.TemporaryDirectory() as cache:
        cold = json.loads(_run([sys.executable, "-c", _PROBE], cache)[1])
        warm = json.loads(_run([sys.executable, "-c", _PROBE], cache)[1])
    return {"cold cache": cold, "warm cache": warm}


def test_times() -> dict:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_backend_numba*.py"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files]
    with tempfile.TemporaryDirectory() as cache:
        cold, out = _run(cmd, cache)
        warm, _ = _run(cmd, cache)
    return {"files": files, "summary": out.strip().splitlines()[-1], "cold cache s": cold, "warm cache s": warm}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", action="store_true", help="also time the numba test files cold and warm")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_results" / "numba_compile.json")
    args = ap.parse_args()
    doc = {"load average before": os.getloadavg(), "first call s": latency()}
    if args.tests:
        doc["test suite"] = test_times()
    doc["load average after"] = os.getloadavg()
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
