"""PROM ternary pointwise convolutions (quant/ternary.py, tc_pw_ternary_s8): the threshold rules,
the packed formats, the kernel (portable and DSP emulation) against its golden and the golden
against the int8 convolution, --quant prom end to end (golden == host C, sanitizers, Cortex-M
under QEMU), pre-quantized ternary QDQ models, the report and the CLI."""
from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from cbuild import ptr, runtime_library
from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.golden.arith import quantize_multiplier_array
from tinycc.kernels import lookup
from tinycc.ops.conv import (Conv2dParams, PwTernaryParams, conv2d_s8, fold_input_zero_point,
                             pw_ternary_s8)
from tinycc.passes import run_pipeline
from tinycc.quant import ternary

ROOT = Path(__file__).resolve().parent.parent
TC_OK, TC_ARG_ERROR = 0, -1
FORMATS = (ternary.FORMAT_2BIT, ternary.FORMAT_BASE3)


# ---- threshold rules and packed formats -------------------------------------------------------
def test_twn_scale_is_l2_optimal_for_its_support_and_absmean_is_bitnet():
    rng = np.random.default_rng(1)
    w = rng.normal(0, 1, (6, 37)).astype(np.float32)
    t, alpha = ternary.ternarize(w, ternary.TWN)
    assert set(np.unique(t)) <= {-1, 0, 1}
    for o in range(6):
        mean = np.abs(w[o]).mean()
        np.testing.assert_array_equal(t[o], np.sign(w[o]) * (np.abs(w[o]) > 0.7 * mean))
        errors = [np.sum((w[o] - a * t[o]) ** 2) for a in alpha[o] * np.array([0.9, 0.99, 1.0, 1.01, 1.1])]
        assert np.argmin(errors) == 2  # alpha minimises |w - alpha t|^2 for that support
    t, alpha = ternary.ternarize(w, ternary.ABSMEAN)
    gamma = np.abs(w).mean(axis=1, keepdims=True)
    np.testing.assert_array_equal(t, np.clip(np.round(w / gamma), -1, 1))
    np.testing.assert_allclose(alpha, gamma[:, 0], rtol=1e-6)
    zero_t, zero_alpha = ternary.ternarize(np.zeros((2, 5), np.float32))
    assert not zero_t.any() and np.all(zero_alpha == 1.0)
    with pytest.raises(ValueError, match="ternary rule"):
        ternary.ternarize(w, "nope")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("in_c", [1, 2, 3, 4, 5, 6, 7, 9, 15, 16, 17, 33])
def test_packed_formats_round_trip_and_size(fmt, in_c):
    rng = np.random.default_rng(in_c)
    t = rng.integers(-1, 2, (5, in_c)).astype(np.int8)
    packed = ternary.pack(t, fmt)
    assert packed.dtype == np.uint8 and packed.size == 5 * ternary.row_bytes(in_c, fmt)
    np.testing.assert_array_equal(ternary.unpack(packed, fmt, 5, in_c), t)
    if fmt == ternary.FORMAT_BASE3:
        assert packed.max() <= 242


def test_two_bit_byte_layout_pairs_nibbles_with_even_and_odd_activations():
    # w0..w3 = 1, -1, 0, 1: bits 0-1 w0 = 1, 2-3 w2 = 0, 4-5 w1 = 3, 6-7 w3 = 1
    assert ternary.pack_2bit(np.array([[1, -1, 0, 1]])).tolist() == [0b01_11_00_01]
    assert ternary.pack_base3(np.array([[1, -1, 0, 1, 0]])).tolist() == [2 + 0 * 3 + 1 * 9 + 2 * 27 + 1 * 81]


# ---- the kernel: C == golden (portable and DSP emulation), golden == int8 conv ---------------------
class _CParams(ctypes.Structure):
    _fields_ = [(f.name, ctypes.c_int32) for f in fields(PwTernaryParams)]


@pytest.fixture(scope="module", params=["portable", "dsp-emulated"])
def lib(request):
    lib = runtime_library(defines=["TC_EMULATE_DSP"] if request.param == "dsp-emulated" else [])
    lib.tc_pw_ternary_s8.restype = ctypes.c_int
    lib.tc_pw_ternary_s8.argtypes = [ctypes.c_void_p] * 7
    for name in SCRATCH_KERNELS:
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p] * 8
        getattr(lib, name + "_scratch_size").restype = ctypes.c_int32
        getattr(lib, name + "_scratch_size").argtypes = [ctypes.c_void_p]
    return lib


def _case(seed, in_c, out_c, pixels, fmt):
    """A random layer: the params, the int8 input, codes, packed weights, an unfolded bias, the
    input zero point and the requantization arrays."""
    rng = np.random.default_rng(seed)
    in_zp, out_zp = (int(v) for v in rng.integers(-128, 128, 2))
    lo = int(rng.integers(-128, 0))
    p = PwTernaryParams(pixels, in_c, out_c, fmt, out_zp, lo, int(rng.integers(lo, 128)))
    x = rng.integers(-128, 128, (pixels, in_c)).astype(np.int8)
    codes = rng.choice(np.array([-1, 0, 1], np.int8), (out_c, in_c), p=[0.3, 0.4, 0.3])
    bias = rng.integers(-5000, 5000, out_c).astype(np.int32)
    mult, shift = quantize_multiplier_array(rng.uniform(0.002, 0.9, out_c) / max(1, in_c) ** 0.5)
    return p, x, codes, ternary.pack(codes, fmt), bias, in_zp, mult, shift


def _run_c(lib, p, x, w, bias, mult, shift, kernel="tc_pw_ternary_s8"):
    """(status, output) of the kernel; the table kernel gets its declared scratch, poisoned."""
    out = np.full((p.pixels, p.out_c), 99, np.int8)
    args = [ctypes.byref(_CParams(**asdict(p))), ptr(x), ptr(w), ptr(bias) if bias is not None else None,
            ptr(mult), ptr(shift)]
    if kernel in SCRATCH_KERNELS:
        size = lookup(kernel).scratch_bytes(p)
        assert getattr(lib, kernel + "_scratch_size")(args[0]) == size
        scratch = np.full(size + 4, 0x5A, np.int8)
        args.append(ptr(scratch))
    status = getattr(lib, kernel)(*args, ptr(out))
    return status, out


SHAPES = [(1, 1, 1), (2, 3, 3), (3, 5, 2), (4, 4, 5), (5, 7, 1), (6, 2, 4), (7, 3, 3), (15, 5, 3), (16, 6, 2),
          (17, 3, 5), (33, 4, 3), (64, 9, 7), (96, 24, 1)]


KERNEL_FORMATS = [("tc_pw_ternary_s8", ternary.FORMAT_2BIT), ("tc_pw_ternary_s8", ternary.FORMAT_BASE3),
                  ("tc_pw_ternary_s8_lut", ternary.FORMAT_2BIT), ("tc_pw_ternary_s8_expand", ternary.FORMAT_2BIT),
                  ("tc_pw_ternary_s8_expand", ternary.FORMAT_BASE3)]
SCRATCH_KERNELS = ("tc_pw_ternary_s8_lut", "tc_pw_ternary_s8_expand")


@pytest.mark.parametrize("kernel,fmt", KERNEL_FORMATS)
@pytest.mark.parametrize("in_c,out_c,pixels", SHAPES + [(20, 3, 3), (300, 2, 3)])
def test_kernel_equals_golden_and_the_int8_conv(lib, kernel, fmt, in_c, out_c, pixels):
    """In_c not a multiple of 4, 5 or 16, and 1, 2, 3 input channels (not for the table kernel,
    which needs 4); odd pixel and channel counts (2x2 blocks, pixel pairs); whole and partial
    chunks of the table kernel (16 input channels); with and without a bias."""
    if kernel == "tc_pw_ternary_s8_lut" and in_c < 4:
        pytest.skip("the table kernel runs layers of 4 or more input channels")
    for seed in range(3):
        p, x, codes, w, bias, in_zp, mult, shift = _case(1000 * in_c + 10 * out_c + seed, in_c, out_c, pixels, fmt)
        folded = fold_input_zero_point(bias, codes, in_zp)
        want = pw_ternary_s8(p, x, w, folded, mult, shift)
        conv = Conv2dParams(1, pixels, in_c, 1, pixels, out_c, 1, 1, 1, 1, 1, 1, 0, 0, 1, in_zp, p.out_zp,
                            p.act_min, p.act_max)
        np.testing.assert_array_equal(
            want, conv2d_s8(conv, x.reshape(1, pixels, in_c), codes.reshape(out_c, 1, 1, in_c), bias, mult,
                            shift).reshape(pixels, out_c))
        status, got = _run_c(lib, p, x, w, folded, mult, shift, kernel)
        assert status == TC_OK
        np.testing.assert_array_equal(got, want, err_msg=f"seed {seed}")
    status, got = _run_c(lib, p, x, w, None, mult, shift, kernel)
    assert status == TC_OK
    np.testing.assert_array_equal(got, pw_ternary_s8(p, x, w, None, mult, shift))


@pytest.mark.parametrize("kernel", ["tc_pw_ternary_s8", "tc_pw_ternary_s8_lut", "tc_pw_ternary_s8_expand"])
def test_kernel_extreme_sums_and_bad_arguments(lib, kernel):
    """Every activation -128 or 127 under all -1 or all +1 weights: the largest sums, in both
    16-bit lanes of the table kernel."""
    p, x, codes, w, bias, in_zp, mult, shift = _case(5, 300, 3, 3, ternary.FORMAT_2BIT)
    for value, code in ((-128, -1), (-128, 1), (127, 1), (127, -1)):
        x[:] = value
        codes[:] = code
        w = ternary.pack(codes, p.format)
        status, got = _run_c(lib, p, x, w, bias, mult, shift, kernel)
        assert status == TC_OK
        np.testing.assert_array_equal(got, pw_ternary_s8(p, x, w, bias, mult, shift))
    bads = [dict(format=2), dict(in_c=0), dict(pixels=0), dict(act_min=10, act_max=5), dict(out_zp=128)]
    if kernel == "tc_pw_ternary_s8_lut":
        bads += [dict(format=ternary.FORMAT_BASE3), dict(in_c=3)]
    for bad in bads:
        q = PwTernaryParams(**{**asdict(p), **bad})
        status, got = _run_c(lib, q, x, w, bias, mult, shift, kernel)
        assert status == TC_ARG_ERROR and np.all(got == 99), bad
    bad_shift = shift.copy()
    bad_shift[0] = 31
    assert _run_c(lib, p, x, w, bias, mult, bad_shift, kernel)[0] == TC_ARG_ERROR


# ---- end to end ---------------------------------------------------------------------------------
def _compiled(zoo_models, name, **opts):
    path, inputs = zoo_models[(name, "torchscript")]
    g = run_pipeline(load_graph(path))
    return g, inputs, CompiledModel(g, QuantOptions(quant="prom", **opts), warn=lambda m: None)


def _inputs(inputs, seed):
    rng = np.random.default_rng(seed)
    return {k: (v + rng.normal(0, 0.3, v.shape)).astype(np.float32) for k, v in inputs.items()}


KERNELS = {"tc_pw_ternary_s8", "tc_pw_ternary_s8_expand", "tc_pw_ternary_s8_lut"}


def _three_kernel_model(path: Path):
    """x [1, 3, 7, 7] -> 3x3 conv 3->64 (int8) -> ReLU -> 1x1 64->200 (tables) -> ReLU -> 1x1 200->44
    (add/sub: 8.8 KB of int8 weights, too many to expand) -> 3x3 depthwise (int8) -> 1x1 44->30
    (expanded) -> global pool -> Gemm: a layer for each ternary kernel (ops/conv.py
    pw_ternary_kernel) between int8 ones; 49 pixels, an odd count."""
    rng = np.random.default_rng(12)

    def const(name, *shape):
        return helper.make_tensor(name, TensorProto.FLOAT, list(shape), rng.normal(0, 0.3, int(np.prod(shape))).tolist())

    inits = [const("w0", 64, 3, 3, 3), const("b0", 64), const("w1", 200, 64, 1, 1), const("b1", 200),
             const("w2", 44, 200, 1, 1), const("w3", 44, 1, 3, 3), const("w4", 30, 44, 1, 1), const("b4", 30),
             const("fc", 5, 30), const("fcb", 5)]
    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c0"], ["r0"]),
             helper.make_node("Conv", ["r0", "w1", "b1"], ["c1"]), helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"]),
             helper.make_node("Conv", ["c2", "w3"], ["c3"], pads=[1, 1, 1, 1], group=44),
             helper.make_node("Conv", ["c3", "w4", "b4"], ["c4"]),
             helper.make_node("GlobalAveragePool", ["c4"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "three", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 7, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.fixture(scope="module")
def three_kernels(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prom")
    _three_kernel_model(folder / "m.onnx")
    rng = np.random.default_rng(5)
    np.save(folder / "calib.npy", rng.normal(0, 1, (8, 1, 3, 7, 7)).astype(np.float32))
    g = run_pipeline(load_graph(folder / "m.onnx"))
    model = CompiledModel(g, QuantOptions(calib=str(folder / "calib.npy"), quant="prom"), warn=lambda m: None)
    return g, {"x": rng.normal(0, 1, (1, 3, 7, 7)).astype(np.float32)}, model


def test_prom_kernels_golden_equals_host_c_under_sanitizers(three_kernels):
    """Each ternary kernel, between int8 layers; the generated C equals the golden bit for bit in
    the ASan/UBSan build that checks after every layer that it wrote only its planned region."""
    g, x, model = three_kernels
    steps = [s for s in model.program.steps if s.kernel.startswith("tc_pw_ternary_s8")]
    assert [s.kernel for s in steps] == ["tc_pw_ternary_s8_lut", "tc_pw_ternary_s8", "tc_pw_ternary_s8_expand"]
    assert {"tc_conv2d_s8", "tc_dwconv2d_s8", "tc_fc_s8"} <= {s.kernel for s in model.program.steps}
    golden = model.run_int8(x)
    got, _ = model.run_c(x, check=True)
    np.testing.assert_array_equal(got["y"], golden["y"])


def test_prom_mbv2_golden_equals_host_c(zoo_models):
    """Every pointwise conv of the zoo's MobileNetV2 runs ternary, every other layer int8; C == golden."""
    g, inputs, model = _compiled(zoo_models, "mbv2")
    pointwise = [n for n in g.nodes if ternary.is_pointwise(g, n)]
    ternary_steps = [s for s in model.program.steps if s.kernel.startswith("tc_pw_ternary_s8")]
    assert pointwise and len(ternary_steps) == len(pointwise)
    assert {"tc_conv2d_s8", "tc_dwconv2d_s8", "tc_fc_s8"} <= {s.kernel for s in model.program.steps}
    assert all(s.params.format == ternary.FORMAT_2BIT for s in ternary_steps)
    assert model.program.quant_scheme.startswith("prom-twn+int8-ptq-")
    x = _inputs(inputs, 0)
    golden = model.run_int8(x)
    got, _ = model.run_c(x)
    for t in golden:
        np.testing.assert_array_equal(got[t], golden[t], err_msg=t)


def test_prom_base3_absmean_golden_equals_host_c(zoo_models):
    """Base-3 rows everywhere (the table kernel takes 2-bit rows only, so the others run) and
    the absmean rule, on MCUNet."""
    _, inputs, model = _compiled(zoo_models, "mcunet", ternary_formats="base3", ternary_rule=ternary.ABSMEAN)
    steps = [s for s in model.program.steps if s.kernel.startswith("tc_pw_ternary_s8")]
    assert steps and all(s.params.format == ternary.FORMAT_BASE3 for s in steps)
    assert {s.kernel for s in steps} == {"tc_pw_ternary_s8", "tc_pw_ternary_s8_expand"}  # (200, 48): add/sub
    assert model.program.quant_scheme.startswith("prom-absmean+")
    x = _inputs(inputs, 1)
    golden = model.run_int8(x)
    got, _ = model.run_c(x)
    for t in golden:
        np.testing.assert_array_equal(got[t], golden[t], err_msg=t)


def _needs_qemu():
    from tinycc.sim.qemu import missing_tools

    missing = missing_tools(run=True)
    if missing is not None:
        pytest.skip(f"Cortex-M toolchain or QEMU unavailable: {missing}")


@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4", "cortex-m33"])
def test_prom_on_cortex_m_equals_golden(three_kernels, core):
    """The three ternary kernels cross-built and run under QEMU: M3 portable C, M4 and M33 the
    DSP variants (and tc_conv2d_s8's assembly behind the expanding kernel)."""
    _needs_qemu()
    _, x, model = three_kernels
    golden = model.run_int8(x)
    target, run = model.run_qemu(x, core)
    np.testing.assert_array_equal(target["y"], golden["y"], err_msg=core)
    assert run.instructions > 0


# ---- patch stage (tinycc/schedule/): ternary pointwise layers are per-pixel steps -----------
def _patched_three_kernels(three_kernels, halo: str) -> CompiledModel:
    """The three-kernel model with its longest patch stage run as a forced uneven 3x2 grid, halos
    recomputed or reused (patches below the first row compute only their new rows); the stage
    must hold all three ternary kernels."""
    import copy

    from tinycc.memory.lifetimes import reorder_steps
    from tinycc.schedule.patches import PatchConfig, stage_limit
    from tinycc.schedule.search import PatchOptions, plan_program

    g, _, model = three_kernels
    ordered = copy.copy(model.program)  # the order plan_program cuts the stage from
    ordered.steps = list(model.program.steps)
    reorder_steps(ordered, 0.5)
    limit = stage_limit(ordered)
    split = max(limit.splits, default=0)
    stage = {s.kernel for s in ordered.steps[:split]}
    assert {"tc_pw_ternary_s8", "tc_pw_ternary_s8_expand", "tc_pw_ternary_s8_lut"} <= stage, limit.stop_reason
    program, mem, _ = plan_program(model.program, PatchOptions("forced", PatchConfig(split, 3, 2, halo)))
    return CompiledModel.from_program(g, program, mem)


@pytest.mark.parametrize("halo", ["recompute", "reuse"])
def test_patch_stage_runs_through_the_ternary_kernels(three_kernels, halo):
    """The patch stage goes on past the ternary layers (1x1 windows) up to the global pool; a
    forced uneven 3x2 grid over it equals the layer-by-layer golden, and its generated C equals
    the patched golden step by step under ASan/UBSan with per-step write checks (so the
    per-patch pixel counts, scratch and overlap licences of all three kernels are right)."""
    from cbuild import require_sanitizers

    _, x, model = three_kernels
    patched = _patched_three_kernels(three_kernels, halo)
    assert patched.program.patch is not None
    assert (halo == "reuse") == any(s.op == "HaloSave" for s in patched.program.steps)
    golden = {}
    outs = patched.run_int8(x, observe=lambda t, v: golden.__setitem__(t, v))
    np.testing.assert_array_equal(outs["y"], model.run_int8(x)["y"])
    require_sanitizers()
    c_outs, trace = patched.run_c(x, check=True)
    last_writer = {step.outputs[0]: k for k, step in enumerate(patched.program.steps)}
    for t, k in last_writer.items():
        np.testing.assert_array_equal(trace[k], golden[t].reshape(-1), err_msg=f"step {k}")
    np.testing.assert_array_equal(c_outs["y"], outs["y"])


def test_patched_ternary_kernels_on_cortex_m4_equal_golden(three_kernels):
    """The reuse patch plan cross-built for the Cortex-M4 (DSP variants, tc_conv2d_s8's assembly
    behind the expanding kernel) on per-patch pixel counts, odd ones included."""
    _needs_qemu()
    _, x, model = three_kernels
    patched = _patched_three_kernels(three_kernels, "reuse")
    target, _ = patched.run_qemu(x, "cortex-m4")
    np.testing.assert_array_equal(target["y"], model.run_int8(x)["y"])


def _ternary_qdq_model(path: Path, in_c: int = 6, out_c: int = 5, hw: int = 4, codes=None):
    """x -> Q/DQ -> 1x1 Conv (int8 weights in {-1, 0, 1}, per-channel DQ scale, int32 bias) ->
    Q/DQ -> y: what a PROM QAT export writes for a pointwise layer."""
    rng = np.random.default_rng(4)
    codes = rng.integers(-1, 2, (out_c, in_c, 1, 1)).astype(np.int8) if codes is None else codes
    w_scale = rng.uniform(0.01, 0.05, out_c).astype(np.float32)
    x_scale, y_scale = np.float32(0.02), np.float32(0.03)
    bias = rng.integers(-300, 300, out_c).astype(np.int32)
    inits = [
        helper.make_tensor("x_s", TensorProto.FLOAT, [], [x_scale]), helper.make_tensor("x_z", TensorProto.INT8, [], [3]),
        helper.make_tensor("y_s", TensorProto.FLOAT, [], [y_scale]), helper.make_tensor("y_z", TensorProto.INT8, [], [-5]),
        helper.make_tensor("w_q", TensorProto.INT8, list(codes.shape), codes.ravel().tolist()),
        helper.make_tensor("w_s", TensorProto.FLOAT, [out_c], w_scale.tolist()),
        helper.make_tensor("w_z", TensorProto.INT8, [out_c], [0] * out_c),
        helper.make_tensor("b_q", TensorProto.INT32, [out_c], bias.tolist()),
        helper.make_tensor("b_s", TensorProto.FLOAT, [out_c], (x_scale * w_scale).tolist()),
        helper.make_tensor("b_z", TensorProto.INT32, [out_c], [0] * out_c),
    ]
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "x_s", "x_z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["wd"], axis=0),
             helper.make_node("DequantizeLinear", ["b_q", "b_s", "b_z"], ["bd"], axis=0),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], name="pw"),
             helper.make_node("QuantizeLinear", ["c", "y_s", "y_z"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "y_s", "y_z"], ["y"])]
    graph = helper.make_graph(nodes, "ternary_qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, in_c, hw, hw])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, out_c, hw, hw])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return codes


def test_prequantized_ternary_qdq_runs_the_ternary_kernel(tmp_path):
    """A QDQ model whose pointwise weights are stored in {-1, 0, 1} compiles with the ternary
    kernel without --quant prom, its stored codes used as they are; with a code of 2 the same
    layer stays an int8 conv. Either way C == golden, and the golden is within one output step
    of onnxruntime's float QDQ execution."""
    import onnxruntime as ort

    x = np.random.default_rng(0).normal(0, 1, (1, 6, 4, 4)).astype(np.float32)
    for stored, kernel in ((None, "tc_pw_ternary_s8"), ("two", "tc_conv2d_s8")):
        codes = None
        if stored == "two":
            codes = np.random.default_rng(4).integers(-1, 2, (5, 6, 1, 1)).astype(np.int8)
            codes[0, 0] = 2
        codes = _ternary_qdq_model(tmp_path / "m.onnx", codes=codes)
        g = run_pipeline(load_graph(tmp_path / "m.onnx"))
        model = CompiledModel(g, QuantOptions(), warn=lambda m: None)
        step = next(s for s in model.program.steps if s.op == "Conv")
        assert step.kernel.startswith(kernel)
        if kernel == "tc_pw_ternary_s8":
            packed = model.program.blobs[next(a.ref for a in step.args if a.kind == "const")]
            np.testing.assert_array_equal(ternary.unpack(packed, step.params.format, 5, 6), codes.reshape(5, 6))
            assert model.program.quant_scheme == "prom-qdq"
        golden = model.run_int8({"x": x})
        got, _ = model.run_c({"x": x})
        np.testing.assert_array_equal(got["y"], golden["y"])
        want = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        deq = model.logical("y", golden["y"], dequantize=True)
        assert np.abs(deq - want).max() <= 0.03 + 1e-6


def test_cli_quant_prom_report_and_bad_value(zoo_models, tmp_path):
    path, inputs = zoo_models[("mbv2", "torchscript")]
    out = tmp_path / "out"
    env = {"PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "tinycc", "compile", str(path), "-o", str(out), "--quant", "prom"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    r = json.loads((out / "report.json").read_text())
    prom = r["prom"]
    assert r["quant"].startswith("prom-twn+")
    assert len(prom["ternary_layers"]) == sum(l["kernel"].startswith("tc_pw_ternary_s8") for l in r["layers"]) > 0
    assert prom["flash_ratio_2bit"] <= 0.26 and prom["flash_ratio_base3"] <= 0.22
    assert 0.5 < prom["mac_share"] < 1
    e = prom["energy"]
    assert e["float16_over_prom"] > e["float16_over_int8"] == 5.0
    assert "## PROM ternary layers" in (out / "report.md").read_text()
    bad = subprocess.run([sys.executable, "-m", "tinycc", "compile", str(path), "-o", str(tmp_path / "b"),
                          "--quant", "int4"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "--quant" in bad.stderr
