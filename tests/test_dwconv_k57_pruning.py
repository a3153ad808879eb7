"""TC_DWCONV2D_K57: tc_dwconv2d_s8_k's code for kernels 5 and 7 wide (the unrolled 5x5 / 7x7
assembly, 7.5 KB, and the C rows dwk_row_5 / dwk_row_7) is compiled out of the projects whose
depthwise layers cannot take it (tinycc/kernels.py PrunableCode, tinycc/ops/conv.py
dwconv2d_k57_may_run), and kept, bit-exact, where they can."""
from __future__ import annotations

import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinycc.codegen.emit import generate_project
from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.kernels import prunable_macros
from tinycc.ops.conv import DwConv2dParams, dwconv2d_k57_may_run
from tinycc.passes import run_pipeline
from tinycc.sim.qemu import ARM_PREFIX, function_profile, missing_tools

_NO_QEMU = missing_tools(run=True)
needs_qemu = pytest.mark.skipif(_NO_QEMU is not None, reason=f"Cortex-M toolchain or QEMU unavailable: {_NO_QEMU}")
K57_SYMBOLS = {"tc_dwk5_pairs_asm", "tc_dwk5_pairs_s2_asm", "tc_dwk7_pairs_asm", "tc_dwk7_pairs_s2_asm",
               "dwk_row_5", "dwk_row_7"}


def _dw_params(k: int, stride: int = 1, c: int = 8, act=(-128, 127), dil: int = 1, mult: int = 1) -> DwConv2dParams:
    pad = dil * (k - 1) // 2
    out = (12 + 2 * pad - dil * (k - 1) - 1) // stride + 1
    return DwConv2dParams(in_h=12, in_w=12, in_c=c, out_h=out, out_w=out, out_c=c * mult, k_h=k, k_w=k,
                          stride_h=stride, stride_w=stride, dil_h=dil, dil_w=dil, pad_top=pad, pad_left=pad,
                          depth_mult=mult, in_zp=0, out_zp=0, act_min=act[0], act_max=act[1])


def test_the_5x5_and_7x7_code_is_kept_only_for_layers_that_may_take_it():
    assert dwconv2d_k57_may_run(_dw_params(5)) and dwconv2d_k57_may_run(_dw_params(7, 2))
    assert dwconv2d_k57_may_run(_dw_params(5, act=(-128, 0)))  # the C row 5 wide runs fused clamps
    assert not dwconv2d_k57_may_run(_dw_params(3))
    assert not dwconv2d_k57_may_run(_dw_params(5, dil=2)) and not dwconv2d_k57_may_run(_dw_params(5, mult=2))
    three, five = ("tc_dwconv2d_s8", _dw_params(3)), ("tc_dwconv2d_s8_inplace", _dw_params(5))
    assert prunable_macros([three]) == {"TC_DWCONV2D_K57": False}
    # the in-place twin shares the files: one 5x5 layer of either kernel keeps the code for both
    assert prunable_macros([three, five]) == {"TC_DWCONV2D_K57": True}
    assert prunable_macros([("tc_fc_s8", None)]) == {}


def _dw_model(path, kernels: list[tuple[int, int]], c: int = 8, size: int = 12):
    """Depthwise convolutions in a chain: (kernel size, stride) each, 'same' padding."""
    rng = np.random.default_rng(len(kernels))
    nodes, inits, x, hw = [], [], "x", size
    for i, (k, s) in enumerate(kernels):
        w = numpy_helper.from_array(rng.standard_normal((c, 1, k, k)).astype(np.float32) / k, f"w{i}")
        b = numpy_helper.from_array(rng.standard_normal(c).astype(np.float32) * 0.1, f"b{i}")
        inits += [w, b]
        p = (k - 1) // 2
        nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"y{i}"], group=c, kernel_shape=[k, k],
                                      strides=[s, s], pads=[p, p, p, p]))
        x, hw = f"y{i}", (hw + 2 * p - k) // s + 1
    graph = helper.make_graph(nodes, "dw", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, size, size])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, c, hw, hw])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _compiled(tmp_path, name, kernels) -> CompiledModel:
    return CompiledModel(run_pipeline(load_graph(_dw_model(tmp_path / f"{name}.onnx", kernels))), QuantOptions(),
                         warn=lambda m: None)


def _symbols(elf) -> set[str]:
    out = subprocess.run([f"{ARM_PREFIX}nm", "--defined-only", str(elf)], check=True, capture_output=True, text=True)
    return {line.split()[-1] for line in out.stdout.splitlines()}


def test_generated_builds_compile_the_code_out_without_such_a_layer(tmp_path):
    three = _compiled(tmp_path, "three", [(3, 1)])
    five = _compiled(tmp_path, "five", [(5, 1)])
    files3 = generate_project(three.program, three.mem, "model", "three")
    files5 = generate_project(five.program, five.mem, "model", "five")
    assert b"CPPFLAGS += -DTC_DWCONV2D_K57=0\n" in files3["Makefile"]
    assert b"TC_DWCONV2D_K57" not in files5["Makefile"]
    # CMake: the runtime library shared by several models keeps the code when one of them needs it
    assert b"TINYCC_KEEP_TC_DWCONV2D_K57>>>:TC_DWCONV2D_K57=0>)" in files3["CMakeLists.txt"]
    assert b"set_property(TARGET tinycc_runtime PROPERTY TINYCC_KEEP_TC_DWCONV2D_K57 ON)" in files5["CMakeLists.txt"]


@needs_qemu
def test_m4_harness_links_the_5x5_7x7_code_only_where_a_layer_runs_it_bit_exact(tmp_path):
    three = _compiled(tmp_path, "three", [(3, 1), (3, 2)])
    assert not K57_SYMBOLS & _symbols(three.target_elf("cortex-m4"))
    model = _compiled(tmp_path, "k57", [(5, 1), (7, 1), (5, 2), (7, 2)])
    elf = model.target_elf("cortex-m4")
    assert K57_SYMBOLS <= _symbols(elf)
    rng = np.random.default_rng(5)
    for _ in range(2):
        inputs = {"x": rng.standard_normal((1, 8, 12, 12)).astype(np.float32)}
        target, run = model.run_qemu(inputs, "cortex-m4", profile=True)
        golden = model.run_int8(inputs)
        for out in model.program.outputs:
            np.testing.assert_array_equal(target[out], golden[out])
    ran = {f for f, n in function_profile(elf, run.pc_counts).items() if n > 0}
    assert {"tc_dwk5_pairs_asm", "tc_dwk7_pairs_asm", "tc_dwk5_pairs_s2_asm", "tc_dwk7_pairs_s2_asm"} <= ran
