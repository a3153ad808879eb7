"""QDQ models beyond the TFLite converter's: onnxruntime quantize_static models ending in Softmax,
float ops after the last DequantizeLinear (refused by name, never quantized silently), the float
engine on models with int8/uint8 inputs and outputs, and bias-add folding across a
requantization."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.errors import Unsupported
from tinycc.frontend import load_graph
from tinycc.passes import run_pipeline
from tinycc.reference.float_exec import run_float


def _compile(path: Path) -> CompiledModel:
    return CompiledModel(run_pipeline(load_graph(path)), QuantOptions(), warn=pytest.fail)


def _ort(path: Path):
    """onnxruntime executing the QDQ graph as written. Its default graph optimizations fuse
    QDQ groups into integer kernels (QLinearSoftmax, QGemm) that are themselves up to 5 LSB away
    from the model's definition on the softmax model below."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


# ---- onnxruntime quantize_static ending in Softmax -------------------------------------------------
def _ort_softmax_model(tmp_path: Path, activation_type: str):
    import torch
    from conftest import quantize_static_qdq

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 6 * 6, 10), torch.nn.Softmax(dim=1)).eval()
    data = np.random.default_rng(1).normal(size=(48, 1, 3, 6, 6)).astype(np.float32) * 2
    return quantize_static_qdq(net, data, tmp_path, f"qdq_{activation_type}", activation_type), data


@pytest.mark.parametrize("activation_type", ["QInt8", "QUInt8"])
def test_ort_quantize_static_softmax_within_one_lsb(tmp_path, activation_type):
    path, data = _ort_softmax_model(tmp_path, activation_type)
    model = _compile(path)
    out = model.program.outputs[0]
    s, zp = model.program.tensors[out].quant.scalar()
    assert (np.float32(s), zp) != (np.float32(1 / 256), -128)  # the case TFLite's softmax does not cover
    assert [st.kernel for st in model.program.steps][-2:] == ["tc_softmax_s8", "tc_requantize_s8"]
    sess = _ort(path)
    worst = 0.0
    for x in data[:16]:
        ref = sess.run(None, {"x": x})[0]
        golden = model.logical(out, model.run_int8({"x": x})[out], dequantize=True)
        worst = max(worst, float(np.max(np.abs(golden - ref))) / s)
        assert np.argmax(golden) == np.argmax(ref)
    assert worst <= 1.0 + 1e-3
    c_out = model.run_c({"x": data[0]})[0][out]
    np.testing.assert_array_equal(c_out, model.run_int8({"x": data[0]})[out])


# ---- float ops after the last DequantizeLinear ----------------------------------------------------
def _qdq_tail_model(tmp_path: Path, tail: list[str], quantize_output: bool) -> Path:
    """int8 x [1, 10] -> DequantizeLinear -> tail ops -> (QuantizeLinear ->) y."""
    inits = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.05]),
             helper.make_tensor("zp", TensorProto.INT8, [], [3]),
             helper.make_tensor("so", TensorProto.FLOAT, [], [16 / 256]),
             helper.make_tensor("zo", TensorProto.INT8, [], [127]),
             helper.make_tensor("shape", TensorProto.INT64, [2], [2, 5])]
    nodes = [helper.make_node("DequantizeLinear", ["x", "s", "zp"], ["t0"], name="dq")]
    for i, op in enumerate(tail):
        ins = [f"t{i}", "shape"] if op == "Reshape" else [f"t{i}"]
        nodes.append(helper.make_node(op, ins, [f"t{i + 1}"], name=f"{op.lower()}_tail"))
    last = f"t{len(tail)}"
    out_type = TensorProto.FLOAT
    if quantize_output:
        nodes.append(helper.make_node("QuantizeLinear", [last, "so", "zo"], ["y"], name="q_out"))
        out_type = TensorProto.INT8
    else:
        nodes[-1].output[0] = "y"
    shape = [2, 5] if "Reshape" in tail else [1, 10]
    g = helper.make_graph(nodes, "tail", [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 10])],
                          [helper.make_tensor_value_info("y", out_type, shape)], inits)
    path = tmp_path / f"tail_{'_'.join(tail)}_{int(quantize_output)}.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


@pytest.mark.parametrize("tail", [["LogSoftmax"], ["Softmax"], ["Reshape", "Sigmoid"], ["Sigmoid", "Reshape"]])
def test_float_tail_is_refused_by_name(tmp_path, tail):
    path = _qdq_tail_model(tmp_path, tail, quantize_output=False)
    with pytest.raises(Unsupported) as exc:
        load_graph(path)
    op = next(o for o in tail if o != "Reshape")
    assert f"{op} node '{op.lower()}_tail'" in str(exc.value) and "in float after the last DequantizeLinear" in str(exc.value)


def test_float_tail_refusal_is_exit_2_and_writes_nothing(tmp_path):
    import subprocess
    import sys

    path = _qdq_tail_model(tmp_path, ["LogSoftmax"], quantize_output=False)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "tinycc", "compile", str(path), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "LogSoftmax node 'logsoftmax_tail'" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_quantized_tail_and_exact_float_tail_compile(tmp_path):
    """The same LogSoftmax with a QuantizeLinear after it compiles (int8 LOG_SOFTMAX), and a float
    Reshape after the last DequantizeLinear is exact on the int8 grid, so it is accepted."""
    x = np.arange(-40, 60, 10, dtype=np.int8).reshape(1, 10)
    for tail, quantized in ((["LogSoftmax"], True), (["Reshape"], False)):
        path = _qdq_tail_model(tmp_path, tail, quantize_output=quantized)
        model = _compile(path)
        got = model.logical("y", model.run_int8({"x": x})["y"], dequantize=True)
        want = _ort(path).run(None, {"x": x})[0]
        if quantized:
            want = (want.astype(np.float32) - 127) * np.float32(16 / 256)
        np.testing.assert_allclose(got, want, atol=16 / 256 + 1e-6)


# ---- integer inputs and outputs: every engine against onnxruntime ----------------------------------
def _int_io_conv_model(tmp_path: Path, dtype: str) -> Path:
    """x (int8 or uint8) -> DequantizeLinear -> Conv 3x3 (int8 weights, int32 bias) -> Relu ->
    QuantizeLinear -> y (same type): integer codes in and out, as the ONNX model exchanges them."""
    rng = np.random.default_rng(7)
    elem = TensorProto.UINT8 if dtype == "uint8" else TensorProto.INT8
    zp_x, zp_y = (131, 2) if dtype == "uint8" else (3, -126)
    w = rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8)
    w_scale = rng.uniform(0.002, 0.01, 4).astype(np.float32)
    b = rng.integers(-2000, 2000, 4).astype(np.int32)
    s_x, s_y = np.float32(0.05), np.float32(0.08)
    inits = [helper.make_tensor("sx", TensorProto.FLOAT, [], [s_x]), helper.make_tensor("zx", elem, [], [zp_x]),
             helper.make_tensor("sy", TensorProto.FLOAT, [], [s_y]), helper.make_tensor("zy", elem, [], [zp_y]),
             onnx.numpy_helper.from_array(w, "wq"), onnx.numpy_helper.from_array(w_scale, "ws"),
             onnx.numpy_helper.from_array(np.zeros(4, np.int8), "wz"), onnx.numpy_helper.from_array(b, "bq"),
             onnx.numpy_helper.from_array((s_x * w_scale).astype(np.float32), "bs"),
             onnx.numpy_helper.from_array(np.zeros(4, np.int32), "bz")]
    nodes = [helper.make_node("DequantizeLinear", ["x", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
             helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["b"], axis=0),
             helper.make_node("Conv", ["xd", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "sy", "zy"], ["y"])]
    g = helper.make_graph(nodes, "int_io", [helper.make_tensor_value_info("x", elem, [1, 2, 5, 5])],
                          [helper.make_tensor_value_info("y", elem, [1, 4, 5, 5])], inits)
    path = tmp_path / f"int_io_{dtype}.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_integer_io_engines_agree_with_onnxruntime(tmp_path, dtype):
    from types import SimpleNamespace

    from tinycc.engines import run_samples

    path = _int_io_conv_model(tmp_path, dtype)
    info = np.iinfo(dtype)
    xs = [np.random.default_rng(i).integers(info.min, info.max + 1, (1, 2, 5, 5)).astype(dtype) for i in range(4)]
    refs = [_ort(path).run(None, {"x": x})[0] for x in xs]
    g = run_pipeline(load_graph(path))
    args = SimpleNamespace(dequantize=False, calib=None, calib_method=None, bias_correction=False, target=None)
    for engine in ("float", "int8"):
        outs = run_samples(g, [{"x": x} for x in xs], engine, args)
        for ref, out in zip(refs, outs):
            y = out["y"]
            assert y.dtype == ref.dtype and y.shape == ref.shape, engine
            diff = np.abs(y.astype(np.int32) - ref.astype(np.int32))
            # float: the model's own float semantics (float64 vs onnxruntime's float32 sums);
            # int8: TFLite's integer conv arithmetic
            assert diff.max() <= 1, (engine, diff.max())
            if engine == "float":
                assert np.count_nonzero(diff) <= 2, engine
    # the float engine on the real values: --dequantize
    args.dequantize = True
    real = run_samples(g, [{"x": xs[0]}], "float", args)[0]["y"]
    s, zp = g.tensors["y"].quant.scalar()
    np.testing.assert_allclose(real, (refs[0].astype(np.float32) - (zp + (128 if dtype == "uint8" else 0))) * s,
                               atol=s + 1e-6)


# ---- bias-add folding does not cross a requantization -------------------------------------------
def _conv_q_dq_add_model(tmp_path: Path) -> Path:
    """Conv -> QuantizeLinear -> DequantizeLinear -> Add(int8 constant per channel) -> QuantizeLinear:
    the conv output is requantized before the Add, so folding the constant into the int32 bias
    would skip that rounding (and tinycc used to fail naming a bias tensor it had invented)."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8)
    ws = np.full(4, 0.01, np.float32)
    sx = np.float32(0.05)
    arrays = {"wq": w, "ws": ws, "wz": np.zeros(4, np.int8), "bq": rng.integers(-500, 500, 4).astype(np.int32),
              "bs": (sx * ws).astype(np.float32), "bz": np.zeros(4, np.int32),
              "cq": rng.integers(-100, 100, (1, 4, 1, 1)).astype(np.int8)}
    scalars = [("sx", TensorProto.FLOAT, sx), ("zx", TensorProto.INT8, 1), ("sc", TensorProto.FLOAT, 0.07),
               ("zc", TensorProto.INT8, -2), ("sk", TensorProto.FLOAT, 0.03), ("zk", TensorProto.INT8, 0),
               ("sy", TensorProto.FLOAT, 0.09), ("zy", TensorProto.INT8, 4)]
    inits = [helper.make_tensor(n, t, [], [v]) for n, t, v in scalars]
    inits += [onnx.numpy_helper.from_array(v, k) for k, v in arrays.items()]
    nodes = [helper.make_node("DequantizeLinear", ["x", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
             helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["b"], axis=0),
             helper.make_node("Conv", ["xd", "w", "b"], ["conv"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("QuantizeLinear", ["conv", "sc", "zc"], ["conv_q"]),
             helper.make_node("DequantizeLinear", ["conv_q", "sc", "zc"], ["conv_d"]),
             helper.make_node("DequantizeLinear", ["cq", "sk", "zk"], ["k"]),
             helper.make_node("Add", ["conv_d", "k"], ["a"], name="add"),
             helper.make_node("QuantizeLinear", ["a", "sy", "zy"], ["y"])]
    g = helper.make_graph(nodes, "conv_q_dq_add", [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 2, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 4, 5, 5])], inits)
    path = tmp_path / "conv_q_dq_add.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_bias_add_is_not_folded_across_a_requantization(tmp_path):
    path = _conv_q_dq_add_model(tmp_path)
    model = _compile(path)
    assert [s.op for s in model.program.steps] == ["Conv", "Add"]
    sess = _ort(path)
    for seed in range(4):
        x = np.random.default_rng(seed).integers(-128, 128, (1, 2, 5, 5)).astype(np.int8)
        golden = model.logical("y", model.run_int8({"x": x})["y"], dequantize=False)
        diff = np.abs(golden.astype(np.int32) - sess.run(None, {"x": x})[0].astype(np.int32))
        assert diff.max() <= 1
    np.testing.assert_array_equal(model.run_c({"x": x})[0]["y"], model.run_int8({"x": x})["y"])


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_integer_input_dequantized_to_a_float_output(tmp_path, dtype):
    """A graph that is only DequantizeLinear: after Q/DQ stripping its float output is the
    integer input tensor itself. The float engine returns the real values (onnx node test
    test_dequantizelinear), not the codes re-quantized as if the output were an integer one."""
    from types import SimpleNamespace

    from tinycc.engines import run_samples

    elem = TensorProto.UINT8 if dtype == "uint8" else TensorProto.INT8
    zp = helper.make_tensor("zp", elem, [], [128 if dtype == "uint8" else 3])
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["x", "s", "zp"], ["y"])], "dq",
        [helper.make_tensor_value_info("x", elem, [1, 6])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [0.25]), zp])
    path = tmp_path / "dq.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    info = np.iinfo(dtype)
    x = np.array([[info.min, -1 if dtype == "int8" else 1, 0, 5, 100, info.max]], dtype=dtype)
    ref = _ort(path).run(None, {"x": x})[0]
    args = SimpleNamespace(dequantize=False, calib=None, calib_method=None, bias_correction=False, target=None)
    g = run_pipeline(load_graph(path))
    (y,) = run_samples(g, [{"x": x}], "float", args)[0].values()  # the output is tensor x itself
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, ref)
