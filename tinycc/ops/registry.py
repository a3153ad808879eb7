"""The operator registry.

An OpDef describes one IR operator in one place: shape inference, float reference, MAC count,
layout behaviour (for the NCHW -> NHWC pass) and, in later stages, quantization rule, integer
reference and C lowering. ONNX import rules register separately with @onnx_importer (an ONNX op
may lower to several IR ops, several ONNX ops to one IR op).

IR semantics are physical: every reference function computes on arrays as tinycc stores them,
with attributes (axes, layout) that refer to that physical storage.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..ir import Graph, IRError, Node, Tensor

OPS: dict[str, "OpDef"] = {}
ONNX_IMPORTERS: dict[str, Callable] = {}


def register(cls):
    inst = cls()
    if not inst.name:
        raise TypeError(f"{cls.__name__} has no op name")
    OPS[inst.name] = inst
    return cls


# ONNX operator revisions after opset 21 (frontend.opsets.SEMANTICS_OPSET) that keep the meaning
# tinycc implements, each reviewed against the ONNX changelog and schemas (tests/test_opsets.py
# checks every entry, and that every later revision of an implemented op is here): op type ->
# {version: {attribute added in that version: the values that keep the opset-21 meaning, or None
# where any value does}}. An empty dict: only new element types were admitted. Filled by
# @onnx_importer(..., revisions=...) next to each importer; frontend/opsets.py reads it.
Revisions = dict[int, dict[str, "tuple | None"]]
ONNX_REVISIONS: dict[str, Revisions] = {}

# Opsets 23-25 admitted float4e2m1 (23), float8e8m0 (24) and int2/uint2 (25) to the data-movement
# operators and changed nothing else (a copy per op: entries must not share mutable state).
NEW_ELEMENT_TYPES_23_TO_25: Revisions = {23: {}, 24: {}, 25: {}}


def same_meaning_revisions(op_type: str, revisions: Revisions) -> None:
    """Record the reviewed post-opset-21 revisions of `op_type` (see ONNX_REVISIONS)."""
    if op_type in ONNX_REVISIONS:
        raise TypeError(f"revisions of {op_type} registered twice")
    ONNX_REVISIONS[op_type] = {version: dict(added) for version, added in revisions.items()}


def onnx_importer(*op_types: str, revisions: Revisions | None = None):
    """Register `fn` as the importer of `op_types`; `revisions`: their reviewed revisions after
    opset 21 (ONNX_REVISIONS), given for every op type of the decorator."""
    def deco(fn):
        for t in op_types:
            ONNX_IMPORTERS[t] = fn
            if revisions:
                same_meaning_revisions(t, revisions)
        return fn

    return deco


def same_as_input(g: Graph, node: Node) -> list[tuple[tuple[int, ...], str]]:
    """OpDef.infer of an op whose one output has its first input's shape and element type."""
    x = g.tensors[node.inputs[0]]
    return [(x.shape, x.dtype)]


class LayoutClass:
    """How an op behaves under the NCHW -> NHWC layout change."""

    SPATIAL = "spatial"  # image op: knows NCHW/NHWC via attrs['layout'] (Conv, pools, Resize)
    ELEMENTWISE = "elementwise"  # any layout; constants must be permuted like the activations
    AXIS = "axis"  # works on any layout once its axis attributes are remapped
    LOGICAL = "logical"  # needs the logical (ONNX) layout: Reshape, Transpose, Dense, MatMul


class OpDef:
    """One IR operator. Shared code (passes, quantizer, lowering, measurements) asks these
    attributes and hooks instead of comparing op names."""

    name: str = ""
    layout_class: str = LayoutClass.LOGICAL
    # axis attributes remapped by the layout pass for AXIS ops: attr name -> "axis" | "axes" | "pads"
    axis_attrs: dict[str, str] = {}
    # takes a fused Relu/Clip as its `act` attribute, a clamp on its output (passes.fuse)
    fuses_activation: bool = False
    # int8: inputs and output share one quantization (TFLite CONCATENATION; quant.ptq)
    int8_shared_inputs: bool = False

    # ---- shapes ---------------------------------------------------------------------------
    def infer(self, g: Graph, node: Node) -> list[tuple[tuple[int, ...], str]]:
        """Output (shape, dtype) list from the input tensors and attrs."""
        raise NotImplementedError

    def check(self, g: Graph, node: Node) -> None:
        expected = self.infer(g, node)
        if len(expected) != len(node.outputs):
            raise IRError(f"{node.op} {node.name!r}: {len(node.outputs)} outputs, expected {len(expected)}")
        for t, (shape, dtype) in zip(node.outputs, expected):
            have = g.tensors[t]
            if tuple(have.shape) != tuple(shape):
                raise IRError(
                    f"{node.op} {node.name!r}: output {t!r} has shape {have.shape}, inference gives {shape}"
                )

    # ---- float reference (numpy, physical layout) ------------------------------------------
    def run_float(self, node: Node, xs: list[np.ndarray | None]) -> list[np.ndarray]:
        raise NotImplementedError

    # ---- cost ---------------------------------------------------------------------------
    def macs(self, g: Graph, node: Node) -> int:
        return 0

    # ---- int8 ----------------------------------------------------------------------------
    def int8_output(self, g: Graph, node: Node):
        """How the output is quantized: "calibrated", "same_as_input" or ("fixed", scale, zp)."""
        return "calibrated"

    def lower_int8(self, lc, node: Node) -> None:
        """Append the kernel call(s) computing this node on int8 tensors (see lower.py)."""
        from ..errors import Unsupported

        raise Unsupported(f"{self.name} node {node.onnx_name or node.name!r} has no int8 implementation yet")

    # ---- layout pass hooks ---------------------------------------------------------------
    def to_nhwc(self, g: Graph, node: Node) -> None:
        """Rewrite attrs/constant inputs of a SPATIAL op for NHWC activations."""
        raise NotImplementedError

    def keeps_nhwc(self, g: Graph, node: Node) -> bool:
        """AXIS ops: whether the op may run on NHWC data with its axes remapped (not when its
        output has another rank, whose layout would then be ambiguous)."""
        return True

    # ---- hooks of the graph passes ---------------------------------------------------------
    def clamp(self, node: Node) -> tuple[float | None, float | None] | None:
        """(min, max) when the op is a clamp that fuses into its producer (Relu, Clip), else None."""
        return None

    def bias_axis(self, g: Graph, node: Node) -> int | None:
        """For ops with weights (input 1, output channels first) and a bias (input 2, '' if
        none): the output axis the channels run along. None for every other op. BatchNorm and
        bias-Add folding, bias correction and the weight encoding (quant/weights.py) use it."""
        return None

    def absorb_zero_pad(self, g: Graph, node: Node, pads: tuple[int, ...]) -> bool:
        """Take a zero Pad of input 0 (ONNX pads: begins then ends, physical axes) into the
        op's own padding and return True; False (nothing changed) where the op cannot."""
        return False

    # ---- measurements ----------------------------------------------------------------------
    def layer_class(self, step) -> str | None:
        """conv / depthwise / pointwise / fc for a step of a MAC-heavy kernel, None for the rest:
        the classes in which instructions per MAC are reported (target.measure)."""
        return None


def tensors_of(g: Graph, node: Node) -> list[Tensor | None]:
    return [g.tensors[t] if t else None for t in node.inputs]


def attr(node: Node, key: str, default: Any = None) -> Any:
    return node.attrs.get(key, default)


def apply_act(y: np.ndarray, act: dict | None) -> np.ndarray:
    """Fused piecewise-linear activation (Relu / Clip) on a float result."""
    if not act:
        return y
    lo, hi = act.get("min"), act.get("max")
    return np.clip(y, -np.inf if lo is None else lo, np.inf if hi is None else hi).astype(y.dtype)
