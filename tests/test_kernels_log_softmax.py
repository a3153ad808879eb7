"""int8 LogSoftmax: C kernel (runtime_c/tc_log_softmax_s8.c) vs numpy golden, golden vs float.

Checks:
  1. C == golden bit for bit on rows of depth 1, 2, 10, 1000 (and long rows), input scales from
     1e-7 to 1e4, extreme and random inputs, in place.
  2. Golden vs the float reference round(log_softmax(dequant(x)) / (16/256)) + 127: never off by
     more than 1 LSB, exactly rounded on >= 99.9% of elements (dequantized in float32, as the
     float model sees them) and on all of them when dequantized in double.
  3. Closed-form outputs, the integer log2, the offline parameters, rejected parameters (C
     returns TC_ARG_ERROR and writes nothing, the golden raises ValueError), an ASan/UBSan run.
  4. End to end: Conv -> Flatten -> Gemm -> LogSoftmax compiled from ONNX, golden == generated C.
"""
from __future__ import annotations

import ctypes
import math
import re
import shutil
import subprocess
from dataclasses import asdict, fields, replace

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from cbuild import RUNTIME, c_compiler, ptr, runtime_library
from tinycc.golden.arith import round_half_away
from tinycc.ops.softmax import (LOG_SOFTMAX_EXP_ONE, LogSoftmaxParams, log_softmax_log2_q24, log_softmax_s8,
                                make_log_softmax_exp_table, make_log_softmax_params)

TC_OK, TC_ARG_ERROR = 0, -1
SENTINEL = 0x5A
OUT_SCALE, OUT_ZP = 16.0 / 256.0, 127
DEPTHS = (1, 2, 10, 1000)
IN_SCALES = (1e-7, 1e-4, 0.003, 0.0390625, 0.1, 0.5, 3.0, 40.0, 1e4)


class CParams(ctypes.Structure):
    _fields_ = [(f.name, ctypes.c_int32) for f in fields(LogSoftmaxParams)]


@pytest.fixture(scope="module")
def lib():
    lib = runtime_library()
    lib.tc_log_softmax_s8.restype = ctypes.c_int
    lib.tc_log_softmax_s8.argtypes = [ctypes.c_void_p] * 4
    return lib


def c_log_softmax(lib, p, table, x, out=None):
    """Runs the C kernel; returns (status, output). `out` may be x itself (in place)."""
    x = np.ascontiguousarray(x, dtype=np.int8).reshape(-1)
    out = np.full(x.size, SENTINEL, np.int8) if out is None else out
    table = np.ascontiguousarray(table, dtype=np.int32)
    status = lib.tc_log_softmax_s8(ctypes.byref(CParams(**asdict(p))), ptr(table), ptr(x), ptr(out))
    return status, out


def float_reference(x, in_scale, in_zp=0, dequant_dtype=np.float32):
    """round(log_softmax(dequant(x)) / (16/256)) + 127, half away from zero, clamped."""
    real = float(np.float32(in_scale)) * (x.astype(np.float64) - in_zp)
    logits = torch.from_numpy(real.astype(dequant_dtype).astype(np.float64))
    y = torch.log_softmax(logits, dim=-1).numpy()
    return np.clip(round_half_away(y / OUT_SCALE) + OUT_ZP, -128, 127).astype(np.int64)


def input_rows(rng, depth):
    """Random rows plus the extremes: constant rows, two-level rows, one-hot, near-max clusters."""
    one_hot = np.full(depth, -128)
    one_hot[rng.integers(depth)] = 127
    rows = [rng.integers(-128, 128, depth), rng.integers(-128, 128, depth),
            np.clip(np.round(rng.normal(0, 25, depth)), -128, 127), np.full(depth, -128),
            np.full(depth, 127), np.where(np.arange(depth) % 2 == 0, 127, -128), one_hot,
            127 - rng.integers(0, 4, depth), rng.integers(-128, -120, depth)]
    return np.stack(rows).astype(np.int8)


# ---------------------------------------------------------------------------------------------
# C == golden, golden vs float


def test_params_dataclass_matches_c_struct():
    header = (RUNTIME / "tc_log_softmax.h").read_text()
    body = re.search(r"typedef struct \{([^{}]*)\}\s*tc_log_softmax_params;", header).group(1)
    c_fields = re.findall(r"int32_t\s+(\w+)\s*;", re.sub(r"/\*.*?\*/", "", body, flags=re.S))
    assert c_fields == [f.name for f in fields(LogSoftmaxParams)]
    assert LogSoftmaxParams.C_STRUCT == "tc_log_softmax_params"


def test_c_matches_golden_and_float_reference(lib):
    rng = np.random.default_rng(2025)
    total = rounded_exactly = 0
    for in_scale in IN_SCALES:
        table = make_log_softmax_exp_table(in_scale)
        for depth in DEPTHS:
            x = input_rows(rng, depth)
            in_zp = int(rng.integers(-128, 128))   # cancels in x - max: any zero point will do
            p = make_log_softmax_params(in_scale, x.shape[0], depth)
            want = log_softmax_s8(p, table, x)
            status, got = c_log_softmax(lib, p, table, x)
            assert status == TC_OK
            np.testing.assert_array_equal(got, want.reshape(-1), f"C vs golden s={in_scale} d={depth}")
            diff = np.abs(want.astype(np.int64) - float_reference(x, in_scale, in_zp))
            assert diff.max() <= 1, f"s={in_scale} depth={depth}: off by {diff.max()}"
            exact = float_reference(x, in_scale, in_zp, dequant_dtype=np.float64)
            np.testing.assert_array_equal(want, exact, f"vs double reference s={in_scale} d={depth}")
            total += diff.size
            rounded_exactly += int(np.sum(diff == 0))
    assert rounded_exactly >= 0.999 * total, f"{total - rounded_exactly} of {total} off by 1"


def test_random_scales_and_zero_points(lib):
    rng = np.random.default_rng(7)
    off_by_one = total = 0
    for _ in range(40):
        in_scale = float(np.float32(10.0 ** rng.uniform(-6, 3)))
        depth = int(rng.choice([3, 17, 100, 333]))
        x = rng.integers(-128, 128, (max(1, 3000 // depth), depth)).astype(np.int8)
        table = make_log_softmax_exp_table(in_scale)
        p = make_log_softmax_params(in_scale, x.shape[0], depth)
        want = log_softmax_s8(p, table, x)
        status, got = c_log_softmax(lib, p, table, x)
        assert status == TC_OK
        np.testing.assert_array_equal(got, want.reshape(-1), f"C vs golden s={in_scale} d={depth}")
        diff = np.abs(want.astype(np.int64) - float_reference(x, in_scale))
        assert diff.max() <= 1
        off_by_one += int(np.sum(diff))
        total += diff.size
    assert off_by_one <= 0.001 * total


def test_long_rows_and_in_place(lib):
    rng = np.random.default_rng(3)
    for depth, in_scale, x in [
        (70000, 0.05, np.full((1, 70000), 5, np.int8)),          # sum of exps 70000 * 2^30 > 2^46
        (5000, 0.002, rng.integers(-128, 128, (2, 5000)).astype(np.int8)),
        (4096, 1e-7, rng.integers(-128, 128, (1, 4096)).astype(np.int8)),
    ]:
        table = make_log_softmax_exp_table(in_scale)
        p = make_log_softmax_params(in_scale, x.shape[0], depth)
        want = log_softmax_s8(p, table, x)
        buf = x.copy().reshape(-1)
        status, _ = c_log_softmax(lib, p, table, buf, out=buf)
        assert status == TC_OK
        np.testing.assert_array_equal(buf, want.reshape(-1), f"in place depth={depth}")
        assert np.abs(want.astype(np.int64) - float_reference(x, in_scale)).max() <= 1


def test_closed_form_outputs(lib):
    table = make_log_softmax_exp_table(0.1)
    # n equal elements: log(1/n) each, i.e. 127 - round(16 ln n).
    for n in (1, 2, 3, 10, 1000, 4096):
        p = make_log_softmax_params(0.1, 1, n)
        want = 127 - round_half_away(16 * math.log(n))
        for fill in (-128, 0, 127):
            got = log_softmax_s8(p, table, np.full(n, fill, np.int8))
            assert np.all(got == max(-128, want)), (n, fill)
            assert np.array_equal(c_log_softmax(lib, p, table, np.full(n, fill, np.int8))[1], got)
    # A huge input scale: the maximum is certain (0 -> 127), everything else is -128.
    big = make_log_softmax_params(1e4, 1, 4)
    x = np.array([3, -7, 2, -128], np.int8)
    got = log_softmax_s8(big, make_log_softmax_exp_table(1e4), x)
    assert got.tolist() == [127, -128, -128, -128]
    # Two elements one input step apart: log(1 / (1 + e^-s)) and that minus s.
    s = 0.5
    p = make_log_softmax_params(s, 1, 2)
    got = log_softmax_s8(p, make_log_softmax_exp_table(s), np.array([1, 0], np.int8))
    top = -math.log1p(math.exp(-s))
    assert got.tolist() == [127 + round_half_away(16 * top), 127 + round_half_away(16 * (top - s))]


def test_integer_log2_against_float():
    one = LOG_SOFTMAX_EXP_ONE
    sums = np.array([one, one + 1, 3 * one // 2, 2 * one - 1, 2 * one, 12345 * one + 6789,
                     (1 << 61) - 1] + [int(v) for v in np.geomspace(one, 1 << 60, 1000)], np.int64)
    got = log_softmax_log2_q24(sums) / 2.0 ** 24
    want = np.array([math.log2(int(v)) - 30 for v in sums])
    assert np.max(np.abs(got - want)) < 2.0 ** -23
    assert log_softmax_log2_q24(np.array([one, 2 * one, 1 << 40])).tolist() == [0, 1 << 24, 10 << 24]


def test_offline_parameters():
    p = make_log_softmax_params(0.1, 3, 10)
    assert (p.out_zp, p.outer, p.depth) == (127, 3, 10)
    real_log2 = p.log2_multiplier * 2.0 ** (p.log2_shift - 31)
    assert abs(real_log2 - 16 * math.log(2)) < 1e-8
    real_diff = p.diff_multiplier * 2.0 ** (p.diff_shift - 31)
    assert abs(real_diff - float(np.float32(0.1)) * 16) < 1e-8
    # s_in / s_out capped at 512; flushed to 0 below 2^-32 (QuantizeMultiplier).
    assert (make_log_softmax_params(1e6, 1, 2).diff_multiplier,
            make_log_softmax_params(1e6, 1, 2).diff_shift) == (1 << 30, 10)
    assert make_log_softmax_params(1e-12, 1, 2).diff_multiplier == 0
    table = make_log_softmax_exp_table(0.1)
    assert table.dtype == np.int32 and table.shape == (256,) and table[0] == 1 << 30
    assert np.all(np.diff(table) <= 0) and table[-1] == round(math.exp(-25.5) * 2 ** 30)
    with pytest.raises(ValueError):
        make_log_softmax_params(0.1, 1, 2, out_scale=1e-12)    # ln 2 / s_out too large
    with pytest.raises(ValueError):
        make_log_softmax_params(0.0, 1, 2)


def _bad_cases():
    good = make_log_softmax_params(0.1, 2, 5)
    table = make_log_softmax_exp_table(0.1)
    cases = [(replace(good, depth=0), table), (replace(good, outer=-1), table),
             (replace(good, diff_shift=11), table), (replace(good, diff_shift=-32), table),
             (replace(good, diff_multiplier=-1), table), (replace(good, log2_shift=31), table),
             (replace(good, log2_shift=-28), table), (replace(good, log2_multiplier=-5), table),
             (replace(good, out_zp=128), table), (replace(good, out_zp=-129), table)]
    bad_table = table.copy()
    bad_table[0] -= 1
    cases.append((good, bad_table))
    return cases


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_parameters_are_rejected(lib, case):
    p, table = _bad_cases()[case]
    x = np.zeros(10, np.int8)
    with pytest.raises(ValueError):
        log_softmax_s8(p, table, x)
    status, out = c_log_softmax(lib, p, table, x)
    assert status == TC_ARG_ERROR and np.all(out == SENTINEL)


# ---------------------------------------------------------------------------------------------
# ASan / UBSan


def _c_initializer(p) -> str:
    return "{" + ", ".join(f".{k} = {int(v)}" for k, v in asdict(p).items()) + "}"


def _c_array(name, a, ctype):
    return f"static const {ctype} {name}[{a.size}] = {{{', '.join(map(str, a.reshape(-1).tolist()))}}};"


def _sanitizer_driver() -> str:
    """Golden-checked cases, then a table with every entry at the uint32 maximum on a long row:
    meaningless output, but it must run free of undefined behaviour."""
    rng = np.random.default_rng(11)
    blocks, calls = [], []
    for k, (in_scale, depth) in enumerate([(1e-7, 3), (0.1, 1000), (40.0, 10), (3.0, 1)]):
        x = input_rows(rng, depth)
        table = make_log_softmax_exp_table(in_scale)
        p = make_log_softmax_params(in_scale, x.shape[0], depth)
        blocks += [f"static const tc_log_softmax_params P{k} = {_c_initializer(p)};",
                   _c_array(f"T{k}", table, "int32_t"), _c_array(f"X{k}", x, "int8_t"),
                   _c_array(f"W{k}", log_softmax_s8(p, table, x), "int8_t")]
        calls.append(f"""    {{
        int8_t *out = (int8_t *)malloc(sizeof W{k});
        if (out == NULL || tc_log_softmax_s8(&P{k}, T{k}, X{k}, out) != TC_OK
            || memcmp(out, W{k}, sizeof W{k}) != 0) {{
            printf("case {k} failed\\n");
            ++failures;
        }}
        free(out);
    }}""")
    worst = make_log_softmax_params(40.0, 1, 300000)
    return "\n".join([
        "#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>",
        '#include "tc_log_softmax.h"', "", *blocks, "",
        f"static const tc_log_softmax_params WORST = {_c_initializer(worst)};",
        "int main(void) {", "    int failures = 0;", *calls,
        "    {",
        "        static int32_t table[256];",
        "        int8_t *row = (int8_t *)malloc(300000);",
        "        int i;",
        "        for (i = 0; i < 256; ++i) table[i] = -1;",
        "        table[0] = TC_LOG_SOFTMAX_EXP_ONE;",
        "        if (row == NULL) return 2;",
        "        for (i = 0; i < 300000; ++i) row[i] = (int8_t)(i % 2 ? -128 : 127);",
        "        if (tc_log_softmax_s8(&WORST, table, row, row) != TC_OK) ++failures;",
        "        free(row);",
        "    }",
        '    if (failures == 0) printf("ALL OK\\n");', "    return failures != 0;", "}", ""])


def test_kernel_under_asan_ubsan(tmp_path):
    cc = c_compiler()
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    if shutil.which(cc) is None or subprocess.run(
            [cc, "-fsanitize=address,undefined", str(probe), "-o", str(tmp_path / "probe")],
            capture_output=True).returncode != 0:
        pytest.skip(f"{cc} cannot build -fsanitize=address,undefined programs here")
    driver = tmp_path / "driver.c"
    driver.write_text(_sanitizer_driver())
    exe = tmp_path / "driver"
    build = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1",
                            "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                            "-fno-sanitize-recover=all", f"-I{RUNTIME}", str(driver),
                            str(RUNTIME / "tc_log_softmax_s8.c"), "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60,
                         env={"ASAN_OPTIONS": "detect_leaks=1"})
    assert run.returncode == 0 and "ALL OK" in run.stdout and not run.stderr, \
        run.stdout[-2000:] + run.stderr[-4000:]


# ---------------------------------------------------------------------------------------------
# End to end: ONNX -> int8 program -> generated C


def _conv_gemm_log_softmax(path, classes=7):
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.4, (4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "b")
    fw = numpy_helper.from_array(rng.normal(0, 0.3, (classes, 4 * 5 * 5)).astype(np.float32), "fw")
    fb = numpy_helper.from_array(rng.normal(0, 0.5, classes).astype(np.float32), "fb")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Flatten", ["c"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1),
             helper.make_node("LogSoftmax", ["logits"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "conv_gemm_log_softmax",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, classes])],
                              [w, b, fw, fb])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_end_to_end_golden_equals_generated_c(tmp_path):
    from tinycc.compiler import QuantOptions
    from tinycc.engines import CompiledModel
    from tinycc.frontend import load_graph
    from tinycc.passes import run_pipeline
    from tinycc.reference.float_exec import run_float

    g = run_pipeline(load_graph(_conv_gemm_log_softmax(tmp_path / "m.onnx")))
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "calib.npz", x=rng.normal(0, 1, (16, 1, 3, 10, 10)).astype(np.float32))
    model = CompiledModel(g, QuantOptions(calib=str(tmp_path / "calib.npz")), warn=pytest.fail)
    step = model.program.steps[-1]
    assert step.kernel == "tc_log_softmax_s8"
    out_quant = model.program.tensors[step.outputs[0]].quant.scalar()
    assert (float(out_quant[0]), int(out_quant[1])) == (OUT_SCALE, OUT_ZP)
    for seed in range(3):
        x = {"x": np.random.default_rng(seed).normal(0, 1, (1, 3, 10, 10)).astype(np.float32)}
        golden = model.run_int8(x)
        from cbuild import require_sanitizers

        require_sanitizers()  # the checked harness (make check) uses ASan/UBSan
        c_outs, _ = model.run_c(x, check=True)
        np.testing.assert_array_equal(c_outs["y"], golden["y"])
        y = model.logical("y", golden["y"], dequantize=True)
        ref = run_float(g, x)["y"]
        visible = ref > -15.0                          # below that the output saturates at -128
        assert np.max(np.abs(y - ref)[visible]) < 0.5
