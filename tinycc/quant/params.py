"""Quantization parameter arithmetic of the TFLite int8 scheme (quantization.md §2.1-2.2)."""
from __future__ import annotations

import numpy as np

from ..golden import boundary
from ..golden.arith import round_half_away
from ..ir import QuantParams

QMIN, QMAX = -128, 127
# A tensor that is constant zero still gets a usable scale: every int8 kernel must accept it.
# The strictest is softmax (TFLM PreprocessSoftmaxScaling): in_scale * 2^26 must exceed 1, i.e. a
# range above 255 * 2^-26 = 3.8e-6 (e.g. the logits of a Gemm whose weights are all zero).
MIN_RANGE = 1e-5


def choose_qparams(rmin: float, rmax: float) -> QuantParams:
    """TFLite ChooseQuantizationParams for int8: range extended to include 0, zero point nudged
    so that real 0 is exactly representable."""
    rmin, rmax = min(float(rmin), 0.0), max(float(rmax), 0.0)
    if rmax - rmin < MIN_RANGE:
        rmax = rmin + MIN_RANGE
    scale = np.float32((rmax - rmin) / (QMAX - QMIN))
    s = float(scale)
    zp_from_min = QMIN - rmin / s
    zp_from_max = QMAX - rmax / s
    err_min = abs(QMIN) + abs(rmin / s)
    err_max = abs(QMAX) + abs(rmax / s)
    zp = zp_from_min if err_min < err_max else zp_from_max
    zp = int(np.clip(round_half_away(zp), QMIN, QMAX))
    return QuantParams(np.array(scale, dtype=np.float32), np.array(zp, dtype=np.int32))


def fixed_qparams(scale: float, zp: int) -> QuantParams:
    return QuantParams(np.array(scale, dtype=np.float32), np.array(zp, dtype=np.int32))


def share_params_through_moves(moves, quant: dict) -> None:
    """Data movement (Transpose, Reshape, Squeeze, ...) keeps every value on its grid, so the
    tensors on both sides of a move share their quantization params. ``moves``: (source, moved)
    tensor name pairs, in graph order; ``quant``: tensor name -> params, completed in place for
    every tensor that a chain of moves links to one that has params (in either direction; where
    two chains reach a tensor, the first in graph order wins)."""
    moves = list(moves)
    changed = True
    while changed:
        changed = False
        for src, dst in moves:
            if src in quant and dst not in quant:
                quant[dst] = quant[src]
                changed = True
            elif dst in quant and src not in quant:
                quant[src] = quant[dst]
                changed = True


def quantize_weights_per_channel(w: np.ndarray, axis: int = 0, min_scale=0.0) -> tuple[np.ndarray, QuantParams]:
    """Symmetric int8 per output channel, values in [-127, 127], zero point 0.

    The scale is max|w|/127, raised to `min_scale` (per channel) where that is larger; an
    all-zero channel gets scale 1."""
    w = w.astype(np.float64)
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    scale = np.maximum(np.abs(moved).max(axis=1) / 127.0, min_scale)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(round_half_away(w / scale.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)
    return q, QuantParams(scale, np.zeros_like(scale, dtype=np.int32), axis)


def quantize_bias(b: np.ndarray, in_scale: float, w_scale: np.ndarray) -> np.ndarray:
    s = np.float64(np.float32(in_scale)) * w_scale.astype(np.float64)
    q = round_half_away(b.astype(np.float64) / s)
    return np.clip(q, -(2**31) + 1, 2**31 - 1).astype(np.int32)


def quantize(x: np.ndarray, qp: QuantParams) -> np.ndarray:
    """Float -> int8 per tensor: the boundary conversion of the golden model (TFLite QUANTIZE)."""
    return boundary.quantize(x, *qp.scalar())


def dequantize(q: np.ndarray, qp: QuantParams) -> np.ndarray:
    return boundary.dequantize(q, *qp.scalar())


def quantize_const_per_tensor(x: np.ndarray) -> tuple[np.ndarray, QuantParams]:
    qp = choose_qparams(float(x.min()), float(x.max()))
    return quantize(x, qp), qp


def act_range(act: dict | None, qp: QuantParams) -> tuple[int, int]:
    """Fused Relu/Clip as an int8 clamp, as TFLite's CalculateActivationRangeQuantized."""
    s, zp = qp.scalar()
    lo, hi = QMIN, QMAX
    if act:
        if act.get("min") is not None:
            lo = max(lo, zp + int(round_half_away(act["min"] / s)))
        if act.get("max") is not None:
            hi = min(hi, zp + int(round_half_away(act["max"] / s)))
    return lo, hi
