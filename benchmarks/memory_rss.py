"""Peak resident memory of a ResNet-50 N8 forward and of one training step, fastconv against torch on the same model.

    python benchmarks/memory_rss.py [--out bench_results/memory_rss.json]

Each measurement is a fresh Python process (the peak RSS of a process only grows): it builds the model (fastconv's
resnet50, or its torch.nn twin from torch_twin.py with the same weights), runs one warm-up pass, and reports the
peak RSS after the import and model construction ("baseline"), and after the measured pass. float32, 224x224,
batch 8, 2 threads; the training step is forward, cross-entropy, backward and SGD with momentum. Reported: the
growth of the peak over the baseline (what the pass needed) and the total peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import resource, sys, json
import numpy as np
sys.path.insert(0, {bench!r})
mode, what = sys.argv[1], sys.argv[2]
import fastconv.models as models, fastconv.nn as nn
from fastconv.optim import SGD
nn.manual_seed(0)
model = models.resnet50()
x = np.random.default_rng(0).standard_normal((8, 3, 224, 224)).astype(np.float32)
labels = np.arange(8) % 1000
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if mode == "torch":
    import torch
    from torch_twin import torch_twin
    torch.set_num_threads(2)
    tm = torch_twin(model)
    del model
    tx, ty = torch.from_numpy(x), torch.from_numpy(labels)
    opt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
    def run():
        if what == "forward":
            tm.eval()
            with torch.no_grad():
                tm(tx)
        else:
            tm.train()
            loss = torch.nn.functional.cross_entropy(tm(tx), ty)
            opt.zero_grad(); loss.backward(); opt.step()
else:
    import numba
    numba.set_num_threads(2)
    loss_fn = nn.CrossEntropyLoss()
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    def run():
        if what == "forward":
            model.eval(); model(x)
        else:
            model.train()
            loss_fn(model(x), labels)
            model.backward(loss_fn.backward(), need_input=False)
            opt.step(); opt.zero_grad()
base = peak()
run()
run()
print(json.dumps({{"baseline_bytes": base, "peak_bytes": peak()}}))
"""


def measure(mode: str, what: str) -> dict:
    code = _PROBE.format(bench=str(ROOT / "benchmarks"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code, mode, what], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    r = json.loads(out.strip().splitlines()[-1])
    r["growth_bytes"] = r["peak_bytes"] - r["baseline_bytes"]
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench_results" / "memory_rss.json")
    args = ap.parse_args()
    doc = {}
    for what in ("forward", "train_step"):
        doc[what] = {mode: measure(mode, what) for mode in ("fastconv", "torch")}
        f, t = doc[what]["fastconv"], doc[what]["torch"]
        doc[what]["peak_ratio"] = f["peak_bytes"] / t["peak_bytes"]
        doc[what]["growth_ratio"] = f["growth_bytes"] / t["growth_bytes"]
        print(
            f"{what}: fastconv peak {f['peak_bytes'] / 2**20:.0f} MiB (+{f['growth_bytes'] / 2**20:.0f}), torch "
            f"{t['peak_bytes'] / 2**20:.0f} MiB (+{t['growth_bytes'] / 2**20:.0f}): peak ratio "
            f"{doc[what]['peak_ratio']:.2f}, growth ratio {doc[what]['growth_ratio']:.2f}"
        )
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
