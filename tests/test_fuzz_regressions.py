"""One small hand-made model per class of bug the model fuzzer (tests/fuzz) found.

Broken models must be refused with exit 2 and a message naming what is wrong (never exit 70);
valid but unusual ones must compile, and their C must build with -Werror (and agree with the
golden model where it matters).
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from broken_models import (ceil_pool_model, conv1d_bn_model, conv_model, gemm_softmax_model, qdq_conv_model,
                           reshape_only_model, wrap_graph)
from fuzz.fuzz_models import build_c_project
from tinycc import cli
from tinycc.errors import EXIT_BAD_INPUT, EXIT_OK

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) to build the generated C")


def _compile(model: onnx.ModelProto, tmp_path, capsys, *options: str, name: str = "model") -> tuple[int, str]:
    path = tmp_path / f"{name}.onnx"
    onnx.save_model(model, str(path))
    code = cli.main(["compile", str(path), "-o", str(tmp_path / "out"), "--calib-samples", "2", *options])
    return code, capsys.readouterr().err


def _refused(model, tmp_path, capsys, *parts: str, options=()) -> None:
    code, err = _compile(model, tmp_path, capsys, *options)
    assert code == EXIT_BAD_INPUT, err
    assert "Traceback" not in err and "internal error" not in err, err
    for part in parts:
        assert part in err, f"{part!r} not in {err!r}"


def _compiles_and_builds(model, tmp_path, capsys, *options: str):
    code, err = _compile(model, tmp_path, capsys, *options)
    assert code == EXIT_OK, err
    if shutil.which("cc"):
        assert build_c_project(tmp_path / "out") is None
    return tmp_path / "out"


def _with_attribute(model: onnx.ModelProto, node_index: int, **attrs) -> onnx.ModelProto:
    node = model.graph.node[node_index]
    kept = [a for a in node.attribute if a.name not in attrs]
    del node.attribute[:]
    node.attribute.extend(kept + [helper.make_attribute(k, v) for k, v in attrs.items()])
    return model


def _initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def _replace(model: onnx.ModelProto, name: str, array: np.ndarray) -> onnx.ModelProto:
    _initializer(model, name).CopyFrom(numpy_helper.from_array(array, name))
    return model


# ---------------------------------------------------------------------------------------------
# Stored tensors that do not match their dims / element type (load.py)


def _raw_padded():
    model = conv_model()
    _initializer(model, "w").raw_data += b"\x00"
    return model


def _float_data_short():
    model = conv_model()
    tensor = _initializer(model, "b")
    tensor.ClearField("raw_data")
    tensor.float_data.extend([1.0, 2.0, 3.0])
    return model


def _unknown_data_type():
    model = conv_model()
    _initializer(model, "w").data_type = 999
    return model


def _dims_without_data_change():
    model = conv_model()
    tensor = _initializer(model, "w")
    del tensor.dims[:]
    tensor.dims.extend([4, 3, 3, 4])
    return model


@pytest.mark.parametrize("build, parts", [
    (_raw_padded, ["initializer 'w'", "433 bytes of raw data (432 expected)"]),
    (_float_data_short, ["initializer 'b'", "3 values in float_data"]),
    (_unknown_data_type, ["initializer 'w'", "unknown element type #999"]),
    (_dims_without_data_change, ["initializer 'w'", "[4, 3, 3, 4]"]),
], ids=["raw_padded", "float_data_short", "unknown_data_type", "dims_changed"])
def test_tensor_data_must_match_dims_and_type(tmp_path, capsys, build, parts):
    _refused(build(), tmp_path, capsys, *parts)


# ---------------------------------------------------------------------------------------------
# Attribute values (load.py): int32, finite, UTF-8


@pytest.mark.parametrize("attr, value, parts", [
    ("strides", [2**63 - 1, 1], ["'conv0'", "'strides'", "9223372036854775807", "32-bit"]),
    ("dilations", [2**62, 1], ["'conv0'", "'dilations'", "4611686018427387904"]),
    ("group", -(2**40), ["'conv0'", "'group'"]),
    ("auto_pad", b"\xff\xfe", ["'conv0'", "'auto_pad'", "UTF-8"]),
])
def test_attribute_values_beyond_int32_or_not_text_are_refused(tmp_path, capsys, attr, value, parts):
    _refused(_with_attribute(conv_model(), 0, **{attr: value}), tmp_path, capsys, *parts)


def test_non_finite_float_attribute_is_refused(tmp_path, capsys):
    model = _with_attribute(conv1d_bn_model(), 1, epsilon=float("nan"))
    _refused(model, tmp_path, capsys, "'bn0'", "'epsilon'", "not a finite number")


# ---------------------------------------------------------------------------------------------
# Per-op consistency (importers)


@pytest.mark.parametrize("mutate, parts", [
    (lambda m: _replace(m, "b", np.zeros(5, np.float32)), ["'conv0'", "bias of shape [5] for 4 output channels"]),
    (lambda m: _with_attribute(m, 0, group=0), ["'conv0'", "group=0"]),
    (lambda m: _with_attribute(m, 0, strides=[0, 1]), ["conv0", "strides"]),  # ONNX shape inference refuses
    (lambda m: _with_attribute(m, 0, dilations=[1]), ["conv0", "dilations"]),
    (lambda m: _with_attribute(m, 0, auto_pad="VALID"), ["'conv0'", "auto_pad='VALID'"]),
], ids=["bias_length", "group_0", "stride_0", "dilations_rank", "pads_and_auto_pad"])
def test_conv_attributes_and_bias_are_checked(tmp_path, capsys, mutate, parts):
    _refused(mutate(conv_model()), tmp_path, capsys, *parts)


@pytest.mark.parametrize("name, array, parts", [
    ("mean", np.zeros(3, np.float32), ["'bn0'", "mean of shape [3] for 4 channels"]),
    ("gamma", np.ones((4, 1), np.float32), ["'bn0'", "scale of shape [4, 1]"]),
    ("var", np.array([1, -2, 1, 1], np.float32), ["'bn0'", "var + epsilon"]),
])
def test_batchnorm_parameters_are_checked(tmp_path, capsys, name, array, parts):
    _refused(_replace(conv1d_bn_model(), name, array), tmp_path, capsys, *parts)


def test_pool_ceil_mode_must_be_0_or_1(tmp_path, capsys):
    _refused(_with_attribute(ceil_pool_model(), 0, ceil_mode=64), tmp_path, capsys, "'pool0'", "ceil_mode=64")


def test_clip_with_nan_bound_is_refused(tmp_path, capsys):
    graph = helper.make_graph(
        [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip0")], "clip",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(np.nan, np.float32), "lo"), numpy_helper.from_array(np.array(6.0, np.float32), "hi")])
    _refused(wrap_graph(graph), tmp_path, capsys, "'clip0'", "NaN")


def test_non_finite_weights_are_refused(tmp_path, capsys):
    w = np.ones((4, 3, 3, 3), np.float32)
    w[1, 0, 0, 0] = np.inf
    _refused(_replace(conv_model(), "w", w), tmp_path, capsys, "'conv0'", "'w'", "NaN or infinite")


def test_non_finite_calibration_data_is_refused(tmp_path, capsys):
    samples = np.zeros((2, 1, 3, 8, 8), np.float32)
    samples[1, 0, 0, 0, 0] = np.nan
    np.save(tmp_path / "calib.npy", samples)
    _refused(conv_model(), tmp_path, capsys, "calib.npy", "NaN", options=("--calib", str(tmp_path / "calib.npy")))


# ---------------------------------------------------------------------------------------------
# QDQ parameters (qdq.py)


def _qdq_node(model, name):
    return next(n for n in model.graph.node if n.name == name)


def test_qdq_axis_out_of_range_is_refused(tmp_path, capsys):
    model = qdq_conv_model()
    _with_attribute(model, [n.name for n in model.graph.node].index("dq_w"), axis=4)
    _refused(model, tmp_path, capsys, "'dq_w'", "axis 4 is out of range")


def test_qdq_scale_length_must_match_channels(tmp_path, capsys):
    model = _replace(qdq_conv_model(), "w_s", np.full(5, 0.01, np.float32))
    _replace(model, "w_zp", np.zeros(5, np.int8))
    _refused(model, tmp_path, capsys, "'dq_w'", "5 scales for the 4 channels")


def test_qdq_zero_point_shape_must_match_scale(tmp_path, capsys):
    model = _replace(qdq_conv_model(), "w_zp", np.zeros(3, np.int8))
    _refused(model, tmp_path, capsys, "'dq_w'", "zero point (shape [3])")


@needs_cc
def test_qdq_seed_model_compiles(tmp_path, capsys):
    """The fuzzer's hand-made QDQ seed is a valid pre-quantized model."""
    _compiles_and_builds(qdq_conv_model(), tmp_path, capsys)


# ---------------------------------------------------------------------------------------------
# Valid models that used to fail


@needs_cc
def test_ceil_mode_pool_whose_last_window_starts_in_padding(tmp_path, capsys):
    """ONNX shape inference says 4x4; onnxruntime, PyTorch and tinycc drop the window that would
    start in the end padding: 3x3. The compile must not abort on the disagreement."""
    ort = pytest.importorskip("onnxruntime")
    model = ceil_pool_model(size=5, kernel=2, stride=2, pads=(1, 1, 1, 1))
    _compiles_and_builds(model, tmp_path, capsys)
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["run", str(tmp_path / "model.onnx"), "--input", str(tmp_path / "x.npy"),
                     "-o", str(tmp_path / "y.npy")]) == EXIT_OK
    expected = ort.InferenceSession(str(tmp_path / "model.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-6)


@needs_cc
def test_model_without_any_kernel_step_builds(tmp_path, capsys):
    """Reshape + Identity only: the program has no kernel call, its C must still build."""
    _compiles_and_builds(reshape_only_model(), tmp_path, capsys)


def _run_engines(tmp_path, capsys, x: np.ndarray) -> dict[str, np.ndarray]:
    np.save(tmp_path / "x.npy", x)
    out = {}
    for engine in ("int8", "c"):
        assert cli.main(["run", str(tmp_path / "model.onnx"), "--input", str(tmp_path / "x.npy"), "--engine", engine,
                         "--calib-samples", "2", "-o", str(tmp_path / f"{engine}.npy")]) == EXIT_OK
        out[engine] = np.load(tmp_path / f"{engine}.npy")
    capsys.readouterr()
    return out


@needs_cc
def test_all_zero_gemm_before_softmax_compiles_and_is_uniform(tmp_path, capsys):
    """Constant-zero logits get the smallest calibrated range, whose scale softmax must accept
    (TFLM needs in_scale * 2^26 > 1): the output is the uniform distribution, 1/4 = -64 at
    (1/256, -128), in the golden model and in C."""
    model = _replace(gemm_softmax_model(np.zeros((4, 8), np.float32)), "b", np.zeros(4, np.float32))
    _compiles_and_builds(model, tmp_path, capsys)
    out = _run_engines(tmp_path, capsys, np.random.default_rng(1).standard_normal((1, 8)).astype(np.float32))
    assert out["int8"].tolist() == [[-64, -64, -64, -64]]
    np.testing.assert_array_equal(out["c"], out["int8"])


@needs_cc
def test_huge_weights_saturate_instead_of_failing(tmp_path, capsys):
    """Weights of 1e30 give requantization multipliers far above 2^30 for the placeholder ranges
    of the pre-calibration dry run: they saturate (TFLite's single-rounding rule) instead of
    ending in an internal error, and the model compiles; golden and C agree."""
    w = np.full((4, 3, 3, 3), 1e30, np.float32)
    w[1] = -1e30
    _compiles_and_builds(_replace(conv_model(), "w", w), tmp_path, capsys)
    out = _run_engines(tmp_path, capsys, np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32))
    np.testing.assert_array_equal(out["c"], out["int8"])


def test_saturated_multiplier_is_exact():
    """Conv/FC requantization saturates multipliers of 2^30 and more: exact, since every non-zero
    accumulator saturates int8 anyway. The general QuantizeMultiplier still refuses them."""
    from tinycc.golden.arith import MultiplierRangeError, quantize_multiplier, requantize_to_int8
    from tinycc.quant.weights import requant_arrays

    mult, shift = requant_arrays(1.0, np.array([1e20, 0.5], np.float32), 1e-10, 2)
    assert (int(mult[0]), int(shift[0])) == (2**31 - 1, 30)
    acc = np.array([0, 1, -1, 5000, -(2**31)], np.int64)
    assert requantize_to_int8(acc, mult[0], shift[0], out_zp=3).tolist() == [3, 127, -128, 127, -128]
    with pytest.raises(MultiplierRangeError):
        quantize_multiplier(1e20)


def test_initializer_that_is_also_a_graph_output(tmp_path, capsys):
    """It used to break the IR (the conv read the weight after the node that outputs it); now the
    constant output is refused cleanly by int8 lowering, naming it."""
    model = conv_model()
    model.graph.output.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, [4]))
    _refused(model, tmp_path, capsys, "'b'")


@needs_cc
def test_rank_0_input_with_calibration_file(tmp_path, capsys):
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["m"], name="mul0"), helper.make_node("Relu", ["m"], ["y"], name="relu0")],
        "scalar", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [numpy_helper.from_array(np.array(2.0, np.float32), "k")])
    np.save(tmp_path / "calib.npy", np.array([0.5, -1.0, 2.0], np.float32))
    _compiles_and_builds(wrap_graph(graph), tmp_path, capsys, "--calib", str(tmp_path / "calib.npy"))


def test_reshape_target_shape_must_be_1d(tmp_path, capsys):
    model = reshape_only_model()
    _replace(model, "shape", np.array([[1], [24]], np.int64))
    _refused(model, tmp_path, capsys, "'flat0'", "must be 1-D")


def test_shapes_onnx_could_not_check_are_a_model_error(tmp_path, capsys):
    """A ceil-mode pool whose last window would start in the padding is 3x3 for onnxruntime and
    tinycc, 4x4 for ONNX shape inference: concatenated with a 4x4 tensor, the model is broken
    (onnxruntime fails too), which is exit 2 naming the node, not a tinycc internal error."""
    graph = helper.make_graph(
        [helper.make_node("MaxPool", ["x"], ["p"], name="pool0", kernel_shape=[2, 2], strides=[2, 2],
                          pads=[1, 1, 1, 1], ceil_mode=1),
         helper.make_node("MaxPool", ["x"], ["q"], name="pool1", kernel_shape=[2, 2]),
         helper.make_node("Concat", ["p", "q"], ["y"], name="concat0", axis=1)],
        "ceil_concat", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    _refused(wrap_graph(graph), tmp_path, capsys, "'concat0'", "do not fit together", "'p'")


def test_pool_pads_must_be_smaller_than_the_kernel(tmp_path, capsys):
    model = _with_attribute(ceil_pool_model(size=3, kernel=1, stride=1), 0, pads=[0, 0, 1, 1])
    _refused(model, tmp_path, capsys, "'pool0'", "smaller than the kernel")


def test_extreme_qdq_scales_are_refused_naming_the_node(tmp_path, capsys):
    """A pre-quantized average whose scales need a multiplier beyond int32 fixed point: exit 2
    naming the node (it used to be an internal error)."""
    _refused(_replace(qdq_conv_model(), "s_gap", np.array(1e-30, np.float32)), tmp_path, capsys,
             "'gap0'", "requantization multiplier")


def test_reduce_keepdims_must_be_0_or_1(tmp_path, capsys):
    """ONNX shape inference reads keepdims=3 as false, tinycc read it as true: refused instead."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["y"], name="mean0", axes=[1], keepdims=3)], "mean",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    _refused(wrap_graph(graph), tmp_path, capsys, "'mean0'", "keepdims=3")


def test_dequantized_weight_as_graph_output_is_refused(tmp_path, capsys):
    model = qdq_conv_model()
    model.graph.output.append(helper.make_tensor_value_info("w_f", TensorProto.FLOAT, None))
    _refused(model, tmp_path, capsys, "model.onnx", "'dq_w'", "graph output")


def test_pad_with_nan_constant_is_refused(tmp_path, capsys):
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads", "value"], ["y"], name="pad0")], "pad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
         numpy_helper.from_array(np.array(np.nan, np.float32), "value")])
    _refused(wrap_graph(graph), tmp_path, capsys, "'pad0'", "not a finite number")


def test_qdq_graph_output_left_int8_after_stripping_is_refused(tmp_path, capsys):
    """An int8 weight read directly as a (float-declared) graph output: stripping the Q/DQ nodes
    leaves a model ONNX shape inference rejects; exit 2, not an internal error."""
    model = qdq_conv_model()
    model.graph.output.append(helper.make_tensor_value_info("w_q", TensorProto.INT8, None))
    _refused(model, tmp_path, capsys, "QuantizeLinear/DequantizeLinear", "cannot strip")


@needs_cc
def test_qdq_tensor_quantized_into_two_graph_outputs(tmp_path):
    """Two QuantizeLinear nodes of one float tensor, each a graph output (fuzz seed 79 case 893:
    the second output was "not produced", exit 70): the second is a copy of the first, and the
    generated C gives both outputs the single-output model's values."""
    from tinycc.compiler import QuantOptions
    from tinycc.engines import CompiledModel
    from tinycc.frontend import load_graph
    from tinycc.passes import run_pipeline

    single, double = qdq_conv_model(), qdq_conv_model()
    q_y = _qdq_node(double, "q_y")
    double.graph.node.append(helper.make_node("QuantizeLinear", list(q_y.input), ["y_dup"], name="q_y_dup"))
    out_info = double.graph.output[0]
    double.graph.output.append(helper.make_tensor_value_info("y_dup", out_info.type.tensor_type.elem_type, None))
    x = np.random.default_rng(3).integers(-128, 128, (1, 3, 6, 6)).astype(np.int8)
    results = []
    for name, m in (("single", single), ("double", double)):
        onnx.save(m, tmp_path / f"{name}.onnx")
        model = CompiledModel(run_pipeline(load_graph(tmp_path / f"{name}.onnx")), QuantOptions(), warn=pytest.fail)
        c_out = model.run_c({model.graph.inputs[0]: x})[0]
        golden = model.run_int8({model.graph.inputs[0]: x})
        results.append({o: model.logical(o, c_out[o], dequantize=False) for o in model.program.outputs})
        for o in model.program.outputs:
            np.testing.assert_array_equal(results[-1][o], model.logical(o, golden[o], dequantize=False))
    assert sorted(results[1]) == ["y", "y_dup"]
    np.testing.assert_array_equal(results[1]["y"], results[0]["y"])
    np.testing.assert_array_equal(results[1]["y_dup"], results[0]["y"])


def _gru_model(w_shape=(1, 9, 4), r_shape=(1, 9, 3), b_shape=(1, 18), h_shape=(1, 1, 3)) -> onnx.ModelProto:
    """GRU, hidden_size 3, input [5, 1, 4], with W, R, B and a zero initial_h of the shapes given."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, s).astype(np.float32), n)
             for n, s in (("W", w_shape), ("R", r_shape), ("B", b_shape))]
    inits.append(numpy_helper.from_array(np.zeros(h_shape, np.float32), "h0"))  # zero: int8 takes it
    node = helper.make_node("GRU", ["x", "W", "R", "B", "", "h0"], ["y"], name="gru", hidden_size=3)
    graph = helper.make_graph([node], "gru", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("operand,shapes", [("W", dict(w_shape=(9, 4))), ("R", dict(r_shape=(1, 9, 4))),
                                            ("B", dict(b_shape=(1, 12))), ("initial_h", dict(h_shape=(1, 2, 3)))])
def test_recurrent_operand_of_the_wrong_shape_is_refused(tmp_path, capsys, operand, shapes):
    """A GRU/LSTM operand that disagrees with hidden_size, direction and the input (fuzz seed 79
    case 1794: W [144, 32] of a GRU, exit 70 from shape inference) is refused by name, exit 2;
    the same model with every shape right compiles."""
    _refused(_gru_model(**shapes), tmp_path, capsys, "GRU node 'gru'", f"{operand} of shape")


def test_recurrent_model_of_the_right_shapes_compiles(tmp_path, capsys):
    code, err = _compile(_gru_model(), tmp_path, capsys)
    assert code == EXIT_OK, err
