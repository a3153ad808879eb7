"""The int8 conv / depthwise / fully connected kernels as built for a real Cortex-M, under QEMU.

tests/test_kernels_dsp.py checks the DSP fast paths on the host through the C emulation of the
instructions (TC_EMULATE_DSP), which cannot run the GNU inline assembly of a real build. Here
the kernels are cross-compiled for the core (arm-none-eabi-gcc, the core's -mcpu/-mfpu flags,
-O2: the instructions and any hand-written assembly blocks), linked with a bare-metal driver
(tests/c/qemu_kernels_driver.c) and randomized and targeted cases embedded as C arrays, run on
the core's QEMU board with semihosting, and every output is compared bit for bit with the numpy
golden model (tinycc/ops/conv.py, tinycc/ops/dense.py).
"""
from __future__ import annotations

import subprocess
from dataclasses import astuple
from pathlib import Path

import jinja2
import numpy as np
import pytest

from cbuild import RUNTIME, kernel_sources
from test_kernels_conv import AVGPOOL_DSP_TARGETED, MAXPOOL_DSP_TARGETED, avgpool_case, maxpool_case
from test_kernels_dsp import (CONV_TARGETED, DW_INPLACE_TARGETED, DW_TARGETED, FC_TARGETED, KINDS,
                              TC_OK, assert_bit_exact, dsp_path_expected, name_seed)
from tinycc import __version__
from tinycc.ops.eltwise import add_s8, add_tables, make_add_params, make_mul_params, mul_s8
from tinycc.ops.pool import avgpool_s8, maxpool_s8
from tinycc.resources import data_dir
from tinycc.sim.host import BuildError
from tinycc.sim.qemu import ARM_PREFIX, missing_tools, run_elf
from tinycc.target import get_core, memory_for

TESTS_C = Path(__file__).resolve().parent / "c"
KERNEL_SOURCES = tuple(kernel_sources("tc_conv2d_s8", "tc_dwconv2d_s8", "tc_fc_s8", "tc_maxpool_s8",
                                      "tc_avgpool_s8", "tc_add_s8", "tc_add_s8_table", "tc_mul_s8"))
KIND_CODES = {"conv": "QK_CONV", "dw": "QK_DWCONV", "fc": "QK_FC", "dw_inplace": "QK_DWCONV_INPLACE",
              "maxpool": "QK_MAXPOOL", "add": "QK_ADD", "mul": "QK_MUL", "avgpool": "QK_AVGPOOL",
              "add_table": "QK_ADD_TABLE"}


def _maxpool_case(seed, **kwargs):
    """A max pool case in the (params, x, w, bias, mult, shift) shape of the others."""
    p, x = maxpool_case(seed, **kwargs)
    return p, x, None, None, None, None


def _avgpool_case(seed, **kwargs):
    """An average pool case in the (params, x, w, bias, mult, shift) shape of the others;
    padded windows count the padding (a requantized mean refuses windows of fewer taps)."""
    if kwargs.get("pads", (0, 0, 0, 0)) != (0, 0, 0, 0):
        kwargs.setdefault("count_include_pad", 1)
    p, x, _ = avgpool_case(seed, **kwargs)
    return p, x, None, None, None, None


def _binary_case(make):
    """ADD / MUL cases: (params, a, b) in the (params, x, w, ...) shape, b in the w slot."""
    def case(seed, shape=(1, 4, 6, 16), scales=None, zps=None, act=(-128, 127)):
        rng = np.random.default_rng(seed)
        s1, s2, s_out = scales or (0.02, float(np.float32(0.02 * 10 ** rng.uniform(-1, 1))), 0.03)
        z1, z2, zo = zps or tuple(int(v) for v in rng.integers(-128, 128, 3))
        p = make(s1, z1, s2, z2, s_out, zo, shape, shape, act_min=act[0], act_max=act[1])
        a, b = (rng.integers(-128, 128, shape).astype(np.int8) for _ in range(2))
        return p, a, b, None, None, None
    return case


def _add_table_case(seed, **kwargs):
    """An ADD case for tc_add_s8_table: its tables (add_tables) in the bias slot."""
    p, a, b, *_ = _binary_case(make_add_params)(seed, **kwargs)
    return p, a, b, add_tables(p), None, None


# test_kernels_dsp.KINDS plus max pool, add, mul, average pool: (case maker, C name, golden, output shape)
QEMU_KINDS = {**KINDS, "maxpool": (_maxpool_case, "tc_maxpool_s8", lambda p, x, *_: maxpool_s8(p, x),
                                   lambda p: (p.out_h, p.out_w, p.channels)),
              "add": (_binary_case(make_add_params), "tc_add_s8", lambda p, a, b, *_: add_s8(p, a, b),
                      lambda p: tuple(p.out_dims)),
              "add_table": (_add_table_case, "tc_add_s8_table", lambda p, a, b, *_: add_s8(p, a, b),
                            lambda p: tuple(p.out_dims)),
              "mul": (_binary_case(make_mul_params), "tc_mul_s8", lambda p, a, b, *_: mul_s8(p, a, b),
                      lambda p: tuple(p.out_dims)),
              "avgpool": (_avgpool_case, "tc_avgpool_s8", lambda p, x, *_: avgpool_s8(p, x),
                          lambda p: (p.out_h, p.out_w, p.channels))}


def _flat_params(p) -> list[int]:
    """The params struct's int32 fields in order, arrays (Dims4) flattened."""
    out = []
    for v in astuple(p):
        out += list(v) if isinstance(v, (tuple, list)) else [v]
    return out


def golden(kind, case):
    return QEMU_KINDS[kind][2](*case)
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffunction-sections",
          "-fdata-sections"]

_MISSING = missing_tools(run=True)
pytestmark = pytest.mark.skipif(_MISSING is not None,
                                reason=f"Cortex-M toolchain or QEMU unavailable: {_MISSING}")

# Shapes aimed at the Cortex-M conv blocks: the pointwise and first-layer shapes of the MLPerf
# Tiny models, window depths around the 144-value chunk of the gathered path (one chunk
# exactly, one chunk plus a short group, several chunks with more than 32 output channels),
# odd numbers of 4-value groups and of output channels, and accumulators at their extremes.
CONV_QEMU = {
    "pointwise_in_c_8_out_c_16": dict(in_hw=(6, 6), k=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0),
                                      in_c=8, out_c=16, groups=1),
    "pointwise_in_c_16_out_c_9": dict(in_hw=(5, 5), k=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0),
                                      in_c=16, out_c=9, groups=1),
    "pointwise_in_c_12_odd_groups": dict(in_hw=(3, 5), k=(1, 1), stride=(1, 1),
                                         pads=(0, 0, 0, 0), in_c=12, out_c=6, groups=1),
    "pointwise_in_c_64_out_c_12": dict(in_hw=(4, 5), k=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0),
                                       in_c=64, out_c=12, groups=1),
    "pointwise_in_c_150_tail_2": dict(in_hw=(3, 3), k=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0),
                                      in_c=150, out_c=5, groups=1),
    "pointwise_in_c_32_s2": dict(in_hw=(7, 7), k=(1, 1), stride=(2, 2), pads=(0, 0, 0, 0),
                                 in_c=32, out_c=10, groups=1),
    "shallow_in_c_8_out_c_16_one_block": dict(in_hw=(6, 6), k=(1, 1), stride=(1, 1),
                                              dil=(1, 1), pads=(0, 0, 0, 0), in_c=8, out_c=16,
                                              groups=1, regime="normal", act="full"),
    "shallow_in_c_4_two_blocks_odd": dict(in_hw=(5, 29), k=(1, 1), stride=(1, 1), dil=(1, 1),
                                          pads=(0, 0, 0, 0), in_c=4, out_c=5, groups=1,
                                          regime="normal", act="full"),
    "shallow_in_c_3_s2": dict(in_hw=(9, 8), k=(1, 1), stride=(2, 2), dil=(1, 1),
                              pads=(0, 0, 0, 0), in_c=3, out_c=7, groups=1, regime="normal",
                              act="full"),
    "first_conv_3x3_in_c_3": dict(in_hw=(8, 8), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                  pads=(1, 1, 1, 1), in_c=3, out_c=8, groups=1),
    "first_conv_3x3_s2_in_c_3_out_c_5": dict(in_hw=(9, 9), k=(3, 3), stride=(2, 2),
                                             dil=(1, 1), pads=(1, 1, 1, 1), in_c=3, out_c=5,
                                             groups=1),
    "3x3_in_c_16_one_full_chunk": dict(in_hw=(5, 6), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                       pads=(1, 1, 1, 1), in_c=16, out_c=6, groups=1),
    "3x3_in_c_17_chunk_and_tail": dict(in_hw=(5, 5), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                       pads=(1, 1, 1, 1), in_c=17, out_c=5, groups=1),
    "3x3_s2_in_c_32_out_c_36_deep": dict(in_hw=(7, 7), k=(3, 3), stride=(2, 2), dil=(1, 1),
                                         pads=(1, 1, 1, 1), in_c=32, out_c=36, groups=1),
    "out_c_1": dict(in_hw=(4, 4), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                    in_c=8, out_c=1, groups=1),
    "out_c_2_odd_pixels": dict(in_hw=(3, 3), k=(3, 3), stride=(1, 1), dil=(1, 1),
                               pads=(1, 1, 1, 1), in_c=6, out_c=2, groups=1),
    "extremes_in_c_64": dict(in_hw=(3, 4), k=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0),
                             in_c=64, out_c=6, groups=1, in_zp=-128, style="extremes",
                             w_range=(-128, 127), regime="saturate", act="full"),
    "extremes_in_zp_127_3x3": dict(in_hw=(4, 4), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                   pads=(1, 1, 1, 1), in_c=12, out_c=4, groups=1, in_zp=127,
                                   style="extremes", w_range=(-128, 127)),
    "bias_near_limit_in_c_32": dict(in_hw=(3, 3), k=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0),
                                    in_c=32, out_c=6, groups=1, bias="near_limit",
                                    regime="normal"),
    "large_multipliers_in_c_24": dict(in_hw=(3, 4), k=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0),
                                      in_c=24, out_c=7, groups=1, regime="large"),
    "relu_in_c_20": dict(in_hw=(4, 4), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                         in_c=20, out_c=6, groups=1, act="relu"),
    # shifts -1..1 (ternary layers): QADD / SMMLAR in tc_conv2d_pairs_near_asm and the shallow
    # loops (tc_conv2d_shallow{4,8}{,z}_asm), edge accumulators through zero weights
    "near_mixed_in_c_32_odd_out_c": dict(in_hw=(3, 5), k=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0),
                                         in_c=32, out_c=13, groups=1, regime="mixed_near",
                                         act="full", style="around_zp", w_range=(-2, 2)),
    "near_edges_3x3_in_c_4": dict(in_hw=(3, 3), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                  pads=(1, 1, 1, 1), in_c=4, out_c=40, groups=1,
                                  regime="mixed_near", act="full", w_range=(0, 0), bias="edges"),
    "shallow_near_edges_in_c_8": dict(in_hw=(3, 3), k=(1, 1), stride=(1, 1), dil=(1, 1),
                                      pads=(0, 0, 0, 0), in_c=8, out_c=40, groups=1,
                                      regime="mixed_near", act="full", w_range=(0, 0),
                                      bias="edges"),
    "shallow_near_in_c_8_blocks": dict(in_hw=(7, 11), k=(1, 1), stride=(1, 1), dil=(1, 1),
                                       pads=(0, 0, 0, 0), in_c=8, out_c=6, groups=1,
                                       regime="near", act="full", style="around_zp",
                                       w_range=(-3, 3)),
    "shallow_near_in_c_2_odd": dict(in_hw=(3, 5), k=(1, 1), stride=(1, 1), dil=(1, 1),
                                    pads=(0, 0, 0, 0), in_c=2, out_c=7, groups=1,
                                    regime="mixed_near", act="full", style="around_zp",
                                    w_range=(-6, 6)),
}
# ADD and MUL rows (tc_add_s8_dsp.c, tc_mul_s8_dsp.c): equal scales (both operand shifts 0), the
# second scale the larger, outputs beyond tc_dsp_rq's shift range (the portable row), a clamp.
BINARY_TARGETED = {
    "equal_scales": dict(scales=(0.02, 0.02, 0.05)),
    "second_larger": dict(scales=(0.004, 0.03, 0.02)),
    "clamped": dict(act=(-40, 90)),
    "clamped_below_only": dict(act=(-10, 127)),  # a ReLU: the loops with one compare
    "clamped_above_only": dict(act=(-128, 70)),
    "extreme_zero_points": dict(zps=(-128, 127, -128)),
}
ADD_TARGETED = {**BINARY_TARGETED, "output_shift_beyond_rq": dict(scales=(0.02, 0.01, 5.0))}  # -27
MUL_TARGETED = {**BINARY_TARGETED, "output_shift_beyond_rq": dict(scales=(0.02, 0.01, 1e-5))}  # +5
RANDOM_CASES = {"conv": 90, "dw": 30, "dw_inplace": 15, "fc": 30, "maxpool": 12, "add": 6, "mul": 6,
                "avgpool": 12, "add_table": 4}
FIRST_SEED = 70_000  # other seeds than the host tests'
TARGETED = {"conv": {**CONV_TARGETED, **CONV_QEMU}, "dw": DW_TARGETED, "dw_inplace": DW_INPLACE_TARGETED,
            "fc": FC_TARGETED, "maxpool": MAXPOOL_DSP_TARGETED, "add": ADD_TARGETED, "mul": MUL_TARGETED,
            "avgpool": AVGPOOL_DSP_TARGETED, "add_table": ADD_TARGETED}


def qemu_cases():
    """(kind, case id, case) for the randomized and targeted cases of each kernel."""
    cases = []
    for kind in RANDOM_CASES:
        make = QEMU_KINDS[kind][0]
        cases += [(kind, f"random{seed}", make(FIRST_SEED + seed))
                  for seed in range(RANDOM_CASES[kind])]
        cases += [(kind, name, make(name_seed(name), **kwargs))
                  for name, kwargs in TARGETED[kind].items()]
    return cases


# ---------------------------------------------------------------------------------------------
# The image: the cases as C arrays, the driver, the kernels and the harness's startup code


def _c_int(v: int) -> str:
    return "(-2147483647 - 1)" if v == -2**31 else str(int(v))


def _c_array(ctype: str, name: str, values) -> str:
    body = ",".join(_c_int(v) for v in np.asarray(values).reshape(-1).tolist())
    return f"static const {ctype} {name}[] = {{{body}}};\n"


def cases_source(cases) -> str:
    """qemu_kernels_cases.c: every case's arrays and the table the driver walks."""
    out = ['#include "qemu_kernels_cases.h"\n\n']
    rows = []
    results = 0
    for i, (kind, _, (p, x, w, bias, mult, shift)) in enumerate(cases):
        out.append(_c_array("int32_t", f"p{i}", _flat_params(p)))
        out.append(_c_array("int8_t", f"x{i}", x))
        names = []
        for prefix, ctype, values in (("w", "int8_t", w), ("b", "int32_t", bias), ("m", "int32_t", mult),
                                      ("s", "int32_t", shift)):
            if values is not None:
                out.append(_c_array(ctype, f"{prefix}{i}", values))
            names.append("NULL" if values is None else f"{prefix}{i}")
        out_len = int(np.prod(QEMU_KINDS[kind][3](p)))
        rows.append(f"    {{{KIND_CODES[kind]}, p{i}, x{i}, {', '.join(names)}, {out_len}}},\n")
        results += 1 + out_len
    out.append("\nconst qk_case qk_cases[] = {\n" + "".join(rows) + "};\n")
    out.append(f"const int32_t qk_case_count = {len(cases)};\n")
    out.append(f"int8_t qk_results[{results}];\n")
    inplace = [p for kind, _, (p, *_) in cases if kind == "dw_inplace"]
    out.append(f"int8_t qk_inplace_buf[{max([p.in_h * p.in_w * p.in_c for p in inplace], default=1)}];\n")
    out.append(f"int8_t qk_scratch[{max([p.in_h * p.in_w for p in inplace], default=1)}];\n")
    return "".join(out)


def render_harness(core, folder: Path) -> None:
    """The linker script, startup code and semihosting of generated projects (templates/arm)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir("templates") / "arm")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    view = dict(version=__version__, prefix="qemu_kernels", core=core,
                memory=memory_for(core, core.sram_capacity, None), stream=None)  # no streamed input
    for name in ("link.ld", "startup.c", "tc_semihost.c", "tc_target.h"):
        (folder / name).write_text(env.get_template(f"{name}.j2").render(**view))


def build_image(core, cases, folder: Path, defines: tuple[str, ...] = ()) -> Path:
    render_harness(core, folder)
    (folder / "qemu_kernels_cases.c").write_text(cases_source(cases))
    elf = folder / "qemu_kernels.elf"
    sources = [folder / "startup.c", folder / "tc_semihost.c", folder / "qemu_kernels_cases.c",
               TESTS_C / "qemu_kernels_driver.c", *(RUNTIME / s for s in KERNEL_SOURCES)]
    cmd = [f"{ARM_PREFIX}gcc", *core.cpu_flags, *CFLAGS, *(f"-D{d}" for d in defines), f"-I{RUNTIME}",
           f"-I{TESTS_C}",
           f"-I{folder}", "-nostartfiles", "-T", str(folder / "link.ld"), "-Wl,--gc-sections",
           "-Wl,--no-warn-rwx-segments", "-o", str(elf), *map(str, sources)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"cross-compiling the kernel test image failed:\n{r.stderr}")
    return elf


def split_results(cases, data: bytes):
    """(status, output) per case, from the driver's output0.bin."""
    offset = 0
    for kind, _, case in cases:
        shape = QEMU_KINDS[kind][3](case[0])
        n = int(np.prod(shape))
        status = int(np.frombuffer(data, dtype=np.int8, count=1, offset=offset)[0])
        y = np.frombuffer(data, dtype=np.int8, count=n, offset=offset + 1).reshape(shape)
        offset += 1 + n
        yield status, y
    assert offset == len(data)


# ---------------------------------------------------------------------------------------------


CASES = qemu_cases()


def test_cases_exercise_the_dsp_paths():
    for kind in RANDOM_CASES:
        of_kind = [case[0] for k, _, case in CASES if k == kind]
        fast = sum(dsp_path_expected(kind, p) for p in of_kind)
        assert 0.5 * len(of_kind) <= fast < len(of_kind), (kind, fast, len(of_kind))
    deep = [p for k, _, (p, *_) in CASES if k == "conv" and p.groups == 1 and p.dil_w == 1
            and p.k_h * p.k_w * p.in_c > 144]
    assert len(deep) >= 3


@pytest.mark.parametrize("core_name", ["cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "cortex-m3"])
def test_kernels_on_cortex_m_match_golden(tmp_path, core_name):
    core = get_core(core_name)
    elf = build_image(core, CASES, tmp_path)
    expected = [golden(kind, case) for kind, _, case in CASES]
    total = sum(1 + y.size for y in expected)
    run = run_elf(elf, core, [], [total], count=False, timeout=60)
    for (kind, case_id, case), want, (status, got) in zip(CASES, expected,
                                                         split_results(CASES, run.outputs[0])):
        assert status == TC_OK, (kind, case_id, case[0])
        assert_bit_exact(got, want, f"{core_name} {kind} {case_id} {case[0]}")
