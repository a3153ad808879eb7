"""Structural operators of issue 14 (part B): ConvTranspose (TFLM TRANSPOSE_CONV arithmetic,
tc_conv_transpose_s8 with a planned int32 scratch plane), Resize linear (TFLM RESIZE_BILINEAR
integer arithmetic, tc_resize_bilinear_s8), DepthToSpace / SpaceToDepth (tc_transpose_s8),
Gather with constant indices (tc_gather_s8), Tile / Expand (tc_tile_s8), Gemm with transA and a
matrix bias, 1-D and 3-D MaxPool / AveragePool, and all of them on a Cortex-M4 under QEMU.

Per operator: float == onnxruntime over its attribute grid; the C kernel == its numpy mirror on
random geometries and zero points; bad parameters refused by both; ASan/UBSan; end to end, the
generated C == the int8 golden model."""
from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ctypes_kernels import TC_ARG_ERROR, TC_OK, SENTINEL, run_c, run_under_sanitizers, call
from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.kernels import lookup
from tinycc.passes import run_pipeline
from tinycc.reference.float_exec import run_float

ort = pytest.importorskip("onnxruntime")


def _ort(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def _save(path, nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, path)
    return model


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _int8_c_equals_golden(path, x_shape, seed=0, samples=2):
    """Compile with calibration data; the generated C equals the golden model on fresh inputs."""
    rng = np.random.default_rng(seed)
    calib = path.parent / "calib.npy"
    np.save(calib, rng.normal(0, 1, (16, *x_shape)).astype(np.float32))
    compiled = CompiledModel(run_pipeline(load_graph(path)), QuantOptions(calib=str(calib)), warn=lambda m: None)
    for k in range(samples):
        x = {"x": rng.normal(0, 1, x_shape).astype(np.float32)}
        golden = compiled.run_int8(x)
        c_out, _ = compiled.run_c(x)
        for name, v in golden.items():
            np.testing.assert_array_equal(c_out[name], v, err_msg=f"{name} sample {k}")
    return compiled


# ---- ConvTranspose -----------------------------------------------------------------------------
from tinycc.ops.conv_transpose import (ConvTransposeParams, conv_transpose_s8,  # noqa: E402
                                       conv_transpose_scratch_bytes)

# (in_c, out_c, group, (H, W) or (L,), attrs)
CONV_T_CASES = [
    (3, 4, 1, (5, 6), dict(kernel_shape=[3, 3], strides=[2, 2])),
    (3, 4, 1, (5, 6), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])),
    (4, 4, 4, (6, 5), dict(kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1])),          # depthwise
    (4, 6, 2, (4, 4), dict(kernel_shape=[3, 2], strides=[1, 3], dilations=[2, 1], pads=[0, 1, 2, 0])),
    (2, 3, 1, (4, 5), dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    (2, 3, 1, (4, 5), dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER")),
    (2, 3, 1, (4, 5), dict(kernel_shape=[3, 3], strides=[3, 2], output_shape=[12, 10])),
    (3, 2, 1, (7,), dict(kernel_shape=[5], strides=[2], pads=[2, 1], output_padding=[1])),       # 1-D
    (8, 8, 8, (3, 3), dict(kernel_shape=[2, 2], strides=[2, 2])),                                # upsampler
]


def _conv_t_model(path, case, seed=0, bias=True):
    in_c, out_c, group, sizes, attrs = case
    rng = np.random.default_rng(seed)
    k = attrs["kernel_shape"]
    w = numpy_helper.from_array(rng.normal(0, 0.5, (in_c, out_c // group, *k)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.3, (out_c,)).astype(np.float32), "b")
    node = helper.make_node("ConvTranspose", ["x", "w", "b"] if bias else ["x", "w"], ["y"], group=group, **attrs)
    return _save(path, [node], [_vi("x", [1, in_c, *sizes])], [_vi("y", None)], [w, b] if bias else [w])


@pytest.mark.parametrize("k", range(len(CONV_T_CASES)))
def test_conv_transpose_float_matches_onnxruntime(tmp_path, k):
    case = CONV_T_CASES[k]
    model = _conv_t_model(tmp_path / "m.onnx", case, seed=k, bias=k % 2 == 0)
    x = np.random.default_rng(k).normal(0, 1, (1, case[0], *case[3])).astype(np.float32)
    want = _ort(model, {"x": x})["y"]
    got = run_float(run_pipeline(load_graph(tmp_path / "m.onnx")), {"x": x})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv_transpose_folds_batchnorm_and_fuses_relu(tmp_path):
    """bias_axis: a following BatchNormalization folds into the grouped weights, Relu into the
    kernel's clamp; the float result stays onnxruntime's."""
    rng = np.random.default_rng(12)
    c = 12
    inits = [numpy_helper.from_array(rng.normal(size=(4, 6, 3, 3)).astype(np.float32), "w")]
    inits += [numpy_helper.from_array(v.astype(np.float32), n) for n, v in
              (("s", rng.uniform(0.5, 2, c)), ("b", rng.normal(size=c)), ("m", rng.normal(size=c)),
               ("v", rng.uniform(0.5, 2, c)))]
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["c"], strides=[2, 2], group=2),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["d"]),
             helper.make_node("Relu", ["d"], ["y"])]
    model = _save(tmp_path / "m.onnx", nodes, [_vi("x", [1, 4, 5, 5])], [_vi("y", None)], inits)
    g = run_pipeline(load_graph(tmp_path / "m.onnx"))
    assert [n.op for n in g.nodes] == ["ConvTranspose"] and g.nodes[0].attrs["act"] == {"min": 0.0, "max": None}
    x = rng.normal(size=(1, 4, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(run_float(g, {"x": x})["y"], _ort(model, {"x": x})["y"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [2, 3, 7])  # depthwise, grouped + dilated, 1-D
def test_conv_transpose_int8_c_equals_golden(tmp_path, k):
    case = CONV_T_CASES[k]
    _conv_t_model(tmp_path / "m.onnx", case, seed=k)
    compiled = _int8_c_equals_golden(tmp_path / "m.onnx", (1, case[0], *case[3]), seed=k)
    steps = [s for s in compiled.program.steps if s.op == "ConvTranspose"]
    assert [s.kernel for s in steps] == ["tc_conv_transpose_s8"]
    assert steps[0].scratch_bytes == 4 * int(np.prod(compiled.program.tensors[steps[0].outputs[0]].shape))


def _random_conv_t(seed):
    rng = np.random.default_rng(seed)
    groups = int(rng.choice([1, 1, 2, 3]))
    ig, og = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    in_h, in_w = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    k_h, k_w = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    s_h, s_w, d_h, d_w = (int(v) for v in rng.integers(1, 4, 4))
    full_h, full_w = (in_h - 1) * s_h + (k_h - 1) * d_h + 1, (in_w - 1) * s_w + (k_w - 1) * d_w + 1
    pt, pl = int(rng.integers(0, full_h)), int(rng.integers(0, full_w))
    out_h, out_w = int(rng.integers(1, full_h - pt + 3)), int(rng.integers(1, full_w - pl + 3))
    zps = rng.choice([-128, 127, 0, 9], 2)
    act = sorted(int(v) for v in rng.integers(-128, 128, 2)) if seed % 3 == 0 else [-128, 127]
    p = ConvTransposeParams(in_h=in_h, in_w=in_w, in_c=ig * groups, out_h=out_h, out_w=out_w, out_c=og * groups,
                            k_h=k_h, k_w=k_w, stride_h=s_h, stride_w=s_w, dil_h=d_h, dil_w=d_w, pad_top=pt,
                            pad_left=pl, groups=groups, in_zp=int(zps[0]), out_zp=int(zps[1]), act_min=act[0],
                            act_max=act[1])
    x = rng.integers(-128, 128, (in_h, in_w, p.in_c), dtype=np.int8)
    w = rng.integers(-127, 128, (p.out_c, k_h, k_w, ig), dtype=np.int8)
    bias = rng.integers(-5000, 5000, p.out_c).astype(np.int32)
    mult = rng.integers(1 << 30, (1 << 31) - 1, p.out_c).astype(np.int32)
    shift = rng.integers(-12, -5, p.out_c).astype(np.int32)
    return p, x, w, bias, mult, shift


@pytest.mark.parametrize("seed", range(24))
def test_conv_transpose_c_kernel_equals_golden(seed):
    p, *arrays = _random_conv_t(seed)
    golden = conv_transpose_s8(p, *arrays)
    status, out = run_c("tc_conv_transpose_s8", p, golden.size, *arrays, scratch=conv_transpose_scratch_bytes(p))
    assert status == TC_OK
    np.testing.assert_array_equal(out, golden.reshape(-1), err_msg=str(p))


def test_conv_transpose_matches_torch_integer_reference():
    """The golden accumulators are torch's conv_transpose2d of the zero-point-shifted integers
    (an independent reference of the scatter, groups and dilations included)."""
    torch = pytest.importorskip("torch")
    from tinycc.ops.conv_transpose import conv_transpose_acc

    for seed in range(12):
        p, x, w, bias, _, _ = _random_conv_t(seed)
        acc = conv_transpose_acc(p, x, w, bias)
        xt = torch.tensor((x.astype(np.float64) - p.in_zp).transpose(2, 0, 1)[None])
        ig, og = p.in_c // p.groups, p.out_c // p.groups
        wt = torch.tensor(w.astype(np.float64).reshape(p.groups, og, p.k_h, p.k_w, ig)
                          .transpose(0, 4, 1, 2, 3).reshape(p.in_c, og, p.k_h, p.k_w))
        full = torch.nn.functional.conv_transpose2d(xt, wt, torch.tensor(bias.astype(np.float64)),
                                                    stride=(p.stride_h, p.stride_w), groups=p.groups,
                                                    dilation=(p.dil_h, p.dil_w))[0].numpy().transpose(1, 2, 0)
        want = np.zeros((p.out_h, p.out_w, p.out_c))
        want += bias  # outputs beyond the full result (output_padding) hold the bias alone
        h = min(p.out_h, full.shape[0] - p.pad_top)
        w_ = min(p.out_w, full.shape[1] - p.pad_left)
        want[:h, :w_] = full[p.pad_top:p.pad_top + h, p.pad_left:p.pad_left + w_]
        np.testing.assert_array_equal(acc, want.astype(np.int64), err_msg=str(p))


def test_conv_transpose_scratch_size_function_matches_the_declaration():
    import ctypes

    from ctypes_kernels import c_struct
    from cbuild import runtime_library

    fn = runtime_library().tc_conv_transpose_s8_scratch_size
    fn.restype, fn.argtypes = ctypes.c_int32, [ctypes.c_void_p]
    for seed in range(10):
        p = _random_conv_t(seed)[0]
        assert fn(ctypes.byref(c_struct(p))) == lookup("tc_conv_transpose_s8").scratch_bytes(p)


def test_conv_transpose_bad_parameters_are_refused():
    p, x, w, bias, mult, shift = _random_conv_t(5)
    bad = [replace(p, groups=0), replace(p, pad_top=-1), replace(p, in_zp=128), replace(p, act_min=3, act_max=2),
           replace(p, stride_w=0), replace(p, out_c=p.out_c + 1) if p.groups > 1 else replace(p, k_h=0)]
    for q in bad:
        with pytest.raises(ValueError):
            conv_transpose_s8(q, x, w, bias, mult, shift)
        status, out = run_c("tc_conv_transpose_s8", q, 64, x, w, bias, mult, shift, scratch=1 << 16)
        assert status == TC_ARG_ERROR and np.all(out == SENTINEL), q
    status, out = run_c("tc_conv_transpose_s8", p, p.out_h * p.out_w * p.out_c, x, w, bias, mult,
                        np.full_like(shift, 31), scratch=conv_transpose_scratch_bytes(p))
    assert status == TC_ARG_ERROR and np.all(out == SENTINEL)




# ---- Resize linear (bilinear) -------------------------------------------------------------------
from tinycc.ops.resize import (ResizeBilinearParams, bilinear_table, make_resize_bilinear_params,  # noqa: E402
                               q10_coordinates, resize_bilinear_s8)

LINEAR_MODES = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"]
# (in H, W), sizes or scales
RESIZE_CASES = [((3, 4), (7, 9), None), ((5, 5), (10, 10), None), ((6, 7), (3, 4), None), ((4, 3), (1, 5), None),
                ((5, 6), None, (1.5, 2.0)), ((4, 4), None, (2.0, 0.5)), ((3, 5), None, (1.7, 3.0))]


def _resize_cases(coord):
    """align_corners: only scales that give whole output sizes (others are refused, see below)."""
    return [c for c in RESIZE_CASES if coord != "align_corners" or c[2] is None
            or all(float(np.float32(d) * np.float32(s)).is_integer() for d, s in zip(c[0], c[2]))]


def _resize_model(path, coord, opset=19, cases=None):
    nodes, inputs, outputs, inits = [], [], [], []
    for k, ((h, w), sizes, scales) in enumerate(_resize_cases(coord) if cases is None else cases):
        if sizes is not None:
            inits.append(helper.make_tensor(f"sizes{k}", TensorProto.INT64, [4], [1, 2, *sizes]))
            ins = [f"x{k}", "", "", f"sizes{k}"]
        else:
            inits.append(helper.make_tensor(f"scales{k}", TensorProto.FLOAT, [4], [1, 1, *scales]))
            ins = [f"x{k}", "", f"scales{k}"]
        nodes.append(helper.make_node("Resize", ins, [f"y{k}"], mode="linear", coordinate_transformation_mode=coord))
        inputs.append(_vi(f"x{k}", [1, 2, h, w]))
        outputs.append(_vi(f"y{k}", None))
    return _save(path, nodes, inputs, outputs, inits, opset)


@pytest.mark.parametrize("coord", LINEAR_MODES)
def test_resize_linear_float_matches_onnxruntime(tmp_path, coord):
    model = _resize_model(tmp_path / "m.onnx", coord)
    rng = np.random.default_rng(3)
    cases = _resize_cases(coord)
    feeds = {f"x{k}": rng.normal(0, 1, (1, 2, *hw)).astype(np.float32) for k, (hw, _, _) in enumerate(cases)}
    want = _ort(model, feeds)
    got = run_float(run_pipeline(load_graph(tmp_path / "m.onnx")), feeds)
    for k in range(len(cases)):
        assert got[f"y{k}"].shape == want[f"y{k}"].shape, (coord, cases[k])
        np.testing.assert_allclose(got[f"y{k}"], want[f"y{k}"], rtol=1e-5, atol=1e-5, err_msg=f"{coord} {k}")


def test_resize_linear_align_corners_with_a_fractional_size_is_refused(tmp_path):
    from tinycc.errors import Unsupported

    _resize_model(tmp_path / "m.onnx", "align_corners", cases=[((2, 4), None, (0.6, 0.6))])
    with pytest.raises(Unsupported, match="align_corners with scales"):
        load_graph(tmp_path / "m.onnx")


def _tflm_resize_bilinear_integer(x, out_h, out_w, align_corners, half_pixel_centers):
    """A direct transcription of TFLM reference_ops::ResizeBilinearInteger (int8, one image
    [H][W][C]), written independently of tinycc's tables."""
    in_h, in_w, ch = x.shape

    def scale_of(i, o):
        if align_corners and o > 1:
            return ((1 << 10) * (i - 1) + (o - 1) // 2) // (o - 1)
        return ((1 << 10) * i + o // 2) // o

    def interp(v, scale, size):
        scaled = v * scale + scale // 2 - (1 << 9) if half_pixel_centers else v * scale
        trunc = lambda n, d: int(n / d)  # noqa: E731  (C division; exact for these magnitudes)
        return scaled, max(trunc(scaled, 1 << 10), 0), min(trunc(scaled + (1 << 10) - 1, 1 << 10), size - 1)

    hs, ws = scale_of(in_h, out_h), scale_of(in_w, out_w)
    out = np.zeros((out_h, out_w, ch), np.int8)
    for y in range(out_h):
        iy, y0, y1 = interp(y, hs, in_h)
        for xx in range(out_w):
            ix, x0, x1 = interp(xx, ws, in_w)
            for c in range(ch):
                v = [int(x[y0, x0, c]), int(x[y0, x1, c]), int(x[y1, x0, c]), int(x[y1, x1, c])]
                fy, fx = iy - (1 << 10) * y0, ix - (1 << 10) * x0
                acc = (v[0] * ((1 << 10) - fy) * ((1 << 10) - fx) + v[1] * ((1 << 10) - fy) * fx
                       + v[2] * fy * ((1 << 10) - fx) + v[3] * fy * fx)
                r = (1 << 19) if acc > 0 else -(1 << 19)
                out[y, xx, c] = int((acc + r) / (1 << 20))
    return out


@pytest.mark.parametrize("coord", ["half_pixel", "align_corners", "asymmetric"])
def test_resize_bilinear_golden_is_tflm_integer_arithmetic(coord):
    rng = np.random.default_rng(8)
    for (h, w), (oh, ow) in [((3, 4), (7, 9)), ((5, 5), (10, 10)), ((6, 7), (3, 4)), ((2, 2), (8, 3))]:
        x = rng.integers(-128, 128, (h, w, 3), dtype=np.int8)
        yt = bilinear_table(q10_coordinates(h, oh, None, coord), h)
        xt = bilinear_table(q10_coordinates(w, ow, None, coord), w)
        p = make_resize_bilinear_params((1, h, w, 3), oh, ow)
        want = _tflm_resize_bilinear_integer(x, oh, ow, coord == "align_corners", coord == "half_pixel")
        np.testing.assert_array_equal(resize_bilinear_s8(p, yt, xt, x)[0], want, err_msg=f"{coord} {(h, w)}")


def _random_bilinear(seed):
    rng = np.random.default_rng(seed)
    n, h, w, c = 1 + seed % 2, *(int(v) for v in rng.integers(1, 7, 3))
    oh, ow = (int(v) for v in rng.integers(1, 12, 2))
    mode = LINEAR_MODES[seed % len(LINEAR_MODES)]
    yt = bilinear_table(q10_coordinates(h, oh, None, mode), h)
    xt = bilinear_table(q10_coordinates(w, ow, float(rng.uniform(0.3, 3.0)) if seed % 3 == 0 else None, mode), w)
    p = make_resize_bilinear_params((n, h, w, c), oh, len(xt) // 3)
    x = rng.integers(-128, 128, (n, h, w, c), dtype=np.int8)
    return p, yt, xt, x


@pytest.mark.parametrize("seed", range(30))
def test_resize_bilinear_c_kernel_equals_golden(seed):
    p, yt, xt, x = _random_bilinear(seed)
    golden = resize_bilinear_s8(p, yt, xt, x)
    status, out = run_c("tc_resize_bilinear_s8", p, golden.size, yt, xt, x)
    assert status == TC_OK
    np.testing.assert_array_equal(out, golden.reshape(-1))


def test_resize_bilinear_extremes_round_like_tflm():
    """Every value -128 or 127 with fractions that put the Q20 sum on exact halves."""
    x = np.array([[[-128], [127]], [[127], [-128]]], np.int8)
    table = np.array([0, 1, 512, 0, 1, 0, 1, 1, 0, 0, 1, 256, 0, 1, 1024], np.int32)
    p = make_resize_bilinear_params((1, 2, 2, 1), 5, 5)
    golden = resize_bilinear_s8(p, table, table, x)
    status, out = run_c("tc_resize_bilinear_s8", p, 25, table, table, x)
    assert status == TC_OK and np.array_equal(out, golden.reshape(-1))
    # centre: (-128 + 127 + 127 - 128) / 4 = -0.5, half away from zero: -1
    assert golden[0, 1, 1, 0] == -128 and golden[0, 0, 0, 0] == -1


def test_resize_bilinear_bad_tables_are_refused():
    p, yt, xt, x = _random_bilinear(4)
    bad_y = yt.copy()
    bad_y[0] = p.in_h            # lower index past the input
    bad_x = xt.copy()
    bad_x[2] = 1025              # fraction above 1
    for ys, xs, q in [(bad_y, xt, p), (yt, bad_x, p), (yt, xt, replace(p, channels=0))]:
        with pytest.raises(ValueError):
            resize_bilinear_s8(q, ys, xs, x)
        status, out = run_c("tc_resize_bilinear_s8", q, p.batch * p.out_h * p.out_w * p.channels, ys, xs, x)
        assert status == TC_ARG_ERROR and np.all(out == SENTINEL)
    with pytest.raises(ValueError):  # a table of the wrong length (the C trusts out_h)
        resize_bilinear_s8(p, yt[:-3], xt, x)


@pytest.mark.parametrize("coord", ["half_pixel", "align_corners"])
def test_resize_linear_int8_c_equals_golden_and_follows_float(tmp_path, coord):
    """Conv -> Resize linear x2 -> Conv: C == golden; the int8 resize of the int8 conv output is
    within one step of the float interpolation of its dequantized values."""
    rng = np.random.default_rng(11)
    w1 = numpy_helper.from_array(rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.5, (2, 4, 1, 1)).astype(np.float32), "w2")
    sc = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["c", "", "scales"], ["r"], mode="linear",
                              coordinate_transformation_mode=coord, name="up"),
             helper.make_node("Conv", ["r", "w2"], ["y"])]
    _save(tmp_path / "m.onnx", nodes, [_vi("x", [1, 3, 5, 6])], [_vi("y", None)], [w1, w2, sc])
    compiled = _int8_c_equals_golden(tmp_path / "m.onnx", (1, 3, 5, 6), seed=2)
    step = next(s for s in compiled.program.steps if s.node == "up")
    assert step.kernel == "tc_resize_bilinear_s8"
    seen = {}
    compiled.run_int8({"x": rng.normal(0, 1, (1, 3, 5, 6)).astype(np.float32)},
                      observe=lambda t, v: seen.__setitem__(t, v))
    src, dst = step.inputs[0], step.outputs[0]
    s, zp = compiled.program.tensors[src].quant.scalar()
    real = (seen[src].reshape(1, 5, 6, 4).astype(np.float64) - zp) * s
    from tinycc.ops.resize import _interpolate_axis, linear_coordinates

    want = _interpolate_axis(_interpolate_axis(real, 1, linear_coordinates(5, 10, 2.0, coord)), 2,
                             linear_coordinates(6, 12, 2.0, coord))
    got = (seen[dst].reshape(want.shape).astype(np.float64) - zp) * s
    assert np.max(np.abs(got - want)) <= 1.01 * s


# ---- DepthToSpace / SpaceToDepth, Gather, Tile / Expand, Gemm --------------------------------------
from tinycc.ops.slicing import (GatherParams, TileParams, gather_s8, make_tile_params,  # noqa: E402
                                tile_s8)


def _node(op, ins, **attrs):
    return helper.make_node(op, ins, ["y"], **attrs)


def _const(name, value, dtype=np.int64):
    return numpy_helper.from_array(np.asarray(value, dtype), name)


# (name, node, x shape, initializers)
FLOAT_CASES = [
    ("d2s_dcr", _node("DepthToSpace", ["x"], blocksize=2, mode="DCR"), [1, 8, 3, 4], []),
    ("d2s_crd", _node("DepthToSpace", ["x"], blocksize=2, mode="CRD"), [1, 8, 3, 4], []),
    ("d2s_crd3", _node("DepthToSpace", ["x"], blocksize=3, mode="CRD"), [1, 18, 2, 3], []),
    ("s2d", _node("SpaceToDepth", ["x"], blocksize=2), [1, 3, 4, 6], []),
    ("gather_axis1_neg", _node("Gather", ["x", "i"], axis=1), [1, 5, 4], [_const("i", [-1, 0, 3, 3])]),
    ("gather_scalar", _node("Gather", ["x", "i"], axis=-1), [2, 3, 4], [_const("i", -2)]),
    ("gather_2d_idx", _node("Gather", ["x", "i"], axis=0), [5, 3], [_const("i", [[0, 4], [2, -5]], np.int32)]),
    ("gather_nchw", _node("Gather", ["x", "i"], axis=1), [1, 4, 3, 3], [_const("i", [3, 1])]),
    ("tile", _node("Tile", ["x", "r"]), [1, 2, 3], [_const("r", [2, 1, 3])]),
    ("tile4", _node("Tile", ["x", "r"]), [1, 2, 3, 2], [_const("r", [1, 2, 2, 3])]),
    ("expand_rank", _node("Expand", ["x", "s"]), [3, 1], [_const("s", [2, 1, 3, 4])]),
    ("expand_1", _node("Expand", ["x", "s"]), [1, 4, 1, 1], [_const("s", [1, 4, 5, 1])]),
    ("gemm_transA_matrix_bias", _node("Gemm", ["x", "B", "C"], transA=1, alpha=0.5, beta=2.0), [4, 3],
     [_const("B", np.linspace(-1, 1, 20).reshape(4, 5), np.float32),
      _const("C", np.linspace(-2, 2, 15).reshape(3, 5), np.float32)]),
    ("gemm_row_bias", _node("Gemm", ["x", "B", "C"], transB=1), [3, 4],
     [_const("B", np.linspace(-1, 1, 20).reshape(5, 4), np.float32),
      _const("C", np.linspace(-2, 2, 3).reshape(3, 1), np.float32)]),
]


@pytest.mark.parametrize("k", range(len(FLOAT_CASES)), ids=[c[0] for c in FLOAT_CASES])
def test_structural_float_matches_onnxruntime(tmp_path, k):
    name, node, shape, inits = FLOAT_CASES[k]
    model = _save(tmp_path / "m.onnx", [node], [_vi("x", shape)], [_vi("y", None)], inits, opset=13)
    x = np.random.default_rng(k).normal(0, 1, shape).astype(np.float32)
    want = _ort(model, {"x": x})["y"]
    got = run_float(run_pipeline(load_graph(tmp_path / "m.onnx")), {"x": x})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_gemm_of_two_activations_matches_onnxruntime(tmp_path):
    node = helper.make_node("Gemm", ["x", "b", "c"], ["y"], transA=1, transB=1, alpha=0.7, beta=0.5)
    model = _save(tmp_path / "m.onnx", [node], [_vi("x", [4, 3]), _vi("b", [5, 4]), _vi("c", [3, 5])], [_vi("y", None)])
    rng = np.random.default_rng(1)
    feeds = {"x": rng.normal(size=(4, 3)).astype(np.float32), "b": rng.normal(size=(5, 4)).astype(np.float32),
             "c": rng.normal(size=(3, 5)).astype(np.float32)}
    got = run_float(run_pipeline(load_graph(tmp_path / "m.onnx")), feeds)["y"]
    np.testing.assert_allclose(got, _ort(model, feeds)["y"], rtol=1e-5, atol=1e-5)


def test_gemm_with_a_bias_that_does_not_broadcast_is_a_bad_model(tmp_path):
    from tinycc.errors import BadInput

    inits = [_const("B", np.ones((4, 5)), np.float32), _const("C", np.ones((2, 5)), np.float32)]
    _save(tmp_path / "m.onnx", [_node("Gemm", ["x", "B", "C"], transA=1)], [_vi("x", [4, 3])], [_vi("y", None)],
          inits, opset=13)
    with pytest.raises(BadInput, match=r"C of shape \[2, 5\] does not broadcast to the output \[3, 5\]"):
        load_graph(tmp_path / "m.onnx")


def _conv(name, src, dst, c_in, c_out, rng, k=1):
    w = numpy_helper.from_array(rng.normal(0, 0.5, (c_out, c_in, k, k)).astype(np.float32), name)
    return helper.make_node("Conv", [src, name], [dst], pads=[k // 2] * 4), w


def test_space_to_depth_crd_of_opset_28_matches_the_onnx_reference(tmp_path):
    """SpaceToDepth's `mode` (opset 28; onnxruntime 1.32 does not run opset 28): float against
    onnx's reference evaluator, and SpaceToDepth CRD undoes DepthToSpace CRD."""
    from onnx.reference import ReferenceEvaluator

    if onnx.defs.onnx_opset_version() < 28:
        pytest.skip(f"onnx {onnx.__version__} has no opset 28")
    nodes = [helper.make_node("DepthToSpace", ["x"], ["d"], blocksize=2, mode="CRD"),
             helper.make_node("SpaceToDepth", ["d"], ["y"], blocksize=2, mode="CRD")]
    model = _save(tmp_path / "m.onnx", nodes, [_vi("x", [1, 8, 3, 4])], [_vi("y", None)], opset=28)
    x = np.random.default_rng(2).normal(0, 1, (1, 8, 3, 4)).astype(np.float32)
    got = run_float(run_pipeline(load_graph(tmp_path / "m.onnx")), {"x": x})["y"]
    np.testing.assert_array_equal(got, ReferenceEvaluator(model).run(None, {"x": x})[0])
    np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_space_int8_c_equals_golden(tmp_path, mode):
    """Conv -> DepthToSpace -> Conv -> SpaceToDepth -> Conv: tc_transpose_s8 steps (two for CRD;
    SpaceToDepth's mode is opset 28), C == golden."""
    rng = np.random.default_rng(4)
    n1, w1 = _conv("w1", "x", "a", 3, 8, rng, 3)
    n2, w2 = _conv("w2", "b", "c", 2, 3, rng)
    n3, w3 = _conv("w3", "d", "y", 12, 4, rng)
    nodes = [n1, helper.make_node("DepthToSpace", ["a"], ["b"], blocksize=2, mode=mode, name="d2s"), n2,
             helper.make_node("SpaceToDepth", ["c"], ["d"], blocksize=2, name="s2d",
                              **({"mode": mode} if mode == "CRD" else {})), n3]
    _save(tmp_path / "m.onnx", nodes, [_vi("x", [1, 3, 4, 5])], [_vi("y", None)], [w1, w2, w3],
          opset=28 if mode == "CRD" else 17)
    compiled = _int8_c_equals_golden(tmp_path / "m.onnx", (1, 3, 4, 5))
    kernels = {n: [s.kernel for s in compiled.program.steps if s.node == n] for n in ("d2s", "s2d")}
    assert kernels == {"d2s": ["tc_transpose_s8"] * (2 if mode == "CRD" else 1),
                       "s2d": ["tc_transpose_s8"] * (2 if mode == "CRD" else 1)}
    # the int8 steps move the codes exactly as ONNX moves the values
    from tinycc.ops.shape import depth_to_space_nchw, space_to_depth_nchw

    seen = {}
    compiled.run_int8({"x": rng.normal(0, 1, (1, 3, 4, 5)).astype(np.float32)},
                      observe=lambda t, v: seen.__setitem__(t, v))
    for name, fn in (("d2s", lambda a: depth_to_space_nchw(a, 2, mode)),
                     ("s2d", lambda a: space_to_depth_nchw(a, 2, mode))):
        steps = [st for st in compiled.program.steps if st.node == name]
        src, dst = steps[0].inputs[0], steps[-1].outputs[0]
        src_shape, dst_shape = compiled.program.tensors[src].shape, compiled.program.tensors[dst].shape
        nchw = seen[src].reshape(src_shape).transpose(0, 3, 1, 2)
        np.testing.assert_array_equal(seen[dst].reshape(dst_shape), fn(nchw).transpose(0, 2, 3, 1), err_msg=name)


def test_gather_tile_expand_gemm_int8_c_equals_golden(tmp_path):
    """Tokens [1, 6, 8]: Gather of tokens (negative indices), Tile, Expand of a pooled row, Gemm
    with transA and a matrix bias; C == golden."""
    rng = np.random.default_rng(9)
    inits = [_const("i", [-1, 0, 2, 2]), _const("r", [1, 2, 1]), _const("s", [1, 8, 8]),
             _const("B", rng.normal(0, 0.5, (8, 5)), np.float32), _const("C", rng.normal(0, 0.5, (8, 5)), np.float32),
             _const("shape2", [8, 8]), _const("axes", [1])]
    nodes = [helper.make_node("Gather", ["x", "i"], ["g"], axis=1, name="gather"),
             helper.make_node("Tile", ["g", "r"], ["t"], name="tile"),
             helper.make_node("ReduceMean", ["t", "axes"], ["m"], keepdims=1),
             helper.make_node("Expand", ["m", "s"], ["e"], name="expand"),
             helper.make_node("Add", ["t", "e"], ["z"]),
             helper.make_node("Reshape", ["z", "shape2"], ["z2"]),
             helper.make_node("Gemm", ["z2", "B", "C"], ["y"], transA=1, name="gemm")]
    _save(tmp_path / "m.onnx", nodes, [_vi("x", [1, 6, 8])], [_vi("y", None)], inits, opset=18)
    compiled = _int8_c_equals_golden(tmp_path / "m.onnx", (1, 6, 8))
    kernels = {s.node: s.kernel for s in compiled.program.steps}
    assert (kernels["gather"], kernels["tile"], kernels["expand"]) == ("tc_gather_s8", "tc_tile_s8", "tc_tile_s8")


def _random_gather(seed):
    rng = np.random.default_rng(seed)
    p = GatherParams(*(int(v) for v in rng.integers(1, 6, 4)))
    idx = rng.integers(0, p.axis_len, p.count).astype(np.int32)
    x = rng.integers(-128, 128, p.outer * p.axis_len * p.inner, dtype=np.int8)
    return p, idx, x


def _random_tile(seed):
    rng = np.random.default_rng(seed)
    in_shape = [int(v) for v in rng.integers(1, 4, int(rng.integers(1, 5)))]
    rank = len(in_shape) + int(rng.integers(0, 2)) if len(in_shape) < 4 else 4
    full = [1] * (rank - len(in_shape)) + in_shape
    out = [d * int(rng.integers(1, 4)) if d > 1 or seed % 2 else d * int(rng.integers(1, 5)) for d in full]
    p = make_tile_params(in_shape, out)
    x = rng.integers(-128, 128, int(np.prod(in_shape)), dtype=np.int8)
    return p, x, in_shape, out


@pytest.mark.parametrize("seed", range(12))
def test_gather_and_tile_c_kernels_equal_golden(seed):
    p, idx, x = _random_gather(seed)
    golden = gather_s8(p, idx, x)
    status, out = run_c("tc_gather_s8", p, golden.size, idx, x)
    assert status == TC_OK and np.array_equal(out, golden.reshape(-1))
    p, x, in_shape, out_shape = _random_tile(seed)
    golden = tile_s8(p, x)
    want = np.tile(x.reshape([1] * (len(out_shape) - len(in_shape)) + in_shape),
                   [o // d for o, d in zip(out_shape, [1] * (len(out_shape) - len(in_shape)) + in_shape)])
    assert np.array_equal(golden.reshape(-1), want.reshape(-1))  # the folded 4-D form is numpy's tile
    status, out = run_c("tc_tile_s8", p, golden.size, x)
    assert status == TC_OK and np.array_equal(out, golden.reshape(-1))


def test_gather_and_tile_bad_parameters_are_refused():
    p, idx, x = _random_gather(3)
    for q, i in [(replace(p, count=0), idx), (p, np.full_like(idx, p.axis_len)), (p, np.full_like(idx, -1))]:
        with pytest.raises(ValueError):
            gather_s8(q, i, x)
        status, out = run_c("tc_gather_s8", q, 64, i, x)
        assert status == TC_ARG_ERROR and np.all(out == SENTINEL)
    t = TileParams(in_dims=(1, 1, 2, 3), out_dims=(1, 1, 4, 8))
    with pytest.raises(ValueError):
        tile_s8(t, np.zeros(6, np.int8))
    status, out = run_c("tc_tile_s8", t, 32, np.zeros(6, np.int8))
    assert status == TC_ARG_ERROR and np.all(out == SENTINEL)


# ---- 1-D and 3-D MaxPool / AveragePool ------------------------------------------------------------
# (op, input shape, attrs)
POOL_CASES = [
    ("MaxPool", [1, 3, 11], dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    ("AveragePool", [1, 3, 11], dict(kernel_shape=[4], strides=[3], pads=[1, 2], ceil_mode=1)),
    ("AveragePool", [1, 2, 9], dict(kernel_shape=[3], pads=[1, 1], count_include_pad=1)),
    ("MaxPool", [1, 2, 10], dict(kernel_shape=[3], dilations=[2], pads=[2, 1])),
    ("AveragePool", [1, 2, 10], dict(kernel_shape=[3], strides=[2], auto_pad="SAME_UPPER")),
    ("MaxPool", [1, 2, 5, 6, 7], dict(kernel_shape=[2, 3, 2], strides=[2, 2, 1], pads=[1, 0, 1, 0, 1, 1])),
    ("AveragePool", [1, 2, 5, 6, 7], dict(kernel_shape=[3, 2, 3], strides=[2, 2, 2], pads=[1, 1, 0, 1, 0, 1])),
    ("AveragePool", [1, 2, 4, 5, 6], dict(kernel_shape=[2, 2, 3], strides=[2, 2, 2], pads=[1, 1, 1, 0, 1, 1],
                                          count_include_pad=1)),
    ("AveragePool", [1, 2, 6, 5, 5], dict(kernel_shape=[3, 3, 3], strides=[2, 2, 2], ceil_mode=1)),
    ("MaxPool", [1, 3, 6, 6, 6], dict(kernel_shape=[2, 2, 2], strides=[2, 2, 2], ceil_mode=1, dilations=[1, 2, 1])),
]


def _pool_model(path, k):
    op, shape, attrs = POOL_CASES[k]
    return _save(path, [helper.make_node(op, ["x"], ["y"], name="pool", **attrs)], [_vi("x", shape)],
                 [_vi("y", None)], opset=19)


@pytest.mark.parametrize("k", range(len(POOL_CASES)))
def test_pool_1d_3d_float_matches_onnxruntime(tmp_path, k):
    model = _pool_model(tmp_path / "m.onnx", k)
    x = np.random.default_rng(k).normal(0, 1, POOL_CASES[k][1]).astype(np.float32)
    want = _ort(model, {"x": x})["y"]
    got = run_float(run_pipeline(load_graph(tmp_path / "m.onnx")), {"x": x})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [1, 5, 6])
def test_pool_1d_3d_int8_c_equals_golden(tmp_path, k):
    """Pools of the model input (int8: tc_maxpool_s8 / tc_avgpool_s8 on the 2-D views); a 3-D
    max pool's codes are the maxima of the input codes over each box."""
    _pool_model(tmp_path / "m.onnx", k)
    compiled = _int8_c_equals_golden(tmp_path / "m.onnx", tuple(POOL_CASES[k][1]), seed=k)
    kernels = {s.kernel for s in compiled.program.steps}
    assert kernels & {"tc_maxpool_s8", "tc_avgpool_s8"}
    if k == 5:  # exact: max of maxima
        rng = np.random.default_rng(1)
        x = rng.normal(0, 1, POOL_CASES[k][1]).astype(np.float32)
        codes = compiled.quantize_inputs({"x": x})["x"]
        y = compiled.run_int8({"x": x})["y"]
        model = _pool_model(tmp_path / "m2.onnx", k)
        want = _ort(model, {"x": codes.reshape(POOL_CASES[k][1]).astype(np.float32)})["y"]
        np.testing.assert_array_equal(y.reshape(want.shape), want.astype(np.int8))


def _sanitizer_cases():
    cases = []
    for seed in (0, 3, 7, 11):
        p, *arrays = _random_conv_t(seed)
        cases.append(("tc_conv_transpose_s8", p, arrays, conv_transpose_scratch_bytes(p), conv_transpose_s8(p, *arrays)))
    for seed in (1, 2, 6):
        p, yt, xt, x = _random_bilinear(seed)
        cases.append(("tc_resize_bilinear_s8", p, [yt, xt, x], 0, resize_bilinear_s8(p, yt, xt, x)))
    for seed in (1, 4):
        p, idx, x = _random_gather(seed)
        cases.append(("tc_gather_s8", p, [idx, x], 0, gather_s8(p, idx, x)))
        p, x, _, _ = _random_tile(seed)
        cases.append(("tc_tile_s8", p, [x], 0, tile_s8(p, x)))
    return cases


def test_kernels_under_asan_ubsan(tmp_path):
    run_under_sanitizers(tmp_path, _sanitizer_cases())


# ---- every kernel of this file and tc_batch_matmul_s8 on a Cortex-M4 under QEMU --------------------
def _qemu_problem():
    from tinycc.sim.qemu import missing_tools

    return missing_tools(run=True)


def _structural_model(path):
    """One image model through ConvTranspose, bilinear Resize, DepthToSpace (CRD) / SpaceToDepth,
    tokens with MatMul of two activations and Softmax over a non-innermost axis, Gather, Tile and
    a 1-D MaxPool: the kernels of issue 14 part B, each on real calibrated data."""
    rng = np.random.default_rng(21)
    n1, w1 = _conv("w1", "x", "a", 3, 8, rng, 3)
    wt = numpy_helper.from_array(rng.normal(0, 0.3, (8, 4, 4, 4)).astype(np.float32), "wt")
    inits = [w1, wt, helper.make_tensor("sc", TensorProto.FLOAT, [4], [1, 1, 0.5, 0.5]),
             _const("tok", [1, 8, 64]), _const("i", [0, -1, 5]), _const("r", [1, 2, 1])]
    n = helper.make_node
    nodes = [n1, n("ConvTranspose", ["a", "wt"], ["b"], strides=[2, 2], pads=[1, 1, 1, 1]),
             n("Resize", ["b", "", "sc"], ["c"], mode="linear"),
             n("DepthToSpace", ["a"], ["d"], blocksize=2, mode="CRD"), n("SpaceToDepth", ["d"], ["e"], blocksize=2),
             n("Reshape", ["e", "tok"], ["t0"]), n("Transpose", ["t0"], ["t"], perm=[0, 2, 1]),
             n("MatMul", ["t", "t0"], ["s0"]), n("Softmax", ["s0"], ["s"], axis=1), n("MatMul", ["s", "t"], ["o"]),
             n("Gather", ["o", "i"], ["g"], axis=1), n("Tile", ["g", "r"], ["gt"]),
             n("MaxPool", ["gt"], ["p"], kernel_shape=[3])]
    return _save(path, nodes, [_vi("x", [1, 3, 8, 8])], [_vi("c", None), _vi("o", None), _vi("p", None)], inits)


@pytest.mark.skipif(_qemu_problem() is not None, reason=f"Cortex-M toolchain or QEMU unavailable: {_qemu_problem()}")
def test_structural_kernels_on_cortex_m4_equal_golden_and_host(tmp_path):
    _structural_model(tmp_path / "m.onnx")
    compiled = _int8_c_equals_golden(tmp_path / "m.onnx", (1, 3, 8, 8), seed=3, samples=1)
    kernels = {s.kernel for s in compiled.program.steps}
    assert {"tc_conv_transpose_s8", "tc_resize_bilinear_s8", "tc_batch_matmul_s8", "tc_gather_s8",
            "tc_tile_s8", "tc_transpose_s8", "tc_softmax_s8", "tc_maxpool_s8"} <= kernels
    x = {"x": np.random.default_rng(5).normal(0, 1, (1, 3, 8, 8)).astype(np.float32)}
    golden = compiled.run_int8(x)
    target, _ = compiled.run_qemu(x, "cortex-m4")
    host, _ = compiled.run_c(x)
    for name in compiled.program.outputs:
        np.testing.assert_array_equal(target[name], golden[name], err_msg=name)
        np.testing.assert_array_equal(host[name], golden[name], err_msg=name)


def test_onnxruntime_quantized_conv_transpose_keeps_its_per_channel_weights(tmp_path):
    """onnxruntime's quantize_static (QDQ, per-channel weights along ONNX axis 1 = output
    channels of ConvTranspose): tinycc takes the stored integers (the axis follows the weight
    regrouping), C == golden, and the int8 output stays near float (30 dB)."""
    torch = pytest.importorskip("torch")
    from conftest import quantize_static_qdq
    from tinycc.engines import run_compiled

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.t = torch.nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)

        def forward(self, x):
            return self.t(torch.relu(self.c(x)))

    torch.manual_seed(0)
    data = np.random.default_rng(0).normal(size=(8, 1, 3, 6, 6)).astype(np.float32)
    path = quantize_static_qdq(Net().eval(), data, tmp_path)
    g = run_pipeline(load_graph(path))
    compiled = CompiledModel(g, QuantOptions(), warn=lambda m: None)
    assert "tc_conv_transpose_s8" in {s.kernel for s in compiled.program.steps}
    x = {g.inputs[0]: data[1]}
    golden = compiled.run_int8(x)
    c_out, _ = compiled.run_c(x)
    for name, v in golden.items():
        np.testing.assert_array_equal(c_out[name], v)
    ref = ort.InferenceSession(str(tmp_path / "float.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": data[1]})[0]
    deq = run_compiled(compiled, [x], "int8", dequantize=True)[0][g.outputs[0]]
    assert 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - deq) ** 2)) > 30


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("variant", ["axes_3_2_scales", "axes_2_3_sizes", "not_larger", "not_smaller"])
def test_resize_axes_and_keep_aspect_ratio_match_onnxruntime(tmp_path, mode, variant):
    """Resize-18's axes attribute and keep_aspect_ratio_policy (sizes for some axes only; one
    scale for all resized axes)."""
    attrs = dict(mode=mode)
    if variant == "axes_3_2_scales":
        inits, ins, attrs["axes"] = [helper.make_tensor("sc", TensorProto.FLOAT, [2], [1.5, 2.0])], ["x", "", "sc"], [3, 2]
    else:
        inits, ins = [_const("sz", [7, 9])], ["x", "", "", "sz"]
        attrs["axes"] = [2, 3]
        if variant != "axes_2_3_sizes":
            attrs["keep_aspect_ratio_policy"] = variant
    model = _save(tmp_path / "m.onnx", [helper.make_node("Resize", ins, ["y"], **attrs)], [_vi("x", [1, 2, 4, 5])],
                  [_vi("y", None)], inits, opset=19)
    x = np.random.default_rng(6).normal(0, 1, (1, 2, 4, 5)).astype(np.float32)
    want = _ort(model, {"x": x})["y"]
    got = run_float(run_pipeline(load_graph(tmp_path / "m.onnx")), {"x": x})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_gather_tile_expand_stay_nhwc_between_convs(tmp_path):
    """On a 4-D image between convolutions, Gather of channels (negative index), Tile and Expand
    run in NHWC with remapped axes (no transposes): float == onnxruntime, C == golden."""
    rng = np.random.default_rng(13)
    n1, w1 = _conv("w1", "x", "a", 3, 6, rng, 3)
    n2, w2 = _conv("w2", "g", "y", 3, 4, rng)
    nodes = [n1, helper.make_node("Gather", ["a", "i"], ["g0"], axis=1), helper.make_node("Tile", ["g0", "r"], ["g1"]),
             helper.make_node("Expand", ["g1", "s"], ["g"]), n2]
    inits = [w1, w2, _const("i", [5, -1, 0]), _const("r", [1, 1, 1, 2]), _const("s", [1, 3, 5, 8])]
    model = _save(tmp_path / "m.onnx", nodes, [_vi("x", [1, 3, 5, 4])], [_vi("y", None)], inits)
    x = rng.normal(0, 1, (1, 3, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(run_float(run_pipeline(load_graph(tmp_path / "m.onnx")), {"x": x})["y"],
                               _ort(model, {"x": x})["y"], rtol=1e-5, atol=1e-5)
    compiled = _int8_c_equals_golden(tmp_path / "m.onnx", (1, 3, 5, 4))
    assert [s.kernel for s in compiled.program.steps] == ["tc_conv2d_s8", "tc_gather_s8", "tc_tile_s8", "tc_tile_s8",
                                                          "tc_conv2d_s8"]
