"""Pre-quantized QDQ models: TFLite Micro bit-exactness and onnxruntime quantize_static models."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.errors import Unsupported
from tinycc.frontend import load_graph
from tinycc.passes import run_pipeline

MLPERF = ["ad_autoencoder", "ic_resnet8", "kws_dscnn", "vww_mobilenetv1_025"]


@pytest.fixture(scope="module")
def samples(mlperf_dir):
    return np.load(mlperf_dir / "samples.npz")


@pytest.mark.parametrize("name", MLPERF)
def test_mlperf_qdq_reproduces_tflite_micro(mlperf_dir, samples, name):
    g = run_pipeline(load_graph(mlperf_dir / f"{name}_qdq.onnx"))
    model = CompiledModel(g, QuantOptions(), warn=pytest.fail)  # no calibration may happen
    assert model.program.quant_scheme == "int8-qdq"
    x, ref = samples[f"{name}_int8"], samples[f"{name}_tflm_out"]
    out = model.program.outputs[0]
    n = len(x) if name != "ad_autoencoder" else 8
    for i in range(n):
        inputs = {g.inputs[0]: x[i:i + 1]}
        golden = model.logical(out, model.run_int8(inputs)[out], dequantize=False)
        np.testing.assert_array_equal(golden.reshape(-1), ref[i].reshape(-1), err_msg=f"{name} sample {i}")
        if i < 2:
            c_out = model.logical(out, model.run_c(inputs)[0][out], dequantize=False)
            np.testing.assert_array_equal(c_out, golden)


def _ort_quantized_model(tmp_path):
    import torch
    from conftest import quantize_static_qdq

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10)).eval()
    rng = np.random.default_rng(0)
    data = rng.random((32, 1, 3, 12, 12)).astype(np.float32)
    return quantize_static_qdq(net, data, tmp_path), data


def test_ort_quantize_static_model_agrees_with_onnxruntime(tmp_path):
    import onnxruntime as ort

    path, data = _ort_quantized_model(tmp_path)
    g = run_pipeline(load_graph(path))
    model = CompiledModel(g, QuantOptions(), warn=pytest.fail)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = model.program.outputs[0]
    s, zp = model.program.tensors[out].quant.scalar()
    for x in data[:8]:
        ref = sess.run(None, {"x": x})[0]
        golden = model.logical(out, model.run_int8({"x": x})[out], dequantize=True)
        assert np.max(np.abs(golden - ref)) <= 2 * s + 1e-6
        assert np.argmax(golden) == np.argmax(ref)
    c_out = model.run_c({"x": data[0]})[0][out]
    np.testing.assert_array_equal(c_out, model.run_int8({"x": data[0]})[out])


def _upsample_norm_head():
    """Depthwise ConvTranspose (onnxruntime writes its bias DQ with a scale of shape [1] and a
    scalar zero point), ReduceMean without keepdims (the importer's pooled map before the Reshape
    has no params of its own in the QDQ file) and LayerNorm: three things the QDQ front end
    refused before."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)
            self.up = torch.nn.ConvTranspose2d(16, 16, 2, stride=2, groups=16)
            self.norm = torch.nn.LayerNorm(16)
            self.fc = torch.nn.Linear(16, 10)

        def forward(self, x):
            y = self.up(torch.relu(self.conv(x))).mean((2, 3))
            return self.fc(self.norm(y))

    torch.manual_seed(0)
    return Net().eval()


def test_ort_quantized_convtranspose_reducemean_layernorm(tmp_path):
    """Against onnxruntime with graph optimisations off: the QDQ graph as written (DQ -> float op
    -> Q). onnxruntime's optimised session fuses some of these nodes into its own integer kernels
    and then disagrees with its own unoptimised result by up to 0.4 on this model."""
    import onnxruntime as ort
    from conftest import quantize_static_qdq

    data = np.random.default_rng(1).standard_normal((16, 1, 3, 8, 8)).astype(np.float32)
    path = quantize_static_qdq(_upsample_norm_head(), data, tmp_path)
    model = CompiledModel(run_pipeline(load_graph(path)), QuantOptions(), warn=pytest.fail)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    out = model.program.outputs[0]
    s, _ = model.program.tensors[out].quant.scalar()
    for x in data[:6]:
        ref = sess.run(None, {"x": x})[0]
        golden = model.logical(out, model.run_int8({"x": x})[out], dequantize=True)
        assert np.max(np.abs(golden - ref)) <= 2 * s + 1e-6
    np.testing.assert_array_equal(model.run_c({"x": data[0]})[0][out], model.run_int8({"x": data[0]})[out])


def test_per_axis_activation_is_refused(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    scale = numpy_helper.from_array(np.array([0.1, 0.2, 0.3], np.float32), "s")
    zp = numpy_helper.from_array(np.zeros(3, np.int8), "z")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q_per_axis", axis=1),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq", axis=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])], [scale, zp])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(Unsupported, match="q_per_axis.*per-axis"):
        load_graph(path)
