"""The pass pipeline: one ordered list of named passes, validated after each one."""
from __future__ import annotations

import hashlib
from typing import Callable, Iterable

import numpy as np

from ..ir import Graph, IRError, validate
from .cleanup import dce, fold_constants, remove_identity
from .fold import decompose_batchnorm, div_to_mul, fold_batchnorm, fold_bias_add, fold_pad
from .fuse import fuse_activation, fuse_self_gating
from .layout import layout_nhwc, simplify_transposes
from .patterns import fuse_patterns

PIPELINE: list[tuple[str, Callable[[Graph], bool]]] = [
    ("remove_identity", remove_identity),
    ("fold_constants", fold_constants),
    ("fuse_patterns", fuse_patterns),
    ("fold_batchnorm", fold_batchnorm),
    ("decompose_batchnorm", decompose_batchnorm),
    ("fold_bias_add", fold_bias_add),
    ("div_to_mul", div_to_mul),
    ("fold_pad", fold_pad),
    ("fuse_self_gating", fuse_self_gating),
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
    fingerprints = None  # the constants as the previous pass left them (hashed once per pass)
    for name, fn in PIPELINE:
        if name not in disable:
            before = fingerprints if fingerprints is not None else constant_fingerprints(g)
            fn(g)
            g.toposort()
            validate(g)
            fingerprints = check_constants_unchanged(before, g, name)
        if name == upto:
            break
    return g


def constant_fingerprints(g: Graph) -> dict[str, tuple]:
    """What each constant holds: shape, dtype, quantization and a digest of the values."""
    out = {}
    for name, t in g.tensors.items():
        if t.is_const:
            q = t.quant
            quant = None if q is None else (q.axis, np.asarray(q.scale).tobytes(), np.asarray(q.zero_point).tobytes())
            digest = hashlib.blake2b(np.ascontiguousarray(t.data).tobytes(), digest_size=16).digest()
            out[name] = (tuple(t.shape), tuple(t.data.shape), str(t.data.dtype), quant, digest)
    return out


def check_constants_unchanged(before: dict[str, tuple], g: Graph, pass_name: str) -> dict[str, tuple]:
    """A pass may add constants and stop reading some, never change one: other nodes may read the
    same constant (shared weights), so a rewrite must make a new one (Graph.rewrite_const_input).
    Returns the fingerprints after the pass."""
    after = constant_fingerprints(g)
    changed = sorted(n for n, fp in before.items() if n in after and after[n] != fp)
    if changed:
        raise IRError(f"pass {pass_name} changed constant(s) in place: {', '.join(changed[:5])}")
    return after
