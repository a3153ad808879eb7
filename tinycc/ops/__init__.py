"""Operator registry: one module per operator family, each op described in one place: import
rule, shape inference, float reference, hooks for the passes and the quantizer, int8 lowering,
the integer reference of its kernels (params dataclass, make_*_params, golden kernel) and the
kernels' declarations (tinycc/kernels.py). See docs/adding-an-op.md.

Importing this package registers every op (see registry.OPS).
"""
from . import registry  # noqa: F401
from . import (activation, batchnorm, concat, conv, dense, eltwise, gated, pad, pool, reduce, requantize,  # noqa: F401
               resize, shape, slicing, softmax)
from . import conv_transpose, matmul  # noqa: F401  (structural and matrix ops of issue 14 part B)
from . import recurrent  # noqa: F401  (LSTM, GRU: issue 14 part C)
from . import compare, norm  # noqa: F401  (comparisons, Where, normalisation: issue 14 part A)
