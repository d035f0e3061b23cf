"""CuPyLauncher: runs the kernels of kernels/*.cu on the current CUDA device through cupy.RawModule.

Each (file, tunables) is one RawModule, built on first use: NVRTC compiles the .cu with the tunables as -D options
and kernels/ on the include path; CuPy caches the compiled module on disk (keyed by source and options, so the
options also carry a digest of the shared headers, which CuPy's key does not see). A compile error is raised with
NVRTC's log.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .launch import Launch, Launcher
from .loader import headers_digest, kernels_dir, source_path


def probe() -> str | None:
    """Why the "cuda" backend cannot run here, or None when CuPy sees a device."""
    try:
        import cupy  # noqa: PLC0415 - optional dependency, imported only when probed
    except ImportError as exc:
        return f"CuPy is not installed ({exc}); pip install 'fastconv[cuda12]' or 'fastconv[cuda13]'"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError without a driver or device
        return f"CuPy sees no CUDA device ({type(exc).__name__}: {exc})"
    return None if count > 0 else "CuPy sees no CUDA device"


def nvrtc_options(file: str | Path, defines: dict[str, int]) -> tuple[str, ...]:
    """The compile options of one module: C++17, the kernels folder, the header digest, the tunables."""
    return (
        "-std=c++17",
        f"-I{kernels_dir()}",
        f"-DFC_HEADERS_DIGEST=0x{headers_digest()}",
        *(f"-D{name}={value}" for name, value in sorted(defines.items())),
    )


class CuPyLauncher(Launcher):
    """Modules and kernel functions are looked up once per (file, kernel, tunable overrides): a launch then costs
    one dict lookup before CuPy's own launch path (no options, digests or tunables recomputed)."""

    kind = "cupy"

    def __init__(self) -> None:
        super().__init__()
        self._modules: dict[tuple, Any] = {}
        self._functions: dict[tuple, Any] = {}
        self._capability: int | None = None  # of the current device, asked once

    def compute_capability(self) -> int:
        if self._capability is None:
            import cupy  # noqa: PLC0415

            self._capability = int(cupy.cuda.Device().compute_capability)
        return self._capability

    def module(self, file: str | Path) -> Any:
        """The cupy.RawModule of `file` with this launcher's tunables (created once; compiled by CuPy on use)."""
        import cupy  # noqa: PLC0415

        options = nvrtc_options(file, self.tunables(str(file)))
        key = (str(file), options)
        if key not in self._modules:
            self._modules[key] = cupy.RawModule(code=source_path(file).read_text(), options=options)
        return self._modules[key]

    def function(self, file: str | Path, kernel: str) -> Any:
        """Entry point `kernel` of `file` under the current tunables, compiled on first use."""
        key = (str(file), kernel, frozenset(self.overrides.items()))
        fn = self._functions.get(key)
        if fn is None:
            import cupy  # noqa: PLC0415

            try:
                fn = self._functions[key] = self.module(file).get_function(kernel)
            except cupy.cuda.compiler.CompileException as exc:
                raise RuntimeError(
                    f"NVRTC could not compile {Path(file).name} with options "
                    f"{nvrtc_options(file, self.tunables(str(file)))}:\n{exc}"
                ) from exc
        return fn

    def launch(self, file: str | Path, kernel: str, cfg: Launch, args: Sequence[Any]) -> None:
        self.function(file, kernel)(cfg.grid, cfg.block, tuple(args), shared_mem=cfg.shared_bytes)
