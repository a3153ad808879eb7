"""Structural operators of issue 14 (part B): ConvTranspose (TFLM TRANSPOSE_CONV arithmetic,
tc_conv_transpose_s8 with a planned int32 scratch plane), ...

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


@pytest.mark.parametrize("k", [1, 2, 3, 7])
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


@pytest.mark.parametrize("seed", range(40))
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


def _sanitizer_cases():
    cases = []
    for seed in (0, 3, 7, 11):
        p, *arrays = _random_conv_t(seed)
        cases.append(("tc_conv_transpose_s8", p, arrays, conv_transpose_scratch_bytes(p), conv_transpose_s8(p, *arrays)))
    return cases


def test_kernels_under_asan_ubsan(tmp_path):
    run_under_sanitizers(tmp_path, _sanitizer_cases())
