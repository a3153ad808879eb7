"""Element-wise operators of issue 14 part A, end to end: Gelu (opset 20, exact and tanh), the Erf
and tanh chains torch writes for GELU and the Softplus/Tanh/Mul chain of Mish (recognised by
passes/patterns.py), Softplus, Mish, Exp, Log, Abs, Neg, Sqrt, Reciprocal, Erf and Pow by a
constant: float against onnxruntime, int8 as one 256-entry table (tc_lut_s8) per function, the
generated C bit-exact with the golden model."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.errors import Unsupported
from tinycc.frontend import load_graph
from tinycc.golden.boundary import dequantize, quantize
from tinycc.ops.activation import FLOAT_FUNCS, TABLE_FUNCS, make_lut
from tinycc.passes import run_pipeline
from tinycc.reference.float_exec import run_float

RNG = np.random.default_rng(14)
SHAPE = [1, 4, 6]


def _save(path, nodes, inits=(), opset=17, shape=SHAPE):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _ort(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _compiled(path, calib_x):
    calib = path.parent / "calib.npy"
    np.save(calib, calib_x)
    return CompiledModel(run_pipeline(load_graph(path)), QuantOptions(calib=str(calib)), warn=lambda m: None)


def _check_c_equals_golden(model, xs):
    for k, x in enumerate(xs):
        golden = model.run_int8({"x": x})
        c_out, _ = model.run_c({"x": x})
        for name, v in golden.items():
            np.testing.assert_array_equal(c_out[name], v, err_msg=f"{name} sample {k}")


POSITIVE = {"Log", "Sqrt", "Reciprocal"}  # inputs kept in the domain where float is finite
UNARY = [("Gelu", {}, 20), ("Gelu", {"approximate": "tanh"}, 20), ("Softplus", {}, 17), ("Mish", {}, 18),
         ("Exp", {}, 17), ("Log", {}, 17), ("Abs", {}, 17), ("Neg", {}, 17), ("Sqrt", {}, 17),
         ("Reciprocal", {}, 17), ("Erf", {}, 17)]


def _inputs(op, n):
    x = RNG.normal(0, 2, (n, *SHAPE)).astype(np.float32)
    return np.abs(x) + 0.05 if op in POSITIVE else x


@pytest.mark.parametrize("op,attrs,opset", UNARY, ids=[f"{o}{a.get('approximate', '')}" for o, a, _ in UNARY])
def test_unary_float_matches_onnxruntime_and_c_equals_golden(tmp_path, op, attrs, opset):
    path = _save(tmp_path / "m.onnx", [helper.make_node(op, ["x"], ["y"], **attrs)], opset=opset)
    x = _inputs(op, 1)[0]
    got = run_float(run_pipeline(load_graph(path)), {"x": x})["y"]
    np.testing.assert_allclose(got, _ort(path, x), rtol=1e-5, atol=1e-6)
    model = _compiled(path, _inputs(op, 8))
    assert [s.kernel for s in model.program.steps] == ["tc_lut_s8"]
    _check_c_equals_golden(model, _inputs(op, 2))


def test_pow_by_a_constant_is_a_table(tmp_path):
    e = numpy_helper.from_array(np.array(3.0, np.float32), "e")
    path = _save(tmp_path / "m.onnx", [helper.make_node("Pow", ["x", "e"], ["y"])], [e])
    x = _inputs("Pow", 1)[0]
    np.testing.assert_allclose(run_float(run_pipeline(load_graph(path)), {"x": x})["y"], _ort(path, x), rtol=1e-5)
    model = _compiled(path, _inputs("Pow", 8))
    assert [s.kernel for s in model.program.steps] == ["tc_lut_s8"]
    _check_c_equals_golden(model, _inputs("Pow", 2))


def test_pow_by_a_run_time_exponent_is_refused_by_name(tmp_path):
    graph = helper.make_graph([helper.make_node("Pow", ["x", "e"], ["y"], name="pw")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE),
                               helper.make_tensor_value_info("e", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    with pytest.raises(Unsupported, match="'pw'.*exponent computed at run time"):
        load_graph(tmp_path / "m.onnx")


@pytest.mark.parametrize("op", ["Log", "Sqrt", "Reciprocal"])
def test_tables_outside_the_domain_take_the_domain_edge(op):
    """No NaN in a table: log(x<=0) is the lowest code, sqrt(x<0) is 0, 1/0 saturates."""
    fn = TABLE_FUNCS.get(op, FLOAT_FUNCS[op])
    with np.errstate(all="raise"):
        table = make_lut(lambda v: fn(v, {}), 0.05, 0, 0.1, 0)
    codes = np.arange(-128, 128)
    if op == "Log":
        assert np.all(table[codes <= 0] == -128)
    elif op == "Sqrt":
        assert np.all(table[codes <= 0] == 0)
    else:
        assert table[128] == 127 and table[127] == -128


@pytest.mark.parametrize("op,attrs", [("Gelu", {"approximate": "none"}), ("Mish", {}), ("Erf", {}),
                                      ("Softplus", {})])
def test_tables_within_one_lsb_of_the_float_function(op, attrs):
    in_scale, in_zp, out_scale, out_zp = 0.04, 7, 0.02, -20
    table = make_lut(lambda v: FLOAT_FUNCS[op](v, attrs), in_scale, in_zp, out_scale, out_zp)
    real = dequantize(np.arange(-128, 128, dtype=np.int8), in_scale, in_zp).astype(np.float64)
    want = quantize(FLOAT_FUNCS[op](real, attrs), out_scale, out_zp)
    assert np.max(np.abs(table.astype(np.int16) - want.astype(np.int16))) <= 1


# ---- the forms exporters write ---------------------------------------------------------------------
torch = pytest.importorskip("torch")


class _Block(torch.nn.Module):
    """Linear -> GELU (exact) -> Mish -> GELU (tanh): the three chains torch writes below opset 20."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 6)

    def forward(self, x):
        y = torch.nn.functional.gelu(self.fc(x))
        return torch.nn.functional.gelu(torch.nn.functional.mish(y), approximate="tanh")


@pytest.mark.parametrize("dynamo", [False, True])
def test_torch_gelu_and_mish_chains_become_tables(tmp_path, dynamo):
    torch.manual_seed(0)
    path = tmp_path / "m.onnx"
    with torch.no_grad():
        torch.onnx.export(_Block().eval(), (torch.randn(1, 4, 6),), str(path), opset_version=18 if dynamo else 13,
                          dynamo=dynamo, input_names=["x"], output_names=["y"])
    g = run_pipeline(load_graph(path))
    assert [n.op for n in g.nodes if n.op not in ("Dense", "MatMul", "Reshape")] == ["Gelu", "Mish", "Gelu"]
    x = RNG.normal(0, 1, SHAPE).astype(np.float32)
    np.testing.assert_allclose(run_float(g, {"x": x})["y"], _ort(path, x), rtol=1e-4, atol=1e-5)
    model = _compiled(path, RNG.normal(0, 1, (8, *SHAPE)).astype(np.float32))
    assert [s.kernel for s in model.program.steps].count("tc_lut_s8") == 3
    _check_c_equals_golden(model, [RNG.normal(0, 1, SHAPE).astype(np.float32)])
