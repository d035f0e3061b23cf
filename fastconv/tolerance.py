"""The one tolerance table: how far a result may be from the float64 reference, for the tests and the benchmarks.

Max |result - reference| / max |reference| over the finite reference values, per op family and dtype. float64
results must agree to rounding; float32 to its accumulation error (long conv, linear and batch-norm sums round
more than pooling's window maxima and means; ReLU is exact). The limits hold at the benchmark shapes too: the
largest float32 error recorded by `fastconv bench` (bench_results/*.json, max_rel_err) was 1.7e-6 for a conv and
8.2e-6 for torch's channels_last batch norm, against the 5e-5 here.
"""

from __future__ import annotations

import numpy as np

TOLERANCE = {
    "conv": {"float64": 1e-12, "float32": 5e-5},
    "linear": {"float64": 1e-12, "float32": 5e-5},
    "pool": {"float64": 1e-13, "float32": 2e-6},
    "bn": {"float64": 1e-11, "float32": 5e-5},
    "eltwise": {"float64": 0.0, "float32": 0.0},
}


def tolerance(family: str, dtype) -> float:
    """The limit for op family `family` ('conv', 'linear', 'pool', 'bn', 'eltwise') in `dtype`."""
    return TOLERANCE[family][np.dtype(dtype).name]
