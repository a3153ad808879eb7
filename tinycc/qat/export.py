"""Export a fake-quantized model as a QDQ ONNX model that `tinycc compile` consumes as it is.

torch's exporter (legacy, opset 17) writes each activation fake quantization as a
QuantizeLinear -> DequantizeLinear pair whose scale and zero point are constants (as tinycc and
onnxruntime expect). The weights, exported as the float constants codes * scale, are then
rewritten into what quantizers write (onnxruntime's quantize_static, the TFLite converter): an
int8 initializer holding the codes
behind a per-channel DequantizeLinear (axis 0), and every bias of a Conv/Gemm an int32
initializer behind a DequantizeLinear whose scale is input scale x weight scale (TFLite's bias
rule). Ternary layers hold the codes -1, 0, +1; codebook layers at most 2^B distinct codes per
palette group.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from .prepare import activation_quantizers, quant_layers


def export_qdq(model: nn.Module, example: torch.Tensor, path: str | Path, input_name: str = "input",
               output_name: str = "output", opset: int = 17) -> onnx.ModelProto:
    """Write the QDQ model of calibrated (and possibly fine-tuned) `model` to `path`; returns it.
    `example`: one input of the model's static shape (batch 1)."""
    model.eval()
    layers = quant_layers(model)
    for q in activation_quantizers(model).values():
        q.qparams()  # every range observed (or raise: calibrate first)
    for layer in layers.values():
        layer.freeze()
    codes = {_key(layer.frozen_weight.numpy()): (name, layer.frozen_codes.numpy(), layer.frozen_scale.numpy())
             for name, layer in layers.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # constant folding turns the activation quantizers' scales and zero points into
            # Constant nodes (tinycc needs them constant) and leaves the frozen weights as initializers
            torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=opset,
                              input_names=[input_name], output_names=[output_name])
    finally:
        for layer in layers.values():
            layer.unfreeze()
    proto = onnx.load(str(path))
    quantize_weights(proto, codes)
    quantize_biases(proto)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return proto


def _key(weight: np.ndarray) -> tuple:
    return weight.shape, np.ascontiguousarray(weight, dtype=np.float32).tobytes()


def quantize_weights(proto: onnx.ModelProto, codes: dict) -> None:
    """Every Conv/Gemm weight initializer that is a frozen codes * scale (`codes`: _key(weight)
    -> (layer name, int8 codes, float32 scale per output channel)) -> the int8 codes behind a
    per-channel DequantizeLinear (axis 0). A layer whose weight did not reach the graph as one of
    them is an error: it would be exported in float and re-quantized by tinycc."""
    g = proto.graph
    inits = {i.name: i for i in g.initializer}
    found, new_nodes = set(), []
    for node in g.node:
        if node.op_type not in ("Conv", "Gemm") or node.input[1] not in inits:
            continue
        if node.op_type == "Gemm" and not any(a.name == "transB" and a.i == 1 for a in node.attribute):
            continue  # weights (K, N): output channels are not on axis 0
        weight = numpy_helper.to_array(inits[node.input[1]])
        match = codes.get(_key(weight))
        if match is None:
            continue
        layer, q, scale = match
        name = node.input[1]
        g.initializer.extend([numpy_helper.from_array(q.astype(np.int8), f"{name}_quantized"),
                              numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"),
                              numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{name}_zero_point")])
        new_nodes.append(helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale",
                                                               f"{name}_zero_point"],
                                          [f"{name}_dequantized"], name=f"{name}_DequantizeLinear", axis=0))
        node.input[1] = f"{name}_dequantized"
        found.add(layer)
    missing = sorted({name for name, _, _ in codes.values()} - found)
    if missing:
        raise RuntimeError(f"the ONNX export did not keep the weights of {', '.join(missing)} as Conv/Gemm "
                           "initializers; they cannot be written as int8 codes")
    nodes = new_nodes + list(g.node)  # initializer-only inputs: valid at the front
    del g.node[:]
    g.node.extend(nodes)
    _drop_unused_initializers(g)


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
    return consts


def quantize_biases(proto: onnx.ModelProto) -> None:
    """Float biases of Conv/Gemm nodes with quantized input and weights -> int32 initializer x
    (input scale * weight scale) behind a DequantizeLinear, rounded half away from zero as
    tinycc quantizes biases (quant/params.quantize_bias)."""
    g = proto.graph
    consts = _constants(g)
    producer = {o: n for n in g.node for o in n.output}
    new_nodes = []
    for node in g.node:
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 3 or node.input[2] not in consts:
            continue
        x_dq, w_dq = _input_dequantize(producer, node.input[0]), producer.get(node.input[1])
        if x_dq is None or w_dq is None or x_dq.op_type != "DequantizeLinear" or w_dq.op_type != "DequantizeLinear":
            continue
        if node.op_type == "Gemm" and not any(a.name == "transB" and a.i == 1 for a in node.attribute):
            continue  # weights (K, N): the per-channel axis is not the output channel
        bias = consts[node.input[2]].astype(np.float64).reshape(-1)
        in_scale = np.float64(np.float32(consts[x_dq.input[1]].reshape(())))
        w_scale = np.broadcast_to(consts[w_dq.input[1]].astype(np.float32).reshape(-1), bias.shape).astype(np.float64)
        scale = in_scale * w_scale
        q = np.sign(bias / scale) * np.floor(np.abs(bias / scale) + 0.5)
        q = np.clip(q, -(2 ** 31) + 1, 2 ** 31 - 1).astype(np.int32)
        name = node.input[2]
        g.initializer.extend([numpy_helper.from_array(q, f"{name}_quantized"),
                              numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"),
                              numpy_helper.from_array(np.zeros(bias.shape, np.int32), f"{name}_zero_point")])
        new_nodes.append(helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale",
                                                               f"{name}_zero_point"],
                                          [f"{name}_dequantized"], name=f"{name}_DequantizeLinear", axis=0))
        node.input[2] = f"{name}_dequantized"
    nodes = new_nodes + list(g.node)  # initializer-only inputs: valid at the front
    del g.node[:]
    g.node.extend(nodes)
    _drop_unused_initializers(g)


# ops that keep their input on its quantization grid (tinycc: OpDef.int8_output "same_as_input")
SAME_GRID_OPS = {"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Identity", "MaxPool", "Dropout"}


def _input_dequantize(producer: dict, name: str) -> onnx.NodeProto | None:
    """The DequantizeLinear whose params the tensor `name` has (through data movement)."""
    node = producer.get(name)
    while node is not None and node.op_type in SAME_GRID_OPS:
        node = producer.get(node.input[0])
    return node if node is not None and node.op_type == "DequantizeLinear" else None


def _drop_unused_initializers(g: onnx.GraphProto) -> None:
    used = {t for n in g.node for t in n.input} | {o.name for o in g.output}
    live = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(live)


def weight_summary(proto: onnx.ModelProto) -> list[dict]:
    """Per weight tensor of a QDQ model (an int8 initializer behind a DequantizeLinear, rank >=
    2): its name, shape, number of distinct codes, and the most distinct codes in one output
    channel."""
    consts = _constants(proto.graph)
    rows = []
    for node in proto.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in consts:
            continue
        q = consts[node.input[0]]
        if q.dtype != np.int8 or q.ndim < 2:
            continue
        per_channel = max(len(np.unique(row)) for row in q.reshape(q.shape[0], -1))
        rows.append({"name": node.input[0], "shape": list(q.shape), "distinct_codes": int(len(np.unique(q))),
                     "distinct_codes_per_channel": int(per_channel), "codes_min": int(q.min()),
                     "codes_max": int(q.max())})
    return rows
