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


MORE_TABLES = [("Selu", {"alpha": 1.5, "gamma": 1.1}), ("Celu", {"alpha": 0.7}), ("Softsign", {}),
               ("ThresholdedRelu", {"alpha": 0.3}), ("Shrink", {"lambd": 0.4, "bias": 0.1}), ("Sin", {}), ("Cos", {}),
               ("Tan", {}), ("Atan", {}), ("Floor", {}), ("Ceil", {}), ("Round", {}), ("Sign", {})]


def test_more_functions_of_one_value_are_tables(tmp_path):
    """One model, one output per function: float == onnxruntime, one tc_lut_s8 each, C == golden."""
    nodes = [helper.make_node(op, ["x"], [f"y{k}"], **attrs) for k, (op, attrs) in enumerate(MORE_TABLES)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info(f"y{k}", TensorProto.FLOAT, SHAPE)
                               for k in range(len(MORE_TABLES))])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    x = RNG.uniform(-1.4, 1.4, SHAPE).astype(np.float32)  # inside tan's branch, round-half cases aside
    g = run_pipeline(load_graph(path))
    ours = run_float(g, {"x": x})
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for k, (op, _) in enumerate(MORE_TABLES):
        np.testing.assert_allclose(ours[f"y{k}"], want[k], rtol=1e-5, atol=1e-6, err_msg=op)
    model = _compiled(path, RNG.uniform(-1.4, 1.4, (8, *SHAPE)).astype(np.float32))
    assert [s.kernel for s in model.program.steps] == ["tc_lut_s8"] * len(MORE_TABLES)
    _check_c_equals_golden(model, [x])


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


def test_abs_table_is_tflm_integer_abs():
    """TFLM's int8 ABS rescales |x - zp| with MBQM (double rounding); at these scales a table of
    the float function differs from it on several codes, the table tinycc builds does not."""
    from tinycc.golden.arith import mbqm, quantize_multiplier
    from tinycc.ops.activation import tflm_abs_table

    s_in, s_out, zp_in, zp_out = 0.011487486772239208, 0.08226067572832108, 5, -103
    v = np.abs(np.arange(-128, 128) - zp_in)
    want = np.clip(mbqm(v, *quantize_multiplier(s_in / s_out)) + zp_out, -128, 127)
    assert np.array_equal(tflm_abs_table(s_in, zp_in, s_out, zp_out), want)
    assert not np.array_equal(make_lut(np.abs, s_in, zp_in, s_out, zp_out), want)
    assert np.array_equal(tflm_abs_table(0.05, 3, 0.05, -7), np.clip(np.abs(np.arange(-128, 128) - 3) - 7, -128, 127))
    from tinycc.ir import Graph, Node, QuantParams, Tensor
    from tinycc.lower import lower

    g = Graph("abs")  # the lowering of an Abs node quantized with those scales builds this table
    for name, scale, zp in (("x", s_in, zp_in), ("y", s_out, zp_out)):
        g.add_tensor(Tensor(name, (1, 8), quant=QuantParams(np.array(scale, np.float32), np.array(zp, np.int32))))
    g.inputs, g.outputs = ["x"], ["y"]
    g.add_node(Node("abs", "Abs", ["x"], ["y"]))
    (step,) = lower(g).steps
    assert np.array_equal(lower(g).blobs[step.args[0].ref], want)


@pytest.mark.parametrize("op,attrs", [("Gelu", {"approximate": "none"}), ("Mish", {}), ("Erf", {}),
                                      ("Softplus", {})])
def test_tables_within_one_lsb_of_the_float_function(op, attrs):
    in_scale, in_zp, out_scale, out_zp = 0.04, 7, 0.02, -20
    table = make_lut(lambda v: FLOAT_FUNCS[op](v, attrs), in_scale, in_zp, out_scale, out_zp)
    real = dequantize(np.arange(-128, 128, dtype=np.int8), in_scale, in_zp).astype(np.float64)
    want = quantize(FLOAT_FUNCS[op](real, attrs), out_scale, out_zp)
    assert np.max(np.abs(table.astype(np.int16) - want.astype(np.int16))) <= 1


# ---- PRelu, Max / Min / Sum, ReduceSum / ReduceMin, ArgMax / ArgMin ----------------------------------
def _binary_model(path, opset=18):
    """Conv -> PRelu (per-channel slope) -> n-ary Max / Min / Sum with broadcasting -> ReduceSum,
    ReduceMin, ArgMax, ArgMin: every op of this section in one model (one C build)."""
    init = [numpy_helper.from_array(RNG.normal(0, 0.5, (3, 3, 3, 3)).astype(np.float32), "w"),
            numpy_helper.from_array(RNG.uniform(0.05, 0.5, (3, 1, 1)).astype(np.float32), "slope"),
            numpy_helper.from_array(np.array([1], np.int64), "axis1"),
            numpy_helper.from_array(np.array([2, 3], np.int64), "axes23")]
    nodes = [helper.make_node("Conv", ["a", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("PRelu", ["c", "slope"], ["p"]),
             helper.make_node("Max", ["p", "b", "a"], ["mx"]),
             helper.make_node("Min", ["p", "b"], ["mn"]),
             helper.make_node("Sum", ["p", "b", "a"], ["sm"]),
             helper.make_node("ReduceSum", ["mx", "axis1"], ["rs"], keepdims=1),
             helper.make_node("ReduceMin", ["sm", "axes23"], ["rmin"], keepdims=0),
             helper.make_node("ArgMax", ["mn"], ["am"], axis=1, keepdims=0),
             helper.make_node("ArgMin", ["sm"], ["an"], axis=3, keepdims=1)]
    outs = [("rs", [1, 1, 4, 4], TensorProto.FLOAT), ("rmin", [1, 3], TensorProto.FLOAT),
            ("am", [1, 4, 4], TensorProto.INT64), ("an", [1, 3, 4, 1], TensorProto.INT64),
            ("mn", [1, 3, 4, 4], TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 4, 4]),
                                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info(n, t, s) for n, s, t in outs], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_binary_and_reduction_ops_float_matches_onnxruntime_and_c_equals_golden(tmp_path):
    path = _binary_model(tmp_path / "m.onnx")
    feeds = {"a": RNG.normal(0, 1, (1, 3, 4, 4)).astype(np.float32), "b": RNG.normal(0, 1, (1, 1, 4, 4)).astype(np.float32)}
    g = run_pipeline(load_graph(path))
    ours = run_float(g, feeds)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for name, want in zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)):
        assert ours[name].dtype == want.dtype, name
        np.testing.assert_allclose(ours[name], want, rtol=1e-5, atol=1e-5, err_msg=name)
    calib = tmp_path / "calib.npz"
    np.savez(calib, a=RNG.normal(0, 1, (8, 1, 3, 4, 4)).astype(np.float32),
             b=RNG.normal(0, 1, (8, 1, 1, 4, 4)).astype(np.float32))
    model = CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)
    kernels = [s.kernel for s in model.program.steps]
    assert {"tc_prelu_s8", "tc_minmax_s8", "tc_add_s8", "tc_reduce_s8", "tc_reduce_ext_s8"} <= set(kernels)
    golden = model.run_int8(feeds)
    c_out, _ = model.run_c(feeds)
    for name, v in golden.items():
        np.testing.assert_array_equal(c_out[name], v, err_msg=name)
    s, zp = model.program.tensors["am"].quant.scalar()
    assert (s, zp) == (1.0, 0)  # the index is the int8 code itself
    assert np.all((golden["am"] >= 0) & (golden["am"] < 3))


def test_argmax_over_more_than_128_values_is_refused_in_int8_by_name(tmp_path):
    graph = helper.make_graph([helper.make_node("ArgMax", ["x"], ["y"], name="arg", axis=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 200])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    g = run_pipeline(load_graph(tmp_path / "m.onnx"))
    np.save(tmp_path / "c.npy", RNG.normal(0, 1, (2, 1, 200)).astype(np.float32))
    with pytest.raises(Unsupported, match="'arg'.*more than 128"):
        CompiledModel(g, QuantOptions(calib=str(tmp_path / "c.npy")), warn=lambda m: None)


def test_comparisons_and_where_float_matches_onnxruntime_and_c_equals_golden(tmp_path):
    k = numpy_helper.from_array(np.array([0.5], np.float32), "k")
    nodes = [helper.make_node("Greater", ["a", "b"], ["g"]), helper.make_node("Where", ["g", "a", "b"], ["y"]),
             helper.make_node("Less", ["a", "k"], ["l"]), helper.make_node("LessOrEqual", ["b", "a"], ["le"]),
             helper.make_node("GreaterOrEqual", ["a", "k"], ["ge"]), helper.make_node("Equal", ["a", "a"], ["e"])]
    outs = [("y", TensorProto.FLOAT), ("l", TensorProto.BOOL), ("le", TensorProto.BOOL), ("ge", TensorProto.BOOL),
            ("e", TensorProto.BOOL)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 4, 4]),
                                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info(n, t, [1, 3, 4, 4]) for n, t in outs], [k])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    feeds = {"a": RNG.normal(0, 1, (1, 3, 4, 4)).astype(np.float32), "b": RNG.normal(0, 1, (1, 1, 4, 4)).astype(np.float32)}
    g = run_pipeline(load_graph(path))
    ours = run_float(g, feeds)
    want = dict(zip([n for n, _ in outs], ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)))
    for name, v in want.items():
        assert ours[name].dtype == v.dtype and np.array_equal(ours[name], v), name
    calib = tmp_path / "calib.npz"
    np.savez(calib, a=RNG.normal(0, 1, (8, 1, 3, 4, 4)).astype(np.float32),
             b=RNG.normal(0, 1, (8, 1, 1, 4, 4)).astype(np.float32))
    model = CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)
    assert {"tc_compare_s8", "tc_where_s8"} <= {s.kernel for s in model.program.steps}
    golden = model.run_int8(feeds)
    c_out, _ = model.run_c(feeds)
    for name, v in golden.items():
        np.testing.assert_array_equal(c_out[name], v, err_msg=name)
    assert np.array_equal(golden["e"], np.ones_like(golden["e"]))  # x == x on the same codes
    assert set(np.unique(golden["le"])) <= {0, 1}


# ---- the kernels against their numpy mirrors (ctypes), bad parameters, sanitizers --------------------
from ctypes_kernels import TC_ARG_ERROR, TC_OK, run_c, run_under_sanitizers  # noqa: E402
from tinycc.ops.eltwise import (MINMAX_MAX, MINMAX_MIN, MinMaxParams, PreluParams, make_minmax_params,  # noqa: E402
                                make_prelu_params, minmax_s8, prelu_s8)
from tinycc.ops.reduce import OP_ARGMAX, OP_ARGMIN, OP_MIN, ReduceExtParams, reduce_ext_s8  # noqa: E402
from tinycc.ops.compare import (CompareParams, WhereParams, compare_s8, make_compare_params,  # noqa: E402
                                make_where_params, where_s8)


def _codes(shape):
    return RNG.integers(-128, 128, shape).astype(np.int8)


def _kernel_cases():
    """(kernel, params, inputs, golden output)."""
    cases = []
    for shape, a_shape in [((1, 4, 5, 3), (1, 1, 1, 3)), ((2, 7), (2, 7)), ((3, 1, 6), (1,))]:
        p = make_prelu_params(0.05, int(RNG.integers(-10, 10)), 0.004, int(RNG.integers(-10, 10)), 0.03,
                              int(RNG.integers(-10, 10)), shape, a_shape)
        x, a = _codes(shape), _codes(a_shape)
        cases.append(("tc_prelu_s8", p, [x, a], prelu_s8(p, x, a)))
    for op, (s1, s2, so), (sh1, sh2) in [(MINMAX_MAX, (0.05, 0.05, 0.05), ((2, 3, 4), (2, 3, 4))),
                                         (MINMAX_MIN, (0.02, 0.07, 0.04), ((2, 3, 4), (3, 1))),
                                         (MINMAX_MAX, (0.3, 0.01, 0.02), ((5, 1), (1, 6))),
                                         (MINMAX_MIN, (0.05, 0.05, 0.05), ((3, 5), (1, 5)))]:
        same = s1 == s2 == so  # then every zero point equal too: the raw comparison path
        p = make_minmax_params(op, s1, 4 if same else 3, s2, 4 if same else -7, so, 4 if same else 1, sh1, sh2)
        a, b = _codes(sh1), _codes(sh2)
        cases.append(("tc_minmax_s8", p, [a, b], minmax_s8(p, a, b)))
    for op, shape, axes in [(OP_MIN, (2, 3, 4), (1,)), (OP_MIN, (3, 4, 5), (0, 2)), (OP_ARGMAX, (4, 9), (1,)),
                            (OP_ARGMIN, (3, 5, 2), (1,)), (OP_ARGMAX, (1, 128), (1,))]:
        p = ReduceExtParams.make(op, shape, axes)
        x = _codes(shape)
        cases.append(("tc_reduce_ext_s8", p, [x], reduce_ext_s8(p, x)))
    for op, (s1, s2), (sh1, sh2) in [(0, (0.05, 0.05), ((2, 3, 4), (2, 3, 4))), (3, (0.02, 0.07), ((2, 3, 4), (3, 1))),
                                     (4, (0.3, 0.01), ((5, 1), (1, 6))), (1, (0.1, 0.1), ((7,), (7,)))]:
        p = make_compare_params(op, s1, 3, s2, -7, sh1, sh2)
        a, b = _codes(sh1), _codes(sh2)
        cases.append(("tc_compare_s8", p, [a, b], compare_s8(p, a, b)))
    for c_shape, x_shape, y_shape, out_shape in [((2, 3, 4), (2, 3, 4), (1, 4), (2, 3, 4)),
                                                 ((1, 1, 1, 5), (1, 2, 3, 5), (1, 2, 3, 1), (1, 2, 3, 5))]:
        p = make_where_params(c_shape, 0.05, 2, x_shape, 0.02, -3, y_shape, 0.04, 1, out_shape)
        c = RNG.integers(0, 2, c_shape).astype(np.int8)
        x, y = _codes(x_shape), _codes(y_shape)
        cases.append(("tc_where_s8", p, [c, x, y], where_s8(p, c, x, y)))
    return cases


def test_kernels_equal_their_mirrors():
    for k, (kernel, p, inputs, want) in enumerate(_kernel_cases()):
        status, got = run_c(kernel, p, np.asarray(want).size, *inputs)
        assert status == TC_OK and np.array_equal(got, np.asarray(want).reshape(-1)), f"case {k}: {kernel}"


def test_minmax_with_equal_quantization_is_the_raw_comparison():
    """TFLM MAXIMUM / MINIMUM compare raw int8 values; the rescale (2^30, 1) is the identity."""
    a, b = _codes((64,)), _codes((64,))
    for op, fn in ((MINMAX_MAX, np.maximum), (MINMAX_MIN, np.minimum)):
        p = make_minmax_params(op, 0.1, 5, 0.1, 5, 0.1, 5, (64,), (64,))
        assert (p.in1_multiplier, p.in1_shift) == (1 << 30, 1)
        assert np.array_equal(minmax_s8(p, a, b).reshape(-1), fn(a, b))
        assert np.array_equal(run_c("tc_minmax_s8", p, 64, a, b)[1], fn(a, b))


def test_reduce_ext_ties_take_the_first_index():
    p = ReduceExtParams.make(OP_ARGMAX, (1, 6), (1,))
    x = np.array([1, 7, 3, 7, 7, -2], np.int8)
    assert reduce_ext_s8(p, x).tolist() == [1]
    assert run_c("tc_reduce_ext_s8", p, 1, x)[1].tolist() == [1]


@pytest.mark.parametrize("kernel,p,n_in", [
    ("tc_prelu_s8", PreluParams(0, 0, 0, 1 << 30, 1, 1 << 30, 1, (1, 1, 1, 4), (1, 1, 1, 3), (1, 1, 1, 4)), 2),
    ("tc_prelu_s8", PreluParams(0, 200, 0, 1 << 30, 1, 1 << 30, 1, (1, 1, 1, 4), (1, 1, 1, 4), (1, 1, 1, 4)), 2),
    ("tc_minmax_s8", MinMaxParams(2, 0, 1 << 30, 1, 0, 1 << 30, 1, 0, (1, 1, 1, 4), (1, 1, 1, 4), (1, 1, 1, 4)), 2),
    ("tc_minmax_s8", MinMaxParams(0, 0, -1, 1, 0, 1 << 30, 1, 0, (1, 1, 1, 4), (1, 1, 1, 4), (1, 1, 1, 4)), 2),
    ("tc_reduce_ext_s8", ReduceExtParams(1, 1, (4,) + (1,) * 7, (1,) + (0,) * 7, 4, 0, 0, 0, 0), 1),
    ("tc_reduce_ext_s8", ReduceExtParams(OP_ARGMAX, 1, (200,) + (1,) * 7, (1,) + (0,) * 7, 200, 0, 0, 0, 0), 1),
    ("tc_compare_s8", CompareParams(5, 0, 1 << 30, 0, 0, 1 << 30, 0, (1, 1, 1, 4), (1, 1, 1, 4), (1, 1, 1, 4)), 2),
    ("tc_compare_s8", CompareParams(0, 0, 1 << 30, 1, 0, 1 << 30, 0, (1, 1, 1, 4), (1, 1, 1, 4), (1, 1, 1, 4)), 2),
    ("tc_where_s8", WhereParams(0, 1 << 30, 1, 0, 1 << 30, 1, 0, (1, 1, 1, 3), (1, 1, 1, 4), (1, 1, 1, 4),
                                (1, 1, 1, 4)), 3),
    ("tc_where_s8", WhereParams(0, 1 << 30, 1, 0, 1 << 30, 1, 300, (1, 1, 1, 4), (1, 1, 1, 4), (1, 1, 1, 4),
                                (1, 1, 1, 4)), 3),
])
def test_kernels_reject_bad_params_and_write_nothing(kernel, p, n_in):
    with pytest.raises(ValueError):
        p.validate()
    status, out = run_c(kernel, p, 4, *[_codes(200) for _ in range(n_in)])
    assert status == TC_ARG_ERROR and np.all(out == 0x5A)


def test_kernels_under_sanitizers(tmp_path):
    run_under_sanitizers(tmp_path, [(k, p, inputs, 0, want) for k, p, inputs, want in _kernel_cases()])


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


# ---- every part-A kernel in one model: checked harness, Cortex-M4 under QEMU --------------------------
def _all_kernels_model(path):
    init = [numpy_helper.from_array(RNG.normal(0, 0.5, (3, 3, 3, 3)).astype(np.float32), "w"),
            numpy_helper.from_array(RNG.uniform(0.05, 0.5, (3, 1, 1)).astype(np.float32), "slope"),
            numpy_helper.from_array(RNG.uniform(0.5, 1.5, 3).astype(np.float32), "in_s"),
            numpy_helper.from_array(RNG.normal(0, 0.3, 3).astype(np.float32), "in_b"),
            numpy_helper.from_array(RNG.uniform(0.5, 1.5, 4).astype(np.float32), "ln_s"),
            numpy_helper.from_array(RNG.normal(0, 0.3, 4).astype(np.float32), "ln_b"),
            numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    nodes = [helper.make_node("Conv", ["a", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("PRelu", ["c", "slope"], ["p"]),
             helper.make_node("InstanceNormalization", ["p", "in_s", "in_b"], ["n"]),
             helper.make_node("Gelu", ["n"], ["ge"]),
             helper.make_node("Max", ["ge", "b"], ["mx"]),
             helper.make_node("Greater", ["mx", "b"], ["gt"]),
             helper.make_node("Where", ["gt", "ge", "b"], ["wh"]),
             helper.make_node("LayerNormalization", ["wh", "ln_s", "ln_b"], ["ln"]),
             helper.make_node("ReduceMin", ["ln", "axis1"], ["rmin"], keepdims=1),
             helper.make_node("ArgMax", ["ln"], ["am"], axis=1, keepdims=0)]
    outs = [("rmin", [1, 1, 4, 4], TensorProto.FLOAT), ("am", [1, 4, 4], TensorProto.INT64)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 4, 4]),
                                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info(n, t, s) for n, s, t in outs], init)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), path)
    return path


@pytest.fixture(scope="module")
def all_kernels_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("all_kernels")
    path = _all_kernels_model(tmp / "m.onnx")
    calib = tmp / "calib.npz"
    np.savez(calib, a=RNG.normal(0, 1, (8, 1, 3, 4, 4)).astype(np.float32),
             b=RNG.normal(0, 1, (8, 1, 1, 4, 4)).astype(np.float32))
    model = CompiledModel(run_pipeline(load_graph(path)), QuantOptions(calib=str(calib)), warn=lambda m: None)
    want = {"tc_lut_s8", "tc_prelu_s8", "tc_norm_s8", "tc_minmax_s8", "tc_compare_s8", "tc_where_s8",
            "tc_reduce_ext_s8"}
    assert want <= {s.kernel for s in model.program.steps}
    feeds = {"a": RNG.normal(0, 1, (1, 3, 4, 4)).astype(np.float32), "b": RNG.normal(0, 1, (1, 1, 4, 4)).astype(np.float32)}
    return model, feeds


def test_all_kernels_under_the_checked_harness(all_kernels_model):
    """ASan/UBSan, guard bytes and the per-layer write check: the in-place licences hold."""
    from cbuild import require_sanitizers
    require_sanitizers()
    model, feeds = all_kernels_model
    golden = model.run_int8(feeds)
    c_out, _ = model.run_c(feeds, check=True)
    for name, v in golden.items():
        np.testing.assert_array_equal(c_out[name], v, err_msg=name)


def test_all_kernels_on_cortex_m4_under_qemu(all_kernels_model):
    import shutil
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm missing")
    model, feeds = all_kernels_model
    golden = model.run_int8(feeds)
    out, _ = model.run_qemu(feeds, "cortex-m4", count=False)
    for name, v in golden.items():
        np.testing.assert_array_equal(out[name].reshape(-1), np.asarray(v).reshape(-1), err_msg=name)
