"""Unary activations and Identity.

Relu and Clip are piecewise-linear clamps: the activation-fusion pass folds them into the
producer's `act` attribute. The others become lookup tables in int8.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from ..golden.arith import mbqm, quantize_multiplier, round_half_away
from ..golden.checks import as_int8, check_act_range, checked_scale, is_int8, require
from ..kernels import declare
from ..program import Arg
from .common import bad_input, unsupported
from .registry import (NEW_ELEMENT_TYPES_23_TO_25, LayoutClass, OpDef, onnx_importer, register,
                       same_as_input)


# ---- float references (the one definition: run_float and the int8 lookup tables use them) -------
# Called on float64 arrays by both: run_float widens its input, make_lut dequantizes in float64,
# so a table is exactly the float function rounded once.
def relu(x):
    return np.maximum(x, 0)


def clip(x, lo=None, hi=None):
    return np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)


def leaky_relu(x, alpha=0.01):
    return np.where(x >= 0, x, x * alpha)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def hardsigmoid(x, alpha=0.2, beta=0.5):
    """max(0, min(1, alpha * x + beta)) (ONNX HardSigmoid defaults)."""
    return np.clip(alpha * x + beta, 0, 1)


def hardswish(x):
    """x * relu6(x + 3) / 6 (ONNX HardSwish)."""
    return x * np.clip(x / 6.0 + 0.5, 0, 1)


def tanh(x):
    return np.tanh(x)


def elu(x, alpha=1.0):
    """x for x >= 0, alpha * (exp(x) - 1) below (ONNX Elu)."""
    return np.where(x >= 0, x, alpha * np.expm1(np.minimum(x, 0)))


_ERF = np.frompyfunc(math.erf, 1, 1)


def erf(x):
    """The Gauss error function (math.erf on each element; numpy has none)."""
    x = np.asarray(x, dtype=np.float64)
    return np.asarray(_ERF(x), dtype=np.float64).reshape(x.shape)


def gelu(x, approximate="none"):
    """ONNX Gelu (opset 20): x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2))); approximate="tanh":
    0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))."""
    x = np.asarray(x, dtype=np.float64)
    if approximate == "tanh":
        with np.errstate(over="ignore"):  # x^3 = inf for huge x: tanh(inf) = 1, the right limit
            return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def softplus(x):
    """log(1 + exp(x)), written so that it neither overflows nor loses small values."""
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def mish(x):
    """x * tanh(softplus(x)) (ONNX Mish)."""
    return x * np.tanh(softplus(x))


def exp(x):
    with np.errstate(over="ignore"):  # overflow is +inf, as in float32 (saturates in int8)
        return np.exp(x)


# Outside their domain Log, Sqrt and Reciprocal give what IEEE float gives at the domain's edge:
# log(x <= 0) = -inf and 1/(+-0) = +-inf (saturated by the int8 table), sqrt(x < 0) = NaN in float
# but 0 in int8 (the nearest value of the domain: a table entry cannot hold NaN).
def log(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x)


def sqrt(x):
    with np.errstate(invalid="ignore"):
        return np.sqrt(x)


def reciprocal(x):
    with np.errstate(divide="ignore"):
        return 1.0 / np.asarray(x, dtype=np.float64)


def power(x, exponent: float):
    """x ** exponent for a constant exponent (ONNX Pow with a constant second input)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return np.power(np.asarray(x, dtype=np.float64), exponent)


def selu(x, alpha, gamma):
    """gamma * (x for x > 0, alpha * (exp(x) - 1) below) (ONNX Selu)."""
    return gamma * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def celu(x, alpha):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) (ONNX Celu)."""
    return np.maximum(x, 0) + np.minimum(0, alpha * np.expm1(np.minimum(x, 0) / alpha))


def shrink(x, lambd, bias):
    """x + bias below -lambd, x - bias above lambd, 0 between (ONNX Shrink)."""
    return np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, 0.0))


def tan(x):
    with np.errstate(all="ignore"):
        return np.tan(x)


# In a lookup table the domain edges replace NaN (which no int8 code holds): log and sqrt of a
# negative input are log(0) = -inf (the lowest code) and sqrt(0) = 0.
TABLE_FUNCS = {
    "Log": lambda x, a: log(np.maximum(x, 0)),
    "Sqrt": lambda x, a: sqrt(np.maximum(x, 0)),
    "Pow": lambda x, a: power(x if float(a["exponent"]).is_integer() else np.maximum(x, 0), a["exponent"]),
}


# op name -> fn(x, attrs); every entry but Relu and Clip (fused into their producer as a clamp
# where possible) is a 256-entry lookup table in int8.
FLOAT_FUNCS = {
    "Relu": lambda x, a: relu(x),
    "Clip": lambda x, a: clip(x, a["min"], a["max"]),
    "LeakyRelu": lambda x, a: leaky_relu(x, a["alpha"]),
    "Sigmoid": lambda x, a: sigmoid(x),
    "HardSigmoid": lambda x, a: hardsigmoid(x, a["alpha"], a["beta"]),
    "HardSwish": lambda x, a: hardswish(x),
    "Tanh": lambda x, a: tanh(x),
    "Elu": lambda x, a: elu(x, a["alpha"]),
    "Identity": lambda x, a: x,
    "Gelu": lambda x, a: gelu(x, a["approximate"]),
    "Softplus": lambda x, a: softplus(x),
    "Mish": lambda x, a: mish(x),
    "Exp": lambda x, a: exp(x),
    "Log": lambda x, a: log(x),
    "Abs": lambda x, a: np.abs(x),
    "Neg": lambda x, a: np.negative(x),
    "Sqrt": lambda x, a: sqrt(x),
    "Reciprocal": lambda x, a: reciprocal(x),
    "Erf": lambda x, a: erf(x),
    "Pow": lambda x, a: power(x, a["exponent"]),
    "Selu": lambda x, a: selu(x, a["alpha"], a["gamma"]),
    "Celu": lambda x, a: celu(x, a["alpha"]),
    "Softsign": lambda x, a: x / (1.0 + np.abs(x)),
    "ThresholdedRelu": lambda x, a: np.where(x > a["alpha"], x, 0.0),
    "Shrink": lambda x, a: shrink(x, a["lambd"], a["bias"]),
    "Sin": lambda x, a: np.sin(x),
    "Cos": lambda x, a: np.cos(x),
    "Tan": lambda x, a: tan(x),
    "Atan": lambda x, a: np.arctan(x),
    "Floor": lambda x, a: np.floor(x),
    "Ceil": lambda x, a: np.ceil(x),
    "Round": lambda x, a: np.round(x),  # half to even, as ONNX Round
    "Sign": lambda x, a: np.sign(x),
}
# int8 output quantization fixed by the TFLite spec (the others are calibrated)
_FIXED_OUTPUT = {"Sigmoid": ("fixed", 1.0 / 256.0, -128), "Tanh": ("fixed", 1.0 / 128.0, 0)}


class _Unary(OpDef):
    layout_class = LayoutClass.ELEMENTWISE

    def infer(self, g, node):
        return same_as_input(g, node)

    def run_float(self, node, xs):
        x = xs[0]
        if self.name == "Identity":
            return [x]
        y = FLOAT_FUNCS[self.name](x.astype(np.float64), node.attrs)
        return [np.asarray(y, dtype=np.float32)]

    def clamp(self, node):
        if self.name == "Relu":
            return 0.0, None
        if self.name == "Clip":
            return node.attrs.get("min"), node.attrs.get("max")
        return None

    def int8_output(self, g, node):
        if self.name == "Identity":
            return "same_as_input"
        return _FIXED_OUTPUT.get(self.name, "calibrated")

    def lower_int8(self, lc, node):
        """Every activation is a 256-entry lookup table built offline (tc_lut_s8)."""
        x, y = node.inputs[0], node.outputs[0]
        if self.name == "Identity":
            lc.view(y, x)
            return
        s_in, z_in = lc.qp(x)
        s_out, z_out = lc.qp(y)
        if self.name == "Abs":  # TFLM has an integer ABS: its table holds exactly what it computes
            table = tflm_abs_table(s_in, z_in, s_out, z_out)
        else:
            fn = TABLE_FUNCS.get(self.name, FLOAT_FUNCS[self.name])
            table = make_lut(lambda v: fn(v, node.attrs), s_in, z_in, s_out, z_out)
        p = LutParams(size=lc.tensor(x).size)
        lc.add_step(node, "tc_lut_s8", p, [Arg("const", lc.blob(table, node, "lut")), Arg("in", x), Arg("out", y)],
                    lambda t, xv: lut_s8(p, t, xv), inplace_inputs=(0,), note="lookup table")


for _name in FLOAT_FUNCS:
    register(type(_name, (_Unary,), {"name": _name}))


@onnx_importer("Relu", "Sigmoid", "Tanh")
@onnx_importer("HardSwish", revisions={22: {}})  # 22: bfloat16 admitted
def import_simple(ctx, onode, attrs):
    ctx.add(onode.op_type, [onode.input[0]], [onode.output[0]], onode)


@onnx_importer("Exp", "Log", "Abs", "Neg", "Sqrt", "Reciprocal", "Erf")
@onnx_importer("Softplus", "Mish", revisions={22: {}})  # 22: bfloat16 admitted
def import_float_unary(ctx, onode, attrs):
    """Element-wise functions of float tensors (Abs and Neg also take integers: refused here)."""
    dtype = ctx.graph.tensors[onode.input[0]].dtype
    if dtype != "float32":
        raise unsupported(onode, f"{onode.op_type} on a {dtype} tensor (float tensors expected)")
    ctx.add(onode.op_type, [onode.input[0]], [onode.output[0]], onode)


@onnx_importer("Pow")
def import_pow(ctx, onode, attrs):
    """Pow of an activation by a constant scalar exponent: an element-wise function of one value."""
    x, e = onode.input
    if ctx.graph.tensors[x].dtype != "float32":
        raise unsupported(onode, f"Pow of a {ctx.graph.tensors[x].dtype} tensor (float tensors expected)")
    exponent = ctx.const(e)
    if exponent is None:
        raise unsupported(onode, "an exponent computed at run time (a constant scalar exponent is supported)")
    if exponent.size != 1 or exponent.dtype.kind not in "fiu":
        raise unsupported(onode, f"exponent of shape {list(exponent.shape)} (a scalar is supported)")
    out_shape = np.broadcast_shapes(ctx.shape(x), exponent.shape)
    if tuple(out_shape) != tuple(ctx.shape(x)):
        raise unsupported(onode, "an exponent that broadcasts the base to a larger shape")
    ctx.add("Pow", [x], [onode.output[0]], onode, exponent=float(exponent.reshape(())))


@onnx_importer("Floor", "Ceil", "Sign")
@onnx_importer("Softsign", "Sin", "Cos", "Tan", "Atan", "Round", revisions={22: {}})  # 22: bfloat16 admitted
def import_more_float_unary(ctx, onode, attrs):
    import_float_unary(ctx, onode, attrs)


# attribute defaults of the parameterised ones (ONNX schemas)
_UNARY_ATTRS = {"Selu": {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875},
                "Celu": {"alpha": 1.0}, "ThresholdedRelu": {"alpha": 1.0}, "Shrink": {"lambd": 0.5, "bias": 0.0}}


@onnx_importer("Shrink")
@onnx_importer("Celu", revisions={28: {}})  # 28: new element types admitted
@onnx_importer("Selu", "ThresholdedRelu", revisions={22: {}})  # 22: bfloat16 admitted
def import_parameterised_unary(ctx, onode, attrs):
    dtype = ctx.graph.tensors[onode.input[0]].dtype
    if dtype != "float32":
        raise unsupported(onode, f"{onode.op_type} on a {dtype} tensor (float tensors expected)")
    values = {k: float(attrs.get(k, v)) for k, v in _UNARY_ATTRS[onode.op_type].items()}
    if onode.op_type == "Celu" and values["alpha"] == 0:
        raise bad_input(onode, "alpha=0 (Celu divides by alpha)")
    ctx.add(onode.op_type, [onode.input[0]], [onode.output[0]], onode, **values)


@onnx_importer("Gelu")
def import_gelu(ctx, onode, attrs):
    approximate = attrs.get("approximate", b"none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else str(approximate)
    if approximate not in ("none", "tanh"):
        raise bad_input(onode, f"approximate={approximate!r} (the ONNX spec allows 'none' or 'tanh')")
    ctx.add("Gelu", [onode.input[0]], [onode.output[0]], onode, approximate=approximate)


@onnx_importer("LeakyRelu")
def import_leaky(ctx, onode, attrs):
    ctx.add("LeakyRelu", [onode.input[0]], [onode.output[0]], onode, alpha=float(attrs.get("alpha", 0.01)))


@onnx_importer("Elu", revisions={22: {}})  # 22: bfloat16 admitted
def import_elu(ctx, onode, attrs):
    ctx.add("Elu", [onode.input[0]], [onode.output[0]], onode, alpha=float(attrs.get("alpha", 1.0)))


@onnx_importer("HardSigmoid", revisions={22: {}})  # 22: bfloat16 admitted
def import_hardsigmoid(ctx, onode, attrs):
    ctx.add("HardSigmoid", [onode.input[0]], [onode.output[0]], onode,
            alpha=float(attrs.get("alpha", 0.2)), beta=float(attrs.get("beta", 0.5)))


@onnx_importer("Clip")
def import_clip(ctx, onode, attrs):
    if ctx.opset < 11:
        lo, hi = attrs.get("min"), attrs.get("max")
    else:
        lo = hi = None
        if len(onode.input) > 1 and onode.input[1]:
            lo = ctx.require_const(onode, onode.input[1], "min")
        if len(onode.input) > 2 and onode.input[2]:
            hi = ctx.require_const(onode, onode.input[2], "max")
    if any(bound is not None and np.asarray(bound).size != 1 for bound in (lo, hi)):
        raise bad_input(onode, "min and max must be scalars")
    lo = None if lo is None else float(np.asarray(lo).reshape(()))
    hi = None if hi is None else float(np.asarray(hi).reshape(()))
    if any(bound is not None and np.isnan(bound) for bound in (lo, hi)) or lo == np.inf or hi == -np.inf:
        raise bad_input(onode, f"bounds [{lo}, {hi}] (NaN, or no finite value left)")
    lo = None if lo == -np.inf else lo  # an infinite bound clips nothing
    hi = None if hi == np.inf else hi
    if ctx.graph.tensors[onode.input[0]].dtype != "float32":
        raise unsupported(onode, "Clip on a non-float tensor")
    ctx.add("Clip", [onode.input[0]], [onode.output[0]], onode, min=lo, max=hi)


@onnx_importer("Identity", revisions=NEW_ELEMENT_TYPES_23_TO_25)
def import_identity(ctx, onode, attrs):
    ctx.alias(onode.input[0], onode.output[0], onode)


@onnx_importer("Dropout", revisions={22: {}})  # 22: bfloat16 and float8 admitted
def import_dropout(ctx, onode, attrs):
    if len(onode.output) > 1 and onode.output[1]:
        raise unsupported(onode, "the mask output of Dropout is used")
    # Opset 12+ inputs (data, ratio, training_mode): in training mode Dropout zeroes random
    # elements and scales the rest; only inference mode (or a ratio of 0) is the identity.
    if len(onode.input) > 2 and onode.input[2]:
        training = ctx.require_const(onode, onode.input[2], "training_mode")
        ratio_name = onode.input[1] if len(onode.input) > 1 else ""
        ratio = ctx.require_const(onode, ratio_name, "ratio") if ratio_name else np.float32(0.5)
        if bool(np.any(training)) and float(np.max(ratio)) != 0.0:
            raise unsupported(onode, "Dropout in training mode (random); export the model in inference mode")
    ctx.alias(onode.input[0], onode.output[0], onode)


# Cast 24 adds round_mode, which applies only to conversions to float8e8m0 (a type tinycc refuses
# anyway); 23, 25 and 28 admit new element types (float4, int2, float6).
@onnx_importer("Cast", revisions={23: {}, 24: {"round_mode": None}, 25: {}, 28: {}})
def import_cast(ctx, onode, attrs):
    src = ctx.graph.tensors[onode.input[0]].dtype
    import onnx

    to = onnx.helper.tensor_dtype_to_np_dtype(attrs["to"])
    if src == "float32" and to == np.float32:
        ctx.alias(onode.input[0], onode.output[0], onode)
        return
    raise unsupported(onode, f"Cast from {src} to {np.dtype(to)} on a run-time tensor")


# ---- integer reference (runtime_c/tc_lut_s8.c) ---------------------------------------------------
@dataclass(frozen=True)
class LutParams:
    """tc_lut_params: out[i] = table[in[i] + 128]."""

    C_STRUCT: ClassVar[str] = "tc_lut_params"
    size: int

    def validate(self) -> None:
        require(self.size >= 0, f"size must be >= 0, got {self.size}")


def make_lut(fn: Callable[[np.ndarray], np.ndarray], in_scale: float, in_zp: int,
             out_scale: float, out_zp: int, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """The 256-entry table of tc_lut_s8 (index = input + 128), built in float64.

    Each int8 input is dequantized, mapped through `fn`, quantized (round half away from
    zero) and clamped to [act_min, act_max]. Use functools.partial for parameterised
    activations, e.g. make_lut(partial(leaky_relu, alpha=0.1), ...).
    """
    check_act_range(act_min, act_max)
    require(is_int8(in_zp) and is_int8(out_zp), "zero points must be in [-128, 127]")
    x = checked_scale(in_scale, "in_scale") * (np.arange(-128, 128, dtype=np.float64) - in_zp)
    y = np.asarray(fn(x), dtype=np.float64)
    require(y.shape == (256,) and not np.isnan(y).any(), "fn must map 256 inputs to numbers")
    q = round_half_away(y / checked_scale(out_scale, "out_scale")) + out_zp
    return np.clip(q, act_min, act_max).astype(np.int8)


def tflm_abs_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """The 256-entry table of TFLM's int8 ABS (elementwise.cc AbsEvalQuantized):
    clamp(out_zp + |x - in_zp|) when the float32 scales are equal, else
    clamp(out_zp + MBQM(|x - in_zp|, QuantizeMultiplier(s_in / s_out))); the scales' ratio in double."""
    require(is_int8(in_zp) and is_int8(out_zp), "zero points must be in [-128, 127]")
    v = np.abs(np.arange(-128, 128, dtype=np.int64) - in_zp)
    if np.float32(in_scale) != np.float32(out_scale):
        mult, shift = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
        v = mbqm(v, mult, shift)
    return np.clip(v + out_zp, -128, 127).astype(np.int8)


def lut_s8(p: LutParams, table, x) -> np.ndarray:
    """Returns an array shaped like x."""
    p.validate()
    t = np.asarray(table)
    require(t.dtype == np.int8 and t.shape == (256,), "table must be 256 int8 values")
    flat = as_int8(x, p.size, "input")
    return t[flat.astype(np.int64) + 128].reshape(np.shape(x))


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_lut_s8", header="tc_eltwise.h", params=LutParams, golden=lut_s8,
        args=("const", "in", "out"), sources=("tc_lut_s8.c",))
