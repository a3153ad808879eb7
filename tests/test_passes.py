"""Before/after tests of every graph pass (tinycc/passes/), one section per pass.

Each case builds a tiny IR graph, runs the one pass, and checks the graph it expects (ops in
order, the attributes and constants the pass rewrites) and that the float semantics are unchanged
(the float reference executor on random inputs, before and after). Each pass also has a case
where it must not fire: the graph comes back unchanged. The whole zoo runs the whole pipeline
against onnxruntime elsewhere (tests/test_float_zoo.py); these pin each rewrite and its limits.
"""
from __future__ import annotations

import numpy as np
import pytest

from tinycc.ir import NHWC_PERM, Graph, Node, Tensor, validate
from tinycc.ops.registry import OPS
from tinycc.passes.cleanup import dce, fold_constants, remove_identity
from tinycc.passes.fold import decompose_batchnorm, div_to_mul, fold_batchnorm, fold_bias_add, fold_pad
from tinycc.passes.fuse import fuse_activation, fuse_self_gating
from tinycc.passes.layout import layout_nhwc, simplify_transposes
from tinycc.passes.patterns import fuse_patterns
from tinycc.passes.pipeline import PASS_NAMES
from tinycc.reference.float_exec import run_float

RNG = np.random.default_rng(10)
CONV = dict(kernel=(3, 3), strides=(1, 1), dilations=(1, 1), pads=(1, 1, 1, 1), group=1, layout="NCHW", act=None)


# ---- a tiny IR builder ---------------------------------------------------------------------------
class Builder:
    def __init__(self):
        self.g = Graph("t")

    def input(self, shape, name="x"):
        self.g.add_tensor(Tensor(name, tuple(shape)))
        self.g.inputs.append(name)
        return name

    def const(self, data, hint="c"):
        return self.g.const(np.asarray(data, dtype=np.float32), hint)

    def rand(self, *shape, hint="w"):
        return self.const(RNG.normal(0, 0.5, shape), hint)

    def __call__(self, op, inputs, n_out=1, name=None, **attrs):
        outs = [self.g.fresh_name(op.lower()) for _ in range(n_out)]
        node = Node(name or self.g.fresh_name(op), op, list(inputs), outs, attrs)
        for o in outs:
            self.g.add_tensor(Tensor(o, ()))
        for o, (shape, dtype) in zip(outs, OPS[op].infer(self.g, node)):
            self.g.tensors[o].shape, self.g.tensors[o].dtype = tuple(shape), dtype
        self.g.add_node(node)
        return outs[0] if n_out == 1 else outs

    def done(self, *outputs):
        self.g.outputs = list(outputs)
        validate(self.g)
        return self.g


def ops(g):
    return [n.op for n in g.nodes]


def node(g, op):
    (n,) = [n for n in g.nodes if n.op == op]
    return n


def inputs_for(g):
    return {name: RNG.normal(0, 1, g.tensors[name].shape).astype(np.float32) for name in g.inputs}


def run_pass(fn, g):
    """(changed, graph after) with the float outputs checked equal before and after."""
    after = g.copy()
    changed = fn(after)
    after.toposort()
    validate(after)
    feed = inputs_for(g)
    want, got = run_float(g, feed), run_float(after, feed)
    for name in g.outputs:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5, err_msg=name)
    return changed, after


def unchanged(fn, g):
    changed, after = run_pass(fn, g)
    assert not changed
    assert ops(after) == ops(g)
    assert [n.inputs for n in after.nodes] == [n.inputs for n in g.nodes]
    assert [n.attrs for n in after.nodes] == [n.attrs for n in g.nodes]


def test_every_pipeline_pass_has_a_section_here():
    tested = {"remove_identity", "fold_constants", "fold_batchnorm", "decompose_batchnorm", "fold_bias_add",
              "div_to_mul", "fold_pad", "fuse_self_gating", "fuse_patterns", "fuse_activation", "layout_nhwc", "simplify_transposes", "dce"}
    assert set(PASS_NAMES) == tested


# ---- remove_identity -------------------------------------------------------------------------------
def test_remove_identity():
    b = Builder()
    y = b("Relu", [b("Identity", [b.input((1, 4))])])
    changed, g = run_pass(remove_identity, b.done(y))
    assert changed and ops(g) == ["Relu"] and node(g, "Relu").inputs == ["x"]


def test_remove_identity_keeps_the_copy_of_an_input_that_is_an_output():
    b = Builder()
    unchanged(remove_identity, b.done(b("Identity", [b.input((1, 4))])))


# ---- fold_constants ---------------------------------------------------------------------------------
def test_fold_constants():
    b = Builder()
    w = b("Transpose", [b.rand(3, 4)], perm=(1, 0))  # a weight transform left by an exporter
    y = b("Add", [b.input((4, 3)), w], act=None)
    changed, g = run_pass(fold_constants, b.done(y))
    assert changed and ops(g) == ["Add"] and g.tensors[node(g, "Add").inputs[1]].is_const


def test_fold_constants_leaves_run_time_inputs():
    b = Builder()
    unchanged(fold_constants, b.done(b("Transpose", [b.input((3, 4))], perm=(1, 0))))


# ---- fold_batchnorm ----------------------------------------------------------------------------------
def _bn(b, x, c=4, axis=1):
    scale, bias, mean = (b.rand(c, hint=h) for h in ("s", "b", "m"))
    var = b.const(RNG.uniform(0.5, 2, c), "v")
    return b("BatchNorm", [x, scale, bias, mean, var], epsilon=1e-5, axis=axis)


def test_fold_batchnorm_into_conv():
    b = Builder()
    conv = b("Conv", [b.input((1, 3, 5, 5)), b.rand(4, 3, 3, 3), ""], **CONV)
    changed, g = run_pass(fold_batchnorm, b.done(_bn(b, conv)))
    assert changed and ops(g) == ["Conv"]
    assert node(g, "Conv").inputs[2]  # the folded shift became the bias


def test_fold_batchnorm_into_dense():
    b = Builder()
    y = _bn(b, b("Dense", [b.input((2, 3)), b.rand(4, 3), b.rand(4)], act=None), axis=1)
    changed, g = run_pass(fold_batchnorm, b.done(y))
    assert changed and ops(g) == ["Dense"]


def test_fold_batchnorm_not_when_the_conv_output_has_a_second_consumer():
    b = Builder()
    conv = b("Conv", [b.input((1, 3, 5, 5)), b.rand(4, 3, 3, 3), ""], **CONV)
    g = b.done(_bn(b, conv), b("Relu", [conv]))
    unchanged(fold_batchnorm, g)


def test_fold_batchnorm_not_across_a_fused_activation_or_another_axis():
    b = Builder()
    conv = b("Conv", [b.input((1, 3, 5, 5)), b.rand(4, 3, 3, 3), ""], **{**CONV, "act": {"min": 0.0, "max": None}})
    unchanged(fold_batchnorm, b.done(_bn(b, conv)))
    b = Builder()
    dense = b("Dense", [b.input((4, 3)), b.rand(4, 3), ""], act=None)
    unchanged(fold_batchnorm, b.done(_bn(b, dense, axis=0)))  # over the rows, not the channels


# ---- decompose_batchnorm ------------------------------------------------------------------------------
def test_decompose_batchnorm():
    b = Builder()
    changed, g = run_pass(decompose_batchnorm, b.done(_bn(b, b.input((1, 4, 3, 3)))))
    assert changed and ops(g) == ["Mul", "Add"]
    assert g.tensors[node(g, "Mul").inputs[1]].shape == (1, 4, 1, 1)


def test_decompose_batchnorm_without_batchnorm():
    b = Builder()
    unchanged(decompose_batchnorm, b.done(b("Relu", [b.input((1, 4))])))


# ---- fold_bias_add -----------------------------------------------------------------------------------
def test_fold_bias_add_into_dense():
    b = Builder()
    y = b("Add", [b("Dense", [b.input((2, 3)), b.rand(4, 3), ""], act=None), b.rand(4)], act=None)
    changed, g = run_pass(fold_bias_add, b.done(y))
    assert changed and ops(g) == ["Dense"] and node(g, "Dense").inputs[2]


def test_fold_bias_add_into_nchw_conv_with_a_bias():
    b = Builder()
    conv = b("Conv", [b.input((1, 3, 5, 5)), b.rand(4, 3, 3, 3), b.rand(4)], **CONV)
    changed, g = run_pass(fold_bias_add, b.done(b("Add", [conv, b.rand(1, 4, 1, 1)], act=None)))
    assert changed and ops(g) == ["Conv"]


def test_fold_bias_add_not_for_a_constant_that_is_not_per_channel():
    b = Builder()
    conv = b("Conv", [b.input((1, 3, 5, 5)), b.rand(4, 3, 3, 3), ""], **CONV)
    unchanged(fold_bias_add, b.done(b("Add", [conv, b.rand(1, 4, 5, 5)], act=None)))


def test_fold_bias_add_not_when_the_dense_output_has_a_second_consumer():
    b = Builder()
    d = b("Dense", [b.input((2, 3)), b.rand(4, 3), ""], act=None)
    unchanged(fold_bias_add, b.done(b("Add", [d, b.rand(4)], act=None), b("Relu", [d])))


# ---- div_to_mul --------------------------------------------------------------------------------------
def test_div_to_mul():
    b = Builder()
    y = b("Div", [b.input((2, 4)), b.const([1.0, 2.0, 4.0, 0.5])], act=None)
    changed, g = run_pass(div_to_mul, b.done(y))
    assert changed and ops(g) == ["Mul"]
    np.testing.assert_array_equal(g.tensors[node(g, "Mul").inputs[1]].data, [1.0, 0.5, 0.25, 2.0])


def test_div_to_mul_not_for_a_run_time_divisor_or_a_zero():
    b = Builder()
    x = b.input((2, 4))
    b.g.add_tensor(Tensor("d", (2, 4)))
    b.g.inputs.append("d")
    unchanged(div_to_mul, b.done(b("Div", [x, "d"], act=None)))
    b = Builder()
    y = b("Div", [b.input((2, 4)), b.const([1.0, 0.0, 4.0, 0.5])], act=None)
    g = b.done(y)
    changed, after = div_to_mul(g.copy()), g  # x / 0 is inf: the float check cannot compare it
    assert not changed and ops(after) == ["Div"]


# ---- fold_pad ----------------------------------------------------------------------------------------
def test_fold_pad_into_conv():
    b = Builder()
    pad = b("Pad", [b.input((1, 3, 5, 5))], pads=(0, 0, 1, 2, 0, 0, 3, 0), value=0.0)
    conv = b("Conv", [pad, b.rand(4, 3, 3, 3), ""], **{**CONV, "pads": (0, 0, 0, 0)})
    changed, g = run_pass(fold_pad, b.done(conv))
    assert changed and ops(g) == ["Conv"] and node(g, "Conv").attrs["pads"] == (1, 2, 3, 0)


def test_fold_pad_not_with_a_non_zero_constant_or_a_channel_pad():
    b = Builder()
    pad = b("Pad", [b.input((1, 3, 5, 5))], pads=(0, 0, 1, 1, 0, 0, 1, 1), value=0.5)
    unchanged(fold_pad, b.done(b("Conv", [pad, b.rand(4, 3, 3, 3), ""], **CONV)))
    b = Builder()
    pad = b("Pad", [b.input((1, 3, 5, 5))], pads=(0, 1, 0, 0, 0, 0, 0, 0), value=0.0)
    unchanged(fold_pad, b.done(b("Conv", [pad, b.rand(4, 4, 3, 3), ""], **CONV)))


def test_fold_pad_not_into_an_op_that_cannot_absorb_it():
    b = Builder()
    pad = b("Pad", [b.input((1, 3, 5, 5))], pads=(0, 0, 1, 1, 0, 0, 1, 1), value=0.0)
    unchanged(fold_pad, b.done(b("Relu", [pad])))


# ---- fuse_activation ---------------------------------------------------------------------------------
def test_fuse_relu_into_conv_and_merge_clips():
    b = Builder()
    conv = b("Conv", [b.input((1, 3, 5, 5)), b.rand(4, 3, 3, 3), ""], **CONV)
    y = b("Clip", [b("Clip", [b("Relu", [conv])], min=-1.0, max=6.0)], min=None, max=0.5)
    changed, g = run_pass(fuse_activation, b.done(y))
    assert changed and ops(g) == ["Conv"] and node(g, "Conv").attrs["act"] == {"min": 0.0, "max": 0.5}


@pytest.mark.parametrize("producer", ["Add", "Sub", "Mul", "Dense", "MaxPool"])
def test_fuse_relu_into_every_fusable_producer(producer):
    b = Builder()
    x = b.input((1, 3, 4, 4) if producer == "MaxPool" else (2, 4))
    y = {"Dense": lambda: b("Dense", [x, b.rand(4, 4), ""], act=None),
         "MaxPool": lambda: b("MaxPool", [x], kernel=(2, 2), strides=(2, 2), dilations=(1, 1), pads=(0, 0, 0, 0),
                              ceil_extra=(0, 0), layout="NCHW", act=None)}.get(producer, lambda: b(producer, [x, b.rand(4)], act=None))()
    changed, g = run_pass(fuse_activation, b.done(b("Relu", [y])))
    assert changed and ops(g) == [producer]


def test_fuse_activation_not_into_a_shared_output_an_output_or_a_lut_op():
    b = Builder()
    conv = b("Conv", [b.input((1, 3, 5, 5)), b.rand(4, 3, 3, 3), ""], **CONV)
    unchanged(fuse_activation, b.done(b("Relu", [conv]), b("Sigmoid", [conv])))
    b = Builder()
    conv = b("Conv", [b.input((1, 3, 5, 5)), b.rand(4, 3, 3, 3), ""], **CONV)
    unchanged(fuse_activation, b.done(b("Relu", [conv]), conv))
    b = Builder()
    unchanged(fuse_activation, b.done(b("Relu", [b("Sigmoid", [b.input((2, 4))])])))
    b = Builder()
    unchanged(fuse_activation, b.done(b("Relu", [b("Div", [b.input((2, 4)), b.rand(4)], act=None)])))


# ---- fuse_patterns ---------------------------------------------------------------------------------
def _gelu_erf(b, x, div_form=True):
    """torch's GELU export: x / sqrt(2) -> Erf -> + 1 -> x * . -> * 0.5"""
    scaled = b("Div", [x, b.const(np.sqrt(2.0))], act=None) if div_form else \
        b("Mul", [b.const(1 / np.sqrt(2.0)), x], act=None)
    one_plus = b("Add", [b("Erf", [scaled]), b.const(1.0)], act=None)
    return b("Mul", [b("Mul", [x, one_plus], act=None), b.const(0.5)], act=None)


@pytest.mark.parametrize("div_form", [True, False])
def test_fuse_patterns_gelu_erf_chain(div_form):
    b = Builder()
    x = b("Relu", [b.input((2, 8))])  # any producer
    changed, g = run_pass(fuse_patterns, b.done(_gelu_erf(b, x, div_form)))
    assert changed and ops(g) == ["Relu", "Gelu"] and node(g, "Gelu").attrs == {"approximate": "none"}
    assert node(g, "Gelu").inputs == [node(g, "Relu").outputs[0]]


def test_fuse_patterns_gelu_tanh_and_mish():
    b = Builder()
    x = b.input((2, 8))
    cube = b("Pow", [x], exponent=3.0)
    inner = b("Mul", [b("Add", [x, b("Mul", [cube, b.const(0.044715)], act=None)], act=None),
                      b.const(np.sqrt(2 / np.pi))], act=None)
    half = b("Mul", [b.const(0.5), b("Add", [b("Tanh", [inner]), b.const(1.0)], act=None)], act=None)
    g_tanh = b("Mul", [x, half], act=None)
    mish = b("Mul", [g_tanh, b("Tanh", [b("Softplus", [g_tanh])])], act=None)
    changed, g = run_pass(fuse_patterns, b.done(mish))
    assert changed and ops(g) == ["Gelu", "Mish"] and node(g, "Gelu").attrs == {"approximate": "tanh"}


def test_fuse_patterns_layer_norm():
    b = Builder()
    x = b.input((2, 5, 8))
    mean = b("ReduceMean", [x], axes=(2,), keepdims=1)
    d = b("Sub", [x, mean], act=None)
    var = b("ReduceMean", [b("Pow", [d], exponent=2.0)], axes=(2,), keepdims=1)
    std = b("Sqrt", [b("Add", [var, b.const(1e-5)], act=None)])
    y = b("Add", [b("Mul", [b("Div", [d, std], act=None), b.rand(8)], act=None), b.rand(8)], act=None)
    changed, g = run_pass(fuse_patterns, b.done(y))
    assert changed and ops(g) == ["LayerNorm"] and node(g, "LayerNorm").attrs == {"axis": 2, "epsilon": float(np.float32(1e-5))}


def test_fuse_patterns_not_when_a_piece_is_needed_or_the_function_is_another():
    b = Builder()  # the Erf output is also a graph output: the chain must stay
    x = b.input((2, 8))
    y = _gelu_erf(b, x)
    erf = [n for n in b.g.nodes if n.op == "Erf"][0].outputs[0]
    unchanged(fuse_patterns, b.done(y, erf))
    b = Builder()  # 0.6 instead of 0.5: not GELU
    x = b.input((2, 8))
    one_plus = b("Add", [b("Erf", [b("Div", [x, b.const(np.sqrt(2.0))], act=None)]), b.const(1.0)], act=None)
    unchanged(fuse_patterns, b.done(b("Mul", [b("Mul", [x, one_plus], act=None), b.const(0.6)], act=None)))
    b = Builder()  # a LayerNorm-like chain over two leading axes (neither trailing nor one axis)
    x = b.input((2, 5, 8))
    mean = b("ReduceMean", [x], axes=(0, 1), keepdims=1)
    d = b("Sub", [x, mean], act=None)
    var = b("ReduceMean", [b("Pow", [d], exponent=2.0)], axes=(0, 1), keepdims=1)
    std = b("Sqrt", [b("Add", [var, b.const(1e-5)], act=None)])
    unchanged(fuse_patterns, b.done(b("Div", [d, std], act=None)))


def test_fuse_patterns_channels_first_layer_norm():
    """ConvNeXt's LayerNorm over the channels of NCHW: the axis moves last around a LayerNorm."""
    b = Builder()
    x = b.input((1, 6, 3, 4))
    mean = b("ReduceMean", [x], axes=(1,), keepdims=1)
    d = b("Sub", [x, mean], act=None)
    var = b("ReduceMean", [b("Mul", [d, d], act=None)], axes=(1,), keepdims=1)
    std = b("Sqrt", [b("Add", [var, b.const(1e-6)], act=None)])
    scaled = b("Mul", [b.rand(6, 1, 1), b("Div", [d, std], act=None)], act=None)
    changed, g = run_pass(fuse_patterns, b.done(b("Add", [scaled, b.rand(6, 1, 1)], act=None)))
    assert changed and ops(g) == ["Transpose", "LayerNorm", "Transpose"]
    assert [n.attrs["perm"] for n in g.nodes if n.op == "Transpose"] == [(0, 2, 3, 1), (0, 3, 1, 2)]
    assert g.tensors[node(g, "LayerNorm").inputs[1]].shape == (6,)


# ---- fuse_self_gating ----------------------------------------------------------------------------------
@pytest.mark.parametrize("gate,attrs", [("HardSigmoid", dict(alpha=1 / 6, beta=0.5)), ("Sigmoid", {}),
                                        ("Tanh", {}), ("LeakyRelu", dict(alpha=0.1))])
@pytest.mark.parametrize("gate_first", [True, False])
def test_fuse_self_gating(gate, attrs, gate_first):
    b = Builder()
    conv = b("Conv", [b.input((1, 3, 5, 5)), b.rand(4, 3, 3, 3), ""], **CONV)
    g_out = b(gate, [conv], **attrs)
    y = b("Mul", [g_out, conv] if gate_first else [conv, g_out], act=None)
    changed, g = run_pass(fuse_self_gating, b.done(y))
    assert changed and ops(g) == ["Conv", "SelfGated"]
    fused = node(g, "SelfGated")
    assert fused.inputs == [node(g, "Conv").outputs[0]] and fused.outputs == [y]
    assert fused.attrs == {"gate": gate, "gate_attrs": attrs}


def test_fuse_self_gating_not_when_the_gate_is_needed_or_reads_another_tensor():
    b = Builder()  # the gate output also feeds another node
    conv = b("Conv", [b.input((1, 3, 5, 5)), b.rand(4, 3, 3, 3), ""], **CONV)
    gate = b("Sigmoid", [conv])
    unchanged(fuse_self_gating, b.done(b("Mul", [conv, gate], act=None), b("Relu", [gate])))
    b = Builder()  # the gate output is a graph output
    conv = b("Conv", [b.input((1, 3, 5, 5)), b.rand(4, 3, 3, 3), ""], **CONV)
    gate = b("Sigmoid", [conv])
    unchanged(fuse_self_gating, b.done(b("Mul", [conv, gate], act=None), gate))
    b = Builder()  # SE-style gating: the gate reads another tensor (a broadcast multiply stays)
    x = b.input((1, 4, 5, 5))
    pooled = b("GlobalAveragePool", [x], layout="NCHW")
    unchanged(fuse_self_gating, b.done(b("Mul", [x, b("HardSigmoid", [pooled], alpha=0.2, beta=0.5)], act=None)))
    b = Builder()  # a Mul with a fused clamp computes something else
    x = b.input((2, 4))
    unchanged(fuse_self_gating, b.done(b("Mul", [x, b("Sigmoid", [x])], act={"min": 0.0, "max": None})))


# ---- layout_nhwc -------------------------------------------------------------------------------------
def test_layout_nhwc_conv_then_dense():
    b = Builder()
    conv = b("Conv", [b.input((1, 3, 5, 5)), b.rand(4, 3, 3, 3), b.rand(4)], **CONV)
    flat = b("Reshape", [conv], shape=(1, 100))
    changed, g = run_pass(layout_nhwc, b.done(b("Dense", [flat, b.rand(2, 100), ""], act=None)))
    assert changed and ops(g) == ["Conv", "Transpose", "Reshape", "Dense"]
    conv = node(g, "Conv")
    assert conv.attrs["layout"] == "NHWC" and g.tensors[conv.inputs[1]].shape == (4, 3, 3, 3)
    assert g.tensors["x"].perm == NHWC_PERM and g.tensors["x"].shape == (1, 5, 5, 3)
    assert node(g, "Transpose").attrs["perm"] == (0, 3, 1, 2)  # back to NCHW for the Flatten


def test_layout_nhwc_remaps_axes_and_permutes_constants():
    b = Builder()
    x = b.input((1, 4, 3, 3))
    y = b("Softmax", [b("Mul", [x, b.rand(1, 4, 1, 1)], act=None)], axis=1)
    changed, g = run_pass(layout_nhwc, b.done(y))
    assert changed and ops(g) == ["Mul", "Softmax"]  # the output stays NHWC in memory (perm)
    assert node(g, "Softmax").attrs["axis"] == 3 and g.tensors[node(g, "Mul").inputs[1]].shape == (1, 1, 1, 4)
    assert g.tensors[g.outputs[0]].perm == NHWC_PERM


def test_layout_nhwc_not_for_a_reduction_that_drops_axes():
    """The input turns NHWC (an axis op reads it), the reduction does not: it gets its input back
    in NCHW and keeps its axes (OpDef.keeps_nhwc)."""
    b = Builder()
    changed, g = run_pass(layout_nhwc, b.done(b("ReduceMean", [b.input((1, 4, 3, 3))], axes=(1,), keepdims=0)))
    assert ops(g) == ["Transpose", "ReduceMean"] and node(g, "ReduceMean").attrs["axes"] == (1,)
    assert node(g, "Transpose").attrs["perm"] == (0, 3, 1, 2)
    b = Builder()
    changed, g = run_pass(layout_nhwc, b.done(b("ReduceMean", [b.input((1, 4, 3, 3))], axes=(1,), keepdims=1)))
    assert ops(g) == ["ReduceMean"] and node(g, "ReduceMean").attrs["axes"] == (3,)


def test_layout_nhwc_not_for_a_graph_without_images():
    b = Builder()
    unchanged(layout_nhwc, b.done(b("Dense", [b.input((2, 3)), b.rand(4, 3), ""], act=None)))



def test_layout_nhwc_leaves_attention_scores_between_two_matmuls_logical():
    """Scaling and softmax of 4-D attention scores read and feed only MatMuls: in NHWC they would
    cost a transpose of the scores on the way in and another on the way out."""
    b = Builder()
    q, k, v = b.input((1, 2, 8, 4), "q"), b.input((1, 2, 4, 8), "k"), b.input((1, 2, 8, 4), "v")
    att = b("Softmax", [b("Mul", [b("MatMul", [q, k]), b.const(0.5)], act=None)], axis=3)
    changed, g = run_pass(layout_nhwc, b.done(b("MatMul", [att, v])))
    assert ops(g) == ["MatMul", "Mul", "Softmax", "MatMul"] and node(g, "Softmax").attrs["axis"] == 3
    assert all(t.perm is None for t in g.tensors.values())


def test_layout_nhwc_decides_a_long_element_wise_chain_without_recursion():
    b = Builder()
    x = b("MatMul", [b.input((1, 2, 4, 4), "q"), b.input((1, 2, 4, 4), "k")])
    for _ in range(1500):
        x = b("Relu", [x])
    g = b.done(b("MatMul", [x, b.input((1, 2, 4, 4), "v")]))
    assert not layout_nhwc(g) and "Transpose" not in ops(g)

def test_layout_nhwc_transposes_an_element_wise_input_once_for_several_convolutions():
    """A logical tensor whose element-wise result feeds two convolutions: one transpose in front of
    the element-wise op, not one in front of each convolution."""
    b = Builder()
    x = b("Relu", [b("Reshape", [b.input((1, 48))], shape=(1, 3, 4, 4))])
    y = b("Add", [b("Conv", [x, b.rand(4, 3, 3, 3), b.rand(4)], **CONV),
                  b("Conv", [x, b.rand(4, 3, 3, 3), b.rand(4)], **CONV)], act=None)
    changed, g = run_pass(layout_nhwc, b.done(y))
    assert ops(g) == ["Reshape", "Transpose", "Relu", "Conv", "Conv", "Add"]
    assert g.tensors[node(g, "Relu").outputs[0]].perm == NHWC_PERM

# ---- simplify_transposes ------------------------------------------------------------------------------
def test_simplify_transposes_cancel():
    b = Builder()
    t = b("Transpose", [b("Transpose", [b.input((1, 2, 3, 4))], perm=(0, 2, 3, 1))], perm=(0, 3, 1, 2))
    changed, g = run_pass(simplify_transposes, b.done(b("Relu", [t])))
    assert changed and ops(g) == ["Relu"] and node(g, "Relu").inputs == ["x"]


def test_simplify_transposes_that_do_not_cancel_merge_into_one():
    b = Builder()
    t = b("Transpose", [b("Transpose", [b.input((1, 2, 3, 4))], perm=(0, 2, 3, 1))], perm=(0, 2, 1, 3))
    changed, g = run_pass(simplify_transposes, b.done(b("Relu", [t])))
    assert changed and ops(g) == ["Transpose", "Relu"] and node(g, "Transpose").attrs["perm"] == (0, 3, 2, 1)


def test_simplify_transposes_moving_size_one_axes_is_a_reshape():
    b = Builder()
    t = b("Transpose", [b.input((1, 4, 1, 1))], perm=(0, 2, 3, 1))
    changed, g = run_pass(simplify_transposes, b.done(b("Relu", [t])))
    assert changed and ops(g) == ["Reshape", "Relu"] and node(g, "Reshape").attrs["shape"] == (1, 1, 1, 4)


def test_simplify_transposes_keeps_a_real_transpose():
    b = Builder()
    unchanged(simplify_transposes, b.done(b("Transpose", [b.input((2, 3))], perm=(1, 0))))


# ---- dce ---------------------------------------------------------------------------------------------
def test_dce():
    b = Builder()
    x = b.input((2, 4))
    b("Sigmoid", [b("Relu", [x])])  # nobody reads it
    changed, g = run_pass(dce, b.done(b("Tanh", [x])))
    assert changed and ops(g) == ["Tanh"]


def test_dce_keeps_what_an_output_needs():
    b = Builder()
    unchanged(dce, b.done(b("Sigmoid", [b("Relu", [b.input((2, 4))])])))
