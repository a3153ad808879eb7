"""Mutations of ONNX models for the fuzzer, at the levels a broken or hostile file can differ
from a good one: raw bytes, protobuf fields, graph structure, attributes, initializers, QDQ
parameters, shapes and element types, opset versions and names.

Every mutator is ``fn(rng, model) -> str | None``: it edits ``model`` (an ``onnx.ModelProto``) in
place and returns a short description, or returns None (and leaves the model alone) when it does
not apply. ``rng`` is a ``random.Random``; the same rng state always gives the same mutation.
Byte-level mutators are separate (``BYTE_MUTATORS``: ``fn(rng, data) -> (description, data)``)
because they work on the serialized file.

Many mutations keep the model valid on purpose (a smaller input, a truncated graph, a swapped
activation, shared weights, all-zero weights): a valid model must compile and its C must build.
"""
from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

# Values that break code assuming small, positive, int32-sized attributes.
HOSTILE_INTS = [0, -1, -2, 1, 2, 3, 7, 64, 2**15, 2**31 - 1, 2**31, 2**32 + 1, 2**62, 2**63 - 1, -(2**63)]
HOSTILE_FLOATS = [0.0, -0.0, -1.0, 1e-45, 1e-30, 1e38, 3.4e38, float("nan"), float("inf"), float("-inf")]
HOSTILE_STRINGS = [b"", b"\xff\xfe\x80", b"SAME_UPPER", b"SAME_LOWER", b"VALID", b"NOTSET", b"bogus", b"*/", b"\x00"]
# Names that stress generated C: comment terminators, newlines, quotes, trigraphs, control
# characters, keywords, very long names, non-ASCII text.
HOSTILE_NAMES = [
    "*/ int evil(void) { return 0; } /*", "a\nb", "line\r\nbreak", 'quote"back\\slash', "??/", "tab\tname",
    "\x01\x7f", "int", "main", "x" * 5000, "café✓", "0leading_digit", "%s%n", "#define X 1", "//", "a b",
    "model_input", "tc_arena", "",
]
FILE_STEMS = ["int", "main", "tc", "9lives", "a-b", "model", "x" * 200, "weights", "tc_common", "été"]

UNARY_OPS = ["Relu", "Sigmoid", "Tanh", "Identity", "Softmax", "LogSoftmax", "Flatten", "Dropout", "LeakyRelu",
             "HardSwish", "HardSigmoid", "Neg", "Exp", "Abs", "GlobalAveragePool", "GlobalMaxPool", "Clip"]
BINARY_OPS = ["Add", "Sub", "Mul", "Div", "MatMul", "Max", "Min", "Pow", "Equal"]
SWAPS = {"MaxPool": "AveragePool", "AveragePool": "MaxPool", "Conv": "ConvTranspose",
         "GlobalAveragePool": "GlobalMaxPool", "GlobalMaxPool": "GlobalAveragePool", "Gemm": "MatMul",
         "ReduceMean": "ReduceMax", "ReduceMax": "ReduceMean", "Concat": "Sum"}
# Attributes an op may carry, with values to try (besides the hostile ones).
OP_ATTRIBUTES = {
    "Conv": {"group": [1, 2, 0, -1], "dilations": [[2, 2], [0, 1]], "strides": [[2, 2], [3, 1], [0, 0]],
             "pads": [[1, 1, 1, 1], [0, 2, 0, 0], [5, 5, 5, 5], [-1, 0, 0, 0]],
             "auto_pad": [b"SAME_UPPER", b"SAME_LOWER", b"VALID"], "kernel_shape": [[1, 1], [3, 3], [2]]},
    "MaxPool": {"ceil_mode": [1], "dilations": [[2, 2]], "strides": [[3, 3], [1, 2]],
                "pads": [[0, 0, 1, 1], [1, 1, 1, 1], [1, 0, 0, 1]], "storage_order": [1],
                "auto_pad": [b"SAME_UPPER", b"VALID"], "kernel_shape": [[3, 3], [1, 1], [5, 2]]},
    "AveragePool": {"ceil_mode": [1], "count_include_pad": [1], "strides": [[3, 3], [2, 1]],
                    "pads": [[0, 0, 1, 1], [1, 1, 1, 1]], "auto_pad": [b"SAME_LOWER"], "kernel_shape": [[3, 3]]},
    "Softmax": {"axis": [0, 1, -1, 2, 5]}, "LogSoftmax": {"axis": [0, 1, -1, 3]},
    "Concat": {"axis": [0, 1, 2, -1, 4]}, "Flatten": {"axis": [0, 1, 2, -1, 9]},
    "Gemm": {"transA": [1], "transB": [0, 1], "alpha": [0.0, 2.0, -1.0], "beta": [0.0, 0.5]},
    "LeakyRelu": {"alpha": [0.0, -1.0, 10.0]}, "HardSigmoid": {"alpha": [0.5], "beta": [0.0, 2.0]},
    "BatchNormalization": {"epsilon": [0.0, -1.0, 1e30], "training_mode": [1], "momentum": [0.5]},
    "Transpose": {"perm": [[0, 1], [1, 0], [0, 2, 3, 1], [0, 0, 1, 2], [3, 2, 1, 0, 4]]},
    "Split": {"axis": [0, 1, -1, 7], "num_outputs": [2, 3]},
    "ReduceMean": {"keepdims": [0, 1], "axes": [[1], [2, 3], [-1], [9]]},
    "Resize": {"mode": [b"linear", b"nearest", b"cubic"], "nearest_mode": [b"floor", b"ceil"],
               "coordinate_transformation_mode": [b"align_corners", b"asymmetric"]},
}


Mutator = Callable[[random.Random, onnx.ModelProto], "str | None"]
MUTATORS: dict[str, Mutator] = {}


def mutator(fn: Mutator) -> Mutator:
    MUTATORS[fn.__name__] = fn
    return fn


# ---------------------------------------------------------------------------------------------
# Model queries


def _defined_before(graph: onnx.GraphProto, index: int) -> list[str]:
    """Tensor names available to node ``index``: graph inputs, initializers, earlier outputs."""
    names = [v.name for v in graph.input] + [t.name for t in graph.initializer]
    for node in graph.node[:index]:
        names.extend(o for o in node.output if o)
    return names


def _all_tensor_names(graph: onnx.GraphProto) -> list[str]:
    return _defined_before(graph, len(graph.node))


def _consumers(graph: onnx.GraphProto, name: str) -> list[tuple[onnx.NodeProto, int]]:
    return [(node, i) for node in graph.node for i, t in enumerate(node.input) if t == name]


def _initializer(graph: onnx.GraphProto, name: str) -> onnx.TensorProto | None:
    return next((t for t in graph.initializer if t.name == name), None)


def _qdq_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    return [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]


def _float_initializers(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    return [t for t in graph.initializer if t.data_type in (TensorProto.FLOAT, TensorProto.DOUBLE)]


def _replace_array(tensor: onnx.TensorProto, array: np.ndarray) -> None:
    tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))


def _rename_everywhere(model: onnx.ModelProto, old: str, new: str) -> None:
    graph = model.graph
    for node in graph.node:
        node.input[:] = [new if t == old else t for t in node.input]
        node.output[:] = [new if t == old else t for t in node.output]
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.name == old:
            value.name = new
    for tensor in graph.initializer:
        if tensor.name == old:
            tensor.name = new


def _hostile_int(rng: random.Random) -> int:
    return rng.choice(HOSTILE_INTS) if rng.random() < 0.8 else rng.randint(-10, 100)


# ---------------------------------------------------------------------------------------------
# Protobuf fields, opsets


@mutator
def opset_version(rng, model):
    entry = next((e for e in model.opset_import if e.domain in ("", "ai.onnx")), None)
    if entry is None:
        return None
    entry.version = rng.choice([1, 7, 10, 11, 12, 13, 17, 18, 19, 20, 21, 22, 25, 2**40])
    return f"opset {entry.version}"


@mutator
def opset_imports(rng, model):
    choice = rng.randrange(3)
    if choice == 0:
        del model.opset_import[:]
        return "no opset_import"
    if choice == 1:
        model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))
        return "extra ai.onnx.ml import"
    model.opset_import.append(helper.make_opsetid("", 11))
    return "standard domain imported twice"


@mutator
def ir_version(rng, model):
    model.ir_version = rng.choice([0, 1, 3, 4, 7, 9, 10, 11, 99])
    return f"ir_version {model.ir_version}"


@mutator
def node_domain(rng, model):
    if not model.graph.node:
        return None
    node = rng.choice(model.graph.node)
    node.domain = rng.choice(["ai.onnx", "com.microsoft", "ai.onnx.ml", "x" * 100])
    return f"node {node.name!r} domain {node.domain[:20]!r}"


@mutator
def metadata(rng, model):
    model.producer_name = rng.choice(HOSTILE_NAMES)
    model.graph.name = rng.choice(HOSTILE_NAMES)
    model.doc_string = rng.choice(HOSTILE_NAMES)
    entry = model.metadata_props.add()
    entry.key, entry.value = rng.choice(HOSTILE_NAMES), rng.choice(HOSTILE_NAMES)
    return "hostile producer/graph name/doc/metadata"


# ---------------------------------------------------------------------------------------------
# Graph structure


@mutator
def drop_node(rng, model):
    if len(model.graph.node) < 2:
        return None
    index = rng.randrange(len(model.graph.node))
    node = model.graph.node[index]
    del model.graph.node[index]
    return f"dropped node {node.name!r} ({node.op_type})"


@mutator
def bypass_node(rng, model):
    """Remove a node and feed its consumers with its first input (often still a valid model)."""
    graph = model.graph
    candidates = [i for i, n in enumerate(graph.node) if n.input and n.input[0] and n.output]
    if not candidates:
        return None
    index = rng.choice(candidates)
    node = graph.node[index]
    src, dst = node.input[0], node.output[0]
    del graph.node[index]
    for other in graph.node:
        other.input[:] = [src if t == dst else t for t in other.input]
    for out in graph.output:
        if out.name == dst:
            out.name = src
            out.type.tensor_type.ClearField("shape")
    return f"bypassed node {node.name!r} ({node.op_type})"


@mutator
def truncate_graph(rng, model):
    """Keep the first k nodes; the last one's output becomes the only graph output."""
    graph = model.graph
    if len(graph.node) < 2:
        return None
    k = rng.randint(1, len(graph.node) - 1)
    last = graph.node[k - 1]
    if not last.output or not last.output[0]:
        return None
    kept = [_copy(n) for n in graph.node[:k]]
    del graph.node[:]
    graph.node.extend(kept)
    elem = graph.output[0].type.tensor_type.elem_type if graph.output else TensorProto.FLOAT
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(last.output[0], elem, None))
    return f"graph truncated after node {k - 1} ({last.op_type})"


@mutator
def duplicate_node(rng, model):
    graph = model.graph
    if not graph.node:
        return None
    node = rng.choice(graph.node)
    copy = _copy(node)
    copy.name = node.name + "_dup"
    if rng.random() < 0.5:
        graph.node.append(copy)
        return f"node {node.name!r} duplicated with the same outputs"
    copy.output[:] = [o + "_dup" if o else o for o in node.output]
    graph.node.append(copy)
    if copy.output and copy.output[0]:
        elem = graph.output[0].type.tensor_type.elem_type if graph.output else TensorProto.FLOAT
        graph.output.append(helper.make_tensor_value_info(copy.output[0], elem, None))
    return f"node {node.name!r} duplicated as a second output"


@mutator
def rewire_input(rng, model):
    graph = model.graph
    candidates = [i for i, n in enumerate(graph.node) if n.input]
    if not candidates:
        return None
    index = rng.choice(candidates)
    node = graph.node[index]
    slot = rng.randrange(len(node.input))
    choices = _defined_before(graph, index)
    if rng.random() < 0.1:
        choices = [o for n in graph.node[index:] for o in n.output if o] or choices  # a cycle
    node.input[slot] = rng.choice(choices)
    return f"node {node.name!r} input {slot} <- {node.input[slot]!r}"


@mutator
def swap_inputs(rng, model):
    candidates = [n for n in model.graph.node if len(n.input) >= 2]
    if not candidates:
        return None
    node = rng.choice(candidates)
    i, j = rng.sample(range(len(node.input)), 2)
    node.input[i], node.input[j] = node.input[j], node.input[i]
    return f"node {node.name!r} inputs {i} <-> {j}"


@mutator
def drop_input(rng, model):
    candidates = [n for n in model.graph.node if n.input]
    if not candidates:
        return None
    node = rng.choice(candidates)
    if rng.random() < 0.5:
        del node.input[-1]
        return f"node {node.name!r} lost its last input"
    slot = rng.randrange(len(node.input))
    node.input[slot] = ""
    return f"node {node.name!r} input {slot} omitted"


@mutator
def extra_input(rng, model):
    candidates = [n for n in model.graph.node]
    if not candidates:
        return None
    node = rng.choice(candidates)
    node.input.append(rng.choice(_all_tensor_names(model.graph)))
    return f"node {node.name!r} got an extra input"


@mutator
def change_op_type(rng, model):
    graph = model.graph
    if not graph.node:
        return None
    node = rng.choice(graph.node)
    if node.op_type in SWAPS and rng.random() < 0.5:
        new = SWAPS[node.op_type]
    elif len(node.input) >= 2:
        new = rng.choice(BINARY_OPS + UNARY_OPS)
    else:
        new = rng.choice(UNARY_OPS)
    old, node.op_type = node.op_type, new
    if rng.random() < 0.7:  # attributes of the old op would only be rejected by the checker
        del node.attribute[:]
    return f"node {node.name!r} {old} -> {new}"


@mutator
def insert_node(rng, model):
    """A new node after some tensor (activation, reshape, transpose, pad, softmax...)."""
    graph = model.graph
    if not graph.node:
        return None
    index = rng.randrange(len(graph.node))
    producer = graph.node[index]
    if not producer.output or not producer.output[0]:
        return None
    src = producer.output[0]
    new = src + "_ins"
    kind = rng.choice(["Relu", "Sigmoid", "Identity", "Softmax", "Transpose", "Reshape", "Flatten", "Pad",
                       "MaxPool", "AveragePool", "Clip", "Mul", "Concat", "Split", "ReduceMean", "Resize"])
    inits = []
    attrs: dict = {}
    inputs, outputs = [src], [new]
    if kind == "Transpose":
        attrs["perm"] = rng.choice([[0, 1], [1, 0], [0, 2, 3, 1], [0, 3, 1, 2], [0, 1, 3, 2]])
    elif kind == "Reshape":
        inits.append(numpy_helper.from_array(np.array(rng.choice([[1, -1], [-1], [0, -1, 1, 1], [1, 2, -1]]),
                                                      np.int64), new + "_shape"))
        inputs.append(new + "_shape")
    elif kind == "Softmax":
        attrs["axis"] = rng.choice([-1, 1, 0, 2])
    elif kind == "Pad":
        inits.append(numpy_helper.from_array(np.array(rng.choice([[0, 0, 1, 1, 0, 0, 1, 1], [0, 1, 0, 1],
                                                                  [0, 0, 0, 0, 0, 0, 2, 0]]), np.int64), new + "_pads"))
        inputs.append(new + "_pads")
    elif kind in ("MaxPool", "AveragePool"):
        attrs.update(kernel_shape=rng.choice([[2, 2], [3, 3], [1, 1]]), strides=rng.choice([[2, 2], [1, 1], [3, 3]]),
                     ceil_mode=rng.choice([0, 1]), pads=rng.choice([[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 1, 1]]))
    elif kind == "Clip":
        inits += [numpy_helper.from_array(np.array(rng.choice([0.0, -1.0, float("nan")]), np.float32), new + "_lo"),
                  numpy_helper.from_array(np.array(rng.choice([6.0, 0.0, -1.0, float("inf")]), np.float32), new + "_hi")]
        inputs += [new + "_lo", new + "_hi"]
    elif kind == "Mul":
        inits.append(numpy_helper.from_array(np.array(rng.choice([0.0, 2.0, 1e30, float("nan"), 1e-40]),
                                                      np.float32), new + "_k"))
        inputs.append(new + "_k")
    elif kind == "Concat":
        inputs.append(src)
        attrs["axis"] = rng.choice([1, -1, 0])
    elif kind == "Split":
        attrs["axis"] = 1
        outputs = [new, new + "_b"]
    elif kind == "ReduceMean":
        attrs.update(axes=rng.choice([[2, 3], [1], [-1]]), keepdims=rng.choice([0, 1]))
    elif kind == "Resize":
        inits += [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), new + "_scales")]
        inputs += ["", new + "_scales"]
        attrs["mode"] = rng.choice(["nearest", "linear"])
    node = helper.make_node(kind, inputs, outputs, name=new, **attrs)
    for consumer, slot in _consumers(graph, src):
        consumer.input[slot] = new
    for out in graph.output:
        if out.name == src:
            out.name = new
            out.type.tensor_type.ClearField("shape")
    graph.node.insert(index + 1, node)
    graph.initializer.extend(inits)
    return f"inserted {kind} after {src!r}"


@mutator
def graph_outputs(rng, model):
    graph = model.graph
    choice = rng.randrange(4)
    names = _all_tensor_names(graph)
    if choice == 0 and names:
        name = rng.choice(names)
        graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
        return f"extra graph output {name!r}"
    if choice == 1 and graph.input:
        del graph.output[:]
        graph.output.append(helper.make_tensor_value_info(graph.input[0].name, graph.input[0].type.tensor_type.elem_type, None))
        return "graph output is the graph input"
    if choice == 2:
        del graph.output[:]
        return "no graph outputs"
    if graph.output:
        graph.output.append(_copy(graph.output[0]))
        return "graph output listed twice"
    return None


@mutator
def shared_initializer(rng, model):
    """Point a node's constant input at another initializer (weight sharing, or a misfit)."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    uses = [(n, i) for n in graph.node for i, t in enumerate(n.input) if t in inits]
    if len(uses) < 2:
        return None
    node, slot = rng.choice(uses)
    same_shape = [name for name, t in inits.items() if list(t.dims) == list(inits[node.input[slot]].dims)
                  and name != node.input[slot]]
    pool = same_shape if same_shape and rng.random() < 0.7 else list(inits)
    node.input[slot] = rng.choice(pool)
    return f"node {node.name!r} input {slot} shares initializer {node.input[slot]!r}"


# ---------------------------------------------------------------------------------------------
# Attributes


@mutator
def attribute_value(rng, model):
    nodes = [n for n in model.graph.node if n.attribute]
    if not nodes:
        return None
    node = rng.choice(nodes)
    attr = rng.choice(node.attribute)
    if attr.type == AttributeProto.INT:
        attr.i = _hostile_int(rng)
        value = attr.i
    elif attr.type == AttributeProto.INTS:
        values = list(attr.ints)
        choice = rng.randrange(4)
        if choice == 0 and values:
            values[rng.randrange(len(values))] = _hostile_int(rng)
        elif choice == 1:
            values.append(_hostile_int(rng))
        elif choice == 2 and values:
            values.pop()
        else:
            values = [_hostile_int(rng)] * max(1, len(values))
        attr.ClearField("ints")
        attr.ints.extend(values)
        value = values
    elif attr.type == AttributeProto.FLOAT:
        attr.f = rng.choice(HOSTILE_FLOATS)
        value = attr.f
    elif attr.type == AttributeProto.STRING:
        attr.s = rng.choice(HOSTILE_STRINGS)
        value = attr.s
    elif attr.type == AttributeProto.TENSOR:
        value = _mutate_tensor_values(rng, attr.t)
    else:
        return None
    return f"node {node.name!r} ({node.op_type}) {attr.name}={str(value)[:60]}"


@mutator
def attribute_type(rng, model):
    nodes = [n for n in model.graph.node if n.attribute]
    if not nodes:
        return None
    node = rng.choice(nodes)
    index = rng.randrange(len(node.attribute))
    name = node.attribute[index].name
    value = rng.choice([3, 2.5, b"\xff", [1, 2], [0.5], b"text"])
    node.attribute[index].CopyFrom(helper.make_attribute(name, value))
    return f"node {node.name!r} attribute {name} retyped to {type(value).__name__}"


@mutator
def drop_attribute(rng, model):
    nodes = [n for n in model.graph.node if n.attribute]
    if not nodes:
        return None
    node = rng.choice(nodes)
    index = rng.randrange(len(node.attribute))
    name = node.attribute[index].name
    del node.attribute[index]
    return f"node {node.name!r} lost attribute {name}"


@mutator
def add_attribute(rng, model):
    nodes = [n for n in model.graph.node if n.op_type in OP_ATTRIBUTES]
    if not nodes:
        return None
    node = rng.choice(nodes)
    name, values = rng.choice(sorted(OP_ATTRIBUTES[node.op_type].items()))
    value = rng.choice(values) if rng.random() < 0.8 else _hostile_int(rng)
    kept = [_copy(a) for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept)
    node.attribute.append(helper.make_attribute(name, value))
    return f"node {node.name!r} ({node.op_type}) {name}={value!r}"


# ---------------------------------------------------------------------------------------------
# Initializers


def _mutate_tensor_values(rng, tensor: onnx.TensorProto) -> str:
    try:
        array = numpy_helper.to_array(tensor).copy()
    except Exception:
        return "unreadable tensor left alone"
    if array.size == 0:
        return "empty tensor left alone"
    if array.dtype.kind == "f":
        choice = rng.choice(["nan", "inf", "one_nan", "denormal", "huge", "zeros", "negate", "tiny", "ones"])
        flat = array.reshape(-1)
        if choice == "nan":
            flat[:] = np.nan
        elif choice == "inf":
            flat[:] = np.inf
        elif choice == "one_nan":
            flat[rng.randrange(flat.size)] = rng.choice([np.nan, np.inf, -np.inf])
        elif choice == "denormal":
            flat[:] = 1e-45
        elif choice == "huge":
            flat[:] = flat * 1e30 + 1e30
        elif choice == "zeros":
            flat[:] = 0
        elif choice == "negate":
            flat[:] = -flat
        elif choice == "tiny":
            flat[:] = flat * 1e-30
        else:
            flat[:] = 1
    elif array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        choice = rng.choice(["max", "min", "zeros", "one"])
        flat = array.reshape(-1)
        if choice == "one":
            flat[rng.randrange(flat.size)] = rng.choice([info.max, info.min, 0, -1 if info.min < 0 else 1])
        else:
            flat[:] = {"max": info.max, "min": info.min, "zeros": 0}[choice]
    else:
        return f"{array.dtype} tensor left alone"
    name = tensor.name
    tensor.CopyFrom(numpy_helper.from_array(array, name))
    return f"values {choice}"


@mutator
def initializer_values(rng, model):
    inits = list(model.graph.initializer)
    if not inits:
        return None
    tensor = rng.choice(inits)
    return f"initializer {tensor.name!r}: {_mutate_tensor_values(rng, tensor)}"


@mutator
def initializer_dims(rng, model):
    """Change the declared dims, keeping (or not) the data: raw bytes that no longer match."""
    inits = [t for t in model.graph.initializer if t.dims]
    if not inits:
        return None
    tensor = rng.choice(inits)
    dims = list(tensor.dims)
    choice = rng.randrange(4)
    if choice == 0:
        dims[rng.randrange(len(dims))] += rng.choice([1, -1, 1000])
    elif choice == 1:
        dims = dims + [1]
    elif choice == 2:
        dims = dims[1:] or [2]
    else:
        dims = [int(np.prod(dims))]  # same data, flattened: valid bytes, wrong rank
    del tensor.dims[:]
    tensor.dims.extend(dims)
    return f"initializer {tensor.name!r} dims -> {dims}"


@mutator
def initializer_resize(rng, model):
    """A consistent tensor of the wrong length (conv bias, BatchNorm parameter, weight rows)."""
    inits = [t for t in model.graph.initializer if t.dims and t.dims[0] > 0]
    if not inits:
        return None
    tensor = rng.choice(inits)
    try:
        array = numpy_helper.to_array(tensor)
    except Exception:
        return None
    if rng.random() < 0.5 and array.shape[0] > 1:
        array = array[:-1]
    else:
        array = np.concatenate([array, array[:1]])
    _replace_array(tensor, np.ascontiguousarray(array))
    return f"initializer {tensor.name!r} resized to {list(array.shape)}"


@mutator
def initializer_bytes(rng, model):
    """raw_data cut short or padded; or data moved to the typed field of another type."""
    inits = [t for t in model.graph.initializer if t.HasField("raw_data") and len(t.raw_data) > 0]
    if not inits:
        return None
    tensor = rng.choice(inits)
    choice = rng.randrange(3)
    if choice == 0:
        tensor.raw_data = tensor.raw_data[: rng.randrange(len(tensor.raw_data))]
        return f"initializer {tensor.name!r} raw_data truncated"
    if choice == 1:
        tensor.raw_data = tensor.raw_data + b"\x00" * rng.choice([1, 3, 4, 64])
        return f"initializer {tensor.name!r} raw_data padded"
    tensor.ClearField("raw_data")
    tensor.int64_data.extend([1, 2, 3])
    return f"initializer {tensor.name!r} data in the wrong field"


@mutator
def initializer_dtype(rng, model):
    inits = list(model.graph.initializer)
    if not inits:
        return None
    tensor = rng.choice(inits)
    new = rng.choice([TensorProto.INT64, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT8,
                      TensorProto.UINT8, TensorProto.INT32, TensorProto.BOOL, TensorProto.STRING, 999])
    if rng.random() < 0.5 and new not in (TensorProto.STRING, 999):
        try:  # a proper conversion: a valid tensor of an unexpected type
            array = numpy_helper.to_array(tensor)
            _replace_array(tensor, array.astype(helper.tensor_dtype_to_np_dtype(new)))
            return f"initializer {tensor.name!r} converted to {TensorProto.DataType.Name(new)}"
        except Exception:
            pass
    tensor.data_type = new
    return f"initializer {tensor.name!r} data_type field -> {new}"


@mutator
def initializer_to_input(rng, model):
    """A weight becomes a runtime graph input (tinycc compiles constant weights only)."""
    graph = model.graph
    inits = list(graph.initializer)
    if not inits:
        return None
    tensor = rng.choice(inits)
    graph.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    if rng.random() < 0.5:  # keep it as an initializer too: an old-style "input with a default"
        graph.initializer.remove(tensor)
    return f"initializer {tensor.name!r} as a graph input"


@mutator
def external_data(rng, model):
    inits = list(model.graph.initializer)
    if not inits:
        return None
    tensor = rng.choice(inits)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    location = rng.choice(["weights.bin", "../../../etc/passwd", "/etc/passwd", "", "sub/../../x"])
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    if rng.random() < 0.5:
        entry = tensor.external_data.add()
        entry.key, entry.value = "length", str(rng.choice([1, 2**40, -5]))
    return f"initializer {tensor.name!r} external data at {location!r}"


# ---------------------------------------------------------------------------------------------
# QDQ parameters


def _qdq_param(rng, model, slot: int):
    graph = model.graph
    nodes = [n for n in _qdq_nodes(graph) if len(n.input) > slot and _initializer(graph, n.input[slot]) is not None]
    if not nodes:
        return None, None
    node = rng.choice(nodes)
    tensor = _initializer(graph, node.input[slot])
    # shared parameters: give this node its own copy so only it changes
    own = _copy(tensor)
    own.name = f"{tensor.name}_fz{slot}_{rng.randrange(10**6)}"
    graph.initializer.append(own)
    node.input[slot] = own.name
    return node, own


@mutator
def qdq_scale(rng, model):
    node, tensor = _qdq_param(rng, model, 1)
    if node is None:
        return None
    scale = numpy_helper.to_array(tensor).astype(np.float32).copy()
    value = rng.choice([0.0, -0.5, float("nan"), float("inf"), 1e-45, 1e-30, 1e-12, 1e12, 3e38, 1.0])
    if scale.size > 1 and rng.random() < 0.5:
        scale.reshape(-1)[rng.randrange(scale.size)] = value
    else:
        scale[...] = value
    _replace_array(tensor, scale)
    return f"{node.op_type} {node.name!r} scale -> {value}"


@mutator
def qdq_scale_length(rng, model):
    node, tensor = _qdq_param(rng, model, 1)
    if node is None:
        return None
    scale = numpy_helper.to_array(tensor).reshape(-1)
    new = rng.choice([scale[:-1] if scale.size > 1 else np.concatenate([scale, scale]),
                      np.concatenate([scale, scale[:1]]), np.resize(scale, (2, 2))])
    _replace_array(tensor, np.ascontiguousarray(new.astype(np.float32)))
    return f"{node.op_type} {node.name!r} scale shape -> {list(new.shape)}"


@mutator
def qdq_zero_point(rng, model):
    node, tensor = _qdq_param(rng, model, 2)
    if node is None:
        return None
    zp = numpy_helper.to_array(tensor).copy()
    choice = rng.randrange(4)
    if choice == 0:  # another shape than the scale
        new = np.concatenate([zp.reshape(-1), zp.reshape(-1)[:1]]) if zp.size else np.zeros(2, zp.dtype)
    elif choice == 1:  # extreme values
        info = np.iinfo(zp.dtype)
        new = np.full(zp.shape, rng.choice([info.max, info.min]), zp.dtype)
    elif choice == 2:  # another integer type
        new = zp.astype(rng.choice([np.int16, np.uint16, np.int32, np.int64, np.float32, np.int8, np.uint8]))
    else:
        new = zp.reshape(1, -1) if zp.ndim else zp.reshape(1)
    _replace_array(tensor, np.ascontiguousarray(new))
    return f"{node.op_type} {node.name!r} zero point -> {new.dtype} {list(new.shape)}"


@mutator
def qdq_axis(rng, model):
    nodes = _qdq_nodes(model.graph)
    if not nodes:
        return None
    node = rng.choice(nodes)
    value = rng.choice([-5, -1, 0, 1, 2, 3, 4, 9, 2**40])
    kept = [_copy(a) for a in node.attribute if a.name != "axis"]
    del node.attribute[:]
    node.attribute.extend(kept)
    node.attribute.append(helper.make_attribute("axis", value))
    if rng.random() < 0.2:
        node.attribute.append(helper.make_attribute(rng.choice(["block_size", "saturate"]), rng.choice([0, 1, 32])))
    return f"{node.op_type} {node.name!r} axis={value}"


@mutator
def qdq_remove(rng, model):
    nodes = _qdq_nodes(model.graph)
    if not nodes:
        return None
    node = rng.choice(nodes)
    src, dst = node.input[0], node.output[0]
    model.graph.node.remove(node)
    for other in model.graph.node:
        other.input[:] = [src if t == dst else t for t in other.input]
    for out in model.graph.output:
        if out.name == dst:
            out.name = src
    if rng.random() < 0.5 and len(node.input) > 2:
        return f"removed {node.op_type} {node.name!r}"
    return f"removed {node.op_type} {node.name!r} (consumers read its input)"


@mutator
def qdq_drop_zero_point(rng, model):
    nodes = [n for n in _qdq_nodes(model.graph) if len(n.input) > 2]
    if not nodes:
        return None
    node = rng.choice(nodes)
    del node.input[2:]
    return f"{node.op_type} {node.name!r} without zero point"


# ---------------------------------------------------------------------------------------------
# Shapes and element types


@mutator
def input_shape(rng, model):
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in inits and v.type.HasField("tensor_type")]
    if not inputs:
        return None
    value = rng.choice(inputs)
    shape = value.type.tensor_type.shape
    dims = [d.dim_value if d.HasField("dim_value") else 1 for d in shape.dim]
    choice = rng.choice(["resize", "resize", "resize", "zero", "negative", "symbolic", "huge", "rank+1",
                         "rank-1", "rank0", "unknown"])
    if choice == "resize" and len(dims) >= 3:  # a valid model for another input size
        for axis in range(2 if len(dims) == 4 else 1, len(dims)):
            dims[axis] = max(1, rng.choice([dims[axis] // 2, dims[axis] + 1, dims[axis] - 1, 1, 2, 3, 7]))
    elif choice == "zero" and dims:
        dims[rng.randrange(len(dims))] = 0
    elif choice == "negative" and dims:
        dims[rng.randrange(len(dims))] = -3
    elif choice == "huge" and dims:
        dims[-1] = rng.choice([2**20, 2**31, 2**62])
    elif choice == "rank+1":
        dims = dims + [1]
    elif choice == "rank-1" and dims:
        dims = dims[1:]
    elif choice == "rank0":
        dims = []
    elif choice == "unknown":
        value.type.tensor_type.ClearField("shape")
        return f"input {value.name!r} of unknown rank"
    shape.SetInParent()
    del shape.dim[:]
    for d in dims:
        if choice == "symbolic" and rng.random() < 0.5:
            shape.dim.add().dim_param = rng.choice(["N", "h", "?", ""])
        else:
            shape.dim.add().dim_value = d
    return f"input {value.name!r} shape {choice} -> {dims}"


@mutator
def input_dtype(rng, model):
    inputs = list(model.graph.input)
    if not inputs:
        return None
    value = rng.choice(inputs)
    value.type.tensor_type.elem_type = rng.choice([TensorProto.INT64, TensorProto.DOUBLE, TensorProto.FLOAT16,
                                                   TensorProto.INT8, TensorProto.UINT8, TensorProto.BOOL,
                                                   TensorProto.STRING, TensorProto.UNDEFINED, 77])
    return f"input {value.name!r} elem_type {value.type.tensor_type.elem_type}"


@mutator
def output_type(rng, model):
    outputs = list(model.graph.output)
    if not outputs:
        return None
    value = rng.choice(outputs)
    tensor_type = value.type.tensor_type
    if rng.random() < 0.5:
        tensor_type.elem_type = rng.choice([TensorProto.INT64, TensorProto.DOUBLE, TensorProto.INT8, TensorProto.UINT8])
        return f"output {value.name!r} elem_type {tensor_type.elem_type}"
    tensor_type.shape.SetInParent()
    del tensor_type.shape.dim[:]
    for d in rng.choice([[1, 7], [1], [], [2, 3, 4, 5], [0]]):
        tensor_type.shape.dim.add().dim_value = d
    return f"output {value.name!r} declared shape changed"


@mutator
def value_info(rng, model):
    """A stated shape for an intermediate tensor that contradicts (or not) the real one."""
    graph = model.graph
    names = [o for n in graph.node for o in n.output if o]
    if not names:
        return None
    name = rng.choice(names)
    graph.value_info.append(helper.make_tensor_value_info(
        name, rng.choice([TensorProto.FLOAT, TensorProto.INT8, TensorProto.INT64]), rng.choice([[1, 3], [1], None, [1, 0]])))
    return f"value_info for {name!r}"


# ---------------------------------------------------------------------------------------------
# Names


@mutator
def rename_tensor(rng, model):
    names = _all_tensor_names(model.graph)
    if not names:
        return None
    old = rng.choice(names)
    new = rng.choice(HOSTILE_NAMES)
    if new in names:
        new = new + "_"
    _rename_everywhere(model, old, new)
    return f"tensor {old[:20]!r} renamed {new[:20]!r}"


@mutator
def rename_node(rng, model):
    if not model.graph.node:
        return None
    node = rng.choice(model.graph.node)
    node.name = rng.choice(HOSTILE_NAMES) if rng.random() < 0.8 else (model.graph.node[0].name or "same")
    return f"node renamed {node.name[:20]!r}"


def _copy(message):
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


# ---------------------------------------------------------------------------------------------
# Raw bytes


def flip_bits(rng, data: bytes) -> tuple[str, bytes]:
    out = bytearray(data)
    count = rng.randint(1, 8)
    for _ in range(count):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return f"{count} bit flips", bytes(out)


def truncate(rng, data: bytes) -> tuple[str, bytes]:
    cut = rng.randrange(1, len(data))
    return f"truncated at {cut}/{len(data)}", data[:cut]


def overwrite_bytes(rng, data: bytes) -> tuple[str, bytes]:
    out = bytearray(data)
    start = rng.randrange(len(out))
    length = rng.randint(1, 16)
    out[start:start + length] = bytes(rng.randrange(256) for _ in range(length))
    return f"{length} random bytes at {start}", bytes(out)


def splice_bytes(rng, data: bytes) -> tuple[str, bytes]:
    """Duplicate or delete a span: shifts every later field boundary."""
    start = rng.randrange(len(data))
    length = rng.randint(1, 64)
    if rng.random() < 0.5:
        return f"deleted {length} bytes at {start}", data[:start] + data[start + length:]
    return f"duplicated {length} bytes at {start}", data[:start] + data[start:start + length] + data[start:]


BYTE_MUTATORS = [flip_bits, truncate, overwrite_bytes, splice_bytes]

# Mutator families and how often each is drawn; QDQ mutators only apply to QDQ models.
FAMILIES: dict[str, tuple[float, list[str]]] = {
    "protobuf": (0.5, ["opset_version", "opset_imports", "ir_version", "node_domain", "metadata"]),
    "graph": (2.0, ["drop_node", "bypass_node", "truncate_graph", "duplicate_node", "rewire_input", "swap_inputs",
                    "drop_input", "extra_input", "change_op_type", "insert_node", "graph_outputs",
                    "shared_initializer"]),
    "attribute": (2.0, ["attribute_value", "attribute_type", "drop_attribute", "add_attribute"]),
    "initializer": (1.5, ["initializer_values", "initializer_dims", "initializer_resize", "initializer_bytes",
                          "initializer_dtype", "initializer_to_input", "external_data"]),
    "qdq": (2.0, ["qdq_scale", "qdq_scale_length", "qdq_zero_point", "qdq_axis", "qdq_remove", "qdq_drop_zero_point"]),
    "shape": (1.5, ["input_shape", "input_dtype", "output_type", "value_info"]),
    "names": (0.7, ["rename_tensor", "rename_node"]),
}


def mutate(rng: random.Random, model: onnx.ModelProto, count: int) -> list[str]:
    """Apply ``count`` applicable proto-level mutations; returns their descriptions."""
    is_qdq = bool(_qdq_nodes(model.graph))
    families = [(name, weight) for name, (weight, _) in FAMILIES.items() if name != "qdq" or is_qdq]
    done: list[str] = []
    for _ in range(count * 4):  # some draws do not apply to this model
        if len(done) == count:
            break
        family = rng.choices([f for f, _ in families], [w for _, w in families])[0]
        name = rng.choice(FAMILIES[family][1])
        try:
            description = MUTATORS[name](rng, model)
        except Exception:  # it could not read a tensor an earlier mutation broke: try another
            description = None
        if description is not None:
            done.append(f"{name}: {description}")
    return done
