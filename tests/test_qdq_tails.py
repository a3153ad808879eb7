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
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 6 * 6, 10), torch.nn.Softmax(dim=1)).eval()
    data = np.random.default_rng(1).normal(size=(48, 1, 3, 6, 6)).astype(np.float32) * 2
    fp = tmp_path / "float.onnx"
    torch.onnx.export(net, (torch.from_numpy(data[0]),), fp, input_names=["x"], output_names=["y"],
                      opset_version=17, dynamo=False)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": d} for d in data])

        def get_next(self):
            return next(self.it, None)

    qp = tmp_path / f"qdq_{activation_type}.onnx"
    quantize_static(str(fp), str(qp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=getattr(QuantType, activation_type), weight_type=QuantType.QInt8)
    return qp, data


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
