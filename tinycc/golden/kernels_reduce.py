"""Bit-exact numpy mirror of runtime_c/tc_reduce_s8.c: int8 mean or max over any set of axes.

The mean is TFLite Micro's MEAN (tensorflow/lite/kernels/internal/reference/reduce.h,
QuantizedMeanOrSum): the sum of (x - in_zp) over the reduced elements, times a multiplier that
TFLM derives in two steps (`mean_multiplier`), not QuantizeMultiplier(s_in / (s_out * n)). The
max is TFLM's REDUCE_MAX on int8, which requires the same quantization in and out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .arith import INT32_MAX, quantize_multiplier, requantize_to_int8

MAX_DIMS = 8  # TC_REDUCE_MAX_DIMS
MAX_COUNT = 1 << 23  # elements per output: |sum - in_zp * count| < 2^31 in int32
OP_MEAN, OP_MAX = 0, 1


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """TFLM MEAN's (multiplier, shift) for the sum of `count` zero-point-corrected inputs.

    TFLM first takes QuantizeMultiplier(s_in / s_out) (float32 scales divided in double), then
    folds 1/count in: with k = floor(log2(count)) capped at 32 and at 31 + shift, the multiplier
    becomes (mult << k) // count in int64 and the shift shift - k. The result differs from
    QuantizeMultiplier(s_in / (s_out * count)) in the last bits, which moves outputs by one LSB."""
    if count < 1:
        raise ValueError(f"a mean needs at least one element, got {count}")
    mult, shift = quantize_multiplier(float(np.float64(np.float32(in_scale)) / np.float64(np.float32(out_scale))))
    k = min(count.bit_length() - 1, 32, 31 + shift)
    return int((mult << k) // count), shift - k


def merge_axes(shape, axes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(dims, reduced flags) of the same reduction over fewer axes: size-1 axes dropped and
    neighbouring axes that are both reduced or both kept merged (row-major order is kept)."""
    dims: list[int] = []
    flags: list[int] = []
    for i, d in enumerate(shape):
        if d == 1:
            continue
        r = int(i in axes)
        if flags and flags[-1] == r:
            dims[-1] *= int(d)
        else:
            dims.append(int(d))
            flags.append(r)
    if not dims:
        dims, flags = [1], [1]
    return tuple(dims), tuple(flags)


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise ValueError(what)


@dataclass(frozen=True)
class ReduceParams:
    """tc_reduce_params (runtime_c/tc_reduce.h). dims/reduced are padded to MAX_DIMS."""

    C_STRUCT: ClassVar[str] = "tc_reduce_params"
    op: int
    rank: int
    dims: tuple[int, ...]
    reduced: tuple[int, ...]
    count: int
    in_zp: int
    out_zp: int
    mult: int
    shift: int

    @classmethod
    def make(cls, op: int, shape, axes, in_zp: int = 0, out_zp: int = 0, mult: int = 0,
             shift: int = 0) -> "ReduceParams":
        dims, flags = merge_axes(shape, axes)
        _require(len(dims) <= MAX_DIMS, f"reduction over {len(dims)} alternating axis groups "
                 f"(at most {MAX_DIMS})")
        count = int(np.prod([d for d, r in zip(dims, flags) if r], dtype=np.int64))
        pad = MAX_DIMS - len(dims)
        return cls(op, len(dims), dims + (1,) * pad, flags + (0,) * pad, count, int(in_zp), int(out_zp),
                   int(mult), int(shift))

    def validate(self) -> None:
        _require(self.op in (OP_MEAN, OP_MAX), f"op must be {OP_MEAN} (mean) or {OP_MAX} (max)")
        _require(1 <= self.rank <= MAX_DIMS, f"rank must be in [1, {MAX_DIMS}]")
        _require(len(self.dims) == MAX_DIMS and len(self.reduced) == MAX_DIMS, "dims/reduced need MAX_DIMS entries")
        _require(all(d >= 1 for d in self.dims[:self.rank]), "dims must be >= 1")
        _require(all(r in (0, 1) for r in self.reduced[:self.rank]), "reduced flags must be 0 or 1")
        total = int(np.prod(self.dims[:self.rank], dtype=np.int64))
        _require(total <= INT32_MAX, "the input must have fewer than 2^31 elements")
        count = int(np.prod([d for d, r in zip(self.dims[:self.rank], self.reduced) if r], dtype=np.int64))
        _require(count == self.count, f"count {self.count} is not the product of the reduced dims ({count})")
        _require(1 <= self.count <= MAX_COUNT, f"at most {MAX_COUNT} elements per output, got {self.count}")
        _require(-128 <= self.in_zp <= 127 and -128 <= self.out_zp <= 127, "zero points must be in [-128, 127]")
        if self.op == OP_MEAN:
            _require(0 <= self.mult <= INT32_MAX, "the multiplier must be in [0, 2^31-1]")
            _require(-31 <= self.shift <= 30, "the shift must be in [-31, 30]")

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.dims[:self.rank])

    @property
    def axes(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.rank) if self.reduced[i])


def reduce_s8(p: ReduceParams, x) -> np.ndarray:
    """Mirror of tc_reduce_s8: int8 outputs in row-major order of the kept axes."""
    p.validate()
    x = np.asarray(x)
    _require(x.size == int(np.prod(p.in_shape)), f"input has {x.size} values, expected {int(np.prod(p.in_shape))}")
    v = x.reshape(p.in_shape).astype(np.int64)
    if p.op == OP_MAX:
        return v.max(axis=p.axes).astype(np.int8).reshape(-1)
    acc = v.sum(axis=p.axes) - p.in_zp * p.count
    return requantize_to_int8(acc, p.mult, p.shift, p.out_zp).reshape(-1)
