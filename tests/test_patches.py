"""Patch-based inference (tinycc/schedule/): receptive fields, forced patch configurations bit-exact
with the layer-by-layer golden on the zoo and the MLPerf models (golden, host C under ASan/UBSan
with per-step write checks, Cortex-M4 under QEMU), --patch off unchanged, --patch auto never worse."""
from __future__ import annotations

import json

import numpy as np
import pytest
import zoo

from tinycc.cli import main
from tinycc.compiler import QuantOptions, build_program
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.lower import quantize_inputs
from tinycc.memory.lifetimes import plan_memory, reorder_steps
from tinycc.passes import run_pipeline
from tinycc.reference.int_exec import run_int8
from tinycc.schedule.patches import PatchConfig, apply_patches, grid_tiles, stage_limit
from tinycc.schedule.receptive_field import Region, Window
from tinycc.schedule.search import PatchOptions, plan_program

MLPERF = ["vww_mobilenetv1_025", "ic_resnet8", "kws_dscnn", "ad_autoencoder"]


# ---- receptive fields and grids -------------------------------------------------------------------
def test_window_regions_clip_to_the_map_and_local_pads():
    w = Window(k=3, stride=2, dil=1, pad=1, size=9)  # out 5 rows
    assert w.needs(0, 2) == (0, 4)  # rows -1..3: the top pad row is clipped
    assert w.local_pad(0, 0) == 1
    assert w.needs(2, 5) == (3, 9)  # rows 3..9: clipped at the bottom
    assert w.local_pad(2, 3) == 0
    d = Window(k=3, stride=1, dil=2, pad=2, size=10)
    assert d.needs(4, 6) == (2, 8)
    big = Window(k=7, stride=1, dil=1, pad=3, size=20)
    assert big.needs(0, 1) == (0, 4) and big.needs(10, 11) == (7, 14)


def test_uneven_grid_covers_the_map_once():
    tiles = grid_tiles(7, 10, 3, 4)
    assert len(tiles) == 12
    cover = np.zeros((7, 10), int)
    for t in tiles:
        cover[t.r0:t.r1, t.c0:t.c1] += 1
    assert (cover == 1).all()
    assert sorted({t.height for t in tiles}) == [2, 3] and sorted({t.width for t in tiles}) == [2, 3]
    assert Region(0, 2, 0, 2).union(Region(1, 3, 5, 6)) == Region(0, 3, 0, 6)


# ---- the zoo: every split point, several grids, golden patched == golden layer by layer ------------
def _zoo_program(zoo_models, name):
    path, inputs = zoo_models[(name, "torchscript")]
    g = run_pipeline(load_graph(path, {k: v.shape for k, v in inputs.items()}))
    program = build_program(g, QuantOptions(), warn=lambda m: None)
    reorder_steps(program, 0.5)
    rng = np.random.default_rng(3)
    x = quantize_inputs(program, {k: (v + rng.normal(0, 0.3, v.shape)).astype(np.float32) for k, v in inputs.items()})
    return g, inputs, program, x


GRIDS = [(2, 2), (1, 3), (4, 1), (3, 2)]  # square, 1xN, Nx1, uneven


@pytest.mark.parametrize("name", [n for n in zoo.ZOO if n != "mlp"])
def test_forced_patches_equal_layer_by_layer_golden(zoo_models, name):
    _, _, program, x = _zoo_program(zoo_models, name)
    limit = stage_limit(program)
    assert limit.splits, f"{name}: no patch stage ({limit.stop_reason})"
    ref = run_int8(program, x)
    checked = 0
    for split in sorted(limit.splits):
        for rows, cols in GRIDS:
            h, w = program.tensors[limit.splits[split]].shape[1:3]
            if rows > h or cols > w:
                continue
            patched = apply_patches(program, PatchConfig(split, rows, cols), limit)
            out = run_int8(patched, x)
            for t in ref:
                np.testing.assert_array_equal(out[t], ref[t], err_msg=f"{name} {split}x{rows}x{cols}")
            checked += 1
    assert checked >= 4


@pytest.mark.parametrize("name", ["mbv2", "mcunet", "resnet"])
def test_halo_reuse_equals_layer_by_layer_golden_with_no_extra_macs_in_row_bands(zoo_models, name):
    """Halo reuse (rows kept between vertically neighbouring patches): at every split, Rx1 bands
    and an uneven 2-D grid (columns recomputed), with the input in the arena and streamed, the
    golden equals the layer-by-layer one; Rx1 bands compute every MAC once, and a 2-D grid fewer
    than with recompute; the search's MAC estimate is the built plan's."""
    from tinycc.schedule.receptive_field import classify
    from tinycc.schedule.search import _stage_estimate

    _, _, program, x = _zoo_program(zoo_models, name)
    limit = stage_limit(program)
    ref = run_int8(program, x)
    checked = 0
    for split in sorted(limit.splits):
        h, w = program.tensors[limit.splits[split]].shape[1:3]
        steps = program.steps[:split]
        ops = [classify(program, s) for s in steps]
        for rows, cols in ((3, 1), (2, 3)):
            if rows > h or cols > w:
                continue
            config = PatchConfig(split, rows, cols, "reuse")
            patched = apply_patches(program, config, limit, stream=split % 2 == 0)
            out = run_int8(patched, x)
            for t in ref:
                np.testing.assert_array_equal(out[t], ref[t], err_msg=f"{name} {config.text()}")
            pp = patched.patch
            assert pp.halo == "reuse" and _stage_estimate(program, limit, config, steps, ops)[1] == pp.macs_patched
            if cols == 1:
                assert pp.macs_patched == pp.macs_layer_by_layer
            else:
                assert pp.macs_patched <= apply_patches(program, PatchConfig(split, rows, cols), limit).patch.macs_patched
            checked += 1
    assert checked >= 4


TWO_STAGE_GRIDS = [((2, 2), (3, 1, "reuse")), ((1, 3), (2, 3, "recompute")), ((4, 1, "reuse"), (2, 2, "reuse")),
                   ((3, 2, "reuse"), (1, 2, "recompute"))]  # square, 1xN, Nx1 bands, uneven; both halo kinds


@pytest.mark.parametrize("name", ["mbv2", "mcunet", "resnet", "squeezenet", "misc_ops"])
def test_two_stages_equal_layer_by_layer_golden(zoo_models, name):
    """A second patch stage (reading the first stage's output buffer whole, its own grid): for
    every pair of stage ends (first, second) and several grid pairs, with the input in the arena
    and streamed, the golden equals the layer-by-layer one, and each stage's MACs are those its
    own stage would have alone (the second stage's are the search's estimate)."""
    from tinycc.schedule.receptive_field import classify
    from tinycc.schedule.search import _stage_estimate

    _, _, program, x = _zoo_program(zoo_models, name)
    limit = stage_limit(program)
    ref = run_int8(program, x)
    checked = 0
    ends = sorted(limit.splits)
    for n, first in enumerate(ends[:-1]):
        limit2 = stage_limit(program, first)
        seconds = sorted(limit2.splits)
        if not seconds:
            continue
        g1, g2 = TWO_STAGE_GRIDS[n % len(TWO_STAGE_GRIDS)]
        second = seconds[-1] if n % 2 else seconds[0]
        if any(program.steps[k].kernel == "tc_concat_s8_part" for k in range(second)):  # halo reuse does not run concatenations (schedule/patches._emit): recompute there
            g1, g2 = g1[:2], g2[:2]
        c2 = PatchConfig(second, *g2)
        c1 = PatchConfig(first, *g1, then=c2)
        h1, w1 = program.tensors[limit.splits[first]].shape[1:3]
        h2, w2 = program.tensors[limit2.splits[second]].shape[1:3]
        if c1.rows > h1 or c1.cols > w1 or c2.rows > h2 or c2.cols > w2:
            continue
        patched = apply_patches(program, c1, limit, stream=n % 2 == 0)
        out = run_int8(patched, x)
        for t in ref:
            np.testing.assert_array_equal(out[t], ref[t], err_msg=f"{name} {c1.text()}")
        pp = patched.patch
        assert pp.next_stage is not None and pp.next_stage.start == first and pp.next_stage.config == c2
        assert pp.next_stage.stage_input == limit.splits[first]
        steps = program.steps[first:second]
        est = _stage_estimate(program, limit2, c2, steps, [classify(program, s) for s in steps])[1]
        assert est == pp.next_stage.macs_patched
        assert min(pp.next_stage.patch_steps[0]) > max(pp.patch_steps[-1])
        checked += 1
    assert checked >= 2, f"{name}: {ends}"


def test_two_stage_errors_name_the_steps_of_the_layer_by_layer_program(zoo_models):
    from tinycc.schedule.search import parse_patch

    _, _, program, _ = _zoo_program(zoo_models, "mbv2")
    ends = sorted(stage_limit(program).splits)
    mode, config = parse_patch(f"{ends[0]}x2x2+{ends[0]}x2x2:reuse")
    assert mode == "forced" and config.then == PatchConfig(ends[0], 2, 2, "reuse")
    with pytest.raises(ValueError, match="must end after the first"):
        apply_patches(program, config)
    seconds = sorted(stage_limit(program, ends[0]).splits)
    bad = seconds[-1] + 1
    with pytest.raises(ValueError, match=f"from step {ends[0]} cannot end after step {bad} \\(valid ends: "
                                         f"{seconds[0]}, .*, {seconds[-1]}; step "):
        apply_patches(program, PatchConfig(ends[0], 2, 2, then=PatchConfig(bad, 2, 2)))


def test_auto_takes_a_second_stage_only_where_it_lowers_the_peak(zoo_models):
    """--patch auto: on the zoo MobileNetV2 (whole input) both stages are chosen, with a smaller
    arena than either stage's first part alone and than the best one-stage plan planned; the
    report gives the second stage's figures and why, memory.svg marks both stages. On ResNet a
    second stage does not help, and none is taken."""
    from tinycc.codegen.profile_svg import memory_profile_svg
    from tinycc.schedule.report import patch_markdown, patch_report

    _, _, program, _ = _zoo_program(zoo_models, "mbv2")
    patched, mem, decision = plan_program(program, PatchOptions("auto", None, None))
    config = patched.patch.config
    assert config.then is not None and patched.patch.next_stage.config == config.then
    one = [t["arena_bytes"] for t in decision.tried if "+" not in t["patch"]]
    assert one and mem.arena_bytes < min(one), decision.tried
    # stage by stage (the best first stage, then a second) is beaten by a pair chosen together
    assert decision.second_reason.startswith("both stages chosen together"), decision.second_reason
    assert mem.arena_bytes < min(t["arena_bytes"] for t in decision.tried[:-2] if "+" in t["patch"])
    alone = PatchConfig(config.split, config.rows, config.cols, config.halo)
    first_alone = plan_memory(apply_patches(program, alone), reorder=False)
    assert mem.arena_bytes < first_alone.arena_bytes
    report = patch_report(patched, mem, decision)
    two = report["second_stage"]
    assert two["config"] == config.then.text() and two["first_step"] == config.split and two["why"]
    assert two["stage_input"] == report["stage_output"] and two["per_patch_peak_bytes"] > 0
    both = sum(s.macs_patched - s.macs_layer_by_layer for s in (patched.patch, patched.patch.next_stage))
    model_macs = patched.macs - both
    assert two["stage_macs_patched"] == patched.patch.next_stage.macs_patched
    assert report["mac_overhead_percent"] == round(100 * both / model_macs, 2)  # both stages counted
    assert "A second patch stage" in "\n".join(patch_markdown({"patch": report}))
    svg = memory_profile_svg(patched, mem, None)
    assert svg.count('class="patch-stage"') == 2 and "second patch stage " + config.then.text() in svg
    _, _, resnet, _ = _zoo_program(zoo_models, "resnet")
    patched, _, decision = plan_program(resnet, PatchOptions("auto", None, None))
    assert patched.patch.config.then is None and patched.patch.next_stage is None and not decision.second_reason


def test_instruction_estimate_of_a_candidate_matches_its_built_plan(zoo_models):
    """The search ranks unbuilt candidates by an instruction estimate from the regions alone; it
    must agree with the cost model applied to the built plan (which bench_patches.py checks against
    QEMU counts), for recompute and reuse, whole and streamed input, and grow with the grid."""
    from tinycc.schedule.receptive_field import classify
    from tinycc.schedule.search import _stage_estimate, instruction_estimate, instruction_overhead

    _, _, program, _ = _zoo_program(zoo_models, "mbv2")
    limit = stage_limit(program)
    split = sorted(limit.splits)[len(limit.splits) // 2]
    steps = program.steps[:split]
    ops = [classify(program, s) for s in steps]
    base = instruction_estimate(program)
    seen = []
    for config, stream in ((PatchConfig(split, 2, 2), False), (PatchConfig(split, 4, 4), False),
                           (PatchConfig(split, 3, 1, "reuse"), True), (PatchConfig(split, 3, 3, "reuse"), False)):
        estimate = _stage_estimate(program, limit, config, steps, ops, stream)[2] / base
        patched = apply_patches(program, config, limit, stream)
        built = instruction_overhead(patched, plan_memory(patched, 0.2, reorder=False), program)
        assert abs(estimate - built) <= 0.1 * built + 0.002, (config, estimate, built)
        seen.append(built)
    assert 0 < seen[0] < seen[1]


def test_the_mlp_has_no_patch_stage_and_says_why(zoo_models):
    _, _, program, _ = _zoo_program(zoo_models, "mlp")
    limit = stage_limit(program)
    assert not limit.splits and "NHWC feature map" in limit.stop_reason


def _stage_kernels(program, split):
    return {(s.kernel, getattr(s.params, "k_h", 0), getattr(s.params, "stride_h", 0), getattr(s.params, "dil_h", 1))
            for s in program.steps[:split]}


def test_zoo_stages_cover_the_layer_kinds(zoo_models):
    """The forced configurations above go through 5x5/7x7 kernels, stride 2, dilation, residual
    adds and concat inside a stage (else this zoo would not test them)."""
    seen = set()
    for name in ("mcunet", "mbv2", "squeezenet", "concatnet", "misc_ops", "resnet"):
        _, _, program, _ = _zoo_program(zoo_models, name)
        limit = stage_limit(program)
        seen |= _stage_kernels(program, max(limit.splits))
    kernels = {k for k, *_ in seen}
    # residual adds of >= 1,024 elements (these zoo stages') lower to tc_add_s8_table
    assert {"tc_conv2d_s8", "tc_dwconv2d_s8", "tc_add_s8_table", "tc_concat_s8_part", "tc_maxpool_s8"} <= kernels
    assert any(kh >= 5 for _, kh, _, _ in seen) and any(kh >= 7 for _, kh, _, _ in seen), seen
    assert any(s == 2 for _, _, s, _ in seen) and any(d > 1 for *_, d in seen), seen


# ---- generated C: checked harness, every step's output equal to the patched golden -----------------
@pytest.mark.parametrize("name,config", [("mbv2", "auto-last-2x3"), ("mcunet", "auto-last-3x1"),
                                         ("squeezenet", "auto-last-1x4"), ("concatnet", "auto-last-3x2")])
def test_patched_c_equals_golden_step_by_step(zoo_models, name, config):
    from cbuild import require_sanitizers

    g, inputs, program, _ = _zoo_program(zoo_models, name)
    limit = stage_limit(program)
    grid, _, halo = config.split("-")[-1].partition(":")
    rows, cols = (int(v) for v in grid.split("x"))
    split = max(limit.splits)
    model = CompiledModel(g, QuantOptions(), warn=lambda m: None,
                          patching=PatchOptions("forced", PatchConfig(split, rows, cols, halo or "recompute")))
    assert model.program.patch is not None
    rng = np.random.default_rng(5)
    x = {k: (v + rng.normal(0, 0.2, v.shape)).astype(np.float32) for k, v in inputs.items()}
    golden = {}
    outs = model.run_int8(x, observe=lambda t, v: golden.__setitem__(t, v))
    reference = CompiledModel(g, QuantOptions(), warn=lambda m: None).run_int8(x)
    for t in outs:
        np.testing.assert_array_equal(outs[t], reference[t])
    require_sanitizers()
    c_outs, trace = model.run_c(x, check=True)
    last_writer = {step.outputs[0]: k for k, step in enumerate(model.program.steps)}
    for t, k in last_writer.items():
        np.testing.assert_array_equal(trace[k], golden[t].reshape(-1), err_msg=f"{name} step {k}")
    for t in outs:
        np.testing.assert_array_equal(c_outs[t], outs[t])


def _two_stage_config(program, first_index: int, g1: tuple, g2: tuple) -> PatchConfig:
    """First stage ending at the first_index-th valid end, the second at its last valid end."""
    first = sorted(stage_limit(program).splits)[first_index]
    second = max(stage_limit(program, first).splits)
    return PatchConfig(first, *g1, then=PatchConfig(second, *g2))


@pytest.mark.parametrize("name,first,g1,g2,stream", [("mbv2", 1, (2, 2), (3, 1, "reuse"), False),
                                                     ("mcunet", 0, (3, 2, "reuse"), (2, 3), True)])
def test_two_stage_c_equals_golden_step_by_step(zoo_models, name, first, g1, g2, stream):
    """Two patch stages in the generated C (checked harness, ASan/UBSan): every step's output equals
    the patched golden's, and the outputs the layer-by-layer golden's."""
    from cbuild import require_sanitizers

    g, inputs, program, _ = _zoo_program(zoo_models, name)
    config = _two_stage_config(program, first, g1, g2)
    model = CompiledModel(g, QuantOptions(), warn=lambda m: None,
                          patching=PatchOptions("forced", config, stream=stream))
    assert model.program.patch.next_stage is not None and model.program.patch.config == config
    assert (model.program.streamed_input is not None) == stream
    rng = np.random.default_rng(7)
    x = {k: (v + rng.normal(0, 0.2, v.shape)).astype(np.float32) for k, v in inputs.items()}
    golden = {}
    outs = model.run_int8(x, observe=lambda t, v: golden.__setitem__(t, v))
    reference = CompiledModel(g, QuantOptions(), warn=lambda m: None, patching=PatchOptions("off")).run_int8(x)
    for t in outs:
        np.testing.assert_array_equal(outs[t], reference[t])
    require_sanitizers()
    c_outs, trace = model.run_c(x, check=True)
    last_writer = {step.outputs[0]: k for k, step in enumerate(model.program.steps) if step.outputs}
    for t, k in last_writer.items():
        if t in golden:
            np.testing.assert_array_equal(trace[k], golden[t].reshape(-1), err_msg=f"{name} step {k}")
    for t in outs:
        np.testing.assert_array_equal(c_outs[t], reference[t])


# ---- Cortex-M4 under QEMU: forced patch plans == layer-by-layer golden --------------------------------
def _needs_qemu():
    from tinycc.sim.qemu import missing_tools

    missing = missing_tools(run=True)
    if missing is not None:
        pytest.skip(f"Cortex-M toolchain or QEMU unavailable: {missing}")


@pytest.mark.parametrize("name,grid,split,halo", [("mcunet", (3, 1), "last", "recompute"),
                                                  ("mbv2", (2, 3), "last", "recompute"),
                                                  ("concatnet", (1, 4), "first", "recompute")])
def test_forced_patches_on_cortex_m4_equal_layer_by_layer_golden(zoo_models, name, grid, split, halo):
    """The patched program cross-built for the M4 (DSP and assembly kernel variants, per-patch
    params structs in flash) gives the layer-by-layer golden's outputs bit for bit: Nx1, uneven
    and 1xN grids, on the deepest and on the shallowest stage (halo reuse with a streamed input:
    tests/test_stream_input.py)."""
    _needs_qemu()
    g, inputs, program, _ = _zoo_program(zoo_models, name)
    splits = sorted(stage_limit(program).splits)
    config = PatchConfig(splits[-1] if split == "last" else splits[0], *grid, halo)
    model = CompiledModel(g, QuantOptions(), warn=lambda m: None, patching=PatchOptions("forced", config))
    assert model.program.patch is not None
    reference = CompiledModel(g, QuantOptions(), warn=lambda m: None, patching=PatchOptions("off"))
    rng = np.random.default_rng(11)
    x = {k: (v + rng.normal(0, 0.2, v.shape)).astype(np.float32) for k, v in inputs.items()}
    golden = reference.run_int8(x)
    target, run = model.run_qemu(x, "cortex-m4")
    for t in golden:
        np.testing.assert_array_equal(target[t], golden[t], err_msg=f"{name} {config.text()} output {t}")
    assert run.instructions > 0


def test_two_stages_streamed_on_cortex_m4_equal_layer_by_layer_golden(zoo_models):
    """Two stages (uneven grid with halo rows reused, then 2x2 with recompute over the first's
    output buffer; 5x5/7x7 kernels, stride 2), input streamed, cross-built for the M4 under QEMU:
    the layer-by-layer golden's outputs bit for bit."""
    _needs_qemu()
    g, inputs, program, _ = _zoo_program(zoo_models, "mcunet")
    config = _two_stage_config(program, 0, (3, 2, "reuse"), (2, 2))
    model = CompiledModel(g, QuantOptions(), warn=lambda m: None,
                          patching=PatchOptions("forced", config, stream=True))
    assert model.program.patch.next_stage is not None and model.program.streamed_input is not None
    reference = CompiledModel(g, QuantOptions(), warn=lambda m: None, patching=PatchOptions("off"))
    rng = np.random.default_rng(13)
    x = {k: (v + rng.normal(0, 0.2, v.shape)).astype(np.float32) for k, v in inputs.items()}
    golden = reference.run_int8(x)
    target, run = model.run_qemu(x, "cortex-m4")
    for t in golden:
        np.testing.assert_array_equal(target[t], golden[t], err_msg=f"mcunet {config.text()} output {t}")
    assert run.instructions > 0


# ---- MLPerf: TFLite Micro's outputs with patches, and auto never worse -----------------------------
@pytest.fixture(scope="module")
def samples(mlperf_dir):
    return np.load(mlperf_dir / "samples.npz")


@pytest.mark.parametrize("name,config", [("vww_mobilenetv1_025", "4x3x2"), ("ic_resnet8", "4x2x4")])
def test_mlperf_patched_reproduces_tflite_micro(mlperf_dir, samples, name, config):
    from tinycc.schedule.search import parse_patch

    g = run_pipeline(load_graph(mlperf_dir / f"{name}_qdq.onnx"))
    model = CompiledModel(g, QuantOptions(), warn=pytest.fail, patching=PatchOptions(*parse_patch(config)))
    assert model.program.patch is not None
    x, ref = samples[f"{name}_int8"], samples[f"{name}_tflm_out"]
    out = model.program.outputs[0]
    for i in range(2):
        inputs = {g.inputs[0]: x[i:i + 1]}
        golden = model.logical(out, model.run_int8(inputs)[out], dequantize=False)
        np.testing.assert_array_equal(golden.reshape(-1), ref[i].reshape(-1))
        c_out = model.logical(out, model.run_c(inputs)[0][out], dequantize=False)
        np.testing.assert_array_equal(c_out, golden)


def test_vww_auto_patch_meets_the_target(mlperf_dir):
    """MLPerf Tiny VWW: TinyEngine's patch-based peak is 58,232 B; ours <= 40,000 B with the input
    buffer counted, at most 10 % more MACs."""
    g = run_pipeline(load_graph(mlperf_dir / "vww_mobilenetv1_025_qdq.onnx"))
    program = build_program(g, QuantOptions(), warn=pytest.fail)
    patched, mem, decision = plan_program(program, PatchOptions("auto", None, 256 * 1024))
    assert patched.patch is not None and mem.arena_bytes <= 40_000, decision.reason
    assert mem.arena_bytes < decision.layer_by_layer_arena
    extra = patched.patch.macs_patched - patched.patch.macs_layer_by_layer
    assert extra <= 0.10 * (patched.macs - extra)


def _auto_vs_off(program):
    ordered_off = plan_memory(program_copy(program)).arena_bytes
    patched, mem, decision = plan_program(program, PatchOptions("auto", None, None))
    return ordered_off, mem.arena_bytes, decision


def program_copy(program):
    import copy

    p = copy.copy(program)
    p.steps = list(program.steps)
    return p


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_auto_is_never_worse_on_the_zoo(zoo_models, name):
    path, inputs = zoo_models[(name, "torchscript")]
    g = run_pipeline(load_graph(path, {k: v.shape for k, v in inputs.items()}))
    program = build_program(g, QuantOptions(), warn=lambda m: None)
    off, auto, decision = _auto_vs_off(program)
    assert auto <= off, decision.reason
    assert (auto < off) == (decision.chosen is not None)


@pytest.mark.parametrize("name", MLPERF)
def test_auto_is_never_worse_on_mlperf(mlperf_dir, name):
    for flavour in ("_qdq", ""):
        g = run_pipeline(load_graph(mlperf_dir / f"{name}{flavour}.onnx"))
        program = build_program(g, QuantOptions(), warn=lambda m: None)
        off, auto, decision = _auto_vs_off(program)
        assert auto <= off, decision.reason


# ---- command line --------------------------------------------------------------------------------
def _compile(tmp_path, model, out, *extra):
    rc = main(["compile", str(model), "-o", str(tmp_path / out), *extra])
    assert rc == 0
    return {p.relative_to(tmp_path / out).as_posix(): p.read_bytes()
            for p in sorted((tmp_path / out).rglob("*")) if p.is_file()}


def test_patch_off_changes_no_generated_file(mlperf_dir, tmp_path):
    """A model that fits --sram: the default (--patch fit) and --patch off write exactly what the
    compiler without the schedule package writes: the layer-by-layer plan and files, no report
    field added."""
    from tinycc.codegen.emit import generate_project

    model = mlperf_dir / "vww_mobilenetv1_025_qdq.onnx"
    default = _compile(tmp_path, model, "a")
    off = _compile(tmp_path, model, "b", "--patch", "off")
    assert default == off
    assert "patch" not in json.loads(off["report.json"])
    g = run_pipeline(load_graph(model))
    program = build_program(g, QuantOptions(), warn=pytest.fail)
    mem = plan_memory(program)  # what tinycc compiled before patches existed
    files = generate_project(program, mem, "vww_mobilenetv1_025_qdq", model.name)
    for rel in ("model.c", "model.h", "weights.c", "weights.h", "main.c"):
        assert files[rel] == off[rel], rel


def test_default_patches_only_a_model_over_the_budget(mlperf_dir, samples, tmp_path, capsys):
    """ResNet-8 needs 33,792 B layer by layer: under --sram 30k the default compiles it with a patch
    stage (where --patch off exits 3), and that C gives the layer-by-layer golden's output, bit for
    bit (and TFLite Micro's)."""
    model = mlperf_dir / "ic_resnet8_qdq.onnx"
    assert main(["compile", str(model), "-o", str(tmp_path / "off"), "--sram", "30k", "--patch", "off"]) == 3
    assert "patch" in capsys.readouterr().err
    report = json.loads(_compile(tmp_path, model, "fit", "--sram", "30k")["report.json"])
    assert report["patch"]["mode"] == "fit" and report["patch"]["chosen"]
    assert report["peak_sram_bytes"] <= 30 * 1024 < report["patch"]["layer_by_layer_arena_bytes"]
    roomy = json.loads(_compile(tmp_path, model, "roomy", "--sram", "40k")["report.json"])
    assert "patch" not in roomy
    assert main(["compile", str(model), "-o", str(tmp_path / "tiny"), "--sram", "8k"]) == 3
    err = capsys.readouterr().err
    assert "bytes missing" in err and "the patch plan tried (" in err

    g = run_pipeline(load_graph(model))
    fit = CompiledModel(g, QuantOptions(), warn=pytest.fail, patching=PatchOptions("fit", None, 30 * 1024))
    assert fit.program.patch is not None and fit.mem.arena_bytes <= 30 * 1024
    reference = CompiledModel(g, QuantOptions(), warn=pytest.fail, patching=PatchOptions("off"))
    assert reference.program.patch is None
    out = fit.program.outputs[0]
    x, tflm = samples["ic_resnet8_int8"], samples["ic_resnet8_tflm_out"]
    for i in range(2):
        inputs = {g.inputs[0]: x[i:i + 1]}
        c_out = fit.logical(out, fit.run_c(inputs)[0][out], dequantize=False)
        golden = reference.logical(out, reference.run_int8(inputs)[out], dequantize=False)
        np.testing.assert_array_equal(c_out, golden)
        np.testing.assert_array_equal(c_out.reshape(-1), tflm[i].reshape(-1))


def test_cli_forced_patch_report_and_errors(mlperf_dir, tmp_path, capsys):
    model = mlperf_dir / "ic_resnet8_qdq.onnx"
    files = _compile(tmp_path, model, "p", "--patch", "4x2x2")
    report = json.loads(files["report.json"])["patch"]
    assert report["chosen"] == "4x2x2" and report["grid"] == [2, 2] and report["halo"] == "recompute"
    assert report["stage_output_bytes"] > 0 and report["per_patch_peak_bytes"] > 0
    assert "global reduction" in report["stage_stops_because"]
    assert "Patch-based inference" in files["report.md"].decode()
    assert main(["compile", str(model), "-o", str(tmp_path / "bad"), "--patch", "99x2x2"]) == 2
    assert "valid ends" in capsys.readouterr().err
    assert main(["compile", str(model), "-o", str(tmp_path / "bad"), "--patch", "4x2x2+4x1x2"]) == 2
    assert "must end after the first" in capsys.readouterr().err
    program = build_program(run_pipeline(load_graph(model)), QuantOptions(), warn=lambda m: None)
    reorder_steps(program, 0.5)  # as the search does
    second = max(stage_limit(program, 4).splits)
    files = _compile(tmp_path, model, "p2", "--patch", f"4x2x2+{second}x1x2:reuse")
    report = json.loads(files["report.json"])["patch"]
    assert report["chosen"] == f"4x2x2+{second}x1x2:reuse" and report["grid"] == [2, 2]
    assert report["second_stage"]["grid"] == [1, 2] and report["second_stage"]["first_step"] == 4
    assert report["second_stage"]["stage_input"] == report["stage_output"]
    assert "A second patch stage" in files["report.md"].decode()
    assert main(["compile", str(model), "-o", str(tmp_path / "bad"), "--patch", "2by2"]) == 2
    assert main(["compile", str(model), "-o", str(tmp_path / "bad"), "--patch", "4x200x2"]) == 2
    assert main(["compile", str(model), "-o", str(tmp_path / "bad"), "--patch", "auto",
                 "--patch-overhead", "lots"]) == 2


def test_patch_stage_is_marked_in_memory_svg_and_report(mlperf_dir, tmp_path):
    """memory.svg shades the patch stage with its grid, halo strategy and MAC overhead, draws the
    per-patch buffers in their own colour and names the stage-output buffer; built for the M4
    (where QEMU runs), the report's patch section gives the stage's instructions and those of its
    copies."""
    import shutil

    model = mlperf_dir / "ic_resnet8_qdq.onnx"
    cross = bool(shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"))
    files = _compile(tmp_path, model, "m", "--patch", "4x2x2", *(["--target", "cortex-m4"] if cross else []))
    svg = files["memory.svg"].decode()
    assert svg.count('class="patch-stage"') == 1 and "patch stage 4x2x2: 4 patches (2 x 2), halo recompute" in svg
    assert 'data-kind="patch"' in svg and "(stage output)" in svg and "one patch" in svg
    report = json.loads(files["report.json"])
    assert f"+{report['patch']['mac_overhead_percent']:.2f} % MACs" in svg
    if not cross:
        pytest.skip("arm-none-eabi-gcc/qemu-system-arm missing: no instruction figures")
    ins = report["patch"]["instructions"]
    assert 0 < ins["stage_copies"] < ins["stage"] < report["instructions"]["per_inference"]
    assert "instructions in the stage (QEMU)" in files["report.md"].decode()


def test_cli_run_takes_patch_and_sram(mlperf_dir, samples, tmp_path):
    model = mlperf_dir / "ic_resnet8_qdq.onnx"
    x = samples["ic_resnet8_int8"][:1]
    np.save(tmp_path / "x.npy", x)
    outs = {}
    for patch in ("off", "4x3x1", "auto"):
        out = tmp_path / f"y_{patch}.npy"
        assert main(["run", str(model), "--input", str(tmp_path / "x.npy"), "--engine", "c", "--patch", patch,
                     "--sram", "30k", "-o", str(out)]) == 0
        outs[patch] = np.load(out)
    np.testing.assert_array_equal(outs["off"], outs["4x3x1"])
    np.testing.assert_array_equal(outs["off"], outs["auto"])
