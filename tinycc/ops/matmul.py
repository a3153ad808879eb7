"""MatMul of two activations (attention's Q.K^T and P.V): numpy matmul semantics, batched with
broadcasting. (A MatMul whose right side is a 2-D constant is imported as Dense: ops/dense.py.)

int8 (TFLite Micro BATCH_MATMUL, reference_ops/batch_matmul.h): both operands asymmetric per
tensor, an int32 accumulator of (lhs - lhs_zp) * (rhs - rhs_zp), one QuantizeMultiplier of
s_lhs * s_rhs / s_out. BatchMatmulParams mirrors tc_batch_matmul_params (runtime_c/tc_matmul.h),
make_batch_matmul_params folds any rank into the kernel's three batch axes, batch_matmul_s8 is
the bit-exact mirror of tc_batch_matmul_s8.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from ..golden.arith import quantize_multiplier, requantize_to_int8
from ..golden.checks import as_int8, checked_scale, check_act_range, check_requant_pair, is_int8, require
from ..kernels import declare
from ..program import Arg
from ..quant.params import act_range
from .common import unsupported_int8
from .registry import LayoutClass, OpDef, apply_act, register


def matmul_shape(a_shape: Sequence[int], b_shape: Sequence[int]) -> tuple[int, ...]:
    """numpy.matmul's output shape (ValueError where the shapes do not multiply)."""
    return np.matmul(np.zeros(a_shape, np.int8), np.zeros(b_shape, np.int8)).shape


@register
class MatMul(OpDef):
    name = "MatMul"
    layout_class = LayoutClass.LOGICAL
    fuses_activation = True

    def infer(self, g, node):
        a, b = (g.tensors[t] for t in node.inputs)
        try:
            shape = matmul_shape(a.shape, b.shape)
        except ValueError:
            from ..ir import IRError

            raise IRError(f"MatMul {node.name!r}: shapes {a.shape} and {b.shape} do not multiply") from None
        return [(tuple(shape), a.dtype)]

    def run_float(self, node, xs):
        y = np.matmul(xs[0].astype(np.float64), xs[1].astype(np.float64)).astype(np.float32)
        return [apply_act(y, node.attrs.get("act"))]

    def macs(self, g, node):
        a = g.tensors[node.inputs[0]]
        out = g.tensors[node.outputs[0]]
        return out.size * a.shape[-1]

    def lower_int8(self, lc, node):
        a, b = node.inputs
        y = node.outputs[0]
        operands = []
        for t in (a, b):
            if lc.is_const(t):
                blob, s, zp = lc.const_operand(t, node)
                operands.append((Arg("const", blob), s, zp))
            else:
                operands.append((Arg("in", t), *lc.qp(t)))
        (arg_a, s_a, zp_a), (arg_b, s_b, zp_b) = operands
        s_out, zp_out = lc.qp(y)
        act_min, act_max = act_range(node.attrs.get("act"), lc.tensor(y).quant)
        try:
            p = make_batch_matmul_params(lc.tensor(a).shape, lc.tensor(b).shape, s_a, zp_a, s_b, zp_b, s_out, zp_out,
                                         act_min, act_max)
        except ValueError as exc:
            raise unsupported_int8(node, str(exc)) from None
        lc.add_step(node, "tc_batch_matmul_s8", p, [arg_a, arg_b, Arg("out", y)],
                    lambda av, bv: batch_matmul_s8(p, av, bv), macs=self.macs(lc.g, node))


# ---- integer reference (runtime_c/tc_batch_matmul_s8.c) ------------------------------------------
MAX_DEPTH = 33025  # TC_BATCH_MATMUL_MAX_DEPTH: 255 * 255 * depth < 2^31


@dataclass(frozen=True)
class BatchMatmulParams:
    """tc_batch_matmul_params: lhs [lhs_batch][rows][depth] @ rhs [rhs_batch][depth][cols]."""

    C_STRUCT: ClassVar[str] = "tc_batch_matmul_params"
    lhs_batch: tuple[int, int, int]
    rhs_batch: tuple[int, int, int]
    rows: int
    depth: int
    cols: int
    lhs_zp: int
    rhs_zp: int
    out_zp: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int

    def validate(self) -> None:
        require(len(self.lhs_batch) == 3 and len(self.rhs_batch) == 3, "batch shapes must have 3 axes")
        for lb, rb in zip(self.lhs_batch, self.rhs_batch):
            require(lb >= 1 and rb >= 1 and (lb == rb or 1 in (lb, rb)),
                    f"batch axes {self.lhs_batch} and {self.rhs_batch} do not broadcast")
        require(min(self.rows, self.cols, self.depth) >= 1, "rows, depth and cols must be >= 1")
        require(self.depth <= MAX_DEPTH, f"depth {self.depth} exceeds {MAX_DEPTH} (int32 accumulator)")
        require(is_int8(self.lhs_zp) and is_int8(self.rhs_zp) and is_int8(self.out_zp),
                "zero points must be in [-128, 127]")
        check_requant_pair(self.multiplier, self.shift)
        check_act_range(self.act_min, self.act_max)

    @property
    def out_batch(self) -> tuple[int, int, int]:
        return tuple(max(lb, rb) for lb, rb in zip(self.lhs_batch, self.rhs_batch))


def fold_batch_axes(a_batch: Sequence[int], b_batch: Sequence[int]) -> tuple[list[int], list[int]]:
    """Batch shapes (numpy broadcasting) as at most three axes: axes of 1 on both sides go, and
    neighbours that broadcast alike (both sides equal, or the same side 1) merge."""
    rank = max(len(a_batch), len(b_batch))
    a = [1] * (rank - len(a_batch)) + [int(d) for d in a_batch]
    b = [1] * (rank - len(b_batch)) + [int(d) for d in b_batch]
    fa: list[int] = []
    fb: list[int] = []
    kinds: list[str] = []
    for da, db in zip(a, b):
        require(da == db or 1 in (da, db), f"batch shapes {tuple(a_batch)} and {tuple(b_batch)} do not broadcast")
        if da == db == 1:
            continue
        kind = "same" if da == db else ("a1" if da == 1 else "b1")
        if kinds and kinds[-1] == kind:
            fa[-1] *= da
            fb[-1] *= db
        else:
            fa.append(da)
            fb.append(db)
            kinds.append(kind)
    require(len(fa) <= 3, f"batch shapes {tuple(a_batch)} and {tuple(b_batch)} need more than 3 broadcast axes")
    return [1] * (3 - len(fa)) + fa, [1] * (3 - len(fb)) + fb


def make_batch_matmul_params(a_shape: Sequence[int], b_shape: Sequence[int], s_a: float, zp_a: int, s_b: float,
                             zp_b: int, s_out: float, zp_out: int, act_min: int = -128,
                             act_max: int = 127) -> BatchMatmulParams:
    """numpy.matmul operands (1-D ones as a row / a column vector); the multiplier as TFLM's
    Prepare computes it, in double from the float32 scales."""
    a_shape = [1, *a_shape] if len(a_shape) == 1 else list(a_shape)
    b_shape = [*b_shape, 1] if len(b_shape) == 1 else list(b_shape)
    require(a_shape[-1] == b_shape[-2], f"MatMul of {tuple(a_shape)} and {tuple(b_shape)}: inner sizes differ")
    lhs_batch, rhs_batch = fold_batch_axes(a_shape[:-2], b_shape[:-2])
    real = checked_scale(s_a, "lhs scale") * checked_scale(s_b, "rhs scale") / checked_scale(s_out, "out scale")
    mult, shift = quantize_multiplier(real)
    p = BatchMatmulParams(lhs_batch=tuple(lhs_batch), rhs_batch=tuple(rhs_batch), rows=int(a_shape[-2]),
                          depth=int(a_shape[-1]), cols=int(b_shape[-1]), lhs_zp=int(zp_a), rhs_zp=int(zp_b),
                          out_zp=int(zp_out), multiplier=mult, shift=shift, act_min=int(act_min),
                          act_max=int(act_max))
    p.validate()
    return p


def batch_matmul_s8(p: BatchMatmulParams, lhs, rhs) -> np.ndarray:
    """Mirror of tc_batch_matmul_s8: int8 [out_batch...][rows][cols]."""
    p.validate()
    a = as_int8(lhs, int(np.prod(p.lhs_batch)) * p.rows * p.depth, "lhs")
    b = as_int8(rhs, int(np.prod(p.rhs_batch)) * p.depth * p.cols, "rhs")
    a = a.reshape(*p.lhs_batch, p.rows, p.depth).astype(np.int64) - p.lhs_zp
    b = b.reshape(*p.rhs_batch, p.depth, p.cols).astype(np.int64) - p.rhs_zp
    acc = np.matmul(a, b)  # exact: |acc| < 2^31 (MAX_DEPTH)
    return requantize_to_int8(acc, p.multiplier, p.shift, p.out_zp, p.act_min, p.act_max)


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_batch_matmul_s8", header="tc_matmul.h", params=BatchMatmulParams, golden=batch_matmul_s8,
        args=("in", "in", "out"), sources=("tc_batch_matmul_s8.c",))
