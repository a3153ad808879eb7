"""Spatial int8 kernels: C runtime vs numpy golden (bit for bit), golden vs independent references.

Three layers of checks per kernel:
  1. C (runtime_c via ctypes) == golden mirror, bit for bit, on randomized and targeted cases.
  2. Golden int32 accumulators == an independent float64 torch computation (exact for integers
     below 2^53), and golden outputs within 1 LSB of real-valued requantization.
  3. The C kernels under AddressSanitizer + UndefinedBehaviorSanitizer (standalone driver).
Pads in the case builders are (top, left, bottom, right); bottom/right may be negative (the
last rows/columns are never read), exactly as out_h/out_w imply in the kernels.
"""
from __future__ import annotations

import ctypes
import re
import shutil
import struct
import subprocess
import time
import zlib
from dataclasses import asdict, fields

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cbuild import RUNTIME, c_compiler, kernel_sources, ptr, runtime_library
from tinycc.kernels import all_kernels
from tinycc.ops.conv import (Conv2dParams, DwConv2dParams, PwTernaryParams, conv2d_acc, conv2d_s8, conv_output_size,
                             dwconv2d_acc, dwconv2d_s8, dwconv2d_s8_inplace, dwconv2d_s8_inplace_scratch_size)
from tinycc.ops.conv import Conv2dCbParams, DwConv2dCbParams
from tinycc.ops.dense import FcCbParams, FcParams, fc_acc, fc_s8
from tinycc.ops.pool import AvgPoolParams, MaxPoolParams, avgpool_s8, maxpool_s8
from tinycc.golden.arith import quantize_multiplier_array, round_half_away

TC_OK, TC_ARG_ERROR = 0, -1
PARAM_CLASSES = [Conv2dParams, DwConv2dParams, FcParams, MaxPoolParams,
                 AvgPoolParams, PwTernaryParams, Conv2dCbParams, DwConv2dCbParams, FcCbParams]
HEADERS = {Conv2dParams: "tc_conv.h", DwConv2dParams: "tc_conv.h",
           FcParams: "tc_conv.h", MaxPoolParams: "tc_pool.h",
           AvgPoolParams: "tc_pool.h", PwTernaryParams: "tc_conv.h", Conv2dCbParams: "tc_codebook.h",
           DwConv2dCbParams: "tc_codebook.h", FcCbParams: "tc_codebook.h"}

# ---------------------------------------------------------------------------------------------
# ctypes bindings


def _ctypes_struct(cls):
    return type(cls.C_STRUCT, (ctypes.Structure,),
                {"_fields_": [(f.name, ctypes.c_int32) for f in fields(cls)]})


C_STRUCTS = {cls: _ctypes_struct(cls) for cls in PARAM_CLASSES}


def c_params(p):
    return ctypes.byref(C_STRUCTS[type(p)](**asdict(p)))


@pytest.fixture(scope="module", params=[(), ("TC_PORTABLE_SPEC",)], ids=["fast", "spec"])
def lib(request):
    """The host runtime twice: as shipped (the fast portable variants, tc_*_fast.c) and with
    -DTC_PORTABLE_SPEC (the readable reference alone): both must equal the golden model."""
    lib = runtime_library(defines=list(request.param))
    for name in ("tc_conv2d_s8", "tc_dwconv2d_s8", "tc_fc_s8"):
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p] * 7
    lib.tc_dwconv2d_s8_inplace.restype = ctypes.c_int
    lib.tc_dwconv2d_s8_inplace.argtypes = [ctypes.c_void_p] * 8
    lib.tc_dwconv2d_s8_inplace_scratch_size.restype = ctypes.c_int32
    lib.tc_dwconv2d_s8_inplace_scratch_size.argtypes = [ctypes.c_void_p]
    for name in ("tc_maxpool_s8", "tc_avgpool_s8"):
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p] * 3
    return lib


@pytest.fixture(scope="module")
def dsp_lib():
    """The kernels with their DSP variants on the emulated instructions (TC_EMULATE_DSP)."""
    lib = runtime_library(defines=["TC_EMULATE_DSP"])
    lib.tc_maxpool_s8.restype = ctypes.c_int
    lib.tc_maxpool_s8.argtypes = [ctypes.c_void_p] * 3
    return lib


@pytest.fixture(scope="module", autouse=True)
def single_threaded_torch():
    """The torch references are tiny; thread hand-offs would dominate (100x on 2 busy cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _opt_ptr(a):
    return None if a is None else ptr(a)


# Output buffers start filled with a sentinel so "wrote nothing" is observable.
SENTINEL = 0x5A


def run_c_conv_like(lib, fn_name, p, out_shape, x, w, bias, mult, shift):
    out = np.full(out_shape, SENTINEL, dtype=np.int8)
    status = getattr(lib, fn_name)(c_params(p), ptr(x), ptr(w), _opt_ptr(bias), ptr(mult),
                                   ptr(shift), ptr(out))
    return status, out


def run_c_pool(lib, fn_name, p, x):
    out = np.full((p.out_h, p.out_w, p.channels), SENTINEL, dtype=np.int8)
    return getattr(lib, fn_name)(c_params(p), ptr(x), ptr(out)), out


def assert_bit_exact(actual, expected, what):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    bad = np.argwhere(actual != expected)
    if bad.size:
        i = tuple(bad[0])
        raise AssertionError(f"{what}: {len(bad)} mismatches, first at {i}: "
                             f"actual {actual[i]} expected {expected[i]}")


# ---------------------------------------------------------------------------------------------
# Random case builders


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def make_multipliers(rng, channels, acc_scale, regime):
    """Per-channel (mult, shift) suiting `regime` for accumulators of magnitude ~acc_scale."""
    base = 40.0 / max(acc_scale, 1.0)
    if regime == "mixed":
        regimes = [_pick(rng, ["normal", "saturate", "large", "tiny"]) for _ in range(channels)]
        parts = [make_multipliers(rng, 1, acc_scale, r) for r in regimes]
        return (np.concatenate([m for m, _ in parts]), np.concatenate([s for _, s in parts]))
    if regime == "normal":
        reals = base * 2.0 ** rng.uniform(-1.5, 1.5, channels)
    elif regime == "saturate":
        reals = base * 2.0 ** rng.uniform(4, 8, channels)
    elif regime == "large":  # >= 1: positive shifts, saturating left shift
        reals = 2.0 ** rng.uniform(0, 20, channels)
    elif regime == "tiny":  # around and below 2^-32: flushed to (0, 0) or shift -31
        reals = 2.0 ** rng.uniform(-40, -30, channels)
    else:
        raise AssertionError(regime)
    mult, shift = quantize_multiplier_array(reals)
    return mult.astype(np.int32), shift.astype(np.int32)


def make_activation_range(rng, out_zp, kind):
    if kind == "full":
        return -128, 127
    if kind == "relu":
        return out_zp, 127
    if kind == "relu6":
        return out_zp, min(127, out_zp + int(rng.integers(1, 60)))
    lo = int(rng.integers(-128, 100))
    return lo, int(rng.integers(lo, 128))


def make_int8(rng, shape, lo=-128, hi=127):
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int16).astype(np.int8)


def make_input(rng, shape, in_zp):
    style = _pick(rng, ["uniform", "uniform", "uniform", "around_zp", "extremes"])
    if style == "uniform":
        return make_int8(rng, shape)
    if style == "around_zp":
        return np.clip(in_zp + rng.integers(-20, 21, size=shape), -128, 127).astype(np.int8)
    return rng.choice(np.array([-128, 127], dtype=np.int8), size=shape)


def make_bias(rng, channels, use_bias):
    if not use_bias:
        return None
    magnitude = 2 ** int(rng.integers(0, 21))
    return rng.integers(-magnitude, magnitude + 1, size=channels).astype(np.int32)


def conv_geometry(rng, in_hw=None, k=None, stride=None, dil=None, pads=None):
    k = k or tuple(_pick(rng, [1, 1, 2, 3, 3, 5, 7]) for _ in range(2))
    stride = stride or tuple(int(s) for s in rng.integers(1, 4, size=2))
    dil = dil or ((1, 1) if rng.random() < 0.6 else tuple(int(d) for d in rng.integers(1, 4, 2)))
    span = [dil[i] * (k[i] - 1) + 1 for i in range(2)]
    if pads is None:
        pads = tuple(int(rng.integers(0, span[i % 2])) for i in range(4))
    in_hw = in_hw or tuple(int(n) for n in rng.integers(1, 13, size=2))
    in_hw = tuple(max(in_hw[i], span[i] - pads[i] - pads[i + 2]) for i in range(2))
    out_hw = tuple(conv_output_size(in_hw[i], k[i], stride[i], dil[i], pads[i], pads[i + 2])
                   for i in range(2))
    return dict(in_h=in_hw[0], in_w=in_hw[1], out_h=out_hw[0], out_w=out_hw[1], k_h=k[0],
                k_w=k[1], stride_h=stride[0], stride_w=stride[1], dil_h=dil[0], dil_w=dil[1],
                pad_top=pads[0], pad_left=pads[1])


def _quant_choices(rng, in_zp, out_zp, act):
    in_zp = int(rng.integers(-128, 128)) if in_zp is None else in_zp
    out_zp = int(rng.integers(-128, 128)) if out_zp is None else out_zp
    act_min, act_max = make_activation_range(
        rng, out_zp, act or _pick(rng, ["full", "full", "relu", "relu6", "random"]))
    return in_zp, out_zp, act_min, act_max


def conv_case(seed, in_c=None, out_c=None, groups=None, in_zp=None, out_zp=None, act=None,
              regime=None, use_bias=None, w_range=(-127, 127), **geometry):
    rng = np.random.default_rng(seed)
    geo = conv_geometry(rng, **geometry)
    groups = groups or _pick(rng, [1, 1, 1, 2, 3])
    in_c = in_c or groups * int(rng.integers(1, 5))
    out_c = out_c or groups * int(rng.integers(1, 5))
    in_zp, out_zp, act_min, act_max = _quant_choices(rng, in_zp, out_zp, act)
    p = Conv2dParams(in_c=in_c, out_c=out_c, groups=groups, in_zp=in_zp, out_zp=out_zp,
                     act_min=act_min, act_max=act_max, **geo)
    x = make_input(rng, (p.in_h, p.in_w, in_c), in_zp)
    w = make_int8(rng, (out_c, p.k_h, p.k_w, in_c // groups), *w_range)
    taps = p.k_h * p.k_w * in_c // groups
    regime = regime or _pick(rng, ["normal", "normal", "normal", "mixed"])
    mult, shift = make_multipliers(rng, out_c, 75.0 * 75.0 * np.sqrt(taps), regime)
    bias = make_bias(rng, out_c, rng.random() < 0.7 if use_bias is None else use_bias)
    return p, x, w, bias, mult, shift


def dw_case(seed, in_c=None, depth_mult=None, in_zp=None, out_zp=None, act=None, regime=None,
            use_bias=None, **geometry):
    rng = np.random.default_rng(seed)
    geo = conv_geometry(rng, **geometry)
    in_c = in_c or int(rng.integers(1, 9))
    depth_mult = depth_mult or _pick(rng, [1, 1, 2, 3])
    in_zp, out_zp, act_min, act_max = _quant_choices(rng, in_zp, out_zp, act)
    out_c = in_c * depth_mult
    p = DwConv2dParams(in_c=in_c, out_c=out_c, depth_mult=depth_mult, in_zp=in_zp,
                       out_zp=out_zp, act_min=act_min, act_max=act_max, **geo)
    x = make_input(rng, (p.in_h, p.in_w, in_c), in_zp)
    w = make_int8(rng, (p.k_h, p.k_w, out_c), -127, 127)
    regime = regime or _pick(rng, ["normal", "normal", "normal", "mixed"])
    mult, shift = make_multipliers(rng, out_c, 75.0 * 75.0 * np.sqrt(p.k_h * p.k_w), regime)
    bias = make_bias(rng, out_c, rng.random() < 0.7 if use_bias is None else use_bias)
    return p, x, w, bias, mult, shift


def fc_case(seed, rows=None, in_features=None, out_features=None, in_zp=None, out_zp=None,
            act=None, regime=None, use_bias=None):
    rng = np.random.default_rng(seed)
    rows = rows or _pick(rng, [1, 1, 2, 5])
    in_features = in_features or int(rng.integers(1, 300))
    out_features = out_features or int(rng.integers(1, 40))
    in_zp, out_zp, act_min, act_max = _quant_choices(rng, in_zp, out_zp, act)
    p = FcParams(rows, in_features, out_features, in_zp, out_zp, act_min, act_max)
    x = make_input(rng, (rows, in_features), in_zp)
    w = make_int8(rng, (out_features, in_features), -127, 127)
    regime = regime or _pick(rng, ["normal", "normal", "mixed"])
    mult, shift = make_multipliers(rng, out_features, 75.0 * 75.0 * np.sqrt(in_features), regime)
    bias = make_bias(rng, out_features, rng.random() < 0.7 if use_bias is None else use_bias)
    return p, x, w, bias, mult, shift


def pool_geometry(rng, in_hw=None, k=None, stride=None, pads=None, ceil_mode=None):
    """Valid pooling windows: pads < kernel; ceil_mode may add a bottom/right overhang window."""
    k = k or tuple(_pick(rng, [1, 2, 2, 3, 3, 5]) for _ in range(2))
    stride = stride or tuple(int(s) for s in rng.integers(1, 4, size=2))
    pads = pads or tuple(int(rng.integers(0, k[i % 2])) for i in range(4))
    in_hw = in_hw or tuple(int(n) for n in rng.integers(1, 12, size=2))
    in_hw = tuple(max(in_hw[i], k[i] - pads[i] - pads[i + 2]) for i in range(2))
    ceil_mode = rng.random() < 0.3 if ceil_mode is None else ceil_mode
    out_hw = []
    for i in range(2):
        extent = in_hw[i] + pads[i] + pads[i + 2] - k[i]
        n = (-(-extent // stride[i]) if ceil_mode else extent // stride[i]) + 1
        if (n - 1) * stride[i] - pads[i] >= in_hw[i]:  # PyTorch/ONNX drop a window in padding
            n -= 1
        out_hw.append(n)
    return dict(in_h=in_hw[0], in_w=in_hw[1], out_h=out_hw[0], out_w=out_hw[1], k_h=k[0],
                k_w=k[1], stride_h=stride[0], stride_w=stride[1], pad_top=pads[0],
                pad_left=pads[1])


def maxpool_case(seed, channels=None, act=None, **geometry):
    rng = np.random.default_rng(seed)
    geo = pool_geometry(rng, **geometry)
    channels = channels or int(rng.integers(1, 9))
    act_min, act_max = make_activation_range(rng, 0, act or _pick(rng, ["full", "full", "random"]))
    p = MaxPoolParams(channels=channels, act_min=act_min, act_max=act_max, **geo)
    return p, make_input(rng, (p.in_h, p.in_w, channels), int(rng.integers(-128, 128)))


def avgpool_case(seed, channels=None, count_include_pad=None, use_requant=None, in_zp=None,
                 out_zp=None, act=None, scale_ratio=None, **geometry):
    rng = np.random.default_rng(seed)
    count_include_pad = int(rng.random() < 0.5) if count_include_pad is None else count_include_pad
    use_requant = int(rng.random() < 0.4) if use_requant is None else use_requant
    if use_requant and not count_include_pad:
        geometry.setdefault("pads", (0, 0, 0, 0))
        geometry.setdefault("ceil_mode", False)
    geo = pool_geometry(rng, **geometry)
    channels = channels or int(rng.integers(1, 9))
    in_zp = int(rng.integers(-128, 128)) if in_zp is None else in_zp
    out_zp = (int(rng.integers(-128, 128)) if out_zp is None else out_zp) if use_requant else 0
    act_min, act_max = make_activation_range(
        rng, out_zp if use_requant else in_zp, act or _pick(rng, ["full", "full", "random"]))
    mult = shift = 0
    ratio = 0.0
    if use_requant:
        ratio = scale_ratio or float(2.0 ** rng.uniform(-3, 3))  # in_scale / out_scale
        (m,), (s,) = quantize_multiplier_array([ratio / (geo["k_h"] * geo["k_w"])])
        mult, shift = int(m), int(s)
    p = AvgPoolParams(channels=channels, count_include_pad=count_include_pad,
                      use_requant=use_requant, in_zp=in_zp, out_zp=out_zp, mult=mult,
                      shift=shift, act_min=act_min, act_max=act_max, **geo)
    return p, make_input(rng, (p.in_h, p.in_w, channels), in_zp), ratio


# Targeted cases: every feature the brief lists appears by name at least once.
CONV_TARGETED = {
    "1x1": dict(k=(1, 1), stride=(1, 1), dil=(1, 1), pads=(0, 0, 0, 0), in_c=16, out_c=8),
    "3x3_same_s1": dict(k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1)),
    "3x3_s2_same": dict(in_hw=(9, 8), k=(3, 3), stride=(2, 2), dil=(1, 1), pads=(0, 0, 1, 1)),
    "5x5_s3": dict(in_hw=(11, 12), k=(5, 5), stride=(3, 3), dil=(1, 1), pads=(2, 2, 2, 2)),
    "7x7_s2_on_7x5": dict(in_hw=(7, 5), k=(7, 7), stride=(2, 2), dil=(1, 1), pads=(3, 3, 3, 3)),
    "dscnn_10x4_s2": dict(in_hw=(49, 10), k=(10, 4), stride=(2, 2), dil=(1, 1),
                          pads=(4, 1, 5, 1), in_c=1, out_c=8, groups=1),
    "non_square_3x1": dict(k=(3, 1), stride=(1, 2), dil=(1, 1), pads=(1, 0, 1, 0)),
    "dilation_2x3": dict(in_hw=(10, 11), k=(3, 3), stride=(1, 1), dil=(2, 3), pads=(2, 3, 2, 3)),
    "dilation_stride": dict(in_hw=(12, 9), k=(3, 2), stride=(2, 3), dil=(3, 2),
                            pads=(1, 0, 2, 1)),
    "asymmetric_pads": dict(in_hw=(6, 7), k=(3, 5), stride=(1, 1), dil=(1, 1),
                            pads=(0, 3, 2, 1)),
    "pads_crop_bottom": dict(in_hw=(8, 8), k=(3, 3), stride=(3, 3), dil=(1, 1),
                             pads=(1, 1, -1, 0)),
    # the fast portable variant's paths (tc_conv2d_s8_fast.c): windows over CONV_FAST_GATHER
    # values (window rows, per tap at padding and dilation), more than CONV_FAST_CHANNELS output
    # channels (odd count), and input channels past its in_zp row with and without padding
    "fast_window_rows": dict(in_hw=(7, 9), k=(3, 3), stride=(1, 2), dil=(1, 1), pads=(1, 1, 1, 1),
                             in_c=20, out_c=5, groups=1),
    "fast_window_rows_dilated": dict(in_hw=(9, 8), k=(3, 2), stride=(2, 1), dil=(2, 3),
                                     pads=(2, 1, 1, 2), in_c=24, out_c=4, groups=1),
    "fast_many_channels": dict(in_hw=(6, 5), k=(3, 3), stride=(2, 2), dil=(1, 1), pads=(1, 1, 1, 1),
                               in_c=17, out_c=131, groups=1),
    "fast_many_channels_small_window": dict(in_hw=(5, 7), k=(2, 2), stride=(1, 1), dil=(1, 1),
                                            pads=(1, 0, 0, 1), in_c=3, out_c=129, groups=1),
    "fast_deep_padded": dict(in_hw=(3, 4), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                             in_c=257, out_c=3, groups=1),
    "fast_deep_pointwise": dict(in_hw=(3, 5), k=(1, 1), stride=(1, 1), dil=(1, 1), pads=(0, 0, 0, 0),
                                in_c=300, out_c=3, groups=1),
    "groups_4": dict(in_c=8, out_c=12, groups=4),
    "groups_eq_channels": dict(in_c=6, out_c=12, groups=6),
    "in_zp_min": dict(in_zp=-128),
    "in_zp_max_out_zp_min": dict(in_zp=127, out_zp=-128),
    "out_zp_max": dict(out_zp=127, act="full"),
    "saturation": dict(regime="saturate", act="full"),
    "large_multiplier": dict(regime="large"),
    "tiny_multiplier_flush": dict(regime="tiny"),
    "mixed_regimes": dict(regime="mixed", out_c=16),
    "relu6_clamp": dict(act="relu6"),
    "random_clamp": dict(act="random"),
    "no_bias": dict(use_bias=False),
    "weights_full_range": dict(w_range=(-128, 127)),
}

DW_TARGETED = {
    "3x3_s1": dict(k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1), depth_mult=1),
    "3x3_s2": dict(in_hw=(9, 10), k=(3, 3), stride=(2, 2), dil=(1, 1), pads=(1, 1, 1, 1)),
    "5x5_s3": dict(in_hw=(12, 11), k=(5, 5), stride=(3, 3), dil=(1, 1), pads=(2, 2, 2, 2)),
    "7x7_on_7x5": dict(in_hw=(7, 5), k=(7, 7), stride=(1, 1), dil=(1, 1), pads=(3, 3, 3, 3)),
    "10x4": dict(in_hw=(25, 5), k=(10, 4), stride=(1, 1), dil=(1, 1), pads=(4, 1, 5, 2)),
    "depth_mult_2": dict(depth_mult=2, in_c=5),
    "depth_mult_3_dilated": dict(depth_mult=3, k=(3, 3), dil=(2, 2), stride=(1, 1),
                                 pads=(2, 2, 2, 2)),
    "asymmetric_pads": dict(in_hw=(6, 7), k=(3, 3), stride=(2, 1), dil=(1, 1),
                            pads=(0, 2, 1, 0)),
    "zp_extremes": dict(in_zp=-128, out_zp=127),
    "zp_extremes_2": dict(in_zp=127, out_zp=-128),
    "saturation": dict(regime="saturate", act="full"),
    "large_multiplier": dict(regime="large"),
    "tiny_multiplier": dict(regime="tiny"),
    "relu6": dict(act="relu6"),
    "no_bias": dict(use_bias=False),
}

FC_TARGETED = {
    "rows_1": dict(rows=1),
    "rows_7": dict(rows=7, in_features=33, out_features=5),
    "one_feature": dict(in_features=1, out_features=1),
    "wide": dict(in_features=1024, out_features=10),
    "zp_extremes": dict(in_zp=-128, out_zp=127),
    "zp_extremes_2": dict(in_zp=127, out_zp=-128),
    "saturation": dict(regime="saturate", act="full"),
    "large_multiplier": dict(regime="large"),
    "tiny_multiplier": dict(regime="tiny"),
    "no_bias": dict(use_bias=False),
    "relu": dict(act="relu"),
}

POOL_TARGETED = {
    "2x2_s2": dict(k=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0), ceil_mode=False),
    "3x3_s2_same": dict(in_hw=(7, 5), k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)),
    "3x3_s1_asym": dict(in_hw=(5, 6), k=(3, 3), stride=(1, 1), pads=(0, 2, 2, 0)),
    "ceil_overhang": dict(in_hw=(6, 6), k=(3, 3), stride=(2, 2), pads=(0, 0, 0, 0),
                          ceil_mode=True),
    "non_square_s3": dict(in_hw=(10, 7), k=(5, 2), stride=(3, 1), pads=(2, 1, 2, 0)),
    "global_7x5": dict(in_hw=(7, 5), k=(7, 5), stride=(1, 1), pads=(0, 0, 0, 0)),
}

# The SIMD max pool (tc_maxpool_s8_dsp.c): 4 channels per word, the last 1 to 3 channels by one
# more word over the last 4 (by bytes below 4 channels); a whole window's taps built once and
# rebuilt after a clipped window.
MAXPOOL_DSP_TARGETED = {
    "channels_6_2x2_tail_word": dict(in_hw=(6, 8), k=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0),
                                     ceil_mode=False, channels=6),
    "channels_5_3x3_s1_clipped_between_whole": dict(in_hw=(6, 7), k=(3, 3), stride=(1, 1),
                                                    pads=(1, 1, 1, 1), ceil_mode=False, channels=5),
    "channels_3_bytes_only": dict(in_hw=(5, 6), k=(2, 3), stride=(1, 2), pads=(1, 0, 0, 1),
                                  ceil_mode=False, channels=3),
    "channels_4_2x2": dict(in_hw=(6, 6), k=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0),
                           ceil_mode=False, channels=4),
    "channels_7_tail_3": dict(in_hw=(7, 5), k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1),
                              channels=7),
    "channels_13_tail_1": dict(in_hw=(5, 6), k=(3, 3), stride=(1, 1), pads=(0, 2, 2, 0),
                               channels=13),
    "channels_16_global": dict(in_hw=(4, 5), k=(4, 5), stride=(1, 1), pads=(0, 0, 0, 0),
                               channels=16),
    "channels_9_global_81_taps": dict(in_hw=(9, 9), k=(9, 9), stride=(1, 1), pads=(0, 0, 0, 0),
                                      channels=9),  # more taps than the offset list holds
}


def name_seed(name: str) -> int:
    """Stable per-name seed (str hash() is randomized per process)."""
    return zlib.crc32(name.encode())


# ---------------------------------------------------------------------------------------------
# Independent references (torch, float64: integer-valued and exact below 2^53)


def _nchw(x_hwc, zp=0):
    return torch.from_numpy(x_hwc.astype(np.float64) - zp).permute(2, 0, 1)[None]


def _pad_to_windows(t, p, dil=(1, 1), value=0.0):
    """Pad/crop NCHW `t` so that a VALID window sweep yields exactly out_h x out_w."""
    rows = (p.out_h - 1) * p.stride_h + (p.k_h - 1) * dil[0] + 1
    cols = (p.out_w - 1) * p.stride_w + (p.k_w - 1) * dil[1] + 1
    bottom = rows - p.pad_top - t.shape[2]
    right = cols - p.pad_left - t.shape[3]
    return F.pad(t, (p.pad_left, right, p.pad_top, bottom), value=value)


def _to_int_hwc(t):
    arr = t[0].permute(1, 2, 0).numpy()
    assert np.all(arr == np.round(arr))
    return np.round(arr).astype(np.int64)


def torch_conv_acc(p, x, w_oihw, bias, groups):
    t = _pad_to_windows(_nchw(x, p.in_zp), p, (p.dil_h, p.dil_w))
    y = F.conv2d(t, torch.from_numpy(w_oihw.astype(np.float64)), stride=(p.stride_h, p.stride_w),
                 dilation=(p.dil_h, p.dil_w), groups=groups)
    acc = _to_int_hwc(y)
    return acc if bias is None else acc + bias.astype(np.int64)


def assert_requant_close(acc, y, mult, shift, out_zp, act_min, act_max):
    """y is the double-rounded requantization of acc: within 1 LSB of the real-valued result."""
    real_mult = mult.astype(np.float64) * 2.0 ** (shift.astype(np.float64) - 31)
    ideal = np.clip(round_half_away(acc * real_mult) + out_zp, act_min, act_max)
    diff = np.abs(ideal - y.astype(np.float64))
    assert diff.max(initial=0) <= 1, f"requantization off by {diff.max()} LSB"


# ---------------------------------------------------------------------------------------------
# Struct layout


@pytest.mark.parametrize("cls", PARAM_CLASSES, ids=lambda c: c.C_STRUCT)
def test_dataclass_fields_match_c_struct(cls):
    text = re.sub(r"/\*.*?\*/", "", (RUNTIME / HEADERS[cls]).read_text(), flags=re.S)
    m = re.search(r"typedef struct \{([^{}]*)\}\s*" + cls.C_STRUCT + r"\s*;", text, re.S)
    assert m, f"{cls.C_STRUCT} not found in {HEADERS[cls]}"
    c_fields = []
    for decl in m.group(1).split(";"):
        decl = decl.strip()
        if decl:
            assert decl.startswith("int32_t "), f"non-int32 field declaration: {decl!r}"
            c_fields += [name.strip() for name in decl[len("int32_t "):].split(",")]
    assert c_fields == [f.name for f in fields(cls)]


# ---------------------------------------------------------------------------------------------
# conv2d


def check_conv(lib, case):
    p, x, w, bias, mult, shift = case
    status, y_c = run_c_conv_like(lib, "tc_conv2d_s8", p, (p.out_h, p.out_w, p.out_c), x, w,
                                  bias, mult, shift)
    assert status == TC_OK
    y_golden = conv2d_s8(p, x, w, bias, mult, shift)
    assert_bit_exact(y_c, y_golden, f"conv2d C vs golden {p}")
    acc = conv2d_acc(p, x, w, bias)
    assert np.array_equal(acc, torch_conv_acc(p, x, w.transpose(0, 3, 1, 2), bias, p.groups))
    assert_requant_close(acc, y_golden, mult, shift, p.out_zp, p.act_min, p.act_max)
    return y_golden


@pytest.mark.parametrize("seed", range(150))
def test_conv2d_random(lib, seed):
    check_conv(lib, conv_case(1000 + seed))


@pytest.mark.parametrize("name", list(CONV_TARGETED))
def test_conv2d_targeted(lib, name):
    case = conv_case(name_seed(name), **CONV_TARGETED[name])
    y = check_conv(lib, case)
    p = case[0]
    if name == "saturation":
        assert (y == 127).any() and (y == -128).any(), "saturation case did not saturate"
    if name == "tiny_multiplier_flush":  # |acc| < 2^25 times a multiplier <= 2^-30 rounds to 0
        assert np.all(y == np.clip(p.out_zp, p.act_min, p.act_max))


def test_conv2d_flushed_multiplier_gives_zero_point(lib):
    p, x, w, bias, _, _ = conv_case(7, act="full", use_bias=True)
    mult, shift = quantize_multiplier_array(np.full(p.out_c, 2.0 ** -40))
    assert not mult.any() and not shift.any()  # flushed to (0, 0) by QuantizeMultiplier
    mult, shift = mult.astype(np.int32), shift.astype(np.int32)
    _, y = run_c_conv_like(lib, "tc_conv2d_s8", p, (p.out_h, p.out_w, p.out_c), x, w, bias,
                           mult, shift)
    assert np.all(y == p.out_zp)
    assert_bit_exact(y, conv2d_s8(p, x, w, bias, mult, shift), "flushed multiplier")


def test_conv2d_hand_computed():
    """A 2x2 input, 2x2 kernel, 'same' padding bottom/right, worked out by hand."""
    p = Conv2dParams(in_h=2, in_w=2, in_c=1, out_h=2, out_w=2, out_c=1, k_h=2, k_w=2,
                     stride_h=1, stride_w=1, dil_h=1, dil_w=1, pad_top=0, pad_left=0,
                     groups=1, in_zp=1, out_zp=-3, act_min=-128, act_max=127)
    x = np.array([[[3], [5]], [[-1], [2]]], dtype=np.int8)  # minus zp: [[2, 4], [-2, 1]]
    w = np.array([[[[1], [2]], [[3], [-1]]]], dtype=np.int8)
    # acc(0,0) = 2*1 + 4*2 + (-2)*3 + 1*(-1) = 3; acc(0,1) = 4*1 + 1*3 = 7
    # acc(1,0) = -2*1 + 1*2 = 0;                  acc(1,1) = 1*1 = 1;  bias +10
    expected_acc = np.array([[[13], [17]], [[10], [11]]])
    assert np.array_equal(conv2d_acc(p, x, w, np.array([10], np.int32)), expected_acc)
    mult, shift = np.array([1 << 30], np.int32), np.array([0], np.int32)  # x 0.5
    y = conv2d_s8(p, x, w, np.array([10], np.int32), mult, shift)
    # 6.5 -> 7 (half away from zero), 8.5 -> 9, 5, 5.5 -> 6; then + out_zp (-3)
    assert y[..., 0].tolist() == [[4, 6], [2, 3]]


# ---------------------------------------------------------------------------------------------
# depthwise conv2d (out-of-place and in-place)


def dw_torch_weights(p, w):
    return w.transpose(2, 0, 1)[:, None]  # [k_h][k_w][out_c] -> [out_c][1][k_h][k_w]


def check_dw(lib, case):
    p, x, w, bias, mult, shift = case
    status, y_c = run_c_conv_like(lib, "tc_dwconv2d_s8", p, (p.out_h, p.out_w, p.out_c), x, w,
                                  bias, mult, shift)
    assert status == TC_OK
    y_golden = dwconv2d_s8(p, x, w, bias, mult, shift)
    assert_bit_exact(y_c, y_golden, f"dwconv2d C vs golden {p}")
    acc = dwconv2d_acc(p, x, w, bias)
    assert np.array_equal(acc, torch_conv_acc(p, x, dw_torch_weights(p, w), bias, p.in_c))
    assert_requant_close(acc, y_golden, mult, shift, p.out_zp, p.act_min, p.act_max)
    # The same layer written as a grouped conv2d must agree (conv weights OHWI, I = 1).
    conv_p = Conv2dParams(**{**{f.name: getattr(p, f.name) for f in fields(p)
                                if f.name != "depth_mult"}, "groups": p.in_c})
    conv_w = np.ascontiguousarray(w.transpose(2, 0, 1)[..., None])
    assert_bit_exact(conv2d_s8(conv_p, x, conv_w, bias, mult, shift), y_golden,
                     "depthwise vs grouped conv")
    return y_golden


def test_declared_scratch_sizes_match_the_c_functions(lib):
    """Every kernel declared with scratch (tinycc/kernels.py, the one source the lowering reads)
    has a C `<kernel>_scratch_size` that agrees with it."""
    from tinycc.ops.recurrent import GruParams, LstmParams, make_gru_params, make_lstm_params

    def rnn_shape(seed):
        rng = np.random.default_rng(seed)
        return dict(steps=int(rng.integers(1, 60)), input_size=int(rng.integers(1, 40)),
                    hidden_size=int(rng.integers(1, 70)), reverse=0, in_zp=0, hidden_zp=0)

    def codebook(kind):  # the codebook kernels (tests/test_codebook_kernels.py makes their cases)
        return lambda seed: __import__("test_codebook_kernels").make_case(kind, seed)[0]

    makers = {DwConv2dParams: lambda seed: dw_case(seed, depth_mult=1)[0], Conv2dCbParams: codebook("conv"),
              DwConv2dCbParams: codebook("dw"), FcCbParams: codebook("fc"),
              LstmParams: lambda seed: make_lstm_params(0.01, **rnn_shape(seed)),
              GruParams: lambda seed: make_gru_params(0.01, linear_before_reset=seed % 2, **rnn_shape(seed))}
    from tinycc.ops.conv_transpose import ConvTransposeParams  # its int32 accumulator plane

    C_STRUCTS.setdefault(ConvTransposeParams, _ctypes_struct(ConvTransposeParams))
    makers[ConvTransposeParams] = lambda seed: ConvTransposeParams(
        **{f.name: getattr(dw_case(seed, depth_mult=1)[0], f.name, 1) for f in fields(ConvTransposeParams)})
    makers[PwTernaryParams] = lambda seed: PwTernaryParams(1 + seed % 7, 4 + seed, 1 + 13 * seed, 0, 0, -128, 127)
    scratch_kernels = {n: d for n, d in all_kernels().items() if d.scratch_bytes is not None}
    assert scratch_kernels, "no kernel declares scratch"
    for name, decl in scratch_kernels.items():
        assert "scratch" in decl.args, name
        size_fn = getattr(lib, name + "_scratch_size")
        size_fn.restype, size_fn.argtypes = ctypes.c_int32, [ctypes.c_void_p]
        for seed in range(20):
            p = makers[decl.params](7000 + seed)
            struct = C_STRUCTS.get(type(p)) or _ctypes_struct(type(p))
            assert size_fn(ctypes.byref(struct(**asdict(p)))) == decl.scratch_bytes(p), (name, p)


def run_c_dw_inplace(lib, p, x, w, bias, mult, shift):
    """In-place call: (status, output = first out_h*out_w*C bytes of the shared buffer, buffer)."""
    buf = x.copy()
    scratch_size = lib.tc_dwconv2d_s8_inplace_scratch_size(c_params(p))
    assert scratch_size == dwconv2d_s8_inplace_scratch_size(p) == p.in_h * p.in_w
    scratch = np.zeros(scratch_size, dtype=np.int8)
    status = lib.tc_dwconv2d_s8_inplace(c_params(p), ptr(buf), ptr(w), _opt_ptr(bias), ptr(mult),
                                        ptr(shift), ptr(scratch), ptr(buf))
    if status != TC_OK:
        return status, None, buf
    n = p.out_h * p.out_w * p.out_c
    return status, buf.reshape(-1)[:n].reshape(p.out_h, p.out_w, p.out_c), buf


@pytest.mark.parametrize("seed", range(120))
def test_dwconv2d_random(lib, seed):
    check_dw(lib, dw_case(2000 + seed))


@pytest.mark.parametrize("name", list(DW_TARGETED))
def test_dwconv2d_targeted(lib, name):
    y = check_dw(lib, dw_case(name_seed(name), **DW_TARGETED[name]))
    if name == "saturation":
        assert (y == 127).any() and (y == -128).any()


INPLACE_GEOMETRIES = {
    "s1_same": dict(in_hw=(9, 7), k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1)),
    "s2_same": dict(in_hw=(9, 8), k=(3, 3), stride=(2, 2), dil=(1, 1), pads=(1, 1, 1, 1)),
    "s2_valid": dict(in_hw=(10, 10), k=(3, 3), stride=(2, 2), dil=(1, 1), pads=(0, 0, 0, 0)),
    "5x5_s1_same": dict(in_hw=(6, 11), k=(5, 5), stride=(1, 1), dil=(1, 1), pads=(2, 2, 2, 2)),
    "7x7_s2": dict(in_hw=(7, 5), k=(7, 7), stride=(2, 2), dil=(1, 1), pads=(3, 3, 3, 3)),
    "dilated": dict(in_hw=(8, 8), k=(3, 3), stride=(1, 1), dil=(2, 2), pads=(2, 2, 2, 2)),
    "s3_asym": dict(in_hw=(11, 7), k=(3, 2), stride=(3, 2), dil=(1, 1), pads=(0, 1, 2, 0)),
}


@pytest.mark.parametrize("name", list(INPLACE_GEOMETRIES))
@pytest.mark.parametrize("seed", range(3))
def test_dwconv2d_inplace_equals_out_of_place(lib, name, seed):
    p, x, w, bias, mult, shift = dw_case(3000 + seed, depth_mult=1, in_c=int(3 + 5 * seed),
                                         **INPLACE_GEOMETRIES[name])
    x_before = x.copy()
    _, y_ref = run_c_conv_like(lib, "tc_dwconv2d_s8", p, (p.out_h, p.out_w, p.out_c), x, w, bias,
                               mult, shift)
    assert np.array_equal(x, x_before)
    status, y_inplace, buf = run_c_dw_inplace(lib, p, x, w, bias, mult, shift)
    assert status == TC_OK
    assert_bit_exact(y_inplace, y_ref, "in-place vs out-of-place")
    assert_bit_exact(y_inplace, dwconv2d_s8_inplace(p, x, w, bias, mult, shift),
                     "in-place C vs golden")
    # Bytes past the output are left as they were (only channel slots of output pixels change).
    n = p.out_h * p.out_w * p.out_c
    assert np.array_equal(buf.reshape(-1)[n:], x.reshape(-1)[n:])
    # A separate output buffer works too.
    out = np.full_like(y_ref, SENTINEL)
    scratch = np.zeros(p.in_h * p.in_w, dtype=np.int8)
    status = lib.tc_dwconv2d_s8_inplace(c_params(p), ptr(x), ptr(w), _opt_ptr(bias), ptr(mult),
                                        ptr(shift), ptr(scratch), ptr(out))
    assert status == TC_OK and np.array_equal(out, y_ref) and np.array_equal(x, x_before)


def test_dwconv2d_inplace_rejects_invalid(lib):
    p, x, w, bias, mult, shift = dw_case(5, depth_mult=2, in_c=3)
    status, _, buf = run_c_dw_inplace(lib, p, x, w, bias, mult, shift)
    assert status == TC_ARG_ERROR and np.array_equal(buf, x)
    with pytest.raises(ValueError):
        dwconv2d_s8_inplace(p, x, w, bias, mult, shift)
    # Output larger than input (big padding) cannot be computed in place.
    p, x, w, bias, mult, shift = dw_case(6, depth_mult=1, in_hw=(3, 3), k=(3, 3), stride=(1, 1),
                                         dil=(1, 1), pads=(2, 2, 2, 2))
    assert p.out_h * p.out_w > p.in_h * p.in_w
    status, _, buf = run_c_dw_inplace(lib, p, x, w, bias, mult, shift)
    assert status == TC_ARG_ERROR and np.array_equal(buf, x)
    with pytest.raises(ValueError):
        dwconv2d_s8_inplace(p, x, w, bias, mult, shift)


# ---------------------------------------------------------------------------------------------
# fully connected


def check_fc(lib, case):
    p, x, w, bias, mult, shift = case
    status, y_c = run_c_conv_like(lib, "tc_fc_s8", p, (p.rows, p.out_features), x, w, bias, mult,
                                  shift)
    assert status == TC_OK
    y_golden = fc_s8(p, x, w, bias, mult, shift)
    assert_bit_exact(y_c, y_golden, f"fc C vs golden {p}")
    ref = F.linear(torch.from_numpy(x.astype(np.float64) - p.in_zp),
                   torch.from_numpy(w.astype(np.float64))).numpy().astype(np.int64)
    if bias is not None:
        ref += bias
    acc = fc_acc(p, x, w, bias)
    assert np.array_equal(acc, ref)
    assert_requant_close(acc, y_golden, mult, shift, p.out_zp, p.act_min, p.act_max)
    return y_golden


@pytest.mark.parametrize("seed", range(60))
def test_fc_random(lib, seed):
    check_fc(lib, fc_case(4000 + seed))


@pytest.mark.parametrize("name", list(FC_TARGETED))
def test_fc_targeted(lib, name):
    y = check_fc(lib, fc_case(name_seed(name), **FC_TARGETED[name]))
    if name == "saturation":
        assert (y == 127).any() or (y == -128).any()


def test_fc_rows_are_independent(lib):
    p, x, w, bias, mult, shift = fc_case(11, rows=4)
    _, y = run_c_conv_like(lib, "tc_fc_s8", p, (4, p.out_features), x, w, bias, mult, shift)
    one_row = FcParams(1, p.in_features, p.out_features, p.in_zp, p.out_zp, p.act_min,
                       p.act_max)
    for r in range(4):
        _, y_r = run_c_conv_like(lib, "tc_fc_s8", one_row, (1, p.out_features), x[r:r + 1].copy(),
                                 w, bias, mult, shift)
        assert np.array_equal(y_r[0], y[r])


@pytest.mark.parametrize("seed", range(6))
def test_fc_per_tensor_requantization(lib, seed):
    """per_channel=0: one (mult, shift) for every output channel, equal to the per-channel
    kernel given that pair repeated."""
    p, x, w, bias, mult, shift = fc_case(4500 + seed)
    tensor = _replace(p, per_channel=0)
    status, y = run_c_conv_like(lib, "tc_fc_s8", tensor, (p.rows, p.out_features), x, w, bias,
                                mult[:1].copy(), shift[:1].copy())
    assert status == 0
    np.testing.assert_array_equal(y, fc_s8(tensor, x, w, bias, mult[:1], shift[:1]))
    repeated = (np.repeat(mult[:1], p.out_features), np.repeat(shift[:1], p.out_features))
    np.testing.assert_array_equal(y, fc_s8(p, x, w, bias, *repeated))


# ---------------------------------------------------------------------------------------------
# pooling


def torch_maxpool(p, x):
    t = _pad_to_windows(_nchw(x), p, value=-np.inf)
    y = F.max_pool2d(t, (p.k_h, p.k_w), (p.stride_h, p.stride_w))
    return np.clip(_to_int_hwc(y), p.act_min, p.act_max)


def torch_window_sums(p, t):
    """Sum over each window (padding already applied as zeros) of NCHW `t`."""
    return F.avg_pool2d(_pad_to_windows(t, p), (p.k_h, p.k_w), (p.stride_h, p.stride_w),
                        divisor_override=1)


def float_avgpool(p, x, scale_ratio):
    """Real-valued average (padding = real 0) in output units, before rounding."""
    centered = torch_window_sums(p, _nchw(x, p.in_zp))  # sum of (x - zp) over in-image taps
    if p.count_include_pad:
        count = torch.full_like(centered, float(p.k_h * p.k_w))
    else:
        count = torch_window_sums(p, torch.ones((1, 1, p.in_h, p.in_w), dtype=torch.float64))
    mean = (centered / count)[0].permute(1, 2, 0).numpy()
    if p.use_requant:
        return mean * scale_ratio + p.out_zp
    return mean + p.in_zp


def check_maxpool(lib, case):
    p, x = case
    status, y_c = run_c_pool(lib, "tc_maxpool_s8", p, x)
    assert status == TC_OK
    y_golden = maxpool_s8(p, x)
    assert_bit_exact(y_c, y_golden, f"maxpool C vs golden {p}")
    assert np.array_equal(y_golden, torch_maxpool(p, x))


def check_avgpool(lib, case):
    p, x, scale_ratio = case
    status, y_c = run_c_pool(lib, "tc_avgpool_s8", p, x)
    assert status == TC_OK
    y_golden = avgpool_s8(p, x)
    assert_bit_exact(y_c, y_golden, f"avgpool C vs golden {p}")
    ideal = np.clip(round_half_away(float_avgpool(p, x, scale_ratio)), p.act_min, p.act_max)
    if p.use_requant:  # double rounding through the multiplier: within 1 LSB
        assert np.abs(ideal - y_golden).max() <= 1
    else:  # the exact rounded mean (half away from zero), as TFLM computes it
        assert_bit_exact(y_golden.astype(np.int64), ideal.astype(np.int64), "avgpool vs float")
    return y_golden


@pytest.mark.parametrize("seed", range(60))
def test_maxpool_random(lib, dsp_lib, seed):
    for kernels in (lib, dsp_lib):  # portable; SIMD byte maxima from 4 channels on
        check_maxpool(kernels, maxpool_case(5000 + seed))


@pytest.mark.parametrize("name", list(POOL_TARGETED) + list(MAXPOOL_DSP_TARGETED))
def test_maxpool_targeted(lib, dsp_lib, name):
    geometry = {**POOL_TARGETED, **MAXPOOL_DSP_TARGETED}[name]
    for kernels in (lib, dsp_lib):
        check_maxpool(kernels, maxpool_case(name_seed(name), **geometry))
        check_maxpool(kernels, maxpool_case(name_seed(name), act="random", **geometry))


AVGPOOL_MODES = {"valid_taps": (0, 0), "count_pad": (1, 0), "count_pad_requant": (1, 1),
                 "requant": (0, 1)}


@pytest.mark.parametrize("seed", range(120))
def test_avgpool_random(lib, dsp_lib, seed):
    for kernels in (lib, dsp_lib):  # portable; int16-lane sums (SXTAB16) from 4 channels on
        check_avgpool(kernels, avgpool_case(6000 + seed))


# The SIMD average pool (tc_avgpool_s8_dsp.c): 4 channels per word, a last 1 to 3 channels by
# bytes, window runs longer than an int16 lane's 255 taps, global windows as one run.
AVGPOOL_DSP_TARGETED = {
    "channels_4_2x2": dict(in_hw=(6, 6), k=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0),
                           ceil_mode=False, channels=4),
    "channels_7_tail_3_padded": dict(in_hw=(7, 5), k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1),
                                     channels=7),
    "channels_13_tail_1": dict(in_hw=(5, 6), k=(3, 3), stride=(1, 1), pads=(0, 0, 0, 0),
                               channels=13),
    "global_25x5x64_kws": dict(in_hw=(25, 5), k=(25, 5), stride=(1, 1), pads=(0, 0, 0, 0),
                               channels=64),
    "global_20x20_400_taps": dict(in_hw=(20, 20), k=(20, 20), stride=(1, 1), pads=(0, 0, 0, 0),
                                  channels=8),
    "rows_of_300_taps": dict(in_hw=(3, 300), k=(2, 300), stride=(1, 1), pads=(0, 0, 0, 0),
                             channels=4),
    "window_17x17_289_taps_not_whole_rows": dict(in_hw=(18, 18), k=(17, 17), stride=(1, 1),
                                                 pads=(0, 0, 0, 0), channels=5),
}


@pytest.mark.parametrize("mode", list(AVGPOOL_MODES))
@pytest.mark.parametrize("name", list(AVGPOOL_DSP_TARGETED))
def test_avgpool_dsp_targeted(lib, dsp_lib, name, mode):
    count_include_pad, use_requant = AVGPOOL_MODES[mode]
    geometry = AVGPOOL_DSP_TARGETED[name]
    if use_requant and not count_include_pad and geometry["pads"] != (0, 0, 0, 0):
        pytest.skip("rejected by design: see test_avgpool_requant_rejects_border_windows")
    for kernels in (lib, dsp_lib):
        check_avgpool(kernels, avgpool_case(name_seed(name), count_include_pad=count_include_pad,
                                            use_requant=use_requant, **geometry))


@pytest.mark.parametrize("value", [-128, 127])
def test_avgpool_dsp_lane_extremes(lib, dsp_lib, value):
    """Every tap at an int8 extreme over 400 taps: a lane that summed more than 255 of them
    would wrap (400 * 128 > 32,767); the mean is the value itself."""
    p, _, ratio = avgpool_case(1, count_include_pad=0, use_requant=0, in_zp=0, act="full",
                               in_hw=(20, 20), k=(20, 20), stride=(1, 1), pads=(0, 0, 0, 0),
                               channels=8)
    x = np.full((20, 20, 8), value, dtype=np.int8)
    for kernels in (lib, dsp_lib):
        assert (check_avgpool(kernels, (p, x, ratio)) == value).all()


def _avgpool_targets():
    for mode_name, (count_include_pad, use_requant) in AVGPOOL_MODES.items():
        for name, geometry in POOL_TARGETED.items():
            border_windows = geometry["pads"] != (0, 0, 0, 0) or geometry.get("ceil_mode")
            if use_requant and not count_include_pad and border_windows:
                continue  # rejected by design: see test_avgpool_requant_rejects_border_windows
            yield pytest.param(name, count_include_pad, use_requant, id=f"{mode_name}-{name}")


@pytest.mark.parametrize("name, count_include_pad, use_requant", list(_avgpool_targets()))
def test_avgpool_targeted(lib, dsp_lib, name, count_include_pad, use_requant):
    for zp, kernels in [(zp, k) for zp in (-128, 127, 3) for k in (lib, dsp_lib)]:
        check_avgpool(kernels, avgpool_case(name_seed(name), count_include_pad=count_include_pad,
                                        use_requant=use_requant, in_zp=zp,
                                        **POOL_TARGETED[name]))


def test_avgpool_rounding_ties_away_from_zero(lib):
    """Window sums of +-1 and +-3 over 2 taps: the TFLM rule rounds .5 away from zero."""
    p = AvgPoolParams(in_h=1, in_w=4, channels=1, out_h=1, out_w=2, k_h=1, k_w=2,
                      stride_h=1, stride_w=2, pad_top=0, pad_left=0, count_include_pad=0,
                      use_requant=0, in_zp=0, out_zp=0, mult=0, shift=0, act_min=-128,
                      act_max=127)
    for x_row, expected in [([0, 1, 1, 2], [1, 2]), ([0, -1, -1, -2], [-1, -2]),
                            ([-128, -127, 127, 126], [-128, 127])]:
        x = np.array(x_row, dtype=np.int8).reshape(1, 4, 1)
        _, y = run_c_pool(lib, "tc_avgpool_s8", p, x)
        assert y.reshape(-1).tolist() == expected == avgpool_s8(p, x).reshape(-1).tolist()


def test_avgpool_count_include_pad_uses_real_zero(lib):
    """3x3 window at a corner of a constant image: padded taps are real 0 (= in_zp)."""
    base = dict(in_h=3, in_w=3, channels=1, out_h=1, out_w=1, k_h=3, k_w=3, stride_h=1,
                stride_w=1, pad_top=1, pad_left=1, use_requant=0, out_zp=0, mult=0, shift=0,
                act_min=-128, act_max=127)
    x = np.full((3, 3, 1), 50, dtype=np.int8)  # real value (50 - 10) * s everywhere
    with_pad = AvgPoolParams(count_include_pad=1, in_zp=10, **base)
    without = AvgPoolParams(count_include_pad=0, in_zp=10, **base)
    # 4 in-image taps of real 40, 5 padded of real 0: mean 160/9 = 17.78 -> q = 10 + 18 = 28.
    assert run_c_pool(lib, "tc_avgpool_s8", with_pad, x)[1].item() == 28
    assert run_c_pool(lib, "tc_avgpool_s8", without, x)[1].item() == 50
    assert avgpool_s8(with_pad, x).item() == 28 and avgpool_s8(without, x).item() == 50


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (12, 12), (48, 48)])
@pytest.mark.parametrize("seed", range(2))
def test_global_avgpool_requant(lib, dsp_lib, hw, seed):
    case = avgpool_case(7000 + seed, channels=8 * (seed + 1), count_include_pad=0, use_requant=1,
                        in_hw=hw, k=hw, stride=(1, 1), pads=(0, 0, 0, 0), ceil_mode=False)
    p = case[0]
    assert (p.out_h, p.out_w) == (1, 1)
    for kernels in (lib, dsp_lib):
        check_avgpool(kernels, case)


# ---------------------------------------------------------------------------------------------
# argument errors: C returns TC_ARG_ERROR and writes nothing; the golden raises ValueError


def _replace(p, **changes):
    return type(p)(**{**asdict(p), **changes})


CONV_BAD = {"groups_0": dict(groups=0), "groups_not_dividing": dict(groups=5),
            "stride_0": dict(stride_w=0), "dil_0": dict(dil_h=0), "pad_negative": dict(pad_top=-1),
            "in_zp_range": dict(in_zp=128), "out_zp_range": dict(out_zp=-129),
            "act_inverted": dict(act_min=10, act_max=9), "act_range": dict(act_max=128),
            "out_h_0": dict(out_h=0)}


@pytest.mark.parametrize("name", list(CONV_BAD))
def test_conv2d_arg_errors(lib, name):
    p, x, w, bias, mult, shift = conv_case(9, in_c=4, out_c=4, groups=2)
    bad = _replace(p, **CONV_BAD[name])
    shape = (max(p.out_h, 1), max(p.out_w, 1), p.out_c)
    status, y = run_c_conv_like(lib, "tc_conv2d_s8", bad, shape, x, w, bias, mult, shift)
    assert status == TC_ARG_ERROR and np.all(y == SENTINEL)
    with pytest.raises(ValueError):
        conv2d_s8(bad, x, w, bias, mult, shift)


@pytest.mark.parametrize("fn", ["conv2d", "dwconv2d", "fc"])
@pytest.mark.parametrize("bad_shift", [-32, 31])
def test_bad_shift_rejected(lib, fn, bad_shift):
    make, name, shape = {
        "conv2d": (lambda: conv_case(3), "tc_conv2d_s8", lambda p: (p.out_h, p.out_w, p.out_c)),
        "dwconv2d": (lambda: dw_case(3), "tc_dwconv2d_s8", lambda p: (p.out_h, p.out_w, p.out_c)),
        "fc": (lambda: fc_case(3), "tc_fc_s8", lambda p: (p.rows, p.out_features)),
    }[fn]
    p, x, w, bias, mult, shift = make()
    shift = shift.copy()
    shift[-1] = bad_shift
    status, y = run_c_conv_like(lib, name, p, shape(p), x, w, bias, mult, shift)
    assert status == TC_ARG_ERROR and np.all(y == SENTINEL)
    with pytest.raises(ValueError):
        {"conv2d": conv2d_s8, "dwconv2d": dwconv2d_s8, "fc": fc_s8}[fn](p, x, w, bias, mult, shift)


@pytest.mark.parametrize("changes", [dict(depth_mult=2), dict(out_c=0), dict(k_h=0),
                                     dict(in_zp=-129), dict(act_min=-129)])
def test_dwconv2d_arg_errors(lib, changes):
    p, x, w, bias, mult, shift = dw_case(4, depth_mult=1, in_c=3)
    bad = _replace(p, **changes)
    status, y = run_c_conv_like(lib, "tc_dwconv2d_s8", bad, (p.out_h, p.out_w, p.out_c), x, w,
                                bias, mult, shift)
    assert status == TC_ARG_ERROR and np.all(y == SENTINEL)
    with pytest.raises(ValueError):
        dwconv2d_s8(bad, x, w, bias, mult, shift)


@pytest.mark.parametrize("changes", [dict(rows=0), dict(in_features=0), dict(out_zp=200),
                                     dict(act_min=5, act_max=4)])
def test_fc_arg_errors(lib, changes):
    p, x, w, bias, mult, shift = fc_case(4, rows=2)
    bad = _replace(p, **changes)
    status, y = run_c_conv_like(lib, "tc_fc_s8", bad, (p.rows, p.out_features), x, w, bias, mult,
                                shift)
    assert status == TC_ARG_ERROR and np.all(y == SENTINEL)
    with pytest.raises(ValueError):
        fc_s8(bad, x, w, bias, mult, shift)


POOL_BAD = {"pad_ge_kernel": dict(pad_top=3), "window_past_image": dict(out_w=9),
            "stride_0": dict(stride_h=0), "act_inverted": dict(act_min=1, act_max=0),
            "channels_0": dict(channels=0)}


@pytest.mark.parametrize("name", list(POOL_BAD))
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_arg_errors(lib, name, kind):
    geo = dict(in_hw=(6, 6), k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1), ceil_mode=False)
    if kind == "max":
        p, x = maxpool_case(1, channels=2, **geo)
        c_name, golden = "tc_maxpool_s8", maxpool_s8
    else:
        p, x, _ = avgpool_case(1, channels=2, count_include_pad=0, use_requant=0, **geo)
        c_name, golden = "tc_avgpool_s8", avgpool_s8
    bad = _replace(p, **POOL_BAD[name])
    out = np.full((bad.out_h, bad.out_w, max(bad.channels, 1)), SENTINEL, dtype=np.int8)
    assert getattr(lib, c_name)(c_params(bad), ptr(x), ptr(out)) == TC_ARG_ERROR
    assert np.all(out == SENTINEL)
    with pytest.raises(ValueError):
        golden(bad, x)


def test_avgpool_requant_rejects_border_windows(lib):
    p, x, _ = avgpool_case(2, count_include_pad=1, use_requant=1, in_hw=(5, 5), k=(3, 3),
                           stride=(1, 1), pads=(1, 1, 1, 1), ceil_mode=False)
    assert run_c_pool(lib, "tc_avgpool_s8", p, x)[0] == TC_OK
    bad = _replace(p, count_include_pad=0)
    status, y = run_c_pool(lib, "tc_avgpool_s8", bad, x)
    assert status == TC_ARG_ERROR and np.all(y == SENTINEL)
    with pytest.raises(ValueError):
        avgpool_s8(bad, x)


def test_golden_refuses_int32_overflow():
    p = FcParams(1, 4, 1, -128, 0, -128, 127)
    x = np.full((1, 4), 127, dtype=np.int8)
    w = np.full((1, 4), 127, dtype=np.int8)
    mult, shift = np.array([1 << 30], np.int32), np.array([0], np.int32)
    fc_s8(p, x, w, None, mult, shift)  # 4 * 127 * 255 fits
    with pytest.raises(ValueError, match="overflow"):
        fc_s8(p, x, w, np.array([2**31 - 1000], np.int32), mult, shift)


# ---------------------------------------------------------------------------------------------
# MobileNet-sized layers: C == golden, and the golden is fast


MOBILENET_LAYERS = {
    "stem_96x96x3_s2": ("conv", dict(in_hw=(96, 96), k=(3, 3), stride=(2, 2), dil=(1, 1),
                                     pads=(0, 0, 1, 1), in_c=3, out_c=16, groups=1)),
    "dw_48x48x32": ("dw", dict(in_hw=(48, 48), k=(3, 3), stride=(1, 1), dil=(1, 1),
                               pads=(1, 1, 1, 1), in_c=32, depth_mult=1)),
    "pw_48x48x32_64": ("conv", dict(in_hw=(48, 48), k=(1, 1), stride=(1, 1), dil=(1, 1),
                                    pads=(0, 0, 0, 0), in_c=32, out_c=64, groups=1)),
    "dw_96x96x16_s2": ("dw", dict(in_hw=(96, 96), k=(3, 3), stride=(2, 2), dil=(1, 1),
                                  pads=(0, 0, 1, 1), in_c=16, depth_mult=1)),
}


@pytest.mark.parametrize("name", list(MOBILENET_LAYERS))
def test_mobilenet_sized_layer(lib, name):
    kind, kwargs = MOBILENET_LAYERS[name]
    if kind == "conv":
        p, x, w, bias, mult, shift = conv_case(1, regime="normal", **kwargs)
        golden, c_name = conv2d_s8, "tc_conv2d_s8"
    else:
        p, x, w, bias, mult, shift = dw_case(1, regime="normal", **kwargs)
        golden, c_name = dwconv2d_s8, "tc_dwconv2d_s8"
    start = time.perf_counter()
    y_golden = golden(p, x, w, bias, mult, shift)
    elapsed = time.perf_counter() - start
    _, y_c = run_c_conv_like(lib, c_name, p, y_golden.shape, x, w, bias, mult, shift)
    assert_bit_exact(y_c, y_golden, name)
    assert len(np.unique(y_golden)) > 20, "degenerate test data"
    assert elapsed < 1.0, f"golden took {elapsed:.2f}s"
    if kind == "dw":
        status, y_inplace, _ = run_c_dw_inplace(lib, p, x, w, bias, mult, shift)
        assert status == TC_OK
        assert_bit_exact(y_inplace, y_golden, name + " in place")


# ---------------------------------------------------------------------------------------------
# AddressSanitizer + UndefinedBehaviorSanitizer run of the C kernels

SANITIZER_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tc_conv.h"
#include "tc_pool.h"

enum { K_CONV, K_DW, K_DW_INPLACE, K_FC, K_MAXPOOL, K_AVGPOOL };

static int read_i32(FILE *f, int32_t *v) { return fread(v, sizeof *v, 1, f) == 1; }

/* Length-prefixed array into an exactly sized heap block (so ASan sees any overrun);
 * a length of -1 stands for a NULL pointer. */
static int read_array(FILE *f, void **data) {
    int32_t len;
    *data = NULL;
    if (!read_i32(f, &len)) return 0;
    if (len < 0) return 1;
    *data = malloc(len > 0 ? (size_t)len : 1u);
    if (*data == NULL) return 0;
    return len == 0 || fread(*data, 1, (size_t)len, f) == (size_t)len;
}

static int read_params(FILE *f, void *params, size_t size) {
    int32_t n;
    if (!read_i32(f, &n) || (size_t)n * sizeof(int32_t) != size) return 0;
    return fread(params, 1, size, f) == size;
}

static int read_arrays(FILE *f, void **a, int count) {
    int i;
    for (i = 0; i < count; ++i) {
        if (!read_array(f, &a[i])) return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    FILE *fin, *fout;
    int32_t kernel;
    if (argc != 3) return 2;
    fin = fopen(argv[1], "rb");
    fout = fopen(argv[2], "wb");
    if (fin == NULL || fout == NULL) return 2;
    while (read_i32(fin, &kernel)) {
        void *a[5] = {NULL, NULL, NULL, NULL, NULL};
        int8_t *y = NULL, *scratch = NULL;
        const int8_t *result;
        int32_t out_len, status;
        int ok, i;
        tc_conv2d_params cp;
        tc_dwconv2d_params dp;
        tc_fc_params fp;
        tc_maxpool_params mp;
        tc_avgpool_params ap;
        switch (kernel) {
        case K_CONV: ok = read_params(fin, &cp, sizeof cp) && read_arrays(fin, a, 5); break;
        case K_DW:
        case K_DW_INPLACE: ok = read_params(fin, &dp, sizeof dp) && read_arrays(fin, a, 5); break;
        case K_FC: ok = read_params(fin, &fp, sizeof fp) && read_arrays(fin, a, 5); break;
        case K_MAXPOOL: ok = read_params(fin, &mp, sizeof mp) && read_arrays(fin, a, 1); break;
        case K_AVGPOOL: ok = read_params(fin, &ap, sizeof ap) && read_arrays(fin, a, 1); break;
        default: ok = 0;
        }
        if (!ok || !read_i32(fin, &out_len) || out_len < 1) return 3;
        y = malloc((size_t)out_len);
        if (y == NULL) return 3;
        result = y;
        switch (kernel) {
        case K_CONV: status = tc_conv2d_s8(&cp, a[0], a[1], a[2], a[3], a[4], y); break;
        case K_DW: status = tc_dwconv2d_s8(&dp, a[0], a[1], a[2], a[3], a[4], y); break;
        case K_DW_INPLACE:
            scratch = malloc((size_t)tc_dwconv2d_s8_inplace_scratch_size(&dp));
            if (scratch == NULL) return 3;
            status = tc_dwconv2d_s8_inplace(&dp, a[0], a[1], a[2], a[3], a[4], scratch, a[0]);
            result = a[0];
            break;
        case K_FC: status = tc_fc_s8(&fp, a[0], a[1], a[2], a[3], a[4], y); break;
        case K_MAXPOOL: status = tc_maxpool_s8(&mp, a[0], y); break;
        default: status = tc_avgpool_s8(&ap, a[0], y); break;
        }
        if (fwrite(&status, sizeof status, 1, fout) != 1 ||
            fwrite(result, 1, (size_t)out_len, fout) != (size_t)out_len) {
            return 4;
        }
        free(y);
        free(scratch);
        for (i = 0; i < 5; ++i) free(a[i]);
    }
    fclose(fin);
    return fclose(fout) == 0 ? 0 : 4;
}
"""

K_CONV, K_DW, K_DW_INPLACE, K_FC, K_MAXPOOL, K_AVGPOOL = range(6)
SANITIZED_KERNELS = ("tc_conv2d_s8", "tc_dwconv2d_s8", "tc_dwconv2d_s8_inplace", "tc_fc_s8", "tc_maxpool_s8",
                     "tc_avgpool_s8")  # in K_* order; built from their declared sources


def _encode_array(a):
    if a is None:
        return struct.pack("<i", -1)
    raw = np.ascontiguousarray(a).tobytes()
    return struct.pack("<i", len(raw)) + raw


def _encode_case(kernel, p, arrays, out_len):
    values = list(asdict(p).values())
    blob = struct.pack(f"<ii{len(values)}i", kernel, len(values), *values)
    return blob + b"".join(_encode_array(a) for a in arrays) + struct.pack("<i", out_len)


def _sanitizer_cases():
    """(kernel id, params, arrays, expected int8 output) over all kernels."""
    cases = []
    for seed in range(40):
        p, x, w, b, m, s = conv_case(9000 + seed, regime="mixed")
        cases.append((K_CONV, p, (x, w, b, m, s), conv2d_s8(p, x, w, b, m, s)))
        p, x, w, b, m, s = dw_case(9100 + seed, regime="mixed")
        cases.append((K_DW, p, (x, w, b, m, s), dwconv2d_s8(p, x, w, b, m, s)))
        geometry = list(INPLACE_GEOMETRIES.values())[seed % len(INPLACE_GEOMETRIES)]
        p, x, w, b, m, s = dw_case(9200 + seed, depth_mult=1, **geometry)
        cases.append((K_DW_INPLACE, p, (x, w, b, m, s),
                      dwconv2d_s8_inplace(p, x, w, b, m, s)))
        p, x, w, b, m, s = fc_case(9300 + seed, regime="mixed")
        cases.append((K_FC, p, (x, w, b, m, s), fc_s8(p, x, w, b, m, s)))
        p, x = maxpool_case(9400 + seed)
        cases.append((K_MAXPOOL, p, (x,), maxpool_s8(p, x)))
        p, x, _ = avgpool_case(9500 + seed)
        cases.append((K_AVGPOOL, p, (x,), avgpool_s8(p, x)))
    return cases


def _sanitizers_available(cc, tmp_path):
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    r = subprocess.run([cc, "-fsanitize=address,undefined", str(probe), "-o",
                        str(tmp_path / "probe")], capture_output=True, text=True)
    if r.returncode != 0:
        return False
    return subprocess.run([str(tmp_path / "probe")], capture_output=True).returncode == 0


def test_kernels_under_asan_ubsan(tmp_path):
    cc = c_compiler()
    if shutil.which(cc) is None or not _sanitizers_available(cc, tmp_path):
        pytest.skip(f"{cc} cannot build and run -fsanitize=address,undefined programs here")
    driver = tmp_path / "driver.c"
    driver.write_text(SANITIZER_DRIVER)
    exe = tmp_path / "driver"
    sources = [str(driver)] + [str(RUNTIME / n) for n in kernel_sources(*SANITIZED_KERNELS)]
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1",
                    "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", f"-I{RUNTIME}", *sources, "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    cases = _sanitizer_cases()
    (tmp_path / "in.bin").write_bytes(b"".join(
        _encode_case(kernel, p, arrays, expected.size) for kernel, p, arrays, expected in cases))
    run = subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                         capture_output=True, text=True, timeout=120,
                         env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
                              "UBSAN_OPTIONS": "print_stacktrace=1"})
    assert run.returncode == 0 and not run.stderr, run.stderr[-4000:]
    data = (tmp_path / "out.bin").read_bytes()
    offset = 0
    for kernel, p, _, expected in cases:
        (status,) = struct.unpack_from("<i", data, offset)
        offset += 4
        y = np.frombuffer(data, dtype=np.int8, count=expected.size, offset=offset)
        offset += expected.size
        assert status == TC_OK, (kernel, p)
        assert_bit_exact(y.reshape(expected.shape), expected, f"sanitized kernel {kernel} {p}")
    assert offset == len(data)
