"""SelfGated: y = x * gate(x), the form exporters write for hard-swish (torch at opset <= 13:
x * HardSigmoid(x)), SiLU/Swish (x * Sigmoid(x)) and similar self-gated activations.

The fusion pass (passes/fuse.fuse_self_gating) turns Mul(x, Gate(x)) into one SelfGated node when
the gate's output feeds nothing else. This is not only faster: y depends on one int8 value, so
in int8 it is one 256-entry table (tc_lut_s8) computed in float64 and rounded once, instead of a
table, a requantized gate tensor and a multiply (two roundings); and the gate tensor, as large as
x, no longer has to be live next to x. The gate is any unary activation of ops/activation.py.
"""
from __future__ import annotations

import numpy as np

from ..program import Arg
from .activation import FLOAT_FUNCS, LutParams, lut_s8, make_lut
from .registry import LayoutClass, OpDef, register, same_as_input

# Gates the fusion accepts: unary activations with a float reference (Identity gives x * x).
GATES = frozenset(FLOAT_FUNCS) - {"Identity"}


def self_gated(x: np.ndarray, gate: str, gate_attrs: dict) -> np.ndarray:
    """x * gate(x), in the precision of x (the one definition: float engine and int8 table)."""
    return x * FLOAT_FUNCS[gate](x, gate_attrs)


@register
class SelfGated(OpDef):
    name = "SelfGated"
    layout_class = LayoutClass.ELEMENTWISE

    def infer(self, g, node):
        return same_as_input(g, node)

    def run_float(self, node, xs):
        y = self_gated(xs[0].astype(np.float64), node.attrs["gate"], node.attrs["gate_attrs"])
        return [np.asarray(y, dtype=np.float32)]

    def int8_output(self, g, node):
        return "calibrated"

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        s_in, z_in = lc.qp(x)
        s_out, z_out = lc.qp(y)
        gate, attrs = node.attrs["gate"], node.attrs["gate_attrs"]
        table = make_lut(lambda v: self_gated(v, gate, attrs), s_in, z_in, s_out, z_out)
        p = LutParams(size=lc.tensor(x).size)
        lc.add_step(node, "tc_lut_s8", p, [Arg("const", lc.blob(table, node, "lut")), Arg("in", x), Arg("out", y)],
                    lambda t, xv: lut_s8(p, t, xv), inplace_inputs=(0,), note=f"lookup table: x * {gate}(x)")
