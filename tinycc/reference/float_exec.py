"""Float reference executor over the IR (numpy). The oracle for every float pass."""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from ..errors import BadInput
from ..ir import Graph
from ..ops.registry import OPS


def to_physical(g: Graph, name: str, value: np.ndarray) -> np.ndarray:
    perm = g.tensors[name].perm
    return value if perm is None else np.ascontiguousarray(value.transpose(perm))


def to_logical(g: Graph, name: str, value: np.ndarray) -> np.ndarray:
    perm = g.tensors[name].perm
    return value if perm is None else np.ascontiguousarray(value.transpose(np.argsort(perm)))


def check_inputs(g: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Inputs keyed by ONNX name in the ONNX (logical) layout; a missing batch axis is added."""
    out = {}
    for name in g.inputs:
        if name not in inputs:
            raise BadInput(f"no value given for model input {name!r} (inputs: {', '.join(g.inputs)})")
        t = g.tensors[name]
        logical = tuple(t.shape[i] for i in np.argsort(t.perm)) if t.perm else tuple(t.shape)
        v = np.asarray(inputs[name])
        if v.shape != logical and v.shape == logical[1:] and logical[0] == 1:
            v = v[None]
        if v.shape != logical:
            raise BadInput(f"input {name!r} has shape {v.shape}, the model expects {logical}")
        out[name] = _real_value(g, name, v)
    unknown = set(inputs) - set(g.inputs)
    if unknown:
        raise BadInput(f"unknown input name(s) {sorted(unknown)}; the model's inputs are {g.inputs}")
    return out


def _real_value(g: Graph, name: str, v: np.ndarray) -> np.ndarray:
    """A QDQ model's int8/uint8 input given as the raw quantized values the ONNX model takes:
    the float network computes on the real values it stands for (DequantizeLinear). tinycc keeps
    uint8 parameters shifted to int8 (zero point - 128), so uint8 values shift likewise."""
    if name not in g.int8_inputs or v.dtype not in (np.int8, np.uint8) or g.tensors[name].quant is None:
        return v
    from ..quant.params import dequantize

    raw = v.astype(np.int32) - (128 if v.dtype == np.uint8 else 0)
    return dequantize(raw, g.tensors[name].quant)


def run_float(g: Graph, inputs: Mapping[str, np.ndarray],
              observe: Callable[[str, np.ndarray], None] | None = None) -> dict[str, np.ndarray]:
    """Run the graph; return the outputs keyed by name, in the ONNX layout.

    `observe(tensor_name, physical_value)` is called for every computed tensor (calibration,
    per-layer comparison).
    """
    env: dict[str, np.ndarray] = {}
    for name, v in check_inputs(g, inputs).items():
        dtype = g.tensors[name].dtype
        env[name] = to_physical(g, name, v.astype(dtype, copy=False))
    for name, t in g.tensors.items():
        if t.is_const:
            env[name] = t.data
    for node in g.nodes:
        xs = [env[t] if t else None for t in node.inputs]
        ys = OPS[node.op].run_float(node, xs)
        for t, y in zip(node.outputs, ys):
            env[t] = y
            if observe is not None:
                observe(t, y)
    return {name: to_logical(g, name, env[name]) for name in g.outputs}
