"""Layout ops: Reshape (also Flatten/Squeeze/Unsqueeze), a zero-copy view, Transpose, and
DepthToSpace / SpaceToDepth.

int8 Transpose: TransposeParams mirrors tc_transpose_params, make_transpose_params folds any rank
into the kernel's 4-D form, transpose_s8 is the bit-exact reference of tc_transpose_s8.
DepthToSpace / SpaceToDepth (TFLM DEPTH_TO_SPACE / SPACE_TO_DEPTH) are transposes of NHWC data:
DCR one tc_transpose_s8 each, CRD two (depth-to-space reorders the channels to DCR's first,
space-to-depth after).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
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


# ---------------------------------------------------------------------------------------------
def depth_to_space_nchw(x: np.ndarray, b: int, mode: str) -> np.ndarray:
    """ONNX DepthToSpace on NCHW data (the spec's reshape / transpose)."""
    n, c, h, w = x.shape
    if mode == "DCR":
        t = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        t = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return np.ascontiguousarray(t.reshape(n, c // (b * b), h * b, w * b))


def space_to_depth_nchw(x: np.ndarray, b: int, mode: str = "DCR") -> np.ndarray:
    """ONNX SpaceToDepth on NCHW data; mode (opset 28) orders the output channels (block row,
    block column, channel) for DCR, (channel, block row, block column) for CRD."""
    n, c, h, w = x.shape
    t = x.reshape(n, c, h // b, b, w // b, b)
    t = t.transpose(0, 3, 5, 1, 2, 4) if mode == "DCR" else t.transpose(0, 1, 3, 5, 2, 4)
    return np.ascontiguousarray(t.reshape(n, c * b * b, h // b, w // b))


def _space_depth_plan(op: str, mode: str, h: int, w: int, c: int, b: int) -> list[tuple[tuple, tuple]]:
    """The NHWC transposes (input dims, perm) that compute the op, in order (batch 1)."""
    if op == "SpaceToDepth":  # [H/b][b][W/b][b*C] -> [H/b][W/b][b][b*C]
        dcr = ((h // b, b, w // b, b * c), (0, 2, 1, 3))
        if mode == "DCR":
            return [dcr]
        return [dcr, ((h // b, w // b, b * b, c), (0, 1, 3, 2))]  # channels (b, b, C) -> (C, b, b)
    cb = c // (b * b)
    dcr = ((h, w, b, b * cb), (0, 2, 1, 3))  # [H][W][b][b*C'] -> [H][b][W][b*C']
    if mode == "DCR":
        return [dcr]
    return [((h, w, cb, b * b), (0, 1, 3, 2)), dcr]  # CRD channels (C', b, b) -> (b, b, C') first


class _SpaceDepth(OpDef):
    layout_class = LayoutClass.SPATIAL

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        b = node.attrs["blocksize"]
        nhwc = node.attrs["layout"] == "NHWC"
        n, h, w, c = x.shape if nhwc else (x.shape[0], x.shape[2], x.shape[3], x.shape[1])
        h, w, c = (h * b, w * b, c // (b * b)) if self.name == "DepthToSpace" else (h // b, w // b, c * b * b)
        return [((n, h, w, c) if nhwc else (n, c, h, w), x.dtype)]

    def run_float(self, node, xs):
        x = xs[0]
        nhwc = node.attrs["layout"] == "NHWC"
        if nhwc:
            x = x.transpose(0, 3, 1, 2)
        b = node.attrs["blocksize"]
        mode = node.attrs.get("mode", "DCR")
        y = depth_to_space_nchw(x, b, mode) if self.name == "DepthToSpace" else space_to_depth_nchw(x, b, mode)
        return [np.ascontiguousarray(y.transpose(0, 2, 3, 1)) if nhwc else y]

    def to_nhwc(self, g, node):
        node.attrs["layout"] = "NHWC"

    def int8_output(self, g, node):
        return "same_as_input"

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        h, w, c = lc.hwc(x)
        plan = _space_depth_plan(self.name, node.attrs.get("mode", "DCR"), h, w, c, node.attrs["blocksize"])
        src = x
        for k, (dims, perm) in enumerate(plan):
            p = make_transpose_params(dims, perm)
            if k + 1 < len(plan):
                info = lc.program.tensors[y]
                dst = f"{y}/{self.name.lower()}_{k + 1}"
                out_shape = tuple(dims[a] for a in perm)
                lc.program.tensors[dst] = replace(info, name=dst, shape=out_shape, perm=None, logical_shape=out_shape)
            else:
                dst = y
            lc.add_step(node, "tc_transpose_s8", p, [Arg("in", src), Arg("out", dst)],
                        lambda v, p=p: transpose_s8(p, v), note=f"{self.name.lower()} {k + 1}/{len(plan)}")
            src = dst


register(type("DepthToSpace", (_SpaceDepth,), {"name": "DepthToSpace"}))
register(type("SpaceToDepth", (_SpaceDepth,), {"name": "SpaceToDepth"}))


# 28: SpaceToDepth gained `mode` (DCR, the old meaning, or CRD: both implemented); DepthToSpace-28
# changed neither attributes, types nor text (revised alongside)
@onnx_importer("DepthToSpace", revisions={28: {}})
@onnx_importer("SpaceToDepth", revisions={28: {"mode": None}})
def import_space_depth(ctx, onode, attrs):
    shape = ctx.shape(onode.input[0])
    if len(shape) != 4:
        raise BadInput(f"{onode.op_type} node {onode.name!r}: input of rank {len(shape)} (4-D expected)")
    b = int(attrs.get("blocksize", 0))
    mode = attrs.get("mode", b"DCR")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    n, c, h, w = shape
    if b < 1 or mode not in ("DCR", "CRD"):
        raise BadInput(f"{onode.op_type} node {onode.name!r}: blocksize {b}, mode {mode!r}")
    if onode.op_type == "DepthToSpace" and c % (b * b):
        raise BadInput(f"DepthToSpace node {onode.name!r}: {c} channels are not a multiple of {b}x{b}")
    if onode.op_type == "SpaceToDepth" and (h % b or w % b):
        raise BadInput(f"SpaceToDepth node {onode.name!r}: {h}x{w} is not a multiple of the block {b}")
    ctx.add(onode.op_type, [onode.input[0]], [onode.output[0]], onode, blocksize=b, mode=mode, layout="NCHW")


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
