"""LayerNormalization, InstanceNormalization and GroupNormalization.

IR ops: `LayerNorm` (logical layout; normalises over the axes from `axis` to the last, scale and
bias shaped like those axes) and `GroupNorm` (image layout attribute NCHW / NHWC; `groups`
groups of channels, each normalised over its channels and every spatial position, then a
per-channel scale and bias; InstanceNormalization is GroupNorm with one channel per group).
The decomposed LayerNorm that exporters write (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt,
Div, Mul, Add) becomes `LayerNorm` in passes/patterns.py.

int8 scheme (TFLite Micro has no LayerNorm; this is tinycc's own, tc_norm_s8 and norm_s8 are
its C and numpy definitions, bit for bit). Every normalised group is `count` int8 values x_i
(input zero point zp); the kernel sees the input as [outer][r1][mid][r2] and normalises over
r1 and r2 for each (outer, mid); the per-channel parameters are indexed by mid * r2 + j (j the
r2 index): LayerNorm is [rows][1][1][normalised size], GroupNorm on NHWC is
[N][H*W][groups][channels per group].

  1. int32/int64 statistics: d_i = x_i - zp, S = sum d_i (int32), Q = sum d_i^2 (int64),
     V = count * Q - S^2 + eps_term  (= count^2 * (variance + eps) in input units^2), where
     eps_term = round(count^2 * eps / s_in^2), fixed offline (capped at 2^60).
  2. Integer square root with a normalising shift: k = (62 - bitlength(V)) // 2 so that
     V * 4^k is in [2^59, 2^62); sd = isqrt(V * 4^k) (floor, in [2^29, 2^31)) = sqrt(V) * 2^k.
     One 64-bit division per group: recip = floor(2^60 / sd), in (2^29, 2^31).
  3. Each element: dev_i = count * d_i - S (int32) and z_i = dev_i / sqrt(V) in Q20: with
     e = 60 - 20 - k (in [10, 40]), z_i = (dev_i * recip + 2^(e-1)) >> e (one 32 x 32 -> 64-bit
     product, rounded half up; |z_i| < 2^31 since |dev_i| / sqrt(V) <= sqrt(count - 1)).
     V = 0 (a constant group without eps) gives recip = 0 and z_i = 0.
  4. Output: y_i = clamp(out_zp + bias_q[c] + MBQM(z_i, mult[c], shift[c]), -128, 127) with
     (mult, shift) = QuantizeMultiplier(|gamma_c| / (s_out * 2^20)), mult negated where
     gamma_c < 0, and bias_q[c] = round(beta_c / s_out) (TFLM's MBQM, double rounding).
count is at most 2^20, so every intermediate fits its type (S: 2^28, count * Q: 2^56).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..golden.arith import mbqm, quantize_multiplier, round_half_away
from ..golden.checks import as_int8, checked_scale, is_int8, require
from ..kernels import declare
from ..program import Arg
from .common import bad_input, norm_axis, unsupported, unsupported_int8
from .registry import LayoutClass, OpDef, onnx_importer, register, same_as_input


# ---- float references ----------------------------------------------------------------------------
def layer_norm(x, scale, bias, axis: int, epsilon: float):
    """ONNX LayerNormalization (stash_type float): normalise over axes axis..rank-1."""
    x = np.asarray(x, dtype=np.float64)
    axes = tuple(range(axis, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + epsilon) * np.asarray(scale, np.float64) + np.asarray(bias, np.float64)


def group_norm(x, scale, bias, groups: int, epsilon: float, channel_axis: int = 1):
    """GroupNormalization with a per-channel scale and bias (opset 21; InstanceNormalization when
    groups equals the number of channels): statistics over each group's channels and every
    spatial position, per batch element."""
    x = np.asarray(x, dtype=np.float64)
    xc = np.moveaxis(x, channel_axis, 1)
    n, c = xc.shape[:2]
    grouped = xc.reshape(n, groups, -1)
    mean = grouped.mean(axis=2, keepdims=True)
    var = ((grouped - mean) ** 2).mean(axis=2, keepdims=True)
    normed = ((grouped - mean) / np.sqrt(var + epsilon)).reshape(xc.shape)
    shape = (1, c) + (1,) * (xc.ndim - 2)
    y = normed * np.asarray(scale, np.float64).reshape(shape) + np.asarray(bias, np.float64).reshape(shape)
    return np.moveaxis(y, 1, channel_axis)


# ---- IR ops -------------------------------------------------------------------------------------
class _Norm(OpDef):
    def infer(self, g, node):
        return same_as_input(g, node)

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        scale, bias = (lc.tensor(t) for t in node.inputs[1:3])
        if not (scale.is_const and bias.is_const):
            raise unsupported_int8(node, "a scale or bias computed at run time")
        dims = self.group_dims(lc.tensor(x).shape, node)
        gamma = self.per_channel(scale.data, lc.tensor(x).shape, node)
        beta = self.per_channel(bias.data, lc.tensor(x).shape, node)
        s_in, zp_in = lc.qp(x)
        s_out, zp_out = lc.qp(y)
        try:
            p, mult, shift, bias_q = make_norm_params(dims, s_in, zp_in, s_out, zp_out, gamma, beta,
                                                      node.attrs["epsilon"])
        except ValueError as exc:
            raise unsupported_int8(node, str(exc)) from None
        args = [Arg("in", x), Arg("const", lc.blob(mult, node, "mult")), Arg("const", lc.blob(shift, node, "shift")),
                Arg("const", lc.blob(bias_q, node, "bias")), Arg("out", y)]
        lc.add_step(node, "tc_norm_s8", p, args, lambda xv, m, s, b: norm_s8(p, xv, m, s, b), inplace_inputs=(0,),
                    note="integer statistics + isqrt")


@register
class LayerNorm(_Norm):
    name = "LayerNorm"
    layout_class = LayoutClass.LOGICAL

    def run_float(self, node, xs):
        y = layer_norm(xs[0], xs[1], xs[2], node.attrs["axis"], node.attrs["epsilon"])
        return [y.astype(np.float32)]

    @staticmethod
    def group_dims(shape, node):
        a = node.attrs["axis"]
        return (int(np.prod(shape[:a], dtype=np.int64)), 1, 1, int(np.prod(shape[a:], dtype=np.int64)))

    @staticmethod
    def per_channel(values, shape, node):
        return np.broadcast_to(np.asarray(values, np.float64), tuple(shape[node.attrs["axis"]:])).reshape(-1)


@register
class GroupNorm(_Norm):
    name = "GroupNorm"
    layout_class = LayoutClass.SPATIAL

    def _channel_axis(self, node):
        return 3 if node.attrs["layout"] == "NHWC" else 1

    def run_float(self, node, xs):
        y = group_norm(xs[0], xs[1], xs[2], node.attrs["groups"], node.attrs["epsilon"], self._channel_axis(node))
        return [y.astype(np.float32)]

    def to_nhwc(self, g, node):
        node.attrs["layout"] = "NHWC"

    def group_dims(self, shape, node):
        if node.attrs["layout"] != "NHWC":
            raise unsupported_int8(node, "GroupNorm in the NCHW layout")
        n, h, w, c = shape
        groups = node.attrs["groups"]
        return (n, h * w, groups, c // groups)

    @staticmethod
    def per_channel(values, shape, node):
        return np.asarray(values, np.float64).reshape(-1)


def _float_input(ctx, onode):
    dtype = ctx.graph.tensors[onode.input[0]].dtype
    if dtype != "float32":
        raise unsupported(onode, f"{onode.op_type} on a {dtype} tensor (float tensors expected)")


def _const_or_default(ctx, onode, index: int, what: str, default: float, size: int) -> str:
    if len(onode.input) > index and onode.input[index]:
        ctx.require_const(onode, onode.input[index], what)
        return onode.input[index]
    return ctx.add_const(np.full(size, default, np.float32), f"{onode.name or onode.op_type}_{what}")


@onnx_importer("LayerNormalization")
def import_layer_norm(ctx, onode, attrs):
    _float_input(ctx, onode)
    if any(onode.output[1:]):
        raise unsupported(onode, "the Mean / InvStdDev outputs (training) are used")
    shape = ctx.shape(onode.input[0])
    axis = norm_axis(int(attrs.get("axis", -1)), len(shape), onode)
    norm_shape = tuple(shape[axis:])
    scale = _const_or_default(ctx, onode, 1, "scale", 1.0, 1)
    bias = _const_or_default(ctx, onode, 2, "bias", 0.0, 1)
    for name, what in ((scale, "scale"), (bias, "bias")):
        try:
            np.broadcast_to(ctx.const(name), norm_shape)
        except ValueError:
            raise bad_input(onode, f"{what} of shape {list(ctx.const(name).shape)} does not broadcast to the "
                                   f"normalised shape {list(norm_shape)}") from None
    ctx.add("LayerNorm", [onode.input[0], scale, bias], [onode.output[0]], onode, axis=axis,
            epsilon=float(attrs.get("epsilon", 1e-5)))


def _add_group_norm(ctx, onode, scale: str, bias: str, groups: int, epsilon: float) -> None:
    """GroupNorm on 4-D NCHW; other ranks (N, C, L...) are viewed as 4-D around it."""
    x, y = onode.input[0], onode.output[0]
    shape = ctx.shape(x)
    if len(shape) < 3:
        raise bad_input(onode, f"input of rank {len(shape)} (N, C and at least one spatial axis expected)")
    c = shape[1]
    for name, what in ((scale, "scale"), (bias, "bias")):
        if ctx.const(name).size != c:
            raise bad_input(onode, f"{what} has {ctx.const(name).size} values for {c} channels")
    if len(shape) == 4:
        ctx.add("GroupNorm", [x, scale, bias], [y], onode, groups=groups, epsilon=epsilon, layout="NCHW")
        return
    as4d = (shape[0], c, int(np.prod(shape[2:], dtype=np.int64)), 1)
    x4 = ctx.add("Reshape", [x], None, onode, "as4d", shape=as4d)[0]
    y4 = ctx.add("GroupNorm", [x4, scale, bias], None, onode, groups=groups, epsilon=epsilon, layout="NCHW")[0]
    ctx.add("Reshape", [y4], [y], onode, "back", shape=tuple(shape))


@onnx_importer("InstanceNormalization", revisions={22: {}})  # 22: bfloat16 admitted
def import_instance_norm(ctx, onode, attrs):
    _float_input(ctx, onode)
    scale = ctx.require_const(onode, onode.input[1], "scale")
    ctx.require_const(onode, onode.input[2], "B")
    c = ctx.shape(onode.input[0])[1] if len(ctx.shape(onode.input[0])) > 1 else 0
    if scale.size != c:
        raise bad_input(onode, f"scale has {scale.size} values for {c} channels")
    _add_group_norm(ctx, onode, onode.input[1], onode.input[2], c, float(attrs.get("epsilon", 1e-5)))


@onnx_importer("GroupNormalization")
def import_group_norm(ctx, onode, attrs):
    _float_input(ctx, onode)
    if int(attrs.get("stash_type", 1)) != 1:
        raise unsupported(onode, f"stash_type={attrs['stash_type']} (statistics in float32 only)")
    shape = ctx.shape(onode.input[0])
    groups = int(attrs["num_groups"]) if "num_groups" in attrs else 0
    c = shape[1] if len(shape) > 1 else 0
    if groups < 1 or c % groups:
        raise bad_input(onode, f"num_groups={groups} does not divide the {c} channels")
    # opset 18's per-group scale and bias were deprecated by opset 21 (per channel); the ONNX
    # checker refuses models that use opset 18 GroupNormalization
    ctx.require_const(onode, onode.input[1], "scale")
    ctx.require_const(onode, onode.input[2], "bias")
    s_name, b_name = onode.input[1], onode.input[2]
    _add_group_norm(ctx, onode, s_name, b_name, groups, float(attrs.get("epsilon", 1e-5)))


# ---- integer reference (runtime_c/tc_norm_s8.c) -------------------------------------------------
Z_FRAC_BITS = 20       # TC_NORM_Z_FRAC_BITS: z_i in Q20
MAX_COUNT = 1 << 20    # TC_NORM_MAX_COUNT: elements per normalised group
EPS_CAP = 1 << 60      # eps_term is capped here (V stays below 2^61)
MAX_BIAS = 1 << 24     # bias_q in [-2^24, 2^24]


@dataclass(frozen=True)
class NormParams:
    """tc_norm_params: [outer][r1][mid][r2] int8 input, normalised over r1 and r2 per (outer, mid);
    eps_term = eps_hi * 2^31 + eps_lo."""

    C_STRUCT: ClassVar[str] = "tc_norm_params"
    outer: int
    r1: int
    mid: int
    r2: int
    in_zp: int
    out_zp: int
    eps_hi: int
    eps_lo: int

    @property
    def count(self) -> int:
        return self.r1 * self.r2

    @property
    def channels(self) -> int:
        return self.mid * self.r2

    @property
    def eps_term(self) -> int:
        return (self.eps_hi << 31) + self.eps_lo

    def validate(self) -> None:
        require(min(self.outer, self.r1, self.mid, self.r2) >= 1, "dims must be >= 1")
        require(self.count <= MAX_COUNT, f"at most {MAX_COUNT} elements per normalised group, got {self.count}")
        require(self.outer * self.r1 * self.channels < (1 << 31), "the input must have fewer than 2^31 elements")
        require(is_int8(self.in_zp) and is_int8(self.out_zp), "zero points must be in [-128, 127]")
        require(0 <= self.eps_lo < (1 << 31) and 0 <= self.eps_hi and self.eps_term <= EPS_CAP,
                f"eps_term must be in [0, 2^60] with eps_lo < 2^31, got ({self.eps_hi}, {self.eps_lo})")


def make_norm_params(dims, s_in: float, zp_in: int, s_out: float, zp_out: int, gamma, beta, epsilon: float):
    """(NormParams, mult, shift, bias_q): the offline float work of the scheme (module docstring)."""
    outer, r1, mid, r2 = (int(d) for d in dims)
    s_in, s_out = checked_scale(s_in, "s_in"), checked_scale(s_out, "s_out")
    require(epsilon >= 0 and math.isfinite(epsilon), f"epsilon must be finite and >= 0, got {epsilon}")
    count = r1 * r2
    eps_term = min(EPS_CAP, int(round_half_away(float(count) ** 2 * epsilon / (s_in * s_in))))
    p = NormParams(outer, r1, mid, r2, int(zp_in), int(zp_out), eps_term >> 31, eps_term & ((1 << 31) - 1))
    p.validate()
    gamma = np.asarray(gamma, np.float64).reshape(-1)
    beta = np.asarray(beta, np.float64).reshape(-1)
    require(gamma.size == p.channels and beta.size == p.channels,
            f"scale and bias need {p.channels} values, got {gamma.size} and {beta.size}")
    require(bool(np.all(np.isfinite(gamma)) and np.all(np.isfinite(beta))), "scale and bias must be finite")
    mult = np.zeros(p.channels, np.int32)
    shift = np.zeros(p.channels, np.int32)
    for c, g in enumerate(gamma):
        m, s = quantize_multiplier(abs(float(g)) / (s_out * (1 << Z_FRAC_BITS)))
        mult[c], shift[c] = (-m if g < 0 else m), s
    bias_q = np.clip(round_half_away(beta / s_out), -MAX_BIAS, MAX_BIAS).astype(np.int32)
    return p, mult, shift, bias_q


def group_scale(v: int) -> tuple[int, int]:
    """(recip, e) of one group's V: k = (62 - bitlength(V)) // 2, sd = isqrt(V * 4^k),
    recip = 2^60 // sd, e = 60 - 20 - k; (0, 1) when V is 0."""
    if v == 0:
        return 0, 1
    k = (62 - v.bit_length()) // 2
    sd = math.isqrt(v << (2 * k))
    return (1 << 60) // sd, 60 - Z_FRAC_BITS - k


def norm_s8(p: NormParams, x, mult, shift, bias_q) -> np.ndarray:
    """Mirror of tc_norm_s8: int8 output shaped like x."""
    p.validate()
    n = p.outer * p.r1 * p.mid * p.r2
    flat = as_int8(x, n, "input")
    d = flat.reshape(p.outer, p.r1, p.mid, p.r2).astype(np.int64) - p.in_zp
    s = d.sum(axis=(1, 3), keepdims=True)
    q = (d * d).sum(axis=(1, 3), keepdims=True)
    v = p.count * q - s * s + p.eps_term
    scales = [group_scale(int(val)) for val in v.reshape(-1)]
    recip = np.array([r for r, _ in scales], np.int64).reshape(v.shape)
    e = np.array([e for _, e in scales], np.int64).reshape(v.shape)
    dev = p.count * d - s
    z = (dev * recip + (np.int64(1) << (e - 1))) >> e  # numpy's >> is arithmetic, as the C
    mult = np.asarray(mult, np.int64).reshape(1, 1, p.mid, p.r2)
    shift = np.asarray(shift, np.int64).reshape(1, 1, p.mid, p.r2)
    bias_q = np.asarray(bias_q, np.int64).reshape(1, 1, p.mid, p.r2)
    y = mbqm(z, mult, shift) + bias_q + p.out_zp
    return np.clip(y, -128, 127).astype(np.int8).reshape(np.shape(x))


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_norm_s8", header="tc_norm.h", params=NormParams, golden=norm_s8,
        args=("in", "const", "const", "const", "out"), sources=("tc_norm_s8.c",))
