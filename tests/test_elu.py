"""ONNX Elu end to end: import, float reference vs onnxruntime, int8 as a 256-entry lookup table
(tc_lut_s8), the generated C bit-exact with the golden model, the table within one LSB of the
float function (docs/adding-an-op.md walks through this op)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.golden.boundary import dequantize, quantize
from tinycc.ops.activation import elu, make_lut
from tinycc.passes import run_pipeline
from tinycc.reference.float_exec import run_float

RNG = np.random.default_rng(22)


def _model(path, alpha=None, opset=17):
    """Conv -> Elu -> Add: Elu after a layer, feeding another (the usual place of an activation)."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], RNG.normal(0, 0.4, 108).astype(np.float32))
    attrs = {} if alpha is None else {"alpha": alpha}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Elu", ["c"], ["e"], name="elu", **attrs),
             helper.make_node("Add", ["e", "c"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "elu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return model


@pytest.mark.parametrize("alpha", [None, 0.3, 2.0])
@pytest.mark.parametrize("opset", [11, 17, 22])
def test_elu_float_matches_onnxruntime(tmp_path, alpha, opset):
    if opset > onnx.defs.onnx_opset_version():
        pytest.skip(f"onnx {onnx.__version__} knows opsets up to {onnx.defs.onnx_opset_version()}")
    model = _model(tmp_path / "m.onnx", alpha, opset)
    x = RNG.normal(0, 2, (1, 3, 6, 6)).astype(np.float32)
    try:
        want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    except Exception as exc:  # an onnxruntime without this opset's kernels
        pytest.skip(f"onnxruntime cannot run opset {opset}: {str(exc)[:80]}")
    got = run_float(run_pipeline(load_graph(tmp_path / "m.onnx")), {"x": x})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_elu_is_a_lookup_table_and_c_equals_golden(tmp_path):
    _model(tmp_path / "m.onnx", 0.7)
    calib = tmp_path / "calib.npy"
    np.save(calib, RNG.normal(0, 2, (16, 1, 3, 6, 6)).astype(np.float32))
    compiled = CompiledModel(run_pipeline(load_graph(tmp_path / "m.onnx")), QuantOptions(calib=str(calib)),
                             warn=lambda m: None)
    steps = [s for s in compiled.program.steps if s.op == "Elu"]
    assert [s.kernel for s in steps] == ["tc_lut_s8"]
    for k in range(3):
        feeds = {"x": RNG.normal(0, 2, (1, 3, 6, 6)).astype(np.float32)}
        golden = compiled.run_int8(feeds)
        c_out, _ = compiled.run_c(feeds)
        for name, v in golden.items():
            np.testing.assert_array_equal(c_out[name], v, err_msg=f"{name} sample {k}")


@pytest.mark.parametrize("alpha", [1.0, 0.2])
def test_elu_table_within_one_lsb_of_the_float_function(alpha):
    in_scale, in_zp, out_scale, out_zp = 0.04, 10, 0.03, -60
    table = make_lut(lambda v: elu(v, alpha), in_scale, in_zp, out_scale, out_zp)
    real = dequantize(np.arange(-128, 128, dtype=np.int8), in_scale, in_zp).astype(np.float64)
    want = quantize(np.where(real >= 0, real, alpha * (np.exp(real) - 1)), out_scale, out_zp)
    assert np.max(np.abs(table.astype(np.int16) - want.astype(np.int16))) <= 1
    assert table[128 + in_zp] == out_zp  # real 0 (input code in_zp) maps to real 0


def test_elu_saturates_quietly_for_large_inputs():
    with np.errstate(all="raise"):
        y = elu(np.array([-1e4, -1.0, 0.0, 1e4]), 1.5)
    np.testing.assert_allclose(y, [-1.5, 1.5 * (np.exp(-1.0) - 1), 0.0, 1e4])
