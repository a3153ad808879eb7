"""Helpers shared by op modules: attribute normalisation and error text."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import BadInput, Unsupported


def node_label(onode) -> str:
    return f"{onode.op_type} node {onode.name!r}"


def unsupported(onode, what: str) -> Unsupported:
    return Unsupported(f"{node_label(onode)}: {what}")


def bad_input(onode, what: str) -> BadInput:
    """A node whose inputs or attributes contradict each other or the ONNX spec."""
    return BadInput(f"{node_label(onode)}: {what}")


def unsupported_int8(node, what: str) -> Unsupported:
    """An IR node the int8 back end cannot compile, named as in the model."""
    return Unsupported(f"{node.op} node {node.onnx_name or node.name!r}: {what} is not supported in int8")


def norm_axis(axis: int, rank: int, onode=None) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        where = f"{node_label(onode)}: " if onode is not None else ""
        raise BadInput(f"{where}axis {axis} is out of range for rank {rank}")
    return a


def spatial_pads(onode, attrs: dict, in_hw: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                 dilations: Sequence[int]) -> tuple[int, int, int, int]:
    """Explicit (top, left, bottom, right) pads from ONNX pads / auto_pad."""
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("NOTSET", ""):
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4:
            raise unsupported(onode, f"pads {pads} (only 2-D spatial ops are supported)")
        if any(p < 0 for p in pads):
            raise unsupported(onode, f"negative pads {pads}")
        return pads[0], pads[1], pads[2], pads[3]
    if "pads" in attrs and not (auto_pad == "VALID" and not any(attrs["pads"])):
        # ONNX shape inference then follows the pads, onnxruntime the auto_pad: ambiguous
        raise bad_input(onode, f"pads {list(attrs['pads'])} together with auto_pad={auto_pad!r} (the ONNX spec "
                               "allows one or the other)")
    if auto_pad == "VALID":
        return 0, 0, 0, 0
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, k, s, d in zip(in_hw, kernel, strides, dilations):
            o = -(-size // s)
            total = max(0, (o - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
        return out[0][0], out[1][0], out[0][1], out[1][1]
    raise unsupported(onode, f"auto_pad={auto_pad!r}")


def pool_out_size(size: int, k: int, s: int, d: int, pad_begin: int, pad_end: int, ceil: bool) -> tuple[int, int]:
    """Output size and the extra bottom/right overflow a ceil-mode pool needs (not real padding)."""
    span = size + pad_begin + pad_end - d * (k - 1) - 1
    if not ceil:
        return span // s + 1, 0
    out = -(-span // s) + 1
    if (out - 1) * s >= size + pad_begin:  # last window must start inside the input or left pad
        out -= 1
    extra = max(0, (out - 1) * s + d * (k - 1) + 1 - (size + pad_begin + pad_end))
    return out, extra


def ints(values) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(values).ravel())
