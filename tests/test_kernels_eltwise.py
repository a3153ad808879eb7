"""Element-wise and data-movement int8 kernels: C runtime vs numpy golden, golden vs references.

Checks per kernel:
  1. C (runtime_c via ctypes) == golden mirror, bit for bit, on randomized and targeted cases
     (broadcasting, extreme zero points, scale ratios 1e-3..1e3, saturation, clamps, in place).
  2. Golden vs independent references: float math (within 1 LSB) for add/sub/mul/lut/
     requantize/softmax, numpy for pad/transpose/slice/concat (exact), onnxruntime for the
     Resize index tables, and TFLite reference softmax outputs published with CMSIS-NN.
  3. Parameter structs: dataclass fields == C struct fields; bad parameters give TC_ARG_ERROR
     in C (nothing written) and ValueError in the golden.
  4. A standalone driver built with AddressSanitizer + UndefinedBehaviorSanitizer whose
     parameters are emitted as C99 designated initializers, as the code generator will.
"""
from __future__ import annotations

import ctypes
import dataclasses
import itertools
import re
import shutil
import subprocess
from dataclasses import asdict, fields
from functools import partial

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from cbuild import RUNTIME, c_compiler, kernel_sources, ptr, runtime_library
from tinycc.golden.arith import quantize_multiplier, round_half_away
from tinycc.kernels import all_kernels
from tinycc.golden.boundary import dequantize, quantize
from tinycc.golden.fixedpoint import (fp_exp_on_negative_values_q5, fp_get_reciprocal,
                                      fp_one_over_one_plus_x_for_x_in_0_1)
from tinycc.ops.activation import (LutParams, clip, hardsigmoid, hardswish, leaky_relu, lut_s8, make_lut,
                                   relu, sigmoid, tanh)
from tinycc.ops.concat import (ConcatPartParams, UNIT_MULTIPLIER, UNIT_SHIFT, concat_s8_part,
                               make_concat_params)
from tinycc.ops.eltwise import (AddParams, MulParams, add_s8, add_table_s8, add_tables, broadcast_dims,
                                make_add_params, make_mul_params, make_sub_params, mul_s8, sub_s8)
from tinycc.ops.pad import PadParams, make_pad_params, pad_s8
from tinycc.ops.requantize import RequantizeParams, make_requantize_params, requantize_s8
from tinycc.ops.resize import (ResizeNearestParams, make_resize_nearest_params, nearest_indices,
                               resize_nearest_s8)
from tinycc.ops.shape import TransposeParams, make_transpose_params, transpose_s8
from tinycc.ops.slicing import SliceParams, make_slice_params, make_split_params, onnx_slice_params, slice_s8
from tinycc.ops.softmax import SoftmaxParams, make_softmax_params, softmax_s8

TC_OK, TC_ARG_ERROR = 0, -1
SENTINEL = 0x5A   # output buffers start with it, so "wrote nothing" is observable
# The kernels of this file: every declared kernel (tinycc/kernels.py) of the element-wise and
# data-movement headers. Their params structs, argument counts and sources come from the
# declarations; each must have a bad-parameter case and a sanitizer case (checked below).
KERNELS = {name: d for name, d in all_kernels().items() if d.header in ("tc_eltwise.h", "tc_tensor.h")}
PARAM_HEADERS = {d.params: d.header for d in KERNELS.values()}

# ---------------------------------------------------------------------------------------------
# ctypes plumbing

_struct_types: dict[str, type] = {}


def c_struct(p):
    """The C struct mirrored by dataclass `p` (int32 fields, int32[4] for tuple fields)."""
    values = asdict(p)
    cls = _struct_types.get(p.C_STRUCT)
    if cls is None:
        spec = [(k, ctypes.c_int32 * len(v) if isinstance(v, tuple) else ctypes.c_int32)
                for k, v in values.items()]
        cls = _struct_types[p.C_STRUCT] = type(p.C_STRUCT, (ctypes.Structure,),
                                               {"_fields_": spec})
    s = cls()
    for k, v in values.items():
        if isinstance(v, tuple):
            getattr(s, k)[:] = v
        else:
            setattr(s, k, v)
    return s


@pytest.fixture(scope="module", params=[(), ("TC_PORTABLE_SPEC",)], ids=["fast", "spec"])
def lib(request):
    """The host build takes the fast portable variants (tc_*_fast.c, e.g. ADD/SUB's rows), or
    with -DTC_PORTABLE_SPEC the readable reference alone: both must equal the golden model."""
    lib = runtime_library(defines=list(request.param))
    for name, decl in KERNELS.items():
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p] * (len(decl.args) + 1)
    return lib


@pytest.fixture(scope="module")
def dsp_lib():
    """The kernels with their DSP variants on the emulated instructions (TC_EMULATE_DSP): the
    rows of ADD/SUB (one multiply per rescaling) and MUL."""
    lib = runtime_library(defines=["TC_EMULATE_DSP"])
    for name, decl in KERNELS.items():
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p] * (len(decl.args) + 1)
    return lib


def call(lib, name, p, *arrays):
    """Calls a kernel; every argument after the params is a numpy array (or None)."""
    args = [None if a is None else ptr(a) for a in arrays]
    return getattr(lib, name)(ctypes.byref(c_struct(p)), *args)


def out_buffer(n):
    return np.full(n, SENTINEL, dtype=np.int8)


def assert_bit_exact(actual, expected, what):
    actual, expected = np.asarray(actual).reshape(-1), np.asarray(expected).reshape(-1)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    bad = np.flatnonzero(actual != expected)
    assert bad.size == 0, (f"{what}: {bad.size} mismatches, first at {bad[0]}: "
                           f"got {actual[bad[0]]}, want {expected[bad[0]]}")


def assert_within_one_lsb(actual, expected, what):
    diff = np.abs(np.asarray(actual, np.int64).reshape(-1)
                  - np.asarray(expected, np.int64).reshape(-1))
    assert diff.max(initial=0) <= 1, f"{what}: off by {diff.max()} at {int(np.argmax(diff))}"


def rand_int8(rng, shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)


def rand_zp(rng):
    return int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))


def log_uniform(rng, lo, hi):
    return float(np.float32(10.0 ** rng.uniform(np.log10(lo), np.log10(hi))))


def float_requant(real, s_out, zp_out, act_min=-128, act_max=127):
    """Exact real value -> int8 (round half away from zero), the ideal every kernel approaches."""
    return np.clip(round_half_away(real / s_out) + zp_out, act_min, act_max)


# ---------------------------------------------------------------------------------------------
# Parameter structs mirror the C headers


def _c_struct_fields(header_text, struct_name):
    m = re.search(r"typedef struct \{([^{}]*)\}\s*" + struct_name + ";", header_text)
    assert m, f"{struct_name} not found"
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    return re.findall(r"int32_t\s+(\w+)(?:\[(\d+)\])?\s*;", body)


@pytest.mark.parametrize("cls", list(PARAM_HEADERS), ids=lambda c: c.__name__)
def test_param_dataclass_matches_c_struct(cls):
    header = (RUNTIME / PARAM_HEADERS[cls]).read_text()
    c_fields = _c_struct_fields(header, cls.C_STRUCT)
    py_fields = [f.name for f in fields(cls)]
    assert [name for name, _ in c_fields] == py_fields
    py_types = {f.name: str(f.type) for f in fields(cls)}
    for name, size in c_fields:   # array members are exactly the Dims4 fields
        assert (size == "4") == ("Dims4" in py_types[name]), name


# ---------------------------------------------------------------------------------------------
# ADD / SUB / MUL

BROADCAST_SHAPES = [
    ([1, 7, 7, 32], [1, 1, 1, 32]),   # squeeze-excite channel scale
    ([1, 1, 1, 16], [1, 5, 5, 16]),   # broadcast operand first
    ([2, 3, 8], [8]),                 # rank mismatch
    ([1], [1, 4, 4, 8]),              # scalar
    ([3, 1, 5], [1, 4, 1]),           # both operands broadcast
    ([1, 5, 6, 7], [1, 5, 6, 7]),     # equal shapes
    ([4, 1, 3, 1], [1, 2, 1, 6]),     # alternating broadcast axes
    ([2, 3, 4, 5], [2, 1, 4, 1]),
]


def binary_case(rng, shape1, shape2, make):
    s1 = log_uniform(rng, 1e-3, 1e-1)
    s2 = float(np.float32(s1 * log_uniform(rng, 1e-3, 1e3)))
    s_out = float(np.float32(max(s1, s2) * log_uniform(rng, 1e-2, 1e1)))
    zp1, zp2, zp_out = rand_zp(rng), rand_zp(rng), rand_zp(rng)
    act = rng.integers(0, 3)
    act_min, act_max = [(-128, 127), (zp_out, 127),
                        (max(-128, zp_out - 20), min(127, zp_out + 40))][act]
    act_min, act_max = min(act_min, act_max), max(act_min, act_max)
    p = make(s1, zp1, s2, zp2, s_out, zp_out, shape1, shape2, act_min=act_min, act_max=act_max)
    a, b = rand_int8(rng, shape1), rand_int8(rng, shape2)
    real_a = dequantize(a, s1, zp1).astype(np.float64)
    real_b = dequantize(b, s2, zp2).astype(np.float64)
    return p, a, b, real_a, real_b, (s_out, zp_out, act_min, act_max)


OPS = {
    "add": ("tc_add_s8", make_add_params, add_s8, np.add),
    "sub": ("tc_sub_s8", make_sub_params, sub_s8, np.subtract),
    "mul": ("tc_mul_s8", make_mul_params, mul_s8, np.multiply),
}


@pytest.mark.parametrize("op", list(OPS))
def test_binary_c_matches_golden_and_float(lib, dsp_lib, op):
    c_name, make, golden, real_op = OPS[op]
    rng = np.random.default_rng(1234 + len(op))
    for trial in range(12):
        for shape1, shape2 in BROADCAST_SHAPES:
            p, a, b, ra, rb, (s_out, zp_out, lo, hi) = binary_case(rng, shape1, shape2, make)
            want = golden(p, a, b)
            for kernels in (lib, dsp_lib):
                out = out_buffer(want.size)
                assert call(kernels, c_name, p, a, b, out) == TC_OK
                assert_bit_exact(out, want, f"{op} C vs golden {shape1} {shape2} {p}")
            ideal = float_requant(real_op(ra, rb), s_out, zp_out, lo, hi)
            assert_within_one_lsb(want, ideal, f"{op} golden vs float {p}")


@pytest.mark.parametrize("op", list(OPS))
def test_binary_dsp_rows_every_shift_case(lib, dsp_lib, op):
    """The DSP rows' cases: the operand shift 0 (the larger scale's multiplier is 0.5) on
    either side or on both (equal scales), output shifts inside tc_dsp_rq's range [-23, -2] and
    outside it (the portable row), clamped and unclamped activations, rows of a multiple of 4
    elements and not; the same layers on the fast portable rows (tc_add_s8_fast.c) and the spec
    (`lib`)."""
    c_name, make, golden, _ = OPS[op]
    rng = np.random.default_rng(99 + len(op))
    seen = set()
    for shape, s1, s2 in [(shape, s1, s2) for shape in ([1, 3, 5, 16], [1, 1, 3, 7])
                          for s1, s2 in ((0.02, 0.02), (0.02, 0.005), (0.005, 0.02), (0.03, 0.0299),
                                         (0.01, 0.04))]:
        for s_out in (1e-5, 3e-4, 0.01, 0.5, 40.0):
            for act_min, act_max in ((-128, 127), (-20, 127), (-128, 60), (-50, 60)):
                p = make(s1, int(rng.integers(-128, 128)), s2, int(rng.integers(-128, 128)), s_out,
                         int(rng.integers(-128, 128)), shape, shape, act_min=act_min, act_max=act_max)
                a, b = rand_int8(rng, shape), rand_int8(rng, shape)
                want = golden(p, a, b)
                for kernels in (dsp_lib, lib):
                    out = out_buffer(want.size)
                    assert call(kernels, c_name, p, a, b, out) == TC_OK
                    assert_bit_exact(out, want, f"{op} row {p}")
                if op != "mul":
                    seen.add((p.in1_shift == 0, p.in2_shift == 0))
                seen.add(-23 <= p.out_shift <= -2)
    assert {True, False} <= seen
    if op != "mul":
        assert {(True, True), (True, False), (False, True)} <= seen


@pytest.mark.parametrize("op", list(OPS))
def test_binary_saturation_and_extreme_zero_points(lib, dsp_lib, op):
    c_name, make, golden, real_op = OPS[op]
    for zp1, zp2, zp_out in [(-128, -128, 127), (127, 127, -128), (-128, 127, 0)]:
        a = np.array([-128, 127, 0, 127, -128, 1], np.int8)
        b = np.array([127, -128, 0, 127, -128, -1], np.int8)
        for s_out in (1e-4, 1.0, 50.0):   # tiny output scale saturates every output
            p = make(0.05, zp1, 0.02, zp2, s_out, zp_out, a.shape, b.shape)
            want = golden(p, a, b)
            for kernels in (lib, dsp_lib):
                out = out_buffer(want.size)
                assert call(kernels, c_name, p, a, b, out) == TC_OK
                assert_bit_exact(out, want, f"{op} extremes {p}")
            ideal = float_requant(real_op(dequantize(a, 0.05, zp1).astype(np.float64),
                                          dequantize(b, 0.02, zp2).astype(np.float64)),
                                  np.float32(s_out), zp_out)
            assert_within_one_lsb(want, ideal, f"{op} extremes vs float")


def test_binary_in_place_on_full_size_operand(lib, dsp_lib):
    rng = np.random.default_rng(7)
    for op, (c_name, make, golden, _) in OPS.items():
        p = make(0.03, 3, 0.1, -5, 0.05, -9, [1, 6, 6, 16], [1, 1, 1, 16])
        a, b = rand_int8(rng, [1, 6, 6, 16]), rand_int8(rng, [1, 1, 1, 16])
        want = golden(p, a, b)
        for kernels in (lib, dsp_lib):
            buf = a.copy().reshape(-1)
            assert call(kernels, c_name, p, buf, b, buf) == TC_OK
            assert_bit_exact(buf, want, f"{op} in place")


# Every int8 x int8 input pair, once each: in1 = the row index, in2 = the column index.
ALL_PAIRS = (np.repeat(np.arange(-128, 128), 256).astype(np.int8),
             np.tile(np.arange(-128, 128), 256).astype(np.int8))


def test_add_table_equals_add_and_sub_on_every_input_pair(lib, dsp_lib):
    """tc_add_s8_table (tables from add_tables) == TFLM's ADD / SUB (add_s8 / sub_s8) on all
    65,536 input pairs, for operand shifts 0 on either side or both, output shifts inside the DSP
    rows' range [-22, -1] and outside it (the portable rows), unclamped, ReLU-like and two-sided
    activations, extreme zero points (out_zp 127 with shift -23 overflowed a first DSP version's
    SMMLAR); spec, fast portable and emulated DSP builds."""
    rng = np.random.default_rng(2024)
    seen = set()
    for s1, s2 in ((0.02, 0.02), (0.02, 0.005), (0.005, 0.02), (0.03, 0.0299), (0.01, 0.04)):
        for s_out in (1e-6, 3e-4, 0.01, 0.5, 40.0):
            for act in ((-128, 127), ("zp", 127), (-50, 60)):
                for make, golden, sign2 in ((make_add_params, add_s8, 1), (make_sub_params, sub_s8, -1)):
                    zp1, zp2, zp_out = (rand_zp(rng) for _ in range(3))
                    lo, hi = (zp_out if act[0] == "zp" else act[0]), act[1]
                    p = make(s1, zp1, s2, zp2, s_out, zp_out, [65536], [65536], act_min=lo, act_max=hi)
                    tables = add_tables(p, sign2)
                    want = golden(p, *ALL_PAIRS)
                    assert_bit_exact(add_table_s8(p, tables, *ALL_PAIRS), want, f"golden tables {p}")
                    for kernels in (lib, dsp_lib):
                        out = out_buffer(want.size)
                        assert call(kernels, "tc_add_s8_table", p, tables, *ALL_PAIRS, out) == TC_OK
                        assert_bit_exact(out, want, f"tc_add_s8_table sign2={sign2} {p}")
                    seen.add((p.in1_shift == 0, p.in2_shift == 0, -22 <= p.out_shift <= -1))
    assert {(True, True, True), (True, False, True), (False, True, True)} <= seen
    assert any(not in_range for *_, in_range in seen)
    # the edges of the DSP rows' range with the largest constants (zero point 127, clamped)
    base = make_add_params(0.02, -128, 0.005, 5, 0.01, 0, [65536], [65536])
    for shift, zp_out, (lo, hi) in itertools.product((-1, -22, -23), (127, -128), ((-128, 127), (-50, 60))):
        p = dataclasses.replace(base, out_shift=shift, out_zp=zp_out, act_min=lo, act_max=hi)
        want = add_s8(p, *ALL_PAIRS)
        for kernels in (lib, dsp_lib):
            out = out_buffer(want.size)
            assert call(kernels, "tc_add_s8_table", p, add_tables(p), *ALL_PAIRS, out) == TC_OK
            assert_bit_exact(out, want, f"tc_add_s8_table edge {p}")


def test_add_rows_half_operand_on_every_input_pair(lib, dsp_lib):
    """tc_add_s8's DSP rows where the larger scale's operand has TFLM's multiplier 0.5 (2^30,
    shift 0) and the other a shift e in [1, 4] (tc_add_s8_dsp.c's add_rows_half: that operand's
    zero point folded into the other's rounding constant), on all 65,536 input pairs, with either
    operand the larger, zero points at the extremes (the folded constant's bound), every clamp
    case; and larger e (the general rows) on the same pairs; spec and emulated DSP builds."""
    rng = np.random.default_rng(4242)
    shifts = set()
    for s1, s2 in ((0.03, 0.012), (0.01, 0.03), (0.02, 0.011), (0.04, 0.0035), (0.04, 0.0021), (0.002, 0.05),
                   (0.05, 0.0004)):
        for zp1, zp2 in ((-128, 127), (127, -128), (int(rng.integers(-128, 128)), 0)):
            for act in ((-128, 127), (-20, 127), (-128, 100), (-50, 60)):
                p = make_add_params(s1, zp1, s2, zp2, 0.04, int(rng.integers(-128, 128)), [65536],
                                    [65536], act_min=act[0], act_max=act[1])
                want = add_s8(p, *ALL_PAIRS)
                for kernels in (dsp_lib, lib):
                    out = out_buffer(want.size)
                    assert call(kernels, "tc_add_s8", p, *ALL_PAIRS, out) == TC_OK
                    assert_bit_exact(out, want, f"tc_add_s8 half operand {p}")
                shifts.add(min(p.in1_shift, p.in2_shift))
    assert {-1, -2, -4} <= shifts and min(shifts) < -4  # folded rows and the general ones


def test_add_table_broadcast_and_in_place(lib, dsp_lib):
    """The table kernel's broadcast rows (strides 0) and its in-place call (out over in1 or
    in2), as tc_add_s8's."""
    rng = np.random.default_rng(5)
    for shape1, shape2 in BROADCAST_SHAPES:
        p, a, b, *_ = binary_case(rng, shape1, shape2, make_add_params)
        tables, want = add_tables(p), add_s8(p, a, b)
        for kernels in (lib, dsp_lib):
            out = out_buffer(want.size)
            assert call(kernels, "tc_add_s8_table", p, tables, a, b, out) == TC_OK
            assert_bit_exact(out, want, f"tc_add_s8_table {shape1} {shape2}")
    p = make_sub_params(0.03, 3, 0.1, -5, 0.05, -9, [1, 6, 6, 16], [1, 6, 6, 16], act_min=-9)
    a, b = rand_int8(rng, [1, 6, 6, 16]), rand_int8(rng, [1, 6, 6, 16])
    want = sub_s8(p, a, b)
    for kernels in (lib, dsp_lib):
        for over in (0, 1):
            x1, x2 = a.copy().reshape(-1), b.copy().reshape(-1)
            buf = (x1, x2)[over]
            assert call(kernels, "tc_add_s8_table", p, add_tables(p, -1), x1, x2, buf) == TC_OK
            assert_bit_exact(buf, want, f"tc_add_s8_table in place over in{over + 1}")


def test_add_and_sub_multipliers_follow_tflm():
    # ADD computes the real multipliers in double, SUB in float32 (TFLM add_common / sub_common).
    p = make_add_params(0.5, 0, 0.25, 0, 0.5, 0, [1], [1])
    assert (p.in1_multiplier, p.in1_shift) == (1 << 30, 0)      # 0.5
    assert (p.in2_multiplier, p.in2_shift) == (1 << 30, -1)     # 0.25
    assert (p.out_multiplier, p.out_shift) == (1 << 30, -18)    # 1 / (2^20 * 0.5)
    s1, s2, so = 0.0123456, 0.0456789, 0.0789012
    add = make_add_params(s1, 0, s2, 0, so, 0, [1], [1])
    sub = make_sub_params(s1, 0, s2, 0, so, 0, [1], [1])
    f1, f2, fo = np.float32(s1), np.float32(s2), np.float32(so)
    tw = np.float32(2) * max(f1, f2)
    assert (sub.in1_multiplier, sub.in1_shift) == quantize_multiplier(float(f1 / tw))
    assert (sub.out_multiplier, sub.out_shift) == \
        quantize_multiplier(float(tw / (np.float32(1 << 20) * fo)))
    assert (add.in1_multiplier, add.in1_shift) == \
        quantize_multiplier(float(f1) / (2.0 * float(f2)))


def test_broadcast_dims_folding():
    assert broadcast_dims([1, 7, 7, 32], [1, 1, 1, 32]) == \
        ((1, 1, 49, 32), (1, 1, 1, 32), (1, 1, 49, 32))
    assert broadcast_dims([5, 6, 7], [5, 6, 7]) == ((1, 1, 1, 210),) * 3
    assert broadcast_dims([2, 3, 8], [8]) == ((1, 1, 6, 8), (1, 1, 1, 8), (1, 1, 6, 8))
    # 5-D inputs fold as long as at most 4 broadcast groups remain
    assert broadcast_dims([2, 1, 3, 4, 5], [2, 6, 3, 1, 1])[2] == (2, 6, 3, 20)
    with pytest.raises(ValueError):
        broadcast_dims([3, 4], [4, 4])


# ---------------------------------------------------------------------------------------------
# LUT activations

ACTIVATIONS = {   # golden float64 builder -> independent torch float32 reference
    "sigmoid": (sigmoid, torch.sigmoid),
    "tanh": (tanh, torch.tanh),
    "hardswish": (hardswish, F.hardswish),
    "hardsigmoid": (partial(hardsigmoid, alpha=1 / 6, beta=0.5), F.hardsigmoid),
    "leaky_relu": (partial(leaky_relu, alpha=0.1), partial(F.leaky_relu, negative_slope=0.1)),
    "relu": (relu, F.relu),
    "clip": (partial(clip, lo=-1.0, hi=2.5), partial(torch.clamp, min=-1.0, max=2.5)),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_lut_activation_c_matches_golden_and_torch(lib, name):
    fn, ref = ACTIVATIONS[name]
    rng = np.random.default_rng(abs(hash(name)) % 1000)
    for in_scale, in_zp, out_scale, out_zp in [(0.05, -10, 1 / 256, -128), (0.2, 127, 0.03, 5),
                                                (0.01, -128, 0.02, 0), (0.1, 0, 0.05, 127)]:
        table = make_lut(fn, in_scale, in_zp, out_scale, out_zp)
        x = rand_int8(rng, [3, 17, 5])
        p = LutParams(size=x.size)
        want = lut_s8(p, table, x)
        out = out_buffer(x.size)
        assert call(lib, "tc_lut_s8", p, table, x, out) == TC_OK
        assert_bit_exact(out, want, f"lut {name}")
        everything = np.arange(-128, 128, dtype=np.int8)
        real = ref(torch.from_numpy(dequantize(everything, in_scale, in_zp))).numpy()
        assert_within_one_lsb(table, quantize(real, out_scale, out_zp), f"lut {name} vs torch")
        in_place = x.copy().reshape(-1)
        assert call(lib, "tc_lut_s8", p, table, in_place, in_place) == TC_OK
        assert_bit_exact(in_place, want, f"lut {name} in place")


def test_lut_activation_clamp():
    table = make_lut(relu, 0.1, 0, 0.1, -20, act_min=-20, act_max=40)
    assert table.min() == -20 and table.max() == 40 and table[128 + 5] == -15


# ---------------------------------------------------------------------------------------------
# Softmax

# TFLite reference int8 softmax outputs published as CMSIS-NN unit-test data
# (Tests/UnitTest/TestCases/TestData/softmax*: config, input, output_ref).
SOFTMAX_KNOWN = [
    ((1077952640, 19, -3968, 2, 5), [101, 49, 6, -34, -75, -79, -38, 120, -55, 115],
     [-57, -70, -79, -86, -92, -94, -88, -54, -91, -56]),
    ((1077952576, 23, -248, 1, 5), [-80, -48, 16, 0, -96], [-128, -125, 56, -60, -128]),
]


@pytest.mark.parametrize("case", range(len(SOFTMAX_KNOWN)))
def test_softmax_tflite_reference_vectors(lib, case):
    fields_, x, want = SOFTMAX_KNOWN[case]
    p = SoftmaxParams(*fields_)
    x, want = np.array(x, np.int8), np.array(want, np.int8)
    assert_bit_exact(softmax_s8(p, x), want, "golden vs TFLite")
    out = out_buffer(x.size)
    assert call(lib, "tc_softmax_s8", p, x, out) == TC_OK
    assert_bit_exact(out, want, "C vs TFLite")


def test_softmax_params_follow_tflm():
    # The first CMSIS-NN vector was generated with input scale 1/255.
    p = make_softmax_params(np.float32(1 / 255), outer=2, depth=5)
    assert (p.input_multiplier, p.input_left_shift, p.diff_min) == (1077952640, 19, -3968)
    # beta * scale * 2^26 is capped at 2^31 - 1: shift 31, only the maximum survives.
    big = make_softmax_params(64.0, outer=1, depth=4)
    assert (big.input_multiplier, big.input_left_shift, big.diff_min) == ((1 << 31) - 1, 31, 0)
    with pytest.raises(ValueError):
        make_softmax_params(2.0 ** -27, outer=1, depth=4)   # TFLM: multiplier must exceed 1


def softmax_inputs(rng, depth):
    rows = [rand_int8(rng, depth), np.full(depth, -128, np.int8), np.full(depth, 127, np.int8),
            np.where(np.arange(depth) % 2 == 0, 127, -128).astype(np.int8),
            np.clip(rng.normal(40, 6, depth), -128, 127).astype(np.int8)]
    one_hot = np.full(depth, -128, np.int8)
    one_hot[rng.integers(depth)] = 127
    rows.append(one_hot)
    return np.stack(rows)


def test_softmax_c_matches_golden_and_float(lib):
    rng = np.random.default_rng(99)
    for depth in (1, 2, 10, 12, 1000):
        for in_scale in (0.002, 0.0390625, 0.1, 0.5, 3.0, 40.0):
            for beta in (1.0, 0.7):
                x = softmax_inputs(rng, depth)
                p = make_softmax_params(in_scale, outer=x.shape[0], depth=depth, beta=beta)
                want = softmax_s8(p, x)
                out = out_buffer(x.size)
                assert call(lib, "tc_softmax_s8", p, x, out) == TC_OK
                assert_bit_exact(out, want, f"softmax depth={depth} scale={in_scale}")
                logits = torch.from_numpy(dequantize(x, in_scale, 0).astype(np.float64))
                probs = torch.softmax(logits * np.float32(beta), dim=1).numpy()
                ideal = np.clip(round_half_away(probs * 256) - 128, -128, 127)
                assert_within_one_lsb(want, ideal, f"softmax vs float depth={depth} s={in_scale}")


def test_softmax_large_sums_and_in_place(lib):
    # Exp sums >= 512 (TFLM aborts there) and >= 2^31 in Q12 (4096+ maximal elements): every
    # output rounds to -128, exactly as the real softmax quantizes.
    for depth in (600, 5000):
        x = np.zeros((2, depth), np.int8)
        p = make_softmax_params(0.05, outer=2, depth=depth)
        want = softmax_s8(p, x)
        assert np.all(want == -128)
        buf = x.copy().reshape(-1)
        assert call(lib, "tc_softmax_s8", p, buf, buf) == TC_OK
        assert_bit_exact(buf, want, f"softmax in place depth={depth}")


def test_fixed_point_functions_against_float():
    a = np.linspace(-31 * 2 ** 26, 0, 200001).astype(np.int64)   # Q5 arguments in [-31, 0]
    exp = fp_exp_on_negative_values_q5(a) / 2.0 ** 31
    # gemmlowp's 4th-order Taylor step on [-1/4, 0) is accurate to (1/8)^5 / 5! = 2.5e-7.
    assert np.max(np.abs(exp - np.exp(a / 2.0 ** 26))) < 3e-7
    x = np.linspace(0, (1 << 31) - 1, 100001).astype(np.int64)    # Q0 arguments in [0, 1)
    recip = fp_one_over_one_plus_x_for_x_in_0_1(x) / 2.0 ** 31
    assert np.max(np.abs(recip - 1.0 / (1.0 + x / 2.0 ** 31))) < 1e-8
    sums = np.array([1 << 19, 3 << 19, 1000 << 19, 12345678])      # Q12 sums
    scale, bits = fp_get_reciprocal(sums, 12)
    assert np.allclose(scale / 2.0 ** 31 / 2.0 ** bits, (1 << 19) / sums, rtol=1e-8)


FIXED_POINT_SHIM = """
#include "tc_fixedpoint.h"
void tc_test_fp_exp_q5(const int32_t *in, int32_t *out, int32_t n) {
    int32_t i;
    for (i = 0; i < n; ++i) out[i] = tc_fp_exp_on_negative_values_q5(in[i]);
}
void tc_test_fp_one_over(const int32_t *in, int32_t *out, int32_t n) {
    int32_t i;
    for (i = 0; i < n; ++i) out[i] = tc_fp_one_over_one_plus_x_for_x_in_0_1(in[i]);
}
void tc_test_fp_reciprocal(const int32_t *in, int32_t *out, int32_t *bits, int32_t n) {
    int32_t i;
    for (i = 0; i < n; ++i) out[i] = tc_fp_get_reciprocal(in[i], 12, &bits[i]);
}
"""


def test_fixed_point_c_matches_golden(tmp_path):
    shim = tmp_path / "fixedpoint_shim.c"
    shim.write_text(FIXED_POINT_SHIM)
    lib = runtime_library([shim])
    rng = np.random.default_rng(3)
    q5 = np.concatenate([rng.integers(-31 << 26, 1, 300000),
                         -np.arange(0, 1 << 16), [-(31 << 26), -1, 0]]).astype(np.int32)
    q0 = np.concatenate([rng.integers(0, 1 << 31, 300000), np.arange(0, 1 << 16),
                         [(1 << 31) - 1]]).astype(np.int32)
    sums = np.concatenate([rng.integers(1 << 19, 1 << 31, 100000), 1 << np.arange(19, 31),
                           [(1 << 31) - 1]]).astype(np.int32)
    for fn, x, golden in [(lib.tc_test_fp_exp_q5, q5, fp_exp_on_negative_values_q5),
                          (lib.tc_test_fp_one_over, q0, fp_one_over_one_plus_x_for_x_in_0_1)]:
        out = np.zeros_like(x)
        fn(ptr(x), ptr(out), ctypes.c_int32(x.size))
        assert_bit_exact(out, golden(x), fn.__name__)
    out, bits = np.zeros_like(sums), np.zeros_like(sums)
    lib.tc_test_fp_reciprocal(ptr(sums), ptr(out), ptr(bits), ctypes.c_int32(sums.size))
    want, want_bits = fp_get_reciprocal(sums, 12)
    assert_bit_exact(out, want, "get_reciprocal")
    assert_bit_exact(bits, want_bits, "get_reciprocal num_bits_over_unit")


# ---------------------------------------------------------------------------------------------
# Requantize and concatenation


def test_requantize_c_matches_golden_and_float(lib):
    rng = np.random.default_rng(5)
    x = rand_int8(rng, [1000])
    for s_in, zp_in, s_out, zp_out, act in [(0.1, 3, 0.05, -7, (-128, 127)),
                                           (0.02, -128, 0.02, 127, (-128, 127)),  # zp shift only
                                           (0.02, 9, 0.02, 9, (-128, 127)),       # plain copy
                                           (1e-3, 0, 1.0, 0, (-128, 127)),        # ratio 1e-3
                                           (1.0, 127, 1e-3, -128, (-128, 127)),   # ratio 1e3
                                           (0.3, -20, 0.1, -50, (-50, 60))]:      # fused clamp
        p = make_requantize_params(s_in, zp_in, s_out, zp_out, x.size, *act)
        want = requantize_s8(p, x)
        out = out_buffer(x.size)
        assert call(lib, "tc_requantize_s8", p, x, out) == TC_OK
        assert_bit_exact(out, want, f"requantize {p}")
        ideal = float_requant(dequantize(x, s_in, zp_in).astype(np.float64),
                              np.float32(s_out), zp_out, *act)
        assert_within_one_lsb(want, ideal, f"requantize vs float {p}")
        buf = x.copy()
        assert call(lib, "tc_requantize_s8", p, buf, buf) == TC_OK
        assert_bit_exact(buf, want, "requantize in place")
    unit = make_requantize_params(0.02, -128, 0.02, 127, 4)
    assert (unit.multiplier, unit.shift) == (UNIT_MULTIPLIER, UNIT_SHIFT)
    big = make_requantize_params(5e8, 0, 1.0, 0, 4)     # MBQM left shift saturates
    saturated = requantize_s8(big, np.array([-2, -1, 1, 2], np.int8))
    assert saturated.tolist() == [-128, -128, 127, 127]


def concat_c(lib, parts, inputs):
    out = out_buffer(parts[0].outer * parts[0].out_inner)
    for p, x in zip(parts, inputs):
        assert call(lib, "tc_concat_s8_part", p, x, out) == TC_OK
    return out


def test_concat_plain_copies_match_numpy(lib):
    rng = np.random.default_rng(11)
    for axis in range(4):
        shapes = []
        for _ in range(int(rng.integers(1, 5))):
            shape = [2, 3, 4, 5]
            shape[axis] = int(rng.integers(1, 6))
            shapes.append(shape)
        inputs = [rand_int8(rng, s) for s in shapes]
        parts = make_concat_params(shapes, axis - 4 if axis % 2 else axis)
        want = np.concatenate(inputs, axis=axis)
        golden = np.zeros(want.size, np.int8)
        for p, x in zip(parts, inputs):
            concat_s8_part(p, x, golden)
        assert_bit_exact(golden, want, f"concat golden axis {axis}")
        assert_bit_exact(concat_c(lib, parts, inputs), want, f"concat C axis {axis}")


def test_concat_with_requantized_inputs(lib):
    rng = np.random.default_rng(12)
    shapes = [[1, 4, 4, 3], [1, 4, 4, 8], [1, 4, 4, 5]]
    in_quant = [(0.05, -3), (0.02, 127), (0.1, 10)]      # the last one equals the output's scale
    out_quant = (0.1, -20)
    inputs = [rand_int8(rng, s) for s in shapes]
    parts = make_concat_params(shapes, axis=3, in_quant=in_quant, out_quant=out_quant)
    golden = np.zeros(16 * 16, np.int8)
    for p, x in zip(parts, inputs):
        concat_s8_part(p, x, golden)
    assert_bit_exact(concat_c(lib, parts, inputs), golden, "requantizing concat C vs golden")
    ideal = np.concatenate([float_requant(dequantize(x, s, z).astype(np.float64),
                                          np.float32(out_quant[0]), out_quant[1])
                            for x, (s, z) in zip(inputs, in_quant)], axis=3)
    assert_within_one_lsb(golden, ideal, "requantizing concat vs float")


# ---------------------------------------------------------------------------------------------
# Pad, transpose, slice


def test_pad_matches_numpy(lib):
    rng = np.random.default_rng(21)
    for shape, before, after in [([1, 5, 6, 3], [0, 1, 2, 0], [0, 2, 1, 0]),   # NHWC spatial
                                 ([4, 3], [1, 0], [2, 3]),
                                 ([2, 3, 4, 5], [1, 0, 2, 1], [0, 3, 0, 2]),
                                 ([7], [3], [0]),
                                 ([1, 2, 2, 2], [0, 0, 0, 0], [0, 0, 0, 0])]:
        x = rand_int8(rng, shape)
        value = int(rng.integers(-128, 128))
        p = make_pad_params(shape, before, after, value)
        want = np.pad(x, list(zip(before, after)), constant_values=value)
        assert_bit_exact(pad_s8(p, x), want, f"pad golden {shape}")
        out = out_buffer(want.size)
        assert call(lib, "tc_pad_s8", p, x, out) == TC_OK
        assert_bit_exact(out, want, f"pad C {shape} {p}")
    assert make_pad_params([1, 5, 6, 3], [0, 1, 2, 0], [0, 2, 1, 0], 0).in_dims == (1, 1, 5, 18)


def test_transpose_matches_numpy(lib):
    rng = np.random.default_rng(31)
    cases = [([1, 3, 4, 5], [0, 2, 3, 1]), ([1, 4, 5, 3], [0, 3, 1, 2]),   # NCHW <-> NHWC
             ([2, 3, 4, 5], [3, 2, 1, 0]), ([6, 7], [1, 0]), ([2, 3, 4], [1, 0, 2]),
             ([2, 1, 3, 1, 4], [4, 3, 0, 2, 1]), ([5], [0])]
    for perm in itertools.permutations(range(4)):
        cases.append(([2, 3, 4, 5], list(perm)))
    for shape, perm in cases:
        x = rand_int8(rng, shape)
        p = make_transpose_params(shape, perm)
        want = np.transpose(x, perm)
        assert_bit_exact(transpose_s8(p, x), want, f"transpose golden {shape} {perm}")
        out = out_buffer(want.size)
        assert call(lib, "tc_transpose_s8", p, x, out) == TC_OK
        assert_bit_exact(out, want, f"transpose C {shape} {perm} {p}")


def test_slice_and_split_match_numpy(lib):
    rng = np.random.default_rng(41)
    x = rand_int8(rng, [2, 6, 7, 8])
    onnx_cases = [([0, 1, 0, 0], [2, 5, 7, 8], None, None),
                  ([1, 2], [-1, 100], [2, 3], [2, 3]),            # negative and clamped ends
                  ([-5], [7], [1], [1]),
                  ([0, 0], [8, 6], [-1, 1], [1, 2]),
                  ([3], [4], [3], [1]), ([0], [1000], [0], None)]
    for starts, ends, axes, steps in onnx_cases:
        p = onnx_slice_params(x.shape, starts, ends, axes, steps)
        index = [slice(None)] * 4
        for k, (s, e) in enumerate(zip(starts, ends)):
            axis = (axes[k] if axes else k) % 4
            index[axis] = slice(s, e, steps[k] if steps else 1)
        want = x[tuple(index)]
        assert_bit_exact(slice_s8(p, x), want, f"slice golden {starts} {ends}")
        out = out_buffer(want.size)
        assert call(lib, "tc_slice_s8", p, x, out) == TC_OK
        assert_bit_exact(out, want, f"slice C {starts} {ends} {p}")
    for axis, sizes in [(3, [3, 5]), (1, [1, 2, 3]), (0, [1, 1])]:
        pieces = np.split(x, np.cumsum(sizes)[:-1], axis=axis)
        for p, want in zip(make_split_params(x.shape, axis, sizes), pieces):
            out = out_buffer(want.size)
            assert call(lib, "tc_slice_s8", p, x, out) == TC_OK
            assert_bit_exact(out, want, f"split axis {axis}")
    with pytest.raises(ValueError):
        onnx_slice_params(x.shape, [5], [0], [1], [-1])   # negative steps are not supported


# ---------------------------------------------------------------------------------------------
# Resize nearest

RESIZE_MODES = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                "asymmetric", "tf_half_pixel_for_nn"]
NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
RESIZE_SIZES = [((4, 8), (5, 3)), ((3, 7), (7, 2)), ((1, 5), (5, 1)), ((10, 15), (15, 10)),
                ((6, 6), (3, 9))]
RESIZE_SCALES = [((4, 1.7), (5, 0.6)), ((3, 2.0), (8, 0.5)), ((6, 1.3333334), (9, 0.75))]


def ort_source_indices(in_hw, out_hw, scales, mode, nearest_mode):
    """Runs onnxruntime Resize on a tensor whose values encode their own (row, col)."""
    (h, w), (oh, ow) = in_hw, out_hw
    node_inputs = ["X", "", "scales"] if scales else ["X", "", "", "sizes"]
    node = helper.make_node("Resize", node_inputs, ["Y"], mode="nearest",
                            coordinate_transformation_mode=mode, nearest_mode=nearest_mode)
    init = [helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, *scales])] if scales else \
        [helper.make_tensor("sizes", TensorProto.INT64, [4], [1, 1, oh, ow])]
    graph = helper.make_graph([node], "resize", [helper.make_tensor_value_info(
        "X", TensorProto.FLOAT, [1, 1, h, w])], [helper.make_tensor_value_info(
            "Y", TensorProto.FLOAT, None)], initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = (np.arange(h)[:, None] * 1000 + np.arange(w)[None, :]).astype(np.float32)
    y = sess.run(None, {"X": x[None, None]})[0][0, 0].astype(np.int64)
    assert y.shape == (oh, ow)
    return y[:, 0] // 1000, y[0, :] % 1000


def test_nearest_indices_match_onnxruntime():
    for mode in RESIZE_MODES:
        for nearest_mode in NEAREST_MODES:
            for (h, oh), (w, ow) in RESIZE_SIZES:
                ys, xs = ort_source_indices((h, w), (oh, ow), None, mode, nearest_mode)
                what = f"{mode}/{nearest_mode} sizes {h}->{oh}, {w}->{ow}"
                assert_bit_exact(nearest_indices(h, oh, None, mode, nearest_mode), ys, what)
                assert_bit_exact(nearest_indices(w, ow, None, mode, nearest_mode), xs, what)
            for (h, sh), (w, sw) in RESIZE_SCALES:
                oh, ow = int(np.floor(h * np.float32(sh))), int(np.floor(w * np.float32(sw)))
                ys, xs = ort_source_indices((h, w), (oh, ow), (sh, sw), mode, nearest_mode)
                what = f"{mode}/{nearest_mode} scales {h}*{sh}, {w}*{sw}"
                assert_bit_exact(nearest_indices(h, oh, sh, mode, nearest_mode), ys, what)
                assert_bit_exact(nearest_indices(w, ow, sw, mode, nearest_mode), xs, what)


def test_resize_nearest_c_matches_golden(lib):
    rng = np.random.default_rng(51)
    for (n, h, w, c), (oh, ow), mode in [((1, 4, 5, 3), (8, 10), "asymmetric"),
                                         ((2, 6, 6, 4), (3, 4), "half_pixel"),
                                         ((1, 3, 7, 1), (9, 2), "align_corners")]:
        x = rand_int8(rng, [n, h, w, c])
        ys = nearest_indices(h, oh, None, mode)
        xs = nearest_indices(w, ow, None, mode)
        p = make_resize_nearest_params(x.shape, oh, ow)
        want = x[:, ys][:, :, xs]
        assert_bit_exact(resize_nearest_s8(p, ys, xs, x), want, "resize golden")
        out = out_buffer(want.size)
        assert call(lib, "tc_resize_nearest_s8", p, ys, xs, x, out) == TC_OK
        assert_bit_exact(out, want, f"resize C {p}")


# ---------------------------------------------------------------------------------------------
# Bad parameters: TC_ARG_ERROR, nothing written; the golden raises ValueError


def _bad_cases():
    add = make_add_params(0.1, 0, 0.1, 0, 0.1, 0, [1, 4], [1, 4])
    mul = make_mul_params(0.1, 0, 0.1, 0, 0.1, 0, [1, 4], [1, 4])
    i4, i16 = np.zeros(4, np.int8), np.zeros(16, np.int8)
    smx = make_softmax_params(0.1, 1, 4)
    req = make_requantize_params(0.1, 0, 0.2, 0, 4)
    part = make_concat_params([[2, 2], [2, 2]], 1)[1]
    pad = make_pad_params([2, 2], [1, 1], [1, 1], 0)
    tr = make_transpose_params([2, 2, 2, 2], [3, 2, 1, 0])
    sl = make_slice_params([4, 4], [0, 0], [1, 1], [2, 2])
    rs = make_resize_nearest_params([1, 2, 2, 1], 4, 4)
    ys = np.array([0, 0, 1, 1], np.int32)
    rep = lambda p, **kw: type(p)(**{**asdict(p), **kw})  # noqa: E731
    return [
        ("tc_add_s8", add_s8, rep(add, in2_dims=(1, 1, 1, 3)), (i4, i4), 4),
        ("tc_add_s8", add_s8, rep(add, out_shift=1), (i4, i4), 4),
        ("tc_sub_s8", sub_s8, rep(add, in1_zp=128), (i4, i4), 4),
        ("tc_add_s8_table", add_table_s8, rep(add, in2_dims=(1, 1, 1, 3)), (add_tables(add), i4, i4), 4),
        ("tc_add_s8_table", add_table_s8, rep(add, out_shift=1), (add_tables(add), i4, i4), 4),
        ("tc_add_s8_table", add_table_s8, rep(add, act_min=10, act_max=5), (add_tables(add), i4, i4), 4),
        ("tc_mul_s8", mul_s8, rep(mul, act_min=10, act_max=5), (i4, i4), 4),
        ("tc_mul_s8", mul_s8, rep(mul, out_dims=(1, 1, 1, 0)), (i4, i4), 4),
        ("tc_lut_s8", lut_s8, LutParams(size=-1), (make_lut(relu, 0.1, 0, 0.1, 0), i4), 4),
        ("tc_softmax_s8", softmax_s8, rep(smx, depth=0), (i4,), 4),
        ("tc_softmax_s8", softmax_s8, rep(smx, diff_min=-(1 << 30)), (i4,), 4),
        ("tc_requantize_s8", requantize_s8, rep(req, shift=31), (i4,), 4),
        ("tc_concat_s8_part", None, rep(part, out_offset=3), (i4,), 8),
        ("tc_pad_s8", pad_s8, rep(pad, out_dims=(1, 1, 3, 2)), (i4,), 6),
        ("tc_transpose_s8", transpose_s8, rep(tr, perm=(0, 1, 1, 3)), (i16,), 16),
        ("tc_slice_s8", slice_s8, rep(sl, begin=(0, 0, 0, 3)), (i16,), 4),
        ("tc_slice_s8", slice_s8, rep(sl, stride=(1, 1, 1, 0)), (i16,), 4),
        ("tc_resize_nearest_s8", None, rs, (ys, np.array([0, 0, 1, 2], np.int32), i4), 16),
    ]


def test_every_kernel_has_bad_and_sanitizer_cases():
    """A newly declared kernel of this family needs its cases here, not only its declaration."""
    assert {c[0] for c in _bad_cases()} == set(KERNELS)
    assert {expr.split("(")[0] for expr, *_ in _sanitizer_cases()} == set(KERNELS)


def test_bad_parameters_are_rejected(lib):
    for c_name, golden, p, arrays, out_size in _bad_cases():
        out = out_buffer(out_size)
        assert call(lib, c_name, p, *arrays, out) == TC_ARG_ERROR, (c_name, p)
        assert np.all(out == SENTINEL), f"{c_name} wrote output despite bad parameters"
        if golden is not None:
            with pytest.raises(ValueError):
                golden(p, *arrays)
    with pytest.raises(ValueError):
        concat_s8_part(ConcatPartParams(1, 4, 4, 1, 0, 1 << 30, 1, 0), np.zeros(4, np.int8),
                       np.zeros(4, np.int8))
    with pytest.raises(ValueError):
        rs = make_resize_nearest_params([1, 2, 2, 1], 4, 4)
        resize_nearest_s8(rs, [0, 0, 1, 1], [0, 0, 1, 2], np.zeros(4, np.int8))


# ---------------------------------------------------------------------------------------------
# Boundary conversions


def test_quantize_dequantize_follow_tflite():
    x = np.array([-1.0, -0.25, 0.25, 0.75, 1000.0, -1000.0, 0.0], np.float32)
    assert quantize(x, 0.5, 3).tolist() == [1, 2, 4, 5, 127, -128, 3]   # ties away from zero
    q = np.array([-128, 0, 127], np.int8)
    d = dequantize(q, 0.1, -5)
    assert d.dtype == np.float32 and np.allclose(d, [-12.3, 0.5, 13.2])
    assert np.array_equal(quantize(d, 0.1, -5), q)


# ---------------------------------------------------------------------------------------------
# AddressSanitizer + UndefinedBehaviorSanitizer


MY_SOURCES = kernel_sources(*KERNELS)


def c_initializer(p) -> str:
    """A C99 designated initializer from a params dataclass, as the code generator emits it."""
    def value(v):
        if isinstance(v, tuple):
            return "{" + ", ".join(str(int(e)) for e in v) + "}"
        return str(int(v))
    return "{" + ", ".join(f".{k} = {value(v)}" for k, v in asdict(p).items()) + "}"


def c_array(name, a, ctype="int8_t"):
    a = np.asarray(a).reshape(-1)
    values = ", ".join(map(str, a.tolist())) or "0"
    return f"static const {ctype} {name}[{max(a.size, 1)}] = {{{values}}};"


def _sanitizer_cases():
    """(call expression template, params, {name: array}, expected output) per case."""
    rng = np.random.default_rng(2024)
    cases = []
    for make, golden, fn in [(make_add_params, add_s8, "tc_add_s8"),
                             (make_sub_params, sub_s8, "tc_sub_s8"),
                             (make_mul_params, mul_s8, "tc_mul_s8")]:
        for zps, s_out in [((-128, 127, 127), 1e-4), ((127, -128, -128), 30.0)]:
            p = make(0.08, zps[0], 0.0001, zps[1], s_out, zps[2], [1, 5, 5, 8], [1, 1, 1, 8])
            a = np.where(rng.random([1, 5, 5, 8]) < 0.5, -128, 127).astype(np.int8)
            b = np.array([-128, 127] * 4, np.int8)
            cases.append((f"{fn}(&P, A, B, out)", p, {"A": a, "B": b}, golden(p, a, b)))
            if fn != "tc_mul_s8":  # the same layer through the tables: broadcast, then full rows
                t = add_tables(p, 1 if fn == "tc_add_s8" else -1)
                cases.append(("tc_add_s8_table(&P, Y, A, B, out)", p, {"A": a, "B": b, "Y": t},
                              golden(p, a, b)))
                full = dataclasses.replace(p, in2_dims=p.in1_dims)
                b_full = np.where(rng.random([1, 5, 5, 8]) < 0.5, -128, 127).astype(np.int8)
                cases.append(("tc_add_s8_table(&P, Y, A, B, out)", full, {"A": a, "B": b_full, "Y": t},
                              golden(full, a, b_full)))
    for depth, scale, fill in [(1, 0.1, None), (1000, 0.02, -128), (5000, 0.05, 0),
                               (10, 64.0, None), (12, 2.0 ** -20, None), (2, 1.0, 127)]:
        x = rand_int8(rng, [3, depth]) if fill is None else np.full([3, depth], fill, np.int8)
        p = make_softmax_params(scale, 3, depth)
        cases.append(("tc_softmax_s8(&P, A, out)", p, {"A": x}, softmax_s8(p, x)))
    x = rand_int8(rng, [64])
    for s_in, zp_in, s_out, zp_out in [(5e8, -128, 1.0, 127), (1e-3, 127, 1.0, -128),
                                       (0.5, 3, 0.5, -9)]:
        p = make_requantize_params(s_in, zp_in, s_out, zp_out, x.size)
        cases.append(("tc_requantize_s8(&P, A, out)", p, {"A": x}, requantize_s8(p, x)))
    table = make_lut(hardswish, 0.05, -128, 0.03, 127)
    p = LutParams(size=x.size)
    cases.append(("tc_lut_s8(&P, B, A, out)", p, {"A": x, "B": table}, lut_s8(p, table, x)))
    img = rand_int8(rng, [1, 3, 4, 5])
    p = make_pad_params(img.shape, [0, 2, 1, 0], [0, 1, 3, 0], -128)
    cases.append(("tc_pad_s8(&P, A, out)", p, {"A": img}, pad_s8(p, img)))
    p = make_transpose_params(img.shape, [0, 3, 1, 2])
    cases.append(("tc_transpose_s8(&P, A, out)", p, {"A": img}, transpose_s8(p, img)))
    p = make_slice_params(img.shape, [0, 0, 1, 0], [1, 2, 2, 3], [1, 2, 2, 2])
    cases.append(("tc_slice_s8(&P, A, out)", p, {"A": img}, slice_s8(p, img)))
    ys = nearest_indices(3, 7, None, "half_pixel")
    xs = nearest_indices(4, 2, None, "asymmetric")
    p = make_resize_nearest_params([1, 3, 4, 5], 7, 2)
    cases.append(("tc_resize_nearest_s8(&P, Y, X, A, out)", p, {"A": img, "Y": ys, "X": xs},
                  resize_nearest_s8(p, ys, xs, img)))
    parts = make_concat_params([[1, 3, 4, 5], [1, 3, 4, 2]], 3, [(0.1, 0), (0.3, -7)],
                               (0.2, 4))
    other = rand_int8(rng, [1, 3, 4, 2])
    full = np.zeros(3 * 4 * 7, np.int8)
    for part, piece in zip(parts, [img, other]):
        concat_s8_part(part, piece, full)
    for part, piece in zip(parts, [img, other]):
        # The driver prefills the output with the golden result: each part must rewrite its
        # own columns identically and leave the others alone.
        cases.append(("tc_concat_s8_part(&P, A, out)", part, {"A": piece}, full))
    return cases


def _driver_source(cases):
    blocks, calls = [], []
    for k, (call_expr, p, arrays, want) in enumerate(cases):
        blocks.append(f"static const {p.C_STRUCT} P{k} = {c_initializer(p)};")
        for name, a in arrays.items():
            ctype = "int32_t" if a.dtype == np.int32 else "int8_t"
            blocks.append(c_array(f"{name}{k}", a, ctype))
        blocks.append(c_array(f"W{k}", want))
        expr = re.sub(r"\b([ABXY])\b", lambda m: f"{m.group(1)}{k}", call_expr)
        expr = expr.replace("&P", f"&P{k}")
        # A concat part writes only its own columns: start from the golden output instead.
        prefill = (f"memcpy(out, W{k}, sizeof W{k});" if call_expr.startswith("tc_concat")
                   else f"memset(out, {SENTINEL}, sizeof W{k});")
        calls.append(f"""    {{
        int8_t *out = (int8_t *)malloc(sizeof W{k});
        if (out != NULL) {prefill}
        if (out == NULL || {expr} != TC_OK || memcmp(out, W{k}, sizeof W{k}) != 0) {{
            printf("case {k} failed\\n");
            ++failures;
        }}
        free(out);
    }}""")
    return "\n".join([
        "#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>",
        '#include "tc_eltwise.h"', '#include "tc_tensor.h"', "", *blocks, "",
        "int main(void) {", "    int failures = 0;", *calls,
        '    if (failures == 0) printf("ALL OK\\n");', "    return failures != 0;", "}", ""])


def _sanitizers_available(cc, tmp_path):
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    r = subprocess.run([cc, "-fsanitize=address,undefined", str(probe), "-o",
                        str(tmp_path / "probe")], capture_output=True, text=True)
    return r.returncode == 0 and subprocess.run([str(tmp_path / "probe")]).returncode == 0


def test_kernels_under_asan_ubsan(tmp_path):
    cc = c_compiler()
    if shutil.which(cc) is None or not _sanitizers_available(cc, tmp_path):
        pytest.skip(f"{cc} cannot build and run -fsanitize=address,undefined programs here")
    driver = tmp_path / "driver.c"
    driver.write_text(_driver_source(_sanitizer_cases()))
    exe = tmp_path / "driver"
    build = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g",
                            "-O1", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                            "-fno-sanitize-recover=all", f"-I{RUNTIME}", str(driver),
                            *[str(RUNTIME / s) for s in MY_SOURCES], "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120,
                         env={"ASAN_OPTIONS": "detect_leaks=1",
                              "UBSAN_OPTIONS": "print_stacktrace=1"})
    assert run.returncode == 0 and "ALL OK" in run.stdout and not run.stderr, \
        run.stdout[-2000:] + run.stderr[-4000:]
