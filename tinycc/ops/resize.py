"""Resize / Upsample of H and W, modes nearest and linear (bilinear).

Nearest: the source index of every output row and column is computed once, at import, by
nearest_indices (the ONNX spec as onnxruntime computes it); the float reference and the int8
kernel (tc_resize_nearest_s8, reference resize_nearest_s8) both gather with those indices.

Linear: the float reference interpolates at onnxruntime's float32 source coordinates
(`linear_coordinates`). int8 is TFLite Micro's RESIZE_BILINEAR integer arithmetic
(reference_ops::ResizeBilinearInteger): source coordinates in Q10 (1/1024 of a pixel), the four
neighbours' raw int8 values weighted by products of Q10 fractions (Q20, weights summing to 2^20),
rounded half away from zero, output quantized like the input. The Q10 coordinates are TFLM's
integer formulas where TFLM has the mode: scale_q10 = (2^10 * in + out / 2) / out (or
(2^10 * (in - 1) + (out - 1) / 2) / (out - 1) for align_corners), coordinate y * scale_q10, plus
scale_q10 / 2 - 512 for half_pixel / pytorch_half_pixel (TFLM's half_pixel_centers). Where ONNX
gives a `scales` value that is not out / in, scale_q10 = round(1024 / scale); for the modes TFLM
lacks (half_pixel_symmetric, pytorch_half_pixel with one output) the Q10 coordinate is the
float32 coordinate rounded to 1/1024. The coordinates become per-axis tables (lower index,
upper index, Q10 fraction towards the upper) computed offline (`bilinear_table`), which the
golden and tc_resize_bilinear_s8 share, so both compute the same integer expression.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence

import numpy as np

from ..golden.arith import round_half_away, trunc_div
from ..golden.checks import as_int8, require
from ..kernels import declare
from ..program import Arg
from .common import bad_input, ints, unsupported
from .registry import LayoutClass, OpDef, onnx_importer, register


# ---------------------------------------------------------------------------------------------
@register
class Resize(OpDef):
    """Nearest-neighbour resize of H and W; attrs y_index/x_index are the source indices."""

    name = "Resize"
    layout_class = LayoutClass.SPATIAL

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        oh, ow = len(node.attrs["y_index"]), len(node.attrs["x_index"])
        if node.attrs["layout"] == "NHWC":
            return [((x.shape[0], oh, ow, x.shape[3]), x.dtype)]
        return [((x.shape[0], x.shape[1], oh, ow), x.dtype)]

    def run_float(self, node, xs):
        yi, xi = np.array(node.attrs["y_index"]), np.array(node.attrs["x_index"])
        if node.attrs["layout"] == "NHWC":
            return [np.ascontiguousarray(xs[0][:, yi][:, :, xi])]
        return [np.ascontiguousarray(xs[0][:, :, yi][:, :, :, xi])]

    def to_nhwc(self, g, node):
        node.attrs["layout"] = "NHWC"

    def int8_output(self, g, node):
        return "same_as_input"

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        h, w, c = lc.hwc(x)
        yi = np.array(node.attrs["y_index"], dtype=np.int32)
        xi = np.array(node.attrs["x_index"], dtype=np.int32)
        p = make_resize_nearest_params((1, h, w, c), len(yi), len(xi))
        args = [Arg("const", lc.blob(yi, node, "yidx")), Arg("const", lc.blob(xi, node, "xidx")), Arg("in", x), Arg("out", y)]
        lc.add_step(node, "tc_resize_nearest_s8", p, args, lambda a, b, v: resize_nearest_s8(p, a, b, v))


@onnx_importer("Resize", "Upsample")
def import_resize(ctx, onode, attrs):
    dec = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
    mode = dec(attrs.get("mode", b"nearest"))
    if mode in ("linear", "bilinear"):  # Upsample-7/9 spell it "bilinear" too
        mode = "linear"
        if int(attrs.get("antialias", 0)):
            raise unsupported(onode, "antialias=1")
    elif mode != "nearest":
        raise unsupported(onode, f"mode={mode!r} (nearest and linear are supported)")
    shape = ctx.shape(onode.input[0])
    if len(shape) != 4:
        raise unsupported(onode, "input that is not 4-D")
    scales = sizes = None
    if onode.op_type == "Upsample":
        scales = attrs.get("scales")
        if scales is None:
            scales = ctx.require_const(onode, onode.input[1], "scales")
        coord, nearest = "asymmetric", "floor"
    else:
        coord = dec(attrs.get("coordinate_transformation_mode", b"half_pixel"))
        nearest = dec(attrs.get("nearest_mode", b"round_prefer_floor"))
        if len(onode.input) > 3 and onode.input[3]:
            sizes = ctx.require_const(onode, onode.input[3], "sizes")
        if len(onode.input) > 2 and onode.input[2] and ctx.const(onode.input[2]) is not None \
                and ctx.const(onode.input[2]).size:
            scales = ctx.const(onode.input[2])
        if scales is None and sizes is None:
            raise unsupported(onode, "neither scales nor sizes are constant")
        scales, sizes = _full_rank(onode, shape, attrs.get("axes"), scales, sizes)
        policy = dec(attrs.get("keep_aspect_ratio_policy", b"stretch"))
        if policy != "stretch":
            if sizes is None or policy not in ("not_larger", "not_smaller"):
                raise unsupported(onode, f"keep_aspect_ratio_policy={policy!r} without sizes")
            scales, sizes = _keep_aspect_ratio(shape, sizes, attrs.get("axes"), policy)
    if sizes is not None and scales is not None:  # keep_aspect_ratio_policy: both decided
        pass
    elif sizes is not None:
        sizes = [int(s) for s in sizes]
        scales = [None] * len(sizes)  # nearest_indices derives the scale from the sizes
    else:
        scales = [float(s) for s in scales]
        # onnxruntime: static_cast<int64_t>(float scale * input dim), a float32 product
        sizes = [int(np.floor(np.float32(d) * np.float32(s))) for d, s in zip(shape, scales)]
    if sizes[0] != shape[0] or sizes[1] != shape[1]:
        raise unsupported(onode, "resizing the batch or channel axis")
    if coord == "tf_crop_and_resize":
        raise unsupported(onode, "coordinate_transformation_mode=tf_crop_and_resize")
    if mode == "linear":
        if coord == "tf_half_pixel_for_nn":
            raise unsupported(onode, "coordinate_transformation_mode=tf_half_pixel_for_nn with mode linear")
        if coord == "align_corners" and any(sc is not None and np.float32(d) * np.float32(sc) != o
                                            for d, o, sc in zip(shape[2:], sizes[2:], scales[2:])):
            # (length_resized - 1) is the floored size for onnxruntime, in * scale for the ONNX
            # reference implementation (test_resize_downsample_scales_linear_align_corners)
            raise unsupported(onode, "align_corners with scales whose output size is not a whole number "
                                     "(onnxruntime and the ONNX reference disagree there; give sizes)")
        axes = [(shape[a], sizes[a], scales[a]) for a in (2, 3)]
        ctx.add("ResizeLinear", [onode.input[0]], [onode.output[0]], onode, layout="NCHW",
                y_coord=tuple(float(v) for v in linear_coordinates(*axes[0], coord)),
                x_coord=tuple(float(v) for v in linear_coordinates(*axes[1], coord)),
                y_q10=ints(q10_coordinates(*axes[0], coord)), x_q10=ints(q10_coordinates(*axes[1], coord)))
        return
    try:  # the golden model's index function, checked against onnxruntime (one definition)
        yi = nearest_indices(shape[2], sizes[2], scales[2], coord, nearest)
        xi = nearest_indices(shape[3], sizes[3], scales[3], coord, nearest)
    except ValueError as exc:
        raise unsupported(onode, str(exc)) from None
    ctx.add("Resize", [onode.input[0]], [onode.output[0]], onode, y_index=ints(yi), x_index=ints(xi), layout="NCHW")


def _full_rank(onode, shape, axes, scales, sizes):
    """Resize-18's `axes`: scales / sizes given for those axes only; the others keep their size."""
    if axes is None:
        return scales, sizes
    rank = len(shape)
    axes = [a + rank if a < 0 else a for a in (int(v) for v in axes)]
    if sorted(set(axes)) != sorted(axes) or any(not 0 <= a < rank for a in axes):
        raise bad_input(onode, f"axes {list(axes)} for an input of rank {rank}")
    given = sizes if sizes is not None else scales
    if len(given) != len(axes):
        raise bad_input(onode, f"{len(given)} {'sizes' if sizes is not None else 'scales'} for axes {list(axes)}")
    if sizes is not None:
        full = list(shape)
        for a, v in zip(axes, sizes):
            full[a] = int(v)
        return None, full
    full_scales = [1.0] * rank
    for a, v in zip(axes, scales):
        full_scales[a] = float(v)
    return full_scales, None


def _keep_aspect_ratio(shape, sizes, axes, policy):
    """ONNX keep_aspect_ratio_policy: one scale for the resized axes (the smallest ratio for
    not_larger, the largest for not_smaller), sizes = round(scale * in) (half away from zero)."""
    rank = len(shape)
    resized = range(rank) if axes is None else [int(a) % rank for a in axes]
    ratios = [np.float32(sizes[a]) / np.float32(shape[a]) for a in resized]
    scale = min(ratios) if policy == "not_larger" else max(ratios)
    scales, out = [1.0] * rank, list(shape)
    for a in resized:
        scales[a] = float(scale)
        out[a] = int(round_half_away(np.float32(scale) * np.float32(shape[a])))
    return scales, out


# ---- integer reference (runtime_c/tc_resize_nearest_s8.c) ---------------------------------------
@dataclass(frozen=True)
class ResizeNearestParams:
    """tc_resize_nearest_params: NHWC nearest-neighbour resize with source index tables."""

    C_STRUCT: ClassVar[str] = "tc_resize_nearest_params"
    batch: int
    in_h: int
    in_w: int
    channels: int
    out_h: int
    out_w: int

    def validate(self) -> None:
        require(min(self.batch, self.in_h, self.in_w, self.channels, self.out_h,
                    self.out_w) >= 1, "all sizes must be >= 1")

    def validate_indices(self, y_index, x_index) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(y_index, dtype=np.int64).reshape(-1)
        x = np.asarray(x_index, dtype=np.int64).reshape(-1)
        require(y.size == self.out_h and x.size == self.out_w,
                f"need {self.out_h} row and {self.out_w} column indices")
        in_range = np.all((y >= 0) & (y < self.in_h)) and np.all((x >= 0) & (x < self.in_w))
        require(bool(in_range), "source indices out of range")
        return y, x


_HALF_TIE_TOLERANCE = 1e-6
_COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                     "asymmetric", "tf_half_pixel_for_nn")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _original_coordinates(x: np.ndarray, scale: np.float32, length_resized: np.float32,
                          length_original: np.float32, mode: str) -> np.ndarray:
    f32 = np.float32
    half = f32(0.5)
    if mode == "half_pixel":
        return (x + half) / scale - half
    if mode == "pytorch_half_pixel":
        return (x + half) / scale - half if length_resized > 1 else np.zeros_like(x)
    if mode == "tf_half_pixel_for_nn":
        return (x + half) / scale
    if mode == "asymmetric":
        return x / scale
    if mode == "align_corners":
        if length_resized == 1:
            return np.zeros_like(x)
        return x * (length_original - f32(1)) / (length_resized - f32(1))
    # half_pixel_symmetric: float32 setup, final expression in double (0.5 is a double there)
    output_width = scale * length_original
    adjustment = length_resized / output_width
    center = length_original / f32(2)
    offset = center * (f32(1) - adjustment)
    orig = np.float64(offset) + (x.astype(np.float64) + 0.5) / np.float64(scale) - 0.5
    return orig.astype(np.float32)


def nearest_indices(in_size: int, out_size: int, scale: Optional[float] = None,
                    coordinate_transformation_mode: str = "half_pixel",
                    nearest_mode: str = "round_prefer_floor") -> np.ndarray:
    """Source index of every output position along one axis of an ONNX Resize (mode=nearest).

    Follows the ONNX spec as onnxruntime's CPU kernel computes it: float32 coordinates, a scale
    of exactly 1 maps every index to itself, and the round_prefer_* modes treat coordinates
    within 1e-6 of a half as ties. `scale` is the ONNX scale for the axis; None means
    out_size / in_size (the `sizes` input). tf_crop_and_resize is not supported.
    """
    require(in_size >= 1 and out_size >= 1, "sizes must be >= 1")
    require(coordinate_transformation_mode in _COORDINATE_MODES,
            f"unsupported coordinate_transformation_mode {coordinate_transformation_mode!r}")
    require(nearest_mode in _NEAREST_MODES, f"unsupported nearest_mode {nearest_mode!r}")
    f32 = np.float32
    s = f32(out_size) / f32(in_size) if scale is None else f32(scale)
    require(bool(np.isfinite(s)) and s > 0, f"scale must be positive, got {scale!r}")
    if s == f32(1):
        require(out_size == in_size, "a scale of 1 needs out_size == in_size")
        return np.arange(out_size, dtype=np.int32)
    x = np.arange(out_size, dtype=np.float32)
    orig = _original_coordinates(x, s, f32(out_size), f32(in_size),
                                 coordinate_transformation_mode)
    if nearest_mode in ("round_prefer_floor", "round_prefer_ceil"):
        # A coordinate within 1e-6 of a half is a tie: float32 noise must not decide it
        # (onnxruntime since microsoft/onnxruntime#28291; e.g. 7 -> 2 asymmetric gives 3.4999998).
        floor = np.floor(orig)
        tie = np.abs((orig - floor) - f32(0.5)) <= f32(_HALF_TIE_TOLERANCE)
        prefer = floor if nearest_mode == "round_prefer_floor" else floor + 1
        idx = np.where(tie, prefer, round_half_away(orig))
    elif nearest_mode == "floor":
        idx = np.floor(orig)
    else:
        idx = np.ceil(orig)
    return np.clip(idx, 0, in_size - 1).astype(np.int32)


def make_resize_nearest_params(in_shape_nhwc: Sequence[int], out_h: int,
                               out_w: int) -> ResizeNearestParams:
    n, h, w, c = (int(d) for d in in_shape_nhwc)
    p = ResizeNearestParams(batch=n, in_h=h, in_w=w, channels=c, out_h=int(out_h),
                            out_w=int(out_w))
    p.validate()
    return p


def resize_nearest_s8(p: ResizeNearestParams, y_index, x_index, x) -> np.ndarray:
    """Returns an array of shape (batch, out_h, out_w, channels)."""
    p.validate()
    y, xi = p.validate_indices(y_index, x_index)
    a = as_int8(x, p.batch * p.in_h * p.in_w * p.channels, "input").reshape(
        p.batch, p.in_h, p.in_w, p.channels)
    return np.ascontiguousarray(a[:, y][:, :, xi])


# ---- linear (bilinear) ----------------------------------------------------------------------------
@register
class ResizeLinear(OpDef):
    """Bilinear resize of H and W; attrs y_coord/x_coord: float32 source coordinates (float
    reference), y_q10/x_q10: the Q10 source coordinates of the int8 kernel."""

    name = "ResizeLinear"
    layout_class = LayoutClass.SPATIAL

    def infer(self, g, node):
        x = g.tensors[node.inputs[0]]
        oh, ow = len(node.attrs["y_coord"]), len(node.attrs["x_coord"])
        if node.attrs["layout"] == "NHWC":
            return [((x.shape[0], oh, ow, x.shape[3]), x.dtype)]
        return [((x.shape[0], x.shape[1], oh, ow), x.dtype)]

    def run_float(self, node, xs):
        x = xs[0].astype(np.float64)
        nhwc = node.attrs["layout"] == "NHWC"
        h_ax, w_ax = (1, 2) if nhwc else (2, 3)
        y = _interpolate_axis(x, h_ax, node.attrs["y_coord"])
        y = _interpolate_axis(y, w_ax, node.attrs["x_coord"])
        return [y.astype(np.float32)]

    def macs(self, g, node):
        return 4 * g.tensors[node.outputs[0]].size

    def to_nhwc(self, g, node):
        node.attrs["layout"] = "NHWC"

    def int8_output(self, g, node):
        return "same_as_input"  # TFLM requires it: a convex combination of raw codes

    def lower_int8(self, lc, node):
        x, y = node.inputs[0], node.outputs[0]
        h, w, c = lc.hwc(x)
        yt = bilinear_table(node.attrs["y_q10"], h)
        xt = bilinear_table(node.attrs["x_q10"], w)
        p = make_resize_bilinear_params((1, h, w, c), len(yt) // 3, len(xt) // 3)
        args = [Arg("const", lc.blob(yt, node, "ytab")), Arg("const", lc.blob(xt, node, "xtab")), Arg("in", x),
                Arg("out", y)]
        lc.add_step(node, "tc_resize_bilinear_s8", p, args, lambda a, b, v: resize_bilinear_s8(p, a, b, v),
                    macs=self.macs(lc.g, node))


def _interpolate_axis(x: np.ndarray, axis: int, coords) -> np.ndarray:
    """onnxruntime's linear interpolation along one axis: the coordinate clamped to the input,
    its floor and the next index (clamped), weights 1 - d and d."""
    size = x.shape[axis]
    c = np.clip(np.asarray(coords, np.float64), 0, size - 1)
    lo = np.minimum(np.floor(c).astype(np.int64), size - 1)
    hi = np.minimum(lo + 1, size - 1)
    d = c - lo
    shape = [1] * x.ndim
    shape[axis] = -1
    d = d.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - d) + np.take(x, hi, axis=axis) * d


def _axis_scale(in_size: int, out_size: int, scale: Optional[float]) -> np.float32:
    s = np.float32(out_size) / np.float32(in_size) if scale is None else np.float32(scale)
    require(bool(np.isfinite(s)) and s > 0, f"scale must be positive, got {scale!r}")
    return s


def linear_coordinates(in_size: int, out_size: int, scale: Optional[float], mode: str) -> np.ndarray:
    """float32 source coordinate of every output position along one axis (as onnxruntime)."""
    require(in_size >= 1 and out_size >= 1, "sizes must be >= 1")
    require(mode in _COORDINATE_MODES and mode != "tf_half_pixel_for_nn",
            f"unsupported coordinate_transformation_mode {mode!r} for linear")
    x = np.arange(out_size, dtype=np.float32)
    return _original_coordinates(x, _axis_scale(in_size, out_size, scale), np.float32(out_size),
                                 np.float32(in_size), mode)


Q10 = 1 << 10


def _c_div(n: int, d: int) -> int:
    """C integer division (truncation toward zero)."""
    q = abs(n) // abs(d)
    return q if (n >= 0) == (d > 0) else -q


def q10_coordinates(in_size: int, out_size: int, scale: Optional[float], mode: str) -> np.ndarray:
    """Source coordinates in 1/1024 pixel: TFLM's ComputeInterpolationValuesInteger where TFLM
    has the mode, the float32 coordinate rounded to Q10 where it has not (module docstring)."""
    coords = linear_coordinates(in_size, out_size, scale, mode)
    ratio = scale is None or np.float32(out_size) / np.float32(in_size) == np.float32(scale)
    y = np.arange(out_size, dtype=np.int64)
    if mode == "align_corners":
        if out_size == 1:
            return np.zeros(1, np.int64)
        step = _c_div(Q10 * (in_size - 1) + (out_size - 1) // 2, out_size - 1)
        return y * step
    step = _c_div(Q10 * in_size + out_size // 2, out_size) if ratio else int(round_half_away(Q10 / float(scale)))
    if mode == "asymmetric":
        return y * step
    if mode in ("half_pixel", "pytorch_half_pixel") and not (mode == "pytorch_half_pixel" and out_size == 1):
        return y * step + step // 2 - Q10 // 2
    return round_half_away(coords.astype(np.float64) * Q10).astype(np.int64)


def bilinear_table(q10, in_size: int) -> np.ndarray:
    """int32 [out][3]: (lower index, upper index, Q10 fraction towards the upper) per output, as
    TFLM derives them (lower = max(c / 1024, 0) truncated, upper = min(ceil, in - 1)), with
    indices clamped into the input and the fraction 0 where both indices agree (the same
    interpolated value: the weights of one pixel sum to 2^20 either way)."""
    rows = []
    for c in (int(v) for v in q10):
        lo = min(max(_c_div(c, Q10), 0), in_size - 1)
        hi = min(max(_c_div(c + Q10 - 1, Q10), 0), in_size - 1)
        frac = c - lo * Q10 if hi != lo else 0
        rows.append((lo, hi, min(max(frac, 0), Q10)))
    return np.array(rows, dtype=np.int32).reshape(-1)


@dataclass(frozen=True)
class ResizeBilinearParams:
    """tc_resize_bilinear_params: NHWC bilinear resize with (lower, upper, fraction) tables."""

    C_STRUCT: ClassVar[str] = "tc_resize_bilinear_params"
    batch: int
    in_h: int
    in_w: int
    channels: int
    out_h: int
    out_w: int

    def validate(self) -> None:
        require(min(self.batch, self.in_h, self.in_w, self.channels, self.out_h, self.out_w) >= 1,
                "all sizes must be >= 1")

    @staticmethod
    def check_table(table, count: int, size: int, name: str) -> np.ndarray:
        t = np.asarray(table, dtype=np.int64).reshape(-1)
        require(t.size == 3 * count, f"{name} needs {3 * count} entries")
        t = t.reshape(count, 3)
        ok = np.all((t[:, :2] >= 0) & (t[:, :2] < size)) and np.all((t[:, 2] >= 0) & (t[:, 2] <= Q10))
        require(bool(ok), f"{name}: indices must be in [0, {size}) and fractions in [0, 1024]")
        return t


def make_resize_bilinear_params(in_shape_nhwc: Sequence[int], out_h: int, out_w: int) -> ResizeBilinearParams:
    n, h, w, c = (int(d) for d in in_shape_nhwc)
    p = ResizeBilinearParams(batch=n, in_h=h, in_w=w, channels=c, out_h=int(out_h), out_w=int(out_w))
    p.validate()
    return p


def resize_bilinear_s8(p: ResizeBilinearParams, y_table, x_table, x) -> np.ndarray:
    """Mirror of tc_resize_bilinear_s8 (TFLM ResizeBilinearInteger): (batch, out_h, out_w, C)."""
    p.validate()
    yt = p.check_table(y_table, p.out_h, p.in_h, "y_table")
    xt = p.check_table(x_table, p.out_w, p.in_w, "x_table")
    a = as_int8(x, p.batch * p.in_h * p.in_w * p.channels, "input").reshape(
        p.batch, p.in_h, p.in_w, p.channels).astype(np.int64)
    wy = yt[:, 2].reshape(1, -1, 1, 1)
    wx = xt[:, 2].reshape(1, 1, -1, 1)
    top, bottom = a[:, yt[:, 0]], a[:, yt[:, 1]]
    acc = ((top[:, :, xt[:, 0]] * (Q10 - wx) + top[:, :, xt[:, 1]] * wx) * (Q10 - wy)
           + (bottom[:, :, xt[:, 0]] * (Q10 - wx) + bottom[:, :, xt[:, 1]] * wx) * wy)
    rounded = trunc_div(acc + np.where(acc > 0, 1 << 19, -(1 << 19)), 1 << 20)
    return np.ascontiguousarray(rounded.astype(np.int8))


# ---- C kernels (tinycc/kernels.py) ---------------------------------------------------------------
declare("tc_resize_bilinear_s8", header="tc_structural.h", params=ResizeBilinearParams, golden=resize_bilinear_s8,
        args=("const", "const", "in", "out"), sources=("tc_resize_bilinear_s8.c",))  # y table, x table, in, out
declare("tc_resize_nearest_s8", header="tc_tensor.h", params=ResizeNearestParams, golden=resize_nearest_s8,
        args=("const", "const", "in", "out"), sources=("tc_resize_nearest_s8.c",))  # y index, x index, in, out
