"""MatMul of two activations in int8 (TFLM BATCH_MATMUL arithmetic, tc_batch_matmul_s8) and the
attention pattern around it (Transpose, Softmax over any axis): the C kernel == its numpy mirror
on random shapes with broadcast batch axes and extreme zero points, the mirror within one LSB of
the real product, bad parameters refused by both, ASan/UBSan; end to end, float == onnxruntime
and the generated C == the int8 golden model."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ctypes_kernels import TC_ARG_ERROR, TC_OK, SENTINEL, run_c, run_under_sanitizers
from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel, run_compiled
from tinycc.frontend import load_graph
from tinycc.golden.boundary import dequantize
from tinycc.ops.matmul import BatchMatmulParams, batch_matmul_s8, fold_batch_axes, make_batch_matmul_params
from tinycc.passes import run_pipeline
from tinycc.reference.float_exec import run_float

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(1414)

# (lhs shape, rhs shape) as numpy.matmul takes them: broadcast batches, 1-D operands, rank 5
SHAPE_PAIRS = [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 6)), ((2, 3, 4), (4, 6)), ((3, 4), (5, 4, 2)),
               ((2, 1, 3, 4), (1, 5, 4, 2)), ((4,), (4, 3)), ((3, 4), (4,)), ((6,), (6,)),
               ((2, 2, 3, 1, 7), (2, 1, 3, 7, 2)), ((1, 1, 5, 9), (9, 1)), ((1, 2, 8, 8), (1, 2, 8, 8))]


def _random_case(lhs_shape, rhs_shape, seed):
    rng = np.random.default_rng(seed)
    zps = rng.choice([-128, 127, 0, 5, -77], 3)
    p = make_batch_matmul_params(lhs_shape, rhs_shape, rng.uniform(0.005, 0.1), int(zps[0]), rng.uniform(0.005, 0.1),
                                 int(zps[1]), rng.uniform(0.02, 2.0), int(zps[2]))
    a = rng.integers(-128, 128, lhs_shape, dtype=np.int8)
    b = rng.integers(-128, 128, rhs_shape, dtype=np.int8)
    return p, a, b


@pytest.mark.parametrize("k", range(len(SHAPE_PAIRS)))
def test_c_kernel_equals_golden(k):
    lhs_shape, rhs_shape = SHAPE_PAIRS[k]
    want_shape = np.matmul(np.zeros(lhs_shape), np.zeros(rhs_shape)).shape
    for seed in range(4):
        p, a, b = _random_case(lhs_shape, rhs_shape, 100 * k + seed)
        golden = batch_matmul_s8(p, a, b)
        assert golden.size == int(np.prod(want_shape))
        status, out = run_c("tc_batch_matmul_s8", p, golden.size, a, b)
        assert status == TC_OK
        np.testing.assert_array_equal(out, golden.reshape(-1), err_msg=f"{lhs_shape} @ {rhs_shape} seed {seed}")


def test_c_kernel_saturates_like_golden_with_fused_clamp():
    """depth at its limit with every product 255 * 255 (the int32 accumulator's worst case), a
    multiplier > 1 and a fused Relu6-like clamp."""
    p = make_batch_matmul_params((2, 33025), (33025, 1), 1.0, -128, 1.0, 127, 0.5, 3, act_min=-10, act_max=90)
    a = np.full((2, 33025), 127, np.int8)
    a[1] = -128
    b = np.full((33025, 1), -128, np.int8)
    golden = batch_matmul_s8(p, a, b)
    status, out = run_c("tc_batch_matmul_s8", p, 2, a, b)
    assert status == TC_OK and np.array_equal(out, golden.reshape(-1))
    assert golden.reshape(-1).tolist() == [-10, 3]  # row 1: lhs - lhs_zp = 0, so out_zp


@pytest.mark.parametrize("k", [1, 4, 8])
def test_golden_within_one_lsb_of_the_real_product(k):
    lhs_shape, rhs_shape = SHAPE_PAIRS[k]
    p, a, b = _random_case(lhs_shape, rhs_shape, 7 + k)
    p = BatchMatmulParams(**{**p.__dict__, "out_zp": 0})
    sa, sb, so = 0.03, 0.02, 0.25
    p = make_batch_matmul_params(lhs_shape, rhs_shape, sa, p.lhs_zp, sb, p.rhs_zp, so, 0)
    real = np.matmul(dequantize(a, sa, p.lhs_zp).astype(np.float64), dequantize(b, sb, p.rhs_zp).astype(np.float64))
    want = np.clip(np.round(real / so), -128, 127)
    got = batch_matmul_s8(p, a, b).reshape(want.shape).astype(np.int64)
    assert np.max(np.abs(got - want)) <= 1


def test_fold_batch_axes_merges_alike_axes():
    assert fold_batch_axes([2, 3, 4, 5], [2, 3, 1, 1]) == ([1, 6, 20], [1, 6, 1])
    assert fold_batch_axes([1, 1, 4], [4]) == ([1, 1, 4], [1, 1, 4])
    assert fold_batch_axes([2, 3, 1], [3, 5]) == ([2, 3, 1], [1, 3, 5])
    with pytest.raises(ValueError, match="broadcast"):
        fold_batch_axes([4], [7])
    with pytest.raises(ValueError, match="more than 3"):
        fold_batch_axes([2, 1, 2, 1], [1, 2, 1, 2])


def _bad_params():
    p = make_batch_matmul_params((2, 3, 4), (2, 4, 5), 0.1, 0, 0.1, 0, 0.1, 0)
    rep = lambda **kw: BatchMatmulParams(**{**p.__dict__, **kw})  # noqa: E731
    return [rep(lhs_batch=(1, 1, 3)), rep(depth=0), rep(depth=33026), rep(rhs_zp=128), rep(out_zp=-129),
            rep(act_min=5, act_max=4), rep(shift=31), rep(multiplier=-1), rep(rows=0)]


@pytest.mark.parametrize("k", range(9))
def test_bad_parameters_are_refused_by_c_and_golden(k):
    p = _bad_params()[k]
    a = np.zeros(2 * 3 * 4, np.int8)
    b = np.zeros(2 * 4 * 5, np.int8)
    with pytest.raises(ValueError):
        batch_matmul_s8(p, a, b)
    size = max(1, 2 * max(p.rows, 1) * max(p.cols, 1))
    status, out = run_c("tc_batch_matmul_s8", p, size, np.zeros(40000, np.int8), np.zeros(40000, np.int8))
    assert status == TC_ARG_ERROR and np.all(out == SENTINEL)


def test_kernel_under_asan_ubsan(tmp_path):
    cases = []
    for k in (2, 4, 8, 9):
        p, a, b = _random_case(*SHAPE_PAIRS[k], seed=900 + k)
        cases.append(("tc_batch_matmul_s8", p, [a, b], 0, batch_matmul_s8(p, a, b)))
    run_under_sanitizers(tmp_path, cases)


# ---- end to end: an attention block ------------------------------------------------------------
TOKENS, DIM, HEADS = 8, 16, 2


def _attention_model(path, softmax_axis=-1, opset=17):
    """x [1, T, D] -> Q, K, V (MatMul with constants = Dense), heads split by Reshape/Transpose,
    Q @ K^T (two activations), scaled, Softmax, @ V, heads merged, output projection; then
    Softmax over the token axis (axis 1 of [1, T, D]) and over the heads (axis 1 of the scores):
    not innermost."""
    hd = DIM // HEADS
    inits = [numpy_helper.from_array(RNG.normal(0, 0.4, (DIM, DIM)).astype(np.float32), n)
             for n in ("wq", "wk", "wv", "wo")]
    inits += [numpy_helper.from_array(np.array([1, TOKENS, HEADS, hd], np.int64), "split"),
              numpy_helper.from_array(np.array([1, TOKENS, DIM], np.int64), "merge"),
              numpy_helper.from_array(np.array(1 / np.sqrt(hd), np.float32), "scale")]
    n = helper.make_node
    nodes = [n("MatMul", ["x", "wq"], ["q0"]), n("MatMul", ["x", "wk"], ["k0"]), n("MatMul", ["x", "wv"], ["v0"]),
             n("Reshape", ["q0", "split"], ["q1"]), n("Transpose", ["q1"], ["q"], perm=[0, 2, 1, 3]),
             n("Reshape", ["k0", "split"], ["k1"]), n("Transpose", ["k1"], ["kt"], perm=[0, 2, 3, 1]),
             n("Reshape", ["v0", "split"], ["v1"]), n("Transpose", ["v1"], ["v"], perm=[0, 2, 1, 3]),
             n("MatMul", ["q", "kt"], ["s0"], name="qk"), n("Mul", ["s0", "scale"], ["s1"]),
             n("Softmax", ["s1"], ["a"], axis=softmax_axis, name="attn_softmax"),
             n("MatMul", ["a", "v"], ["o0"], name="av"), n("Transpose", ["o0"], ["o1"], perm=[0, 2, 1, 3]),
             n("Reshape", ["o1", "merge"], ["o2"]), n("MatMul", ["o2", "wo"], ["y"]),
             n("Softmax", ["y"], ["z"], axis=1, name="token_softmax"),
             n("Softmax", ["s1"], ["h"], axis=1, name="head_softmax")]
    graph = helper.make_graph(nodes, "attention", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, TOKENS, DIM])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, TOKENS, DIM]),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, TOKENS, DIM]),
                               helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, HEADS, TOKENS, TOKENS])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return model


@pytest.mark.parametrize("softmax_axis", [-1, 2])
def test_attention_float_matches_onnxruntime(tmp_path, softmax_axis):
    model = _attention_model(tmp_path / "m.onnx", softmax_axis)
    x = RNG.normal(0, 1, (1, TOKENS, DIM)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = dict(zip(["y", "z", "h"], sess.run(None, {"x": x})))
    got = run_float(run_pipeline(load_graph(tmp_path / "m.onnx")), {"x": x})
    for k in ("y", "z", "h"):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5)


def _sqnr_db(ref, test):
    ref, test = np.asarray(ref, np.float64), np.asarray(test, np.float64)
    return 10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - test) ** 2), 1e-30))


@pytest.mark.parametrize("softmax_axis", [-1, 2])
def test_attention_int8_c_equals_golden(tmp_path, softmax_axis):
    """Q.K^T and P.V are tc_batch_matmul_s8 steps, Softmax over axis 2 of [1, H, T, T] and over
    the token axis become transpose + tc_softmax_s8 + transpose; C == golden bit for bit, and
    int8 follows float (SQNR of the projection output)."""
    _attention_model(tmp_path / "m.onnx", softmax_axis)
    calib = tmp_path / "calib.npy"
    np.save(calib, RNG.normal(0, 1, (32, 1, TOKENS, DIM)).astype(np.float32))
    g = run_pipeline(load_graph(tmp_path / "m.onnx"))
    compiled = CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)
    kernels = {s.node: s.kernel for s in compiled.program.steps}
    assert kernels["qk"] == kernels["av"] == "tc_batch_matmul_s8"
    transposed = ["tc_transpose_s8", "tc_softmax_s8", "tc_transpose_s8"]
    by_node = {name: [s.kernel for s in compiled.program.steps if s.node == name]
               for name in ("attn_softmax", "token_softmax", "head_softmax")}
    # axis 1 of [1, T, D]; the heads axis is innermost once the scores are NHWC, their rows (axis
    # 2, physical axis 1) are not: perm (0, 2, 3, 1), which is not its own inverse
    assert by_node["token_softmax"] == transposed and by_node["head_softmax"] == ["tc_softmax_s8"]
    # the scores' last axis is W of the NHWC layout (physical axis 2): transposed too
    assert by_node["attn_softmax"] == transposed
    for k in range(3):
        x = RNG.normal(0, 1, (1, TOKENS, DIM)).astype(np.float32)
        golden = compiled.run_int8({"x": x})
        c_out, _ = compiled.run_c({"x": x})
        for name, v in golden.items():
            np.testing.assert_array_equal(c_out[name], v, err_msg=f"{name} sample {k}")
        ref = run_float(g, {"x": x})
        deq = run_compiled(compiled, [{"x": x}], "int8", dequantize=True)[0]
        assert _sqnr_db(ref["y"], deq["y"]) > 25, _sqnr_db(ref["y"], deq["y"])


def test_torch_multihead_attention_export_compiles_bit_exact(tmp_path):
    """torch.nn.MultiheadAttention as torch.onnx.export (dynamo=False) writes it (Gemm in-projection,
    Gather of the q/k/v chunks, MatMul of two activations, Softmax): float == onnxruntime, int8 C ==
    golden. (dynamo=True gives the same operators less Shape/Slice chains; measured, not run here:
    18 s of export.)"""
    torch = pytest.importorskip("torch")

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)
            self.mha = torch.nn.MultiheadAttention(16, 2, batch_first=True)

        def forward(self, x):
            t = self.conv(x).flatten(2).transpose(1, 2)
            return self.mha(t, t, t, need_weights=False)[0]

    torch.manual_seed(0)
    x = torch.randn(1, 3, 6, 6)
    path = tmp_path / "mha.onnx"
    torch.onnx.export(Block().eval(), (x,), str(path), dynamo=False, opset_version=17)
    g = run_pipeline(load_graph(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    got = run_float(g, {g.inputs[0]: x.numpy()})[g.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    calib = tmp_path / "calib.npy"
    np.save(calib, RNG.normal(0, 1, (16, 1, 3, 6, 6)).astype(np.float32))
    compiled = CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)
    assert sum(s.kernel == "tc_batch_matmul_s8" for s in compiled.program.steps) == 2
    feeds = {g.inputs[0]: x.numpy()}
    golden = compiled.run_int8(feeds)
    c_out, _ = compiled.run_c(feeds)
    for name, v in golden.items():
        np.testing.assert_array_equal(c_out[name], v)
    deq = run_compiled(compiled, [feeds], "int8", dequantize=True)[0][g.outputs[0]]
    assert _sqnr_db(want, deq) > 20, _sqnr_db(want, deq)


def test_log_softmax_over_a_non_innermost_axis_int8(tmp_path):
    """LogSoftmax over axis 1 of [1, T, D] (tokens): transpose + tc_log_softmax_s8 + transpose,
    C == golden, and the golden equals the innermost kernel run on the transposed codes."""
    w = numpy_helper.from_array(RNG.normal(0, 0.5, (DIM, DIM)).astype(np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("LogSoftmax", ["h"], ["y"], axis=1, name="lsm")]
    model = helper.make_model(helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                           [1, TOKENS, DIM])],
                                                [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w]),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "m.onnx")
    x = RNG.normal(0, 1, (1, TOKENS, DIM)).astype(np.float32)
    g = run_pipeline(load_graph(tmp_path / "m.onnx"))
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(run_float(g, {"x": x})["y"], want, rtol=1e-5, atol=1e-5)
    calib = tmp_path / "calib.npy"
    np.save(calib, RNG.normal(0, 1, (16, 1, TOKENS, DIM)).astype(np.float32))
    compiled = CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)
    steps = [s for s in compiled.program.steps if s.node == "lsm"]
    assert [s.kernel for s in steps] == ["tc_transpose_s8", "tc_log_softmax_s8", "tc_transpose_s8"]
    seen = {}
    golden = compiled.run_int8({"x": x}, observe=lambda t, v: seen.__setitem__(t, v))
    c_out, _ = compiled.run_c({"x": x})
    np.testing.assert_array_equal(c_out["y"], golden["y"])
    from tinycc.ops.softmax import log_softmax_s8

    inner = steps[1]
    codes = seen[steps[0].inputs[0]].reshape(TOKENS, DIM).T  # [D][T]: each row one softmax
    table = compiled.program.blobs[inner.args[0].ref]
    want_codes = log_softmax_s8(inner.params, table, codes).T
    np.testing.assert_array_equal(golden["y"].reshape(TOKENS, DIM), want_codes)


@pytest.mark.parametrize("const_side", ["lhs", "rhs"])
def test_matmul_with_a_constant_operand_of_rank_3(tmp_path, const_side):
    """A constant that is not a 2-D right side (so not a Dense layer) is an int8 operand with its
    own per-tensor parameters: C == golden, float == onnxruntime."""
    c = numpy_helper.from_array(RNG.normal(0, 0.5, (2, 6, 4) if const_side == "lhs" else (2, 5, 3))
                                .astype(np.float32), "c")
    ins = ["c", "x"] if const_side == "lhs" else ["x", "c"]
    shape = [2, 4, 3] if const_side == "lhs" else [2, 4, 5]
    nodes = [helper.make_node("Relu", ["x0"], ["x"]), helper.make_node("MatMul", ins, ["y"], name="mm")]
    model = helper.make_model(helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x0", TensorProto.FLOAT,
                                                                                           shape)],
                                                [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [c]),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "m.onnx")
    g = run_pipeline(load_graph(tmp_path / "m.onnx"))
    x = RNG.normal(0, 1, shape).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x0": x})[0]
    np.testing.assert_allclose(run_float(g, {"x0": x})["y"], want, rtol=1e-5, atol=1e-5)
    calib = tmp_path / "calib.npy"
    np.save(calib, RNG.normal(0, 1, (8, *shape)).astype(np.float32))
    compiled = CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)
    step = next(s for s in compiled.program.steps if s.node == "mm")
    assert step.kernel == "tc_batch_matmul_s8"
    assert [a.kind for a in step.args] == (["const", "in", "out"] if const_side == "lhs" else ["in", "const", "out"])
    golden = compiled.run_int8({"x0": x})
    c_out, _ = compiled.run_c({"x0": x})
    np.testing.assert_array_equal(c_out["y"], golden["y"])
