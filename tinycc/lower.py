"""Lower a quantized IR graph to a Program of int8 kernel calls (see program.py)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import Unsupported
from .golden.arith import MultiplierRangeError
from .ir import Graph, Node, Tensor
from .ops.registry import OPS
from .program import Arg, Program, Step, TensorInfo, c_identifier
from .quant.params import quantize, quantize_const_per_tensor
from .quant.weights import EncodedWeights, encode_weights, recover_integers


class LowerCtx:
    def __init__(self, g: Graph, program: Program, ternary_formats: str = "auto"):
        self.g = g
        self.program = program
        self.ternary_formats = ternary_formats  # packed format of PROM layers (quant/ternary.choose_format)
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

    def weights(self, node: Node, in_scale: float) -> EncodedWeights:
        """The node's weights and bias encoded as its weight scheme says (quant/weights.py)."""
        enc = encode_weights(self.g, node, in_scale)
        self._pending_params += enc.param_count
        return enc

    def const_operand(self, name: str, node: Node) -> tuple[str, float, int]:
        """An element-wise constant operand as an int8 blob with its own per-tensor params."""
        t = self.g.tensors[name]
        self._pending_params += int(t.data.size)
        if t.dtype == "int8" and t.quant is not None:
            q, (s, zp) = t.data, t.quant.scalar()
        elif t.quant is not None and t.quant.axis is None:  # pre-quantized (QDQ): its own int8 codes
            q, (s, zp) = np.clip(recover_integers(t.data, t.quant), -128, 127).astype(np.int8), t.quant.scalar()
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


def lower(g: Graph, name: str = "model", ternary_formats: str = "auto") -> Program:
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
    lc = LowerCtx(g, program, ternary_formats)
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
