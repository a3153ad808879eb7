"""Memory plans on real models: generated C under ASan with guard bytes and per-layer write
checks, bit-exact with the golden model, every in-place feature on; budget figures."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.memory.planner import assert_no_overlap
from tinycc.passes import run_pipeline
from tinycc.sim.host import BuildError, run_harness

MLPERF = ["ad_autoencoder", "ic_resnet8", "kws_dscnn", "vww_mobilenetv1_025"]


@pytest.fixture(scope="module")
def compiled(mlperf_dir):
    out = {}
    for name in MLPERF:
        g = run_pipeline(load_graph(mlperf_dir / f"{name}_qdq.onnx"))
        out[name] = CompiledModel(g, QuantOptions(), warn=pytest.fail)
    return out


@pytest.mark.parametrize("name", MLPERF)
def test_checked_c_matches_golden(compiled, mlperf_dir, name):
    model = compiled[name]
    x = np.load(mlperf_dir / "samples.npz")[f"{name}_int8"]
    inputs = {model.graph.inputs[0]: x[:1]}
    from cbuild import require_sanitizers

    require_sanitizers()  # the checked harness (make check) uses ASan/UBSan
    outs, trace = model.run_c(inputs, check=True)
    golden = {}
    model.run_int8(inputs, observe=lambda t, v: golden.__setitem__(t, v))
    for k, step in enumerate(model.program.steps):
        np.testing.assert_array_equal(trace[k], golden[step.outputs[0]].reshape(-1), err_msg=step.name)


@pytest.mark.parametrize("name", MLPERF)
def test_plan_has_no_overlapping_live_buffers(compiled, name):
    mem = compiled[name].mem
    assert_no_overlap(mem.buffers, mem.plan, mem.overlaps)
    assert mem.arena_bytes >= 0


def test_peak_sram_beats_tflite_micro_and_tinyengine(compiled, mlperf_dir):
    peers = json.loads((mlperf_dir / "peers.json").read_text())
    for name, model in compiled.items():
        tflm = peers["models"][name]["tflm_arena_head"]
        te = peers["tinyengine"].get(name, {}).get("peak_mem")
        assert model.mem.arena_bytes <= tflm, name
        if te:
            assert model.mem.arena_bytes <= te, name
    assert compiled["kws_dscnn"].mem.arena_bytes < peers["models"]["kws_dscnn"]["tflm_arena_head"]


def test_in_place_features_are_used(compiled):
    vww = compiled["vww_mobilenetv1_025"]
    kernels = {vww.program.steps[k].call(True)[0] for k in vww.mem.inplace_steps}
    assert "tc_dwconv2d_s8_inplace" in kernels
    assert compiled["kws_dscnn"].mem.overlaps  # row overlap of convolutions pays on KWS


def test_write_outside_the_planned_region_is_caught(compiled, mlperf_dir, tmp_path):
    model = compiled["kws_dscnn"]
    src = model.project_dir / "model.c"
    text = src.read_text()
    step = model.program.steps[0]
    off = model.mem.offsets[step.outputs[0]]
    call = re.search(rf"st = {step.kernel}\(&{step.name}_params, (.*)\);", text)
    assert call
    args = call.group(1).split(", ")
    args[-1] = f"A({off + 1})"  # shift the output by one byte: the last byte lands outside
    tampered = text.replace(call.group(0), f"st = {step.kernel}(&{step.name}_params, {', '.join(args)});")
    import shutil

    shutil.copytree(model.project_dir, tmp_path / "p")
    (tmp_path / "p" / "model.c").write_text(tampered)
    from tinycc.sim.host import build

    from cbuild import require_sanitizers

    require_sanitizers()  # the checked harness (make check) uses ASan/UBSan
    exe = build(tmp_path / "p", "model", "check")
    x = np.load(mlperf_dir / "samples.npz")["kws_dscnn_int8"][:1]
    with pytest.raises(BuildError, match="-1000"):
        run_harness(exe, model.program, model.quantize_inputs({model.graph.inputs[0]: x}), trace=True,
                    env={"ASAN_OPTIONS": "detect_leaks=0"})


def test_concat_without_copies(tmp_path):
    """Two branches pooled to vectors and concatenated: the producers write straight into
    their slices of the concat output, the copies disappear, the C still equals the golden."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "wa"),
             numpy_helper.from_array(rng.standard_normal((12, 3, 1, 1)).astype(np.float32), "wb"),
             numpy_helper.from_array(rng.standard_normal((5, 28)).astype(np.float32), "fc")]
    nodes = [helper.make_node("Conv", ["x", "wa"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "wb"], ["b"]),
             helper.make_node("GlobalAveragePool", ["a"], ["pa"]), helper.make_node("GlobalAveragePool", ["b"], ["pb"]),
             helper.make_node("Flatten", ["pa"], ["fa"]), helper.make_node("Flatten", ["pb"], ["fb"]),
             helper.make_node("Concat", ["fa", "fb"], ["cat"], axis=1),
             helper.make_node("Gemm", ["cat", "fc"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    path = tmp_path / "cat.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    model = CompiledModel(run_pipeline(load_graph(path)), QuantOptions(), warn=lambda m: None)
    concat_steps = [k for k, s in enumerate(model.program.steps) if s.kernel == "tc_concat_s8_part"]
    assert set(concat_steps) <= model.mem.elided_steps and concat_steps
    assert "tc_concat_s8_part(" not in (model.project_dir / "model.c").read_text()
    x = {"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}
    from cbuild import require_sanitizers

    require_sanitizers()  # the checked harness (make check) uses ASan/UBSan
    outs, _ = model.run_c(x, check=True)
    golden = model.run_int8(x)
    for k in golden:
        np.testing.assert_array_equal(outs[k], golden[k])
