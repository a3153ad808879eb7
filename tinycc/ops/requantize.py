"""tc_requantize_s8: an int8 tensor to other (scale, zero point). A kernel, not an IR op: lowerings
use it where the tensor a kernel writes must change quantization (softmax into output params
other than TFLite's). rescale_pair is TFLM's QUANTIZE (int8 -> int8) multiplier, shared with
Concat's rescaling parts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..golden.arith import quantize_multiplier, requantize_to_int8
from ..golden.checks import as_int8, check_act_range, check_requant_pair, checked_scale, is_int8, require
from ..kernels import declare


@dataclass(frozen=True)
class RequantizeParams:
    """tc_requantize_params: out = clamp(MBQM(x - in_zp, multiplier, shift) + out_zp)."""

    C_STRUCT: ClassVar[str] = "tc_requantize_params"
    size: int
    in_zp: int
    multiplier: int
    shift: int
    out_zp: int
    act_min: int
    act_max: int

    def validate(self) -> None:
        require(self.size >= 0, f"size must be >= 0, got {self.size}")
        require(is_int8(self.in_zp) and is_int8(self.out_zp),
                "zero points must be in [-128, 127]")
        check_act_range(self.act_min, self.act_max)
        check_requant_pair(self.multiplier, self.shift)


def rescale_pair(in_scale: float, out_scale: float) -> tuple[int, int]:
    """TFLM PrepareQuantizeReference: QuantizeMultiplier(double(in) / double(out))."""
    return quantize_multiplier(checked_scale(in_scale, "in_scale") / checked_scale(out_scale, "out_scale"))


def make_requantize_params(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                           size: int, act_min: int = -128,
                           act_max: int = 127) -> RequantizeParams:
    mult, shift = rescale_pair(in_scale, out_scale)
    p = RequantizeParams(size=int(size), in_zp=int(in_zp), multiplier=mult, shift=shift,
                         out_zp=int(out_zp), act_min=int(act_min), act_max=int(act_max))
    p.validate()
    return p


def requantize_s8(p: RequantizeParams, x) -> np.ndarray:
    """Returns an array shaped like x."""
    p.validate()
    flat = as_int8(x, p.size, "input").astype(np.int64)
    out = requantize_to_int8(flat - p.in_zp, p.multiplier, p.shift, p.out_zp, p.act_min,
                             p.act_max)
    return out.reshape(np.shape(x))


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_requantize_s8", header="tc_tensor.h", params=RequantizeParams, golden=requantize_s8, args=("in", "out"),
        sources=("tc_requantize_s8.c",))
