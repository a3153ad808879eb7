"""DSP fast paths of the int8 conv / depthwise / fully connected kernels (runtime_c/tc_arm_dsp.h).

On the host the fast paths are compiled with -DTC_EMULATE_DSP, which replaces the ARMv7E-M
instructions by a portable C emulation. Checked here:
  1. the emulated instructions against the ARM Architecture Reference Manual semantics;
  2. kernels built with the emulation (tc_conv2d_s8, tc_dwconv2d_s8 and its in-place variant,
     tc_fc_s8) == the golden numpy mirrors, bit for bit, on randomized and targeted shapes
     (in_c not a multiple of 4, odd out_c, strides, dilation, padding, groups, zero points at
     both extremes, saturation, accumulators near the int32 limits);
  3. the dispatch takes the fast path where documented: a build whose emulated SXTAB16 is
     deliberately wrong fails there and only there;
  4. the fast paths under AddressSanitizer + UndefinedBehaviorSanitizer;
  5. warning-free strict builds (gcc, clang) with and without the define, and, when
     arm-none-eabi-gcc is installed: Cortex-M4/M7/M33/M55 builds use the DSP instructions,
     Cortex-M3 builds do not, and the SIMD inner loops stay within their instruction budget.
"""
from __future__ import annotations

import dataclasses

import ctypes
import math
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pytest

from cbuild import RUNTIME, STRICT, c_compiler, kernel_sources, ptr, runtime_library
from tinycc.ops.conv import (Conv2dParams, DwConv2dParams, conv2d_first_groups, conv2d_first_may_run,
                             conv2d_first_passes, conv2d_overlap_licence, conv2d_s8, conv_output_size,
                             dwconv2d_s8, row_overlap_delta)
from tinycc.ops.dense import FcParams, fc_s8
from tinycc.kernels import lookup, prunable_macros
from tinycc.golden.arith import INT32_MAX, quantize_multiplier_array, requantize_to_int8

TC_OK = 0
SENTINEL = 0x5A
DSP_KERNELS = ("tc_conv2d_s8", "tc_dwconv2d_s8", "tc_fc_s8")  # the kernels with DSP variants
KERNEL_SOURCES = tuple(kernel_sources(*DSP_KERNELS))

# ---------------------------------------------------------------------------------------------
# Builds


@pytest.fixture(scope="module")
def dsp_lib():
    lib = runtime_library(defines=["TC_EMULATE_DSP"])
    _declare_kernels(lib)
    return lib


def _declare_kernels(lib):
    for name in ("tc_conv2d_s8", "tc_dwconv2d_s8", "tc_fc_s8"):
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p] * 7
    lib.tc_dwconv2d_s8_inplace.restype = ctypes.c_int
    lib.tc_dwconv2d_s8_inplace.argtypes = [ctypes.c_void_p] * 8


INTRINSICS_SHIM = r"""
#include "tc_arm_dsp.h"

int have_dsp(void) { return TC_HAVE_DSP; }

#if TC_HAVE_DSP
void unary(int op, const uint32_t *x, uint32_t *out, int n) {
    int i;
    for (i = 0; i < n; ++i) out[i] = op == 0 ? tc_sxtb16(x[i]) : tc_sxtb16_ror8(x[i]);
}

void binary(int op, const uint32_t *a, const uint32_t *x, uint32_t *out, int n) {
    int i;
    for (i = 0; i < n; ++i) out[i] = op == 0 ? tc_sxtab16(a[i], x[i]) : tc_sxtab16_ror8(a[i], x[i]);
}

void mac(int op, const uint32_t *x, const uint32_t *y, const int32_t *acc, int32_t *out, int n) {
    int i;
    for (i = 0; i < n; ++i) {
        out[i] = op == 0 ? tc_smlad(x[i], y[i], acc[i])
                 : op == 1 ? tc_smlabb(x[i], y[i], acc[i]) : tc_smlatt(x[i], y[i], acc[i]);
    }
}

void read_words(const int8_t *bytes, uint32_t *out, int n) {
    int i;
    for (i = 0; i < n; ++i) out[i] = tc_read_s8x4(bytes + i);
}
#endif
"""


def _build_shared(tmp_path: Path, name: str, source: str, defines=()):
    """A shared library from one C source that includes runtime_c headers."""
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    lib = tmp_path / f"lib{name}.so"
    subprocess.run([c_compiler(), *STRICT, *(f"-D{d}" for d in defines), f"-I{RUNTIME}", "-o",
                    str(lib), str(src)], check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(lib))


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    return _build_shared(tmp_path_factory.mktemp("shim"), "dsp_shim", INTRINSICS_SHIM,
                         defines=["TC_EMULATE_DSP"])


# ---------------------------------------------------------------------------------------------
# 1. Emulated instructions vs the ARMv7-M Architecture Reference Manual pseudocode


def _lanes(words, bits):
    """Signed lanes [n][32 // bits] of uint32 words, lane k = bits k*bits .. (k+1)*bits - 1."""
    lanes = np.stack([(words.astype(np.int64) >> (bits * k)) & ((1 << bits) - 1)
                      for k in range(32 // bits)], axis=1)
    return np.where(lanes >= 1 << (bits - 1), lanes - (1 << bits), lanes)


def _pack16(lo, hi):
    return ((lo & 0xFFFF) | ((hi & 0xFFFF) << 16)).astype(np.uint32)


def _wrap32(v):
    return ((v + 2**31) % 2**32 - 2**31).astype(np.int32)


def _random_words(rng, n):
    """Uniform words plus words made of the extreme byte / halfword values."""
    edge_bytes = np.array([0x00, 0x01, 0x7F, 0x80, 0x81, 0xFF], dtype=np.uint32)
    edge = sum(rng.choice(edge_bytes, n).astype(np.uint32) << (8 * k) for k in range(4))
    uniform = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    return np.concatenate([uniform, edge.astype(np.uint32)])


def test_emulation_is_selected(shim, tmp_path):
    assert shim.have_dsp() == 1
    plain = _build_shared(tmp_path, "plain_shim", INTRINSICS_SHIM)  # x86 host: no DSP
    assert plain.have_dsp() == 0
    disabled = _build_shared(tmp_path, "off_shim", INTRINSICS_SHIM,
                             defines=["TC_EMULATE_DSP", "TC_NO_DSP"])
    assert disabled.have_dsp() == 0


def test_emulated_extend_instructions(shim):
    rng = np.random.default_rng(1)
    x = _random_words(rng, 3000)
    a = _random_words(rng, 3000)
    n = x.size
    out = np.empty(n, dtype=np.uint32)
    b = _lanes(x, 8)
    a16 = _lanes(a, 16)
    expected = {
        ("unary", 0): _pack16(b[:, 0], b[:, 2]),            # SXTB16
        ("unary", 1): _pack16(b[:, 1], b[:, 3]),            # SXTB16 Rm, ROR #8
        ("binary", 0): _pack16(a16[:, 0] + b[:, 0], a16[:, 1] + b[:, 2]),  # SXTAB16
        ("binary", 1): _pack16(a16[:, 0] + b[:, 1], a16[:, 1] + b[:, 3]),  # SXTAB16 ROR #8
    }
    for (kind, op), want in expected.items():
        if kind == "unary":
            shim.unary(op, ptr(x), ptr(out), n)
        else:
            shim.binary(op, ptr(a), ptr(x), ptr(out), n)
        assert np.array_equal(out, want), (kind, op)


def test_emulated_multiply_accumulate(shim):
    rng = np.random.default_rng(2)
    x = _random_words(rng, 3000)
    y = _random_words(rng, 3000)
    n = x.size
    acc = np.concatenate([rng.integers(-2**31, 2**31, n - 4, dtype=np.int64),
                          [2**31 - 1, -2**31, 2**31 - 2**15, -2**31 + 5]]).astype(np.int32)
    out = np.empty(n, dtype=np.int32)
    xs, ys = _lanes(x, 16), _lanes(y, 16)
    products = xs * ys
    expected = [_wrap32(acc + products[:, 0] + products[:, 1]),  # SMLAD (wraps, sets Q)
                _wrap32(acc + products[:, 0]),                   # SMLABB
                _wrap32(acc + products[:, 1])]                   # SMLATT
    for op, want in enumerate(expected):
        shim.mac(op, ptr(x), ptr(y), ptr(acc), ptr(out), n)
        assert np.array_equal(out, want), op
    # 0x8000 * 0x8000 twice is 2^31, the one SMLAD product sum that leaves int32: it wraps.
    both_min = np.full(4, 0x80008000, dtype=np.uint32)
    zero = np.zeros(4, dtype=np.int32)
    shim.mac(0, ptr(both_min), ptr(both_min), ptr(zero), ptr(out), 4)
    assert np.all(out[:4] == -2**31)


def test_emulated_word_read_is_unaligned_little_endian(shim):
    data = np.arange(-20, 20, dtype=np.int8)
    out = np.empty(data.size - 3, dtype=np.uint32)
    shim.read_words(ptr(data), ptr(out), out.size)
    raw = data.view(np.uint8).astype(np.uint32)
    expected = raw[:-3] | raw[1:-2] << 8 | raw[2:-1] << 16 | raw[3:] << 24
    assert np.array_equal(out, expected)


REQUANT_SHIM = r"""
#include "tc_dot_s8_dsp.h"

/* out[i] for acc[i], (mult, shift, out_zp) = q[3i..3i+2]: form 0 tc_dsp_rq_near, 1 tc_dsp_rq2 on
 * the doubled (quadrupled for shift 1) accumulator, 2 tc_requant_s8_nonneg. */
void requant(int form, const int32_t *acc, const int32_t *q, int32_t *out, int n) {
    int i;
    for (i = 0; i < n; ++i) {
        const int32_t m = q[3 * i], sh = q[3 * i + 1], zp = q[3 * i + 2];
        if (form == 0) {
            out[i] = tc_dsp_rq_near(acc[i], m, tc_dsp_rq2_k(sh, zp), sh);
        } else if (form == 1) {
            out[i] = tc_dsp_rq2(acc[i] * (sh > 0 ? 4 : 2), m, tc_dsp_rq2_k(sh, zp), sh < 0 ? -sh : 0);
        } else {
            out[i] = tc_requant_s8_nonneg(acc[i], m, sh, zp, -128, 127);
        }
    }
}
"""


def test_requantization_of_shifts_near_zero_on_edge_accumulators(tmp_path):
    """tc_dot_s8_dsp.h: tc_dsp_rq_near (shifts -1..1, any int32 accumulator, multipliers 0 or
    >= 2^11) and tc_dsp_rq2 (shifts -23..1, the accumulator doubled below 2^30, quadrupled below
    2^29 for shift 1) == the golden requantization, on the emulated instructions: every edge
    accumulator (EDGE_ACCUMULATORS, int32's ends, their neighbours, rounding ties) x multipliers
    at the ends of their range x every zero point's extremes, and random ones."""
    lib = _build_shared(tmp_path, "rq_shim", REQUANT_SHIM, defines=["TC_EMULATE_DSP"])
    rng = np.random.default_rng(12)
    edges = np.array(EDGE_ACCUMULATORS + [-(2**31), -(2**31) + 3], dtype=np.int64)
    ties = np.array([(2 * k + 1) << j for j in range(0, 31, 3) for k in range(3)], dtype=np.int64)
    accs = np.unique(np.concatenate([edges, edges + 1, edges - 1, ties, -ties, ties + 1, -ties - 1,
                                     rng.integers(-(2**31), 2**31, 3000),
                                     rng.integers(-(2**16), 2**16, 3000)]))
    accs = accs[(accs >= -(2**31)) & (accs < 2**31)]
    mults = np.array([0, 2**11, 2**11 + 1, 2**20 + 7, 2**30, 2**30 + 1, 1518500250, 2**31 - 2,
                      2**31 - 1, *rng.integers(2**30, 2**31, 6)], dtype=np.int64)
    for shift in range(-23, 2):
        for zp in (-128, -1, 0, 57, 127):
            m, a = np.meshgrid(mults, accs, indexing="ij")
            m, a = m.reshape(-1), a.reshape(-1)
            q = np.stack([m, np.full_like(m, shift), np.full_like(m, zp)], 1).astype(np.int32)
            want = requantize_to_int8(a, m, np.full_like(m, shift), zp)
            forms = [1] + ([0] if shift >= -1 else [])
            for form in (2, *forms):
                sel = np.ones(a.size, bool) if form != 1 else np.abs(a) < (2**29 if shift > 0 else 2**30)
                acc = np.ascontiguousarray(a[sel], dtype=np.int32)
                out = np.zeros(acc.size, np.int32)
                lib.requant(form, ptr(acc), ptr(np.ascontiguousarray(q[sel])), ptr(out), acc.size)
                bad = np.flatnonzero(out != want[sel])
                assert bad.size == 0, (form, shift, zp, int(acc[bad[0]]), int(q[sel][bad[0], 0]),
                                       int(out[bad[0]]), int(want[sel][bad[0]]))


# ---------------------------------------------------------------------------------------------
# Case builders


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def make_multipliers(rng, channels, taps, regime):
    """Per-channel (mult, shift) for accumulators of about 70 * 128 * sqrt(taps)."""
    base = 40.0 / (70.0 * 128.0 * math.sqrt(taps))
    if regime in ("mixed", "mixed_near"):
        kinds = ["normal", "saturate", "large"] if regime == "mixed" else ["normal", "near"]
        parts = [make_multipliers(rng, 1, taps, _pick(rng, kinds)) for _ in range(channels)]
        return np.concatenate([m for m, _ in parts]), np.concatenate([s for _, s in parts])
    if regime == "near":  # multipliers of 1/4 to 2: shifts -1, 0, 1 (ternary layers' scales)
        mult, shift = quantize_multiplier_array(2.0 ** rng.uniform(-2, 1, channels))
        return mult.astype(np.int32), shift.astype(np.int32)
    exponent = {"normal": (-1.5, 1.5), "saturate": (4, 8)}.get(regime)
    if regime == "large":  # multipliers >= 1: positive shifts with a saturating left shift
        reals = 2.0 ** rng.uniform(0, 20, channels)
    else:
        reals = base * 2.0 ** rng.uniform(*exponent, channels)
    mult, shift = quantize_multiplier_array(reals)
    return mult.astype(np.int32), shift.astype(np.int32)


def make_input(rng, shape, in_zp, style):
    if style == "uniform":
        return rng.integers(-128, 128, shape).astype(np.int8)
    if style == "extremes":  # x - in_zp at +-255 when the zero point is at the other extreme
        return rng.choice(np.array([-128, 127], dtype=np.int8), size=shape)
    return np.clip(in_zp + rng.integers(-20, 21, shape), -128, 127).astype(np.int8)


# Accumulators at the edges of the requantizations' ranges (tc_dot_s8_dsp.h: doubling
# saturates from 2^30, 2^29 for shift 1; int32's ends), for bias-only cases (zero weights).
EDGE_ACCUMULATORS = [-(2**31) + 1, -(2**31) + 2, -(2**30) - 1, -(2**30), -(2**30) + 1, -(2**29) - 1,
                     -(2**29), -(2**29) + 1, -(2**28), -65537, -256, -129, -128, -3, -2, -1, 0, 1, 2,
                     3, 127, 128, 255, 256, 65537, 2**28, 2**29 - 1, 2**29, 2**29 + 1, 2**30 - 1,
                     2**30, 2**30 + 1, 2**31 - 2, 2**31 - 1]


def make_bias(rng, channels, kind, max_abs_acc):
    if kind == "none":
        return None
    if kind == "edges":  # every edge value, then random ones at every magnitude
        extra = [int(rng.integers(-(2**k), 2**k)) for k in rng.integers(0, 31, channels)]
        return np.array((EDGE_ACCUMULATORS + extra)[:channels], dtype=np.int32)
    if kind == "around_2_30":  # either side of tc_dwq_rq2_applies's bound (3x3 quad groups)
        bound = 2**30 - 9 * 128 * 255
        edges = [bound - 1, bound, 2**30, 2**30 + 4097, 1000, -3]
        values = [e * sign for e in edges for sign in (1, -1)]
        return np.array([values[int(i)] for i in rng.integers(0, len(values), channels)], dtype=np.int32)
    if kind == "near_limit":  # acc + bias still fits int32, but only just
        limit = INT32_MAX - max_abs_acc
        return (rng.choice([-1, 1], channels) * limit).astype(np.int32)
    magnitude = 2 ** int(rng.integers(0, 21))
    return rng.integers(-magnitude, magnitude + 1, channels).astype(np.int32)


def window_geometry(rng, in_hw=None, k=None, stride=None, dil=None, pads=None):
    k = k or (_pick(rng, [1, 1, 2, 3, 3, 5]), _pick(rng, [1, 1, 2, 3, 3, 4]))
    stride = stride or tuple(int(s) for s in rng.integers(1, 3, 2))
    dil = dil or ((1, 1) if rng.random() < 0.6 else tuple(int(d) for d in rng.integers(1, 4, 2)))
    span = [dil[i] * (k[i] - 1) + 1 for i in range(2)]
    if pads is None:
        pads = tuple(int(rng.integers(0, span[i % 2])) for i in range(4))
    in_hw = in_hw or tuple(int(n) for n in rng.integers(1, 10, 2))
    in_hw = tuple(max(in_hw[i], span[i] - pads[i] - pads[i + 2]) for i in range(2))
    out_hw = tuple(conv_output_size(in_hw[i], k[i], stride[i], dil[i], pads[i], pads[i + 2])
                   for i in range(2))
    return dict(in_h=in_hw[0], in_w=in_hw[1], out_h=out_hw[0], out_w=out_hw[1], k_h=k[0],
                k_w=k[1], stride_h=stride[0], stride_w=stride[1], dil_h=dil[0], dil_w=dil[1],
                pad_top=pads[0], pad_left=pads[1])


def _quant(rng, in_zp, out_zp, act):
    in_zp = _pick(rng, [-128, 127, int(rng.integers(-128, 128))]) if in_zp is None else in_zp
    out_zp = int(rng.integers(-128, 128)) if out_zp is None else out_zp
    act = act or _pick(rng, ["full", "full", "relu", "random"])
    if act == "full":
        return in_zp, out_zp, -128, 127
    if act == "relu":
        return in_zp, out_zp, out_zp, 127
    lo = int(rng.integers(-128, 100))
    return in_zp, out_zp, lo, int(rng.integers(lo, 128))


def _case_arrays(rng, p, x_shape, w_shape, channels, taps, regime, bias, w_range, style):
    style = style or _pick(rng, ["uniform", "uniform", "extremes", "around_zp"])
    x = make_input(rng, x_shape, p.in_zp, style)
    w = rng.integers(w_range[0], w_range[1] + 1, w_shape).astype(np.int8)
    regime = regime or _pick(rng, ["normal", "normal", "mixed"])
    mult, shift = make_multipliers(rng, channels, taps, regime)
    bias = make_bias(rng, channels, bias or _pick(rng, ["small", "small", "none"]),
                     255 * 128 * taps)
    return p, x, w, bias, mult, shift


def conv_case(seed, in_c=None, out_c=None, groups=None, in_zp=None, out_zp=None, act=None,
              regime=None, bias=None, w_range=(-127, 127), style=None, **geometry):
    rng = np.random.default_rng(seed)
    geo = window_geometry(rng, **geometry)
    groups = groups or _pick(rng, [1, 1, 1, 2])
    in_c = in_c or groups * int(rng.integers(1, 10))
    out_c = out_c or groups * int(rng.integers(1, 6))
    in_zp, out_zp, act_min, act_max = _quant(rng, in_zp, out_zp, act)
    p = Conv2dParams(in_c=in_c, out_c=out_c, groups=groups, in_zp=in_zp, out_zp=out_zp,
                     act_min=act_min, act_max=act_max, **geo)
    taps = p.k_h * p.k_w * in_c // groups
    return _case_arrays(rng, p, (p.in_h, p.in_w, in_c), (out_c, p.k_h, p.k_w, in_c // groups),
                        out_c, taps, regime, bias, w_range, style)


def dw_case(seed, in_c=None, depth_mult=None, in_zp=None, out_zp=None, act=None, regime=None,
            bias=None, w_range=(-127, 127), style=None, **geometry):
    rng = np.random.default_rng(seed)
    geo = window_geometry(rng, **geometry)
    in_c = in_c or int(rng.integers(1, 14))
    depth_mult = depth_mult or _pick(rng, [1, 1, 1, 2])
    in_zp, out_zp, act_min, act_max = _quant(rng, in_zp, out_zp, act)
    out_c = in_c * depth_mult
    p = DwConv2dParams(in_c=in_c, out_c=out_c, depth_mult=depth_mult, in_zp=in_zp,
                       out_zp=out_zp, act_min=act_min, act_max=act_max, **geo)
    return _case_arrays(rng, p, (p.in_h, p.in_w, in_c), (p.k_h, p.k_w, out_c), out_c,
                        p.k_h * p.k_w, regime, bias, w_range, style)


def fc_case(seed, rows=None, in_features=None, out_features=None, in_zp=None, out_zp=None,
            act=None, regime=None, bias=None, w_range=(-127, 127), style=None):
    rng = np.random.default_rng(seed)
    rows = rows or _pick(rng, [1, 1, 2, 3, 5])
    if in_features is None:
        in_features = int(rng.integers(1, 8) if rng.random() < 0.25 else rng.integers(8, 70))
    out_features = out_features or int(rng.integers(1, 12))
    in_zp, out_zp, act_min, act_max = _quant(rng, in_zp, out_zp, act)
    p = FcParams(rows, in_features, out_features, in_zp, out_zp, act_min, act_max)
    p, x, w, b, mult, shift = _case_arrays(rng, p, (rows, in_features), (out_features, in_features),
                                           out_features, in_features, regime, bias, w_range, style)
    if rng.random() < 0.3:  # per-tensor requantization: one (mult, shift) for the layer
        p = dataclasses.replace(p, per_channel=0)
        mult, shift = mult[:1].copy(), shift[:1].copy()
    return p, x, w, b, mult, shift


# Targeted cases: every shape class of the dispatch, by name.
CONV_TARGETED = {
    "pointwise_dense": dict(in_hw=(5, 7), k=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0), in_c=16,
                            out_c=8, groups=1),
    "pointwise_in_c_6_out_c_5": dict(in_hw=(3, 3), k=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0),
                                     in_c=6, out_c=5, groups=1),
    "pointwise_in_c_3_portable": dict(k=(1, 1), stride=(1, 1), pads=(1, 0, 0, 0), in_c=3,
                                      out_c=4, groups=1),
    "pointwise_cropped_rows": dict(in_hw=(6, 4), k=(1, 1), stride=(1, 1), pads=(0, 0, -2, 0),
                                   in_c=8, out_c=6, groups=1),
    "pointwise_stride_2": dict(in_hw=(7, 6), k=(1, 1), stride=(2, 2), pads=(0, 0, 0, 0), in_c=9,
                               out_c=7, groups=1),
    "pointwise_padded": dict(in_hw=(3, 4), k=(1, 1), stride=(1, 1), pads=(1, 2, 1, 0), in_c=8,
                             out_c=3, groups=1, bias="small"),
    "3x3_same_in_c_8": dict(in_hw=(6, 7), k=(3, 3), stride=(1, 1), dil=(1, 1),
                            pads=(1, 1, 1, 1), in_c=8, out_c=6, groups=1),
    "3x3_s2_in_c_5_out_c_7": dict(in_hw=(9, 8), k=(3, 3), stride=(2, 2), dil=(1, 1),
                                  pads=(0, 0, 1, 1), in_c=5, out_c=7, groups=1),
    "3x3_in_c_1_runs_of_3": dict(in_hw=(6, 6), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                 pads=(1, 1, 1, 1), in_c=1, out_c=4, groups=1),
    "5x5_in_c_1": dict(in_hw=(8, 9), k=(5, 5), stride=(1, 1), dil=(1, 1), pads=(2, 2, 2, 2),
                       in_c=1, out_c=3, groups=1),
    "dscnn_10x4_s2": dict(in_hw=(25, 10), k=(10, 4), stride=(2, 2), dil=(1, 1),
                          pads=(4, 1, 5, 1), in_c=1, out_c=8, groups=1),
    "dilated_2x3_in_c_4": dict(in_hw=(10, 11), k=(3, 3), stride=(1, 1), dil=(2, 3),
                               pads=(2, 3, 2, 3), in_c=4, out_c=3, groups=1),
    "dilated_in_c_3_portable": dict(in_hw=(8, 8), k=(3, 3), stride=(1, 1), dil=(1, 2),
                                    pads=(1, 2, 1, 2), in_c=3, out_c=2, groups=1),
    "groups_2_group_c_6": dict(in_c=12, out_c=6, groups=2, k=(3, 3), pads=(1, 1, 1, 1)),
    "groups_3_group_c_2_portable": dict(in_c=6, out_c=9, groups=3),
    "out_w_1": dict(in_hw=(5, 3), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 0, 1, 0),
                    in_c=8, out_c=5, groups=1),
    "out_w_2_odd_out_c": dict(in_hw=(4, 4), k=(3, 3), stride=(2, 2), dil=(1, 1),
                              pads=(1, 1, 0, 0), in_c=12, out_c=9, groups=1),
    "wide_64x32": dict(in_hw=(6, 6), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                       in_c=64, out_c=32, groups=1),
    # padded windows widened straight from the input (in_c a multiple of 4), chunks (144
    # values) ending mid-row, in_zp at the extremes so that a wrong padding word shows
    "padded_in_c_20_chunk_mid_row": dict(in_hw=(4, 5), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                         pads=(1, 2, 1, 0), in_c=20, out_c=6, groups=1,
                                         in_zp=-128, style="extremes"),
    "in_zp_min_x_max": dict(in_zp=-128, style="extremes", in_c=8, out_c=4, groups=1),
    "in_zp_max_x_min": dict(in_zp=127, style="extremes", in_c=7, out_c=4, groups=1),
    "weights_full_range": dict(w_range=(-128, 127), in_c=10, out_c=6, groups=1),
    "saturation": dict(regime="saturate", act="full", in_c=8, out_c=6, groups=1),
    "large_multipliers": dict(regime="large", in_c=8, out_c=5, groups=1),
    "bias_near_int32_limits": dict(bias="near_limit", regime="normal", in_c=8, out_c=4,
                                   groups=1),
    "relu": dict(act="relu", in_c=8, out_c=4, groups=1),
    # shifts -1..1 on the pixel-pair paths (tc_dsp_rq_near; tc_conv2d_pairs_near_asm on the core)
    "near_shifts_pointwise_in_c_16": dict(in_hw=(4, 5), k=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0),
                                          in_c=16, out_c=12, groups=1, regime="near", act="full",
                                          style="around_zp", w_range=(-3, 3)),
    "near_mixed_3x3_in_c_8": dict(in_hw=(5, 6), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                  pads=(1, 1, 1, 1), in_c=8, out_c=11, groups=1,
                                  regime="mixed_near", act="full", style="around_zp",
                                  w_range=(-2, 2)),
    "near_mixed_chunked_in_c_160": dict(in_hw=(3, 3), k=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0),
                                        in_c=160, out_c=9, groups=1, regime="mixed_near",
                                        act="full", style="around_zp", w_range=(-1, 1)),
    "near_edges_pairs": dict(in_hw=(2, 2), k=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0), in_c=12,
                             out_c=40, groups=1, regime="near", act="full", w_range=(0, 0),
                             bias="edges"),
    **{f"shallow_{name}": dict({"stride": (1, 1), "dil": (1, 1), "regime": "normal",
                                "act": "full", **geo}, k=(1, 1), pads=(0, 0, 0, 0), groups=1)
       for name, geo in {  # tc_conv2d_s8_dsp.c's shallow pointwise path (Cin <= 8)
           "in_c_1": dict(in_hw=(3, 5), in_c=1, out_c=3),
           "in_c_3_odd_pixels": dict(in_hw=(5, 7), in_c=3, out_c=5),
           "in_c_4_blocks": dict(in_hw=(13, 12), in_c=4, out_c=3),     # 156 pixels: 2 blocks
           "in_c_6_s2_dilated": dict(in_hw=(7, 6), stride=(2, 2), dil=(2, 3), in_c=6, out_c=4),
           "in_c_8_blocks_odd": dict(in_hw=(7, 11), in_c=8, out_c=6),  # 77: 2 blocks, odd
           "in_c_7_relu": dict(in_hw=(4, 5), in_c=7, out_c=5, act="relu"),
           "in_c_2_clamped_blocks": dict(in_hw=(13, 13), in_c=2, out_c=3, act="random"),
           "in_c_5_extremes": dict(in_hw=(3, 3), in_c=5, out_c=4, in_zp=-128, style="extremes",
                                   w_range=(-128, 127), regime="normal"),
           "in_c_3_in_zp_127": dict(in_hw=(3, 5), in_c=3, out_c=4, in_zp=127, style="extremes",
                                    w_range=(-128, 127)),
           "in_c_4_bias_near_limit": dict(in_hw=(3, 3), in_c=4, out_c=4, bias="near_limit",
                                          regime="normal"),
           # shifts -1..1 (ternary layers; tc_dsp_rq2 with the accumulator's doubling, or
           # quadrupling, folded into the weights)
           "in_c_8_near_shifts": dict(in_hw=(5, 5), in_c=8, out_c=9, regime="near",
                                      style="around_zp", w_range=(-3, 3)),
           "in_c_4_mixed_near_odd": dict(in_hw=(3, 7), in_c=4, out_c=10, regime="mixed_near",
                                         style="around_zp", w_range=(-4, 4)),
           "in_c_3_near_clamped": dict(in_hw=(4, 5), in_c=3, out_c=6, regime="near", act="random",
                                       style="around_zp", w_range=(-5, 5)),
           # folded biases beyond 2^28: those channels' exact loop; edges of every requantization
           "in_c_4_near_edges": dict(in_hw=(2, 3), in_c=4, out_c=40, regime="mixed_near",
                                     w_range=(0, 0), bias="edges"),
           # left shifts: the pixel-pair path, Cin 3 the portable one
           "in_c_8_left_shifts_not_taken": dict(in_hw=(3, 4), in_c=8, out_c=7, regime="large"),
           "in_c_3_left_shifts_portable": dict(in_hw=(3, 4), in_c=3, out_c=2, regime="large"),
       }.items()},
    **{f"first_{name}": dict({"dil": (1, 1), "regime": "normal", "act": "full", **geo}, groups=1)
       for name, geo in {  # tc_conv2d_s8_first_dsp.c: in_c <= 4, a window of 2..64 values
           # the VWW stem (odd width, the bottom/right pixel padded), the IC stem (every side)
           "vww_3x3_s2_in_c_3_odd_width": dict(in_hw=(9, 11), k=(3, 3), stride=(2, 2),
                                               pads=(0, 0, 1, 1), in_c=3, out_c=8),
           "ic_3x3_s1_in_c_3_padded": dict(in_hw=(7, 9), k=(3, 3), stride=(1, 1),
                                           pads=(1, 1, 1, 1), in_c=3, out_c=6),
           # the KWS stem: 10x4 windows over one plane, rows padded above and below
           "kws_10x4_s2_in_c_1": dict(in_hw=(15, 10), k=(10, 4), stride=(2, 2),
                                      pads=(4, 1, 5, 1), in_c=1, out_c=2),
           "in_c_1_3x3_tail_only": dict(in_hw=(6, 7), k=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1),
                                        in_c=1, out_c=4),
           "in_c_2_5x3_odd_out_c": dict(in_hw=(8, 7), k=(5, 3), stride=(1, 2),
                                        pads=(2, 1, 2, 1), in_c=2, out_c=5),
           "in_c_4_3x3_s2": dict(in_hw=(9, 8), k=(3, 3), stride=(2, 2), pads=(1, 2, 1, 0),
                                 in_c=4, out_c=4),
           # a fused clamp (first_clamp over each finished block), a ReLU (act_min = out_zp)
           "in_c_4_3x3_s2_clamped": dict(in_hw=(9, 8), k=(3, 3), stride=(2, 2),
                                         pads=(1, 2, 1, 0), in_c=4, out_c=4, act="random"),
           "in_c_3_relu": dict(in_hw=(5, 6), k=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), in_c=3,
                               out_c=4, act="relu", out_zp=-100),
           # IC's ReLU stem in two passes; 15 channels: blocks of an odd number of outputs
           "ic_relu_two_passes_out_c_15": dict(in_hw=(5, 7), k=(3, 3), stride=(1, 1),
                                               pads=(1, 1, 1, 1), in_c=3, out_c=15, act="relu",
                                               out_zp=-60),
           "in_c_3_unequal_pads": dict(in_hw=(6, 5), k=(3, 3), stride=(1, 1), pads=(2, 0, 0, 2),
                                       in_c=3, out_c=4),
           "in_c_3_extremes": dict(in_hw=(5, 6), k=(3, 3), stride=(2, 1), pads=(1, 1, 1, 1),
                                   in_c=3, out_c=4, in_zp=-128, style="extremes",
                                   w_range=(-128, 127)),
           "in_c_3_in_zp_127": dict(in_hw=(5, 5), k=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1),
                                    in_c=3, out_c=4, in_zp=127, style="extremes",
                                    w_range=(-128, 127)),
           "in_c_3_bias_near_limit": dict(in_hw=(4, 5), k=(3, 3), stride=(1, 1),
                                          pads=(1, 1, 1, 1), in_c=3, out_c=4, bias="near_limit"),
           "in_c_3_near_shifts_not_taken": dict(in_hw=(5, 6), k=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1),
                                      in_c=3, out_c=6, regime="near", style="around_zp",
                                      w_range=(-3, 3)),
           "in_c_2_mixed_near_not_taken": dict(in_hw=(5, 5), k=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1),
                                     in_c=2, out_c=9, regime="mixed_near", style="around_zp",
                                     w_range=(-3, 3)),
           # accumulators at the requantization's edges (16 channels of 3 groups fit)
           "in_c_1_edges": dict(in_hw=(3, 3), k=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1),
                                in_c=1, out_c=16, w_range=(0, 0), bias="edges"),
           # many blocks (8 pixels at 7 groups beside 4 pairs' weights) spanning row ends
           "in_c_3_blocks_out_c_8": dict(in_hw=(9, 7), k=(3, 3), stride=(1, 1),
                                         pads=(1, 1, 1, 1), in_c=3, out_c=8),
           "in_c_3_dilated_rows": dict(in_hw=(9, 7), k=(3, 3), stride=(1, 1), dil=(2, 1),
                                       pads=(2, 1, 2, 1), in_c=3, out_c=4),
           # images lower or narrower than the window: no window inside
           "in_c_4_image_lower_than_window": dict(in_hw=(1, 8), k=(2, 2), stride=(1, 1),
                                                  pads=(0, 0, 1, 0), in_c=4, out_c=5),
           "in_c_3_image_narrower_than_window": dict(in_hw=(6, 2), k=(3, 3), stride=(1, 1),
                                                     pads=(1, 1, 1, 1), in_c=3, out_c=4),
           "in_c_1_5x8_10_groups": dict(in_hw=(10, 9), k=(5, 8), stride=(1, 1),
                                        pads=(2, 4, 2, 3), in_c=1, out_c=2),
           # weights and 8 pixels beyond the 224 words: the gathered path
           "in_c_1_8x8_not_taken": dict(in_hw=(10, 9), k=(8, 8), stride=(1, 1),
                                        pads=(3, 4, 4, 3), in_c=1, out_c=4),
           # channels beyond one pass: two passes over the input (IC's 16 channels at 7 groups,
           # an odd last pass, 32 channels at 3 groups); three passes: the gathered path
           "ic_out_c_16_two_passes": dict(in_hw=(5, 6), k=(3, 3), stride=(1, 1),
                                          pads=(1, 1, 1, 1), in_c=3, out_c=16),
           "in_c_3_out_c_13_two_passes": dict(in_hw=(6, 5), k=(3, 3), stride=(2, 1),
                                              pads=(1, 0, 1, 1), in_c=3, out_c=13),
           "in_c_1_out_c_32_two_passes": dict(in_hw=(7, 9), k=(3, 3), stride=(1, 1),
                                              pads=(1, 1, 1, 1), in_c=1, out_c=32),
           "in_c_3_out_c_17_not_taken": dict(in_hw=(5, 6), k=(3, 3), stride=(1, 1),
                                             pads=(1, 1, 1, 1), in_c=3, out_c=17),
           # the IC stem at full size (two passes, 124 border windows staged from a copy); a
           # 3x3x3 stem at stride 2 over an odd width padded unequally on every side, 15 channels
           # (an odd last pair); the KWS stem at full size (64 channels: the gathered path)
           "ic_stem_32x32_out_c_16": dict(in_hw=(32, 32), k=(3, 3), stride=(1, 1),
                                          pads=(1, 1, 1, 1), in_c=3, out_c=16),
           "in_c_3_s2_odd_width_pads_every_side_out_c_15": dict(in_hw=(10, 13), k=(3, 3),
                                                               stride=(2, 2), pads=(2, 1, 1, 2),
                                                               in_c=3, out_c=15),
           "kws_stem_49x10_out_c_64_not_taken": dict(in_hw=(49, 10), k=(10, 4), stride=(2, 2),
                                                     pads=(4, 1, 5, 1), in_c=1, out_c=64),
           # 5x5x3: 19 groups, more than the path's 16: the gathered pixel-pair path
           "in_c_3_5x5_not_taken": dict(in_hw=(6, 6), k=(5, 5), stride=(1, 1),
                                        pads=(2, 2, 2, 2), in_c=3, out_c=4),
           "kws_10x4_out_c_24_not_taken": dict(in_hw=(12, 10), k=(10, 4), stride=(2, 2),
                                               pads=(4, 1, 5, 1), in_c=1, out_c=24),
           "in_c_3_left_shifts_not_taken": dict(in_hw=(4, 4), k=(3, 3), stride=(1, 1),
                                                pads=(1, 1, 1, 1), in_c=3, out_c=3,
                                                regime="large"),
       }.items()},
}

DW_TARGETED = {
    "3x3_s1_in_c_8": dict(in_hw=(6, 7), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                          in_c=8, depth_mult=1),
    "3x3_s2_in_c_16": dict(in_hw=(9, 10), k=(3, 3), stride=(2, 2), dil=(1, 1),
                           pads=(1, 1, 1, 1), in_c=16, depth_mult=1),
    "in_c_5_leftover": dict(in_c=5, depth_mult=1),
    "in_c_7_leftover": dict(in_c=7, depth_mult=1, k=(3, 3), pads=(1, 1, 1, 1)),
    # 3x3, 4 channels at a time (tc_dwconv2d_s8_quad; pixel pairs in assembly at stride 1)
    "quad_odd_width": dict(in_hw=(5, 7), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                           in_c=12, depth_mult=1, act="full", regime="normal"),
    "quad_width_2": dict(in_hw=(4, 2), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                         in_c=4, depth_mult=1, act="full", regime="normal"),
    "quad_width_1": dict(in_hw=(3, 1), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                         in_c=8, depth_mult=1, act="full", regime="normal"),
    "quad_valid": dict(in_hw=(6, 6), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(0, 0, 0, 0),
                       in_c=8, depth_mult=1, act="full", regime="normal"),
    "quad_s2_odd_width": dict(in_hw=(7, 9), k=(3, 3), stride=(2, 2), dil=(1, 1),
                              pads=(1, 1, 1, 1), in_c=8, depth_mult=1, act="full",
                              regime="normal"),
    "quad_s2_widest": dict(in_hw=(5, 48), k=(3, 3), stride=(2, 2), dil=(1, 1),
                           pads=(1, 1, 1, 1), in_c=4, depth_mult=1, act="full", regime="normal"),
    "quad_widest": dict(in_hw=(3, 48), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                        in_c=4, depth_mult=1, act="full", regime="normal"),
    "quad_too_wide": dict(in_hw=(3, 49), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                          in_c=4, depth_mult=1, act="full", regime="normal"),
    "quad_clamped": dict(in_hw=(5, 6), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                         in_c=8, depth_mult=1, act="relu", regime="normal"),
    "quad_mixed_shifts": dict(in_hw=(5, 6), k=(3, 3), stride=(1, 1), dil=(1, 1),
                              pads=(1, 1, 1, 1), in_c=8, depth_mult=1, act="full", regime="mixed"),
    # narrow planes by output columns (dwq_by_columns): KWS's 25x5, the C line where clamped
    "quad_columns_kws": dict(in_hw=(25, 5), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                             in_c=8, depth_mult=1, act="full", regime="normal"),
    "quad_columns_clamped": dict(in_hw=(13, 3), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                 pads=(2, 0, 0, 1), in_c=4, depth_mult=1, act="relu"),
    # by columns without padding columns (every ring column gathered from the image), and
    # 6 columns (the ring of 3 slots wraps twice)
    "quad_columns_whole_valid": dict(in_hw=(14, 4), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                     pads=(0, 0, 0, 0), in_c=8, depth_mult=1, act="full",
                                     regime="normal"),
    "quad_columns_ring": dict(in_hw=(30, 6), k=(3, 3), stride=(1, 1), dil=(1, 1),
                              pads=(1, 1, 1, 1), in_c=8, depth_mult=1, act="full", regime="normal"),
    # biases either side of 2^30 - 9 * 128 * 255: the groups whose sums may reach 2^30 keep them
    # undoubled and requantize the general way (tc_dwq_rq2_applies)
    "quad_bias_around_2_30": dict(in_hw=(5, 6), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                  pads=(1, 1, 1, 1), in_c=48, depth_mult=1, act="full",
                                  regime="normal", bias="around_2_30"),
    "in_c_3_portable": dict(in_c=3, depth_mult=1),
    "depth_mult_2_portable": dict(in_c=6, depth_mult=2),
    "dilated": dict(in_hw=(8, 8), k=(3, 3), stride=(1, 1), dil=(2, 2), pads=(2, 2, 2, 2), in_c=8,
                    depth_mult=1),
    "7x7_on_7x5": dict(in_hw=(7, 5), k=(7, 7), stride=(1, 1), dil=(1, 1), pads=(3, 3, 3, 3),
                       in_c=4, depth_mult=1),
    "10x4": dict(in_hw=(25, 5), k=(10, 4), stride=(1, 1), dil=(1, 1), pads=(4, 1, 5, 2), in_c=8,
                 depth_mult=1),
    "in_zp_min_x_max": dict(in_zp=-128, style="extremes", in_c=8, depth_mult=1),
    "in_zp_max_x_min": dict(in_zp=127, style="extremes", in_c=8, depth_mult=1),
    "weights_full_range": dict(w_range=(-128, 127), in_c=8, depth_mult=1),
    "saturation": dict(regime="saturate", act="full", in_c=12, depth_mult=1),
    "bias_near_int32_limits": dict(bias="near_limit", in_c=8, depth_mult=1),
    # 3x3 rows wider than the quad ring (50 pixels): column tiles (tc_dwconv2d_s8_quad)
    "quad_tiles_s1": dict(in_hw=(4, 120), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                          in_c=8, depth_mult=1, act="full", regime="normal"),
    "quad_tiles_s2_odd": dict(in_hw=(5, 111), k=(3, 3), stride=(2, 2), dil=(1, 1),
                              pads=(1, 1, 1, 1), in_c=4, depth_mult=1, act="full",
                              regime="normal"),
    "quad_tiles_clamped": dict(in_hw=(3, 60), k=(3, 3), stride=(1, 1), dil=(1, 1),
                               pads=(1, 1, 1, 1), in_c=4, depth_mult=1, act="relu"),
    # any kernel size, 4 channels at a time (tc_dwconv2d_s8_k; pixel pairs in assembly for 5 and
    # 7 wide kernels at strides 1 and 2), column tiles, a last group of 1 to 3 channels
    "k5_s1_odd_width": dict(in_hw=(9, 11), k=(5, 5), stride=(1, 1), dil=(1, 1),
                            pads=(2, 2, 2, 2), in_c=8, depth_mult=1, act="full", regime="normal"),
    "k5_s2_odd_width": dict(in_hw=(11, 13), k=(5, 5), stride=(2, 2), dil=(1, 1),
                            pads=(2, 2, 2, 2), in_c=12, depth_mult=1, act="full", regime="normal"),
    "k7_s1_width_2": dict(in_hw=(5, 2), k=(7, 7), stride=(1, 1), dil=(1, 1), pads=(3, 3, 3, 3),
                          in_c=4, depth_mult=1, act="full", regime="normal"),
    "k7_s2_odd_width": dict(in_hw=(13, 15), k=(7, 7), stride=(2, 2), dil=(1, 1),
                            pads=(3, 3, 3, 3), in_c=8, depth_mult=1, act="full", regime="normal"),
    "k7_s1_tiles": dict(in_hw=(4, 40), k=(7, 7), stride=(1, 1), dil=(1, 1), pads=(3, 3, 3, 3),
                        in_c=4, depth_mult=1, act="full", regime="normal"),
    "k7_s2_tiles": dict(in_hw=(9, 75), k=(7, 7), stride=(2, 2), dil=(1, 1), pads=(3, 3, 3, 3),
                        in_c=4, depth_mult=1, act="full", regime="normal"),
    "k5_width_1": dict(in_hw=(3, 1), k=(5, 5), stride=(1, 1), dil=(1, 1), pads=(2, 2, 2, 2),
                       in_c=4, depth_mult=1, act="full", regime="normal"),
    "k5_in_c_6_last_group_2": dict(in_hw=(6, 7), k=(5, 5), stride=(1, 1), dil=(1, 1),
                                   pads=(2, 2, 2, 2), in_c=6, depth_mult=1, act="full",
                                   regime="normal"),
    "k7_in_c_3_one_short_group": dict(in_hw=(8, 9), k=(7, 7), stride=(1, 1), dil=(1, 1),
                                      pads=(3, 3, 3, 3), in_c=3, depth_mult=1),
    "k3_in_c_5_last_group_1": dict(in_hw=(6, 7), k=(3, 3), stride=(2, 1), dil=(1, 1),
                                   pads=(1, 1, 1, 1), in_c=5, depth_mult=1),
    "k5_clamped": dict(in_hw=(7, 8), k=(5, 5), stride=(1, 1), dil=(1, 1), pads=(2, 2, 2, 2),
                       in_c=8, depth_mult=1, act="relu", regime="normal"),
    "k7_mixed_shifts": dict(in_hw=(8, 8), k=(7, 7), stride=(1, 1), dil=(1, 1),
                            pads=(3, 3, 3, 3), in_c=8, depth_mult=1, act="full", regime="mixed"),
    "k4x2_strides_2_1": dict(in_hw=(9, 7), k=(4, 2), stride=(2, 1), dil=(1, 1), pads=(1, 0, 2, 1),
                             in_c=8, depth_mult=1),
    "k1x9": dict(in_hw=(3, 12), k=(1, 9), stride=(1, 1), dil=(1, 1), pads=(0, 4, 0, 4), in_c=8,
                 depth_mult=1),
    "k8x6_largest": dict(in_hw=(9, 8), k=(8, 6), stride=(1, 1), dil=(1, 1), pads=(3, 2, 4, 3),
                         in_c=4, depth_mult=1),
    "k5_pads_beyond_plane": dict(in_hw=(1, 2), k=(5, 5), stride=(1, 1), dil=(1, 1),
                                 pads=(2, 3, 2, 3), in_c=8, depth_mult=1, act="full",
                                 regime="normal"),
    "k7_s3": dict(in_hw=(10, 12), k=(7, 7), stride=(3, 3), dil=(1, 1), pads=(3, 3, 3, 3),
                  in_c=4, depth_mult=1, act="full", regime="normal"),
    "k5_in_zp_max_x_min": dict(in_hw=(6, 7), k=(5, 5), stride=(1, 1), dil=(1, 1),
                               pads=(2, 2, 2, 2), in_zp=127, style="extremes", in_c=8,
                               depth_mult=1, w_range=(-128, 127), act="full", regime="normal"),
}

FC_TARGETED = {
    "rows_1_autoencoder": dict(rows=1, in_features=640, out_features=13),
    "rows_2": dict(rows=2, in_features=33, out_features=6),
    "rows_3_odd_out": dict(rows=3, in_features=20, out_features=7),
    "rows_5_out_1": dict(rows=5, in_features=9, out_features=1),
    "in_features_3_portable": dict(rows=2, in_features=3, out_features=4),
    "in_features_4": dict(rows=3, in_features=4, out_features=5),
    "in_features_7": dict(rows=1, in_features=7, out_features=6),
    "in_zp_min_x_max": dict(in_zp=-128, style="extremes", in_features=40),
    "in_zp_max_x_min": dict(in_zp=127, style="extremes", in_features=40),
    "weights_full_range": dict(w_range=(-128, 127), in_features=50),
    "saturation": dict(regime="saturate", act="full", rows=2, in_features=30, out_features=8),
    "bias_near_int32_limits": dict(bias="near_limit", in_features=64),
}

def dw_inplace_case(seed, **kwargs):
    return dw_case(seed, depth_mult=1, **kwargs)


KINDS = {
    "conv": (conv_case, "tc_conv2d_s8", conv2d_s8, lambda p: (p.out_h, p.out_w, p.out_c)),
    "dw": (dw_case, "tc_dwconv2d_s8", dwconv2d_s8, lambda p: (p.out_h, p.out_w, p.out_c)),
    "dw_inplace": (dw_inplace_case, "tc_dwconv2d_s8_inplace", dwconv2d_s8,
                   lambda p: (p.out_h, p.out_w, p.out_c)),
    "fc": (fc_case, "tc_fc_s8", fc_s8, lambda p: (p.rows, p.out_features)),
}
DW_INPLACE_TARGETED = {
    "3x3_s1_same": dict(in_hw=(9, 7), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1)),
    "3x3_s2": dict(in_hw=(9, 8), k=(3, 3), stride=(2, 2), dil=(1, 1), pads=(1, 1, 1, 1)),
    "3x3_valid_last_bytes": dict(in_hw=(5, 5), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                 pads=(0, 0, 0, 0)),
    "5x5_two_groups": dict(in_hw=(8, 9), k=(5, 5), stride=(1, 1), dil=(1, 1), pads=(2, 2, 2, 2)),
    "10x4_kws": dict(in_hw=(25, 5), k=(10, 4), stride=(1, 1), dil=(1, 1), pads=(4, 1, 5, 2)),
    "9x9_portable": dict(in_hw=(10, 10), k=(9, 9), stride=(1, 1), dil=(1, 1), pads=(4, 4, 4, 4)),
    "dilated_rows": dict(in_hw=(9, 8), k=(3, 3), stride=(1, 1), dil=(2, 1), pads=(2, 1, 2, 1)),
    "dilated_cols_portable": dict(in_hw=(8, 8), k=(3, 3), stride=(1, 1), dil=(1, 2),
                                  pads=(1, 2, 1, 2)),
    "output_larger_than_input": dict(in_hw=(3, 3), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                     pads=(2, 2, 2, 2)),
    "in_zp_min_x_max": dict(in_zp=-128, style="extremes"),
    "saturation": dict(regime="saturate", act="full"),
    "quad_3x3_s1": dict(in_hw=(7, 6), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                        in_c=8, act="full", regime="normal"),
    "quad_3x3_s1_odd": dict(in_hw=(5, 5), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                            in_c=16, act="full", regime="normal"),
    "quad_3x3_s2": dict(in_hw=(9, 8), k=(3, 3), stride=(2, 2), dil=(1, 1), pads=(1, 1, 1, 1),
                        in_c=12, act="full", regime="normal"),
    # narrow planes by output columns in place: on the same geometry only (else by rows)
    "quad_columns_same": dict(in_hw=(25, 5), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                              in_c=8, act="full", regime="normal"),
    "quad_columns_valid_by_rows": dict(in_hw=(14, 4), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                       pads=(0, 0, 0, 0), in_c=8, act="full", regime="normal"),
    # tc_dwconv2d_s8_k in place (one column tile; rows gathered before they are overwritten)
    "k5_s1": dict(in_hw=(9, 10), k=(5, 5), stride=(1, 1), dil=(1, 1), pads=(2, 2, 2, 2), in_c=8,
                  act="full", regime="normal"),
    "k7_s2_odd": dict(in_hw=(13, 11), k=(7, 7), stride=(2, 2), dil=(1, 1), pads=(3, 3, 3, 3),
                      in_c=12, act="full", regime="normal"),
    "k7_s2_mcunet_row": dict(in_hw=(24, 23), k=(7, 7), stride=(2, 2), dil=(1, 1),
                             pads=(3, 3, 3, 3), in_c=8, act="full", regime="normal"),
    "k5_in_c_6": dict(in_hw=(7, 7), k=(5, 5), stride=(1, 1), dil=(1, 1), pads=(2, 2, 2, 2),
                      in_c=6),
    "k7_valid": dict(in_hw=(9, 9), k=(7, 7), stride=(1, 1), dil=(1, 1), pads=(0, 0, 0, 0),
                     in_c=4, act="full", regime="normal"),
    # wider than one tile: tc_dwconv2d_s8_k and the quad path step aside in place
    "k7_tiles_fall_back": dict(in_hw=(6, 40), k=(7, 7), stride=(1, 1), dil=(1, 1),
                               pads=(3, 3, 3, 3), in_c=4, act="full", regime="normal"),
    "quad_tiles_fall_back": dict(in_hw=(5, 70), k=(3, 3), stride=(1, 1), dil=(1, 1),
                                 pads=(1, 1, 1, 1), in_c=8, act="full", regime="normal"),
}
TARGETED = {"conv": CONV_TARGETED, "dw": DW_TARGETED, "dw_inplace": DW_INPLACE_TARGETED,
            "fc": FC_TARGETED}
RANDOM_CASES = {"conv": 120, "dw": 80, "dw_inplace": 60, "fc": 80}


def name_seed(name: str) -> int:
    return zlib.crc32(name.encode())


def all_cases():
    """(kind, case id, case) for every randomized and targeted case."""
    for kind, (make, _, _, _) in KINDS.items():
        for seed in range(RANDOM_CASES[kind]):
            yield kind, f"random{seed}", make(50_000 + seed)
        for name, kwargs in TARGETED[kind].items():
            yield kind, name, make(name_seed(name), **kwargs)


def dwk_applicable(p) -> bool:
    """tc_dwconv2d_s8.c: the layers of the any-size 4-channel ring (tc_dwconv2d_s8_k)."""
    return (p.dil_h == 1 and p.dil_w == 1 and p.depth_mult == 1 and p.k_h <= 8
            and p.k_h * p.k_w <= 49 and p.k_w <= 210 // p.k_h)


def conv_shallow_expected(p, shift) -> bool:
    """tc_conv2d_s8_shallow_dsp_applicable: 1x1, unpadded, groups 1, in_c <= 8, every shift in
    [-23, 1]."""
    return ((p.k_h, p.k_w, p.groups, p.pad_top, p.pad_left) == (1, 1, 1, 0, 0) and p.in_c <= 8
            and bool(((shift >= -23) & (shift <= 1)).all()))


def conv_first_expected(p, shift) -> bool:
    """tc_conv2d_s8_first_dsp_applicable: groups 1, dil_w 1, in_c <= 4, at least 2 taps, at
    most 16 groups, every channel pair's weights and 8 pixels in 224 words, every shift
    in [-23, -2]."""
    return conv2d_first_may_run(p) and bool(((shift >= -23) & (shift <= -2)).all())


def dsp_path_expected(kind, p, shift=None) -> bool:
    """The dispatch rules documented in the kernel sources (conv: with the layer's shifts, which
    decide the shallow pointwise and the first-layer paths)."""
    if kind == "conv":
        if shift is not None and (conv_shallow_expected(p, shift) or conv_first_expected(p, shift)):
            return True
        if p.groups == 1 and p.dil_w == 1:
            return p.k_w * p.in_c >= 4
        return p.in_c // p.groups >= 4
    if kind == "dw":
        return p.depth_mult == 1 and (p.in_c >= 4 or dwk_applicable(p))
    if kind == "dw_inplace":
        return p.dil_w == 1 and p.k_h * ((p.k_w + 3) // 4) <= 16
    if kind in ("maxpool", "avgpool"):  # tc_maxpool_s8_dsp.c, tc_avgpool_s8_dsp.c
        return p.channels >= 4
    if kind in ("add", "mul"):  # tc_add_s8_dsp.c, tc_mul_s8_dsp.c (contiguous rows)
        return -23 <= p.out_shift <= -2
    if kind == "add_table":  # tc_add_s8_dsp.c's table rows (tc_dsp_rq2 on the doubled sum)
        return -22 <= p.out_shift <= -1
    return p.in_features >= 4


# ---------------------------------------------------------------------------------------------
# 2. Kernels on the emulated instructions == golden


def _c_struct(p):
    cls = type(type(p).C_STRUCT, (ctypes.Structure,),
               {"_fields_": [(f.name, ctypes.c_int32) for f in fields(p)]})
    return cls(**asdict(p))


def inplace_allowed(p) -> bool:
    return p.out_h * p.out_w <= p.in_h * p.in_w


def run_kernel(lib, kind, case):
    """(status, output). The in-place kernel runs with out == in where that is allowed."""
    _, c_name, _, out_shape = KINDS[kind]
    p, x, w, bias, mult, shift = case
    args = [ctypes.byref(_c_struct(p)), ptr(x), ptr(w), None if bias is None else ptr(bias),
            ptr(mult), ptr(shift)]
    if kind == "dw_inplace":
        scratch = np.zeros(p.in_h * p.in_w, dtype=np.int8)
        if inplace_allowed(p):
            buf = x.copy()
            args[1] = ptr(buf)
            status = lib.tc_dwconv2d_s8_inplace(*args, ptr(scratch), ptr(buf))
            n = p.out_h * p.out_w * p.out_c
            return status, buf.reshape(-1)[:n].reshape(out_shape(p))
        out = np.full(out_shape(p), SENTINEL, dtype=np.int8)
        return lib.tc_dwconv2d_s8_inplace(*args, ptr(scratch), ptr(out)), out
    out = np.full(out_shape(p), SENTINEL, dtype=np.int8)
    return getattr(lib, c_name)(*args, ptr(out)), out


def golden(kind, case):
    return KINDS[kind][2](*case)


def assert_bit_exact(actual, expected, what):
    bad = np.argwhere(actual != expected)
    if bad.size:
        i = tuple(bad[0])
        raise AssertionError(f"{what}: {len(bad)} mismatches, first at {i}: "
                             f"actual {actual[i]} expected {expected[i]}")


CASES = list(all_cases())


@pytest.mark.parametrize("kind", list(KINDS))
def test_dsp_kernels_bit_exact(dsp_lib, kind):
    checked = 0
    for case_kind, case_id, case in CASES:
        if case_kind != kind:
            continue
        status, y = run_kernel(dsp_lib, kind, case)
        assert status == TC_OK, (case_id, case[0])
        assert_bit_exact(y, golden(kind, case), f"{kind} {case_id} {case[0]}")
        checked += 1
    assert checked == RANDOM_CASES[kind] + len(TARGETED[kind])


def test_targeted_cases_exercise_their_feature():
    by_name = {(k, n): c for k, n, c in CASES}
    conv = by_name[("conv", "saturation")]
    y = golden("conv", conv)
    assert (y == 127).any() and (y == -128).any()
    for kind in KINDS:
        p, x, *_ = by_name[(kind, "in_zp_min_x_max")]
        assert p.in_zp == -128 and (x == 127).any()
        if kind != "dw_inplace":
            _, _, _, bias, _, _ = by_name[(kind, "bias_near_int32_limits")]
            assert np.abs(bias.astype(np.int64)).min() > 2**30
    p = by_name[("conv", "pointwise_dense")][0]
    assert p.out_h * p.out_w % 2 == 1  # a last single row in the matrix product
    # (3 channels, dilation 1: the any-size ring takes them on DSP builds now)
    assert dsp_path_expected("dw", by_name[("dw", "in_c_3_portable")][0])
    for kind, name in [("conv", "pointwise_in_c_3_portable"), ("dw", "depth_mult_2_portable"),
                       ("dw_inplace", "9x9_portable"), ("fc", "in_features_3_portable")]:
        assert not dsp_path_expected(kind, by_name[(kind, name)][0]), name
    assert dsp_path_expected("conv", by_name[("conv", "dscnn_10x4_s2")][0])
    p, x, *_ = by_name[("conv", "padded_in_c_20_chunk_mid_row")]
    depth = p.k_h * p.k_w * p.in_c  # two chunks of 144, the first ending inside a kernel row
    assert p.in_c % 4 == 0 and 144 < depth and 144 % (p.k_w * p.in_c) and p.in_zp == -128
    assert dsp_path_expected("conv", p)
    shallow = [n for k, n in by_name if k == "conv" and n.startswith("shallow_")]
    assert len(shallow) == 16
    for name in shallow:
        p, *_, shift = by_name[("conv", name)]
        assert conv_shallow_expected(p, shift) == ("left_shifts" not in name), name
    assert not dsp_path_expected("conv", *by_name[("conv", "shallow_in_c_3_left_shifts_portable")][::5])
    first = [n for k, n in by_name if k == "conv" and n.startswith("first_")]
    assert len(first) == 32
    for name in first:
        p, *_, shift = by_name[("conv", name)]
        assert conv_first_expected(p, shift) == ("not_taken" not in name), name
        assert dsp_path_expected("conv", p, shift), name  # the not-taken ones: the gathered path
    p = by_name[("conv", "first_in_c_3_blocks_out_c_8")][0]
    assert p.out_h * p.out_w > 4 * 8 and p.out_w % 8  # several blocks, across row ends
    assert conv2d_first_groups(by_name[("conv", "first_in_c_1_5x8_10_groups")][0]) == 10
    assert [conv2d_first_passes(by_name[("conv", f"first_{n}")][0]) for n in
            ("ic_out_c_16_two_passes", "in_c_3_out_c_13_two_passes", "in_c_1_out_c_32_two_passes",
             "in_c_3_out_c_17_not_taken", "ic_3x3_s1_in_c_3_padded")] == [2, 2, 2, 3, 1]
    blocks = {n: by_name[("conv", n)][0] for n in shallow if "blocks" in n}
    assert all(p.out_h * p.out_w > 144 // ((p.in_c + 3) // 4) for p in blocks.values()), blocks
    assert not inplace_allowed(by_name[("dw_inplace", "output_larger_than_input")][0])
    # The last output pixel's window ends at the plane's last byte: a 4-byte read would leave it.
    p = by_name[("dw_inplace", "3x3_valid_last_bytes")][0]
    assert (p.out_h, p.out_w) == (3, 3) and dsp_path_expected("dw_inplace", p)

    def dwq_row_pixels(p):  # tc_dwconv2d_s8_dsp.c: the 4-channel 3x3 path's ring rows (<= 50)
        return max(p.pad_left + p.in_w, (p.out_w - 1) * p.stride_w + 3)

    assert dwq_row_pixels(by_name[("dw", "quad_widest")][0]) == 50
    assert dwq_row_pixels(by_name[("dw", "quad_too_wide")][0]) == 51
    assert by_name[("dw", "quad_odd_width")][0].out_w % 2 == 1
    assert by_name[("dw", "quad_width_1")][0].out_w == 1
    assert by_name[("dw", "quad_s2_odd_width")][0].out_w % 2 == 1
    assert dwq_row_pixels(by_name[("dw", "quad_s2_widest")][0]) <= 50
    for name in ("quad_tiles_s1", "quad_tiles_s2_odd", "quad_tiles_clamped"):  # several tiles
        p = by_name[("dw", name)][0]
        assert p.out_w > (50 - 3) // p.stride_w + 1, name
    for name in ("k7_s1_tiles", "k7_s2_tiles"):
        p = by_name[("dw", name)][0]
        assert p.out_w > (210 // p.k_h - p.k_w) // p.stride_w + 1, name
    p = by_name[("dw_inplace", "k7_tiles_fall_back")][0]
    assert p.out_w > (210 // p.k_h - p.k_w) // p.stride_w + 1 and inplace_allowed(p)
    for name in ("k5_in_c_6_last_group_2", "k7_in_c_3_one_short_group", "k3_in_c_5_last_group_1"):
        p = by_name[("dw", name)][0]
        assert p.in_c % 4 and dwk_applicable(p), name
    assert not dwk_applicable(by_name[("dw_inplace", "9x9_portable")][0])
    assert dwk_applicable(by_name[("dw", "k8x6_largest")][0])
    def dwq_by_columns(p, in_place):  # tc_dwconv2d_s8_dsp.c

        def line_cost(n):
            return 250 + (n >> 2) * 340 + ((n >> 1) & 1) * 190 + (n & 1) * 160

        return ((p.stride_h, p.stride_w) == (1, 1) and p.out_w < p.out_h <= 48 and p.pad_top + p.in_h <= 50
                and (not in_place or (p.out_h, p.out_w) == (p.in_h, p.in_w))
                and line_cost(p.out_h) * p.out_w < line_cost(p.out_w) * p.out_h)

    for kind, name, columns in [("dw", "quad_columns_kws", True), ("dw", "quad_columns_clamped", True),
                                ("dw", "quad_columns_whole_valid", True), ("dw", "quad_columns_ring", True),
                                ("dw_inplace", "quad_columns_same", True),
                                ("dw_inplace", "quad_columns_valid_by_rows", False)]:
        p = by_name[(kind, name)][0]
        assert p.in_c % 4 == 0 and dwq_by_columns(p, kind == "dw_inplace") == columns, name
    assert dwq_by_columns(by_name[("dw_inplace", "quad_columns_valid_by_rows")][0], False)
    bias = by_name[("dw", "quad_bias_around_2_30")][3].reshape(-1, 4)  # groups of 4 channels
    near = np.abs(bias.astype(np.int64)) >= 2**30 - 9 * 128 * 255
    assert near.any(axis=1).any() and (~near.any(axis=1)).any()  # both kinds of group
    mixed = by_name[("dw", "quad_mixed_shifts")][4:6]
    assert ((mixed[1] > -2) | (mixed[1] < -23)).any() and ((mixed[1] <= -2) & (mixed[1] >= -23)).any()


def test_random_cases_cover_both_paths():
    paths = Counter((kind, dsp_path_expected(kind, case[0], case[5])) for kind, case_id, case in CASES
                    if case_id.startswith("random"))
    for kind in KINDS:
        assert paths[(kind, True)] >= 30 and paths[(kind, False)] >= 5, paths


# ---------------------------------------------------------------------------------------------
# 3. The fast path runs exactly where documented


def test_sabotaged_emulation_fails_exactly_on_the_fast_path(tmp_path):
    """Build the kernels with SXTAB16 and SXTB16 emulations off by 64 in their low lane. Where the
    documented dispatch says portable, outputs must stay exact; where it says fast path, they
    must change (in most cases: windows whose runs are all shorter than 4 stay scalar)."""
    src = tmp_path / "runtime"
    shutil.copytree(RUNTIME, src)
    header = src / "tc_arm_dsp.h"
    good = "return tc_pack_s16x2(tc_emu_s16(a, 0) + tc_emu_s8(x, 0),"
    text = header.read_text()
    assert text.count(good) == 1
    bad = good.replace("tc_emu_s8(x, 0),", "tc_emu_s8(x, 0) + 64,")
    text = text.replace(good, bad)
    # SXTB16 too: the 4-channel depthwise rings widen the raw input with it
    good = "return tc_pack_s16x2(tc_emu_s8(x, 0), tc_emu_s8(x, 2));"
    assert text.count(good) == 1
    header.write_text(text.replace(good, good.replace("tc_emu_s8(x, 0),", "tc_emu_s8(x, 0) + 64,")))
    lib_path = tmp_path / "libsabotaged.so"
    subprocess.run([c_compiler(), *STRICT, "-DTC_EMULATE_DSP", f"-I{src}", "-o", str(lib_path),
                    *(str(src / s) for s in KERNEL_SOURCES)], check=True, capture_output=True,
                   text=True)
    lib = ctypes.CDLL(str(lib_path))
    _declare_kernels(lib)
    changed = Counter()
    for kind, case_id, case in CASES:
        p = case[0]
        if p.act_min != -128 or p.act_max != 127 or not case_id.startswith("random"):
            continue  # clamping could hide the change
        _, y = run_kernel(lib, kind, case)
        differs = not np.array_equal(y, golden(kind, case))
        if dsp_path_expected(kind, p, case[5]):
            changed[kind] += differs
        else:
            assert not differs, f"{kind} {case_id}: portable case ran the fast path {p}"
    for kind in KINDS:
        assert changed[kind] >= 10, changed


# ---------------------------------------------------------------------------------------------
# 4. AddressSanitizer + UndefinedBehaviorSanitizer on the emulated fast paths

SANITIZER_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tc_conv.h"

/* Records: kernel, n, n int32 params, 5 arrays (int32 length, -1 = NULL, then bytes),
 * int32 output length. Output: int32 status, then the output bytes. Arrays live in exactly
 * sized heap blocks so that ASan sees any overrun. */
static int read_i32(FILE *f, int32_t *v) { return fread(v, sizeof *v, 1, f) == 1; }

static int read_array(FILE *f, void **data) {
    int32_t len;
    *data = NULL;
    if (!read_i32(f, &len)) return 0;
    if (len < 0) return 1;
    *data = malloc(len > 0 ? (size_t)len : 1u);
    return *data != NULL && fread(*data, 1, (size_t)len, f) == (size_t)len;
}

int main(int argc, char **argv) {
    FILE *fin, *fout;
    int32_t kernel;
    if (argc != 3) return 2;
    fin = fopen(argv[1], "rb");
    fout = fopen(argv[2], "wb");
    if (fin == NULL || fout == NULL) return 2;
    while (read_i32(fin, &kernel)) {
        int32_t params[32], n, out_len, status;
        void *a[5];
        int8_t *y;
        int i;
        if (!read_i32(fin, &n) || n < 1 || n > 32 ||
            fread(params, sizeof params[0], (size_t)n, fin) != (size_t)n) return 3;
        for (i = 0; i < 5; ++i) {
            if (!read_array(fin, &a[i])) return 3;
        }
        if (!read_i32(fin, &out_len) || out_len < 1 || (y = malloc((size_t)out_len)) == NULL) {
            return 3;
        }
        if (kernel == 0) {
            tc_conv2d_params p;
            if ((size_t)n * sizeof(int32_t) != sizeof p) return 3;
            memcpy(&p, params, sizeof p);
            status = tc_conv2d_s8(&p, a[0], a[1], a[2], a[3], a[4], y);
        } else if (kernel == 1) {
            tc_dwconv2d_params p;
            if ((size_t)n * sizeof(int32_t) != sizeof p) return 3;
            memcpy(&p, params, sizeof p);
            status = tc_dwconv2d_s8(&p, a[0], a[1], a[2], a[3], a[4], y);
        } else if (kernel == 2) { /* in place when the output fits the input */
            tc_dwconv2d_params p;
            int8_t *scratch;
            if ((size_t)n * sizeof(int32_t) != sizeof p) return 3;
            memcpy(&p, params, sizeof p);
            scratch = malloc((size_t)tc_dwconv2d_s8_inplace_scratch_size(&p));
            if (scratch == NULL) return 3;
            if (p.out_h * p.out_w <= p.in_h * p.in_w) {
                status = tc_dwconv2d_s8_inplace(&p, a[0], a[1], a[2], a[3], a[4], scratch, a[0]);
                memcpy(y, a[0], (size_t)out_len);
            } else {
                status = tc_dwconv2d_s8_inplace(&p, a[0], a[1], a[2], a[3], a[4], scratch, y);
            }
            free(scratch);
        } else {
            tc_fc_params p;
            if ((size_t)n * sizeof(int32_t) != sizeof p) return 3;
            memcpy(&p, params, sizeof p);
            status = tc_fc_s8(&p, a[0], a[1], a[2], a[3], a[4], y);
        }
        if (fwrite(&status, sizeof status, 1, fout) != 1 ||
            fwrite(y, 1, (size_t)out_len, fout) != (size_t)out_len) return 4;
        free(y);
        for (i = 0; i < 5; ++i) free(a[i]);
    }
    fclose(fin);
    return fclose(fout) == 0 ? 0 : 4;
}
"""


def _encode_array(a):
    if a is None:
        return struct.pack("<i", -1)
    raw = np.ascontiguousarray(a).tobytes()
    return struct.pack("<i", len(raw)) + raw


def _encode_case(kind, case, out_len):
    p = case[0]
    values = list(asdict(p).values())
    blob = struct.pack(f"<ii{len(values)}i", list(KINDS).index(kind), len(values), *values)
    return blob + b"".join(_encode_array(a) for a in case[1:]) + struct.pack("<i", out_len)


@pytest.mark.parametrize("defines", [("TC_EMULATE_DSP",), ()], ids=["dsp", "fast_portable"])
def test_dsp_kernels_under_asan_ubsan(tmp_path, defines):
    """The DSP paths (emulated) and, without them, the fast portable variants (tc_*_fast.c)."""
    cc = c_compiler()
    from cbuild import require_sanitizers

    require_sanitizers(cc)  # a missing sanitizer runtime fails the link, whose error need not say "sanitize"
    exe = tmp_path / "driver"
    driver = tmp_path / "driver.c"
    driver.write_text(SANITIZER_DRIVER)
    build = subprocess.run(
        [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1",
         "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         *(f"-D{d}" for d in defines), f"-I{RUNTIME}", str(driver),
         *(str(RUNTIME / s) for s in KERNEL_SOURCES), "-o", str(exe)],
        capture_output=True, text=True)
    if build.returncode != 0 and "sanitize" in build.stderr:
        pytest.skip(f"{cc} cannot build -fsanitize=address,undefined programs: "
                    f"{build.stderr[-300:]}")
    assert build.returncode == 0, build.stderr
    cases = [(kind, case, golden(kind, case)) for kind, case_id, case in CASES
             if not case_id.startswith("random") or int(case_id[6:]) % 3 == 0]
    (tmp_path / "in.bin").write_bytes(b"".join(_encode_case(kind, case, expected.size)
                                               for kind, case, expected in cases))
    run = subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                         capture_output=True, text=True, timeout=120,
                         env={"ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS":
                              "print_stacktrace=1"})
    assert run.returncode == 0 and not run.stderr, run.stderr[-4000:]
    data = (tmp_path / "out.bin").read_bytes()
    offset = 0
    for kind, case, expected in cases:
        (status,) = struct.unpack_from("<i", data, offset)
        y = np.frombuffer(data, dtype=np.int8, count=expected.size, offset=offset + 4)
        offset += 4 + expected.size
        assert status == TC_OK
        assert_bit_exact(y.reshape(expected.shape), expected, f"sanitized {kind} {case[0]}")
    assert offset == len(data)


# ---------------------------------------------------------------------------------------------
# 5. Builds: host compilers, and the Cortex-M targets when arm-none-eabi-gcc is installed

HOST_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-c"]


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
@pytest.mark.parametrize("defines", [(), ("TC_EMULATE_DSP",), ("TC_EMULATE_DSP", "TC_NO_DSP")],
                         ids=["portable", "emulated", "disabled"])
def test_strict_host_build(tmp_path, compiler, defines):
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not installed")
    shim_src = tmp_path / "shim.c"
    shim_src.write_text(INTRINSICS_SHIM)
    r = subprocess.run([compiler, *HOST_FLAGS, *(f"-D{d}" for d in defines), f"-I{RUNTIME}",
                        str(shim_src), *(str(RUNTIME / s) for s in KERNEL_SOURCES)],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr, r.stderr


ARM_GCC = "arm-none-eabi-gcc"
ARM_OBJDUMP = "arm-none-eabi-objdump"
# (name, -m flags, extra defines, whether the DSP instructions must appear)
ARM_TARGETS = [
    ("m4", ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], (), True),
    ("m4_acle", ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
     ("TC_DSP_ACLE_ONLY",), True),
    ("m4_no_dsp", ["-mcpu=cortex-m4"], ("TC_NO_DSP",), False),
    ("m4_no_asm", ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], ("TC_NO_ASM",), True),
    ("m7", ["-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"], (), True),
    ("m33", ["-mcpu=cortex-m33"], (), True),
    ("m55", ["-mcpu=cortex-m55"], (), True),
    ("m3", ["-mcpu=cortex-m3"], (), False),
]
DSP_MNEMONICS = ("smlad", "sxtab16", "sxtb16", "smlabb", "smlatt")


def _arm_build(tmp_path, name, mflags, defines, opt="-O2"):
    out = tmp_path / name
    out.mkdir()
    objects = []
    for source in KERNEL_SOURCES:
        obj = out / source.replace(".c", ".o")
        r = subprocess.run([ARM_GCC, *mflags, "-mthumb", opt, "-std=c99", "-Wall", "-Wextra",
                            "-Werror", "-pedantic", *(f"-D{d}" for d in defines),
                            f"-I{RUNTIME}", "-c", str(RUNTIME / source), "-o", str(obj)],
                           capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr, f"{name} {source}: {r.stderr}"
        objects.append(obj)
    return objects


def _disassemble(obj: Path) -> str:
    return subprocess.run([ARM_OBJDUMP, "-d", "--no-show-raw-insn", str(obj)], check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def arm_toolchain():
    if shutil.which(ARM_GCC) is None or shutil.which(ARM_OBJDUMP) is None:
        pytest.skip(f"{ARM_GCC} not installed (apt-get install gcc-arm-none-eabi)")


@pytest.mark.parametrize("name, mflags, defines, uses_dsp", ARM_TARGETS,
                         ids=[t[0] for t in ARM_TARGETS])
def test_cortex_m_build(arm_toolchain, tmp_path, name, mflags, defines, uses_dsp):
    found = {}  # object -> the DSP instructions it uses
    for obj in _arm_build(tmp_path, name, mflags, defines):
        mnemonics = {line.split("\t")[1].split(".")[0]
                     for line in _disassemble(obj).splitlines()
                     if re.match(r"\s+[0-9a-f]+:\t", line)}
        dsp = found[obj.name.replace(".o", ".c")] = mnemonics.intersection(DSP_MNEMONICS)
        if not uses_dsp:
            assert "sxtab16" not in dsp and "smlad" not in dsp, f"{name} {obj.name}: {dsp}"
    for kernel in DSP_KERNELS:  # a kernel's files (entry point and variants) together
        used = set().union(*(found[f] for f in lookup(kernel).files()))
        if uses_dsp:
            needed = {"sxtab16", "smlabb", "smlatt"} if "dwconv" in kernel else {"sxtab16", "smlad"}
            assert needed <= used, f"{name} {kernel}: DSP instructions {used}"


def _newlib_include() -> str | None:
    """newlib's include folder next to arm-none-eabi-gcc (for clang's Cortex-M builds)."""
    search = subprocess.run([ARM_GCC, "-xc", "-E", "-v", "/dev/null"], capture_output=True,
                            text=True).stderr
    includes = [line.strip() for line in search.split("#include <...> search starts here:")[1]
                .split("End of search list.")[0].splitlines() if line.strip()]
    return next((d for d in includes if Path(d, "string.h").is_file()), None)


@pytest.mark.parametrize("compiler, opt", [("gcc", "-O0"), ("gcc", "-Os"), ("clang", "-O2"), ("clang", "-O0")])
def test_every_runtime_file_builds_for_the_m4(arm_toolchain, tmp_path, compiler, opt):
    """Users build the runtime at -O0 (debugging) and -Os, and with clang, not only with gcc -O2:
    every file, inline assembly included (at -O0 gcc keeps the frame pointer, so a 14-register
    asm block cannot get its registers, and clang 14 cannot allocate it at all:
    tc_conv2d_cb_s8_dsp.c failed to compile in both cases)."""
    if compiler == "gcc":
        command = [ARM_GCC, "-mcpu=cortex-m4", "-mthumb"]
    else:
        newlib = _newlib_include() if shutil.which("clang") else None
        if newlib is None:
            pytest.skip("clang or newlib's headers not installed")
        command = ["clang", "--target=arm-none-eabi", "-mcpu=cortex-m4", "-mthumb", "-isystem", newlib]
    for source in sorted(RUNTIME.glob("*.c")):
        r = subprocess.run([*command, opt, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{RUNTIME}",
                            "-c", str(source), "-o", str(tmp_path / "k.o")], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr, f"{compiler} {opt} {source.name}: {r.stderr[-2000:]}"


def test_cortex_m_build_with_clang(arm_toolchain, tmp_path):
    """clang for the M4 with -pedantic -Werror, newlib's headers from arm-none-eabi-gcc: the
    file-scope assembly must assemble and stay within ISO C's string-length limit, and give
    the same routines as gcc."""
    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    newlib = _newlib_include()
    if newlib is None:
        pytest.skip("no newlib headers next to arm-none-eabi-gcc")
    gcc_objs = {o.name: o for o in _arm_build(tmp_path, "m4_gcc", ARM_TARGETS[0][1], ())}
    for src in KERNEL_SOURCES:
        obj = tmp_path / (src + ".clang.o")
        r = subprocess.run(["clang", "--target=arm-none-eabi", "-mcpu=cortex-m4", "-mthumb",
                            *HOST_FLAGS, "-isystem", newlib, f"-I{RUNTIME}", str(RUNTIME / src),
                            "-o", str(obj)], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr, r.stderr
        for fn in ("tc_conv2d_pairs_asm", "tc_dwq_pairs_asm", "tc_dwq_pairs_s2_asm",
                   "tc_dwk5_pairs_asm", "tc_dwk5_pairs_s2_asm", "tc_dwk7_pairs_asm",
                   "tc_dwk7_pairs_s2_asm"):
            clang_fn = _function_ops(_disassemble(obj), fn)
            if clang_fn is not None:
                gcc_fn = _function_ops(_disassemble(gcc_objs[src.replace(".c", ".o")]), fn)
                assert clang_fn == gcc_fn, fn


def _function_ops(disassembly: str, function: str):
    """The instructions (mnemonic and operands) of `function`, or None if absent."""
    m = re.search(rf"<{re.escape(function)}>:\n(.*?)(?:\n\n|\Z)", disassembly, re.S)
    if not m:
        return None
    return [line.split("\t", 1)[1] for line in m.group(1).splitlines() if line.count("\t") >= 2]


def innermost_loops(disassembly: str, function: str):
    """Instruction mnemonics of each innermost loop (backward branch) of `function`."""
    m = re.search(rf"<{re.escape(function)}(?:\.[a-z0-9.]+)?>:\n(.*?)(?:\n\n|\Z)", disassembly,
                  re.S)
    assert m, f"{function} not found"
    insns = []
    for line in m.group(1).splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and re.match(r"\s*[0-9a-f]+:$", parts[0]):
            insns.append((int(parts[0].strip(" :"), 16), parts[1].split(".")[0].strip(),
                          parts[2] if len(parts) > 2 else ""))
    index = {addr: i for i, (addr, _, _) in enumerate(insns)}
    loops = []
    for i, (addr, op, args) in enumerate(insns):
        target = re.match(r"([0-9a-f]+) <", args)
        if op.startswith("b") and op not in ("bl", "blx", "bx", "bic") and target:
            t = int(target.group(1), 16)
            if t <= addr and t in index:
                loops.append((index[t], i))
    inner = [(a, b) for a, b in loops
             if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in loops)]
    return [[op for _, op, _ in insns[a:b + 1]] for a, b in inner]


def macs(ops):
    return 2 * ops.count("smlad") + ops.count("smlabb") + ops.count("smlatt")


# SIMD loop -> (object, function, budget in instructions per multiply-accumulate at -O2): the
# loop with the most MACs in the function. Ideal loops: 2x2 = 4 LDR + 8 extends + 8 SMLAD + 2
# loop control per 16 MACs (1.375); 1x4 = 5 + 10 + 8 + 2 per 16 (1.5625); depthwise 2 LDR +
# 2 pointer steps + 4 extends + 4 MACs + 2 per 4 (3.5); in place 3 LDR + 2 extends + 2 SMLAD +
# 3 loop control per 4 taps (of which a 3-tap row uses 3). The 3x3 depthwise loops read one
# word per ring row: in pairs, 3 LDR + 6 extends + 12 MAC instructions + 2 stores + 3 loop
# control per 18 MACs (31 instructions). macs() counts only SMLAD, SMLABB and SMLATT, not the
# SMLABT / SMLATB these loops also use, so their budgets are per counted MAC (31 / 15; the
# strided loop, one window at a time, 20 / 8 with a reload of the bias).
INNER_LOOPS = {
    "2x2, matrix (fc / pointwise row pairs)": ("tc_fc_s8.o", "tc_dsp_matmul_2rows", 1.5),
    "2x2, window (conv pixel pairs)": ("tc_conv2d_s8_dsp.o", "tc_dsp_taps_2x2", 1.55),
    "1x4, matrix (fc single row)": ("tc_fc_s8.o", "tc_dsp_matmul_1row", 1.6),
    "1x4, window (conv single pixels)": ("tc_conv2d_s8_dsp.o", "tc_dsp_taps_1x4", 1.6),
    "1x1 (leftover channels)": ("tc_conv2d_s8_dsp.o", "tc_dsp_taps_1x1", 2.6),
    "2x2, gathered int16 windows (conv, C)": ("tc_conv2d_s8_dsp.o", "conv2d_pair_sums_add", 1.2),
    # one LDM per group of both interleaved pixels, 4 groups per iteration: 62 / 64 (was 34 / 32)
    "2x2, gathered int16 windows (conv hot loop, assembly)": ("tc_conv2d_s8_asm.o",
                                                              "tc_conv2d_pairs_asm", 0.98),
    "depthwise, 4 channels": ("tc_dwconv2d_s8_dsp.o", "dwconv2d_channels4", 3.6),
    "depthwise in place, 4 taps of a row": ("tc_dwconv2d_s8_dsp.o", "tc_dwconv2d_s8_plane_dsp", 2.6),
    "depthwise 3x3, stride 1 window pairs": ("tc_dwconv2d_s8.o", "dw3_sums_pairs_dsp", 2.1),
    "depthwise 3x3, strided windows": ("tc_dwconv2d_s8.o", "dw3_sums_strided_dsp", 2.5),
    "depthwise 3x3, 4 channels x pixel pairs, with requantization (assembly)": (
        "tc_dwconv2d_s8_asm.o", "tc_dwq_pairs_asm", 3.0),
    # kernel rows unrolled: per row 1 pointer load, 8 columns x 3, 14 taps x 5; per pair the
    # requantization, stores and the 7 row pointers' advance (749 / 392)
    "depthwise 7x7, 4 channels x pixel pairs, with requantization (assembly)": (
        "tc_dwconv2d_s8_asm.o", "tc_dwk7_pairs_asm", 1.92),
    "depthwise 5x5, 4 channels x pixel pairs, with requantization (assembly)": (
        "tc_dwconv2d_s8_asm.o", "tc_dwk5_pairs_asm", 2.14),
}


def test_cortex_m4_inner_loop_instruction_counts(arm_toolchain, tmp_path):
    """Static instructions per MAC of each SIMD loop in the -O2 Cortex-M4 build (printed)."""
    objects = {o.name: o for o in _arm_build(tmp_path, "m4", ARM_TARGETS[0][1], ())}
    disassembly = {name: _disassemble(obj) for name, obj in objects.items()}
    report = []
    for what, (obj, function, budget) in INNER_LOOPS.items():
        simd = [ops for ops in innermost_loops(disassembly[obj], function) if macs(ops)]
        assert simd, f"{function}: no SIMD loop found"
        ops = max(simd, key=macs)
        per_mac = len(ops) / macs(ops)
        report.append(f"{what}: {len(ops)} instructions / {macs(ops)} MACs = {per_mac:.3f}")
        assert per_mac <= budget, report[-1] + f" > {budget}: {' '.join(ops)}"
    print("\nCortex-M4 -O2 SIMD inner loops:\n  " + "\n  ".join(report))


def test_first_layer_predicate_matches_the_c_dispatch(dsp_lib):
    """conv2d_first_may_run (which decides whether a project keeps TC_CONV2D_FIRST) and
    tc_conv2d_s8_first_dsp_applicable agree on every conv case (the C's shift check aside), so
    pruning never drops the path from a project a layer of which would take it."""
    fn = dsp_lib.tc_conv2d_s8_first_dsp_applicable
    fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]
    taken = 0
    for kind, name, (p, *_, shift) in CASES:
        if kind != "conv":
            continue
        c_says = bool(fn(ctypes.byref(_c_struct(p)), ptr(shift)))
        assert c_says == conv_first_expected(p, shift), name
        assert not c_says or conv2d_first_may_run(p), name
        taken += c_says
    assert taken >= 18


def test_first_layer_path_pruned_from_projects_without_such_a_layer():
    def stem(in_hw, in_c, out_c, k, stride):
        pad = (k[0] - 1) // 2, (k[1] - 1) // 2
        out = [(in_hw[i] + 2 * pad[i] - k[i]) // stride + 1 for i in (0, 1)]
        return Conv2dParams(in_h=in_hw[0], in_w=in_hw[1], in_c=in_c, out_h=out[0], out_w=out[1], out_c=out_c,
                            k_h=k[0], k_w=k[1], stride_h=stride, stride_w=stride, dil_h=1, dil_w=1,
                            pad_top=pad[0], pad_left=pad[1], groups=1, in_zp=0, out_zp=0, act_min=-128,
                            act_max=127)
    vww, ic, kws = stem((96, 96), 3, 8, (3, 3), 2), stem((32, 32), 3, 16, (3, 3), 1), stem((49, 10), 1, 64, (10, 4), 2)
    # IC's 16 channels at 7 groups go in two passes; KWS's 64 at 10 groups would need 32
    assert conv2d_first_may_run(vww) and conv2d_first_may_run(ic) and not conv2d_first_may_run(kws)
    assert (conv2d_first_passes(vww), conv2d_first_passes(ic)) == (1, 2)
    deep = stem((16, 16), 16, 16, (3, 3), 1)
    assert prunable_macros([("tc_conv2d_s8", deep), ("tc_conv2d_s8", kws)]) == {"TC_CONV2D_FIRST": False}
    assert prunable_macros([("tc_conv2d_s8", kws), ("tc_conv2d_s8", ic)]) == {"TC_CONV2D_FIRST": True}
    # a second pass re-reads the input: the path declines overlapping buffers at run time (below)
    # rather than deny the layer its row-streaming licence
    assert "overlap_delta" in conv2d_overlap_licence(ic)


@pytest.mark.parametrize("in_c, out_c", [(3, 16), (3, 13), (1, 20)])
def test_two_pass_first_layer_on_overlapping_buffers(dsp_lib, in_c, out_c):
    """A first layer whose channels take two passes, handed overlapping buffers (its row-streaming
    licence at its limit, as IC's plan gives its stem): with at most 16 channels
    tc_conv2d_s8_first_dsp stages every block once and the passes take turns over it, their
    weights re-widened (the input read once); with more it declines and the gathered path computes
    the layer. Either way the output equals the golden's; out of place the layer takes the
    two-pass path (the C predicate) and equals the golden too."""
    p, x, w, bias, mult, shift = conv_case(name_seed(f"two_pass_overlap_{out_c}"), in_hw=(6, 7),
                                           k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                                           in_c=in_c, out_c=out_c, groups=1, regime="normal",
                                           act="relu" if out_c == 13 else "full")
    assert conv2d_first_passes(p) == 2 and conv_first_expected(p, shift)
    expected = conv2d_s8(p, x, w, bias, mult, shift).reshape(-1)
    delta = row_overlap_delta(p.in_h, p.in_w, p.in_c, p.out_h, p.out_w, p.out_c, p.stride_h, p.pad_top)
    n_in, n_out = x.size, expected.size
    assert -n_out < delta < n_in  # the buffers do overlap
    base = max(0, -delta)
    arena = np.full(base + max(n_in, delta + n_out), SENTINEL, dtype=np.int8)
    arena[base:base + n_in] = x.reshape(-1)
    addr = arena.ctypes.data
    args = [ctypes.byref(_c_struct(p)), ctypes.c_void_p(addr + base), ptr(w),
            None if bias is None else ptr(bias), ptr(mult), ptr(shift)]
    assert dsp_lib.tc_conv2d_s8(*args, ctypes.c_void_p(addr + base + delta)) == TC_OK
    assert_bit_exact(arena[base + delta:base + delta + n_out], expected, "overlapping two-pass stem")
    _, out = run_kernel(dsp_lib, "conv", (p, x, w, bias, mult, shift))
    assert_bit_exact(out.reshape(-1), expected, "two-pass stem out of place")
