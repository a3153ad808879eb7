"""Range estimators, quantization parameter choice and empirical bias correction."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinycc.frontend import load_graph
from tinycc.lower import lower, quantize_inputs
from tinycc.passes import run_pipeline
from tinycc.quant.bias_correction import correct_biases
from tinycc.quant.calibrate import TensorStats, collect_stats, mse_range, range_methods
from tinycc.quant.params import (MIN_RANGE, QMAX, QMIN, choose_qparams, dequantize, quantize,
                                 share_params_through_moves)
from tinycc.quant.ptq import assign_qparams
from tinycc.reference.float_exec import run_float
from tinycc.reference.int_exec import run_int8, to_logical


def int8_mse(v: np.ndarray, lo: float, hi: float) -> float:
    qp = choose_qparams(lo, hi)
    return float(np.mean((dequantize(quantize(v, qp), qp).astype(np.float64) - v) ** 2))


def stats_of(*chunks: np.ndarray, seed: int = 0) -> TensorStats:
    s = TensorStats(np.random.default_rng(seed))
    for c in chunks:
        s.observe(c)
    return s


# ---- choose_qparams -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(20))
def test_choose_qparams_represents_zero_exactly_and_covers_the_range(seed):
    rng = np.random.default_rng(seed)
    lo, hi = -rng.uniform(0, 10) ** 2, rng.uniform(0, 10) ** 2
    qp = choose_qparams(lo, hi)
    s, zp = qp.scalar()
    assert qp.scale.dtype == np.float32 and QMIN <= zp <= QMAX
    assert dequantize(quantize(np.zeros(3, np.float32), qp), qp).tolist() == [0.0, 0.0, 0.0]
    assert s == pytest.approx((hi - lo) / 255, rel=1e-6)
    # nudging the zero point to an integer moves the representable range by at most half a step
    assert lo / s + zp >= QMIN - 0.5 - 1e-6
    assert hi / s + zp <= QMAX + 0.5 + 1e-6


@pytest.mark.parametrize("lo, hi, zp", [
    (-1.0, 2.0, -43),  # exact: -128 + 1 / (3 / 255)
    (-1.0, 3.0, -64),  # -128 + 63.75 rounds to -64
    (-1.0, 2.5, -55),  # -128 + 72.86 rounds to -55
    (0.0, 6.0, -128),  # ReLU6 output
    (2.0, 5.0, -128),  # extended down to 0
    (-4.0, -1.0, 127),  # extended up to 0
])
def test_choose_qparams_nudges_the_zero_point_like_tflite(lo, hi, zp):
    qp = choose_qparams(lo, hi)
    assert int(qp.zero_point) == zp
    assert float(qp.scale) == float(np.float32((max(hi, 0.0) - min(lo, 0.0)) / 255))


@pytest.mark.parametrize("lo, hi", [(0.0, 0.0), (3.0, 3.0), (-2.0, -2.0), (1e-12, 1e-12)])
def test_choose_qparams_degenerate_ranges_give_a_usable_scale(lo, hi):
    qp = choose_qparams(lo, hi)
    s, zp = qp.scalar()
    assert np.isfinite(s) and s > 0 and QMIN <= zp <= QMAX
    assert s >= np.float32(MIN_RANGE / 255) * (1 - 1e-6)
    assert dequantize(quantize(np.array([0.0, lo, hi], np.float32), qp), qp)[0] == 0.0
    for v in (lo, hi):  # a constant tensor is represented within half a step
        assert abs(float(dequantize(quantize(np.float32(v), qp), qp)) - v) <= s / 2 + 1e-6 * abs(v)



def test_params_are_shared_along_chains_of_moves_in_both_directions():
    a, b = choose_qparams(-1.0, 1.0), choose_qparams(0.0, 6.0)
    # x -> t1 -> t2 (forward from x); u1 -> u2 -> y (backward from y); z: unreachable
    quant = {"x": a, "y": b}
    share_params_through_moves([("t1", "t2"), ("x", "t1"), ("u2", "y"), ("u1", "u2"), ("z", "w")], quant)
    assert quant["t1"] is a and quant["t2"] is a and quant["u1"] is b and quant["u2"] is b
    assert "z" not in quant and "w" not in quant
    both = {"x": a, "y": b}  # a tensor between two known ones: the first move in graph order wins
    share_params_through_moves([("m", "y"), ("x", "m")], both)
    assert both["m"] is b and both["x"] is a and both["y"] is b

# ---- range estimators -----------------------------------------------------------------------------
def test_minmax_is_the_exact_extremes_over_all_observations():
    rng = np.random.default_rng(1)
    chunks = [rng.standard_normal(5000).astype(np.float32) * k for k in (1, 3, 2)]
    s = stats_of(*chunks)
    allv = np.concatenate(chunks)
    assert s.range("minmax") == (float(allv.min()), float(allv.max()))


def test_percentile_ignores_a_rare_outlier_and_keeps_zero_in_range():
    rng = np.random.default_rng(2)
    v = np.abs(rng.standard_normal(100_000)).astype(np.float32) + 1.0  # all positive, away from 0
    v[123] = 1000.0
    lo, hi = stats_of(v).range("percentile")
    assert lo == 0.0
    assert 3.0 < hi < 10.0
    assert stats_of(v).range("minmax")[1] == 1000.0


def test_mse_range_clips_a_long_tail_and_lowers_the_quantization_error():
    v = np.random.default_rng(3).laplace(size=60_000).astype(np.float32)
    s = stats_of(v)
    (lo, hi), (vmin, vmax) = s.range("mse"), s.range("minmax")
    assert vmin < lo < 0 < hi < vmax
    assert int8_mse(v, lo, hi) < 0.95 * int8_mse(v, vmin, vmax)


def test_mse_range_keeps_the_full_range_of_uniform_data():
    v = np.random.default_rng(4).uniform(0, 1, 50_000).astype(np.float32)
    lo, hi = mse_range(v, float(v.min()), float(v.max()))
    assert lo == 0.0 and hi > 0.95


def test_estimators_are_deterministic():
    rng = np.random.default_rng(5)
    chunks = [rng.standard_normal(40_000).astype(np.float32) for _ in range(6)]  # over the reservoir
    for method in ("minmax", "percentile", "mse"):
        assert stats_of(*chunks).range(method) == stats_of(*chunks).range(method)


# ---- toy models -----------------------------------------------------------------------------------
def save_model(path, nodes, inputs, outputs, inits) -> str:
    graph = helper.make_graph(nodes, "toy", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def conv_model(path, w: np.ndarray, b: np.ndarray, relu: bool = False, size: int = 6) -> str:
    o, i = w.shape[:2]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c" if relu else "y"], pads=[1, 1, 1, 1])]
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    return save_model(path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, i, size, size])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, o, size, size])], {"w": w, "b": b})


def biased_weights(rng, shape) -> np.ndarray:
    """Weights in [0, 1] whose int8 per-channel rounding always goes down by 0.45 of a step.

    Each output channel's largest weight is 1.0, so its scale is 1/127; every other weight is
    (n + 0.45) / 127, which rounds to n. On positive inputs the int8 layer's output is then
    systematically smaller than the float one."""
    w = (rng.integers(0, 100, shape) + 0.45) / 127.0
    w.reshape(shape[0], -1)[:, 0] = 1.0
    return w.astype(np.float32)


def samples_for(g, rng, count: int, grid: bool = False) -> list[dict[str, np.ndarray]]:
    (name,) = g.inputs
    shape = g.tensors[name].shape
    shape = tuple(shape[i] for i in np.argsort(g.tensors[name].perm)) if g.tensors[name].perm else shape
    if grid:  # values exactly on the int8 grid of the range [0, 1]
        return [{name: (rng.integers(0, 256, shape) / 255.0).astype(np.float32)} for _ in range(count)]
    return [{name: rng.uniform(0, 1, shape).astype(np.float32)} for _ in range(count)]


def quantize_model(g, samples, method="minmax"):
    return assign_qparams(g, collect_stats(g, samples, progress=False), method)


def int8_channel_mean_error(g, q, samples) -> np.ndarray:
    """Mean over samples and positions of (int8 golden output - float output), per channel."""
    program = lower(q, "toy")
    (out,) = g.outputs
    errors = []
    for s in samples:
        raw = run_int8(program, quantize_inputs(program, s))[out]
        got = dequantize(to_logical(program, out, raw), program.tensors[out].quant).astype(np.float64)
        errors.append(got - run_float(g, s)[out].astype(np.float64))
    e = np.stack(errors)  # (samples, 1, C, H, W) or (samples, 1, C)
    return e.reshape(e.shape[0], e.shape[2], -1).mean(axis=(0, 2))


def biases(g) -> dict[str, np.ndarray]:
    return {n.name: g.tensors[n.inputs[2]].data.copy() for n in g.nodes
            if n.op in ("Conv", "Dense") and len(n.inputs) > 2 and n.inputs[2]}


# ---- bias correction ------------------------------------------------------------------------------
@pytest.mark.parametrize("relu", [False, True], ids=["linear", "fused_relu"])
def test_bias_correction_removes_the_mean_shift_of_biased_weight_rounding(tmp_path, relu):
    rng = np.random.default_rng(10)
    w = biased_weights(rng, (3, 4, 3, 3))
    b = np.array([0.1, -0.2, 0.0], np.float32)
    g = run_pipeline(load_graph(conv_model(tmp_path / "conv.onnx", w, b, relu)))
    calib, held_out = samples_for(g, rng, 24), samples_for(g, rng, 24)
    q = quantize_model(g, calib)
    out_scale, _ = q.tensors[g.outputs[0]].quant.scalar()
    before = int8_channel_mean_error(g, q, held_out)
    assert np.all(before < -1.0 * out_scale), "the toy should have a clear negative bias"
    corrected = correct_biases(g, q, calib)
    after = int8_channel_mean_error(g, corrected, held_out)
    assert np.all(np.abs(after) < 0.25 * np.abs(before))
    assert np.all(np.abs(after) < 0.35 * out_scale)
    (name, new), = biases(corrected).items()
    assert np.all(new > b)  # the int8 layer was low: its biases went up


def test_bias_correction_compares_means_before_the_fused_activation(tmp_path):
    """With mixed-sign weights about half the outputs are negative and cut by the ReLU; the
    correction must still be the pre-activation mean shift, as for the same layer without ReLU."""
    rng = np.random.default_rng(15)
    w = biased_weights(rng, (3, 4, 3, 3)) * rng.choice([-1.0, 1.0], (3, 4, 3, 3)).astype(np.float32)
    b = np.zeros(3, np.float32)
    corrected = []
    for relu in (False, True):
        g = run_pipeline(load_graph(conv_model(tmp_path / f"conv{relu}.onnx", w, b, relu)))
        calib = samples_for(g, np.random.default_rng(16), 16)
        (bias,) = biases(correct_biases(g, quantize_model(g, calib), calib)).values()
        corrected.append(bias)
    assert np.all(np.abs(corrected[0]) > 1e-3)
    np.testing.assert_allclose(corrected[1], corrected[0], rtol=1e-5, atol=1e-7)


def test_bias_correction_leaves_an_exactly_quantized_layer_alone(tmp_path):
    rng = np.random.default_rng(11)
    w = (rng.integers(-127, 128, (4, 3, 3, 3)) / 127.0).astype(np.float32)
    w[:, 0, 0, 0] = 1.0  # per-channel scale exactly 1/127
    g = run_pipeline(load_graph(conv_model(tmp_path / "exact.onnx", w, np.zeros(4, np.float32))))
    calib = samples_for(g, rng, 8, grid=True)
    q = quantize_model(g, calib)
    corrected = correct_biases(g, q, calib)
    (new,) = biases(corrected).values()
    np.testing.assert_allclose(new, 0.0, atol=1e-5)


def test_bias_correction_copies_and_is_deterministic(tmp_path):
    rng = np.random.default_rng(12)
    g = run_pipeline(load_graph(conv_model(tmp_path / "c.onnx", biased_weights(rng, (3, 4, 3, 3)),
                                           np.zeros(3, np.float32), relu=True)))
    calib = samples_for(g, rng, 8)
    q = quantize_model(g, calib)
    before_g, before_q = biases(g), biases(q)
    first, second = correct_biases(g, q, calib), correct_biases(g, q, calib)
    for old, new in ((before_g, biases(g)), (before_q, biases(q))):
        assert all(np.array_equal(old[k], new[k]) for k in old)
    a, b = biases(first), biases(second)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], before_q[k]) for k in a)


def test_bias_correction_gives_a_dense_layer_without_bias_one(tmp_path):
    rng = np.random.default_rng(13)
    w = biased_weights(rng, (5, 16))  # Gemm with transB: weight [out, in]
    path = save_model(tmp_path / "dense.onnx", [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)],
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], {"w": w})
    g = run_pipeline(load_graph(path))
    calib, held_out = samples_for(g, rng, 64), samples_for(g, rng, 64)
    q = quantize_model(g, calib)
    assert not biases(q)
    corrected = correct_biases(g, q, calib)
    assert len(biases(corrected)) == 1
    before = int8_channel_mean_error(g, q, held_out)
    after = int8_channel_mean_error(g, corrected, held_out)
    assert np.mean(np.abs(after)) < 0.3 * np.mean(np.abs(before))


# ---- which tensors get min/max --------------------------------------------------------------------
def test_softmax_logits_use_minmax_through_data_movement(tmp_path):
    rng = np.random.default_rng(14)
    w = rng.standard_normal((10, 4, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Conv", ["p", "w2", "b"], ["logits4d"]),
             helper.make_node("Flatten", ["logits4d"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["y"], axis=1)]
    path = save_model(tmp_path / "cls.onnx", nodes,
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
                      {"w": w, "w2": rng.standard_normal((10, 10, 1, 1)).astype(np.float32),
                       "b": np.zeros(10, np.float32)})
    g = run_pipeline(load_graph(path))
    methods = range_methods(g, "percentile")
    softmax = next(n for n in g.nodes if n.op == "Softmax")
    chain = [softmax.inputs[0]]
    producer = g.producer(chain[-1])
    while producer is not None and producer.op not in ("Conv", "Dense"):
        chain.append(producer.inputs[0])
        producer = g.producer(chain[-1])
    assert producer is not None and producer.op == "Conv"
    assert all(methods[t] == "minmax" for t in chain)
    others = [t for t in methods if t not in chain and t != g.outputs[0]]
    assert others and all(methods[t] == "percentile" for t in others)
