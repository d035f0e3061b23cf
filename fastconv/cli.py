"""The `fastconv` command line (also `python -m fastconv`).

Each subcommand lives in its own module, which defines `register(subparsers)`: it adds its parser and sets
`run=<function(args) -> int>` as a default. Modules are imported only when the CLI starts.
"""

from __future__ import annotations

import argparse
import importlib

from . import __version__

COMMAND_MODULES = (
    "fastconv.demo",
    "fastconv.train",
    "fastconv.bench.cli",
    "fastconv.model_summary",
    "fastconv.warmup",
    "fastconv.gpucheck.cli",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fastconv", description="Convolution kernels for NumPy and CuPy.")
    parser.add_argument("--version", action="version", version=f"fastconv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)
