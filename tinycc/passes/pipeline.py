"""The pass pipeline: one ordered list of named passes, validated after each one."""
from __future__ import annotations

from typing import Callable, Iterable

from ..ir import Graph, validate
from .cleanup import dce, fold_constants, remove_identity
from .fold import decompose_batchnorm, div_to_mul, fold_batchnorm, fold_bias_add, fold_pad
from .fuse import fuse_activation
from .layout import layout_nhwc, simplify_transposes

PIPELINE: list[tuple[str, Callable[[Graph], bool]]] = [
    ("remove_identity", remove_identity),
    ("fold_constants", fold_constants),
    ("fold_batchnorm", fold_batchnorm),
    ("decompose_batchnorm", decompose_batchnorm),
    ("fold_bias_add", fold_bias_add),
    ("div_to_mul", div_to_mul),
    ("fold_pad", fold_pad),
    ("fuse_activation", fuse_activation),
    ("layout_nhwc", layout_nhwc),
    ("simplify_transposes", simplify_transposes),
    ("dce", dce),
]
PASS_NAMES = [name for name, _ in PIPELINE]


def run_pipeline(g: Graph, upto: str | None = None, disable: Iterable[str] = ()) -> Graph:
    """Return a transformed copy of `g`; stop after pass `upto`; skip passes named in `disable`."""
    disable = set(disable)
    unknown = (disable | ({upto} if upto else set())) - set(PASS_NAMES)
    if unknown:
        raise ValueError(f"unknown pass name(s) {sorted(unknown)}; passes: {', '.join(PASS_NAMES)}")
    g = g.copy()
    for name, fn in PIPELINE:
        if name not in disable:
            fn(g)
            g.toposort()
            validate(g)
        if name == upto:
            break
    return g
