"""Receptive fields of spatially local steps: which input rows and columns an output region needs.

A step of a Program is *spatially local* when every output pixel depends on a bounded window of
input pixels at the same place: convolutions (any kernel, stride, dilation, padding, groups),
depthwise convolutions, max/average pooling with a window smaller than the map, and per-pixel
steps (element-wise add/sub/mul of same-sized maps or with per-channel constants, lookup tables,
channel concat, PROM's ternary pointwise convolutions: a 1x1 window). Everything else (global pooling, fully connected, softmax, reshapes, broadcasts
of a per-image value such as squeeze-and-excitation scales) is not, and ends a patch stage.

Along one axis a window step maps output [a, b) to input [max(0, a*s - p), min(n, (b-1)*s - p +
d*(k-1) + 1)): the rows its windows touch, clipped to the map. Taps the clip removes are exactly
the taps the layer-by-layer kernel skips as padding, so running the same kernel on the clipped
sub-map with pad = p + lo - a*s (>= 0) computes the same numbers (see patch_window_params).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Region:
    """Rows [r0, r1) and columns [c0, c1) of a feature map (half-open)."""

    r0: int
    r1: int
    c0: int
    c1: int

    @property
    def height(self) -> int:
        return self.r1 - self.r0

    @property
    def width(self) -> int:
        return self.c1 - self.c0

    @property
    def area(self) -> int:
        return self.height * self.width

    def union(self, other: "Region") -> "Region":
        return Region(min(self.r0, other.r0), max(self.r1, other.r1), min(self.c0, other.c0), max(self.c1, other.c1))

    def contains(self, other: "Region") -> bool:
        return self.r0 <= other.r0 and other.r1 <= self.r1 and self.c0 <= other.c0 and other.c1 <= self.c1

    def is_empty(self) -> bool:
        return self.r0 >= self.r1 or self.c0 >= self.c1


@dataclass(frozen=True)
class Window:
    """One axis of a sliding window: kernel, stride, dilation, leading padding, input length."""

    k: int
    stride: int
    dil: int
    pad: int
    size: int  # input length along the axis

    def needs(self, a: int, b: int) -> tuple[int, int]:
        """Input [lo, hi) that output [a, b) reads, clipped to the map."""
        lo = a * self.stride - self.pad
        hi = (b - 1) * self.stride - self.pad + self.dil * (self.k - 1) + 1
        return max(0, lo), min(self.size, hi)

    def local_pad(self, a: int, lo: int) -> int:
        """Leading padding of the sub-window problem whose output starts at a and input at lo."""
        return self.pad + lo - a * self.stride


@dataclass(frozen=True)
class LocalOp:
    """How a spatially local step maps regions: `rows`/`cols` windows (None: per pixel, the input
    region is the output region). `spatial_inputs`: indices (into step.inputs) of the feature maps
    the window applies to; every other input is a per-channel constant or absent."""

    rows: Window | None
    cols: Window | None
    spatial_inputs: tuple[int, ...]

    def input_region(self, out: Region) -> Region:
        if self.rows is None:
            return out
        r0, r1 = self.rows.needs(out.r0, out.r1)
        c0, c1 = self.cols.needs(out.c0, out.c1)
        return Region(r0, r1, c0, c1)


WINDOW_KERNELS = ("tc_conv2d_s8", "tc_dwconv2d_s8", "tc_maxpool_s8", "tc_avgpool_s8")
# tc_add_s8_table's first argument is its tables, not an operand (_operands)
BINARY_KERNELS = ("tc_add_s8", "tc_sub_s8", "tc_mul_s8", "tc_add_s8_table")
TERNARY_KERNEL_PREFIX = "tc_pw_ternary_s8"  # tc_pw_ternary_s8, _expand, _lut: 1x1, stride 1, no padding


def image_hwc(program, tensor: str) -> tuple[int, int, int] | None:
    """(H, W, C) of a batch-1 NHWC feature map, else None."""
    shape = program.tensors[tensor].shape
    if len(shape) != 4 or shape[0] != 1:
        return None
    return shape[1], shape[2], shape[3]


def classify(program, step) -> LocalOp | str:
    """The LocalOp of a step, or why it is not spatially local (a short phrase for the report)."""
    k = step.kernel
    outs = step.outputs
    if len(outs) != 1 or image_hwc(program, outs[0]) is None:
        return f"{step.op} does not produce one NHWC feature map"
    op = _classify_kernel(program, step)
    if isinstance(op, LocalOp) and any(t in program.views or t in program.views.values()
                                       for t in step.inputs + outs):
        return f"{step.op} reads or writes a reshaped view of its map"
    return op


def _classify_kernel(program, step) -> LocalOp | str:
    k = step.kernel
    outs = step.outputs
    p = step.params
    if k in WINDOW_KERNELS:
        if p.out_h == 1 and p.out_w == 1 and p.k_h >= p.in_h and p.k_w >= p.in_w and p.in_h * p.in_w > 1:
            return f"{step.op} is a global reduction (its window is the whole map)"
        if image_hwc(program, step.inputs[0]) != (p.in_h, p.in_w, getattr(p, "in_c", getattr(p, "channels", 0))):
            return f"{step.op} reads a tensor that is not its NHWC input map"
        dil_h, dil_w = getattr(p, "dil_h", 1), getattr(p, "dil_w", 1)
        return LocalOp(Window(p.k_h, p.stride_h, dil_h, p.pad_top, p.in_h),
                       Window(p.k_w, p.stride_w, dil_w, p.pad_left, p.in_w), (0,))
    out_shape = program.tensors[outs[0]].shape
    if k in BINARY_KERNELS:
        shapes = binary_operand_shapes(program, step, out_shape)
        if isinstance(shapes, str):
            return f"{step.op} {shapes}"
        spatial = sorted({step.inputs.index(a.ref) for a, sh in zip(_operands(step), shapes)
                          if a.kind == "in" and tuple(sh) == tuple(out_shape)})
        return LocalOp(None, None, tuple(spatial))
    if k == "tc_lut_s8":
        return LocalOp(None, None, (0,))
    if k.startswith(TERNARY_KERNEL_PREFIX):
        h, w, _ = image_hwc(program, outs[0])
        if image_hwc(program, step.inputs[0]) != (h, w, p.in_c) or p.pixels != h * w:
            return f"{step.op} reads a tensor that is not its NHWC input map"
        return LocalOp(None, None, (0,))
    if k == "tc_concat_s8_part":
        h, w, c = image_hwc(program, outs[0])
        if p.outer != h * w or p.out_inner != c or step.args[0].kind != "in":
            return f"{step.op} concatenates along a spatial axis"
        return LocalOp(None, None, (0,))
    return f"{step.op} ({k}) is not spatially local"


def _operands(step):
    args = step.args[1:] if step.kernel == "tc_add_s8_table" else step.args
    return [a for a in args if a.kind in ("in", "const")]


def binary_operand_shapes(program, step, out_shape) -> list[tuple[int, ...]] | str:
    """Shapes of an element-wise step's two operands when the step is local: each is the whole map
    or a per-channel (or scalar) constant; else why not. The kernel's folded dims must be what
    these shapes give, so that per-patch dims can be derived the same way."""
    from ..ops.eltwise import broadcast_dims

    c = out_shape[-1]
    shapes = []
    for a in _operands(step):
        if a.kind == "in":
            shape = tuple(program.tensors[a.ref].shape)
            if shape != tuple(out_shape):
                return "broadcasts a per-image value over the map (e.g. squeeze-and-excitation)"
        else:
            shape = tuple(program.blobs[a.ref].shape)
            size = int(np.prod(shape, dtype=np.int64))
            if not (size == 1 or (size == c and shape[-1] == c)):
                return "broadcasts a constant with a spatial extent"
        shapes.append(shape)
    if len(shapes) != 2 or not any(s == tuple(out_shape) for s in shapes):
        return "has no feature-map operand"
    p = step.params
    if broadcast_dims(shapes[0], shapes[1], out_shape) != (tuple(p.in1_dims), tuple(p.in2_dims), tuple(p.out_dims)):
        return "folds its operands in an unexpected way"
    return shapes
