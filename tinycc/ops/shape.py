"""Layout ops: Reshape (also Flatten/Squeeze/Unsqueeze), a zero-copy view, and Transpose.

int8 Transpose: TransposeParams mirrors tc_transpose_params, make_transpose_params folds any rank
into the kernel's 4-D form, transpose_s8 is the bit-exact reference of tc_transpose_s8.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from ..errors import BadInput
from ..golden.checks import Dims4, as_int8, check_dims4, pad4, require
from ..ir import IRError
from ..kernels import declare
from ..program import Arg
from .common import ints, norm_axis, unsupported_int8
from .registry import NEW_ELEMENT_TYPES_23_TO_25, LayoutClass, OpDef, onnx_importer, register


# ---------------------------------------------------------------------------------------------
@register
class Reshape(OpDef):
    """Reinterpret the (row-major) physical data with a new shape: a zero-copy view."""

    name = "Reshape"
    layout_class = LayoutClass.LOGICAL

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        shape = tuple(node.attrs["shape"])
        if int(np.prod(shape)) != x.size:
            raise IRError(f"Reshape {node.name!r}: {x.shape} -> {shape} changes the size")
        return [(shape, x.dtype)]

    def run_float(self, node, xs):
        return [xs[0].reshape(node.attrs["shape"])]

    def int8_output(self, g, node):
        return "same_as_input"

    def lower_int8(self, lc, node):
        lc.view(node.outputs[0], node.inputs[0])


def _reshape_target(onode, in_shape, target, allowzero):
    target = [int(v) for v in target]
    out = []
    for i, v in enumerate(target):
        if v == 0 and not allowzero:
            if i >= len(in_shape):
                raise BadInput(f"Reshape node {onode.name!r}: 0 at position {i} beyond the input rank")
            out.append(in_shape[i])
        else:
            out.append(v)
    if out.count(-1) > 1:
        raise BadInput(f"Reshape node {onode.name!r}: more than one -1 in {target}")
    size = int(np.prod(in_shape))
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1]))
        if known == 0 or size % known:
            raise BadInput(f"Reshape node {onode.name!r}: cannot reshape {tuple(in_shape)} to {target}")
        out[out.index(-1)] = size // known
    if int(np.prod(out)) != size:
        raise BadInput(f"Reshape node {onode.name!r}: cannot reshape {tuple(in_shape)} to {target}")
    return tuple(out)


@onnx_importer("Reshape", revisions=NEW_ELEMENT_TYPES_23_TO_25)
def import_reshape(ctx, onode, attrs):
    target = ctx.require_const(onode, onode.input[1], "the target shape")
    if target.ndim != 1:
        raise BadInput(f"Reshape node {onode.name!r}: the target shape must be 1-D, not of shape {list(target.shape)}")
    shape = _reshape_target(onode, ctx.shape(onode.input[0]), target, attrs.get("allowzero", 0))
    ctx.add("Reshape", [onode.input[0]], [onode.output[0]], onode, shape=shape)


@onnx_importer("Flatten", revisions=NEW_ELEMENT_TYPES_23_TO_25)
def import_flatten(ctx, onode, attrs):
    shape = ctx.shape(onode.input[0])
    axis = int(attrs.get("axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    out = (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
    ctx.add("Reshape", [onode.input[0]], [onode.output[0]], onode, shape=out)


def _axes_arg(ctx, onode, attrs):
    if len(onode.input) > 1 and onode.input[1]:
        axes = ctx.require_const(onode, onode.input[1], "axes")
        if axes.ndim != 1:
            raise BadInput(f"{onode.op_type} node {onode.name!r}: axes must be 1-D, not of shape {list(axes.shape)}")
        return [int(a) for a in axes]
    return attrs.get("axes")


@onnx_importer("Squeeze", revisions=NEW_ELEMENT_TYPES_23_TO_25)
def import_squeeze(ctx, onode, attrs):
    shape = ctx.shape(onode.input[0])
    axes = _axes_arg(ctx, onode, attrs)
    if axes is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    axes = {norm_axis(a, len(shape), onode) for a in axes}
    if any(shape[a] != 1 for a in axes):
        raise BadInput(f"Squeeze node {onode.name!r}: axes {sorted(axes)} of {shape} are not 1")
    out = tuple(d for i, d in enumerate(shape) if i not in axes)
    ctx.add("Reshape", [onode.input[0]], [onode.output[0]], onode, shape=out)


@onnx_importer("Unsqueeze", revisions=NEW_ELEMENT_TYPES_23_TO_25)
def import_unsqueeze(ctx, onode, attrs):
    shape = list(ctx.shape(onode.input[0]))
    axes = _axes_arg(ctx, onode, attrs)
    rank = len(shape) + len(axes)
    for a in sorted(norm_axis(a, rank, onode) for a in axes):
        shape.insert(a, 1)
    ctx.add("Reshape", [onode.input[0]], [onode.output[0]], onode, shape=tuple(shape))


# ---------------------------------------------------------------------------------------------
@register
class Transpose(OpDef):
    name = "Transpose"
    layout_class = LayoutClass.LOGICAL

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        return [(tuple(x.shape[p] for p in node.attrs["perm"]), x.dtype)]

    def run_float(self, node, xs):
        return [np.ascontiguousarray(xs[0].transpose(node.attrs["perm"]))]

    def int8_output(self, g, node):
        return "same_as_input"

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        try:
            p = make_transpose_params(lc.tensor(x).shape, node.attrs["perm"])
        except ValueError as exc:
            raise unsupported_int8(node, str(exc)) from None
        lc.add_step(node, "tc_transpose_s8", p, [Arg("in", x), Arg("out", y)], lambda v: transpose_s8(p, v))


@onnx_importer("Transpose", revisions=NEW_ELEMENT_TYPES_23_TO_25)
def import_transpose(ctx, onode, attrs):
    rank = len(ctx.shape(onode.input[0]))
    perm = tuple(attrs.get("perm", list(range(rank))[::-1]))
    if sorted(perm) != list(range(rank)):
        raise BadInput(f"Transpose node {onode.name!r}: perm {perm} is not a permutation of rank {rank}")
    ctx.add("Transpose", [onode.input[0]], [onode.output[0]], onode, perm=ints(perm))


# ---- integer reference (runtime_c/tc_transpose_s8.c) --------------------------------------------
@dataclass(frozen=True)
class TransposeParams:
    """tc_transpose_params: output axis i is input axis perm[i]."""

    C_STRUCT: ClassVar[str] = "tc_transpose_params"
    in_dims: Dims4
    perm: Dims4

    def validate(self) -> None:
        check_dims4(self.in_dims, "in_dims")
        require(sorted(self.perm) == [0, 1, 2, 3], f"perm must permute 0..3, got {self.perm}")

    @property
    def out_dims(self) -> Dims4:
        return tuple(self.in_dims[a] for a in self.perm)


def make_transpose_params(in_shape: Sequence[int], perm: Sequence[int]) -> TransposeParams:
    """Transpose of any rank whose non-trivial axes fold into at most 4.

    Size-1 axes are dropped and input axes that stay adjacent and in order are merged.
    """
    shape = [int(d) for d in in_shape]
    perm = [int(a) for a in perm]
    rank = len(shape)
    require(sorted(perm) == list(range(rank)),
            f"perm {perm} is not a permutation of 0..{rank - 1}")
    require(all(d >= 1 for d in shape), "sizes must be >= 1")
    kept = [a for a in perm if shape[a] != 1]
    groups: list[list[int]] = []        # runs of input axes that move together, in output order
    for a in kept:
        if groups and a == groups[-1][-1] + 1:
            groups[-1].append(a)
        else:
            groups.append([a])
    require(len(groups) <= 4, f"transpose {perm} of {shape} needs more than 4 axes")
    by_input_order = sorted(range(len(groups)), key=lambda g: groups[g][0])
    in_dims = [int(np.prod([shape[a] for a in groups[g]])) for g in by_input_order]
    new_perm = [by_input_order.index(g) for g in range(len(groups))]
    lead = 4 - len(groups)
    p = TransposeParams(in_dims=pad4(in_dims),
                        perm=tuple(list(range(lead)) + [lead + a for a in new_perm]))
    p.validate()
    return p


def transpose_s8(p: TransposeParams, x) -> np.ndarray:
    """Returns an array of shape p.out_dims."""
    p.validate()
    a = as_int8(x, int(np.prod(p.in_dims)), "input").reshape(p.in_dims)
    return np.ascontiguousarray(a.transpose(p.perm))


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_transpose_s8", header="tc_tensor.h", params=TransposeParams, golden=transpose_s8, args=("in", "out"),
        sources=("tc_transpose_s8.c",))
