"""One initializer read by several nodes (weight tying, a module called twice, siamese nets): no
pass may rewrite a constant in place, so every reader keeps its values. Float engine ==
onnxruntime, int8 golden == generated C, on models where the sharing meets each pass that
rewrites constants (NHWC weights and constants, BatchNorm folding, bias folding, Div -> Mul)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.ir import IRError
from tinycc.passes import run_pipeline
from tinycc.passes.pipeline import check_constants_unchanged, constant_fingerprints
from tinycc.reference.float_exec import run_float

ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(17)


def _init(name, shape, scale=0.4, positive=False):
    v = RNG.standard_normal(shape).astype(np.float32) * scale
    return numpy_helper.from_array(np.abs(v) + 0.5 if positive else v, name)


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def two_convs():
    """The same 3x3 weight and bias in two convolutions in a row (a block applied twice)."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ra"]),
             helper.make_node("Conv", ["ra", "w", "b"], ["y"], pads=[1, 1, 1, 1])]
    return nodes, [_vi("x", [1, 4, 8, 8])], [_vi("y", [1, 4, 8, 8])], [_init("w", (4, 4, 3, 3)), _init("b", (4,))]


def siamese():
    """Two inputs through one conv + depthwise stack, the embeddings subtracted."""
    nodes = []
    for side in ("l", "r"):
        nodes += [helper.make_node("Conv", [f"x{side}", "w", "b"], [f"c{side}"], pads=[1, 1, 1, 1], strides=[2, 2]),
                  helper.make_node("Relu", [f"c{side}"], [f"r{side}"]),
                  helper.make_node("Conv", [f"r{side}", "dw"], [f"d{side}"], pads=[1, 1, 1, 1], group=6),
                  helper.make_node("GlobalAveragePool", [f"d{side}"], [f"g{side}"])]
    nodes.append(helper.make_node("Sub", ["gl", "gr"], ["y"]))
    return (nodes, [_vi("xl", [1, 3, 10, 10]), _vi("xr", [1, 3, 10, 10])], [_vi("y", [1, 6, 1, 1])],
            [_init("w", (6, 3, 3, 3)), _init("b", (6,)), _init("dw", (6, 1, 3, 3))])


def conv_and_add():
    """One constant is the weight of a convolution and the operand of an Add before it."""
    nodes = [helper.make_node("Add", ["x", "w"], ["a"]),
             helper.make_node("Conv", ["a", "w"], ["y"], pads=[1, 1, 1, 1])]
    return nodes, [_vi("x", [1, 4, 3, 3])], [_vi("y", [1, 1, 3, 3])], [_init("w", (1, 4, 3, 3))]


def depthwise_and_conv():
    """A depthwise weight [C, 1, 3, 3] also used by a regular convolution of one input channel."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["a", "w"], ["y"], pads=[1, 1, 1, 1], group=4)]
    return nodes, [_vi("x", [1, 1, 6, 6])], [_vi("y", [1, 4, 6, 6])], [_init("w", (4, 1, 3, 3))]


def two_gemms_and_matmul():
    """A square weight in a Gemm (transB=1), a Gemm (transB=0) and a MatMul."""
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["a"], transB=1),
             helper.make_node("Relu", ["a"], ["ra"]),
             helper.make_node("Gemm", ["ra", "w", "b"], ["c"]),
             helper.make_node("MatMul", ["c", "w"], ["y"])]
    return nodes, [_vi("x", [1, 8])], [_vi("y", [1, 8])], [_init("w", (8, 8)), _init("b", (8,))]


def two_batchnorms_after_shared_conv():
    """A shared conv weight, each use followed by a BatchNorm (folded: the weight is scaled per
    use) and both BatchNorms sharing their parameters; then a standalone BatchNorm (-> Mul + Add)
    reading the same parameters."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["a", "s", "t", "m", "v"], ["an"]),
             helper.make_node("Relu", ["an"], ["ra"]),
             helper.make_node("Conv", ["ra", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "t", "m", "v"], ["cn"]),
             helper.make_node("Add", ["cn", "ra"], ["d"]),
             helper.make_node("BatchNormalization", ["d", "s", "t", "m", "v"], ["y"])]
    inits = [_init("w", (4, 4, 3, 3)), _init("s", (4,)), _init("t", (4,)), _init("m", (4,)),
             _init("v", (4,), positive=True)]
    return nodes, [_vi("x", [1, 4, 6, 6])], [_vi("y", [1, 4, 6, 6])], inits


def bias_add_and_div():
    """A per-channel constant that is folded into one conv's bias, added after another conv
    (kept), and divided by (Div -> Mul by its reciprocal)."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"]),
             helper.make_node("Add", ["a", "k"], ["b"]),
             helper.make_node("Conv", ["b", "w"], ["c"]),
             helper.make_node("Relu", ["c"], ["rc"]),
             helper.make_node("Add", ["rc", "k"], ["d"]),
             helper.make_node("Div", ["d", "k"], ["e"]),
             helper.make_node("Mul", ["e", "k"], ["y"])]
    k = numpy_helper.from_array((np.abs(RNG.standard_normal((1, 4, 1, 1))) + 0.5).astype(np.float32), "k")
    return nodes, [_vi("x", [1, 4, 5, 5])], [_vi("y", [1, 4, 5, 5])], [_init("w", (4, 4, 1, 1)), k]


def pad_folded_shared():
    """Two zero Pads (folded into their convs) feeding convolutions with one shared weight."""
    pads = numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "p")
    nodes = [helper.make_node("Pad", ["x", "p"], ["px"]),
             helper.make_node("Conv", ["px", "w"], ["a"]),
             helper.make_node("Pad", ["a", "p"], ["pa"]),
             helper.make_node("Conv", ["pa", "w"], ["y"])]
    return nodes, [_vi("x", [1, 3, 6, 6])], [_vi("y", [1, 3, 8, 8])], [_init("w", (3, 3, 3, 3)), pads]


MODELS = [two_convs, siamese, conv_and_add, depthwise_and_conv, two_gemms_and_matmul,
          two_batchnorms_after_shared_conv, bias_add_and_div, pad_folded_shared]


def _save(build, path):
    nodes, inputs, outputs, inits = build()
    graph = helper.make_graph(nodes, build.__name__, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    feeds = {vi.name: RNG.standard_normal([d.dim_value for d in vi.type.tensor_type.shape.dim]).astype(np.float32)
             for vi in inputs}
    return model, feeds


@pytest.mark.parametrize("build", MODELS, ids=lambda b: b.__name__)
def test_shared_initializer_float_matches_onnxruntime(tmp_path, build):
    model, feeds = _save(build, tmp_path / "m.onnx")
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    got = run_float(run_pipeline(load_graph(tmp_path / "m.onnx")), feeds)
    (name, value), = got.items()
    np.testing.assert_allclose(value, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()), err_msg=name)


@pytest.mark.parametrize("build", [two_convs, siamese, conv_and_add, depthwise_and_conv, two_gemms_and_matmul,
                                   two_batchnorms_after_shared_conv, bias_add_and_div],
                         ids=lambda b: b.__name__)
def test_shared_initializer_int8_golden_equals_c(tmp_path, build):
    _, feeds = _save(build, tmp_path / "m.onnx")
    compiled = CompiledModel(run_pipeline(load_graph(tmp_path / "m.onnx")), QuantOptions(), warn=lambda m: None)
    golden = compiled.run_int8(feeds)
    c_out, _ = compiled.run_c(feeds)
    for name, v in golden.items():
        np.testing.assert_array_equal(c_out[name], v, err_msg=name)


def test_a_pass_that_changes_a_constant_in_place_is_caught():
    """The pipeline's guard: any in-place change of a constant (values, shape, quantization) is
    an internal error naming the pass, whether or not the constant is shared."""
    nodes, inputs, outputs, inits = two_convs()
    g = load_graph_from(helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                                          opset_imports=[helper.make_opsetid("", 17)]))
    before = constant_fingerprints(g)
    check_constants_unchanged(before, g, "nothing")
    w = next(t for t in g.tensors.values() if t.is_const and t.data.ndim == 4)
    w.data = np.ascontiguousarray(w.data.transpose(0, 2, 3, 1))
    w.shape = w.data.shape
    with pytest.raises(IRError, match="layout_nhwc changed constant"):
        check_constants_unchanged(before, g, "layout_nhwc")


def load_graph_from(model: onnx.ModelProto):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(model, Path(tmp) / "m.onnx")
        return load_graph(Path(tmp) / "m.onnx")
