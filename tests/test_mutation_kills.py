"""Tests written to kill mutations that survived the whole suite (benchmarks/bench_mutation.py):
each names the mutation it kills. Python-side code: code generation literals, the planner's
alignment, graph passes, the front end's Gemm, requantization arithmetic, QDQ weights, the fully
connected layer's per-tensor multiplier. The generated C API has tests/test_c_api.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.passes import run_pipeline
from tinycc.reference.float_exec import run_float


def save_model(path: Path, nodes, inputs, outputs, inits, opset: int = 17) -> Path:
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def onnxruntime_outputs(path: Path, inputs: dict) -> list[np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, inputs)


# ---- codegen: float literals (mutation: 9 -> 6 significant digits) -------------------------------
def test_c_float_literals_round_trip_every_float32():
    from tinycc.codegen.emit import c_float

    rng = np.random.default_rng(0)
    bits = rng.integers(0, 0x7F800000, 2000, dtype=np.int64).astype(np.uint32)   # finite, positive
    values = np.concatenate([bits.view(np.float32), np.float32([1.0, 0.1, 1 / 3, 2.0**-126, 3.4e38])])
    for x in values:
        text = c_float(float(x))
        assert text.endswith("f") and any(c in text for c in ".e"), text
        assert np.float32(text[:-1]) == x, (x, text)


# ---- memory: arena offsets are aligned (mutation: ALIGN 16 -> 1) ---------------------------------
def test_every_planned_offset_is_16_byte_aligned(tmp_path):
    """Odd tensor sizes (5x3x3 = 45 bytes, ...), so that a planner without alignment packs them
    at odd offsets; and the alignment the C requires of the arena covers the planner's."""
    from tinycc.codegen.emit import arena_alignment

    rng = np.random.default_rng(1)
    w1 = numpy_helper.from_array(rng.standard_normal((5, 1, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((7, 5, 1, 1)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["a"], ["s"]),
             helper.make_node("Conv", ["s", "w2"], ["b"]),
             helper.make_node("Concat", ["b", "s"], ["y"], axis=1)]
    path = save_model(tmp_path / "odd.onnx", nodes, [("x", [1, 1, 3, 3])], [("y", [1, 12, 3, 3])], [w1, w2])
    model = CompiledModel(run_pipeline(load_graph(path)), QuantOptions(), warn=lambda m: None)
    mem = model.mem
    assert {b.size % 16 for b in mem.buffers} - {0}, "premise: some buffer sizes are not multiples of 16"
    assert all(b.align >= 16 for b in mem.buffers)
    misaligned = {name: off for name, off in mem.offsets.items() if off % 16}
    assert not misaligned
    assert arena_alignment(mem) >= max(b.align for b in mem.buffers)


# ---- passes: only a zero Pad folds into a Conv (mutation: drop the value test) -------------------
@pytest.mark.parametrize("value", [0.0, 1.5])
def test_constant_pad_before_conv_keeps_its_value(tmp_path, value):
    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), "w")
    pads = numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 1, 0], np.int64), "pads")
    cval = numpy_helper.from_array(np.array(value, np.float32), "cval")
    nodes = [helper.make_node("Pad", ["x", "pads", "cval"], ["p"]), helper.make_node("Conv", ["p", "w"], ["y"])]
    path = save_model(tmp_path / "pad.onnx", nodes, [("x", [1, 3, 5, 4])], [("y", [1, 2, 5, 4])], [w, pads, cval])
    g = run_pipeline(load_graph(path))
    assert ("Pad" in {n.op for n in g.nodes}) == (value != 0.0)   # the zero Pad is folded
    x = rng.standard_normal((1, 3, 5, 4)).astype(np.float32)
    got = run_float(g, {"x": x})[g.outputs[0]]
    np.testing.assert_allclose(got, onnxruntime_outputs(path, {"x": x})[0], rtol=1e-5, atol=1e-5)


# ---- front end: Gemm alpha and beta (mutation: alpha ignored) ------------------------------------
def test_gemm_alpha_and_beta(tmp_path):
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.standard_normal((6, 4)).astype(np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((1, 4)).astype(np.float32), "c")]
    for trans_b in (0, 1):
        b = numpy_helper.from_array(numpy_helper.to_array(inits[0]).T.copy(), "b") if trans_b else inits[0]
        nodes = [helper.make_node("Gemm", ["x", "b", "c"], ["y"], alpha=0.375, beta=-2.5, transB=trans_b)]
        path = save_model(tmp_path / f"gemm{trans_b}.onnx", nodes, [("x", [2, 6])], [("y", [2, 4])], [b, inits[1]])
        g = run_pipeline(load_graph(path))
        x = rng.standard_normal((2, 6)).astype(np.float32)
        got = run_float(g, {"x": x})[g.outputs[0]]
        np.testing.assert_allclose(got, onnxruntime_outputs(path, {"x": x})[0], rtol=1e-5, atol=1e-5)


# ---- lowering: requantization multipliers from double products (mutation: float32) ---------------
def test_requant_multipliers_use_the_double_product_of_float32_scales():
    """TFLM: effective_scale = (double)input_scale * (double)filter_scale / (double)output_scale.
    The scales below are ones where a float32 product rounds to a different multiplier."""
    from tinycc.golden.arith import quantize_multiplier
    from tinycc.quant.weights import requant_arrays

    rng = np.random.default_rng(4)
    in_scale, out_scale = np.float32(0.0123456789), np.float32(0.0987654321)
    w_scale = rng.uniform(1e-4, 1e-2, 64).astype(np.float32)
    mult, shift = requant_arrays(float(in_scale), w_scale, float(out_scale), 64)
    want = [quantize_multiplier(float(in_scale) * float(w) / float(out_scale)) for w in w_scale]
    assert [(int(m), int(s)) for m, s in zip(mult, shift)] == want
    single = [quantize_multiplier(float(np.float32(in_scale * w / out_scale))) for w in w_scale]
    assert single != want, "premise: float32 arithmetic would give other multipliers for these scales"


# ---- lowering: fully connected per-tensor collapse (mutation: compare multipliers only) ----------
def test_fc_keeps_per_channel_shifts_when_only_the_shifts_differ(tmp_path):
    """Weight rows r, 2r, 4r: per-channel scales s, 2s, 4s give one multiplier and three shifts.
    Collapsing to channel 0's (mult, shift) would halve and quarter rows 1 and 2."""
    rng = np.random.default_rng(5)
    row = rng.standard_normal(8).astype(np.float32)
    w = numpy_helper.from_array(np.stack([row, 2 * row, 4 * row]), "w")
    path = save_model(tmp_path / "fc.onnx", [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)],
                      [("x", [1, 8])], [("y", [1, 3])], [w])
    x = rng.standard_normal((16, 1, 8)).astype(np.float32)
    np.save(tmp_path / "calib.npy", x)
    g = run_pipeline(load_graph(path))
    model = CompiledModel(g, QuantOptions(calib=str(tmp_path / "calib.npy")), warn=lambda m: None)
    out = model.program.outputs[0]
    scale, _ = model.program.tensors[out].quant.scalar()
    for sample in x[:4]:
        want = run_float(g, {"x": sample})[out]
        got = model.logical(out, model.run_int8({"x": sample})[out], dequantize=True)
        np.testing.assert_allclose(got, want, atol=3 * scale)
        np.testing.assert_array_equal(model.run_c({"x": sample})[0][out], model.run_int8({"x": sample})[out])


# ---- lowering: QDQ int8 weights are used exactly as stored (mutation: clip -128 to -127) ---------
def qdq_pointwise_model(path: Path, w_q: np.ndarray, w_scale: np.ndarray, bias_q: np.ndarray,
                        x_qp: tuple[float, int], y_qp: tuple[float, int]) -> Path:
    """x -> Q/DQ -> 1x1 Conv(DQ(int8 W, per channel), DQ(int32 bias)) -> Q/DQ -> y."""
    c_out, c_in = w_q.shape[:2]
    inits = [numpy_helper.from_array(np.float32(x_qp[0]), "xs"), numpy_helper.from_array(np.int8(x_qp[1]), "xz"),
             numpy_helper.from_array(np.float32(y_qp[0]), "ys"), numpy_helper.from_array(np.int8(y_qp[1]), "yz"),
             numpy_helper.from_array(w_q, "wq"), numpy_helper.from_array(w_scale, "ws"),
             numpy_helper.from_array(np.zeros(c_out, np.int8), "wz"),
             numpy_helper.from_array(bias_q, "bq"),
             numpy_helper.from_array((np.float32(x_qp[0]) * w_scale).astype(np.float32), "bs"),
             numpy_helper.from_array(np.zeros(c_out, np.int32), "bz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
             helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["b"], axis=0),
             helper.make_node("Conv", ["xd", "w", "b"], ["c"]),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    return save_model(path, nodes, [("x", [1, c_in, 2, 2])], [("y", [1, c_out, 2, 2])], inits, opset=13)


def test_qdq_weights_of_minus_128_are_used_as_stored(tmp_path):
    """TFLM multiplies by the stored int8 weight, -128 included (the kernels' accumulator bound
    in tc_conv.h allows |w| = 128). Reference: TFLM's per-channel conv written out for a 1x1."""
    from tinycc.golden.arith import quantize_multiplier, requantize_to_int8

    rng = np.random.default_rng(6)
    c_out, c_in = 3, 8
    w_q = rng.integers(-128, 128, (c_out, c_in, 1, 1)).astype(np.int8)
    w_q[:, 0] = -128
    w_scale = np.float32([0.02, 0.035, 0.011])
    bias_q = rng.integers(-500, 500, c_out).astype(np.int32)
    x_qp, y_qp = (0.05, 3), (0.4, -7)
    path = qdq_pointwise_model(tmp_path / "qdq.onnx", w_q, w_scale, bias_q, x_qp, y_qp)
    model = CompiledModel(run_pipeline(load_graph(path)), QuantOptions(), warn=pytest.fail)
    x_int = rng.integers(-128, 128, (1, c_in, 2, 2))
    x_int[0, :, 0, 0] = 127                    # the -128 weights meet a large input
    x = ((x_int - x_qp[1]) * np.float32(x_qp[0])).astype(np.float32)
    out = model.program.outputs[0]
    got = model.run_int8({"x": x})[out]        # physical NHWC [1, 2, 2, c_out]
    acc = np.einsum("nchw,oc->nhwo", x_int - x_qp[1], w_q[:, :, 0, 0].astype(np.int64)) + bias_q
    mult, shift = zip(*(quantize_multiplier(float(np.float32(x_qp[0])) * float(s) / float(np.float32(y_qp[0])))
                        for s in w_scale))
    want = requantize_to_int8(acc, np.array(mult), np.array(shift), y_qp[1])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(model.run_c({"x": x})[0][out], got)


# ---- quantization parameters (mutations: zero point always from the max; truncated clamps) -------
@pytest.mark.parametrize("lo, hi, zp", [(-1.0, 169.0, -127), (-169.0, 1.0, 126), (-101.0, 1.0, 125)])
def test_choose_qparams_takes_the_zero_point_with_the_smaller_error(lo, hi, zp):
    """TFLite's ChooseQuantizationParams computes the zero point from the min and from the max
    and keeps the one whose error |qmin| + |rmin/scale| (or |qmax| + |rmax/scale|) is smaller.
    With a float32 scale the two candidates straddle .5 for these ranges (-126.50000004 from the
    min vs -126.49999245 from the max for the first), so the choice shows."""
    from tinycc.quant.params import choose_qparams

    assert int(choose_qparams(lo, hi).zero_point) == zp


@pytest.mark.parametrize("act, bound", [({"max": 6.0}, "max"), ({"min": -1.0}, "min"), ({"min": 0.0, "max": 6.0}, "both")])
def test_fused_clamp_bounds_round_half_away_like_tflite(act, bound):
    """CalculateActivationRangeQuantized: zero_point + TfLiteRound(bound / scale). The scale puts
    6 / scale at 100.7 and -1 / scale at -16.78: truncation would give 100 and -16."""
    from tinycc.quant.params import act_range, fixed_qparams

    qp = fixed_qparams(6.0 / 100.7, -20)
    lo, hi = act_range(act, qp)
    assert lo == (-20 - 17 if "min" in act and act["min"] < 0 else (-20 if "min" in act else -128))
    assert hi == (-20 + 101 if "max" in act else 127)


# ---- memory: an in-place layer never overwrites a graph output (mutation: drop that test) --------
def test_graph_output_read_by_an_in_place_layer_stays_intact(tmp_path):
    """conv_out is an output and the input of a Sigmoid, which may run in place (a lookup
    table): in place, it would overwrite the output the caller reads."""
    rng = np.random.default_rng(7)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["conv_out"], pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["conv_out"], ["sig"])]
    path = save_model(tmp_path / "out_inplace.onnx", nodes, [("x", [1, 3, 4, 4])],
                      [("conv_out", [1, 4, 4, 4]), ("sig", [1, 4, 4, 4])], [w])
    model = CompiledModel(run_pipeline(load_graph(path)), QuantOptions(), warn=lambda m: None)
    x = {"x": rng.standard_normal((1, 3, 4, 4)).astype(np.float32)}
    golden, c = model.run_int8(x), model.run_c(x)[0]
    for name in model.program.outputs:
        np.testing.assert_array_equal(c[name], golden[name], err_msg=name)


# ---- passes: BatchNorm folding, activation fusion, ceil-mode pooling vs onnxruntime ----------------
def assert_float_matches_onnxruntime(path: Path, shapes: dict[str, list[int]], seed: int = 0):
    rng = np.random.default_rng(seed)
    g = run_pipeline(load_graph(path))
    x = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    got = run_float(g, x)
    for name, want in zip(g.outputs, onnxruntime_outputs(path, x)):
        np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-4, err_msg=name)
    return g


def test_batchnorm_folds_into_a_conv_that_has_a_bias(tmp_path):
    rng = np.random.default_rng(8)
    c = 4
    inits = [numpy_helper.from_array(rng.standard_normal((c, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "b"),
             numpy_helper.from_array(rng.uniform(0.5, 2.0, c).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "beta"),
             numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "mean"),
             numpy_helper.from_array(rng.uniform(0.5, 2.0, c).astype(np.float32), "var")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["conv", "gamma", "beta", "mean", "var"], ["y"])]
    path = save_model(tmp_path / "bn.onnx", nodes, [("x", [1, 3, 5, 5])], [("y", [1, c, 5, 5])], inits)
    g = assert_float_matches_onnxruntime(path, {"x": [1, 3, 5, 5]})
    assert "BatchNorm" not in {n.op for n in g.nodes}   # it was folded


def test_relu_is_not_fused_into_a_conv_whose_output_is_read_elsewhere(tmp_path):
    rng = np.random.default_rng(9)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv"], ["relu"]),
             helper.make_node("Sigmoid", ["conv"], ["sig"]),
             helper.make_node("Add", ["relu", "sig"], ["y"])]
    path = save_model(tmp_path / "shared_conv.onnx", nodes, [("x", [1, 3, 5, 5])], [("y", [1, 4, 5, 5])], [w])
    assert_float_matches_onnxruntime(path, {"x": [1, 3, 5, 5]})


def test_two_clips_fuse_to_the_narrower_range(tmp_path):
    rng = np.random.default_rng(10)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")] + [
        numpy_helper.from_array(np.float32(v), n) for v, n in ((0.0, "lo1"), (6.0, "hi1"), (-1.0, "lo2"), (1.5, "hi2"))]
    nodes = [helper.make_node("Conv", ["x", "w"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["conv", "lo1", "hi1"], ["c1"]),
             helper.make_node("Clip", ["c1", "lo2", "hi2"], ["y"])]
    path = save_model(tmp_path / "clips.onnx", nodes, [("x", [1, 3, 5, 5])], [("y", [1, 4, 5, 5])], inits)
    g = assert_float_matches_onnxruntime(path, {"x": [1, 3, 5, 5]})
    assert [n.op for n in g.nodes] == ["Conv"]          # both clamps fused


def test_ceil_mode_pool_drops_a_window_that_starts_in_the_right_pad(tmp_path):
    """5 + 1 + 1 pad, kernel 2, stride 2, ceil_mode: a fourth window would start at 6, in the
    right pad; onnxruntime (and PyTorch) give 3 outputs per axis."""
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1],
                              ceil_mode=1)]
    graph = helper.make_graph(nodes, "ceil", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "ceil.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert_float_matches_onnxruntime(path, {"x": [1, 2, 5, 5]})   # shapes must match too
