"""Normalised, validated parameters for every op: the one place where argument checks and shape math live.

Each builder takes the user's arguments, rejects bad ones with a TypeError/ValueError naming the function, the
argument and the shapes, and returns a frozen params object. Kernels receive only these objects, so they never see
an int-or-pair, a padding string or an unchecked shape. Output sizes are computed once, when the object is built.

Output size per spatial dim (conv and pooling):
    out = floor((in + pad_begin + pad_end - dilation*(k-1) - 1) / stride) + 1
with ceil instead of floor under `ceil_mode`, where the last window must start inside the input or the left padding.
"""

from .common import EltwiseParams, Traits, _int_tuple, ceil_div, check_grad_out, conv_output_size, output_size
from .conv import PADDING_MODES, ConvParams, ConvTraits, conv_params
from .dense import BatchNormParams, LinearParams, batch_norm_params, linear_params
from .norm import NormParams, group_norm_params, instance_norm_params, layer_norm_params
from .pool import AdaptivePoolParams, PoolParams, adaptive_pool_params, adaptive_windows, pool_params
from .transpose import ConvTransposeParams, conv_transpose_params

__all__ = [
    "PADDING_MODES",
    "AdaptivePoolParams",
    "BatchNormParams",
    "ConvParams",
    "ConvTraits",
    "ConvTransposeParams",
    "EltwiseParams",
    "LinearParams",
    "PoolParams",
    "Traits",
    "NormParams",
    "group_norm_params",
    "instance_norm_params",
    "layer_norm_params",
    "_int_tuple",
    "adaptive_pool_params",
    "adaptive_windows",
    "batch_norm_params",
    "ceil_div",
    "check_grad_out",
    "conv_output_size",
    "conv_params",
    "conv_transpose_params",
    "linear_params",
    "output_size",
    "pool_params",
]
