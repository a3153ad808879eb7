"""LayerNormalization, InstanceNormalization and GroupNormalization (tinycc/ops/norm.py):
float against onnxruntime, the decomposed LayerNorm torch writes below opset 17 recognised, the
int8 scheme (integer statistics, integer square root) within one LSB of the float function on
the int8 grid, tc_norm_s8 bit-exact with norm_s8 (ctypes, ASan/UBSan) and end to end C == golden."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from ctypes_kernels import TC_ARG_ERROR, TC_OK, run_c, run_under_sanitizers
from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.errors import BadInput
from tinycc.frontend import load_graph
from tinycc.ops.norm import NormParams, group_norm, layer_norm, make_norm_params, norm_s8
from tinycc.passes import run_pipeline
from tinycc.reference.float_exec import run_float

RNG = np.random.default_rng(17)


def _save(path, op, shape, inits, opset=17, **attrs):
    node = helper.make_node(op, ["x"] + [i.name for i in inits], ["y"], name="norm", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def _vec(name, shape, mean=0.0):
    return numpy_helper.from_array(RNG.normal(mean, 0.5, shape).astype(np.float32), name)


CASES = {  # id: (op, input shape, initializers, opset, attrs)
    "layernorm_last": ("LayerNormalization", [2, 5, 16], [_vec("s", [16], 1), _vec("b", [16])], 17, {}),
    "layernorm_two_axes_no_bias": ("LayerNormalization", [2, 5, 8], [_vec("s", [5, 8], 1)], 17,
                                   {"axis": -2, "epsilon": 1e-3}),
    "instancenorm_4d": ("InstanceNormalization", [1, 6, 5, 4], [_vec("s", [6], 1), _vec("b", [6])], 17, {}),
    "instancenorm_3d": ("InstanceNormalization", [2, 6, 7], [_vec("s", [6], 1), _vec("b", [6])], 17, {}),
    "groupnorm": ("GroupNormalization", [1, 6, 5, 4], [_vec("s", [6], 1), _vec("b", [6])], 21, {"num_groups": 3}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_float_matches_onnxruntime_and_c_equals_golden(tmp_path, case):
    op, shape, inits, opset, attrs = CASES[case]
    path = _save(tmp_path / "m.onnx", op, shape, inits, opset, **attrs)
    x = RNG.normal(0.3, 2, shape).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    g = run_pipeline(load_graph(path))
    np.testing.assert_allclose(run_float(g, {"x": x})["y"], want, rtol=1e-4, atol=1e-5)
    calib = tmp_path / "calib.npy"
    np.save(calib, RNG.normal(0.3, 2, (8, *shape)).astype(np.float32))
    model = CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)
    assert "tc_norm_s8" in [s.kernel for s in model.program.steps]
    golden = model.run_int8({"x": x})
    c_out, _ = model.run_c({"x": x})
    np.testing.assert_array_equal(c_out["y"], golden["y"])


def test_torch_decomposed_layer_norm_is_recognised(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ln = torch.nn.LayerNorm(8).eval()
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.5, 0.5)
        torch.onnx.export(ln, (torch.randn(1, 4, 8),), str(tmp_path / "m.onnx"), opset_version=13, dynamo=False,
                          input_names=["x"], output_names=["y"])
    assert "LayerNormalization" not in {n.op_type for n in onnx.load(tmp_path / "m.onnx").graph.node}
    g = run_pipeline(load_graph(tmp_path / "m.onnx"))
    assert [n.op for n in g.nodes] == ["LayerNorm"]
    x = RNG.normal(0, 1, (1, 4, 8)).astype(np.float32)
    np.testing.assert_allclose(run_float(g, {"x": x})["y"], ln(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("count,eps,gamma_sign", [(16, 1e-5, 1), (7, 0.5, -1), (300, 1e-6, 1)])
def test_scheme_within_one_lsb_of_the_float_function(count, eps, gamma_sign):
    """On int8 inputs (no input rounding) the integer scheme rounds once more than float: <= 1 LSB."""
    x = RNG.integers(-128, 128, (3, count)).astype(np.int8)
    s_in, zp_in, s_out, zp_out = 0.05, 3, 0.03, -5
    gamma, beta = gamma_sign * RNG.uniform(0.3, 1.5, count), RNG.normal(0, 0.5, count)
    p, mult, shift, bias = make_norm_params((3, 1, 1, count), s_in, zp_in, s_out, zp_out, gamma, beta, eps)
    got = norm_s8(p, x, mult, shift, bias)
    real = layer_norm((x.astype(np.float64) - zp_in) * s_in, gamma, beta, 1, eps)
    want = np.clip(np.round(real / s_out) + zp_out, -128, 127)
    assert np.max(np.abs(got.astype(np.int64) - want)) <= 1


def test_group_scheme_matches_group_norm_on_nhwc():
    x = RNG.integers(-128, 128, (2, 3, 4, 6)).astype(np.int8)  # N, H, W, C with 2 groups of 3
    gamma, beta = RNG.uniform(0.5, 1.5, 6), RNG.normal(0, 0.3, 6)
    p, mult, shift, bias = make_norm_params((2, 12, 2, 3), 0.04, 0, 0.02, 1, gamma, beta, 1e-5)
    got = norm_s8(p, x, mult, shift, bias)
    real = group_norm(x.astype(np.float64) * 0.04, gamma, beta, 2, 1e-5, channel_axis=3)
    assert np.max(np.abs(got - np.clip(np.round(real / 0.02) + 1, -128, 127))) <= 1


def _kernel_cases():
    """(params, x, mult, shift, bias): random shapes and zero points, a negative scale, a constant
    group (V = 0 without eps), a huge eps (capped) and saturation."""
    cases = []
    for dims, eps in [((3, 1, 1, 16), 1e-5), ((2, 5, 3, 4), 0.0), ((1, 1, 1, 1), 0.0), ((4, 1, 1, 33), 1e9)]:
        mid, r2 = dims[2], dims[3]
        gamma = RNG.normal(0, 2, mid * r2)
        p, mult, shift, bias = make_norm_params(dims, 0.03, int(RNG.integers(-20, 20)), 0.01, int(RNG.integers(-20, 20)),
                                                gamma, RNG.normal(0, 0.5, mid * r2), eps)
        x = RNG.integers(-128, 128, int(np.prod(dims))).astype(np.int8)
        cases.append((p, x, mult, shift, bias))
    p, mult, shift, bias = make_norm_params((2, 1, 1, 8), 0.03, 0, 0.01, 0, np.ones(8), np.zeros(8), 0.0)
    cases.append((p, np.full(16, 9, np.int8), mult, shift, bias))  # constant rows: out = zp + bias
    return cases


def test_c_kernel_equals_golden_and_runs_in_place():
    for k, (p, x, mult, shift, bias) in enumerate(_kernel_cases()):
        want = norm_s8(p, x, mult, shift, bias)
        status, got = run_c("tc_norm_s8", p, x.size, x, mult, shift, bias)
        assert status == TC_OK and np.array_equal(got, want.reshape(-1)), f"case {k}"
        buf = x.copy()
        from ctypes_kernels import call
        assert call("tc_norm_s8", p, buf, mult, shift, bias, buf) == TC_OK
        assert np.array_equal(buf, want.reshape(-1)), f"case {k} in place"


@pytest.mark.parametrize("bad", [dict(r1=0), dict(in_zp=128), dict(eps_lo=-1), dict(eps_hi=1 << 29, eps_lo=5),
                                 dict(r2=(1 << 20) + 1)])
def test_c_kernel_rejects_bad_params_and_writes_nothing(bad):
    good = NormParams(1, 1, 1, 4, 0, 0, 0, 0)
    p = NormParams(**{**good.__dict__, **bad})
    with pytest.raises(ValueError):
        p.validate()
    n = max(1, good.r2)
    status, out = run_c("tc_norm_s8", p, n, np.zeros(n, np.int8), np.zeros(4, np.int32), np.zeros(4, np.int32),
                        np.zeros(4, np.int32))
    assert status == TC_ARG_ERROR and np.all(out == 0x5A)


def test_c_kernel_under_sanitizers(tmp_path):
    run_under_sanitizers(tmp_path, [("tc_norm_s8", p, [x, mult, shift, bias], 0, norm_s8(p, x, mult, shift, bias))
                                    for p, x, mult, shift, bias in _kernel_cases()])


def test_group_norm_with_groups_not_dividing_channels_is_bad_input(tmp_path):
    path = _save(tmp_path / "m.onnx", "GroupNormalization", [1, 6, 2, 2], [_vec("s", [6]), _vec("b", [6])], 21,
                 num_groups=4)
    with pytest.raises(BadInput, match="'norm'.*num_groups=4"):
        load_graph(path)


# ---- the blocks the normalisations and GELU are used in: int8 close to float -------------------------
def _blocks():
    torch = pytest.importorskip("torch")

    class MlpBlock(torch.nn.Module):
        """Transformer MLP: x + fc2(GELU(fc1(LayerNorm(x)))) on 16 tokens of 32 features."""

        def __init__(self):
            super().__init__()
            self.ln, self.fc1, self.fc2 = torch.nn.LayerNorm(32), torch.nn.Linear(32, 64), torch.nn.Linear(64, 32)

        def forward(self, x):
            return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln(x))))

    class ConvMixerBlock(torch.nn.Module):
        """ConvMixer: depthwise 7x7 -> GELU -> BatchNorm + residual, 1x1 -> GELU -> GroupNorm."""

        def __init__(self):
            super().__init__()
            self.dw = torch.nn.Conv2d(16, 16, 7, padding=3, groups=16)
            self.bn = torch.nn.BatchNorm2d(16)
            self.pw = torch.nn.Conv2d(16, 16, 1)
            self.gn = torch.nn.GroupNorm(4, 16)

        def forward(self, x):
            x = x + self.bn(torch.nn.functional.gelu(self.dw(x)))
            return self.gn(torch.nn.functional.gelu(self.pw(x)))

    return {"mlp": (MlpBlock, (1, 16, 32)), "convmixer": (ConvMixerBlock, (1, 16, 8, 8))}


@pytest.mark.parametrize("block,dynamo", [("mlp", False), ("convmixer", True)])  # both exporters, kept short
def test_blocks_int8_sqnr_at_least_30_db(tmp_path, block, dynamo):
    import torch

    from tinycc.engines import sqnr_db

    cls, shape = _blocks()[block]
    torch.manual_seed(3)
    model = cls().eval()
    path = tmp_path / "m.onnx"
    with torch.no_grad():
        if block == "convmixer":  # trained-looking BatchNorm statistics
            model.bn.running_mean.uniform_(-0.2, 0.2)
            model.bn.running_var.uniform_(0.5, 1.5)
        torch.onnx.export(model, (torch.randn(*shape),), str(path), opset_version=18 if dynamo else 13,
                          dynamo=dynamo, input_names=["x"], output_names=["y"])
    g = run_pipeline(load_graph(path))
    ops = {n.op for n in g.nodes}
    assert "Gelu" in ops and ({"LayerNorm"} if block == "mlp" else {"GroupNorm"}) <= ops
    calib = tmp_path / "calib.npy"
    np.save(calib, RNG.normal(0, 1, (16, *shape)).astype(np.float32))
    compiled = CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)
    xs = [RNG.normal(0, 1, shape).astype(np.float32) for _ in range(4)]
    ref = np.concatenate([model(torch.from_numpy(x)).detach().numpy().ravel() for x in xs])
    got = np.concatenate([compiled.logical("y", compiled.run_int8({"x": x})["y"], True).ravel() for x in xs])
    db = sqnr_db(ref, got)
    print(f"{block} (dynamo={dynamo}): int8 vs float SQNR {db:.1f} dB")
    assert db >= 30.0
    c_out, _ = compiled.run_c({"x": xs[0]})
    np.testing.assert_array_equal(c_out["y"], compiled.run_int8({"x": xs[0]})["y"])


def test_channels_first_layer_norm_runs_on_nhwc_without_transposes(tmp_path):
    """ConvNeXt's LayerNorm2d (mean and variance over the channels of NCHW, written out) becomes a
    LayerNorm over the last axis of the NHWC data: no transpose is left in the int8 program."""
    torch = pytest.importorskip("torch")

    class LayerNorm2d(torch.nn.Module):
        def __init__(self, c):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.rand(c) + 0.5)
            self.bias = torch.nn.Parameter(torch.randn(c) * 0.2)

        def forward(self, x):
            u = x.mean(1, keepdim=True)
            v = (x - u).pow(2).mean(1, keepdim=True)
            return self.weight[:, None, None] * ((x - u) / torch.sqrt(v + 1e-6)) + self.bias[:, None, None]

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), LayerNorm2d(16), torch.nn.Conv2d(16, 8, 1)).eval()
    path = tmp_path / "m.onnx"
    with torch.no_grad():
        torch.onnx.export(net, (torch.randn(1, 3, 8, 8),), str(path), opset_version=13, dynamo=False,
                          input_names=["x"], output_names=["y"])
    g = run_pipeline(load_graph(path))
    x = RNG.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(run_float(g, {"x": x})["y"], net(torch.from_numpy(x)).detach().numpy(), atol=1e-5)
    calib = tmp_path / "calib.npy"
    np.save(calib, RNG.normal(0, 1, (8, 1, 3, 8, 8)).astype(np.float32))
    model = CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)
    assert [s.kernel for s in model.program.steps] == ["tc_conv2d_s8", "tc_norm_s8", "tc_conv2d_s8"]
    c_out, _ = model.run_c({"x": x})
    np.testing.assert_array_equal(c_out["y"], model.run_int8({"x": x})["y"])
