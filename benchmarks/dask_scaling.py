"""fastconv.dask throughput with 1 and 2 workers of a dask.distributed LocalCluster on this machine.

    PYTHONPATH=. python benchmarks/dask_scaling.py [--repeat 5] [--out bench_results/dask_scaling.json]

Two workloads, each checked against the single-process call before it is timed:
  resnet18   fastconv.dask.predict of resnet18 (eval, seeded weights) on N x 3x224x224, chunks of 4 images
  big_conv   fastconv.dask.conv2d, 3x3 pad 1, 16 -> 16 channels on one 16x2048x2048 image, 512x512 blocks
Each worker is one process with one numba thread (NUMBA_NUM_THREADS=1, OMP/OPENBLAS threads 1), so 2 workers use
the machine's 2 cores; the single-process baseline runs in this process at 1 and at 2 numba threads. The input is
persisted on the workers first, as data loaded by the cluster would be; each timed compute reduces the output to
one number on the workers (max for big_conv; predict's logits are small and come back), so what is timed is the
computation, not the client's network. Times are the median of --repeat computes after one warm-up compute (which
loads the numba cache and ships the weights).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

ONE_THREAD = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
os.environ.update({k: os.environ.get(k, v) for k, v in {"OMP_WAIT_POLICY": "PASSIVE"}.items()})

import dask.array as da  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402
from distributed import Client, LocalCluster, wait  # noqa: E402

import fastconv as fc  # noqa: E402
import fastconv.dask as fcd  # noqa: E402
from fastconv import models, nn  # noqa: E402
from fastconv.bench.machine import fingerprint  # noqa: E402


def _median_seconds(run, repeat: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _compute(client: Client, collection) -> None:
    future = client.compute(collection)
    future.result()
    client.cancel(future)  # release the result now, so the next compute of the same graph runs it again


def workloads(n_images: int):
    rng = np.random.default_rng(0)
    nn.manual_seed(0)
    model = models.resnet18().eval()
    images = rng.standard_normal((n_images, 3, 224, 224)).astype(np.float32)
    image = rng.standard_normal((1, 16, 2048, 2048)).astype(np.float32)
    w = (rng.standard_normal((16, 16, 3, 3)) / 12).astype(np.float32)
    return {
        "resnet18": dict(
            unit="images/s",
            work=n_images,
            local=lambda: model(images),
            data=(images, (4, 3, 224, 224)),
            op=lambda x: fcd.predict(model, x),
            timed=lambda y: y,
        ),
        "big_conv": dict(
            unit="Mpixel/s",
            work=2048 * 2048 / 1e6,
            local=lambda: fc.conv2d(image, w, padding=1),
            data=(image, (1, 16, 512, 512)),
            op=lambda x: fcd.conv2d(x, w, padding=1),
            timed=lambda y: y.max(),
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("bench_results/dask_scaling.json"))
    args = parser.parse_args()
    jobs = workloads(args.images)
    rows = []
    for name, job in jobs.items():
        expected = job["local"]()
        for threads in (1, 2):
            numba.set_num_threads(threads)
            t = _median_seconds(job["local"], args.repeat)
            rows.append(
                dict(
                    workload=name,
                    setup=f"single process, {threads} numba thread(s)",
                    seconds=t,
                    rate=job["work"] / t,
                    unit=job["unit"],
                )
            )
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        for workers in (1, 2):
            with (
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    env=ONE_THREAD,
                ) as cluster,
                Client(cluster) as client,
            ):
                host, chunks = job["data"]
                x = client.persist(da.from_array(host, chunks=chunks))
                wait(x)
                y = job["op"](x)
                got = client.compute(y).result()
                err = float(np.abs(got - expected).max() / np.abs(expected).max())
                assert err < 1e-5, f"{name}: dask result differs from the single call (relative error {err:.2e})"
                timed = job["timed"](y)
                t = _median_seconds(lambda timed=timed, client=client: _compute(client, timed), args.repeat)
            rows.append(
                dict(
                    workload=name,
                    setup=f"LocalCluster, {workers} worker(s) x 1 thread",
                    seconds=t,
                    rate=job["work"] / t,
                    unit=job["unit"],
                    max_rel_error=err,
                )
            )
            print(f"{name}: {rows[-1]['setup']}: {t:.3f} s = {rows[-1]['rate']:.2f} {job['unit']}", flush=True)
    doc = {
        "benchmark": "dask_scaling",
        "machine": fingerprint(),
        "repeat": args.repeat,
        "images": args.images,
        "note": "2-core VM shared with other jobs while measuring; medians",
        "rows": rows,
    }
    args.out.write_text(json.dumps(doc, indent=1))
    lines = ["| workload | setup | median time | rate |", "|---|---|---|---|"]
    lines += [f"| {r['workload']} | {r['setup']} | {r['seconds']:.3f} s | {r['rate']:.2f} {r['unit']} |" for r in rows]
    args.out.with_suffix(".md").write_text("# fastconv.dask scaling (this machine)\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
