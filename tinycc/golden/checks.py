"""Argument checks shared by the integer references of every kernel family.

Each params dataclass (next to its op in tinycc/ops/) validates itself with these helpers and
raises ValueError exactly where its C kernel returns TC_ARG_ERROR.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .arith import INT32_MAX

Dims4 = tuple[int, int, int, int]


def require(cond: bool, what: str) -> None:
    if not cond:
        raise ValueError(what)


def f32(value: float) -> float:
    """A scale as TFLite stores it (float32), widened to double for offline arithmetic."""
    return float(np.float32(value))


def checked_scale(value: float, name: str = "scale") -> float:
    s = f32(value)
    require(math.isfinite(s) and s > 0.0, f"{name} must be a finite positive float, got {value!r}")
    return s


def is_int8(v: int) -> bool:
    return -128 <= v <= 127


def check_act_range(act_min: int, act_max: int) -> None:
    require(-128 <= act_min <= act_max <= 127,
            f"need -128 <= act_min <= act_max <= 127, got [{act_min}, {act_max}]")


def check_requant_pair(multiplier: int, shift: int) -> None:
    require(0 <= multiplier <= INT32_MAX and -31 <= shift <= 30,
            f"(multiplier, shift) = ({multiplier}, {shift}) out of range")


def check_dims4(dims: Sequence[int], name: str) -> None:
    require(len(dims) == 4 and all(int(d) >= 1 for d in dims),
            f"{name} must be 4 dimensions >= 1, got {dims}")


def pad4(values: Sequence[int], fill: int = 1) -> Dims4:
    """Left-pad to 4 entries (leading size-1 axes, or `fill` for per-axis attributes)."""
    values = [int(v) for v in values]
    require(len(values) <= 4, f"at most 4 dimensions after merging, got {values}")
    return tuple([fill] * (4 - len(values)) + values)


def as_int8(x, size: int, name: str) -> np.ndarray:
    """A kernel's int8 operand as a flat array, checked against the size the params give."""
    a = np.asarray(x)
    require(a.dtype == np.int8, f"{name} must be int8, got {a.dtype}")
    require(a.size == size, f"{name} has {a.size} elements, the parameters say {size}")
    return a.reshape(-1)


def as_shape(a, shape: tuple, name: str) -> np.ndarray:
    a = np.asarray(a)
    require(a.shape == shape, f"{name} must have shape {shape}, got {a.shape}")
    return a
