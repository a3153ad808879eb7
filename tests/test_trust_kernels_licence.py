"""Every kernel path under every memory licence it can be given.

The memory plan may let an output overlap the input it consumes (row overlap) or take its
buffer (in place), and concat parts may be produced straight into their slice. Each licence must
come from what the C kernel that runs really honours. Here models that reach every conv and
depthwise path (portable, DSP one-chunk, deep-window pairs, grouped/dilated windows, pointwise,
strided, depthwise 3x3 ring / 4-channel / per-channel / pixel SIMD / in-place plane, depth
multiplier > 1), element-wise, lookup-table and softmax steps in place, and concat without copies
are planned with every granted overlap pinned at its limit (and one alignment unit beyond), then
run under the checked harness (ASan/UBSan, guard bytes, a write check after every layer) on the
host, portable and with the DSP paths (TC_EMULATE_DSP), and under QEMU on a Cortex-M4, layer by
layer equal to the golden model."""
from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinycc.codegen.emit import generate_project, write_files
from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.memory.lifetimes import ALIGN, choose_overlaps, plan_memory, program_buffers
from tinycc.ops.conv import (Conv2dParams, DwConv2dParams, conv2d_overlap_licence, dwconv2d_overlap_licence,
                             row_overlap_delta)
from tinycc.passes import run_pipeline
from tinycc.sim.host import build, run_harness
from tinycc.sim.qemu import missing_tools

_NO_QEMU = missing_tools(run=True)


def _conv(x, w, y, **attrs):
    return helper.make_node("Conv", [x, w], [y], **attrs)


def conv_paths():
    """A chain through every tc_conv2d_s8 path. W = 3, so DSP pixel pairs span row ends."""
    specs = [("c1", 8, 16, 3, dict(pads=[1, 1, 1, 1])),                      # DSP one chunk (depth 72)
             ("c2", 16, 16, 3, dict(pads=[1, 1, 1, 1], strides=[2, 1])),     # strided, depth 144
             ("c3", 16, 16, 3, dict(pads=[1, 1, 1, 1], group=2)),            # grouped: DSP windows
             ("c4", 16, 16, 3, dict(pads=[2, 2, 2, 2], dilations=[2, 2])),   # dilated: DSP windows
             ("c5", 16, 32, 1, {}),                                          # pointwise expansion
             ("c6", 32, 96, 3, dict(pads=[1, 1, 1, 1])),                     # deep: DSP chunked pairs
             ("c7", 96, 4, 1, {})]                                           # pointwise, depth 96
    nodes, inits, x = [], [], "x"
    rng = np.random.default_rng(3)
    for name, cin, cout, k, attrs in specs:
        group = attrs.get("group", 1)
        inits.append(numpy_helper.from_array(
            (rng.standard_normal((cout, cin // group, k, k)) / np.sqrt(cin * k * k / group)).astype(np.float32),
            f"w_{name}"))
        nodes.append(_conv(x, f"w_{name}", name, **attrs))
        x = name
    return nodes, [("x", [1, 8, 8, 3])], [("c7", None)], inits


def depthwise_paths():
    """Depthwise with depth multiplier 2 (the first layer of issue 17) and 1: 3x3 (ring and
    4-channel paths), 5x5 (per channel, DSP per pixel, in-place plane), strided (in place
    pinned), 32 channels (no overlap: the channel-by-channel passes would not line up)."""
    rng = np.random.default_rng(4)

    def w(name, shape):
        return numpy_helper.from_array((rng.standard_normal(shape) / 3).astype(np.float32), name)

    nodes = [_conv("x", "w_m2", "d1", group=3, pads=[1, 1, 1, 1]),                 # 3 -> 6, dm 2
             _conv("d1", "w_pw", "p1"),                                            # 6 -> 8
             _conv("p1", "w_3x3", "d2", group=8, pads=[1, 1, 1, 1]),               # 3x3, dm 1
             _conv("d2", "w_m3", "d3", group=8, pads=[1, 1, 1, 1]),                # 8 -> 24, dm 3
             _conv("d3", "w_pw2", "p2"),                                           # 24 -> 16
             _conv("p2", "w_5x5", "d4", group=16, pads=[2, 2, 2, 2]),              # 5x5, dm 1
             _conv("d4", "w_s2", "d5", group=16, pads=[1, 1, 1, 1], strides=[2, 2]),  # strided
             _conv("d5", "w_pw3", "p3"),                                           # 16 -> 32
             _conv("p3", "w_32", "d6", group=32, pads=[1, 1, 1, 1]),               # 32 channels
             _conv("d6", "w_out", "y")]
    inits = [w("w_m2", (6, 1, 3, 3)), w("w_pw", (8, 6, 1, 1)), w("w_3x3", (8, 1, 3, 3)), w("w_m3", (24, 1, 3, 3)),
             w("w_pw2", (16, 24, 1, 1)), w("w_5x5", (16, 1, 5, 5)), w("w_s2", (16, 1, 3, 3)),
             w("w_pw3", (32, 16, 1, 1)), w("w_32", (32, 1, 3, 3)), w("w_out", (4, 32, 1, 1))]
    return nodes, [("x", [1, 3, 8, 8])], [("y", None)], inits


def in_place_and_concat():
    """Lookup table, Add of a broadcast constant, Mul of two activations, Softmax and LogSoftmax
    in place, and a Concat along H whose parts are produced in their slices."""
    rng = np.random.default_rng(5)

    def w(name, shape, scale=0.4):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    nodes = [_conv("x", "w_a", "a"),
             helper.make_node("Sigmoid", ["a"], ["s"]),
             helper.make_node("Add", ["s", "k"], ["b"]),
             _conv("x", "w_c", "c", pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["b", "c"], ["m"]),
             helper.make_node("Softmax", ["m"], ["sm"], axis=1),
             _conv("x", "w_t", "t"),
             helper.make_node("LogSoftmax", ["t"], ["lt"], axis=1),
             _conv("sm", "w_u", "u"),
             _conv("lt", "w_v", "v", pads=[1, 1, 1, 1]),
             helper.make_node("Concat", ["u", "v"], ["cat"], axis=2),
             _conv("cat", "w_o", "y")]
    inits = [w("w_a", (8, 8, 1, 1)), w("k", (1, 8, 1, 1)), w("w_c", (8, 8, 3, 3), 0.2), w("w_t", (8, 8, 1, 1)),
             w("w_u", (8, 8, 1, 1)), w("w_v", (8, 8, 3, 3), 0.2), w("w_o", (4, 8, 1, 1))]
    return nodes, [("x", [1, 8, 6, 6])], [("y", None)], inits


def residual_add_table():
    """A residual ADD of two activations of 1,024 elements with a fused ReLU: tc_add_s8_table
    (ADD_TABLE_MIN_ELEMENTS), in place over an operand where the licence allows."""
    rng = np.random.default_rng(7)

    def w(name, shape, scale=0.3):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    nodes = [_conv("x", "w_a", "a"),
             _conv("x", "w_b", "b", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["a", "b"], ["s"]),
             helper.make_node("Relu", ["s"], ["r"]),
             _conv("r", "w_o", "y")]
    inits = [w("w_a", (16, 16, 1, 1)), w("w_b", (16, 16, 3, 3), 0.1), w("w_o", (4, 16, 1, 1))]
    return nodes, [("x", [1, 16, 8, 8])], [("y", None)], inits


def deep_column():
    """Windows deeper than CONV2D_CHUNK on a one-pixel-wide image: on DSP builds
    conv2d_s8_chunked pairs pixel (r, 0) with (r + 1, 0) and writes the first block of both
    before re-reading row r's window for the second block (the licence's one-pixel lookahead)."""
    rng = np.random.default_rng(6)
    inits = [numpy_helper.from_array((rng.standard_normal((64, 64, 3, 1)) / 14).astype(np.float32), "w_deep"),
             numpy_helper.from_array((rng.standard_normal((4, 64, 1, 1)) / 8).astype(np.float32), "w_out")]
    nodes = [_conv("x", "w_deep", "d", pads=[1, 0, 1, 0]), _conv("d", "w_out", "y")]
    return nodes, [("x", [1, 64, 6, 1])], [("y", None)], inits


def first_paths():
    """The first-layer path (tc_conv2d_s8_first_dsp.c) on 3, 4 and 1 input channels, and a stem of
    16 channels that takes it in two passes out of place and the gathered path when its output
    overlaps its input (the forced licences below). W = 5: its blocks of 8 or
    more pixels span row ends, and all channels run over a block before the next is staged."""
    rng = np.random.default_rng(7)

    def w(name, shape):
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32),
                                       name)

    nodes = [_conv("x", "w_f1", "f1", pads=[1, 1, 1, 1]),                    # 3 -> 8, 3x3x3 windows
             _conv("f1", "w_f2", "f2"),                                      # 8 -> 3
             _conv("f2", "w_f3", "f3", pads=[1, 1, 1, 1]),                   # 3 -> 16: two passes
             _conv("f3", "w_f4", "f4"),                                      # 16 -> 4
             _conv("f4", "w_f5", "f5", pads=[1, 1, 1, 1], strides=[2, 1]),   # 4 -> 4, strided
             _conv("f5", "w_f6", "f6"),                                      # 4 -> 1
             _conv("f6", "w_f7", "f7", pads=[2, 1, 2, 1], kernel_shape=[5, 4]),  # 1 -> 6
             _conv("f7", "w_out", "y")]
    inits = [w("w_f1", (8, 3, 3, 3)), w("w_f2", (3, 8, 1, 1)), w("w_f3", (16, 3, 3, 3)), w("w_f4", (4, 16, 1, 1)),
             w("w_f5", (4, 4, 3, 3)), w("w_f6", (1, 4, 1, 1)), w("w_f7", (6, 1, 5, 4)), w("w_out", (4, 6, 1, 1))]
    return nodes, [("x", [1, 3, 10, 5])], [("y", None)], inits


MODELS = {f.__name__: f for f in (conv_paths, depthwise_paths, in_place_and_concat, residual_add_table,
                                  deep_column, first_paths)}
# (in-place licences on?, alignment units below each overlap's limit)
VARIANTS = {"inplace+overlap@limit": (True, 0), "overlap@limit": (False, 0), "overlap@limit-16": (False, 1)}
# (model, variant, DSP paths?): each kernel path under each licence it can get, in few builds
CASES = [("conv_paths", "inplace+overlap@limit", False), ("conv_paths", "inplace+overlap@limit", True),
         ("conv_paths", "overlap@limit-16", True),
         ("depthwise_paths", "inplace+overlap@limit", False), ("depthwise_paths", "inplace+overlap@limit", True),
         ("depthwise_paths", "overlap@limit", False), ("depthwise_paths", "overlap@limit", True),
         ("depthwise_paths", "overlap@limit-16", True),
         ("in_place_and_concat", "inplace+overlap@limit", False), ("in_place_and_concat", "inplace+overlap@limit", True),
         ("residual_add_table", "inplace+overlap@limit", False), ("residual_add_table", "inplace+overlap@limit", True),
         ("deep_column", "overlap@limit", True), ("first_paths", "overlap@limit", True)]
# The sanitizers catch the same faults at -O0, which builds about 3 times faster than -O1.
CHECK_FLAGS = "-O0 -g -fsanitize=address,undefined -fno-sanitize-recover=all"


def _compile(name: str, tmp: Path) -> tuple[CompiledModel, dict]:
    nodes, inputs, outputs, inits = MODELS[name]()
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp / f"{name}.onnx")
    rng = np.random.default_rng(11)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in inputs}
    model = CompiledModel(run_pipeline(load_graph(tmp / f"{name}.onnx")), QuantOptions(), warn=lambda m: None)
    return model, feeds


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("licence")
    return {name: _compile(name, tmp) for name in MODELS}


def _forced(model: CompiledModel, inplace: bool, below: int):
    """The model's program planned with every granted overlap pinned `below` units under its limit."""
    program = copy.deepcopy(model.program)
    return program, plan_memory(program, inplace=inplace, reorder=False, force_overlap_below=below)


def _golden_trace(program, model: CompiledModel, feeds) -> dict[str, np.ndarray]:
    from tinycc.lower import quantize_inputs
    from tinycc.reference.int_exec import run_int8

    values = {}
    run_int8(program, quantize_inputs(program, feeds), lambda t, v: values.__setitem__(t, v))
    return values


def _overlapped_kernels(program, mem) -> set[str]:
    index = {s.outputs[0]: s for s in program.steps if s.outputs}
    sizes = {b.name: b.size for b in mem.buffers}
    return {index[d].kernel for d, s, o in mem.overlaps if d in index and -sizes[d] < o < 0}


# What each model must exercise under each variant (so the test cannot pass by granting nothing).
EXPECTED_OVERLAPS = {
    ("conv_paths", 0): {"tc_conv2d_s8"},
    ("depthwise_paths", 0): {"tc_conv2d_s8", "tc_dwconv2d_s8"},
    ("deep_column", 0): {"tc_conv2d_s8"},
    ("first_paths", 0): {"tc_conv2d_s8"},
}


@pytest.mark.parametrize("name,variant,dsp", CASES,
                         ids=[f"{n}-{v}-{'dsp' if d else 'portable'}" for n, v, d in CASES])
def test_checked_harness_under_every_licence(compiled, monkeypatch, name, variant, dsp):
    from cbuild import require_sanitizers

    require_sanitizers()
    monkeypatch.setenv("CHECK_FLAGS", CHECK_FLAGS)
    model, feeds = compiled[name]
    inplace, below = VARIANTS[variant]
    program, mem = _forced(model, inplace, below)
    if not inplace:
        kernels = _overlapped_kernels(program, mem)
        assert EXPECTED_OVERLAPS.get((name, 0), set()) <= kernels, (variant, kernels)
    if inplace and name == "in_place_and_concat":
        in_place = {program.steps[k].kernel for k in mem.inplace_steps}
        assert {"tc_lut_s8", "tc_softmax_s8", "tc_log_softmax_s8"} <= in_place, in_place
        assert any(k.startswith("tc_add") or k.startswith("tc_mul") for k in in_place), in_place
        assert mem.elided_steps, "concat parts were not produced in place"
    if inplace and name == "residual_add_table":
        assert "tc_add_s8_table" in {program.steps[k].kernel for k in mem.inplace_steps}
    if inplace and name == "depthwise_paths":
        assert "tc_dwconv2d_s8_inplace" in {program.steps[k].call(True)[0] for k in mem.inplace_steps}
    with tempfile.TemporaryDirectory(prefix="tinycc_licence_") as tmp:
        write_files(generate_project(program, mem, "model", name), Path(tmp))
        exe = build(Path(tmp), "model", "check", extra="-DTC_EMULATE_DSP" if dsp else "")
        from tinycc.lower import quantize_inputs

        _, trace = run_harness(exe, program, quantize_inputs(program, feeds), trace=True,
                               env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    golden = _golden_trace(program, model, feeds)
    last_writer = {step.outputs[0]: k for k, step in enumerate(program.steps)}  # concat: its last part
    for out, k in last_writer.items():
        step = program.steps[k]
        np.testing.assert_array_equal(trace[k], golden[out].reshape(-1),
                                      err_msg=f"{variant} step {k} {step.kernel} ({step.name})")


@pytest.mark.skipif(_NO_QEMU is not None, reason=f"Cortex-M toolchain or QEMU unavailable: {_NO_QEMU}")
@pytest.mark.parametrize("name", ["conv_paths", "depthwise_paths", "first_paths"])
def test_cortex_m4_dsp_paths_under_forced_overlaps(compiled, name):
    """The real DSP paths and assembly (not the emulation) with every overlap at its limit."""
    model, feeds = compiled[name]
    forced = copy.copy(model)
    forced._targets = {}
    forced.program, forced.mem = _forced(model, False, 0)
    outs, _ = forced.run_qemu(feeds, "cortex-m4", count=False)
    golden = forced.run_int8(feeds)
    for out, v in golden.items():
        np.testing.assert_array_equal(outs[out], v, err_msg=out)


# ---- the licences themselves ---------------------------------------------------------------
def _dw(in_c, depth_mult, k=3, stride=1, pad=1, size=8):
    out = (size + 2 * pad - k) // stride + 1
    return DwConv2dParams(in_h=size, in_w=size, in_c=in_c, out_h=out, out_w=out, out_c=in_c * depth_mult,
                          k_h=k, k_w=k, stride_h=stride, stride_w=stride, dil_h=1, dil_w=1, pad_top=pad,
                          pad_left=pad, depth_mult=depth_mult, in_zp=0, out_zp=0, act_min=-128, act_max=127)


def test_depthwise_licence_follows_the_channel_by_channel_kernel():
    assert dwconv2d_overlap_licence(_dw(3, 2)) == {}  # issue 17: W[6,1,3,3], group 3
    assert dwconv2d_overlap_licence(_dw(8, 4)) == {}
    lic = dwconv2d_overlap_licence(_dw(8, 1))
    assert lic["overlap_modulus"] == 8 and lic["overlap_delta"] < 0


def test_conv_licence_covers_pixel_pairs_across_row_ends():
    def conv(in_c, out_c, k, w):
        return Conv2dParams(in_h=4, in_w=w, in_c=in_c, out_h=4, out_w=w, out_c=out_c, k_h=k, k_w=k, stride_h=1,
                            stride_w=1, dil_h=1, dil_w=1, pad_top=k // 2, pad_left=k // 2, groups=1, in_zp=0,
                            out_zp=0, act_min=-128, act_max=127)

    shallow, deep = conv(8, 8, 3, 3), conv(32, 32, 3, 3)  # depth 72 vs 288 > CONV2D_CHUNK
    assert conv2d_overlap_licence(shallow)["overlap_delta"] == row_overlap_delta(4, 3, 8, 4, 3, 8, 1, 1) == -48
    assert conv2d_overlap_licence(deep)["overlap_delta"] == row_overlap_delta(4, 3, 32, 4, 3, 32, 1, 1) - 32 == -224


def test_row_overlap_delta_lookahead():
    # 1x1 conv, 4x4x8 -> 4x4x8: row r may end at input row r's start: delta = -row
    assert row_overlap_delta(4, 4, 8, 4, 4, 8, 1, 0) == -32
    # one pixel of the next row written early: 8 bytes more, except after the last row
    assert row_overlap_delta(4, 4, 8, 4, 4, 8, 1, 0, lookahead_pixels=1) == -40


def test_planner_refuses_overlaps_the_channel_passes_cannot_honour(compiled):
    """32-channel depthwise: 16-byte placements cannot keep its channels aligned, so it gets no
    overlap; 8 and 16 channels divide the alignment and keep theirs; depth multiplier > 1 none."""
    model, _ = compiled["depthwise_paths"]
    program = copy.deepcopy(model.program)
    cands = {d for d, _, _ in choose_overlaps(program, {}, set(), program_buffers(program))}
    dw = [s for s in program.steps if s.kernel == "tc_dwconv2d_s8"]
    allowed = {s.params.in_c: s.outputs[0] in cands for s in dw if s.params.depth_mult == 1}
    assert allowed == {8: True, 16: True, 32: False} and ALIGN == 16
    assert not any(s.outputs[0] in cands for s in dw if s.params.depth_mult > 1)
