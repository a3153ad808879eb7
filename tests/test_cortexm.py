"""Cortex-M target: cross build, QEMU output == host output == golden, sizes from the ELF, the
link-time SRAM/flash budget, stack guard and measurement, deterministic instruction counts."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cbuild import kernel_sources

from tinycc.codegen.emit import generate_project, write_files
from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.errors import BadInput, DoesNotFit
from tinycc.frontend import load_graph
from tinycc.passes import run_pipeline
from tinycc.sim.host import BuildError
from tinycc.sim.qemu import (cross_build, elf_sizes, missing_tools, run_elf, static_stack)
from tinycc.target import CORES, DEFAULT_STACK_BYTES, get_core, memory_for, runnable_core
from tinycc.target.measure import layer_class

ROOT = Path(__file__).resolve().parent.parent
MLPERF = ["ad_autoencoder", "ic_resnet8", "kws_dscnn", "vww_mobilenetv1_025"]

_NO_CROSS = missing_tools(run=False)
_NO_QEMU = missing_tools(run=True)
needs_cross = pytest.mark.skipif(_NO_CROSS is not None, reason=f"Cortex-M toolchain unavailable: {_NO_CROSS}")
needs_qemu = pytest.mark.skipif(_NO_QEMU is not None, reason=f"Cortex-M toolchain or QEMU unavailable: {_NO_QEMU}")


def _tinycc(*args):
    return subprocess.run([sys.executable, "-m", "tinycc", *map(str, args)], capture_output=True, text=True)


def _padded_arena(model: CompiledModel) -> int:
    """The arena array as emitted: at least 16 bytes, int32-aligned."""
    return (max(model.mem.arena_bytes, 16) + 3) // 4 * 4


@pytest.fixture(scope="module")
def mlperf(mlperf_dir):
    samples = np.load(mlperf_dir / "samples.npz")
    out = {}
    for name in MLPERF:
        g = run_pipeline(load_graph(mlperf_dir / f"{name}_qdq.onnx"))
        out[name] = (CompiledModel(g, QuantOptions(), warn=pytest.fail), samples[f"{name}_int8"])
    return out


@pytest.fixture(scope="module")
def mlperf_outputs(mlperf_dir):
    """TFLite Micro's int8 outputs on the same samples (computed by the real TFLM interpreter)."""
    return np.load(mlperf_dir / "samples.npz")


@pytest.fixture(scope="module")
def digits():
    g = run_pipeline(load_graph(ROOT / "examples" / "digits_cnn.onnx"))
    model = CompiledModel(g, QuantOptions(calib=str(ROOT / "examples" / "digits_calib.npy")), warn=pytest.fail)
    images = np.load(ROOT / "examples" / "digits_test.npz")["images"]
    return model, images


# ---- the target table and the generated files (no toolchain needed) ------------------------------
def test_core_table_flags_and_boards():
    m4, m3, m33 = get_core("cortex-m4"), get_core("cortex-m3"), get_core("cortex-m33")
    assert m4.cpu_flags == ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")
    assert "-mfloat-abi=soft" in m3.cpu_flags and not m3.has_dsp and m4.has_dsp
    assert {c.name: c.board for c in CORES.values()} == {
        "cortex-m0plus": None, "cortex-m3": "mps2-an385", "cortex-m4": "mps2-an386", "cortex-m7": "mps2-an500",
        "cortex-m33": "mps2-an505", "cortex-m55": "mps3-an547"}
    assert (m33.flash_origin, m33.sram_origin, m33.stack_guard) == (0x10000000, 0x38000000, "msplim")
    assert m4.stack_guard == "mpu" and get_core("cortex-m0plus").stack_guard == "none"
    with pytest.raises(BadInput, match="no QEMU board"):
        runnable_core("cortex-m0plus")
    with pytest.raises(BadInput, match="unknown --target"):
        get_core("cortex-a53")


def test_host_project_has_no_target_files(digits):
    model, _ = digits
    files = generate_project(model.program, model.mem, "digits", "digits_cnn.onnx")
    assert not any(path.startswith("arm/") for path in files)
    assert b"arm:" not in files["Makefile"] and b"toolchain" not in files["CMakeLists.txt"]


def test_target_project_carries_flags_and_budget(digits):
    model, _ = digits
    core = get_core("cortex-m33")
    files = generate_project(model.program, model.mem, "digits", "digits_cnn.onnx", core,
                             memory_for(core, 96 * 1024, 300 * 1024, stack=1536))
    link = files["arm/link.ld"].decode()
    assert "FLASH (rx)  : ORIGIN = 0x10000000, LENGTH = 307200" in link
    assert "SRAM  (rwx) : ORIGIN = 0x38000000, LENGTH = 98304" in link
    assert "TC_STACK_SIZE : 1536;" in link
    flags = "-mcpu=cortex-m33 -mthumb -mfpu=fpv5-sp-d16 -mfloat-abi=hard"
    assert f"ARM_CPU = {flags}" in files["Makefile"].decode()
    assert flags in files["arm/toolchain.cmake"].decode()
    assert "-M mps2-an505" in files["Makefile"].decode()
    for path in ["arm/startup.c", "arm/main.c", "arm/tc_semihost.c", "arm/tc_target.h"]:
        assert path in files


def test_run_target_goes_with_the_qemu_engine(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    r = _tinycc("run", ROOT / "examples" / "digits_cnn.onnx", "--input", tmp_path / "x.npy", "--engine", "c",
                "--target", "cortex-m4")
    assert r.returncode == 2 and "--engine qemu" in r.stderr


# ---- bit-exactness under QEMU --------------------------------------------------------------------
CASES = [(name, core) for name in MLPERF for core in ("cortex-m3", "cortex-m4")] + [
    ("ad_autoencoder", "cortex-m7"), ("kws_dscnn", "cortex-m33"), ("ic_resnet8", "cortex-m33"),
    ("ad_autoencoder", "cortex-m55")]


@needs_qemu
@pytest.mark.parametrize("name,core", CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_mlperf_qemu_equals_host_equals_golden(mlperf, mlperf_outputs, name, core):
    model, x = mlperf[name]
    tflm = mlperf_outputs[f"{name}_tflm_out"]
    for k in range(2 if name == "ad_autoencoder" else 1):
        inputs = {model.graph.inputs[0]: x[k:k + 1]}
        golden = model.run_int8(inputs)
        host, _ = model.run_c(inputs)
        target, run = model.run_qemu(inputs, core)
        out = model.program.outputs[0]
        np.testing.assert_array_equal(host[out], golden[out], err_msg=f"host sample {k}")
        np.testing.assert_array_equal(target[out], golden[out], err_msg=f"{core} sample {k}")
        np.testing.assert_array_equal(model.logical(out, target[out], False).reshape(-1), tflm[k],
                                      err_msg=f"{core} vs TFLite Micro, sample {k}")
        assert run.instructions > model.program.macs / 4


@needs_qemu
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4"])
def test_float_model_with_ptq_on_qemu(digits, core):
    model, images = digits
    for k in range(3):
        inputs = {model.graph.inputs[0]: images[k:k + 1]}
        golden = model.run_int8(inputs)
        target, _ = model.run_qemu(inputs, core)
        host, _ = model.run_c(inputs)
        for out in model.program.outputs:
            np.testing.assert_array_equal(target[out], golden[out])
            np.testing.assert_array_equal(host[out], golden[out])


@needs_qemu
def test_hostile_names_run_on_qemu(tmp_path):
    from test_codegen import hostile_model

    g = run_pipeline(load_graph(hostile_model(tmp_path / "hostile.onnx")))
    model = CompiledModel(g, QuantOptions(), warn=lambda m: None)
    x = np.random.default_rng(1).standard_normal((1, 3, 6, 5)).astype(np.float32)
    inputs = {g.inputs[0]: x}
    target, _ = model.run_qemu(inputs, "cortex-m4")
    golden = model.run_int8(inputs)
    for out in model.program.outputs:
        np.testing.assert_array_equal(target[out], golden[out])


def two_in_two_out_model(path: Path) -> Path:
    """x, z -> (relu(conv(x)) + z, maxpool(x)): two input files and two output files."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(2).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Add", ["r", "z"], ["sum"]),
             helper.make_node("MaxPool", ["x"], ["pool"], kernel_shape=[2, 2], strides=[2, 2])]
    graph = helper.make_graph(
        nodes, "two", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6]),
                       helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, [1, 4, 6, 6]),
         helper.make_tensor_value_info("pool", TensorProto.FLOAT, [1, 3, 3, 3])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@needs_qemu
def test_several_inputs_and_outputs_on_qemu(tmp_path):
    g = run_pipeline(load_graph(two_in_two_out_model(tmp_path / "two.onnx")))
    model = CompiledModel(g, QuantOptions(), warn=lambda m: None)
    rng = np.random.default_rng(3)
    inputs = {"x": rng.standard_normal((1, 3, 6, 6)).astype(np.float32),
              "z": rng.standard_normal((1, 4, 6, 6)).astype(np.float32)}
    target, _ = model.run_qemu(inputs, "cortex-m7")
    golden = model.run_int8(inputs)
    assert len(model.program.outputs) == 2
    for out in model.program.outputs:
        np.testing.assert_array_equal(target[out], golden[out])


# ---- sizes, budget, stack ------------------------------------------------------------------------
CODE_BYTES_MAX = 48 * 1024  # code in an MLPerf Tiny model's M4 harness (VWW, the largest: 43,601 B)


@needs_cross
def test_elf_sram_is_the_planned_arena(mlperf):
    """.data + .bss of the linked harness is exactly the arena: the runtime has no other state."""
    for name, (model, _) in mlperf.items():
        sizes = elf_sizes(model.target_elf("cortex-m4"))
        assert sizes.sram == _padded_arena(model), name
        assert sizes.sections[".data"] == 0 and sizes.sections[".bss"] == sizes.sram, name
        assert sizes.stack_reserved == DEFAULT_STACK_BYTES
        # flash: the weights and constants the report counts, plus code (kernels, harness, memcpy).
        # The 5x5 / 7x7 depthwise code (11 KB) is compiled out of these models, whose depthwise
        # layers are all 3x3 (TC_DWCONV2D_K57=0: tests/test_dwconv_k57_pruning.py).
        assert model.program.flash_bytes < sizes.flash < model.program.flash_bytes + CODE_BYTES_MAX, name


@needs_cross
def test_link_fails_when_the_stack_does_not_fit_the_sram_budget(mlperf, tmp_path):
    model, _ = mlperf["kws_dscnn"]
    core = get_core("cortex-m4")
    sram = model.mem.arena_bytes + 64  # the model fits, its stack does not: only the link can tell
    memory = memory_for(core, sram, None)
    write_files(generate_project(model.program, model.mem, "kws", "kws.onnx", core, memory), tmp_path)
    with pytest.raises(DoesNotFit) as err:
        cross_build(tmp_path, "kws", memory)
    text = str(err.value)
    assert f"--sram {sram:,} B" in text and f"stack reserve ({DEFAULT_STACK_BYTES:,} B)" in text
    missing = int(re.search(r"need ([\d,]+) bytes more", text).group(1).replace(",", ""))
    assert missing == DEFAULT_STACK_BYTES - 64 + _padded_arena(model) - model.mem.arena_bytes
    # the same project links once the stack reserve fits beside the arena
    assert cross_build(tmp_path, "kws", memory, stack=64).is_file()


@needs_cross
def test_link_fails_when_code_and_weights_exceed_the_flash_budget(mlperf, tmp_path):
    model, _ = mlperf["kws_dscnn"]
    core = get_core("cortex-m4")
    memory = memory_for(core, 256 * 1024, model.program.flash_bytes)  # no room left for code
    write_files(generate_project(model.program, model.mem, "kws", "kws.onnx", core, memory), tmp_path)
    with pytest.raises(DoesNotFit, match=r"code, weights and constants need [\d,]+ bytes more than --flash"):
        cross_build(tmp_path, "kws", memory)


@needs_cross
def test_handwritten_frames_match_the_assembly(tmp_path):
    """HANDWRITTEN_FRAMES: each hand-written function, as assembled for the M4, pushes exactly
    that many bytes once, moves sp no other way and calls nothing."""
    from tinycc.resources import data_dir
    from tinycc.sim.qemu import ARM_PREFIX, HANDWRITTEN_FRAMES

    runtime = data_dir("runtime_c")
    text = ""
    for src in kernel_sources("tc_conv2d_s8", "tc_dwconv2d_s8"):
        obj = tmp_path / (src + ".o")
        subprocess.run([f"{ARM_PREFIX}gcc", "-std=c99", "-O2", "-mcpu=cortex-m4", "-mthumb", "-I", str(runtime),
                        "-c", str(runtime / src), "-o", str(obj)], check=True, capture_output=True)
        text += subprocess.run([f"{ARM_PREFIX}objdump", "-d", str(obj)], check=True, capture_output=True,
                               text=True).stdout
    for name, size in HANDWRITTEN_FRAMES.items():
        body = text[text.index(f"<{name}>:"):]
        body = body[:body.index("\n\n")] if "\n\n" in body else body
        ops = [line.split("\t")[2:] for line in body.splitlines()[1:] if line.count("\t") >= 2]
        pushes = [o for o in ops if o[0].strip() in ("push", "stmdb")]
        assert len(pushes) == 1, (name, pushes)
        registers = pushes[0][1].strip()
        if registers.startswith("sp!"):
            registers = registers.split(",", 1)[1].strip()
        count = 0
        for part in registers.strip("{}").split(","):
            lo, _, hi = part.strip().partition("-")
            count += int(hi[1:]) - int(lo[1:]) + 1 if hi else 1
        assert count * 4 == size, (name, registers)
        assert not [o for o in ops if o[0].strip() in ("bl", "blx") or (o[0].strip().startswith("sub")
                                                                      and o[1].strip().startswith("sp"))], name


@needs_qemu
def test_stack_static_bound_covers_the_measured_high_water(mlperf):
    for name, (model, x) in mlperf.items():
        elf = model.target_elf("cortex-m4")
        static = static_stack(elf.parent)
        _, run = model.run_qemu({model.graph.inputs[0]: x[:1]}, "cortex-m4")
        assert static.bounded and set(static.unknown) <= {"memcpy", "memset", "strlen"}, name
        assert 0 < run.stack_high_water <= static.bytes <= run.stack_reserved, name


@needs_qemu
@pytest.mark.parametrize("core,fault", [("cortex-m4", "exception 4"), ("cortex-m33", "exception 6")])
def test_stack_overflow_is_caught_by_the_guard(mlperf, core, fault, tmp_path):
    """MPU no-access region below SRAM (v7-M: MemManage) or MSPLIM (v8-M: UsageFault STKOF)."""
    model, x = mlperf["kws_dscnn"]
    c = get_core(core)
    memory = memory_for(c, 256 * 1024, None)
    write_files(generate_project(model.program, model.mem, "kws", "kws.onnx", c, memory), tmp_path)
    elf = cross_build(tmp_path, "kws", memory, stack=128)
    data = [np.ascontiguousarray(model.quantize_inputs({model.graph.inputs[0]: x[:1]})[model.program.inputs[0]],
                                 np.int8).tobytes()]
    with pytest.raises(BuildError, match=rf"{fault} .*stack overflow: 128 bytes reserved"):
        run_elf(elf, c, data, [12], count=False)


# ---- instruction counts --------------------------------------------------------------------------
@needs_qemu
def test_instruction_counts_are_deterministic_and_per_layer(mlperf):
    model, x = mlperf["kws_dscnn"]
    inputs = {model.graph.inputs[0]: x[:1]}
    _, first = model.run_qemu(inputs, "cortex-m4")
    _, second = model.run_qemu(inputs, "cortex-m4")
    assert first.instructions == second.instructions and first.step_instructions == second.step_instructions
    assert len(first.step_instructions) == len(model.program.steps)
    assert sum(first.step_instructions) == first.instructions
    for step, count in zip(model.program.steps, first.step_instructions):
        assert count > step.macs / 4 and count > 0, step.name


@needs_qemu
def test_profile_sums_instructions_per_function(mlperf):
    from tinycc.sim.qemu import function_profile

    model, x = mlperf["kws_dscnn"]
    inputs = {model.graph.inputs[0]: x[:1]}
    _, run = model.run_qemu(inputs, "cortex-m4", profile=True)
    profile = function_profile(model.target_elf("cortex-m4"), run.pc_counts)
    total = sum(profile.values())
    assert total == sum(run.pc_counts.values()) and total > run.instructions  # whole run vs inference
    assert "?" not in profile or profile["?"] < total / 1000
    counts = list(profile.values())
    assert counts == sorted(counts, reverse=True)
    assert next(iter(profile)) == "tc_conv2d_pairs_asm"  # KWS is 77 % pointwise MACs


# Instructions per MAC by layer class over the four MLPerf Tiny models (as
# benchmarks/bench_cortexm.py prints them), with a little headroom over the figures measured
# when these budgets were set (M4: conv 1.41, pointwise 1.47, depthwise 4.00, fc 1.86; M3: 8.50,
# 8.16, 8.38, 6.32). The M4 conv and pointwise budgets are issue 6's goal. Instruction counts
# are deterministic, so a kernel change that slows a class down fails here rather than in a
# benchmark nobody reran.
# The M3 conv and pointwise budgets were tightened with the fast portable convolution
# (runtime_c/tc_conv2d_s8_fast.c; measured conv 3.32, pointwise 4.28).
# The M4 conv budget was tightened with the padded windows widened straight from the input
# (conv2d_widen_padded; measured conv 1.39 over the four models), then with the first-layer path
# (tc_conv2d_s8_first_dsp.c; measured conv 1.359, VWW's stem 1.97 per MAC instead of 3.04).
# The M4 depthwise budget was tightened with tc_dsp_rq2 in the 3x3 quad groups and narrow planes
# by output columns, ring slots counted instead of divided (measured depthwise 3.250, was 3.73),
# then with the quad groups' weight sums in halfword lanes and ring rows stored once (3.24).
# The M4 conv and pointwise budgets were tightened with the conv hot loop's interleaved pixel
# pair, 4 groups per iteration, joint widening and 4 instructions less per channel pair
# (tc_conv2d_pairs_asm; measured conv 1.258, pointwise 1.310), then with the whole-window loop
# without the per-pair tests (tc_conv2d_pairs_asm beside tc_conv2d_pairs_sums_asm; measured
# conv 1.2543, pointwise 1.2987).
COST_BUDGETS = {"cortex-m4": {"conv": 1.267, "pointwise": 1.312, "depthwise": 3.27, "fc": 1.95},
                "cortex-m3": {"conv": 3.45, "pointwise": 4.4, "depthwise": 8.8, "fc": 6.7}}
# Whole-model instructions per inference on the Cortex-M3 (portable C), with about 2 % headroom
# over the figures measured (kws_dscnn 12,199,867, ic_resnet8 42,919,198, vww_mobilenetv1_025
# 36,621,997). Issue 15's goal is CMSIS-NN's own portable C: 10.5 M / 41.8 M / 32.0 M.
# On the Cortex-M4 (DSP path), about 1 % over the figures measured (kws_dscnn 4,667,159,
# ic_resnet8 17,329,454, vww_mobilenetv1_025 13,264,239; kws and vww since the depthwise
# tc_dsp_rq2 and column order: 4,233,987 and 12,920,014; vww since the first-layer path,
# tc_conv2d_s8_first_dsp.c: 12,387,054); issue 15's goal: 3.85 M / 15.0 M / 12.0 M.
# ic_resnet8 with its residual ADDs on tc_add_s8_table: M4 17,077,579, M3 39,806,868.
# All three after the conv pixel-pair loop (tc_conv2d_pairs_asm: interleaved pair, joint
# widening, per-pair savings): kws_dscnn 3,980,058, ic_resnet8 15,751,804, vww 11,756,430.
# Then the whole-window pairs loop, the 3x3 depthwise quad set-up, the first-layer path in two
# passes (IC's stem, with its ReLU and overlapping plan): kws_dscnn 3,942,782, ic_resnet8
# 15,518,219, vww 11,660,536 (benchmarks/bench_cortexm.py).
MODEL_BUDGETS = {"cortex-m3": {"kws_dscnn": 12.45e6, "ic_resnet8": 40.6e6, "vww_mobilenetv1_025": 37.3e6},
                 "cortex-m4": {"kws_dscnn": 3.98e6, "ic_resnet8": 15.68e6, "vww_mobilenetv1_025": 11.78e6}}


@needs_qemu
@pytest.mark.parametrize("core", sorted(COST_BUDGETS))
def test_instructions_per_mac_by_layer_class_stay_within_budget(mlperf, core):
    totals: dict[str, list[int]] = {}
    over_model = {}
    for name, (model, x) in mlperf.items():
        _, run = model.run_qemu({model.graph.inputs[0]: x[:1]}, core)
        if run.instructions > MODEL_BUDGETS.get(core, {}).get(name, float("inf")):
            over_model[name] = run.instructions
        for step, count in zip(model.program.steps, run.step_instructions):
            cls = layer_class(step)
            if cls:
                totals.setdefault(cls, [0, 0])
                totals[cls][0] += count
                totals[cls][1] += step.macs
    per_mac = {cls: round(n / macs, 3) for cls, (n, macs) in totals.items()}
    assert set(per_mac) == set(COST_BUDGETS[core]), per_mac
    over = {cls: v for cls, v in per_mac.items() if v > COST_BUDGETS[core][cls]}
    assert not over, f"{core}: instructions per MAC over budget: {over} (all: {per_mac})"
    assert not over_model, f"{core}: instructions per inference over budget: {over_model}"


# ---- the command line ----------------------------------------------------------------------------
@needs_qemu
def test_cli_run_qemu_writes_the_c_engine_output(mlperf_dir, tmp_path):
    model = mlperf_dir / "kws_dscnn_qdq.onnx"
    np.save(tmp_path / "x.npy", np.load(mlperf_dir / "samples.npz")["kws_dscnn_int8"][:1])
    r = _tinycc("run", model, "--input", tmp_path / "x.npy", "--engine", "qemu", "--target", "cortex-m3",
                "-o", tmp_path / "qemu.npy")
    assert r.returncode == 0, r.stderr
    assert re.search(r"cortex-m3 \(QEMU mps2-an385\): [\d,]+ instructions per inference", r.stderr)
    assert _tinycc("run", model, "--input", tmp_path / "x.npy", "--engine", "c", "-o",
                   tmp_path / "c.npy").returncode == 0
    np.testing.assert_array_equal(np.load(tmp_path / "qemu.npy"), np.load(tmp_path / "c.npy"))


@needs_qemu
def test_cli_compile_for_a_core_reports_elf_figures(mlperf_dir, tmp_path):
    out = tmp_path / "kws"
    r = _tinycc("compile", mlperf_dir / "kws_dscnn_qdq.onnx", "-o", out, "--target", "cortex-m4")
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["target"]["core"] == "cortex-m4" and report["target"]["board"] == "mps2-an386"
    assert report["sram_bytes_elf"] == (report["arena_bytes"] + 3) // 4 * 4
    assert report["flash_bytes_elf"] > report["flash_bytes"]
    stack = report["stack_bytes"]
    assert 0 < stack["measured"] <= stack["static"] <= stack["reserved"] == DEFAULT_STACK_BYTES
    counts = [layer["instructions"] for layer in report["layers"]]
    assert sum(counts) == report["instructions"]["per_inference"] > report["macs"] / 4
    assert (out / "arm" / "link.ld").is_file() and not (out / "build-arm").exists()
    assert "instructions per inference" in (out / "report.md").read_text()


@needs_cross
def test_cli_compile_fails_cleanly_when_the_link_does_not_fit(mlperf_dir, tmp_path):
    out = tmp_path / "kws"
    r = _tinycc("compile", mlperf_dir / "kws_dscnn_qdq.onnx", "-o", out, "--target", "cortex-m4", "--sram", "10k")
    assert r.returncode == 3, r.stderr
    assert "the link does not fit the budget" in r.stderr and "--sram 10,240 B" in r.stderr
    assert not out.exists()


# ---- build-only targets and other build systems --------------------------------------------------
@needs_cross
def test_cortex_m0plus_builds_but_does_not_run(digits, tmp_path):
    model, images = digits
    core = get_core("cortex-m0plus")
    memory = memory_for(core, 64 * 1024, None)
    write_files(generate_project(model.program, model.mem, "digits", "digits.onnx", core, memory), tmp_path)
    assert cross_build(tmp_path, "digits", memory).is_file()
    with pytest.raises(BadInput, match="no QEMU board"):
        model.run_qemu({model.graph.inputs[0]: images[:1]}, "cortex-m0plus")


@needs_cross
def test_firmware_library_has_no_harness_hooks(digits, tmp_path):
    model, _ = digits
    core = get_core("cortex-m7")
    write_files(generate_project(model.program, model.mem, "digits", "digits.onnx", core,
                                 memory_for(core, 64 * 1024, None)), tmp_path)
    r = subprocess.run(["make", "-s", "-C", str(tmp_path), "arm-lib"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    symbols = subprocess.run(["arm-none-eabi-nm", str(tmp_path / "build-arm" / "libdigits.a")],
                             capture_output=True, text=True, check=True).stdout
    assert " T digits_invoke_arena" in symbols and "tc_trace_step" not in symbols


@needs_qemu
@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_cmake_cross_build_runs_on_qemu(digits, tmp_path):
    model, images = digits
    core = get_core("cortex-m4")
    write_files(generate_project(model.program, model.mem, "digits", "digits.onnx", core,
                                 memory_for(core, 64 * 1024, None)), tmp_path)
    build = tmp_path / "build-cmake"
    for cmd in (["cmake", "-S", str(tmp_path), "-B", str(build), "-DCMAKE_TOOLCHAIN_FILE=arm/toolchain.cmake",
                 "-DCMAKE_BUILD_TYPE=Release"], ["cmake", "--build", str(build)]):
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
    inputs = {model.graph.inputs[0]: images[:1]}
    data = [np.ascontiguousarray(model.quantize_inputs(inputs)[model.program.inputs[0]], np.int8).tobytes()]
    out = model.program.outputs[0]
    run = run_elf(build / "digits_arm.elf", core, data, [model.program.tensors[out].size], count=False)
    np.testing.assert_array_equal(np.frombuffer(run.outputs[0], np.int8).reshape(model.program.tensors[out].shape),
                                  model.run_int8(inputs)[out])
