"""Self-gated activations as exporters write them: x * HardSigmoid(x) (torch's hard-swish at
opset <= 13) and x * Sigmoid(x) (SiLU) become one SelfGated lookup table (passes/fuse.py,
ops/gated.py). Checked end to end on a torch export: the float engine against onnxruntime, the
int8 golden against the generated host C, and the peak SRAM against the same model compiled
without the fusion (the gate tensor, as large as x, is no longer stored)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import tinycc  # noqa: E402
from conftest import ort_run  # noqa: E402
from tinycc.passes import pipeline  # noqa: E402


class HardSwishSiluNet(nn.Module):
    """Stem conv + hard-swish, depthwise + SiLU, pointwise; SE-style gating on the way (not fused)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.se = nn.Conv2d(16, 16, 1)
        self.pw = nn.Conv2d(16, 8, 1)

    def forward(self, x):
        x = nn.functional.hardswish(self.stem(x))
        x = self.dw(x)
        x = x * torch.sigmoid(x)
        x = x * nn.functional.hardsigmoid(self.se(x.mean((2, 3), keepdim=True)))
        return self.pw(x)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    net = HardSwishSiluNet().eval()
    path = tmp_path_factory.mktemp("gating") / "hswish13.onnx"
    x = torch.randn(1, 3, 48, 48)
    torch.onnx.export(net, (x,), str(path), opset_version=13, dynamo=False)
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("HardSigmoid") == 2 and "Sigmoid" in ops  # the opset-13 decomposed forms
    calib = np.random.default_rng(1).normal(0, 1, (8, 3, 48, 48)).astype(np.float32)
    np.save(path.with_suffix(".npy"), calib)
    return path, calib


def test_fused_into_lookup_tables(exported):
    path, _ = exported
    layers = tinycc.layers(path)
    ops = [row["op"] for row in layers]
    assert ops.count("SelfGated") == 2 and "Sigmoid" not in ops
    assert ops.count("HardSigmoid") == 1  # the SE gate reads another tensor: it stays


def test_float_matches_onnxruntime_and_int8_golden_equals_c(exported):
    path, calib = exported
    m = tinycc.compile(path, calib=path.with_suffix(".npy"))
    x = calib[:3]
    want = ort_run(path, {m.inputs[0]: x[:1]})[0]
    got = m.run(x[:1], engine="float")[m.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    golden = m.run(x, engine="int8")[m.outputs[0]]
    c = m.run(x, engine="c")[m.outputs[0]]
    np.testing.assert_array_equal(c, golden)


def test_fusion_lowers_peak_sram_and_int8_error(exported, monkeypatch):
    path, calib = exported
    fused = tinycc.compile(path, calib=path.with_suffix(".npy"))
    monkeypatch.setattr(pipeline, "PIPELINE", [p for p in pipeline.PIPELINE if p[0] != "fuse_self_gating"])
    plain = tinycc.compile(path, calib=path.with_suffix(".npy"))
    assert fused.report["peak_sram_bytes"] < plain.report["peak_sram_bytes"]
    x = calib[:4]
    ref = fused.run(x, engine="float")[fused.outputs[0]]

    def err(m):
        return float(np.abs(m.run(x, engine="int8", dequantize=True)[m.outputs[0]] - ref).mean())

    assert err(fused) <= err(plain) * 1.05  # one rounding instead of two: no less accurate
