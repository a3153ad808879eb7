"""Slice and Split (both run tc_slice_s8 in int8: a Split is one slice per output), Gather on
activations with constant indices (tc_gather_s8) and Tile / Expand (tc_tile_s8).

SliceParams mirrors tc_slice_params; make_slice_params folds any rank into the kernel's 4-D form,
onnx_slice_params / make_split_params take ONNX Slice / Split semantics; slice_s8 is the
bit-exact reference of tc_slice_s8. GatherParams / TileParams mirror tc_gather_params /
tc_tile_params (runtime_c/tc_structural.h): pure data movement, the output keeps the input's
quantization (TFLM GATHER, TILE and BROADCAST_TO do the same).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence

import numpy as np

from ..errors import BadInput
from ..golden.checks import Dims4, as_int8, check_dims4, require
from ..ir import IRError
from ..kernels import declare
from ..program import Arg
from .common import norm_axis, unsupported, unsupported_int8
from .registry import LayoutClass, OpDef, onnx_importer, register


# ---------------------------------------------------------------------------------------------
@register
class Split(OpDef):
    name = "Split"
    layout_class = LayoutClass.AXIS
    axis_attrs = {"axis": "axis"}

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        ax = node.attrs["axis"]
        if sum(node.attrs["sizes"]) != x.shape[ax]:
            raise IRError(f"Split {node.name!r}: sizes {node.attrs['sizes']} != {x.shape[ax]}")
        return [(tuple(s if i == ax else d for i, d in enumerate(x.shape)), x.dtype) for s in node.attrs["sizes"]]

    def run_float(self, node, xs):
        cuts = np.cumsum(node.attrs["sizes"])[:-1]
        return [np.ascontiguousarray(p) for p in np.split(xs[0], cuts, axis=node.attrs["axis"])]

    def int8_output(self, g, node):
        return "same_as_input"

    def lower_int8(self, lc, node):
        x = node.inputs[0]
        shape = lc.tensor(x).shape
        axis, start = node.attrs["axis"], 0
        for out, size in zip(node.outputs, node.attrs["sizes"]):
            begin = [start if i == axis else 0 for i in range(len(shape))]
            _slice_step(lc, node, x, out, begin, [1] * len(shape), lc.tensor(out).shape, note="split")
            start += size


@onnx_importer("Split")
def import_split(ctx, onode, attrs):
    shape = ctx.shape(onode.input[0])
    axis = norm_axis(int(attrs.get("axis", 0)), len(shape), onode)
    n_out = len(onode.output)
    if len(onode.input) > 1 and onode.input[1]:
        sizes = [int(s) for s in ctx.require_const(onode, onode.input[1], "split")]
    elif "split" in attrs:
        sizes = [int(s) for s in attrs["split"]]
    else:
        n = int(attrs.get("num_outputs", n_out))
        chunk = -(-shape[axis] // n)
        sizes = [min(chunk, shape[axis] - i * chunk) for i in range(n)]
    if sum(sizes) != shape[axis] or len(sizes) != n_out or min(sizes) <= 0:
        raise BadInput(f"Split node {onode.name!r}: sizes {sizes} do not split {shape[axis]} into {n_out}")
    outs = [o if o else ctx.graph.fresh_name("unused_split") for o in onode.output]
    ctx.add("Split", [onode.input[0]], outs, onode, axis=axis, sizes=tuple(sizes))


# ---------------------------------------------------------------------------------------------
@register
class Slice(OpDef):
    """Per-axis start/stop/step (resolved, any sign of step); attr lists cover every axis."""

    name = "Slice"
    layout_class = LayoutClass.AXIS
    axis_attrs = {"starts": "per_axis", "ends": "per_axis", "steps": "per_axis"}

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        shape = tuple(len(range(s, e, st)) for s, e, st in zip(node.attrs["starts"], node.attrs["ends"], node.attrs["steps"]))
        if len(shape) != len(x.shape):
            raise IRError(f"Slice {node.name!r}: attrs do not cover rank {len(x.shape)}")
        return [(shape, x.dtype)]

    def run_float(self, node, xs):
        idx = tuple(slice(s, e if e >= 0 else None, st)
                    for s, e, st in zip(node.attrs["starts"], node.attrs["ends"], node.attrs["steps"]))
        return [np.ascontiguousarray(xs[0][idx])]

    def int8_output(self, g, node):
        return "same_as_input"

    def lower_int8(self, lc, node):
        a = node.attrs
        if any(s < 0 for s in a["steps"]):
            raise unsupported_int8(node, "a negative slice step")
        _slice_step(lc, node, node.inputs[0], node.outputs[0], a["starts"], a["steps"], lc.tensor(node.outputs[0]).shape)


@onnx_importer("Slice")
def import_slice(ctx, onode, attrs):
    shape = ctx.shape(onode.input[0])
    rank = len(shape)
    if ctx.opset >= 10:
        get = lambda i: ctx.require_const(onode, onode.input[i], "slice parameter") if len(onode.input) > i and onode.input[i] else None  # noqa: E731
        starts, ends, axes, steps = get(1), get(2), get(3), get(4)
    else:
        starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
    starts = [int(v) for v in starts]
    ends = [int(v) for v in ends]
    axes = list(range(len(starts))) if axes is None else [norm_axis(int(a), rank, onode) for a in axes]
    steps = [1] * len(starts) if steps is None else [int(v) for v in steps]
    full_s, full_e, full_st = [0] * rank, list(shape), [1] * rank
    for a, s, e, st in zip(axes, starts, ends, steps):
        if st == 0:
            raise BadInput(f"Slice node {onode.name!r}: step 0")
        full_s[a], full_e[a], full_st[a] = _resolve_slice(shape[a], s, e, st)
    if any(len(range(s, e, st)) == 0 for s, e, st in zip(full_s, full_e, full_st)):
        raise BadInput(f"Slice node {onode.name!r} produces an empty tensor")
    ctx.add("Slice", [onode.input[0]], [onode.output[0]], onode, starts=tuple(full_s), ends=tuple(full_e),
            steps=tuple(full_st))


def _resolve_slice(dim, start, end, step):
    """ONNX Slice clamping rules -> Python range(start, end, step) with end possibly -1."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, -1), dim - 1), min(max(end, -1), dim - 1)
    return start, end, step


def _slice_step(lc, node, x, y, begin, stride, out_shape, note=""):
    try:
        p = make_slice_params(lc.tensor(x).shape, begin, stride, out_shape)
    except ValueError as exc:
        raise unsupported_int8(node, str(exc)) from None
    lc.add_step(node, "tc_slice_s8", p, [Arg("in", x), Arg("out", y)], lambda v: slice_s8(p, v), note=note)


# ---- integer reference (runtime_c/tc_slice_s8.c) ------------------------------------------------
@dataclass(frozen=True)
class SliceParams:
    """tc_slice_params: out[i] = in[begin + i * stride] along each of 4 axes."""

    C_STRUCT: ClassVar[str] = "tc_slice_params"
    in_dims: Dims4
    begin: Dims4
    stride: Dims4
    out_dims: Dims4

    def validate(self) -> None:
        check_dims4(self.in_dims, "in_dims")
        check_dims4(self.out_dims, "out_dims")
        for n, b, s, o in zip(self.in_dims, self.begin, self.stride, self.out_dims):
            require(b >= 0 and s >= 1 and b + (o - 1) * s < n,
                    f"slice begin {self.begin} stride {self.stride} out {self.out_dims} "
                    f"leaves the input {self.in_dims}")


def make_slice_params(in_shape: Sequence[int], begin: Sequence[int], stride: Sequence[int],
                      out_shape: Sequence[int]) -> SliceParams:
    """Strided slice with non-negative begins and positive strides.

    An axis taken whole is merged into the axis before it when that one has stride 1.
    """
    require(len(in_shape) == len(begin) == len(stride) == len(out_shape), "one entry per axis")
    merged: list[list[int]] = []        # [in, begin, stride, out]
    for n, b, s, o in zip(in_shape, begin, stride, out_shape):
        n, b, s, o = int(n), int(b), int(s), int(o)
        require(n >= 1 and o >= 1 and b >= 0 and s >= 1 and b + (o - 1) * s < n,
                f"slice begin {list(begin)} stride {list(stride)} out {list(out_shape)} "
                f"leaves the input {list(in_shape)}")
        whole = b == 0 and o == n and (s == 1 or n == 1)
        if merged and whole and merged[-1][2] == 1:
            merged[-1] = [merged[-1][0] * n, merged[-1][1] * n, 1, merged[-1][3] * n]
        else:
            merged.append([n, b, s if o > 1 else 1, o])
    require(len(merged) <= 4, "slice needs more than 4 axes")
    lead = [[1, 0, 1, 1]] * (4 - len(merged))
    rows = lead + merged
    p = SliceParams(in_dims=tuple(r[0] for r in rows), begin=tuple(r[1] for r in rows),
                    stride=tuple(r[2] for r in rows), out_dims=tuple(r[3] for r in rows))
    p.validate()
    return p


def onnx_slice_params(in_shape: Sequence[int], starts: Sequence[int], ends: Sequence[int],
                      axes: Optional[Sequence[int]] = None,
                      steps: Optional[Sequence[int]] = None) -> SliceParams:
    """ONNX Slice semantics (negative indices count from the end, out-of-range clamps)."""
    shape = [int(d) for d in in_shape]
    rank = len(shape)
    axes = list(range(len(starts))) if axes is None else [int(a) for a in axes]
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
    require(len(starts) == len(ends) == len(axes) == len(steps), "starts/ends/axes/steps differ")
    begin, stride, out = [0] * rank, [1] * rank, list(shape)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = axis + rank if axis < 0 else axis
        require(0 <= axis < rank, f"axis {axis} out of range")
        require(step >= 1, f"only positive slice steps are supported, got {step}")
        n = shape[axis]
        start = min(max(start + n if start < 0 else start, 0), n)
        end = min(max(end + n if end < 0 else end, 0), n)
        count = max(0, -(-(end - start) // step))
        require(count >= 1, f"slice of axis {axis} is empty")
        begin[axis], stride[axis], out[axis] = start, step, count
    return make_slice_params(shape, begin, stride, out)


def make_split_params(in_shape: Sequence[int], axis: int,
                      sizes: Sequence[int]) -> list[SliceParams]:
    """ONNX Split: one slice per output."""
    shape = [int(d) for d in in_shape]
    axis = axis + len(shape) if axis < 0 else axis
    require(0 <= axis < len(shape) and sum(sizes) == shape[axis] and min(sizes) >= 1,
            f"split sizes {list(sizes)} do not partition axis {axis} of {shape}")
    parts, start = [], 0
    for size in sizes:
        begin = [0] * len(shape)
        begin[axis] = start
        out = list(shape)
        out[axis] = int(size)
        parts.append(make_slice_params(shape, begin, [1] * len(shape), out))
        start += int(size)
    return parts


def slice_s8(p: SliceParams, x) -> np.ndarray:
    """Returns an array of shape p.out_dims."""
    p.validate()
    a = as_int8(x, int(np.prod(p.in_dims)), "input").reshape(p.in_dims)
    index = tuple(slice(b, b + (o - 1) * s + 1, s)
                  for b, s, o in zip(p.begin, p.stride, p.out_dims))
    return np.ascontiguousarray(a[index])


# ---------------------------------------------------------------------------------------------
@register
class Gather(OpDef):
    """Gather along `axis` with constant indices (attrs: indices flattened and normalised to
    [0, n), index_shape: their ONNX shape, () for a scalar index that removes the axis)."""

    name = "Gather"
    layout_class = LayoutClass.AXIS
    axis_attrs = {"axis": "axis"}

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        ax = node.attrs["axis"]
        return [(tuple(x.shape[:ax]) + tuple(node.attrs["index_shape"]) + tuple(x.shape[ax + 1:]), x.dtype)]

    def run_float(self, node, xs):
        idx = np.array(node.attrs["indices"], np.int64).reshape(node.attrs["index_shape"])
        return [np.ascontiguousarray(np.take(xs[0], idx, axis=node.attrs["axis"]))]

    def keeps_nhwc(self, g, node):
        return len(node.attrs["index_shape"]) == 1

    def int8_output(self, g, node):
        return "same_as_input"

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        shape, ax = lc.tensor(x).shape, node.attrs["axis"]
        idx = np.array(node.attrs["indices"], np.int32)
        p = GatherParams(outer=int(np.prod(shape[:ax], dtype=np.int64)), axis_len=int(shape[ax]),
                         inner=int(np.prod(shape[ax + 1:], dtype=np.int64)), count=int(idx.size))
        args = [Arg("const", lc.blob(idx, node, "index")), Arg("in", x), Arg("out", y)]
        lc.add_step(node, "tc_gather_s8", p, args, lambda i, v: gather_s8(p, i, v))


@onnx_importer("Gather")
def import_gather(ctx, onode, attrs):
    """Gather of an activation (a Gather of constants folds away before importers run)."""
    shape = ctx.shape(onode.input[0])
    if not shape:
        raise BadInput(f"Gather node {onode.name!r}: the data must have rank >= 1")
    axis = norm_axis(int(attrs.get("axis", 0)), len(shape), onode)
    idx = np.asarray(ctx.require_const(onode, onode.input[1], "the indices"))
    if idx.dtype.kind not in "iu":
        raise BadInput(f"Gather node {onode.name!r}: indices of type {idx.dtype} (integers expected)")
    if idx.size == 0:
        raise unsupported(onode, "empty indices")
    if np.any(idx < -shape[axis]) or np.any(idx >= shape[axis]):
        raise BadInput(f"Gather node {onode.name!r}: indices outside [-{shape[axis]}, {shape[axis] - 1}]")
    norm = np.where(idx < 0, idx + shape[axis], idx).astype(np.int64)
    ctx.add("Gather", [onode.input[0]], [onode.output[0]], onode, axis=axis,
            indices=tuple(int(v) for v in norm.ravel()), index_shape=tuple(int(d) for d in idx.shape))


# ---------------------------------------------------------------------------------------------
@register
class Tile(OpDef):
    """ONNX Tile and Expand: out_shape (every axis a multiple of the input's, which is first
    padded with leading 1s to the output rank); output index i reads input index i mod in."""

    name = "Tile"
    layout_class = LayoutClass.AXIS
    axis_attrs = {"out_shape": "per_axis"}

    def infer(self, g, node):
        return [(tuple(node.attrs["out_shape"]), g.tensors[node.inputs[0]].dtype)]

    def run_float(self, node, xs):
        out = node.attrs["out_shape"]
        x = xs[0].reshape((1,) * (len(out) - xs[0].ndim) + xs[0].shape)
        return [np.ascontiguousarray(np.tile(x, [o // d for o, d in zip(out, x.shape)]))]

    def keeps_nhwc(self, g, node):
        return len(g.tensors[node.inputs[0]].shape) == len(node.attrs["out_shape"])

    def int8_output(self, g, node):
        return "same_as_input"

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        try:
            p = make_tile_params(lc.tensor(x).shape, node.attrs["out_shape"])
        except ValueError as exc:
            raise unsupported_int8(node, str(exc)) from None
        lc.add_step(node, "tc_tile_s8", p, [Arg("in", x), Arg("out", y)], lambda v: tile_s8(p, v))


@onnx_importer("Tile")
def import_tile(ctx, onode, attrs):
    shape = ctx.shape(onode.input[0])
    reps = [int(r) for r in ctx.require_const(onode, onode.input[1], "repeats").ravel()]
    if len(reps) != len(shape) or min(reps, default=1) < 1:
        raise BadInput(f"Tile node {onode.name!r}: repeats {reps} for an input of rank {len(shape)} "
                       "(one value >= 1 per axis; 0 would give an empty tensor)")
    ctx.add("Tile", [onode.input[0]], [onode.output[0]], onode, out_shape=tuple(d * r for d, r in zip(shape, reps)))


@onnx_importer("Expand")
def import_expand(ctx, onode, attrs):
    shape = ctx.shape(onode.input[0])
    target = [int(v) for v in ctx.require_const(onode, onode.input[1], "the shape").ravel()]
    rank = max(len(shape), len(target))
    a = [1] * (rank - len(shape)) + list(shape)
    b = [1] * (rank - len(target)) + target
    if any(da != db and 1 not in (da, db) for da, db in zip(a, b)) or min(b, default=1) < 0:
        raise BadInput(f"Expand node {onode.name!r}: shape {target} does not broadcast with {tuple(shape)}")
    if 0 in b:
        raise unsupported(onode, f"an empty output (shape {target})")
    ctx.add("Tile", [onode.input[0]], [onode.output[0]], onode, out_shape=tuple(max(da, db) for da, db in zip(a, b)))


# ---- integer reference (runtime_c/tc_gather_s8.c, tc_tile_s8.c) --------------------------------
@dataclass(frozen=True)
class GatherParams:
    """tc_gather_params: [outer][axis_len][inner] -> [outer][count][inner]."""

    C_STRUCT: ClassVar[str] = "tc_gather_params"
    outer: int
    axis_len: int
    inner: int
    count: int

    def validate(self) -> None:
        require(min(self.outer, self.axis_len, self.inner, self.count) >= 1, "all sizes must be >= 1")


def gather_s8(p: GatherParams, index, x) -> np.ndarray:
    """Mirror of tc_gather_s8: [outer][count][inner]."""
    p.validate()
    idx = np.asarray(index, np.int64).reshape(-1)
    require(idx.size == p.count and bool(np.all((idx >= 0) & (idx < p.axis_len))),
            f"need {p.count} indices in [0, {p.axis_len})")
    a = as_int8(x, p.outer * p.axis_len * p.inner, "input").reshape(p.outer, p.axis_len, p.inner)
    return np.ascontiguousarray(a[:, idx])


@dataclass(frozen=True)
class TileParams:
    """tc_tile_params: out[i] = in[i mod in_dims] per axis."""

    C_STRUCT: ClassVar[str] = "tc_tile_params"
    in_dims: Dims4
    out_dims: Dims4

    def validate(self) -> None:
        check_dims4(self.in_dims, "in_dims")
        check_dims4(self.out_dims, "out_dims")
        require(all(o % i == 0 for i, o in zip(self.in_dims, self.out_dims)),
                f"out_dims {self.out_dims} must be multiples of in_dims {self.in_dims}")


def make_tile_params(in_shape: Sequence[int], out_shape: Sequence[int]) -> TileParams:
    """Any rank whose axes fold into 4: axes of output extent 1 go, and neighbours that are both
    copied (in == out) or both broadcast (in == 1) merge."""
    out = [int(d) for d in out_shape]
    inp = [1] * (len(out) - len(in_shape)) + [int(d) for d in in_shape]
    require(len(inp) == len(out) and all(d >= 1 and o % d == 0 for d, o in zip(inp, out)),
            f"{tuple(out_shape)} is not a tiling of {tuple(in_shape)}")
    dims: list[list[int]] = []
    kinds: list[str] = []
    for d, o in zip(inp, out):
        if o == 1:
            continue
        kind = "copy" if d == o else ("broadcast" if d == 1 else "tile")
        if kinds and kind != "tile" and kinds[-1] == kind:
            dims[-1][0] *= d
            dims[-1][1] *= o
        else:
            dims.append([d, o])
            kinds.append(kind)
    require(len(dims) <= 4, f"tiling {tuple(in_shape)} to {tuple(out_shape)} needs more than 4 axes")
    pad = [[1, 1]] * (4 - len(dims)) + dims
    p = TileParams(in_dims=tuple(d for d, _ in pad), out_dims=tuple(o for _, o in pad))
    p.validate()
    return p


def tile_s8(p: TileParams, x) -> np.ndarray:
    """Mirror of tc_tile_s8: an array of shape out_dims."""
    p.validate()
    a = as_int8(x, int(np.prod(p.in_dims)), "input").reshape(p.in_dims)
    return np.ascontiguousarray(np.tile(a, [o // i for i, o in zip(p.in_dims, p.out_dims)]))


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_gather_s8", header="tc_structural.h", params=GatherParams, golden=gather_s8, args=("const", "in", "out"),
        sources=("tc_gather_s8.c",))  # indices, in, out
declare("tc_tile_s8", header="tc_structural.h", params=TileParams, golden=tile_s8, args=("in", "out"),
        sources=("tc_tile_s8.c",))
declare("tc_slice_s8", header="tc_tensor.h", params=SliceParams, golden=slice_s8, args=("in", "out"),
        sources=("tc_slice_s8.c",))
