"""Recurrent layers: ONNX LSTM and GRU with a static sequence length.

IR: one `LSTM` / `GRU` node per ONNX node computes the output sequence Y, physical shape
[T, D, B, H] (ONNX layout 0; the importer transposes layout-1 models around it). Y_h is sliced
from Y (the last step of each direction), so only Y lives in the arena; an `LSTM` node with
attribute output="cell" computes Y_c (float only; dead-code removal drops it when unused).

int8 (one kernel call per direction, writing its rows of Y; batch rows one after the other): a
call runs the whole sequence, the state lives in the step's scratch (the memory planner places
it for that step only). LSTM follows TFLite
Micro's UNIDIRECTIONAL_SEQUENCE_LSTM integer path (micro/kernels/lstm_eval.h, int8 activations,
int16 cell): each gate is FC(x) + FC(h) requantized to int16 Q3.12 and added with saturation,
sigmoid / tanh are TFLM's int16 Logistic / Tanh (the 256-entry sigmoid table with
interpolation), the cell state is int16 with a power-of-two scale and the hidden state is the
int8 output. Two documented differences: weights are quantized per gate row (TFLM: per tensor),
and the cell scale is not calibrated but chosen so that saturation cannot happen (|c_t| <= t
for a zero initial state, since |i * g| < 1 and 0 < f < 1).

GRU has no TFLM kernel; tinycc's scheme uses the same pieces (gate pre-activations Q3.12,
sigmoid/tanh Q0.15, TFLM's MulElementwise), and keeps the hidden state in int16 Q0.15 between
steps (a GRU state is a convex combination of tanh outputs, |h| < 1), so that only the
recurrent matrix product sees the int8 (output-quantized) state:
    z, r = sigmoid(Q12(W x + b) +sat Q12(R h8 + rb))
    n    = tanh(Q12(Wn x + bn) +sat r * Q12(Rn h8 + rbn))          linear_before_reset = 1
    n    = tanh(Q12(Wn x + bn) +sat Q12(Rn (r * h8)))               linear_before_reset = 0
    h16  = ((32768 - z) * n + z * h16 + 2^14) >> 15  (rounding half away from zero)
    h8   = requantize(h16, 2^-15 -> output scale)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import BadInput
from ..golden.arith import INT32_MAX, INT32_MIN, mbqm, quantize_multiplier
from ..golden.checks import as_int8, as_shape, is_int8, require
from ..ir import IRError
from ..kernels import declare
from ..program import Arg
from ..quant.params import quantize_bias, quantize_weights_per_channel
from .common import unsupported, unsupported_int8
from .registry import OPS, OpDef, onnx_importer, register

# ---- float reference (ONNX LSTM / GRU, float64) ----------------------------------------------------
# Activations tinycc implements for the `activations` attribute (those without alpha/beta).
ACTIVATIONS = {
    "Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "Tanh": np.tanh,
    "Relu": lambda x: np.maximum(x, 0.0),
}
LSTM_DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh", "Tanh")
GRU_DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh")
GATES = {"LSTM": 4, "GRU": 3}


def _clipped(x, clip):
    return x if clip is None else np.clip(x, -clip, clip)


def lstm_direction(x, w, r, b, p, h, c, reverse=False, clip=None, acts=LSTM_DEFAULT_ACTIVATIONS):
    """One direction of ONNX LSTM on float64 arrays: x [T, B, I], w [4H, I], r [4H, H] (gates
    i, o, f, c), b [8H] (Wb then Rb), p [3H] peepholes (i, o, f), h, c [B, H].
    Returns (Y [T, B, H], final h, final c)."""
    f_act, g_act, h_act = (ACTIVATIONS[a] for a in acts)
    hidden = r.shape[1]
    bias = b[:4 * hidden] + b[4 * hidden:]
    pi, po, pf = p[:hidden], p[hidden:2 * hidden], p[2 * hidden:]
    ys = np.zeros((x.shape[0], x.shape[1], hidden))
    order = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    for t in order:
        gates = x[t] @ w.T + h @ r.T + bias
        gi, go, gf, gc = (gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
        i = f_act(_clipped(gi + pi * c, clip))
        f = f_act(_clipped(gf + pf * c, clip))
        c = f * c + i * g_act(_clipped(gc, clip))
        o = f_act(_clipped(go + po * c, clip))
        h = o * h_act(c)
        ys[t] = h
    return ys, h, c


def gru_direction(x, w, r, b, h, reverse=False, clip=None, linear_before_reset=0,
                  acts=GRU_DEFAULT_ACTIVATIONS):
    """One direction of ONNX GRU on float64 arrays: x [T, B, I], w [3H, I], r [3H, H] (gates
    z, r, h), b [6H] (Wb then Rb), h [B, H]. Returns (Y [T, B, H], final h)."""
    f_act, g_act = (ACTIVATIONS[a] for a in acts)
    hidden = r.shape[1]
    wb, rb = b[:3 * hidden], b[3 * hidden:]
    ys = np.zeros((x.shape[0], x.shape[1], hidden))
    order = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    rows = [slice(k * hidden, (k + 1) * hidden) for k in range(3)]
    for t in order:
        xg = x[t] @ w.T + wb
        hg = h @ r[:2 * hidden].T + rb[:2 * hidden]
        z = f_act(_clipped(xg[:, rows[0]] + hg[:, rows[0]], clip))
        reset = f_act(_clipped(xg[:, rows[1]] + hg[:, rows[1]], clip))
        if linear_before_reset:
            hn = reset * (h @ r[rows[2]].T + rb[rows[2]])
        else:
            hn = (reset * h) @ r[rows[2]].T + rb[rows[2]]
        n = g_act(_clipped(xg[:, rows[2]] + hn, clip))
        h = (1.0 - z) * n + z * h
        ys[t] = h
    return ys, h


# ---- IR ops ------------------------------------------------------------------------------------
class _Recurrent(OpDef):
    """Inputs: X [T, B, I], W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H] or '', initial_h
    [D, B, H] or '' (LSTM also: initial_c, P [D, 3H]). Output: Y [T, D, B, H] (LSTM
    output="cell": Y_c [D, B, H])."""

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        w = g.tensors[node.inputs[1]]
        hidden = node.attrs["hidden_size"]
        dirs = 2 if node.attrs["direction"] == "bidirectional" else 1
        if len(x.shape) != 3 or tuple(w.shape) != (dirs, GATES[self.name] * hidden, x.shape[2]):
            raise IRError(f"{self.name} {node.name!r}: input {x.shape} and weights {w.shape} do not fit "
                          f"hidden_size {hidden} with {dirs} direction(s)")
        if node.attrs.get("output") == "cell":
            return [((dirs, x.shape[1], hidden), x.dtype)]
        return [((x.shape[0], dirs, x.shape[1], hidden), x.dtype)]

    def macs(self, g, node):
        t, batch, in_size = g.tensors[node.inputs[0]].shape
        hidden = node.attrs["hidden_size"]
        dirs = 2 if node.attrs["direction"] == "bidirectional" else 1
        return t * batch * dirs * GATES[self.name] * hidden * (in_size + hidden)

    def _states(self, node, xs, dirs, batch):
        """Float64 (W, R, B, initial_h) per direction, zeros where an input is absent."""
        hidden = node.attrs["hidden_size"]
        gates = GATES[self.name]
        b = xs[3] if len(xs) > 3 and xs[3] is not None else np.zeros((dirs, 2 * gates * hidden))
        h0 = xs[4] if len(xs) > 4 and xs[4] is not None else np.zeros((dirs, batch, hidden))
        return [(xs[1][d].astype(np.float64), xs[2][d].astype(np.float64), b[d].astype(np.float64),
                 h0[d].astype(np.float64)) for d in range(dirs)]


@register
class LSTM(_Recurrent):
    name = "LSTM"

    def run_float(self, node, xs):
        x = xs[0].astype(np.float64)
        a = node.attrs
        dirs = 2 if a["direction"] == "bidirectional" else 1
        hidden = a["hidden_size"]
        c0 = xs[5] if len(xs) > 5 and xs[5] is not None else np.zeros((dirs, x.shape[1], hidden))
        peep = xs[6] if len(xs) > 6 and xs[6] is not None else np.zeros((dirs, 3 * hidden))
        ys, cs = [], []
        for d, (w, r, b, h0) in enumerate(self._states(node, xs, dirs, x.shape[1])):
            reverse = a["direction"] == "reverse" or d == 1
            y, _, c = lstm_direction(x, w, r, b, peep[d].astype(np.float64), h0, c0[d].astype(np.float64),
                                     reverse, a["clip"], a["activations"])
            ys.append(y)
            cs.append(c)
        if a.get("output") == "cell":
            return [np.stack(cs).astype(np.float32)]
        return [np.stack(ys, axis=1).astype(np.float32)]

    def lower_int8(self, lc, node):
        _check_int8_recurrent(lc, node, extra_inputs=(5, 6))
        if node.attrs.get("output") == "cell":
            raise unsupported_int8(node, "the final cell state Y_c as an output (int8 keeps the cell state "
                                         "inside the kernel; use Y or Y_h)")
        _lower_recurrent(lc, node, "tc_lstm_s8")


@register
class GRU(_Recurrent):
    name = "GRU"

    def run_float(self, node, xs):
        x = xs[0].astype(np.float64)
        a = node.attrs
        dirs = 2 if a["direction"] == "bidirectional" else 1
        ys = []
        for d, (w, r, b, h0) in enumerate(self._states(node, xs, dirs, x.shape[1])):
            reverse = a["direction"] == "reverse" or d == 1
            y, _ = gru_direction(x, w, r, b, h0, reverse, a["clip"], a["linear_before_reset"], a["activations"])
            ys.append(y)
        return [np.stack(ys, axis=1).astype(np.float32)]

    def lower_int8(self, lc, node):
        _check_int8_recurrent(lc, node, extra_inputs=())
        _lower_recurrent(lc, node, "tc_gru_s8")


# ---- ONNX import ---------------------------------------------------------------------------------
def _decoded(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _recurrent_attrs(onode, attrs, op: str) -> dict:
    hidden = attrs.get("hidden_size")
    if hidden is None or int(hidden) < 1:
        raise BadInput(f"{op} node {onode.name!r}: hidden_size must be given and >= 1")
    direction = _decoded(attrs.get("direction", b"forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise BadInput(f"{op} node {onode.name!r}: unknown direction {direction!r}")
    dirs = 2 if direction == "bidirectional" else 1
    defaults = LSTM_DEFAULT_ACTIVATIONS if op == "LSTM" else GRU_DEFAULT_ACTIVATIONS
    acts = tuple(_decoded(a) for a in attrs.get("activations", ()))
    if acts and len(acts) != len(defaults) * dirs:
        raise BadInput(f"{op} node {onode.name!r}: {len(acts)} activations for {dirs} direction(s)")
    acts = acts or defaults * dirs
    if acts[:len(defaults)] != acts[len(defaults):] and dirs == 2:
        raise unsupported(onode, "different activations per direction")
    acts = acts[:len(defaults)]
    unknown = [a for a in acts if a not in ACTIVATIONS]
    if unknown or attrs.get("activation_alpha") or attrs.get("activation_beta"):
        raise unsupported(onode, f"activations {list(acts)} (supported: {sorted(ACTIVATIONS)} without alpha/beta)")
    if int(attrs.get("input_forget", 0)):
        raise unsupported(onode, "input_forget=1 (coupled input and forget gates)")
    clip = attrs.get("clip")
    return dict(hidden_size=int(hidden), direction=direction, clip=None if clip is None else float(clip),
                activations=acts)


def _optional(onode, k: int) -> str:
    return onode.input[k] if len(onode.input) > k else ""


@onnx_importer("LSTM", "GRU", revisions={22: {}})  # 22: bfloat16 admitted
def import_recurrent(ctx, onode, attrs):
    """ONNX LSTM (X, W, R, B, sequence_lens, initial_h, initial_c, P) and GRU (X, W, R, B,
    sequence_lens, initial_h) -> one IR node computing Y, Y_h sliced from it."""
    op = onode.op_type
    x = onode.input[0]
    layout = int(attrs.get("layout", 0))
    if layout not in (0, 1):
        raise BadInput(f"{op} node {onode.name!r}: layout {layout} (0 or 1 expected)")
    shape = ctx.shape(x)
    if len(shape) != 3:
        raise BadInput(f"{op} node {onode.name!r}: input of rank {len(shape)} (3 expected)")
    if layout == 1:  # [B, T, I] -> [T, B, I]
        x = ctx.add("Transpose", [x], None, onode, "time_major", perm=(1, 0, 2))[0]
        shape = ctx.shape(x)
    a = _recurrent_attrs(onode, attrs, op)
    _check_operand_shapes(ctx, onode, op, shape, a, layout)
    if op == "GRU":
        a["linear_before_reset"] = int(attrs.get("linear_before_reset", 0))
    steps = shape[0]
    for k, what in ((1, "the weights W"), (2, "the recurrence weights R")):
        ctx.require_const(onode, onode.input[k], what)
    seq_lens = _optional(onode, 4)
    if seq_lens:
        lens = ctx.require_const(onode, seq_lens, "sequence_lens")
        if np.any(np.asarray(lens) != steps):
            raise unsupported(onode, f"sequence_lens {np.asarray(lens).tolist()} shorter than the {steps} steps "
                                     "(only full-length sequences)")
    states = [_optional(onode, 5)] + ([_optional(onode, 6)] if op == "LSTM" else [])
    # A constant zero state (torch's exporters build one with Expand) is the default: dropped,
    # so it is neither a parameter nor an input of the int8 kernel.
    states = ["" if s and ctx.const(s) is not None and not np.any(ctx.const(s)) else s for s in states]
    if layout == 1:  # initial states [B, D, H] -> [D, B, H]
        states = [ctx.add("Transpose", [s], None, onode, f"state_{k}", perm=(1, 0, 2))[0] if s else ""
                  for k, s in enumerate(states)]
    inputs = [x, onode.input[1], onode.input[2], _optional(onode, 3)] + states
    if op == "LSTM":
        inputs.append(_optional(onode, 7))
    while inputs and not inputs[-1]:
        inputs.pop()
    outputs = list(onode.output) + [""] * (3 - len(onode.output))
    y_name, yh_name, yc_name = outputs[:3]
    y = ctx.add(op, inputs, None, onode, "sequence", **a)[0]
    dirs, batch, hidden = (2 if a["direction"] == "bidirectional" else 1), shape[1], a["hidden_size"]
    if y_name:
        perm = (2, 0, 1, 3) if layout == 1 else None  # [T, D, B, H] -> [B, T, D, H]
        if perm:
            ctx.add("Transpose", [y], [y_name], onode, "batch_major", perm=perm)
        else:
            ctx.alias(y, y_name, onode)
    if yh_name:
        _import_last_hidden(ctx, onode, y, yh_name, a["direction"], steps, dirs, batch, hidden, layout)
    if yc_name and op == "LSTM":
        yc = yc_name if layout == 0 else None
        yc = ctx.add(op, inputs, [yc] if yc else None, onode, "cell", output="cell", **a)[0]
        if layout == 1:
            ctx.add("Transpose", [yc], [yc_name], onode, "cell_batch_major", perm=(1, 0, 2))


def _check_operand_shapes(ctx, onode, op, x_shape, a, layout):
    """W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H], initial_h / initial_c [D, B, H] ([B, D, H] with
    layout 1) and P [D, 3H] as ONNX defines them (x_shape time-major [T, B, I]): a model whose
    operands disagree with hidden_size and direction is refused here, by name."""
    dirs = 2 if a["direction"] == "bidirectional" else 1
    hidden, gates, batch, size = a["hidden_size"], GATES[op], x_shape[1], x_shape[2]
    state = (batch, dirs, hidden) if layout == 1 else (dirs, batch, hidden)
    expected = {1: ("W", (dirs, gates * hidden, size)), 2: ("R", (dirs, gates * hidden, hidden)),
                3: ("B", (dirs, 2 * gates * hidden)), 5: ("initial_h", state)}
    if op == "LSTM":
        expected.update({6: ("initial_c", state), 7: ("P", (dirs, 3 * hidden))})
    for k, (what, want) in expected.items():
        name = _optional(onode, k)
        if name and tuple(ctx.shape(name)) != want:
            raise BadInput(f"{op} node {onode.name!r}: {what} of shape {list(ctx.shape(name))} where "
                           f"hidden_size {hidden}, {dirs} direction(s) and the input {list(x_shape)} "
                           f"need {list(want)}")


def _import_last_hidden(ctx, onode, y, yh_name, direction, steps, dirs, batch, hidden, layout):
    """Y_h = each direction's last step of Y: t = T-1 forward, t = 0 reverse."""
    parts = []
    for d in range(dirs):
        t = 0 if direction == "reverse" or d == 1 else steps - 1
        parts.append(ctx.add("Slice", [y], None, onode, f"last_step_{d}", starts=(t, d, 0, 0),
                             ends=(t + 1, d + 1, batch, hidden), steps=(1, 1, 1, 1))[0])
    last = parts[0] if dirs == 1 else ctx.add("Concat", parts, None, onode, "last_steps", axis=1)[0]
    if layout == 0:
        ctx.add("Reshape", [last], [yh_name], onode, "y_h", shape=(dirs, batch, hidden))
    else:
        flat = ctx.add("Reshape", [last], None, onode, "y_h", shape=(dirs, batch, hidden))[0]
        ctx.add("Transpose", [flat], [yh_name], onode, "y_h_batch_major", perm=(1, 0, 2))


# ---- int8 lowering -------------------------------------------------------------------------------
GATE_INPUT_SCALE = 2.0 ** -12    # gate pre-activations: int16 Q3.12 (TFLM nonlinear_input_scale)
GATE_OUTPUT_SCALE = 2.0 ** -15   # sigmoid / tanh outputs: int16 Q0.15
MAX_CELL_SCALE_POWER = 0         # cell range up to 2^15: keeps TFLM's Tanh input product in int32


def _check_int8_recurrent(lc, node, extra_inputs):
    a = node.attrs
    if tuple(a["activations"]) != (LSTM_DEFAULT_ACTIVATIONS if node.op == "LSTM" else GRU_DEFAULT_ACTIVATIONS):
        raise unsupported_int8(node, f"activations {list(a['activations'])}")
    if a["clip"] is not None:
        raise unsupported_int8(node, "clip (gate pre-activation clipping)")
    for k, what in [(4, "initial_h")] + [(k, {5: "initial_c", 6: "peepholes P"}[k]) for k in extra_inputs]:
        name = node.inputs[k] if len(node.inputs) > k else ""
        if not name:
            continue
        value = lc.tensor(name).data
        if value is None or np.any(value != 0):
            why = "int8 has no peephole connections" if k == 6 else "int8 starts from a zero state"
            raise unsupported_int8(node, f"a non-zero or run-time {what} ({why})")


def cell_scale_power(steps: int) -> int:
    """Power p of the LSTM cell scale 2^p: the smallest for which 32767 * 2^p >= steps, the
    bound of |c_t| from a zero state, so the cell state never saturates (TFLM: 2^-11 typical)."""
    p = max(-15, math.ceil(math.log2(steps / 32767.0)))
    require(p <= MAX_CELL_SCALE_POWER, f"{steps} steps need a cell range above 2^15")
    return p


def _gate_multipliers(in_scale: float, w_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per gate row: in_scale * w_scale[row] -> Q3.12 as QuantizeMultiplier pairs."""
    pairs = [quantize_multiplier(float(np.float32(in_scale)) * float(s) / GATE_INPUT_SCALE) for s in w_scale]
    return (np.array([m for m, _ in pairs], dtype=np.int32), np.array([s for _, s in pairs], dtype=np.int32))


def _lower_recurrent(lc, node, kernel):
    """One kernel call per direction; a bidirectional node's second call completes (update) the
    output the first one started, each writing its own direction's rows of Y [T, D, B, H]."""
    x, y = node.inputs[0], node.outputs[0]
    a = node.attrs
    steps, batch, in_size = lc.tensor(x).shape
    dirs = 2 if a["direction"] == "bidirectional" else 1
    macs = _registered_macs(lc, node) // dirs
    for d in range(dirs):
        p, args = _direction_args(lc, node, d, dirs, steps, batch, in_size)
        golden = lstm_s8 if node.op == "LSTM" else gru_s8
        scratch = Arg("scratch", "", (lstm_scratch_size if node.op == "LSTM" else gru_scratch_size)(p))
        what = f"{steps} steps, state in scratch" + (f", direction {d}" if dirs == 2 else "")
        if d == 0:
            lc.add_step(node, kernel, p, args + [scratch, Arg("out", y)], lambda *vs, p=p, g=golden: g(p, *vs),
                        macs=macs, note=what)
        else:
            lc.add_step(node, kernel, p, args + [scratch, Arg("update", y)], lambda *vs, p=p, g=golden: g(p, *vs),
                        macs=macs, note=what)


def _direction_args(lc, node, d, dirs, steps, batch, in_size):
    """Params and constant arguments of direction d's kernel call."""
    x, y = node.inputs[0], node.outputs[0]
    a = node.attrs
    hidden = a["hidden_size"]
    gates = GATES[node.op]
    s_x, zp_x = lc.qp(x)
    s_h, zp_h = lc.qp(y)
    w = lc.tensor(node.inputs[1]).data[d].astype(np.float32)
    r = lc.tensor(node.inputs[2]).data[d].astype(np.float32)
    b_name = node.inputs[3] if len(node.inputs) > 3 else ""
    b = lc.tensor(b_name).data[d].astype(np.float64) if b_name else np.zeros(2 * gates * hidden)
    wq, wqp = quantize_weights_per_channel(w, 0)
    rq, rqp = quantize_weights_per_channel(r, 0)
    lc._pending_params += int(w.size + r.size + b.size)
    w_mult, w_shift = _gate_multipliers(s_x, wqp.scale)
    r_mult, r_shift = _gate_multipliers(s_h, rqp.scale)
    wb, rb = b[:gates * hidden], b[gates * hidden:]
    reverse = int(a["direction"] == "reverse" or d == 1)
    common = dict(steps=steps, batch=batch, input_size=in_size, hidden_size=hidden, reverse=reverse, in_zp=zp_x,
                  hidden_zp=zp_h, directions=dirs, direction=d)
    if node.op == "LSTM":
        x_bias, r_bias = wb + rb, None
        p = make_lstm_params(s_h, **common)
    else:
        # Recurrent biases of z and r (and of n when the reset gate applies after R h) add
        # outside the reset product: they fold into the input FC's bias.
        lbr = a["linear_before_reset"]
        fold = np.ones(gates * hidden)
        if lbr:
            fold[2 * hidden:] = 0
        x_bias, r_bias = wb + rb * fold, rb * (1 - fold)
        p = make_gru_params(s_h, linear_before_reset=lbr, **common)
    suffix = f"_d{d}" if dirs == 2 else ""
    blob = lambda arr, role: Arg("const", lc.blob(np.ascontiguousarray(arr), node, role + suffix))  # noqa: E731
    x_bias_q = _checked_bias(node, quantize_bias(x_bias, s_x, wqp.scale), in_size)
    args = [Arg("in", x), blob(wq, "w"), blob(rq, "r"), blob(x_bias_q, "bias")]
    if r_bias is not None:
        args.append(blob(_checked_bias(node, quantize_bias(r_bias, s_h, rqp.scale), hidden), "r_bias"))
    args += [blob(w_mult, "w_mult"), blob(w_shift, "w_shift"), blob(r_mult, "r_mult"), blob(r_shift, "r_shift")]
    return p, args


def _checked_bias(node, bias: np.ndarray, inputs: int) -> np.ndarray:
    """The int32 bias of a gate product over `inputs` int8 values, refused where bias plus the
    largest possible sum (255 * 128 per input) could leave int32: the C accumulates in int32."""
    if np.abs(bias.astype(np.int64)).max(initial=0) + inputs * 255 * 128 > INT32_MAX:
        raise unsupported_int8(node, "a bias too large for its scales (the int32 gate accumulator could "
                                     "overflow)")
    return bias


def _registered_macs(lc, node) -> int:
    """The op's MAC count (OpDef.macs), credited to its steps."""
    return OPS[node.op].macs(lc.g, node)


# ---- integer reference (runtime_c/tc_recurrent.c, tc_lstm_s8.c, tc_gru_s8.c) -------------------------
# TFLM's sigmoid_table_uint16 (kernels/internal/common.h): sigmoid(i / 24) in 0.16, i = 0..255.
SIGMOID_TABLE_Q16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498,
    40149, 40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255,
    46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865,
    52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174,
    56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544, 58800, 59048, 59288,
    59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279, 61441,
    61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886,
    62990, 63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835,
    63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450,
    64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845,
    64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097,
    65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425,
    65429, 65433, 65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465,
    65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508,
    65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516, 65517, 65517, 65518,
    65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524, 65525,
    65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529,
    65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531,
    65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533,
    65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65535], dtype=np.int64)

INT16_MIN, INT16_MAX = -32768, 32767


def _table_pair(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = np.minimum(index, 254)  # only read where index < 255
    return SIGMOID_TABLE_Q16[k], SIGMOID_TABLE_Q16[k + 1]


def sigmoid_q15(x) -> np.ndarray:
    """TFLM reference_integer_ops::Logistic on int16 Q3.12 with input_multiplier 0 (power of
    two: x * 3, the table's 3/4 scaling folded in) -> Q0.15."""
    v = np.asarray(x, dtype=np.int64) * 3
    a = np.abs(v)
    uh = a >> 9
    ua, ub = _table_pair(uh)
    res = np.where(uh >= 255, 0x7FFF << 10, (ua << 9) + (a & 0x1FF) * (ub - ua))
    res = np.where(v >= 0, res + (1 << 9), (1 << 25) - res + (1 << 9) - 1)
    return res >> 10


def tanh_multiplier(scale_power: int) -> tuple[int, int]:
    """lstm_internal::Tanh's (input_multiplier, input_left_shift) for an int16 input of scale
    2^scale_power: left shift (15 + p) - 3, or multiplier 3 with a right shift when negative."""
    left = 15 + scale_power - 3
    return (0, left) if left >= 0 else (3, -left)


def tanh_q15(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """TFLM reference_integer_ops::Tanh on int16 -> Q0.15 (tanh(x) = 2 sigmoid(2x) - 1)."""
    if input_multiplier == 0:
        input_multiplier, input_left_shift = 3 << input_left_shift, 0
    rnd = (1 << (input_left_shift - 1)) if input_left_shift > 0 else 0
    v = (np.asarray(x, dtype=np.int64) * input_multiplier + rnd) >> input_left_shift
    a = np.abs(v)
    uh = a >> 8
    ua, ub = _table_pair(uh)
    res = np.where(uh >= 255, 0xFFFF << 8, (ua << 8) + (a & 0xFF) * (ub - ua))
    res = np.where(v >= 0, res - (1 << 23) + (1 << 7), -res + (1 << 23) + (1 << 7) - 1)
    return res >> 8


def mul_elementwise(a, b, mult: int, shift: int, out_zp: int = 0, b_offset: int = 0,
                    lo: int = INT16_MIN, hi: int = INT16_MAX) -> np.ndarray:
    """TFLM reference_integer_ops::MulElementwise (input1_offset 0)."""
    prod = np.asarray(a, dtype=np.int64) * (np.asarray(b, dtype=np.int64) + b_offset)
    return np.clip(mbqm(prod, mult, shift) + out_zp, lo, hi)


def sat_add16(a, b) -> np.ndarray:
    """lstm_internal::AddElementWise on int16."""
    return np.clip(np.asarray(a, dtype=np.int64) + b, INT16_MIN, INT16_MAX)


def fc_q12(x, zp: int, w, bias, mult, shift) -> np.ndarray:
    """An int8 FC to int16 (TFLM FullyConnected with an int16 output, per row multipliers):
    clamp(MBQM(bias + sum((x - zp) * w), mult, shift), int16)."""
    acc = np.asarray(w, dtype=np.int64) @ (np.asarray(x, dtype=np.int64) - zp)
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)
    require(bool(np.all((acc >= INT32_MIN) & (acc <= INT32_MAX))), "accumulator outside int32")
    return np.clip(mbqm(acc, mult, shift), INT16_MIN, INT16_MAX)


@dataclass(frozen=True)
class LstmParams:
    """tc_lstm_params: input [steps][batch][input_size] int8, output [steps][batch][hidden_size]
    int8 (the hidden state, quantized like the output); gates i, o, f, c in blocks of hidden_size
    rows. Each batch row is an independent sequence from a zero state."""

    C_STRUCT: ClassVar[str] = "tc_lstm_params"
    steps: int
    batch: int
    directions: int             # D of the output [steps][D][batch][hidden]; this call writes
    direction: int              # the rows of direction `direction`
    input_size: int
    hidden_size: int
    reverse: int
    in_zp: int
    hidden_zp: int
    cell_tanh_multiplier: int   # lstm_internal::Tanh of the cell state (scale 2^cell_scale_power)
    cell_tanh_shift: int
    forget_multiplier: int      # f * c: 2^-15 * s_c / s_c
    forget_shift: int
    input_multiplier: int       # i * g: 2^-15 * 2^-15 / s_c
    input_shift: int
    hidden_multiplier: int      # o * tanh(c): 2^-15 * 2^-15 / s_h
    hidden_shift: int

    def validate(self) -> None:
        _validate_common(self)
        # multiplier 0: x * (3 << shift) must fit int32 for every int16 x (shift <= 14)
        require(self.cell_tanh_multiplier in (0, 3) and
                0 <= self.cell_tanh_shift <= (14 if self.cell_tanh_multiplier == 0 else 15),
                "cell_tanh_multiplier must be 0 (cell_tanh_shift in [0, 14]) or 3 (shift in [0, 15])")
        for m, s in ((self.forget_multiplier, self.forget_shift), (self.input_multiplier, self.input_shift),
                     (self.hidden_multiplier, self.hidden_shift)):
            require(0 <= m <= INT32_MAX and -31 <= s <= 0, "multipliers must be >= 0 with shifts in [-31, 0]")


@dataclass(frozen=True)
class GruParams:
    """tc_gru_params: as tc_lstm_params, gates z, r, n in blocks of hidden_size rows."""

    C_STRUCT: ClassVar[str] = "tc_gru_params"
    steps: int
    batch: int
    directions: int             # D of the output [steps][D][batch][hidden]; this call writes
    direction: int              # the rows of direction `direction`
    input_size: int
    hidden_size: int
    reverse: int
    in_zp: int
    hidden_zp: int
    linear_before_reset: int
    reset_multiplier: int       # r * (R h) (Q0.15 * Q3.12 -> Q3.12) and r * h8 (-> s_h): 2^-15
    reset_shift: int
    hidden_multiplier: int      # h16 (Q0.15) -> int8 output: 2^-15 / s_h
    hidden_shift: int

    def validate(self) -> None:
        _validate_common(self)
        require(self.linear_before_reset in (0, 1), "linear_before_reset must be 0 or 1")
        for m, s in ((self.reset_multiplier, self.reset_shift), (self.hidden_multiplier, self.hidden_shift)):
            require(0 <= m <= INT32_MAX and -31 <= s <= 30, "multipliers must be >= 0 with shifts in [-31, 30]")


def _validate_common(p) -> None:
    require(p.steps >= 1 and p.batch >= 1 and p.input_size >= 1 and p.hidden_size >= 1,
            "steps, batch, input_size and hidden_size must be >= 1")
    require(p.reverse in (0, 1), "reverse must be 0 or 1")
    require(p.directions in (1, 2) and 0 <= p.direction < p.directions, "need directions 1 or 2, direction < it")
    require(is_int8(p.in_zp) and is_int8(p.hidden_zp), "zero points must be in [-128, 127]")


def make_lstm_params(hidden_scale: float, *, steps, input_size, hidden_size, reverse, in_zp,
                     hidden_zp, batch=1, directions=1, direction=0) -> LstmParams:
    """TFLM PrepareGateParametersInteger for one direction, the cell scale from cell_scale_power."""
    cell_power = cell_scale_power(steps)
    s_c = 2.0 ** cell_power
    tanh_mult, tanh_shift = tanh_multiplier(cell_power)
    fm, fs = quantize_multiplier(GATE_OUTPUT_SCALE * s_c / s_c)
    im, ish = quantize_multiplier(GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / s_c)
    hm, hs = quantize_multiplier(GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / float(np.float32(hidden_scale)))
    p = LstmParams(int(steps), int(batch), int(directions), int(direction), int(input_size), int(hidden_size),
                   int(reverse), int(in_zp), int(hidden_zp),
                   tanh_mult, tanh_shift, fm, fs, im, ish, hm, hs)
    p.validate()
    return p


def make_gru_params(hidden_scale: float, *, steps, input_size, hidden_size, reverse, in_zp, hidden_zp,
                    linear_before_reset, batch=1, directions=1, direction=0) -> GruParams:
    rm, rs = quantize_multiplier(GATE_OUTPUT_SCALE)
    hm, hs = quantize_multiplier(GATE_OUTPUT_SCALE / float(np.float32(hidden_scale)))
    p = GruParams(int(steps), int(batch), int(directions), int(direction), int(input_size), int(hidden_size),
                  int(reverse), int(in_zp), int(hidden_zp), int(linear_before_reset), rm, rs, hm, hs)
    p.validate()
    return p


def lstm_scratch_size(p: LstmParams) -> int:
    """Mirror of tc_lstm_s8_scratch_size: int16 gates [4H] and recurrent part [4H], int16 cell
    [H], int8 hidden state [H] (rounded up to an even count)."""
    return 2 * (4 * p.hidden_size) * 2 + 2 * p.hidden_size + (p.hidden_size + 1) // 2 * 2


def gru_scratch_size(p: GruParams) -> int:
    """Mirror of tc_gru_s8_scratch_size: int16 input part [3H] and recurrent part [3H], int16
    state [H], int8 state and reset product [H] each (rounded up to an even count)."""
    return 2 * (3 * p.hidden_size) * 2 + 2 * p.hidden_size + 2 * ((p.hidden_size + 1) // 2 * 2)


def _recurrent_operands(p, x, w, r, gates):
    x = as_int8(x, p.steps * p.batch * p.input_size, "input").reshape(p.steps, p.batch, p.input_size)
    x = x.astype(np.int64)
    w = as_shape(w, (gates * p.hidden_size, p.input_size), "weights").astype(np.int64)
    r = as_shape(r, (gates * p.hidden_size, p.hidden_size), "recurrent weights").astype(np.int64)
    return x, w, r


def _output(p, current) -> np.ndarray:
    """The output [steps][directions][batch][hidden] this call writes into: a copy of `current`
    (the rows other calls wrote) or zeros."""
    shape = (p.steps, p.directions, p.batch, p.hidden_size)
    if current is None:
        return np.zeros(shape, dtype=np.int8)
    return as_int8(current, int(np.prod(shape)), "current output").reshape(shape).copy()


def _sequence_order(p):
    """(batch row, step count) in the kernels' order: batch rows one after the other."""
    return [(b, k) for b in range(p.batch) for k in range(p.steps)]


def _row_arrays(n, *arrays):
    out = []
    for a in arrays:
        a = np.asarray(a)
        require(a.shape == (n,), f"per-row arrays must hold {n} values")
        out.append(a.astype(np.int64))
    return out


def lstm_s8(p: LstmParams, x, w, r, bias, w_mult, w_shift, r_mult, r_shift, current=None) -> np.ndarray:
    """Mirror of tc_lstm_s8: int8 output [steps][batch][hidden_size] (TFLM LstmStep per step)."""
    p.validate()
    x, w, r = _recurrent_operands(p, x, w, r, 4)
    n = p.hidden_size
    bias, w_mult, w_shift, r_mult, r_shift = _row_arrays(4 * n, bias, w_mult, w_shift, r_mult, r_shift)
    out = _output(p, current)
    for b, k in _sequence_order(p):
        if k == 0:  # each batch row runs its own sequence from a zero state
            h8, c = np.full(n, p.hidden_zp, dtype=np.int64), np.zeros(n, dtype=np.int64)
        t = p.steps - 1 - k if p.reverse else k
        g = sat_add16(fc_q12(x[t, b], p.in_zp, w, bias, w_mult, w_shift),
                      fc_q12(h8, p.hidden_zp, r, None, r_mult, r_shift))
        i, o, f = sigmoid_q15(g[:n]), sigmoid_q15(g[n:2 * n]), sigmoid_q15(g[2 * n:3 * n])
        cell_gate = tanh_q15(g[3 * n:], *tanh_multiplier(-12))
        c = sat_add16(mul_elementwise(f, c, p.forget_multiplier, p.forget_shift),
                      mul_elementwise(i, cell_gate, p.input_multiplier, p.input_shift))
        tanh_c = tanh_q15(c, p.cell_tanh_multiplier, p.cell_tanh_shift)
        h8 = mul_elementwise(o, tanh_c, p.hidden_multiplier, p.hidden_shift, p.hidden_zp, lo=-128, hi=127)
        out[t, p.direction, b] = h8
    return out.reshape(p.steps, p.directions * p.batch, n) if p.directions == 1 else out


def gru_s8(p: GruParams, x, w, r, bias, r_bias, w_mult, w_shift, r_mult, r_shift, current=None) -> np.ndarray:
    """Mirror of tc_gru_s8: int8 output [steps][batch][hidden_size] (module docstring's scheme)."""
    p.validate()
    x, w, r = _recurrent_operands(p, x, w, r, 3)
    n = p.hidden_size
    bias, r_bias, w_mult, w_shift, r_mult, r_shift = _row_arrays(3 * n, bias, r_bias, w_mult, w_shift, r_mult,
                                                                  r_shift)
    out = _output(p, current)
    zr, nn = slice(0, 2 * n), slice(2 * n, 3 * n)
    for b, k in _sequence_order(p):
        if k == 0:  # each batch row runs its own sequence from a zero state
            h8, h16 = np.full(n, p.hidden_zp, dtype=np.int64), np.zeros(n, dtype=np.int64)
        t = p.steps - 1 - k if p.reverse else k
        xg = fc_q12(x[t, b], p.in_zp, w, bias, w_mult, w_shift)
        hg = fc_q12(h8, p.hidden_zp, r[zr], r_bias[zr], r_mult[zr], r_shift[zr])
        gate = sigmoid_q15(sat_add16(xg[zr], hg))
        z, reset = gate[:n], gate[n:]
        if p.linear_before_reset:
            hn = fc_q12(h8, p.hidden_zp, r[nn], r_bias[nn], r_mult[nn], r_shift[nn])
            hn = mul_elementwise(reset, hn, p.reset_multiplier, p.reset_shift)
        else:
            rh8 = mul_elementwise(reset, h8, p.reset_multiplier, p.reset_shift, p.hidden_zp, -p.hidden_zp, -128, 127)
            hn = fc_q12(rh8, p.hidden_zp, r[nn], r_bias[nn], r_mult[nn], r_shift[nn])
        cand = tanh_q15(sat_add16(xg[nn], hn), *tanh_multiplier(-12))
        mix = (32768 - z) * cand + z * h16
        h16 = np.clip(np.where(mix >= 0, (mix + (1 << 14)) >> 15, -((-mix + (1 << 14)) >> 15)), INT16_MIN, INT16_MAX)
        h8 = np.clip(mbqm(h16, p.hidden_multiplier, p.hidden_shift) + p.hidden_zp, -128, 127)
        out[t, p.direction, b] = h8
    return out.reshape(p.steps, p.directions * p.batch, n) if p.directions == 1 else out


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_lstm_s8", header="tc_recurrent.h", params=LstmParams, golden=lstm_s8,
        args=("in", "const", "const", "const", "const", "const", "const", "const", "scratch", "out"),
        sources=("tc_lstm_s8.c", "tc_recurrent.c"), scratch_bytes=lstm_scratch_size)
declare("tc_gru_s8", header="tc_recurrent.h", params=GruParams, golden=gru_s8,
        args=("in", "const", "const", "const", "const", "const", "const", "const", "const", "scratch", "out"),
        sources=("tc_gru_s8.c", "tc_recurrent.c"), scratch_bytes=gru_scratch_size)
