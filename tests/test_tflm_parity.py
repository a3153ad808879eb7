"""tinycc against TensorFlow Lite Micro on converted models (fixtures in tests/fixtures/tflm/, made
by tests/fixtures/make_tflm_fixtures.py with TensorFlow + tflite-micro; TensorFlow is not needed
here): MEAN in every form tf2onnx writes it, float inputs quantized like TFLM's QUANTIZE, the
generated C's *_invoke_f32 on ties, NaN and infinities, and the generic int8 reduce kernel."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.ops import reduce as R
from tinycc.golden.arith import quantize_multiplier, requantize_to_int8
from tinycc.passes import run_pipeline
from tinycc.sim.qemu import missing_tools

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tflm"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.onnx"))


def _compile(path: Path, **quant) -> CompiledModel:
    g = run_pipeline(load_graph(path))
    return CompiledModel(g, QuantOptions(**quant), warn=pytest.fail if not quant else None)


@pytest.fixture(scope="module")
def fixtures() -> dict:
    assert NAMES, f"no fixtures in {FIXTURES}"
    return {name: (_compile(FIXTURES / f"{name}.onnx"), np.load(FIXTURES / f"{name}.npz")) for name in NAMES}


def _golden(model: CompiledModel, x: np.ndarray) -> np.ndarray:
    out = model.program.outputs[0]
    return model.logical(out, model.run_int8({model.graph.inputs[0]: x[None]})[out], dequantize=False)


@pytest.mark.parametrize("name", NAMES)
def test_golden_and_c_reproduce_tflite_micro(fixtures, name):
    model, data = fixtures[name]
    assert model.program.quant_scheme == "int8-qdq"
    for i, (x, y) in enumerate(zip(data["x"], data["y"])):
        np.testing.assert_array_equal(_golden(model, x).reshape(-1), y.reshape(-1), err_msg=f"{name} sample {i}")
    out = model.program.outputs[0]
    c_out = model.run_c({model.graph.inputs[0]: data["x"][:1]})[0][out]
    np.testing.assert_array_equal(model.logical(out, c_out, False).reshape(-1), data["y"][0].reshape(-1))


def _naive_mean_multiplier(s_in, s_out, n):
    return quantize_multiplier(float(np.float64(np.float32(s_in)) / (np.float64(np.float32(s_out)) * n)))


def test_fixtures_expose_the_naive_mean_multiplier(fixtures, monkeypatch):
    """The fixtures can fail: with QuantizeMultiplier(s_in / (s_out * n)) (tinycc before it
    followed TFLM) some MEAN outputs are one LSB off."""
    monkeypatch.setattr(R, "mean_multiplier", _naive_mean_multiplier)
    off = 0
    for name in ("mean_axis1_nokeep", "mean_hw_keepdims"):
        _, data = fixtures[name]
        model = _compile(FIXTURES / f"{name}.onnx")
        off += sum(int(np.any(_golden(model, x).reshape(-1) != y.reshape(-1))) for x, y in zip(data["x"], data["y"]))
    assert off > 0


def test_fixture_float_inputs_are_rounding_ties(fixtures):
    """keras_gap2d's float inputs quantize differently with a double division (what `tinycc
    run` did before): the fixture checks the float32 division of TFLM's QUANTIZE."""
    from tinycc.golden.boundary import quantize

    model, data = fixtures["keras_gap2d"]
    s, zp = model.program.tensors[model.program.inputs[0]].quant.scalar()
    x = data["x"].astype(np.float64) / np.float64(np.float32(s))
    double = np.clip(np.sign(x) * np.floor(np.abs(x) + 0.5) + zp, -128, 127)
    assert np.count_nonzero(double != quantize(data["x"], s, zp)) > 0


def test_mean_multiplier_is_tflms():
    # n = 12: k = 3, mult = (QuantizeMultiplier(s_in/s_out).mult << 3) // 12, shift - 3
    m, s = quantize_multiplier(float(np.float64(np.float32(0.06)) / np.float64(np.float32(0.014))))
    assert R.mean_multiplier(0.06, 0.014, 12) == ((m << 3) // 12, s - 3)
    # a power of two divides exactly; the shift cap 31 + shift keeps the final shift >= -31
    assert R.mean_multiplier(0.5, 0.5, 16) == (1 << 30, 1 - 4)
    m, s = quantize_multiplier(2.0 ** -28)
    assert R.mean_multiplier(2.0 ** -28, 1.0, 1 << 10)[1] == -31 and s - min(10, 31 + s) == -31


# ---- generic reduce kernel: golden == C on arbitrary axes ------------------------------------------
def _reduce_model(tmp_path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 5])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 6, 10])
    specs = [  # (op, input, axes, keepdims)
        ("ReduceMean", "x", [1], 0), ("ReduceMean", "x", [0, 2], 1), ("ReduceMax", "x", [3], 0),
        ("ReduceMean", "x", [1, 3], 0), ("ReduceMax", "x", [1, 2, 3], 1), ("ReduceMean", "z", [-1], 0),
        ("GlobalAveragePool", "z", None, None), ("GlobalMaxPool", "z", None, None),
    ]
    nodes, outs = [], []
    for i, (op, src, axes, keep) in enumerate(specs):
        attrs = {} if axes is None else {"axes": axes, "keepdims": keep}
        nodes.append(helper.make_node(op, [src], [f"y{i}"], name=f"{op.lower()}_{i}", **attrs))
        outs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None))
    g = helper.make_graph(nodes, "reduces", [x, z], outs)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model = onnx.shape_inference.infer_shapes(model)
    path = tmp_path / "reduces.onnx"
    onnx.save(model, path)
    return path


def test_reduce_over_any_axes_golden_equals_c_and_float(tmp_path):
    import onnxruntime as ort

    path = _reduce_model(tmp_path)
    rng = np.random.default_rng(3)
    calib = tmp_path / "calib.npz"
    data = {"x": rng.normal(size=(16, 1, 3, 4, 5)).astype(np.float32),
            "z": rng.normal(size=(16, 1, 6, 10)).astype(np.float32)}
    np.savez(calib, **data)
    model = _compile(path, calib=str(calib))
    kernels = {s.kernel for s in model.program.steps}
    assert "tc_reduce_s8" in kernels
    inputs = {k: v[5] for k, v in data.items()}  # inside the calibrated ranges: no clipping
    golden = model.run_int8(inputs)
    from cbuild import require_sanitizers

    require_sanitizers()  # the checked harness (make check) uses ASan/UBSan
    c_out = model.run_c(inputs, check=True)[0]
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, inputs)
    for name, r in zip(model.program.outputs, ref):
        np.testing.assert_array_equal(c_out[name], golden[name], err_msg=name)
        y = model.logical(name, golden[name], dequantize=True)
        s, _ = model.program.tensors[name].quant.scalar()
        assert y.shape == r.shape, name
        assert np.max(np.abs(y - r)) <= 2 * s + 1e-6, name


def test_reduce_params_merge_axes():
    p = R.ReduceParams.make(R.OP_MEAN, (1, 4, 1, 3, 5, 2), (1, 3), mult=1 << 30, shift=0)
    assert p.in_shape == (12, 10) and p.axes == (0,) and p.count == 12
    assert R.merge_axes((2, 3, 4), (0, 2)) == ((2, 3, 4), (1, 0, 1))
    x = np.arange(24, dtype=np.int8).reshape(2, 3, 4)
    pm = R.ReduceParams.make(R.OP_MAX, x.shape, (0, 2))
    assert R.reduce_s8(pm, x).tolist() == x.max(axis=(0, 2)).tolist()


# ---- *_invoke_f32 in C: TFLM's QUANTIZE, defined on NaN and infinities (UBSan build) -------------
def _identity_qdq_model(tmp_path: Path, scale: float, zp: int) -> Path:
    """float x -> QuantizeLinear -> DequantizeLinear -> MaxPool 1x1 -> QuantizeLinear -> int8 y:
    y is the quantized input, so the C API's float output shows its input quantization."""
    inits = [helper.make_tensor("s", TensorProto.FLOAT, [], [scale]),
             helper.make_tensor("zp", TensorProto.INT8, [], [zp])]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"]),
             helper.make_node("MaxPool", ["xd"], ["p"], kernel_shape=[1, 1]),
             helper.make_node("QuantizeLinear", ["p", "s", "zp"], ["y"])]
    g = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 2, 4, 8])], inits)
    path = tmp_path / "identity_qdq.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


F32_DRIVER = r"""
#include <stdio.h>
#include "model.h"
/* argv[1]: float32 input samples back to back; argv[2]: float32 outputs. */
int main(int argc, char **argv) {
    static float in[MODEL_INPUT0_SIZE], out[MODEL_OUTPUT0_SIZE];
    FILE *fi, *fo;
    if (argc != 3 || !(fi = fopen(argv[1], "rb")) || !(fo = fopen(argv[2], "wb"))) return 2;
    while (fread(in, sizeof(float), MODEL_INPUT0_SIZE, fi) == MODEL_INPUT0_SIZE) {
        if (model_invoke_f32(in, out) != 0) return 3;
        if (fwrite(out, sizeof(float), MODEL_OUTPUT0_SIZE, fo) != MODEL_OUTPUT0_SIZE) return 4;
    }
    fclose(fi);
    return fclose(fo) == 0 ? 0 : 5;
}
"""


def _run_invoke_f32(model: CompiledModel, xs: np.ndarray, tmp_path: Path) -> np.ndarray:
    """Every sample (ONNX layout) through the generated model_invoke_f32, built with UBSan
    (float-cast-overflow included) and -Werror; returns the float outputs (ONNX layout)."""
    cc = shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no host C compiler (gcc or clang)")
    proj = model.project_dir
    (tmp_path / "f32_main.c").write_text(F32_DRIVER)
    exe = tmp_path / "f32_driver"
    srcs = [proj / "model.c", proj / "weights.c", *sorted((proj / "runtime").glob("*.c")), tmp_path / "f32_main.c"]
    flags = ["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic",
             "-fsanitize=undefined,float-cast-overflow", "-fno-sanitize-recover=all"]
    subprocess.run([cc, *flags, f"-I{proj}", f"-I{proj / 'runtime'}", *map(str, srcs), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    inp = model.program.tensors[model.program.inputs[0]]
    out = model.program.tensors[model.program.outputs[0]]
    phys = np.stack([x.reshape(inp.logical_shape).transpose(inp.perm) if inp.perm else x.reshape(inp.logical_shape)
                     for x in xs]).astype(np.float32)
    (tmp_path / "in.bin").write_bytes(phys.tobytes())
    r = subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr, r.stderr
    ys = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype=np.float32).reshape((len(xs),) + out.shape)
    return np.stack([model.logical(out.name, y, dequantize=False) for y in ys])


def test_invoke_f32_quantizes_like_tflite_micro(fixtures, tmp_path):
    """The shipped float API on the recorded TFLM inputs (rounding ties): its outputs are TFLM's
    int8 outputs dequantized, bit for bit."""
    model, data = fixtures["keras_gap2d"]
    ys = _run_invoke_f32(model, data["x"], tmp_path)
    s, zp = model.program.tensors[model.program.outputs[0]].quant.scalar()
    want = (data["y"].astype(np.int64) - zp).astype(np.float32) * np.float32(s)
    np.testing.assert_array_equal(ys.reshape(want.shape), want)


def test_invoke_f32_and_run_agree_on_nan_inf_and_ties(tmp_path):
    """NaN gives the zero point, +-Inf saturate, ties round half away from zero in float32: the
    C (UBSan: no undefined float-to-int conversion) and `tinycc run`'s Python twin agree."""
    scale, zp = 0.1, -3
    model = _compile(_identity_qdq_model(tmp_path, scale, zp))
    s32 = np.float32(scale)
    special = [np.nan, -np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0, 12.7, -12.9, 3.4e38, -3.4e38]
    ties = [np.float32((k + 0.5) * float(s32)) for k in range(-130, 130, 7)]
    near = [np.nextafter(t, np.float32(np.inf), dtype=np.float32) for t in ties[:10]]
    values = np.array(special + ties + near, dtype=np.float32)
    values = np.resize(values, (3, 64)).reshape(3, 1, 2, 4, 8)
    c_ys = _run_invoke_f32(model, values, tmp_path)
    for x, c_y in zip(values, c_ys):
        q = model.logical(model.program.outputs[0], model.run_int8({"x": x})[model.program.outputs[0]], False)
        np.testing.assert_array_equal(c_y, (q.astype(np.int64) - zp).astype(np.float32) * s32)
    q = model.logical("x", model.quantize_inputs({"x": values[0]})["x"], dequantize=False).reshape(-1)
    flat = values[0].reshape(-1)
    assert np.all(q[np.isnan(flat)] == zp)
    assert np.all(q[flat == np.inf] == 127) and np.all(q[flat == -np.inf] == -128)


_NO_QEMU = missing_tools(run=True)


@pytest.mark.skipif(_NO_QEMU is not None, reason=f"Cortex-M toolchain or QEMU unavailable: {_NO_QEMU}")
@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m3"])
@pytest.mark.parametrize("name", ["keras_gap2d", "mean_hw_keepdims", "mean_last_then_gap1d"])
def test_cortex_m_under_qemu_reproduces_tflite_micro(fixtures, name, core):
    """MEAN (global average pooling and the generic reduce kernel) cross-compiled for a DSP core
    and a portable one gives TFLite Micro's outputs under QEMU."""
    model, data = fixtures[name]
    out = model.program.outputs[0]
    outputs, _ = model.run_qemu({model.graph.inputs[0]: data["x"][:1]}, core, count=False)
    np.testing.assert_array_equal(model.logical(out, outputs[out], False).reshape(-1), data["y"][0].reshape(-1))
