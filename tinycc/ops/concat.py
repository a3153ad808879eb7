"""Concat along one axis.

int8: every input is one tc_concat_s8_part call writing its columns of the output (a plain copy
when the input shares the output's quantization, as the quantizer arranges: TFLite's
CONCATENATION rule, see OpDef.int8_shared_inputs). ConcatPartParams mirrors
tc_concat_part_params; make_concat_params / concat_s8_part are the offline helper and the
bit-exact reference.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence

import numpy as np

from ..golden.arith import requantize_to_int8
from ..golden.checks import as_int8, check_requant_pair, is_int8, require
from ..ir import IRError
from ..kernels import declare
from ..program import Arg
from .common import norm_axis
from .registry import LayoutClass, OpDef, onnx_importer, register
from .requantize import rescale_pair


# ---------------------------------------------------------------------------------------------
@register
class Concat(OpDef):
    name = "Concat"
    layout_class = LayoutClass.AXIS
    axis_attrs = {"axis": "axis"}
    int8_shared_inputs = True

    def infer(self, g, node):
        ts = [g.tensors[t] for t in node.inputs]
        ax = node.attrs["axis"]
        base = list(ts[0].shape)
        for t in ts[1:]:
            if len(t.shape) != len(base) or any(a != b for i, (a, b) in enumerate(zip(t.shape, base)) if i != ax):
                raise IRError(f"Concat {node.name!r}: incompatible shapes {[t.shape for t in ts]}")
        base[ax] = sum(t.shape[ax] for t in ts)
        return [(tuple(base), ts[0].dtype)]

    def run_float(self, node, xs):
        return [np.concatenate(xs, axis=node.attrs["axis"])]

    def lower_int8(self, lc, node):
        y = node.outputs[0]
        args = [_input_arg(lc, node, t) for t in node.inputs]
        parts = make_concat_params([lc.tensor(t).shape for t in node.inputs], node.attrs["axis"],
                                     [q for _, q in args], lc.qp(y))
        size = lc.tensor(y).size
        for k, (p, (arg, _)) in enumerate(zip(parts, args)):
            # a contiguous slice (outer == 1) without rescaling: the producer can write it directly
            copy_into = (y, p.out_offset) if p.outer == 1 and p.plain_copy and arg.kind == "in" else None
            if k == 0:
                lc.add_step(node, "tc_concat_s8_part", p, [arg, Arg("out", y)],
                            lambda v, p=p: concat_s8_part(p, v, np.zeros(size, dtype=np.int8)), note="concat part 0",
                            copy_into=copy_into)
            else:
                lc.add_step(node, "tc_concat_s8_part", p, [arg, Arg("update", y)],
                            lambda v, cur, p=p: concat_s8_part(p, v, np.array(cur, dtype=np.int8).reshape(-1)),
                            note=f"concat part {k}", copy_into=copy_into)


@onnx_importer("Concat")
def import_concat(ctx, onode, attrs):
    inputs = [t for t in onode.input if t]
    rank = len(ctx.shape(inputs[0]))
    axis = norm_axis(int(attrs["axis"]), rank, onode)
    inputs = [t for t in inputs if ctx.shape(t)[axis] > 0]
    if len(inputs) == 1:
        ctx.alias(inputs[0], onode.output[0], onode)
        return
    ctx.add("Concat", inputs, [onode.output[0]], onode, axis=axis)


def _input_arg(lc, node, name):
    if lc.is_const(name):
        blob, s, zp = lc.const_operand(name, node)
        return Arg("const", blob), (s, zp)
    return Arg("in", name), lc.qp(name)


# ---- integer reference (runtime_c/tc_concat_s8.c) -----------------------------------------------
UNIT_MULTIPLIER = 1 << 30         # TC_UNIT_MULTIPLIER: QuantizeMultiplier(1.0)
UNIT_SHIFT = 1                    # TC_UNIT_SHIFT


@dataclass(frozen=True)
class ConcatPartParams:
    """tc_concat_part_params: one input's [outer][in_inner] block into its output columns."""

    C_STRUCT: ClassVar[str] = "tc_concat_part_params"
    outer: int
    in_inner: int
    out_inner: int
    out_offset: int
    in_zp: int
    multiplier: int
    shift: int
    out_zp: int

    def validate(self) -> None:
        require(self.outer >= 0 and self.in_inner >= 0 and self.out_offset >= 0
                and self.out_offset + self.in_inner <= self.out_inner,
                "input columns must lie inside the output row")
        require(is_int8(self.in_zp) and is_int8(self.out_zp),
                "zero points must be in [-128, 127]")
        check_requant_pair(self.multiplier, self.shift)

    @property
    def plain_copy(self) -> bool:
        return (self.multiplier, self.shift) == (UNIT_MULTIPLIER, UNIT_SHIFT) \
            and self.in_zp == self.out_zp


def make_concat_params(in_shapes: Sequence[Sequence[int]], axis: int,
                       in_quant: Optional[Sequence[tuple[float, int]]] = None,
                       out_quant: Optional[tuple[float, int]] = None) -> list[ConcatPartParams]:
    """One ConcatPartParams per input of a concatenation along `axis` (negative counts back).

    `in_quant` / `out_quant` are (scale, zero_point) pairs; without them every part is a plain
    copy. An input whose scale equals the output's gets the unit rescale (a zero-point shift,
    or a plain copy when the zero points match too).
    """
    shapes = [[int(d) for d in s] for s in in_shapes]
    require(len(shapes) >= 1, "need at least one input")
    rank = len(shapes[0])
    axis = axis + rank if axis < 0 else axis
    require(0 <= axis < rank, f"axis out of range for rank {rank}")
    for s in shapes:
        require(len(s) == rank and s[:axis] == shapes[0][:axis]
                and s[axis + 1:] == shapes[0][axis + 1:],
                f"shapes {shapes} cannot be concatenated along axis {axis}")
    outer = int(np.prod(shapes[0][:axis], dtype=np.int64))
    inners = [int(np.prod(s[axis:], dtype=np.int64)) for s in shapes]
    out_inner = sum(inners)
    if (in_quant is None) != (out_quant is None):
        raise ValueError("give both in_quant and out_quant, or neither")
    parts, offset = [], 0
    for k, inner in enumerate(inners):
        if in_quant is None:
            in_zp = out_zp = 0
            mult, shift = UNIT_MULTIPLIER, UNIT_SHIFT
        else:
            (s_in, in_zp), (s_out, out_zp) = in_quant[k], out_quant
            mult, shift = rescale_pair(s_in, s_out)
        p = ConcatPartParams(outer=outer, in_inner=inner, out_inner=out_inner, out_offset=offset,
                             in_zp=int(in_zp), multiplier=mult, shift=shift, out_zp=int(out_zp))
        p.validate()
        parts.append(p)
        offset += inner
    return parts


def concat_s8_part(p: ConcatPartParams, x, out: np.ndarray) -> np.ndarray:
    """Writes this input's columns into `out` (the whole output, int8, C-contiguous, any
    shape with outer * out_inner elements) in place, as the C kernel does, and returns it."""
    p.validate()
    require(isinstance(out, np.ndarray) and out.dtype == np.int8 and out.flags["C_CONTIGUOUS"]
            and out.size == p.outer * p.out_inner,
            f"out must be a C-contiguous int8 array of {p.outer * p.out_inner} elements")
    block = as_int8(x, p.outer * p.in_inner, "input").reshape(p.outer, p.in_inner)
    if not p.plain_copy:
        block = requantize_to_int8(block.astype(np.int64) - p.in_zp, p.multiplier, p.shift,
                                   p.out_zp)
    rows = out.reshape(p.outer, p.out_inner)
    rows[:, p.out_offset:p.out_offset + p.in_inner] = block
    return out


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_concat_s8_part", header="tc_tensor.h", params=ConcatPartParams, golden=concat_s8_part, args=("in", "out"),
        sources=("tc_concat_s8.c",))  # the output is "update" for every part after the first
