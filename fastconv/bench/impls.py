"""What gets timed: fastconv backends (one per backend and algorithm) and the baselines.

Every implementation converts the run's host inputs to its own arrays (`prepare`), builds the call for a case,
brings outputs back to NumPy for the check, and brings its timer. Baselines:
  numpy-ref        fastconv's NumPy reference backend in the run's dtype
  torch-nchw       torch.nn.functional / aten on CPU, NCHW tensors
  torch-cl         the same on channels_last tensors (converted before timing, as a channels_last model holds them)
  torch-cuda-fp32  on the GPU through cuDNN with TF32 off;  torch-cuda-tf32: TF32 allowed (looser check)
The torch calls do the same work as fastconv's API except where noted in `torch_call`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

import fastconv as fc

from .. import dispatch
from ..arrays import array_kind
from .cases import Case, ConvProblem, PoolProblem
from .ops import Call, fastconv_call
from .timing import CpuTimer, CudaEventTimer

BASELINES = ("numpy-ref", "torch-nchw", "torch-cl", "torch-cuda-fp32", "torch-cuda-tf32")


@dataclass(frozen=True)
class FastconvImpl:
    """One fastconv backend with one algorithm: a name, 'auto' (what the dispatcher picks by shape) or 'autotune'
    ('auto' inside fastconv.autotune(): the first call times every algorithm and keeps the fastest)."""

    backend: str
    algo: str = "auto"
    baseline: bool = False  # the numpy reference doubles as the NumPy baseline
    precision: str = "fp32"  # of the convolutions (fastconv.precision); pooling and BN ignore it

    @property
    def label(self) -> str:
        return "numpy-ref" if self.baseline else f"{self.backend}/{self.algo}"

    @functools.cached_property
    def array_kind(self) -> str:
        return dispatch.backend_status(self.backend).array_kind

    @property
    def device(self) -> str:
        return "gpu" if self.array_kind == "cupy" else "cpu"

    tolerance_floor = 0.0  # the check's tolerance is at least this (see fastconv.tolerance)

    def prepare(self, case: Case, host: dict[str, np.ndarray]) -> dict[str, Any]:
        if self.array_kind == "numpy":
            return host
        import cupy  # noqa: PLC0415

        return {k: cupy.asarray(v) for k, v in host.items()}

    @property
    def api_algo(self) -> str:
        return "auto" if self.algo == "autotune" else self.algo

    def call(self, case: Case, inputs: dict[str, Any]) -> Call:
        """The case's call planned on `inputs` (fastconv.bench.ops.fastconv_call) in the implementation's precision
        (the plan keeps it)."""
        with fc.use_precision(self.precision):
            return fastconv_call(case, self.backend, self.api_algo, inputs)

    def timer(self) -> Callable:
        if self.array_kind == "numpy":
            return CpuTimer()
        import cupy  # noqa: PLC0415

        return CudaEventTimer(cupy.cuda.Event, cupy.cuda.get_current_stream().synchronize)

    @contextlib.contextmanager
    def settings(self) -> Iterator[None]:
        """For 'autotune': fastconv.autotune() around the checked and timed calls, its cache cleared afterwards so
        that an 'auto' implementation timed later still runs the by-shape choice."""
        if self.algo != "autotune":
            yield
            return
        try:
            with fc.autotune():
                yield
        finally:
            fc.clear_autotune_cache()

    @staticmethod
    def to_host(outputs: tuple) -> list[np.ndarray]:
        return [o if array_kind(o) == "numpy" else o.get() for o in outputs]


@dataclass(frozen=True)
class TorchImpl:
    """A torch baseline: CPU (NCHW or channels_last) or CUDA (TF32 on or off)."""

    label: str
    device: str  # 'cpu' or 'gpu'
    channels_last: bool = False
    tf32: bool = False
    precision: str = "fp32"  # "bf16": the conv cases on bfloat16 tensors (converted before timing)
    backend = "torch"

    @property
    def algo(self) -> str:
        return (
            "cudnn-tf32"
            if self.tf32
            else ("cudnn" if self.device == "gpu" else ("channels_last" if self.channels_last else "nchw"))
        )

    @property
    def tolerance_floor(self) -> float:
        # TF32 keeps 10 mantissa bits: ~5e-4 relative error per product; bfloat16 tensors give bfloat16 outputs
        return 1e-2 if self.tf32 or self.precision == "bf16" else 0.0

    def prepare(self, case: Case, host: dict[str, np.ndarray]) -> dict[str, Any]:
        """Tensors sharing or copying the host inputs; bn-bwd also gets the batch statistics it consumes."""
        import torch  # noqa: PLC0415

        out = {}
        for k, v in host.items():
            t = torch.from_numpy(v)
            if self.device == "gpu":
                t = t.cuda()
            if self.precision == "bf16" and isinstance(case.problem, ConvProblem):
                t = t.bfloat16()
            if self.channels_last and t.ndim == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            out[k] = t
        if case.op == "bn-bwd":
            stats = torch.ops.aten.native_batch_norm(
                out["x"], out["gamma"], None, None, None, True, 0.1, case.problem.eps
            )
            out["mean"], out["invstd"] = stats[1], stats[2]
        return out

    def call(self, case: Case, inputs: dict[str, Any]) -> Call:
        return Call(torch_call(case, self.channels_last), lambda: self.algo)

    def timer(self) -> Callable:
        if self.device == "cpu":
            return CpuTimer()
        import torch  # noqa: PLC0415

        return CudaEventTimer(lambda: torch.cuda.Event(enable_timing=True), torch.cuda.synchronize)

    @contextlib.contextmanager
    def settings(self) -> Iterator[None]:
        """The TF32 switches of the CUDA baselines (cuDNN's, and cuBLAS's for any matmul torch routes a conv to),
        set to this baseline's and restored afterwards."""
        if self.device == "cpu":
            yield
            return
        import torch  # noqa: PLC0415

        switches = (torch.backends.cudnn, torch.backends.cuda.matmul)
        before = [s.allow_tf32 for s in switches]
        for s in switches:
            s.allow_tf32 = self.tf32
        try:
            yield
        finally:
            for s, value in zip(switches, before):
                s.allow_tf32 = value

    @staticmethod
    def to_host(outputs: tuple) -> list[np.ndarray]:
        import torch  # noqa: PLC0415

        return [(o.float() if o.dtype == torch.bfloat16 else o).detach().cpu().numpy() for o in outputs]


def _torch_padding(p: Any) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
    """torch convs take symmetric padding; an asymmetric one is applied with F.pad (left, right, top, bottom)."""
    (t, b), (lf, rt) = p.padding
    return ((t, lf), None) if (t, lf) == (b, rt) else ((0, 0), (lf, rt, t, b))


def torch_call(case: Case, channels_last: bool) -> Callable[[dict[str, Any]], tuple]:
    """The torch equivalent of a case's fastconv call. Differences in work: pool-bwd runs max_pool2d_with_indices
    and its backward (fastconv's API also finds the maxima again from x); bn-bwd uses the batch statistics of a
    forward pass done in `prepare` (fastconv's API recomputes them), so torch does less work there."""
    import torch  # noqa: PLC0415
    import torch.nn.functional as F  # noqa: PLC0415, N812

    aten = torch.ops.aten
    pr, op = case.problem, case.op
    p = pr.params()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if isinstance(pr, ConvProblem):
        pad, explicit = _torch_padding(p)
        args = (list(p.stride), list(pad), list(p.dilation), False, [0, 0], p.groups)
        xs = (p.N, p.C, p.H + p.padding[0][0] + p.padding[0][1], p.W + p.padding[1][0] + p.padding[1][1])
        (t, _), (lf, _) = p.padding
        if op == "fwd":
            return lambda a: (
                F.conv2d(
                    F.pad(a["x"], explicit) if explicit else a["x"], a["w"], None, p.stride, pad, p.dilation, p.groups
                ),
            )
        if op == "bwd-data":
            stub = {}

            def bwd_data(a: dict[str, Any]) -> tuple:
                gy = a["gy"]
                x = stub.setdefault(
                    "x",
                    torch.empty(xs if explicit else pr.x_shape, dtype=gy.dtype, device=gy.device, memory_format=fmt),
                )
                gx = aten.convolution_backward(gy, x, a["w"], None, *args, [True, False, False])[0]
                return (gx[:, :, t : t + p.H, lf : lf + p.W] if explicit else gx,)

            return bwd_data
        w_stub = {}
        return lambda a: (
            aten.convolution_backward(
                a["gy"],
                F.pad(a["x"], explicit) if explicit else a["x"],
                w_stub.setdefault(
                    "w", torch.empty(pr.w_shape, dtype=a["x"].dtype, device=a["x"].device, memory_format=fmt)
                ),
                None,
                *args,
                [False, True, False],
            )[1],
        )
    if isinstance(pr, PoolProblem):
        pool = (list(p.kernel), list(p.stride), list(p.padding), list(p.dilation), p.ceil_mode)
        if op == "pool-fwd":
            return lambda a: (F.max_pool2d(a["x"], *pool),)

        def pool_bwd(a: dict[str, Any]) -> tuple:
            _, idx = aten.max_pool2d_with_indices(a["x"], *pool)
            return (aten.max_pool2d_with_indices_backward(a["gy"], a["x"], *pool, idx),)

        return pool_bwd
    if op == "bn-fwd":
        return lambda a: (F.batch_norm(a["x"], None, None, a["gamma"], a["beta"], True, 0.1, pr.eps),)
    return lambda a: tuple(
        aten.native_batch_norm_backward(
            a["gy"], a["x"], a["gamma"], None, None, a["mean"], a["invstd"], True, pr.eps, [True, True, True]
        )
    )


def torch_status(device: str) -> str | None:
    """Why a torch baseline cannot run here (None when it can)."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    if device == "gpu":
        import torch  # noqa: PLC0415

        if not torch.cuda.is_available():
            return "torch sees no CUDA device"
    return None


def baseline(name: str, precision: str = "fp32") -> FastconvImpl | TorchImpl:
    """A baseline by name; with precision "bf16" the torch CPU baselines take bfloat16 tensors, and the numpy
    reference rounds the operands as fastconv does."""
    if name == "numpy-ref":
        return FastconvImpl("numpy", baseline=True, precision=precision)
    cpu_precision = precision if precision == "bf16" else "fp32"
    return {
        "torch-nchw": TorchImpl("torch-nchw", "cpu", precision=cpu_precision),
        "torch-cl": TorchImpl("torch-cl", "cpu", channels_last=True, precision=cpu_precision),
        "torch-cuda-fp32": TorchImpl("torch-cuda-fp32", "gpu"),
        "torch-cuda-tf32": TorchImpl("torch-cuda-tf32", "gpu", tf32=True),
    }[name]
