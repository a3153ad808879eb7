"""Load an untrusted ONNX file into a validated, shape-inferred ModelProto with static inputs.

Every problem becomes a ``BadInput`` (or ``Unsupported``) whose message is one paragraph that
names the file, says what is wrong and, where there is one, what to do about it. Nothing here
converts operators: the ONNX front end (``frontend/onnx.py``) does that on the returned model.

The returned model is normalised:
- nodes are topologically sorted (exporters sometimes emit valid but unsorted graphs),
- model-local functions are inlined,
- initializers are not graph inputs (old exporters list them as inputs; they are constants),
  and the IR version is at least 4 so that this is legal,
- every graph input has a static shape: a symbolic first (batch) dimension becomes 1, other
  symbolic dimensions come from ``input_shapes``,
- value_info, graph outputs and all shapes ONNX can infer are filled in (strict inference).

Zero-size tensors are refused, with one exception: inside the graph, 1-D tensors of length 0 are
allowed, because exporters use them as "empty list" placeholders (e.g. the ``roi`` and ``scales``
inputs of Resize). Graph inputs and outputs must never be empty.
"""
from __future__ import annotations

import heapq
import math
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import onnx
import onnx.external_data_helper
import onnx.inliner
from onnx import TensorProto, numpy_helper

from tinycc.errors import BadInput, Unsupported
from tinycc.frontend.opsets import opset_problem

MAX_FILE_BYTES = 2 * 1024**3
MAX_DIM = 2**24
MAX_TENSOR_ELEMENTS = 2**31
MAX_TENSOR_BYTES = 2**31
STANDARD_DOMAINS = ("", "ai.onnx")
INPUT_ELEM_TYPES = {TensorProto.FLOAT: "float32", TensorProto.INT8: "int8", TensorProto.UINT8: "uint8"}

_MAX_LISTED = 10  # items listed in one message before "and N more"
_MAX_QUOTED_CHARS = 600  # of a message quoted from onnx (checker, shape inference, protobuf)

Dim = int | str | None  # fixed size, symbolic name, or unknown


def load_model(path: str | os.PathLike, input_shapes: Mapping[str, Sequence[int]] | None = None) -> onnx.ModelProto:
    """Read, validate and shape-infer the ONNX model at ``path``; see the module docstring.

    ``input_shapes`` maps graph input names to static shapes (from ``--input-shape``); it is
    needed only for inputs with symbolic dimensions other than the first.
    """
    path = Path(path)
    data = _read_model_bytes(path)
    model = _parse_model(path, data)
    _check_names_are_text(path, model)
    _check_opset(path, model)
    _load_external_data(path, model)
    model = _inline_local_functions(path, model)
    _check_domains(path, model)
    _check_graph_structure(path, model.graph)
    _sort_nodes_topologically(path, model.graph)
    _make_inputs_static(path, model, dict(input_shapes or {}))
    _check_tensor_sizes(path, model)
    _check_tensor_data(path, model)
    _check_attribute_values(path, model)
    _run_checker(path, model)
    model = _infer_shapes(path, model)
    _check_tensor_sizes(path, model)
    return model


# ---------------------------------------------------------------------------------------------
# Reading and parsing


def _read_model_bytes(path: Path) -> bytes:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file.") from None
    except OSError as err:
        raise BadInput(f"{path}: cannot access the file ({err.strerror or err}).") from None
    if stat.S_ISDIR(info.st_mode):
        raise BadInput(f"{path}: is a directory; give the path of the .onnx model file.")
    if not stat.S_ISREG(info.st_mode):
        raise BadInput(f"{path}: is not a regular file; give the path of the .onnx model file.")
    if info.st_size == 0:
        raise BadInput(f"{path}: the file is empty; it is not an ONNX model (an interrupted download or export?).")
    if info.st_size > MAX_FILE_BYTES:
        raise BadInput(
            f"{path}: the file is {info.st_size} bytes; tinycc reads models up to 2 GiB, far more than a "
            "microcontroller can hold."
        )
    try:
        return path.read_bytes()
    except OSError as err:
        raise BadInput(f"{path}: cannot read the file ({err.strerror or err}).") from None


def _parse_model(path: Path, data: bytes) -> onnx.ModelProto:
    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:  # protobuf raises DecodeError, RuntimeError, RecursionError... on junk
        foreign = _foreign_format(data)
        if foreign:
            raise BadInput(f"{path}: {foreign}.") from None
        raise BadInput(
            f"{path}: is not a valid ONNX protobuf: it is truncated or corrupt (protobuf: {_quote(err)}). "
            "Export or download the model again."
        ) from None
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise BadInput(f"{path}: {_foreign_format(data) or 'does not contain an ONNX model (no IR version or no graph)'}.")
    return model


def _foreign_format(data: bytes) -> str | None:
    """Recognise files users mistake for ONNX models, to say what they are."""
    if data[4:8] == b"TFL3":
        return (
            "is a TensorFlow Lite flatbuffer, not an ONNX model; tinycc reads ONNX: convert the "
            "float model to ONNX (e.g. python -m tf2onnx.convert --tflite MODEL.tflite --output MODEL.onnx)"
        )
    if data.startswith(b"\x93NUMPY"):
        return "is a NumPy .npy array, not an ONNX model (arrays go to --input; the model comes first)"
    if data.startswith(b"PK\x03\x04"):
        return (
            "is a ZIP archive (a PyTorch .pt/.pth checkpoint, an .npz or a Keras file?), not an ONNX "
            "model; export the network with torch.onnx.export"
        )
    if data.startswith(b"\x89HDF\r\n\x1a\n"):
        return "is an HDF5 file (a Keras .h5 model?), not an ONNX model; convert it with tf2onnx"
    if _looks_like_text(data):
        return "is a text file, not a binary ONNX model"
    return None


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        try:  # the cut may have split a multi-byte character
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\t\r\n" for ch in text)


def _check_names_are_text(path: Path, model: onnx.ModelProto) -> None:
    """Protobuf hands back string fields holding invalid UTF-8 as bytes; such a file is corrupt."""
    for what, text in _names(model):
        if not isinstance(text, str):
            raise BadInput(f"{path}: the {what} {text!r} is not valid UTF-8 text; the file is corrupt.")


def _names(model: onnx.ModelProto) -> Iterator[tuple[str, str | bytes]]:
    yield from (("opset domain", entry.domain) for entry in model.opset_import)
    for graph in _graphs(model.graph):
        for node in graph.node:
            yield from (("node name", node.name), ("op type", node.op_type), ("node domain", node.domain))
            yield from (("tensor name", name) for name in [*node.input, *node.output])
            yield from (("attribute name", attr.name) for attr in node.attribute)
        for value in [*graph.input, *graph.output, *graph.value_info]:
            yield "tensor name", value.name
            if value.type.HasField("tensor_type"):
                yield from (("dimension name", dim.dim_param) for dim in value.type.tensor_type.shape.dim)
        for tensor in graph.initializer:
            yield "tensor name", tensor.name
            yield from (("external data field", text) for entry in tensor.external_data for text in (entry.key, entry.value))


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and all its subgraphs."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for subgraph in _attribute_graphs(attr):
                yield from _graphs(subgraph)


# ---------------------------------------------------------------------------------------------
# Opsets, external data, functions, domains


def _check_opset(path: Path, model: onnx.ModelProto) -> None:
    versions = {entry.version for entry in model.opset_import if entry.domain in STANDARD_DOMAINS}
    if not versions:
        raise BadInput(f"{path}: the model imports no opset for the standard ONNX domain; re-export it.")
    if len(versions) > 1:
        raise BadInput(f"{path}: the model imports the standard ONNX domain at several opsets {sorted(versions)}.")
    (version,) = versions
    problem = opset_problem(version)
    if problem:
        raise Unsupported(f"{path}: {problem}")


def _all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Initializers and tensor-valued attributes of ``graph`` and of its subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for subgraph in _attribute_graphs(attr):
                yield from _all_tensors(subgraph)


def _attribute_graphs(attr: onnx.AttributeProto) -> list[onnx.GraphProto]:
    return ([attr.g] if attr.HasField("g") else []) + list(attr.graphs)


def _load_external_data(path: Path, model: onnx.ModelProto) -> None:
    external = [t for t in _all_tensors(model.graph) if onnx.external_data_helper.uses_external_data(t)]
    if not external:
        return
    base = path.parent
    data_files: dict[Path, int] = {}
    for tensor in external:
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        data_file = base / location
        if not location or not data_file.is_file():
            raise BadInput(
                f"{path}: tensor {tensor.name!r} keeps its data in the external file {location!r}, which is "
                f"missing (looked for {data_file}). Keep the data file next to the model, or save the model "
                "in one file (onnx.save_model(model, PATH, save_as_external_data=False))."
            )
        data_files[data_file.resolve()] = data_file.stat().st_size
    if sum(data_files.values()) > MAX_FILE_BYTES:
        raise BadInput(f"{path}: the model's external data exceeds 2 GiB, far more than a microcontroller can hold.")
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(base))
    except Exception as err:  # bad offsets/lengths, paths escaping the model folder, I/O errors
        raise BadInput(f"{path}: cannot read the model's external data: {_quote(err)}.") from None


def _inline_local_functions(path: Path, model: onnx.ModelProto) -> onnx.ModelProto:
    if not model.functions:
        return model
    try:
        return onnx.inliner.inline_local_functions(model)
    except Exception as err:
        raise BadInput(f"{path}: cannot inline the model's local functions: {_quote(err)}.") from None


def _check_domains(path: Path, model: onnx.ModelProto) -> None:
    foreign = [
        f"{_node_label(node, index)} from domain {node.domain!r}"
        for index, node in enumerate(_all_nodes(model.graph))
        if node.domain not in STANDARD_DOMAINS
    ]
    if foreign:
        raise Unsupported(
            f"{path}: the model uses operators outside the standard ONNX domain, which tinycc does not "
            f"implement: {_listing(foreign)}. Re-export the model with standard ONNX operators only."
        )


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for subgraph in _attribute_graphs(attr):
                yield from _all_nodes(subgraph)


# ---------------------------------------------------------------------------------------------
# Graph structure: single assignment, dangling references, cycles, order


def _check_graph_structure(path: Path, graph: onnx.GraphProto) -> None:
    if graph.sparse_initializer:
        raise Unsupported(f"{path}: the model has sparse initializers, which tinycc does not support; store them dense.")
    if not graph.output:
        raise BadInput(f"{path}: the graph has no outputs, so there is nothing to compute.")
    producers = _defined_names(path, graph)
    for index, node in enumerate(graph.node):
        for name in _consumed_names(node):
            if name not in producers:
                raise BadInput(
                    f"{path}: node {_node_label(node, index)} reads tensor {name!r}, which no node, graph input "
                    "or initializer provides (a missing initializer or input?)."
                )
    for output in graph.output:
        if output.name not in producers:
            raise BadInput(f"{path}: graph output {output.name!r} is not produced by any node, input or initializer.")


def _defined_names(path: Path, graph: onnx.GraphProto) -> dict[str, str]:
    """Name -> description of what defines it; raises on any name defined twice (SSA violation)."""
    defined: dict[str, str] = {}

    def define(name: str, what: str) -> None:
        if name in defined:
            raise BadInput(
                f"{path}: tensor {name!r} is defined twice, by {defined[name]} and by {what}; every tensor "
                "must have exactly one producer (the graph is not in single static assignment form)."
            )
        defined[name] = what

    initializer_names = set()
    for tensor in graph.initializer:
        define(tensor.name, "an initializer")
        initializer_names.add(tensor.name)
    for value in graph.input:
        if value.name not in initializer_names:  # old exporters list initializers as inputs too
            define(value.name, "a graph input")
    for index, node in enumerate(graph.node):
        for name in node.output:
            if name:  # an empty name is an omitted optional output
                define(name, f"node {_node_label(node, index)}")
    return defined


def _consumed_names(node: onnx.NodeProto) -> list[str]:
    """Tensors a node reads: its inputs plus the outer-scope names its subgraphs refer to."""
    names = [name for name in node.input if name]
    for attr in node.attribute:
        for subgraph in _attribute_graphs(attr):
            names.extend(sorted(_outer_scope_references(subgraph)))
    return names


def _outer_scope_references(graph: onnx.GraphProto) -> set[str]:
    local = {t.name for t in graph.initializer} | {v.name for v in graph.input}
    local |= {name for node in graph.node for name in node.output}
    return {name for node in graph.node for name in _consumed_names(node)} - local


def _sort_nodes_topologically(path: Path, graph: onnx.GraphProto) -> None:
    """Reorder the nodes so every producer comes before its consumers, keeping the file's order
    where it is already valid; raises naming the nodes of a cycle if there is one."""
    producer = {name: index for index, node in enumerate(graph.node) for name in node.output if name}
    dependencies = [
        {producer[name] for name in _consumed_names(node) if name in producer} for node in graph.node
    ]
    consumers: list[list[int]] = [[] for _ in graph.node]
    for index, deps in enumerate(dependencies):
        for dep in deps:
            consumers[dep].append(index)
    waiting = [len(deps) for deps in dependencies]
    ready = [index for index, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for consumer in consumers[index]:
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                heapq.heappush(ready, consumer)
    if len(order) < len(graph.node):
        cycle = _find_cycle(dependencies, unsorted=set(range(len(graph.node))) - set(order))
        names = " -> ".join(_node_label(graph.node[i], i) for i in cycle + cycle[:1])
        raise BadInput(
            f"{path}: the graph has a cycle: {names}. An ONNX graph must be acyclic; a recurrence must be "
            "expressed with Loop or Scan."
        )
    if order != sorted(order):
        nodes = [_copy_node(graph.node[i]) for i in order]
        del graph.node[:]
        graph.node.extend(nodes)


def _find_cycle(dependencies: list[set[int]], unsorted: set[int]) -> list[int]:
    """A cycle among ``unsorted`` nodes, in data-flow order. Every unsorted node depends on at
    least one other unsorted node, so walking dependencies inside the set must revisit a node."""
    walk: list[int] = []
    seen: dict[int, int] = {}
    node = min(unsorted)
    while node not in seen:
        seen[node] = len(walk)
        walk.append(node)
        node = min(dependencies[node] & unsorted)
    return list(reversed(walk[seen[node]:]))


def _copy_node(node: onnx.NodeProto) -> onnx.NodeProto:
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    return copy


# ---------------------------------------------------------------------------------------------
# Graph inputs: constants, element types, static shapes


def _make_inputs_static(path: Path, model: onnx.ModelProto, input_shapes: dict[str, Sequence[int]]) -> None:
    graph = model.graph
    constants = {tensor.name for tensor in graph.initializer}
    runtime_inputs = [value for value in graph.input if value.name not in constants]
    if len(runtime_inputs) < len(graph.input):
        kept = [_copy_value_info(value) for value in runtime_inputs]
        del graph.input[:]
        graph.input.extend(kept)
        model.ir_version = max(model.ir_version, 4)  # IR < 4 requires initializers to be inputs
        runtime_inputs = list(graph.input)
    if not runtime_inputs:
        raise BadInput(f"{path}: the model has no runtime inputs (every graph input is a constant initializer).")
    _check_input_shape_names(path, input_shapes, [value.name for value in runtime_inputs], constants)
    for value in runtime_inputs:
        _check_input_type(path, value)
    missing = []
    for value in runtime_inputs:
        shape = _resolve_input_shape(path, value, input_shapes.get(value.name))
        if shape is None:
            missing.append(_shape_hint(value))
        else:
            _set_static_shape(value, shape)
    if missing:
        raise BadInput(
            f"{path}: tinycc compiles for one static input shape, and the model has dynamic dimensions: "
            f"{'; '.join(missing)}."
        )


def _copy_value_info(value: onnx.ValueInfoProto) -> onnx.ValueInfoProto:
    copy = onnx.ValueInfoProto()
    copy.CopyFrom(value)
    return copy


def _check_input_shape_names(
    path: Path, input_shapes: Mapping[str, Sequence[int]], input_names: list[str], constants: set[str]
) -> None:
    for name in input_shapes:
        if name in constants:
            raise BadInput(f"{path}: --input-shape names {name!r}, which is a constant initializer, not a runtime input.")
        if name not in input_names:
            known = ", ".join(f"{n!r}" for n in input_names)
            raise BadInput(f"{path}: --input-shape names {name!r}, but the model has no such input; its inputs are {known}.")


def _check_input_type(path: Path, value: onnx.ValueInfoProto) -> None:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        raise Unsupported(f"{path}: input {value.name!r} is a {kind or 'value of unknown type'}; tinycc accepts tensor inputs only.")
    elem_type = value.type.tensor_type.elem_type
    if elem_type == TensorProto.UNDEFINED:
        raise BadInput(f"{path}: input {value.name!r} has no element type.")
    if elem_type not in INPUT_ELEM_TYPES:
        raise Unsupported(
            f"{path}: input {value.name!r} has element type {_elem_type_name(elem_type)}; tinycc accepts float32 "
            "inputs (or int8/uint8 for quantized models). Cast the input inside the model or re-export it."
        )


def _input_dims(value: onnx.ValueInfoProto) -> list[Dim] | None:
    """The declared dims (None for an unknown dim), or None when even the rank is unknown."""
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims: list[Dim] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value >= 0:  # some tools write -1 for "dynamic"
            dims.append(dim.dim_value)
        else:
            dims.append(dim.dim_param or None)
    return dims


def _resolve_input_shape(path: Path, value: onnx.ValueInfoProto, given: Sequence[int] | None) -> list[int] | None:
    """The static shape of an input, or None when a dimension is unknown and nothing gives it."""
    declared = _input_dims(value)
    if given is not None:
        return _apply_given_shape(path, value.name, declared, given)
    if declared is None:
        return None
    shape = [1 if i == 0 and not isinstance(dim, int) else dim for i, dim in enumerate(declared)]
    return shape if all(isinstance(dim, int) for dim in shape) else None


def _apply_given_shape(path: Path, name: str, declared: list[Dim] | None, given: Sequence[int]) -> list[int]:
    given_text = "x".join(str(d) for d in given)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in given):
        raise BadInput(f"{path}: --input-shape {name}={given_text}: every dimension must be a positive integer.")
    if declared is None:
        return list(given)
    if len(given) != len(declared):
        raise BadInput(
            f"{path}: --input-shape {name}={given_text} has rank {len(given)}, but input {name!r} has rank "
            f"{len(declared)} (shape {_shape_text(declared)})."
        )
    for index, (fixed, wanted) in enumerate(zip(declared, given)):
        if isinstance(fixed, int) and fixed != wanted:
            raise BadInput(
                f"{path}: --input-shape {name}={given_text} contradicts input {name!r}, whose dimension {index} "
                f"is fixed at {fixed} (shape {_shape_text(declared)})."
            )
    return list(given)


def _shape_hint(value: onnx.ValueInfoProto) -> str:
    declared = _input_dims(value)
    if declared is None:
        return f"input {value.name!r} has unknown rank; give --input-shape {value.name}=DIMS (e.g. 1x3x96x96)"
    hint = []
    for index, dim in enumerate(declared):
        if isinstance(dim, int):
            hint.append(str(dim))
        elif index == 0:
            hint.append("1")
        else:
            hint.append(dim.upper() if dim and dim.isidentifier() else f"D{index}")
    return f"input {value.name!r} has shape {_shape_text(declared)}; give --input-shape {value.name}={'x'.join(hint)}"


def _set_static_shape(value: onnx.ValueInfoProto, shape: list[int]) -> None:
    tensor_shape = value.type.tensor_type.shape
    tensor_shape.SetInParent()  # a scalar's shape is present but has no dims
    del tensor_shape.dim[:]
    for size in shape:
        tensor_shape.dim.add().dim_value = size


# ---------------------------------------------------------------------------------------------
# Checker and shape inference


def _run_checker(path: Path, model: onnx.ModelProto) -> None:
    try:
        onnx.checker.check_model(_checker_view(model), full_check=False)
    except Exception as err:
        raise BadInput(f"{path}: the ONNX checker rejects the model: {_quote(err)}.") from None


def _checker_view(model: onnx.ModelProto) -> onnx.ModelProto:
    """The checker insists that graph outputs declare a shape, though shape inference fills it in
    (onnxruntime accepts such models). Give it a copy whose shapeless outputs claim an empty one."""
    shapeless = [
        index for index, output in enumerate(model.graph.output)
        if output.type.HasField("tensor_type") and not output.type.tensor_type.HasField("shape")
    ]
    if not shapeless:
        return model
    view = onnx.ModelProto()
    view.CopyFrom(model)
    for index in shapeless:
        view.graph.output[index].type.tensor_type.shape.SetInParent()
    return view


def _infer_shapes(path: Path, model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as err:
        raise BadInput(f"{path}: ONNX shape inference fails on the model: {_quote(err)}.") from None


# ---------------------------------------------------------------------------------------------
# Tensor sizes


def _check_tensor_sizes(path: Path, model: onnx.ModelProto) -> None:
    for what, name, elem_type, dims in _declared_tensors(model.graph):
        if 0 in dims and not (dims == [0] and what not in ("input", "output")):
            raise BadInput(
                f"{path}: {what} {name!r} has a zero-size dimension (shape {_shape_text(dims)}); tinycc cannot "
                "compile empty tensors."
            )
        _check_absurd_size(path, what, name, elem_type, dims)


def _declared_tensors(graph: onnx.GraphProto) -> Iterator[tuple[str, str, int, list[int]]]:
    """(what, name, elem_type, known dims) of every tensor whose shape the model states."""
    for tensor in _all_tensors(graph):
        yield ("initializer" if tensor.name else "constant tensor"), tensor.name, tensor.data_type, list(tensor.dims)
    labelled = [("input", v) for v in graph.input] + [("output", v) for v in graph.output]
    labelled += [("tensor", v) for v in graph.value_info]
    for what, value in labelled:
        if value.type.HasField("tensor_type"):
            tensor_type = value.type.tensor_type
            dims = [dim.dim_value for dim in tensor_type.shape.dim if dim.HasField("dim_value")]
            yield what, value.name, tensor_type.elem_type, dims


def _check_absurd_size(path: Path, what: str, name: str, elem_type: int, dims: list[int]) -> None:
    problem = None
    elements = math.prod(dims)
    if any(dim < 0 for dim in dims):
        problem = "a negative dimension"
    elif any(dim > MAX_DIM for dim in dims):
        problem = f"a dimension above 2**24 = {MAX_DIM}"
    elif elements > MAX_TENSOR_ELEMENTS:
        problem = f"{elements} elements, more than 2**31"
    elif elements * _elem_type_bytes(elem_type) > MAX_TENSOR_BYTES:
        problem = f"{elements * _elem_type_bytes(elem_type)} bytes, more than 2**31"
    if problem:
        raise BadInput(
            f"{path}: {what} {name!r} has shape {_shape_text(dims)}, with {problem}; the model is corrupt or far "
            "too large for a microcontroller."
        )


def _elem_type_bytes(elem_type: int) -> int:
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize
    except Exception:  # UNDEFINED, STRING or an unknown enum value: the element size is unknown
        return 1


def _check_tensor_data(path: Path, model: onnx.ModelProto) -> None:
    """Every stored tensor holds exactly the values its dims and element type call for: the
    checker does not look, and numpy would fail later on a misfit buffer."""
    for tensor in _all_tensors(model.graph):
        label = f"initializer {tensor.name!r}" if tensor.name else "a constant tensor"
        if tensor.data_type == TensorProto.UNDEFINED:
            raise BadInput(f"{path}: {label} has no element type; the file is corrupt.")
        if tensor.data_type not in TensorProto.DataType.values():
            raise BadInput(f"{path}: {label} has the unknown element type #{tensor.data_type}; the file is corrupt.")
        try:
            numpy_helper.to_array(tensor)  # reshapes the stored values to dims: raises on a misfit
        except Exception:
            dims = list(tensor.dims)
            raise BadInput(
                f"{path}: {label} declares shape {_shape_text(dims)} of {_elem_type_name(tensor.data_type)} "
                f"({math.prod(dims)} values) but {_stored_data_text(tensor)}; the file is corrupt."
            ) from None


def _stored_data_text(tensor: onnx.TensorProto) -> str:
    if tensor.HasField("raw_data"):
        expected = _raw_data_bytes(tensor)
        return f"holds {len(tensor.raw_data)} bytes of raw data" + (f" ({expected} expected)" if expected else "")
    stored = [f"{len(values)} values in {field.name}" for field, values in tensor.ListFields() if field.name.endswith("_data")]
    return "holds " + (", ".join(stored) or "no data")


def _raw_data_bytes(tensor: onnx.TensorProto) -> int | None:
    """The raw_data size the dims and element type call for (None for packed 4-bit types)."""
    if tensor.data_type in _PACKED_4BIT_TYPES:
        return None
    try:
        return math.prod(tensor.dims) * onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except Exception:
        return None


_PACKED_4BIT_TYPES = {getattr(TensorProto, name) for name in ("INT4", "UINT4", "FLOAT4E2M1") if hasattr(TensorProto, name)}
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# Attributes that hold data rather than parameters, or that the ONNX spec clamps.
_UNCHECKED_ATTRIBUTES = {("Constant", None), ("Shape", "start"), ("Shape", "end")}


def _check_attribute_values(path: Path, model: onnx.ModelProto) -> None:
    """Integers within int32 (tinycc's C parameters are 32-bit: strides of 2**63-1 would wrap),
    floats finite, strings UTF-8 text: anything else is corrupt or hostile, not a real model."""
    for index, node in enumerate(_all_nodes(model.graph)):
        if (node.op_type, None) in _UNCHECKED_ATTRIBUTES and node.domain in STANDARD_DOMAINS:
            continue
        for attr in node.attribute:
            if (node.op_type, attr.name) in _UNCHECKED_ATTRIBUTES:
                continue
            problem = _attribute_problem(attr)
            if problem:
                raise BadInput(f"{path}: node {_node_label(node, index)}, attribute {attr.name!r}: {problem}.")


def _attribute_problem(attr: onnx.AttributeProto) -> str | None:
    for value in [*([attr.i] if attr.type == onnx.AttributeProto.INT else []), *attr.ints]:
        if not INT32_MIN <= value <= INT32_MAX:
            return f"the value {value} is beyond the 32-bit integers tinycc works with (the model is corrupt)"
    for value in [*([attr.f] if attr.type == onnx.AttributeProto.FLOAT else []), *attr.floats]:
        if not math.isfinite(value):
            return f"the value {value} is not a finite number"
    for value in [*([attr.s] if attr.type == onnx.AttributeProto.STRING else []), *attr.strings]:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return f"the string {value[:40]!r} is not valid UTF-8 text (the file is corrupt)"
    return None


# ---------------------------------------------------------------------------------------------
# Message helpers


def _node_label(node: onnx.NodeProto, index: int) -> str:
    op_type = node.op_type if node.op_type.isidentifier() else repr(node.op_type)
    return f"{node.name!r} ({op_type})" if node.name else f"#{index} ({op_type})"


def _shape_text(dims: Sequence[Dim]) -> str:
    return "[" + ", ".join("?" if dim is None else repr(dim) for dim in dims) + "]"


def _elem_type_name(elem_type: int) -> str:
    try:
        return TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return f"#{elem_type}"


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown if len(items) <= _MAX_LISTED else f"{shown} and {len(items) - _MAX_LISTED} more"


def _quote(err: BaseException) -> str:
    """An exception message from onnx or protobuf, condensed to one bounded paragraph."""
    text = " ".join(str(err).split()).rstrip(".") or type(err).__name__
    return text if len(text) <= _MAX_QUOTED_CHARS else text[: _MAX_QUOTED_CHARS - 3] + "..."
