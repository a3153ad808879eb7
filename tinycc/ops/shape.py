"""Data-movement ops: Reshape (also Flatten/Squeeze/Unsqueeze), Transpose, Concat, Split,
Slice, Pad (constant) and Resize (nearest). All static: shapes are resolved at import."""
from __future__ import annotations

import numpy as np

from ..errors import BadInput
from ..golden.kernels_eltwise import nearest_indices
from ..ir import IRError
from .common import ints, norm_axis, unsupported, unsupported_int8
from .registry import LayoutClass, OpDef, onnx_importer, register


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
        return _lower_reshape_int8(self, lc, node)


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


@onnx_importer("Reshape")
def import_reshape(ctx, onode, attrs):
    target = ctx.require_const(onode, onode.input[1], "the target shape")
    if target.ndim != 1:
        raise BadInput(f"Reshape node {onode.name!r}: the target shape must be 1-D, not of shape {list(target.shape)}")
    shape = _reshape_target(onode, ctx.shape(onode.input[0]), target, attrs.get("allowzero", 0))
    ctx.add("Reshape", [onode.input[0]], [onode.output[0]], onode, shape=shape)


@onnx_importer("Flatten")
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


@onnx_importer("Squeeze")
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


@onnx_importer("Unsqueeze")
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
        return _lower_transpose_int8(self, lc, node)


@onnx_importer("Transpose")
def import_transpose(ctx, onode, attrs):
    rank = len(ctx.shape(onode.input[0]))
    perm = tuple(attrs.get("perm", list(range(rank))[::-1]))
    if sorted(perm) != list(range(rank)):
        raise BadInput(f"Transpose node {onode.name!r}: perm {perm} is not a permutation of rank {rank}")
    ctx.add("Transpose", [onode.input[0]], [onode.output[0]], onode, perm=ints(perm))


# ---------------------------------------------------------------------------------------------
@register
class Concat(OpDef):
    name = "Concat"
    layout_class = LayoutClass.AXIS
    axis_attrs = {"axis": "axis"}

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
        return _lower_concat_int8(self, lc, node)


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
        return _lower_split_int8(self, lc, node)


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
        return _lower_slice_int8(self, lc, node)


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


# ---------------------------------------------------------------------------------------------
@register
class Pad(OpDef):
    """Constant padding; attrs pads = (begin_0..begin_{r-1}, end_0..end_{r-1}), value."""

    name = "Pad"
    layout_class = LayoutClass.AXIS
    axis_attrs = {"pads": "pads"}

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        r = len(x.shape)
        p = node.attrs["pads"]
        return [(tuple(d + p[i] + p[i + r] for i, d in enumerate(x.shape)), x.dtype)]

    def run_float(self, node, xs):
        r = xs[0].ndim
        p = node.attrs["pads"]
        return [np.pad(xs[0], [(p[i], p[i + r]) for i in range(r)], constant_values=node.attrs["value"])]

    def int8_output(self, g, node):
        return "same_as_input"

    def lower_int8(self, lc, node):
        return _lower_pad_int8(self, lc, node)


@onnx_importer("Pad")
def import_pad(ctx, onode, attrs):
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise unsupported(onode, f"mode={mode!r} (constant padding is supported)")
    rank = len(ctx.shape(onode.input[0]))
    if ctx.opset >= 11:
        pads = [int(v) for v in ctx.require_const(onode, onode.input[1], "pads")]
        value = 0.0
        if len(onode.input) > 2 and onode.input[2]:
            value = float(np.asarray(ctx.require_const(onode, onode.input[2], "constant_value")).reshape(()))
        if len(onode.input) > 3 and onode.input[3]:
            axes = [norm_axis(int(a), rank, onode) for a in ctx.require_const(onode, onode.input[3], "axes")]
            full = [0] * (2 * rank)
            for k, a in enumerate(axes):
                full[a], full[a + rank] = pads[k], pads[k + len(axes)]
            pads = full
    else:
        pads, value = list(attrs["pads"]), float(attrs.get("value", 0.0))
    if len(pads) != 2 * rank:
        raise BadInput(f"Pad node {onode.name!r}: {len(pads)} pads for rank {rank}")
    if any(p < 0 for p in pads):
        raise unsupported(onode, f"negative pads {pads} (cropping)")
    ctx.add("Pad", [onode.input[0]], [onode.output[0]], onode, pads=tuple(pads), value=value)


# ---------------------------------------------------------------------------------------------
@register
class Resize(OpDef):
    """Nearest-neighbour resize of H and W; attrs y_index/x_index are the source indices."""

    name = "Resize"
    layout_class = LayoutClass.SPATIAL

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        oh, ow = len(node.attrs["y_index"]), len(node.attrs["x_index"])
        if node.attrs["layout"] == "NHWC":
            return [((x.shape[0], oh, ow, x.shape[3]), x.dtype)]
        return [((x.shape[0], x.shape[1], oh, ow), x.dtype)]

    def run_float(self, node, xs):
        yi, xi = np.array(node.attrs["y_index"]), np.array(node.attrs["x_index"])
        if node.attrs["layout"] == "NHWC":
            return [np.ascontiguousarray(xs[0][:, yi][:, :, xi])]
        return [np.ascontiguousarray(xs[0][:, :, yi][:, :, :, xi])]

    def to_nhwc(self, g, node):
        node.attrs["layout"] = "NHWC"

    def int8_output(self, g, node):
        return "same_as_input"

    def lower_int8(self, lc, node):
        return _lower_resize_int8(self, lc, node)


@onnx_importer("Resize", "Upsample")
def import_resize(ctx, onode, attrs):
    dec = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
    mode = dec(attrs.get("mode", b"nearest"))
    if mode != "nearest":
        raise unsupported(onode, f"mode={mode!r} (nearest is supported)")
    shape = ctx.shape(onode.input[0])
    if len(shape) != 4:
        raise unsupported(onode, "input that is not 4-D")
    scales = sizes = None
    if onode.op_type == "Upsample":
        scales = attrs.get("scales")
        if scales is None:
            scales = ctx.require_const(onode, onode.input[1], "scales")
        coord, nearest = "asymmetric", "floor"
    else:
        coord = dec(attrs.get("coordinate_transformation_mode", b"half_pixel"))
        nearest = dec(attrs.get("nearest_mode", b"round_prefer_floor"))
        if attrs.get("axes") is not None:
            raise unsupported(onode, "the axes attribute")
        if len(onode.input) > 3 and onode.input[3]:
            sizes = ctx.require_const(onode, onode.input[3], "sizes")
        if len(onode.input) > 2 and onode.input[2] and ctx.const(onode.input[2]) is not None \
                and ctx.const(onode.input[2]).size:
            scales = ctx.const(onode.input[2])
        if scales is None and sizes is None:
            raise unsupported(onode, "neither scales nor sizes are constant")
        if dec(attrs.get("keep_aspect_ratio_policy", b"stretch")) != "stretch":
            raise unsupported(onode, "keep_aspect_ratio_policy other than stretch")
    if sizes is not None:
        sizes = [int(s) for s in sizes]
        scales = [None] * len(sizes)  # nearest_indices derives the scale from the sizes
    else:
        scales = [float(s) for s in scales]
        # onnxruntime: static_cast<int64_t>(float scale * input dim), a float32 product
        sizes = [int(np.floor(np.float32(d) * np.float32(s))) for d, s in zip(shape, scales)]
    if sizes[0] != shape[0] or sizes[1] != shape[1]:
        raise unsupported(onode, "resizing the batch or channel axis")
    if coord == "tf_crop_and_resize":
        raise unsupported(onode, "coordinate_transformation_mode=tf_crop_and_resize")
    try:  # the golden model's index function, checked against onnxruntime (one definition)
        yi = nearest_indices(shape[2], sizes[2], scales[2], coord, nearest)
        xi = nearest_indices(shape[3], sizes[3], scales[3], coord, nearest)
    except ValueError as exc:
        raise unsupported(onode, str(exc)) from None
    ctx.add("Resize", [onode.input[0]], [onode.output[0]], onode, y_index=ints(yi), x_index=ints(xi), layout="NCHW")


# ---- int8 ---------------------------------------------------------------------------------------
def _lower_reshape_int8(self, lc, node):
    lc.view(node.outputs[0], node.inputs[0])





def _input_arg(lc, node, name):
    from ..program import Arg

    if lc.is_const(name):
        blob, s, zp = lc.const_operand(name, node)
        return Arg("const", blob), (s, zp)
    return Arg("in", name), lc.qp(name)


def _lower_transpose_int8(self, lc, node):
    from ..golden import kernels_eltwise as E
    from ..program import Arg

    x, y = node.inputs[0], node.outputs[0]
    try:
        p = E.make_transpose_params(lc.tensor(x).shape, node.attrs["perm"])
    except ValueError as exc:
        raise unsupported_int8(node, str(exc)) from None
    lc.add_step(node, "tc_transpose_s8", p, [Arg("in", x), Arg("out", y)], lambda v: E.transpose_s8(p, v))


def _lower_concat_int8(self, lc, node):
    from ..golden import kernels_eltwise as E
    from ..program import Arg

    y = node.outputs[0]
    args = [_input_arg(lc, node, t) for t in node.inputs]
    parts = E.make_concat_params([lc.tensor(t).shape for t in node.inputs], node.attrs["axis"],
                                 [q for _, q in args], lc.qp(y))
    size = lc.tensor(y).size
    for k, (p, (arg, _)) in enumerate(zip(parts, args)):
        # a contiguous slice (outer == 1) without rescaling: the producer can write it directly
        copy_into = (y, p.out_offset) if p.outer == 1 and p.plain_copy and arg.kind == "in" else None
        if k == 0:
            lc.add_step(node, "tc_concat_s8_part", p, [arg, Arg("out", y)],
                        lambda v, p=p: E.concat_s8_part(p, v, np.zeros(size, dtype=np.int8)), note="concat part 0",
                        copy_into=copy_into)
        else:
            lc.add_step(node, "tc_concat_s8_part", p, [arg, Arg("update", y)],
                        lambda v, cur, p=p: E.concat_s8_part(p, v, np.array(cur, dtype=np.int8).reshape(-1)),
                        note=f"concat part {k}", copy_into=copy_into)


def _slice_step(lc, node, x, y, begin, stride, out_shape, note=""):
    from ..golden import kernels_eltwise as E
    from ..program import Arg

    try:
        p = E.make_slice_params(lc.tensor(x).shape, begin, stride, out_shape)
    except ValueError as exc:
        raise unsupported_int8(node, str(exc)) from None
    lc.add_step(node, "tc_slice_s8", p, [Arg("in", x), Arg("out", y)], lambda v: E.slice_s8(p, v), note=note)


def _lower_slice_int8(self, lc, node):
    a = node.attrs
    if any(s < 0 for s in a["steps"]):
        raise unsupported_int8(node, "a negative slice step")
    _slice_step(lc, node, node.inputs[0], node.outputs[0], a["starts"], a["steps"], lc.tensor(node.outputs[0]).shape)


def _lower_split_int8(self, lc, node):
    x = node.inputs[0]
    shape = lc.tensor(x).shape
    axis, start = node.attrs["axis"], 0
    for out, size in zip(node.outputs, node.attrs["sizes"]):
        begin = [start if i == axis else 0 for i in range(len(shape))]
        _slice_step(lc, node, x, out, begin, [1] * len(shape), lc.tensor(out).shape, note="split")
        start += size


def _lower_pad_int8(self, lc, node):
    from ..golden import kernels_eltwise as E
    from ..golden.arith import round_half_away
    from ..program import Arg

    x, y = node.inputs[0], node.outputs[0]
    s, zp = lc.qp(x)
    value = int(np.clip(round_half_away(node.attrs["value"] / s) + zp, -128, 127))
    r = len(lc.tensor(x).shape)
    pads = node.attrs["pads"]
    try:
        p = E.make_pad_params(lc.tensor(x).shape, pads[:r], pads[r:], value)
    except ValueError as exc:
        raise unsupported_int8(node, str(exc)) from None
    lc.add_step(node, "tc_pad_s8", p, [Arg("in", x), Arg("out", y)], lambda v: E.pad_s8(p, v))


def _lower_resize_int8(self, lc, node):
    from ..golden import kernels_eltwise as E
    from ..program import Arg

    x, y = node.inputs[0], node.outputs[0]
    h, w, c = lc.hwc(x)
    yi = np.array(node.attrs["y_index"], dtype=np.int32)
    xi = np.array(node.attrs["x_index"], dtype=np.int32)
    p = E.make_resize_nearest_params((1, h, w, c), len(yi), len(xi))
    args = [Arg("const", lc.blob(yi, node, "yidx")), Arg("const", lc.blob(xi, node, "xidx")), Arg("in", x), Arg("out", y)]
    lc.add_step(node, "tc_resize_nearest_s8", p, args, lambda a, b, v: E.resize_nearest_s8(p, a, b, v))


# ---- C kernels (tinycc/kernels.py): the runtime_c functions this module lowers to ------------
from ..golden import kernels_eltwise as _KE  # noqa: E402
from ..kernels import declare  # noqa: E402

declare("tc_transpose_s8", header="tc_tensor.h", params=_KE.TransposeParams, args=("in", "out"),
        sources=("tc_transpose_s8.c",))
declare("tc_concat_s8_part", header="tc_tensor.h", params=_KE.ConcatPartParams, args=("in", "out"),
        sources=("tc_concat_s8.c",))  # the output is "update" for every part after the first
declare("tc_slice_s8", header="tc_tensor.h", params=_KE.SliceParams, args=("in", "out"),
        sources=("tc_slice_s8.c",))
declare("tc_pad_s8", header="tc_tensor.h", params=_KE.PadParams, args=("in", "out"), sources=("tc_pad_s8.c",))
declare("tc_resize_nearest_s8", header="tc_tensor.h", params=_KE.ResizeNearestParams,
        args=("const", "const", "in", "out"), sources=("tc_resize_nearest_s8.c",))  # y index, x index, in, out
