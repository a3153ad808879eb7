"""Lower a quantized IR graph to a Program of int8 kernel calls (see program.py)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import Unsupported
from .golden.arith import MAX_MULTIPLIER, MultiplierRangeError, quantize_multiplier, quantize_multiplier_array
from .ir import Graph, Node, QuantParams, Tensor
from .ops.registry import OPS
from .program import Arg, Program, Step, TensorInfo, c_identifier
from .golden.arith import round_half_away
from .quant.params import quantize, quantize_bias, quantize_const_per_tensor, quantize_weights_per_channel


class LowerCtx:
    def __init__(self, g: Graph, program: Program):
        self.g = g
        self.program = program
        self._names: set[str] = set()
        # learned parameters (weights, biases, constant operands) read by the node being lowered,
        # credited to its first step (deduplicated blobs still count once per layer)
        self._pending_params = 0

    # ---- tensors --------------------------------------------------------------------------
    def tensor(self, name: str) -> Tensor:
        return self.g.tensors[name]

    def qp(self, name: str) -> tuple[float, int]:
        t = self.g.tensors[name]
        if t.quant is None:
            raise Unsupported(f"tensor {name!r} has no quantization parameters")
        return t.quant.scalar()

    def hwc(self, name: str) -> tuple[int, int, int]:
        """(H, W, C) of a 4-D activation consumed or produced by an NHWC kernel, batch 1."""
        t = self.g.tensors[name]
        if len(t.shape) != 4:
            raise Unsupported(f"tensor {name!r} of shape {t.shape} is not an image")
        if t.shape[0] != 1:
            raise Unsupported(f"tensor {name!r} has batch {t.shape[0]}; int8 code is generated for batch 1")
        return t.shape[1], t.shape[2], t.shape[3]

    def is_const(self, name: str) -> bool:
        return self.g.tensors[name].is_const

    # ---- constants ------------------------------------------------------------------------
    def blob(self, data: np.ndarray, node: Node, role: str) -> str:
        return self.program.add_blob(data, f"{self.step_base(node)}_{role}")

    def weights_and_bias(self, wname: str, bname: str, in_scale: float) -> tuple[np.ndarray, QuantParams, np.ndarray]:
        """int8 weights (per output channel, axis 0), their params, and the int32 bias.

        Pre-quantized tensors (QDQ models) are used as they are. Otherwise weights are symmetric
        int8 with scale max|w|/127, raised where needed so that |bias_q| <= 2^28: a tiny weight
        scale under a large bias (dead channels) would otherwise overflow the int32 accumulator.
        """
        t = self.g.tensors[wname]
        channels = t.shape[0]
        b = self.g.tensors[bname] if bname else None
        self._pending_params += int(t.data.size) + (int(b.data.size) if b is not None else 0)
        if t.quant is not None:  # pre-quantized: the exact integers, -128 included (TFLM uses them as stored)
            q = np.clip(_recover_integers(t.data, t.quant), -128, 127).astype(np.int8)
            if b is None:
                bias = np.zeros(channels, np.int32)
            elif b.quant is None:
                raise Unsupported(f"bias {bname!r} of pre-quantized weights {wname!r} is not quantized")
            else:
                bias = _recover_integers(b.data, b.quant).astype(np.int32).reshape(channels)
            scale = np.broadcast_to(t.quant.scale, (channels,)).astype(np.float32)
            return q, QuantParams(scale, np.zeros(channels, np.int32), 0), bias
        bf = b.data.astype(np.float64).reshape(channels) if b is not None else np.zeros(channels)
        bias_floor = np.abs(bf) / (np.float64(np.float32(in_scale)) * 2.0**28)
        q, qp = quantize_weights_per_channel(t.data, 0, bias_floor)
        return q, qp, quantize_bias(bf, in_scale, qp.scale)

    def const_operand(self, name: str, node: Node) -> tuple[str, float, int]:
        """An element-wise constant operand as an int8 blob with its own per-tensor params."""
        t = self.g.tensors[name]
        self._pending_params += int(t.data.size)
        if t.dtype == "int8" and t.quant is not None:
            q, (s, zp) = t.data, t.quant.scalar()
        elif t.quant is not None and t.quant.axis is None:  # pre-quantized (QDQ): its own int8 codes
            q, (s, zp) = np.clip(_recover_integers(t.data, t.quant), -128, 127).astype(np.int8), t.quant.scalar()
        else:
            q, qp = quantize_const_per_tensor(t.data.astype(np.float32))
            s, zp = qp.scalar()
        return self.blob(q, node, "const"), s, zp

    # ---- steps ----------------------------------------------------------------------------
    def step_base(self, node: Node) -> str:
        return c_identifier(f"{node.op}_{node.onnx_name or node.name}", 32).lower()

    def add_step(self, node: Node, kernel: str, params, args: list[Arg], golden: Callable,
                 macs: int = 0, inplace_inputs: tuple[int, ...] = (), note: str = "",
                 inplace_kernel: str = "", inplace_args: list[Arg] | None = None,
                 overlap_delta: int | None = None, copy_into: tuple[str, int] | None = None,
                 overlap_modulus: int = 1) -> Step:
        if params is not None and hasattr(params, "validate"):
            try:
                params.validate()
            except (ValueError, AssertionError) as exc:
                raise Unsupported(f"{node.op} node {node.onnx_name or node.name!r}: {exc}") from None
        base = f"s{len(self.program.steps)}_{self.step_base(node)}"
        step = Step(base, node.op, node.name, node.onnx_name, kernel, params, args, golden, macs,
                    tuple(inplace_inputs), note, inplace_kernel, inplace_args, overlap_delta, copy_into,
                    self._pending_params, overlap_modulus)
        self._pending_params = 0
        self.program.steps.append(step)
        return step

    def view(self, out: str, src: str) -> None:
        self.program.views[out] = src


def _recover_integers(real: np.ndarray, qp: QuantParams) -> np.ndarray:
    """q = real / scale + zp for constants stored dequantized (exact: they were q * scale)."""
    shape = [1] * real.ndim
    if qp.axis is not None:
        shape[qp.axis] = -1
    scale = qp.scale.astype(np.float64).reshape(shape if qp.axis is not None else ())
    zp = qp.zero_point.astype(np.float64).reshape(shape if qp.axis is not None else ())
    return round_half_away(real.astype(np.float64) / scale + zp).astype(np.int64)


def row_overlap_delta(in_h: int, in_w: int, in_c: int, out_h: int, out_w: int, out_c: int,
                      stride_h: int, pad_top: int, lookahead_pixels: int = 0) -> int:
    """Lowest safe output start relative to the input start for a row-streaming NHWC kernel.

    Output row r is written after reading input rows >= r*stride - pad only, so its last byte
    must stay below input row max(0, r*stride - pad). A kernel that writes up to
    `lookahead_pixels` output pixels of the next row while it still reads for row r (pixel pairs
    across a row end) must keep those below that input row too."""
    row_in, row_out = in_w * in_c, out_w * out_c
    return min(max(0, r * stride_h - pad_top) * row_in - (r + 1) * row_out
               - (lookahead_pixels * out_c if r + 1 < out_h else 0) for r in range(out_h))


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


def requant_scalar(real: float) -> tuple[int, int]:
    return quantize_multiplier(float(real))


def lower(g: Graph, name: str = "model") -> Program:
    program = Program(name)
    for tname, t in g.tensors.items():
        if t.is_const:
            continue
        if t.quant is None:
            raise Unsupported(f"tensor {tname!r} has no quantization parameters")
        logical = tuple(t.shape[i] for i in np.argsort(t.perm)) if t.perm else tuple(t.shape)
        program.tensors[tname] = TensorInfo(tname, tuple(t.shape), t.quant, t.perm, logical)
    program.inputs = list(g.inputs)
    program.outputs = list(g.outputs)
    lc = LowerCtx(g, program)
    problems = []
    for node in g.nodes:
        try:
            OPS[node.op].lower_int8(lc, node)
        except Unsupported as exc:
            problems.append(str(exc))
        except MultiplierRangeError as exc:  # scales whose ratio int32 fixed point cannot express
            problems.append(f"{node.op} node {node.onnx_name or node.name!r}: its quantization scales give a {exc}")
    if problems:
        raise Unsupported("int8 compilation is not possible:\n" + "\n".join(f"  - {p}" for p in problems))
    return program


def quantize_inputs(program: Program, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float inputs (ONNX layout) -> int8 physical arrays, as the float wrappers in C do."""
    out = {}
    for name in program.inputs:
        info = program.tensors[name]
        v = np.asarray(inputs[name])
        if v.dtype != np.int8:
            v = quantize(v.astype(np.float32), info.quant)
        if v.shape != info.logical_shape and v.size == info.size:
            v = v.reshape(info.logical_shape)
        out[name] = np.ascontiguousarray(v.transpose(info.perm)) if info.perm else v
    return out
