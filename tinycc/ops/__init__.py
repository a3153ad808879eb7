"""Operator registry: one module per operator family, each op described in one place.

Importing this package registers every op (see registry.OPS).
"""
from . import registry  # noqa: F401
from . import activation, batchnorm, conv, dense, eltwise, pool, reduce, shape, softmax  # noqa: F401
