"""tinycc.qat (torch): fake quantization gives exact ternary / palette values, BatchNorm folding
is exact, the straight-through gradient reaches the latent weights, and the QDQ export compiles
with tinycc with golden == generated host C (the int8 path; the ternary and codebook kernels
take the same files when they land)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from torch import nn  # noqa: E402

import tinycc  # noqa: E402
from tinycc import qat  # noqa: E402
from tinycc.qat.codebook import CodebookWeight, kmeans_1d  # noqa: E402
from tinycc.qat.prom import ternary_codes  # noqa: E402


def conv_bn(cin, cout, k, stride=1, groups=1, relu=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU6()) if relu else nn.Sequential(*layers)


class Block(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.body = nn.Sequential(conv_bn(c, hidden, 1), conv_bn(hidden, hidden, 3, groups=hidden),
                                  conv_bn(hidden, c, 1, relu=False))

    def forward(self, x):
        return x + self.body(x)


def tiny_mobilenet():
    """Stem, one inverted residual block, a strided pointwise-free transition, head, classifier;
    BatchNorm statistics randomized so that folding is not the identity."""
    torch.manual_seed(0)
    net = nn.Sequential(conv_bn(1, 8, 3), Block(8, 16), conv_bn(8, 12, 3, stride=2), conv_bn(12, 24, 1),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 5))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    x = rng.random((48, 1, 6, 6), dtype=np.float32)
    y = rng.integers(0, 5, 48)
    return x, y


def test_twn_and_absmean_ternary_rules_on_a_worked_example():
    w = torch.tensor([[0.1, -0.5, 0.9, 0.02, 0.2], [0.0] * 5]).reshape(2, 5, 1, 1)
    codes, alpha = ternary_codes(w, "twn")  # mean|w| 0.344, threshold 0.241: support {-0.5, 0.9}
    assert codes.reshape(2, 5).tolist() == [[0, -1, 1, 0, 0], [0] * 5]
    assert alpha.tolist() == pytest.approx([0.7, 1.0])  # mean |w| of the support; a zero channel: 1
    codes, alpha = ternary_codes(w, "absmean")  # w / 0.344 = 0.29, -1.45, 2.6, 0.06, 0.58
    assert codes.reshape(2, 5).tolist() == [[0, -1, 1, 0, 1], [0] * 5]
    assert alpha.tolist() == pytest.approx([0.344, 1.0])


def test_prepare_prom_makes_exactly_the_pointwise_layers_ternary():
    q = qat.prepare_prom(tiny_mobilenet(), torch.zeros(1, 1, 6, 6))
    layers = {name: layer for name, layer in q.named_modules() if isinstance(layer, (qat.QuantConv2d, qat.QuantLinear))}
    schemes = {name: layer.quantizer.scheme for name, layer in layers.items()}
    assert sorted(n for n, s in schemes.items() if s == "ternary") == ["1.body.0.0", "1.body.2.0", "3.0"]
    assert len(schemes) == 7  # the stem, depthwise, strided 3x3 and Linear stay int8
    for name, layer in layers.items():
        codes, scale = layer.codes_and_scale()
        w = layer.quantized_weight()
        assert torch.equal(w, codes * scale.reshape([-1] + [1] * (w.dim() - 1)))
        allowed = {-1.0, 0.0, 1.0} if schemes[name] == "ternary" else set(range(-127, 128))
        assert set(codes.unique().tolist()) <= allowed, name
        assert (scale > 0).all()


def test_kmeans_1d_finds_separated_clusters():
    values = torch.tensor([-1.0, -0.98, -1.02, 0.5, 0.52, 0.48, 2.0, 2.01])
    assert kmeans_1d(values, 3).tolist() == pytest.approx([-1.0, 0.5, 2.005], abs=1e-6)
    assert kmeans_1d(torch.tensor([0.25, 0.25]), 4).tolist() == [0.25] * 4  # fewer distinct values than k


@pytest.mark.parametrize("bits,group_size", [(2, None), (3, 4), (4, 1), (2, 5)])
def test_codebook_codes_take_at_most_2_to_the_bits_palette_values_per_group(bits, group_size):
    torch.manual_seed(bits)
    w = torch.randn(12, 5, 3, 3)
    cb = CodebookWeight(bits, group_size)
    codes, scale = cb.codes_and_scale(w)
    for rows in cb.groups(12):
        values = codes[rows].unique()
        assert len(values) <= 2 ** bits
        assert torch.equal(values, values.round()) and values.abs().max() <= 127  # int8 palette codes
    cb.train()
    soft = cb(w)  # DKM's soft weights (the centroids move by the soft k-means update) ...
    cb.eval()
    hard = cb(w)  # ... are nearly the hard assignment to the updated centroids at a small temperature
    assert (soft - hard).abs().mean() < 0.01 * w.abs().mean()


def test_batchnorm_folding_is_exact_and_removes_every_batchnorm(data):
    net = tiny_mobilenet()
    folded = qat.fold_batchnorm(net)
    x = torch.from_numpy(data[0])
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # the model given is unchanged
    torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prepare", ["prom", "codebook"])
def test_straight_through_gradient_reaches_the_latent_weights(data, prepare):
    x, y = data
    net = tiny_mobilenet()
    ex = torch.zeros(1, 1, 6, 6)
    q = qat.prepare_prom(net, ex) if prepare == "prom" else qat.prepare_codebook(net, ex, bits=2)
    qat.calibrate(q, x)
    q.train()
    nn.functional.cross_entropy(q(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    for name, layer in q.named_modules():
        if isinstance(layer, (qat.QuantConv2d, qat.QuantLinear)):
            assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0, name


def test_export_needs_calibration_first(tmp_path, data):
    q = qat.prepare_prom(tiny_mobilenet(), torch.zeros(1, 1, 6, 6))
    with pytest.raises(RuntimeError, match="calibrate"):
        qat.export_qdq(q, torch.zeros(1, 1, 6, 6), tmp_path / "m.onnx")
    with pytest.raises(RuntimeError, match="calibrate"):
        qat.finetune(q, *data, epochs=1, log=None)


def _dequantized_weights(proto):
    consts = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    return {n.input[0]: consts[n.input[0]] for n in proto.graph.node
            if n.op_type == "DequantizeLinear" and n.input[0] in consts}


@pytest.mark.parametrize("scheme", ["prom", "codebook"])
def test_qdq_export_compiles_with_tinycc_and_golden_equals_host_c(tmp_path, data, scheme):
    x, y = data
    ex = torch.zeros(1, 1, 6, 6)
    net = tiny_mobilenet()
    q = qat.prepare_prom(net, ex) if scheme == "prom" else qat.prepare_codebook(net, ex, bits=3, group_size=4)
    qat.calibrate(q, x)
    lines = []
    qat.finetune(q, x, y, epochs=1, batch=16, log=lines.append)
    assert len(lines) == 1 and "epoch 1/1: loss" in lines[0]  # progress output
    path = tmp_path / f"{scheme}.onnx"
    proto = qat.export_qdq(q, ex, path, "image", "logits")

    codes = _dequantized_weights(proto)
    weights = {k: v for k, v in codes.items() if v.ndim >= 2}
    biases = [v for v in codes.values() if v.ndim == 1]
    assert len(weights) == 7 and all(v.dtype == np.int8 for v in weights.values())
    assert len(biases) == 7 and all(v.dtype == np.int32 for v in biases)
    if scheme == "prom":
        pointwise = [v for v in weights.values() if v.shape[2:] == (1, 1) and v.shape[1] > 1]
        assert len(pointwise) == 3 and all(set(np.unique(v)) <= {-1, 0, 1} for v in pointwise)
    else:
        for v in weights.values():
            for start in range(0, v.shape[0], 4):
                assert len(np.unique(v[start:start + 4])) <= 8

    m = tinycc.compile(path)
    # the ternary pointwise layers run tinycc's ternary kernels (tests/test_prom.py), as stored
    assert m.report["quant"] == ("prom-qdq" if scheme == "prom" else "int8-qdq")
    ternary_layers = [l for l in m.report["layers"] if l["kernel"].startswith("tc_pw_ternary_s8")]
    assert len(ternary_layers) == (3 if scheme == "prom" else 0)
    golden = m.run(x[:6], engine="int8", dequantize=True)["logits"]
    c = m.run(x[:6], engine="c", dequantize=True)["logits"]
    np.testing.assert_array_equal(c, golden)
    # the integer model computes what the fake-quantized torch model computed, up to requantization
    # rounding (a few output steps)
    with torch.no_grad():
        fake = q(torch.from_numpy(x[:6])).numpy()
    out_scale = float(onnx.numpy_helper.to_array(next(
        n for n in proto.graph.node if n.op_type == "Constant" and n.output[0] in
        {d.input[1] for d in proto.graph.node if d.op_type == "DequantizeLinear" and d.output[0] == "logits"}
    ).attribute[0].t))
    assert np.abs(fake.reshape(golden.shape) - golden).max() <= 4 * out_scale
