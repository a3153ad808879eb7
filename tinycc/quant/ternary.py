"""PROM ternary pointwise weights: which layers, the threshold rules, packed flash formats, energy.

PROM (Meiner et al., arXiv 2505.03254; ../shared/docs/quantization.md §1) gives the pointwise
convolutions of a depthwise-separable CNN ternary weights {-1, 0, +1} with a scale and keeps
everything else at int8. Here:

- which layers: a Conv with a 1x1 kernel, group 1, stride 1 and no padding (`is_pointwise`);
  strided 1x1 shortcuts and Gemm stay int8 (PROM keeps the classifier at 8 bit).
- `--quant prom` (`ternarize_pointwise`): before calibration, every pointwise weight tensor is
  replaced by its ternary values alpha_o * t and marked as quantized per output channel
  (scale alpha_o, zero point 0), exactly what a PROM QAT export stores. So the activation
  ranges are calibrated on the network that will run, and a PTQ model and a pre-quantized
  ternary QDQ model take one path from there on (`is_ternary_node`).
- the integer semantics are those of TFLM's int8 per-channel convolution whose weights are in
  {-1, 0, 1}: requantization stays TFLite arithmetic, the golden is the int8 conv.
- flash: 2-bit (4 per byte) or base-3 (5 trits per byte) rows, one row per output channel
  (`pack_2bit`, `pack_base3`; the C kernel tc_pw_ternary_s8 reads both).
- the energy estimate of quantization.md §1.4 (Horowitz 45 nm per-operation energies).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, Node, QuantParams

TWN = "twn"  # Li & Liu 2016: delta = 0.7 mean|W|, alpha = mean |W| over the support (L2-optimal)
ABSMEAN = "absmean"  # BitNet b1.58: gamma = mean|W|, t = clip(round(W / gamma)), alpha = gamma
RULES = (TWN, ABSMEAN)
# Chosen by measured error (benchmarks/bench_prom.py: output SQNR against float over the zoo
# and the MLPerf models, PTQ without retraining).
DEFAULT_RULE = TWN

FORMAT_2BIT = 0  # tc_pw_ternary_params.format: 4 weights per byte
FORMAT_BASE3 = 1  # 5 weights per byte, v = sum 3^n (t_n + 1)
FORMAT_NAMES = {FORMAT_2BIT: "2-bit", FORMAT_BASE3: "base-3"}


# ---- which layers -----------------------------------------------------------------------------
def is_pointwise(g: Graph, node: Node) -> bool:
    """A 1x1, group-1, stride-1, unpadded Conv: what tc_pw_ternary_s8 computes (a matrix
    product over pixels)."""
    if node.op != "Conv":
        return False
    a = node.attrs
    return (tuple(a["kernel"]) == (1, 1) and a["group"] == 1 and tuple(a["strides"]) == (1, 1)
            and not any(a["pads"]))


def ternary_codes(g: Graph, node: Node) -> np.ndarray | None:
    """The node's stored integer weight codes [out_c, in_c] when they are quantized per output
    channel with zero point 0 and all lie in {-1, 0, 1}; None otherwise."""
    from .weights import recover_integers

    t = g.tensors[node.inputs[1]]
    qp = t.quant
    if qp is None or t.data is None or np.any(np.asarray(qp.zero_point) != 0):
        return None
    if qp.axis not in (None, 0):
        return None
    q = recover_integers(t.data, qp)
    if q.min(initial=0) < -1 or q.max(initial=0) > 1:
        return None
    return q.reshape(q.shape[0], -1)


def is_ternary_node(g: Graph, node: Node) -> bool:
    """A pointwise conv whose weights are stored ternary (PROM PTQ or a ternary QDQ export)."""
    return is_pointwise(g, node) and ternary_codes(g, node) is not None


# ---- threshold rules --------------------------------------------------------------------------
def ternarize(w: np.ndarray, rule: str = DEFAULT_RULE) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel (axis 0) ternary codes t in {-1,0,1} (int8, w's shape) and scales
    alpha (float32 [out_c]) minimising |w - alpha t| under the rule's support.

    A channel with no weight above the threshold (all zero) gets alpha 1: its codes are all 0,
    so the scale only has to be a valid positive number."""
    if rule not in RULES:
        raise ValueError(f"ternary rule {rule!r}: expected one of {', '.join(RULES)}")
    rows = w.astype(np.float64).reshape(w.shape[0], -1)
    mean_abs = np.abs(rows).mean(axis=1, keepdims=True)
    if rule == TWN:
        t = np.sign(rows) * (np.abs(rows) > 0.7 * mean_abs)
        support = np.maximum(np.abs(t).sum(axis=1), 1)
        alpha = (np.abs(rows) * np.abs(t)).sum(axis=1) / support  # L2-optimal for that support
    else:
        safe = np.where(mean_abs > 0, mean_abs, 1.0)
        t = np.clip(np.sign(rows) * np.floor(np.abs(rows) / safe + 0.5), -1, 1)
        alpha = mean_abs[:, 0]
    alpha = np.where(alpha > 0, alpha, 1.0).astype(np.float32)
    return t.astype(np.int8).reshape(w.shape), alpha


def ternarize_pointwise(g: Graph, rule: str = DEFAULT_RULE) -> tuple[Graph, list[str]]:
    """A copy of `g` whose pointwise convs carry ternary weights alpha*t, quantized per output
    channel (scale alpha, zero point 0) as a ternary QDQ export stores them, and the names of
    those nodes. Weight tensors already quantized (a pre-quantized model) are left alone.

    A weight tensor shared with a node that is not pointwise stays as it is (the other node
    would silently compute with ternary weights)."""
    q = g.copy()
    users: dict[str, list[Node]] = {}
    for node in q.nodes:
        for name in node.inputs:
            users.setdefault(name, []).append(node)
    done = []
    for node in q.nodes:
        wname = node.inputs[1] if len(node.inputs) > 1 else ""
        if not is_pointwise(q, node) or not q.tensors[wname].is_const:
            continue
        t = q.tensors[wname]
        if t.quant is not None or not all(is_pointwise(q, u) for u in users[wname]):
            continue
        codes, alpha = ternarize(t.data, rule)
        shape = (-1,) + (1,) * (t.data.ndim - 1)
        t.data = (codes.astype(np.float32) * alpha.reshape(shape)).astype(np.float32)
        t.quant = QuantParams(alpha, np.zeros(alpha.shape, np.int32), 0)
        done.append(node.onnx_name or node.name)
    return q, done


def ternary_bias_scale(alpha: np.ndarray, bias: np.ndarray, in_scale: float) -> np.ndarray:
    """alpha, raised where needed so that |bias_q| <= 2^28 (as the int8 scheme does): a tiny
    scale under a large bias would overflow the int32 accumulator. Only degenerate channels
    (a bias 2^28 times an activation step times alpha) are affected."""
    floor = np.abs(bias.astype(np.float64)) / (np.float64(np.float32(in_scale)) * 2.0**28)
    return np.maximum(alpha.astype(np.float64), floor).astype(np.float32)


# ---- packed flash formats ---------------------------------------------------------------------
def row_bytes(in_c: int, fmt: int) -> int:
    """Bytes of one output channel's weights (rows start on a byte)."""
    return (in_c + 3) // 4 if fmt == FORMAT_2BIT else (in_c + 4) // 5


def pack_2bit(t: np.ndarray) -> np.ndarray:
    """[out_c, in_c] codes -> uint8 [out_c * row_bytes]. Byte j of a row holds weights 4j..4j+3
    as 2-bit two's complement (0, 1, 3 = -1) in the order bits 0-1: w0, 2-3: w2, 4-5: w1,
    6-7: w3, so that its low nibble pairs with the even activations and its high nibble with
    the odd ones, as SXTB16 splits four int8 activations (tc_pw_ternary_s8_dsp.c). The padding
    of the last byte is 0."""
    out_c, in_c = t.shape
    n = row_bytes(in_c, FORMAT_2BIT) * 4
    padded = np.zeros((out_c, n), np.int64)
    padded[:, :in_c] = t
    c = (padded & 3).reshape(out_c, -1, 4)
    b = c[..., 0] | (c[..., 2] << 2) | (c[..., 1] << 4) | (c[..., 3] << 6)
    return b.astype(np.uint8).reshape(-1)


def unpack_2bit(w: np.ndarray, out_c: int, in_c: int) -> np.ndarray:
    """Inverse of pack_2bit: int8 [out_c, in_c] codes."""
    b = np.asarray(w, np.uint8).reshape(out_c, -1).astype(np.int64)
    fields = np.stack([b & 3, (b >> 4) & 3, (b >> 2) & 3, (b >> 6) & 3], axis=-1)  # w0 w1 w2 w3
    codes = ((fields ^ 2) - 2).reshape(out_c, -1)  # 0 -> 0, 1 -> 1, 3 -> -1 (2 is never stored)
    return codes[:, :in_c].astype(np.int8)


def pack_base3(t: np.ndarray) -> np.ndarray:
    """[out_c, in_c] codes -> uint8 [out_c * row_bytes]: byte j of a row is
    sum_n 3^n (w_{5j+n} + 1) in [0, 242], the first weight the least significant trit (the C
    decodes by repeated division by 3, a multiply-high on every compiler). Padding trits are 0
    (stored as 1)."""
    out_c, in_c = t.shape
    n = row_bytes(in_c, FORMAT_BASE3) * 5
    padded = np.zeros((out_c, n), np.int64)
    padded[:, :in_c] = t
    trits = (padded + 1).reshape(out_c, -1, 5)
    v = (trits * np.array([1, 3, 9, 27, 81])).sum(axis=-1)
    return v.astype(np.uint8).reshape(-1)


def unpack_base3(w: np.ndarray, out_c: int, in_c: int) -> np.ndarray:
    """Inverse of pack_base3: int8 [out_c, in_c] codes. A byte above 242 (never written) reads
    as five zero weights, as in the C (which bounds its table index)."""
    v = np.asarray(w, np.uint8).reshape(out_c, -1).astype(np.int64)
    v = np.where(v > 242, 121, v)
    trits = np.stack([(v // 3**n) % 3 for n in range(5)], axis=-1) - 1
    return trits.reshape(out_c, -1)[:, :in_c].astype(np.int8)


def pack(t: np.ndarray, fmt: int) -> np.ndarray:
    return pack_2bit(t) if fmt == FORMAT_2BIT else pack_base3(t)


def unpack(w: np.ndarray, fmt: int, out_c: int, in_c: int) -> np.ndarray:
    return unpack_2bit(w, out_c, in_c) if fmt == FORMAT_2BIT else unpack_base3(w, out_c, in_c)


def choose_format(in_c: int, out_c: int, formats: str = "auto") -> int:
    """The packed format of one layer, chosen by the kernel that runs it: 2-bit rows feed the
    ARMv7E-M fast path (nibble table -> SMLAD, tc_pw_ternary_s8_dsp.c), which is at least as
    fast as int8 on every layer it takes (benchmarks/bench_prom.py), so `auto` takes 2-bit
    where that path runs (in_c >= 4) and base-3 (20 % less flash, portable decoder on every
    core) where it does not. `2bit` / `base3` force one format for every layer."""
    if formats == "2bit":
        return FORMAT_2BIT
    if formats == "base3":
        return FORMAT_BASE3
    return FORMAT_2BIT if in_c >= 4 else FORMAT_BASE3


# ---- energy (quantization.md §1.4: Horowitz, ISSCC 2014, 45 nm; pJ per operation) --------------
@dataclass(frozen=True)
class OpEnergy:
    int8_add: float = 0.03
    int32_add: float = 0.1
    int8_mult: float = 0.2
    fp16_add: float = 0.4
    fp16_mult: float = 1.1


def energy_estimate(layers: list[tuple[str, int]], e: OpEnergy = OpEnergy()) -> dict:
    """Arithmetic energy of the MAC layers in pJ, `layers` = [(kind, macs)] with kind
    "ternary" or "int8". PROM's footing (quantization.md §1.4, which reproduces its 23.9x as
    25.2x on MobileNetV2): a ternary MAC is one int8 add, an int8 MAC an int8 multiply and an
    int32 add, float16 a multiply and an add; memory traffic and the layers without MACs are
    not counted. `prom_int32_acc_pj` charges the ternary adds as what the C kernel executes
    (int32 accumulators)."""
    ternary = sum(m for k, m in layers if k == "ternary")
    total = sum(m for _, m in layers)
    int8_mac = e.int8_mult + e.int32_add
    out = {
        "ops": {"int8_mult": total - ternary, "int32_add": total - ternary, "int8_add": ternary},
        "float16_pj": total * (e.fp16_mult + e.fp16_add),
        "int8_pj": total * int8_mac,
        "prom_pj": (total - ternary) * int8_mac + ternary * e.int8_add,
        "prom_int32_acc_pj": (total - ternary) * int8_mac + ternary * e.int32_add,
    }
    prom = out["prom_pj"]
    out["float16_over_prom"] = round(out["float16_pj"] / prom, 2) if prom else None
    out["int8_over_prom"] = round(out["int8_pj"] / prom, 2) if prom else None
    out["float16_over_int8"] = round(out["float16_pj"] / out["int8_pj"], 2) if total else None
    for k in ("float16_pj", "int8_pj", "prom_pj", "prom_int32_acc_pj"):
        out[k] = round(out[k], 1)
    out["table_pj"] = {"int8_add": e.int8_add, "int32_add": e.int32_add, "int8_mult": e.int8_mult,
                       "fp16_add": e.fp16_add, "fp16_mult": e.fp16_mult}
    return out
