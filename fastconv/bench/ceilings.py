"""The machine's ceilings, measured in the same run as the cases and stored with them.

CPU: GEMM peak (numpy.matmul in the run's dtype) and copy bandwidth, per thread count, each in a child process
(cpu_probe.py) whose environment sets the BLAS thread count. OPENBLAS_CORETYPE forces OpenBLAS onto an older
kernel (on these machines it halves numpy's SGEMM), so the peak is measured with it removed from the environment
("clean"); when it is set, the GEMM is measured a second time with it as inherited ("inherited") and both are stored.
GPU (when CuPy sees a device): device-to-device copy bandwidth and matmul peak, timed with CUDA events.
bf16 runs (`--precision bf16`) add the CPU's bfloat16 GEMM peak, measured with torch's bfloat16 matmul (AMX or
AVX512-BF16 where the CPU has them) when torch is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROBE = Path(__file__).with_name("cpu_probe.py")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def probe_env(base: dict[str, str], threads: int, keep_coretype: bool) -> dict[str, str]:
    """The child's environment: `base` with the BLAS thread count set, and OPENBLAS_CORETYPE removed unless
    `keep_coretype`."""
    env = {k: v for k, v in base.items() if keep_coretype or k != "OPENBLAS_CORETYPE"}
    env.update({k: str(threads) for k in THREAD_VARS})
    return env


def _probe(
    env: dict[str, str], threads: int, dtype: str, gemm_n: int, copy_mib: int, min_time: float
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(PROBE),
        "--threads",
        str(threads),
        "--dtype",
        dtype,
        "--gemm-n",
        str(gemm_n),
        "--copy-mib",
        str(copy_mib),
        "--min-time",
        str(min_time),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"ceiling probe failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def _entry(
    name: str, device: str, threads: int | None, env: str, rates: tuple[float, float], unit: str, how: str
) -> dict[str, Any]:
    return {
        "name": name,
        "device": device,
        "threads": threads,
        "env": env,
        "value": rates[0],
        "median": rates[1],
        "unit": unit,
        "how": how,
    }


def cpu_ceilings(
    threads_list: list[int], dtype: str = "float32", gemm_n: int = 2048, copy_mib: int = 256, min_time: float = 0.5
) -> list[dict[str, Any]]:
    """GEMM peak and copy bandwidth for each thread count (value: the best of the repeats; median beside it)."""
    gemm_name = {"float32": "sgemm", "float64": "dgemm"}[dtype]
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    out = []
    for threads in threads_list:
        clean = _probe(probe_env(dict(os.environ), threads, False), threads, dtype, gemm_n, copy_mib, min_time)
        how = f"numpy.matmul {dtype} {gemm_n}^3, {threads} BLAS threads, OPENBLAS_CORETYPE unset"
        out.append(_entry(gemm_name, "cpu", threads, "clean", clean["gemm"], "GFLOP/s", how))
        if coretype is not None:
            inherited = _probe(probe_env(dict(os.environ), threads, True), threads, dtype, gemm_n, 0, min_time)
            how = f"numpy.matmul {dtype} {gemm_n}^3, {threads} BLAS threads, OPENBLAS_CORETYPE={coretype}"
            out.append(_entry(gemm_name, "cpu", threads, "inherited", inherited["gemm"], "GFLOP/s", how))
        if copy_mib:
            how = f"numpy.copyto of {copy_mib} MiB in {threads} threads, read + write bytes"
            out.append(_entry("copy", "cpu", threads, "clean", clean["copy"], "GB/s", how))
    return out


def cpu_bf16_ceilings(threads_list: list[int], gemm_n: int = 2048, repeats: int = 10) -> list[dict[str, Any]]:
    """torch.matmul of bfloat16 gemm_n^3 for each thread count (empty without torch): the bf16 conv ceiling."""
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return []
    import time  # noqa: PLC0415

    before, out = torch.get_num_threads(), []
    a = torch.ones((gemm_n, gemm_n), dtype=torch.bfloat16)
    try:
        for threads in threads_list:
            torch.set_num_threads(threads)
            a @ a  # warm-up
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                a @ a
                times.append(time.perf_counter() - start)
            times.sort()
            work = 2 * gemm_n**3 / 1e9
            how = f"torch.matmul bfloat16 {gemm_n}^3 (float32 accumulation), {threads} threads"
            out.append(
                _entry(
                    "bf16gemm", "cpu", threads, "clean", (work / times[0], work / times[repeats // 2]), "GFLOP/s", how
                )
            )
    finally:
        torch.set_num_threads(before)
    return out


def gpu_ceilings(dtype: str = "float32", gemm_n: int = 8192, copy_mib: int = 1024) -> list[dict[str, Any]]:
    """Device-to-device copy and matmul peak on CuPy's current device (empty when there is none)."""
    try:
        import cupy  # noqa: PLC0415

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return []
    except Exception:  # no CuPy, driver or device
        return []
    from .timing import CudaEventTimer  # noqa: PLC0415

    timer = CudaEventTimer(cupy.cuda.Event, cupy.cuda.get_current_stream().synchronize)

    def rates(fn, work: float) -> tuple[float, float]:
        fn()
        times = sorted(timer(fn) for _ in range(10))
        return work / times[0], work / times[len(times) // 2]

    def copy_rates() -> tuple[float, float]:
        src = cupy.ones(copy_mib << 18, cupy.float32)
        dst = cupy.empty_like(src)
        return rates(lambda: cupy.copyto(dst, src), 2 * (copy_mib << 20) / 1e9)

    def gemm_rates() -> tuple[float, float]:
        a = cupy.ones((gemm_n, gemm_n), dtype)
        c = cupy.empty_like(a)
        return rates(lambda: cupy.matmul(a, a, out=c), 2 * gemm_n**3 / 1e9)

    copy, gemm = copy_rates(), gemm_rates()  # each frees its buffers before the next allocates
    tf32 = os.environ.get("CUPY_TF32", "0")
    return [
        _entry(
            "gpu_copy",
            "gpu",
            None,
            "device",
            copy,
            "GB/s",
            f"cupy.copyto of {copy_mib} MiB device to device, read + write bytes",
        ),
        _entry(
            {"float32": "gpu_sgemm", "float64": "gpu_dgemm"}[dtype],
            "gpu",
            None,
            "device",
            gemm,
            "GFLOP/s",
            f"cupy.matmul {dtype} {gemm_n}^3 (CUPY_TF32={tf32})",
        ),
    ]
