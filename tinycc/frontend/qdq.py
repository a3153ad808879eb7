"""Pre-quantized (QDQ) ONNX models: turn QuantizeLinear/DequantizeLinear into annotations.

A QDQ graph computes in float between DequantizeLinear (DQ) and QuantizeLinear (Q) nodes. We
rewrite it into the plain float graph it describes and return, per tensor, the (scale, zero
point, axis) that the Q/DQ nodes fix:
- DQ of a constant (int8 weights, int32 biases) becomes a float64 constant holding the exact
  dequantized values, annotated with its params, so lowering recovers the integers exactly;
- Q(Y) -> Yq and DQ(Xq) -> X disappear: Yq and X become the same tensor as Y and Xq, which
  carry the params. Data movement on int8 tensors between them (Transpose, Reshape) stays.
- int8 graph inputs/outputs become float tensors whose params define the model's boundary.
uint8 activations are shifted to int8 (zero point - 128), which is exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import BadInput, Unsupported
from ..quant.params import share_params_through_moves


@dataclass
class QParam:
    scale: np.ndarray  # float32
    zero_point: np.ndarray  # int32
    axis: int | None


def is_qdq(model: onnx.ModelProto) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def _label(node) -> str:
    return f"{node.op_type} node {node.name!r}"


def _params(node, consts, rank: int | None, dims: tuple[int, ...] | None = None) -> QParam:
    """The node's (scale, zero point, axis); ``rank``/``dims``: its input's, where known."""
    if len(node.input) < 2 or node.input[1] not in consts:
        raise Unsupported(f"{_label(node)}: the scale must be a constant")
    scale = consts[node.input[1]].astype(np.float32)
    if len(node.input) > 2 and node.input[2]:
        if node.input[2] not in consts:
            raise Unsupported(f"{_label(node)}: the zero point must be a constant")
        zp_arr = consts[node.input[2]]
    else:
        zp_arr = np.zeros(scale.shape, dtype=np.uint8)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("block_size", 0):
        raise Unsupported(f"{_label(node)}: blocked quantization")
    # onnxruntime's quantizer writes some per-tensor biases with a scale of shape [1] and a
    # scalar zero point (depthwise ConvTranspose): one value each is per-tensor, whatever the shapes
    per_tensor = scale.size == 1 and zp_arr.size == 1 and scale.ndim <= 1 and zp_arr.ndim <= 1
    if not per_tensor and (scale.ndim > 1 or zp_arr.shape != scale.shape):
        raise BadInput(f"{_label(node)}: the scale (shape {list(scale.shape)}) must be a scalar or 1-D, and the "
                       f"zero point (shape {list(zp_arr.shape)}) must have the same shape")
    axis = None
    if scale.size > 1:
        axis = int(attrs.get("axis", 1))
        if rank is not None and not -rank <= axis < rank:
            raise BadInput(f"{_label(node)}: axis {axis} is out of range for its rank-{rank} input")
        if rank is not None and axis < 0:
            axis += rank
        if dims is not None and dims[axis] != scale.size:
            raise BadInput(f"{_label(node)}: {scale.size} scales for the {dims[axis]} channels of axis {axis} "
                           f"(input shape {list(dims)})")
    if zp_arr.dtype == np.uint8:
        zp = zp_arr.astype(np.int32) - 128
        kind = "uint8"
    elif zp_arr.dtype == np.int8:
        zp = zp_arr.astype(np.int32)
        kind = "int8"
    elif zp_arr.dtype == np.int32:
        zp = zp_arr.astype(np.int32)
        kind = "int32"
    else:
        raise Unsupported(f"{_label(node)}: {zp_arr.dtype} quantization (int8, uint8 and int32 are supported)")
    if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
        raise Unsupported(f"{_label(node)}: non-positive or non-finite scale")
    p = QParam(scale.reshape(-1) if axis is not None else scale.reshape(()),
               zp.reshape(-1) if axis is not None else zp.reshape(()), axis)
    p.kind = kind  # type: ignore[attr-defined]
    return p


def strip_qdq(model: onnx.ModelProto):
    """Return (float ModelProto, {tensor: QParam}, {graph input/output name: "int8" | "uint8"} for
    the inputs and outputs the model exchanges as integers)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    _refuse_float_tails(g, consts)
    shapes = {vi.name: len(vi.type.tensor_type.shape.dim) for vi in list(g.value_info) + list(g.input) + list(g.output)}
    quant: dict[str, QParam] = {}
    rename: dict[str, str] = {}
    new_inits = []
    kept = []
    int8_inputs: dict[str, str] = {}
    int8_outputs: dict[str, str] = {}

    def resolve(name):
        while name in rename:
            name = rename[name]
        return name

    for node in g.node:
        node.input[:] = [resolve(t) for t in node.input]
        if node.op_type == "DequantizeLinear" and node.input[0] in consts and node.input[0] not in (i.name for i in g.input):
            if node.output[0] in {vi.name for vi in g.output}:
                raise Unsupported(f"{_label(node)}: its dequantized constant is a graph output; tinycc compiles "
                                  "outputs computed from the inputs")
            q = consts[node.input[0]]
            p = _params(node, consts, q.ndim, q.shape)
            if q.dtype == np.uint8:
                if np.any(p.zero_point != -128):
                    raise Unsupported(f"{_label(node)}: uint8 weights with a non-zero zero point "
                                      "(quantize weights as symmetric int8)")
                q = q.astype(np.int32) - 128
                p.zero_point = np.zeros_like(p.zero_point)
            if q.dtype not in (np.int8, np.int32) and q.dtype != np.dtype(np.int32):
                raise Unsupported(f"{_label(node)}: {q.dtype} constant")
            shape = [1] * q.ndim
            if p.axis is not None:
                shape[p.axis] = -1
            real = (q.astype(np.float64) - p.zero_point.astype(np.float64).reshape(shape)) * \
                p.scale.astype(np.float64).reshape(shape)
            new_inits.append(numpy_helper.from_array(real, node.output[0]))
            quant[node.output[0]] = p
            continue
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):  # of an activation
            src, dst = node.input[0], node.output[0]
            p = _params(node, consts, shapes.get(src))
            if p.axis is not None:
                raise Unsupported(f"{_label(node)}: per-axis quantization of an activation")
            _set_quant(quant, src, p, node)
            rename[dst] = src
            continue
        kept.append(node)
    del g.node[:]
    g.node.extend(kept)
    for node in g.node:
        node.input[:] = [resolve(t) for t in node.input]
    g.initializer.extend(new_inits)
    share_params_through_moves(_data_moves(g.node), quant)
    for infos, int8_io in ((g.input, int8_inputs), (g.output, int8_outputs)):
        for vi in infos:
            elem = vi.type.tensor_type.elem_type
            if elem in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8):
                int8_io[resolve(vi.name)] = "uint8" if elem == onnx.TensorProto.UINT8 else "int8"
                vi.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    input_names = {vi.name for vi in g.input}
    named: dict[str, str] = {}  # float source -> the graph output now naming it
    for vi in g.output:  # keep the model's output names: rename the float source instead
        src = resolve(vi.name)
        if src == vi.name or src in input_names:
            vi.name = src
            continue
        if src in named:  # a second output quantizing the same tensor: a copy of the first
            g.node.append(onnx.helper.make_node("Identity", [named[src]], [vi.name], name=f"{vi.name}_copy"))
            if named[src] in quant:
                quant[vi.name] = quant[named[src]]
            if named[src] in int8_outputs:
                int8_outputs[vi.name] = int8_outputs[named[src]]
            continue
        named[src] = vi.name
        for node in g.node:
            node.input[:] = [vi.name if t == src else t for t in node.input]
            node.output[:] = [vi.name if t == src else t for t in node.output]
        for table in (quant,):
            if src in table:
                table[vi.name] = table.pop(src)
        if src in int8_outputs:
            int8_outputs[vi.name] = int8_outputs.pop(src)
    # int8-typed intermediate infos are stale now: let shape inference redo them
    del g.value_info[:]
    used = {t for n in g.node for t in n.input} | {o.name for o in g.output}
    live_inits = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(live_inits)
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as err:  # e.g. a graph output that was an int8 weight now reads as float
        raise Unsupported(f"the model's QuantizeLinear/DequantizeLinear nodes are arranged in a way tinycc cannot "
                          f"strip (ONNX shape inference then says: {' '.join(str(err).split())[:300]})") from None
    return model, quant, (int8_inputs, int8_outputs)


# Ops whose output holds only values of their input (moved, selected or the maximum): after a
# DequantizeLinear they stay on the input's quantization grid, so running them in int8 is exact.
EXACT_ON_GRID = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Transpose",
                 "Slice", "Split", "MaxPool", "GlobalMaxPool", "ReduceMax"}


def float_tail_nodes(g, consts) -> list:
    """Nodes of a QDQ graph that compute a graph output in float: reached from an output without
    crossing a QuantizeLinear or DequantizeLinear, other than ops exact on the input's grid.
    TFLite runs such ops (e.g. a LOG_SOFTMAX left in float) after the last DEQUANTIZE."""
    producer = {o: n for n in g.node for o in n.output if o}
    tail, seen = [], set()
    todo = [vi.name for vi in g.output]
    while todo:
        t = todo.pop()
        node = producer.get(t)
        if t in seen or t in consts or node is None or node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        seen.add(t)
        if node.op_type in EXACT_ON_GRID:
            todo.append(node.input[0])  # the data; other inputs are shapes, starts, axes
        elif all(node is not n for n in tail):
            tail.append(node)
    return tail


def _refuse_float_tails(g, consts) -> None:
    tail = float_tail_nodes(g, consts)
    if tail:
        names = ", ".join(_label(n) for n in tail)
        raise Unsupported(f"{names}: computes in float after the last DequantizeLinear (no QuantizeLinear "
                          "follows), and tinycc compiles int8 only; quantizing it would change the model's "
                          "result. Quantize its output in the model, or run it outside the model")


def _set_quant(quant, name, p, node):
    old = quant.get(name)
    if old is not None and (not np.array_equal(old.scale, p.scale) or not np.array_equal(old.zero_point, p.zero_point)):
        raise Unsupported(f"{_label(node)}: tensor {name!r} is quantized twice with different parameters")
    quant[name] = p


DATA_MOVEMENT = {"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"}


def _data_moves(nodes) -> list[tuple[str, str]]:
    """(source, moved) tensors of the data movement nodes: e.g. an int8 graph input transposed
    before its DQ shares the params of the tensor on the other side."""
    return [(n.input[0], n.output[0]) for n in nodes if n.op_type in DATA_MOVEMENT and n.input and n.output]
