"""Convert a validated ONNX model into the tinycc IR.

Every node whose inputs are all constants (including the Shape/Gather/Concat/Reshape chains
that exporters emit for static shapes) is evaluated here with onnx's reference evaluator and
becomes a constant. The remaining nodes go through the importers registered by the op modules.
All unsupported operators are reported together, with node names and op types.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from .. import ops as _ops  # noqa: F401  (registers importers)
from ..errors import BadInput, TinyccError, Unsupported
from ..ir import Graph, IRError, Node, QuantParams, Tensor, validate
from ..ops.registry import ONNX_IMPORTERS, OPS
from .load import load_model
from .opsets import revision_problems
from .qdq import is_qdq, strip_qdq

# Ops never folded even with constant inputs (randomness, or quantization we must keep).
NO_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
           "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
# Ops whose semantics tinycc implements itself besides those with importers (the others are
# folded by onnx's reference evaluator, which follows the model's opset).
OWN_SEMANTICS = {"Shape", "Size", "QuantizeLinear", "DequantizeLinear"}
MAX_FOLD_ELEMENTS = 1 << 24

ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT32: "int32", onnx.TensorProto.INT64: "int64", onnx.TensorProto.BOOL: "bool",
    onnx.TensorProto.INT16: "int16", onnx.TensorProto.DOUBLE: "float64",
}


class ImportContext:
    """What an importer sees: constants, tensor shapes, and a way to add IR nodes."""

    def __init__(self, graph: Graph, opset: int, value_shapes: Mapping[str, tuple]):
        self.graph = graph
        self.opset = opset
        self.value_shapes = value_shapes
        self.onnx_tensors: set[str] = set()  # names the ONNX model defines (not made by importers)
        self.problems: list[str] = []

    def const(self, name: str) -> np.ndarray | None:
        if not name:
            return None
        t = self.graph.tensors.get(name)
        return None if t is None or t.data is None else t.data

    def require_const(self, onode: onnx.NodeProto, name: str, what: str) -> np.ndarray:
        value = self.const(name)
        if value is None:
            raise Unsupported(
                f"{onode.op_type} node {onode.name!r}: {what} ({name!r}) must be a constant; "
                "tinycc compiles static graphs only"
            )
        return value

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.graph.tensors[name].shape)

    def add_const(self, data: np.ndarray, hint: str) -> str:
        return self.graph.const(np.asarray(data), hint)

    def derive_const(self, src: str, data: np.ndarray, hint: str, axis_map: dict | None = None) -> str:
        """A constant computed from constant `src` by a layout change (transpose/reshape) that
        keeps its values: pre-quantized parameters follow, with the quantized axis renumbered."""
        name = self.graph.const(np.asarray(data), hint)
        q = self.graph.tensors[src].quant
        if q is not None:
            axis = q.axis if q.axis is None or axis_map is None else axis_map[q.axis]
            self.graph.tensors[name].quant = QuantParams(q.scale, q.zero_point, axis)
        return name

    def add(self, op: str, inputs: Sequence[str], outputs: Sequence[str] | None, onode: onnx.NodeProto,
            hint: str = "", **attrs) -> list[str]:
        """Add an IR node; output tensors are created from the op's shape inference."""
        g = self.graph
        base = onode.name or onode.op_type
        if outputs is None:
            outputs = [g.fresh_name(f"{base}_{hint or op}")]
        node_name = base if not g.has_node_named(base) else g.fresh_name(base)
        node = Node(node_name, op, list(inputs), list(outputs), attrs, onnx_name=onode.name)
        try:
            shapes = OPS[op].infer(g, node)
        except IRError as exc:
            self._explain_divergence(onode, inputs, exc)
            raise
        for t, (shape, dtype) in zip(outputs, shapes):
            g.add_tensor(Tensor(t, tuple(int(d) for d in shape), dtype))
        g.add_node(node)
        return list(outputs)

    def _explain_divergence(self, onode: onnx.NodeProto, inputs: Sequence[str], exc: IRError) -> None:
        """Shapes that do not fit together where ONNX shape inference did not check them: it left
        an input's shape unknown, or computed it unlike tinycc (see _onnx_shape_inference_errata).
        The model is inconsistent then (onnxruntime fails on it too), not tinycc: raise BadInput.
        Returns when ONNX agreed on every input shape (a tinycc bug: the caller re-raises)."""
        for name in inputs:
            if name not in self.onnx_tensors or name not in self.graph.tensors:
                continue  # a tensor an importer made: ONNX never saw it
            ref, have = self.value_shapes.get(name), tuple(self.graph.tensors[name].shape)
            if ref is None or None in ref:
                why = f"ONNX shape inference left the shape of input {name!r} unknown and could not check them"
            elif tuple(ref) != have:
                why = (f"input {name!r} has shape {have} as onnxruntime computes it, not {tuple(ref)} as ONNX shape "
                       "inference says (it lacks the ceil_mode rule that drops a last window starting in the padding)")
            else:
                continue
            raise BadInput(f"{onode.op_type} node {onode.name!r}: its inputs do not fit together ({exc}); {why}") from None

    def alias(self, src: str, dst: str, onode: onnx.NodeProto) -> None:
        """Make ONNX tensor `dst` the same value as `src` (Identity, Dropout)."""
        self.add("Identity", [src], [dst], onode)


def attrs_of(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _eval_node(node: onnx.NodeProto, opset: int, values: list[np.ndarray | None]) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    inputs = [
        onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
        for n, v in zip(node.input, values) if n
    ]
    outputs = [onnx.helper.make_empty_tensor_value_info(o) for o in node.output if o]
    graph = onnx.helper.make_graph([node], "fold", inputs, outputs)
    domain_opset = onnx.helper.make_opsetid(node.domain or "", opset)
    model = onnx.helper.make_model(graph, opset_imports=[domain_opset])
    feeds = {n: v for n, v in zip(node.input, values) if n}
    return [np.asarray(r) for r in ReferenceEvaluator(model).run(None, feeds)]


def _value_shapes(model: onnx.ModelProto) -> dict[str, tuple]:
    shapes = {}
    for vi in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
            shapes[vi.name] = dims
    return shapes


def _fold_static(ctx: ImportContext, onode: onnx.NodeProto) -> bool:
    """Evaluate nodes with only constant inputs, and Shape/Size of static tensors. True if folded."""
    g = ctx.graph
    if onode.op_type in NO_FOLD:
        return False
    if onode.op_type in ("Shape", "Size") and onode.input[0] in g.tensors:
        shape = np.array(g.tensors[onode.input[0]].shape, dtype=np.int64)
        if onode.op_type == "Size":
            value = np.array(np.prod(shape), dtype=np.int64)
        else:
            a = attrs_of(onode)
            value = shape[a.get("start", 0): a["end"]] if "end" in a else shape[a.get("start", 0):]
        g.add_tensor(Tensor(onode.output[0], tuple(value.shape), str(value.dtype), data=value))
        return True
    values = [ctx.const(n) if n else None for n in onode.input]
    if any(n and v is None for n, v in zip(onode.input, values)):
        return False
    if onode.op_type not in ("Constant",) and not onode.input:
        return False
    try:
        results = _eval_node(onode, ctx.opset, values)
    except Exception as exc:  # the reference evaluator rejects what it cannot run
        raise BadInput(f"{onode.op_type} node {onode.name!r} on constant inputs could not be evaluated: {exc}")
    for name, value in zip([o for o in onode.output if o], results):
        if value.size > MAX_FOLD_ELEMENTS:
            raise BadInput(f"{onode.op_type} node {onode.name!r} produces a constant of {value.size} elements")
        if value.dtype == np.float64 and onode.op_type != "Cast":
            value = value.astype(np.float32)
        g.add_tensor(Tensor(name, tuple(value.shape), str(value.dtype), data=value))
    return True


def _unsupported_report(problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"the model uses {len(problems)} unsupported operator(s) or attribute(s):\n{lines}"


def convert(model: onnx.ModelProto, name: str = "model", quant: Mapping | None = None,
            int8_io: tuple[Mapping[str, str], Mapping[str, str]] | None = None) -> Graph:
    """ONNX -> IR. `quant`: pre-quantization params per tensor (from a QDQ model), see qdq.py."""
    quant = quant or {}
    g = Graph(name)
    g.int8_inputs, g.int8_outputs = (dict(m) for m in (int8_io or ({}, {})))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    ctx = ImportContext(g, opset, _value_shapes(model))
    ctx.onnx_tensors = {v.name for v in model.graph.input} | {o for n in model.graph.node for o in n.output}
    for init in model.graph.initializer:
        data = numpy_helper.to_array(init)
        if data.dtype == np.float64 and init.name not in quant:
            data = data.astype(np.float32)  # float64 is kept only for exact dequantized constants
        g.add_tensor(Tensor(init.name, tuple(data.shape), str(data.dtype), data=data))
    for vi in model.graph.input:
        if vi.name in g.tensors:
            continue
        tt = vi.type.tensor_type
        dims = tuple(int(d.dim_value) for d in tt.shape.dim)
        dtype = ONNX_DTYPES.get(tt.elem_type)
        if dtype is None:
            raise Unsupported(f"graph input {vi.name!r} has element type "
                              f"{onnx.TensorProto.DataType.Name(tt.elem_type)}; tinycc takes float32/int8 inputs")
        g.add_tensor(Tensor(vi.name, dims, dtype))
        g.inputs.append(vi.name)

    for tname, p in quant.items():
        if tname in g.tensors:
            g.tensors[tname].quant = QuantParams(p.scale, p.zero_point, p.axis)
    problems: list[str] = []
    for onode in model.graph.node:
        if any(n and n not in g.tensors for n in onode.input):
            continue  # depends on an unsupported node: already reported
        try:
            if _fold_static(ctx, onode):
                continue
            outs_before = set(g.tensors)
            importer = ONNX_IMPORTERS.get(onode.op_type) if onode.domain in ("", "ai.onnx") else None
            if importer is None:
                dom = f"{onode.domain}." if onode.domain else ""
                problems.append(f"node {onode.name!r}: operator {dom}{onode.op_type} is not supported")
                continue
            importer(ctx, onode, attrs_of(onode))
            for out in onode.output:
                if out in quant and out in g.tensors and out not in outs_before:
                    p = quant[out]
                    g.tensors[out].quant = QuantParams(p.scale, p.zero_point, p.axis)
        except Unsupported as exc:
            problems.append(str(exc))
    if problems:
        raise Unsupported(_unsupported_report(problems))

    for out in model.graph.output:
        if out.name not in g.tensors:
            raise IRError(f"graph output {out.name!r} was not produced")
        g.outputs.append(out.name)
    _check_constants_are_finite(g)
    _check_against_onnx_shapes(g, ctx.value_shapes, _onnx_shape_inference_errata(model))
    _materialize_constant_outputs(g)
    g.prune_tensors()
    validate(g)
    return g


def _check_against_onnx_shapes(g: Graph, shapes: Mapping[str, tuple], onnx_may_differ: set[str]) -> None:
    """tinycc's shapes must agree with ONNX shape inference, except at the ``onnx_may_differ``
    tensors, where ONNX is known to be wrong, and downstream of them where they did differ."""
    diverged: set[str] = set()
    for node in g.nodes:
        if diverged.intersection(node.inputs):
            diverged.update(node.outputs)
            continue
        for name in node.outputs:
            t, ref = g.tensors[name], shapes.get(name)
            if ref is None or t.is_const or None in ref or tuple(ref) == tuple(t.shape):
                continue
            if name not in onnx_may_differ:
                raise IRError(f"tinycc infers shape {t.shape} for {name!r}, ONNX shape inference says {ref}")
            diverged.add(name)


def _check_constants_are_finite(g: Graph) -> None:
    """Weights, biases and other constant operands hold numbers: a NaN or an infinity makes every
    value that depends on it meaningless, and has no int8 representation."""
    for node in g.nodes:
        for name in node.inputs:
            t = g.tensors.get(name) if name else None
            if t is not None and t.is_const and t.data.dtype.kind == "f" and not np.all(np.isfinite(t.data)):
                raise BadInput(f"node {node.onnx_name or node.name!r} ({node.op}): its constant input {name!r} "
                               "holds NaN or infinite values; the model's weights are corrupt (or its training "
                               "diverged)")


def _onnx_shape_inference_errata(model: onnx.ModelProto) -> set[str]:
    """Tensors whose ONNX-inferred shape may be wrong: ceil-mode pools, where ONNX shape inference
    lacks the rule that PyTorch and onnxruntime apply (and tinycc, see ops.common.pool_out_size):
    a last window that would start in the end padding is dropped."""
    return {node.output[0] for node in model.graph.node
            if node.op_type in ("MaxPool", "AveragePool") and node.output and attrs_of(node).get("ceil_mode", 0)}


def _materialize_constant_outputs(g: Graph) -> None:
    """A graph output that folded to a constant still needs a node producing it; nodes that read
    the constant (an initializer that is also an output) keep reading a constant."""
    produced = {t for n in g.nodes for t in n.outputs}
    for i, out in enumerate(g.outputs):
        t = g.tensors[out]
        if out not in produced and t.is_const:
            src = g.const(t.data, "const_output")
            t.data = None
            for node in g.nodes:
                node.inputs = [src if name == out else name for name in node.inputs]
            g.add_node(Node(g.fresh_name("const_output"), "Identity", [src], [out]))


def load_graph(path: str | os.PathLike, input_shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    """Load, validate and convert an ONNX file into an IR graph (logical NCHW layout, no passes)."""
    model = load_model(path, input_shapes)
    name = os.path.splitext(os.path.basename(str(path)))[0]
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    problems = revision_problems(model.graph.node, opset, set(ONNX_IMPORTERS) | OWN_SEMANTICS)
    if problems:
        raise Unsupported(f"{os.fspath(path)}: {_unsupported_report(problems)}")
    quant, int8_io = {}, None
    try:
        if is_qdq(model):
            model, quant, int8_io = strip_qdq(model)
        return convert(model, name, quant, int8_io)
    except BadInput as exc:  # Unsupported too: name the file, keep the class
        raise type(exc)(f"{os.fspath(path)}: {exc}") from None
    except TinyccError:
        raise
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise IRError(f"internal error while importing {os.fspath(path)!r}: {exc!r}") from exc
