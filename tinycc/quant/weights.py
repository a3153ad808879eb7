"""How a layer's weights are encoded in flash: the weight-encoding seam.

The quantizer records a weight scheme on every node with weights (an op whose OpDef.bias_axis is
not None: input 1 the weights, output channels first, input 2 the bias) as
node.attrs["weight_scheme"]; lowering (LowerCtx.weights), bias correction and the report read
that one description through encode_weights. The schemes:

  int8-per-channel  symmetric int8 per output channel (zero point 0, scale max|w|/127), int32
                    bias at in_scale * w_scale. Pre-quantized (QDQ) weights keep their stored
                    integers and scales in the same format.
  ternary           PROM pointwise convs (quant/ternary.py): codes in {-1, 0, 1} per output
                    channel with scale alpha, recorded where a pointwise conv's weights are
                    stored ternary (`--quant prom` ternarizes them before calibration; a
                    ternary QDQ export arrives so); float biases are quantized at
                    in_scale * alpha. The codes are int8 codes, so the golden is the int8 conv.

  codebook          the int8-per-channel codes clustered into an int8 palette per group of output
                    channels with 2..6-bit indices (quant/codebook.py); EncodedWeights.q holds the
                    decoded codes (what the kernels compute with), .codebook the flash arrays.

New formats add a WeightScheme and a branch in encode_weights; their kernels then
receive the EncodedWeights arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import Unsupported
from ..golden.arith import MAX_MULTIPLIER, quantize_multiplier_array, round_half_away
from ..ir import Graph, IRError, Node, QuantParams
from .codebook import CODEBOOK, CodebookWeights, bias_shift, cluster_weights, codebook_importance, preclustered_layout
from .params import quantize_bias, quantize_weights_per_channel

INT8_PER_CHANNEL = "int8-per-channel"
TERNARY = "ternary"


@dataclass(frozen=True)
class WeightScheme:
    name: str
    bits: int
    description: str


WEIGHT_SCHEMES = {
    INT8_PER_CHANNEL: WeightScheme(INT8_PER_CHANNEL, 8, "symmetric int8 per output channel, int32 bias"),
    TERNARY: WeightScheme(TERNARY, 2, "ternary {-1, 0, 1} per output channel scale, int32 bias (PROM)"),
    CODEBOOK: WeightScheme(CODEBOOK, 0, "int8 palette per group of output channels, 2..6-bit indices "
                           "(node.attrs['codebook_bits']), per-channel scale, int32 bias"),
}


@dataclass(frozen=True)
class EncodedWeights:
    scheme: WeightScheme
    q: np.ndarray  # int8 codes, output channels on axis 0
    qp: QuantParams  # per-channel scale (float32), zero points 0
    bias: np.ndarray  # int32, one per output channel
    param_count: int  # learned values read: weights + bias (for the report)
    codebook: CodebookWeights | None = None  # scheme codebook: palette and packed indices (q: decoded)


def record_weight_schemes(g: Graph) -> None:
    """The quantizer's choice for every node with weights: ternary for pointwise convs whose
    weights are stored ternary (quant/ternary.py), int8 per channel otherwise."""
    from ..ops.registry import OPS
    from .ternary import is_ternary_node

    for node in g.nodes:
        if OPS[node.op].bias_axis(g, node) is not None:
            node.attrs["weight_scheme"] = TERNARY if is_ternary_node(g, node) else INT8_PER_CHANNEL


def weight_scheme(node: Node) -> WeightScheme:
    name = node.attrs.get("weight_scheme")
    if name not in WEIGHT_SCHEMES:
        raise IRError(f"{node.op} node {node.name!r} has weight scheme {name!r}: the quantizer "
                      "(quant.ptq.assign_qparams) records one of " + ", ".join(WEIGHT_SCHEMES))
    return WEIGHT_SCHEMES[name]


def encode_weights(g: Graph, node: Node, in_scale: float) -> EncodedWeights:
    """int8 weights (per output channel, axis 0), their params, and the int32 bias of `node`.

    Pre-quantized tensors (QDQ models) are used as they are. Otherwise weights are symmetric
    int8 with scale max|w|/127, raised where needed so that |bias_q| <= 2^28: a tiny weight
    scale under a large bias (dead channels) would otherwise overflow the int32 accumulator.
    """
    scheme = weight_scheme(node)
    if scheme.name == CODEBOOK:
        return _codebook(g, node, encode_int8(g, node, in_scale, scheme), in_scale, node.attrs["codebook_bits"])
    return encode_int8(g, node, in_scale, scheme)


def _codebook(g: Graph, node: Node, enc: EncodedWeights, in_scale: float, bits: int) -> EncodedWeights:
    """The int8 encoding clustered (quant/codebook.py). Float weights that already take <= 2^bits
    values per palette group (pre-clustered) first get one scale per group (codebook.preclustered_layout),
    so that their int8 codes keep that property and nothing is re-clustered."""
    t = g.tensors[node.inputs[1]]
    qp = enc.qp
    palette_oc = None
    if t.quant is None:
        layout = preclustered_layout(t.data, qp.scale, bits)
        if layout is not None:
            group_scale, palette_oc = layout
            q = np.clip(round_half_away(t.data.astype(np.float64) / group_scale.astype(np.float64)
                                        .reshape((-1,) + (1,) * (t.data.ndim - 1))), -127, 127).astype(np.int8)
            bname = node.inputs[2] if len(node.inputs) > 2 else ""
            bf = g.tensors[bname].data.astype(np.float64).reshape(-1) if bname else np.zeros(len(q))
            qp = QuantParams(group_scale, np.zeros(len(q), np.int32), 0)
            enc = EncodedWeights(enc.scheme, q, qp, quantize_bias(bf, in_scale, group_scale), enc.param_count)
    moments = node.attrs.get("codebook_input")  # calibration statistics (quant/codebook.py input_moments)
    importance = codebook_importance(moments) if moments is not None else None
    covariance = moments.covariance if moments is not None else None
    cb = cluster_weights(enc.q, qp.scale, bits, palette_oc, importance=importance,
                         fully_connected=node.op == "Dense", covariance=covariance)
    decoded = cb.decode().reshape(enc.q.shape)
    bias = enc.bias
    if moments is not None:  # the clustering's mean output shift, folded into the bias
        bias = np.clip(bias.astype(np.int64) + bias_shift(enc.q, decoded, moments.mean, in_scale),
                       -(1 << 31), (1 << 31) - 1).astype(np.int32)
    return EncodedWeights(enc.scheme, decoded, qp, bias, enc.param_count, cb)


def encode_int8(g: Graph, node: Node, in_scale: float, scheme: WeightScheme) -> EncodedWeights:
    """int8-per-channel codes (also the first step of the codebook scheme)."""
    wname = node.inputs[1]
    bname = node.inputs[2] if len(node.inputs) > 2 else ""
    t = g.tensors[wname]
    channels = t.shape[0]
    b = g.tensors[bname] if bname else None
    count = int(t.data.size) + (int(b.data.size) if b is not None else 0)
    if scheme.name == TERNARY and (b is None or b.quant is None):  # PROM PTQ: a float bias
        from .ternary import ternary_bias_scale, ternary_codes

        bf = b.data.astype(np.float64).reshape(channels) if b is not None else np.zeros(channels)
        alpha = ternary_bias_scale(np.broadcast_to(t.quant.scale, (channels,)), bf, in_scale)
        q = ternary_codes(g, node).reshape(t.shape).astype(np.int8)
        qp = QuantParams(alpha, np.zeros(channels, np.int32), 0)
        return EncodedWeights(scheme, q, qp, quantize_bias(bf, in_scale, alpha), count)
    if t.quant is not None:  # pre-quantized: the exact integers, -128 included (TFLM uses them as stored)
        q = np.clip(recover_integers(t.data, t.quant), -128, 127).astype(np.int8)
        if b is None:
            bias = np.zeros(channels, np.int32)
        elif b.quant is None:
            raise Unsupported(f"bias {bname!r} of pre-quantized weights {wname!r} is not quantized")
        else:
            bias = recover_integers(b.data, b.quant).astype(np.int32).reshape(channels)
        scale = np.broadcast_to(t.quant.scale, (channels,)).astype(np.float32)
        return EncodedWeights(scheme, q, QuantParams(scale, np.zeros(channels, np.int32), 0), bias, count)
    bf = b.data.astype(np.float64).reshape(channels) if b is not None else np.zeros(channels)
    bias_floor = np.abs(bf) / (np.float64(np.float32(in_scale)) * 2.0**28)
    q, qp = quantize_weights_per_channel(t.data, 0, bias_floor)
    return EncodedWeights(scheme, q, qp, quantize_bias(bf, in_scale, qp.scale), count)


def recover_integers(real: np.ndarray, qp: QuantParams) -> np.ndarray:
    """q = real / scale + zp for constants stored dequantized (exact: they were q * scale)."""
    shape = [1] * real.ndim
    if qp.axis is not None:
        shape[qp.axis] = -1
    scale = qp.scale.astype(np.float64).reshape(shape if qp.axis is not None else ())
    zp = qp.zero_point.astype(np.float64).reshape(shape if qp.axis is not None else ())
    return round_half_away(real.astype(np.float64) / scale + zp).astype(np.int64)


def requant_arrays(in_scale: float, w_scale: np.ndarray, out_scale: float, channels: int):
    """Per-channel (mult, shift) from float32 scales, computed in double like TFLM.

    A zero multiplier (a channel whose weights are all zero) gets shift -2 instead of TFLM's 0:
    with mult 0 every shift gives the output zero point, and -2 keeps the layer on the Cortex-M
    assembly path of tc_conv2d_s8, which takes shifts in [-31, -2] only."""
    real = np.float64(np.float32(in_scale)) * np.broadcast_to(w_scale, (channels,)).astype(np.float32).astype(np.float64) \
        / np.float64(np.float32(out_scale))
    # A multiplier of 2^30 or more saturates int8 for every non-zero accumulator (and 0 stays the
    # zero point), so the largest one gives the exact result (TFLite's single-rounding rule).
    mult, shift = quantize_multiplier_array(np.minimum(real, MAX_MULTIPLIER))
    shift[mult == 0] = -2
    return mult, shift
