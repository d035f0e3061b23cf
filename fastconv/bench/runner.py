"""Check, then time: every (case, implementation, thread count) becomes one result record.

For each case: fresh random inputs in the run's dtype; the float64 reference computed by the NumPy backend from
those same (rounded) inputs; copies of the inputs for rotation. For each implementation: its output on the first
copy is compared with the reference (max |out - ref| / max |ref| per output, against fastconv.tolerance); only a correct
implementation is timed. A wrong or failing one is recorded with its error and the run goes on. With a deadline,
no case starts after it: the run returns the records of the cases that did.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import fastconv as fc

from .. import dispatch
from ..tolerance import tolerance as table_tolerance
from .cases import Case
from .descriptor import to_descriptor
from .impls import FastconvImpl, TorchImpl
from .ops import REGISTRY_OP, fastconv_call, flops, random_inputs, traffic_bytes
from .timing import Policy, Progress, copies_for, measure

Impl = FastconvImpl | TorchImpl

# The op family of each bench op in the one tolerance table (fastconv.tolerance), which the tests use too.
FAMILY = {
    "fwd": "conv",
    "bwd-data": "conv",
    "bwd-weight": "conv",
    "pool-fwd": "pool",
    "pool-bwd": "pool",
    "bn-fwd": "bn",
    "bn-bwd": "bn",
}


@dataclass
class RunConfig:
    cases: Sequence[Case]
    impls: Sequence[Impl]
    dtype: str = "float32"
    threads: Sequence[int] = (1,)
    policy: Policy = field(default_factory=Policy)
    rotate_bytes: int = 256 << 20
    seed: int = 0
    precision: str = "fp32"  # of the conv cases: the reference rounds their operands the same way
    deadline: float | None = None  # time.monotonic() after which no further case is started (its records left out)


def tolerance(impl: Impl, op: str, dtype: str) -> float:
    return max(table_tolerance(FAMILY[op], dtype), impl.tolerance_floor)


def case_label(case: Case) -> str:
    return case.problem.name or to_descriptor(case.problem)


def applies(impl: Impl, case: Case) -> bool:
    """A named algorithm runs only on the ops that register it ('auto', 'autotune' and baselines run everywhere)."""
    if isinstance(impl, TorchImpl) or impl.api_algo == "auto":
        return True
    return impl.algo in dispatch.algos(REGISTRY_OP[case.op], impl.backend)


@contextlib.contextmanager
def threads_set(n: int) -> Iterator[None]:
    """Run with n threads in Numba, torch and (through threadpoolctl, when installed) the BLAS libraries."""
    try:
        import numba  # noqa: PLC0415 - a runtime dependency, imported only when a run starts
    except ImportError:
        numba = None
    if numba is not None:
        if n > numba.config.NUMBA_NUM_THREADS:
            raise ValueError(
                f"bench: {n} threads requested but Numba was started with "
                f"NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}"
            )
        numba.set_num_threads(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:
        yield
        return
    with threadpool_limits(n):
        yield


def relative_error(outputs: list[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """The worst over the outputs of max |out - ref| / max |ref| (inf on a shape mismatch or a NaN)."""
    worst = 0.0
    for out, ref in zip(outputs, reference, strict=True):
        out = np.asarray(out)
        if out.shape != ref.shape:
            return float("inf")
        diff = np.abs(out.astype(np.float64) - ref)
        if np.isnan(diff).any():
            return float("inf")
        worst = max(worst, float(diff.max(initial=0.0)) / max(float(np.abs(ref).max(initial=0.0)), 1e-300))
    return worst


def _record(case: Case, impl: Impl, cfg: RunConfig, threads: int, copies: int, **fields: Any) -> dict[str, Any]:
    itemsize = np.dtype(cfg.dtype).itemsize
    record = {
        "case": case_label(case),
        "descriptor": to_descriptor(case.problem),
        "op": case.op,
        "impl": impl.label,
        "kind": "baseline" if isinstance(impl, TorchImpl) or impl.baseline else "fastconv",
        "backend": impl.backend,
        "algo": impl.algo,
        "selected_algo": None,
        "device": impl.device,
        "dtype": cfg.dtype,
        "precision": cfg.precision,
        "threads": threads,
        "flops": flops(case),
        "bytes": traffic_bytes(case, itemsize),
        "status": "ok",
        "message": None,
        "max_rel_err": None,
        "tolerance": tolerance(impl, case.op, cfg.dtype),
        "copies": copies,
        "time_s": None,
    }
    record.update(fields)
    return record


def _check_and_time(
    case: Case, impl: Impl, inputs: list[dict[str, Any]], reference: Sequence[np.ndarray], cfg: RunConfig, threads: int
) -> dict[str, Any]:
    def rec(**fields: Any) -> dict[str, Any]:
        return _record(case, impl, cfg, threads, len(inputs), **fields)

    try:
        with impl.settings():
            call = impl.call(case, inputs[0])
    except ValueError as exc:  # the named algorithm does not support this shape
        return rec(status="unsupported", message=str(exc))
    selected = call.selected()
    try:
        with impl.settings(), threads_set(threads):
            err = relative_error(impl.to_host(call.run(inputs[0])), reference)
            tol = tolerance(impl, case.op, cfg.dtype)
            if not err <= tol:  # also catches NaN
                return rec(
                    status="wrong",
                    selected_algo=selected,
                    max_rel_err=err,
                    message=f"max relative error {err:.3g} > tolerance {tol:.3g}; not timed",
                )
            stats = measure(lambda i: call.run(inputs[i]), impl.timer(), len(inputs), cfg.policy)
            selected = call.selected()  # after the calls: what autotuning chose
    except Exception as exc:  # one failing implementation must not end the run
        return rec(status="error", selected_algo=selected, message=f"{type(exc).__name__}: {exc}"[:2000])
    return rec(selected_algo=selected, max_rel_err=err, time_s=stats)


def case_data(case: Case, cfg: RunConfig, rng: np.random.Generator) -> tuple[list[dict], list[np.ndarray]]:
    """Host input copies in the run's dtype, and the float64 reference outputs for them."""
    host = {k: v.astype(cfg.dtype) for k, v in random_inputs(case, rng).items()}
    host64 = {k: v.astype(np.float64) for k, v in host.items()}
    with fc.use_precision(cfg.precision):
        reference = fastconv_call(case, "numpy", "auto", host64).run(host64)
    copies = copies_for(sum(a.nbytes for a in host.values()), cfg.rotate_bytes)
    return [host] + [{k: v.copy() for k, v in host.items()} for _ in range(copies - 1)], list(reference)


def run(cfg: RunConfig, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every applicable (case, implementation, thread count), checked then timed, as result records."""
    rng = np.random.default_rng(cfg.seed)
    work = [(case, [impl for impl in cfg.impls if applies(impl, case)]) for case in cfg.cases]
    progress = progress or Progress(sum(len(impls) for _, impls in work) * len(cfg.threads), enabled=False)
    results = []
    for case, impls in work:
        if cfg.deadline is not None and time.monotonic() > cfg.deadline:
            break
        host, reference = case_data(case, cfg, rng)
        for impl in impls:
            try:
                inputs = [impl.prepare(case, h) for h in host]
            except Exception as exc:  # e.g. out of device memory
                for threads in cfg.threads:
                    results.append(
                        _record(
                            case,
                            impl,
                            cfg,
                            threads,
                            len(host),
                            status="error",
                            message=f"{type(exc).__name__}: {exc}"[:2000],
                        )
                    )
                continue
            for threads in cfg.threads:
                progress.step(f"{case_label(case)} {case.op} {impl.label} {threads}t")
                results.append(_check_and_time(case, impl, inputs, reference, cfg, threads))
            del inputs
    progress.close()
    return results
