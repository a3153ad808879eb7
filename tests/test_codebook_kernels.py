"""The codebook kernels (runtime_c/tc_conv2d_cb_s8*.c, tc_dwconv2d_cb_s8.c, tc_fc_cb_s8.c,
tc_codebook.c) against their golden mirrors, portable and on the emulated DSP path, on random
shapes, bit widths, palette groups and tiles; their argument errors; a sanitizer build."""
from __future__ import annotations

import ctypes
import subprocess
from dataclasses import asdict, fields, replace

import numpy as np
import pytest
from cbuild import RUNTIME, c_compiler, kernel_sources, ptr, require_sanitizers, runtime_library
from test_kernels_conv import conv_case, dw_case, fc_case

from tinycc.kernels import lookup
from tinycc.ops.conv import Conv2dCbParams, DwConv2dCbParams, conv2d_cb_s8, dwconv2d_cb_s8
from tinycc.ops.dense import FcCbParams, fc_cb_s8, fc_cb_uses_table
from tinycc.quant import codebook as cb

TC_OK, TC_ARG_ERROR = 0, -1
KERNELS = {Conv2dCbParams: ("tc_conv2d_cb_s8", conv2d_cb_s8), DwConv2dCbParams: ("tc_dwconv2d_cb_s8", dwconv2d_cb_s8),
           FcCbParams: ("tc_fc_cb_s8", fc_cb_s8)}


def _struct(cls):
    return type(cls.C_STRUCT, (ctypes.Structure,), {"_fields_": [(f.name, ctypes.c_int32) for f in fields(cls)]})


STRUCTS = {cls: _struct(cls) for cls in KERNELS}


@pytest.fixture(scope="module", params=["portable", "dsp"])
def lib(request):
    lib = runtime_library(defines=["TC_EMULATE_DSP"] if request.param == "dsp" else [])
    lib.tc_dwconv2d_cb_s8_inplace.restype = ctypes.c_int
    lib.tc_dwconv2d_cb_s8_inplace.argtypes = [ctypes.c_void_p] * 9
    lib.tc_dwconv2d_cb_s8_inplace_scratch_size.restype = ctypes.c_int32
    lib.tc_dwconv2d_cb_s8_inplace_scratch_size.argtypes = [ctypes.c_void_p]
    for name, _ in KERNELS.values():
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p] * 9
        getattr(lib, name + "_scratch_size").restype = ctypes.c_int32
        getattr(lib, name + "_scratch_size").argtypes = [ctypes.c_void_p]
    return lib


def _codebook_case(rng, base, w_rows, bits=None):
    """base params + a random codebook of the int8 weights [out_c, depth]."""
    out_c, depth = w_rows.shape
    bits = bits or int(rng.integers(2, 7))
    divisors = [d for d in range(1, out_c + 1) if out_c % d == 0]
    palette_oc = int(rng.choice(divisors))
    code = cb.cluster_weights(w_rows, np.ones(out_c, np.float32), bits, palette_oc=palette_oc, seed=1)
    tile = int(rng.integers(1, out_c + 1))
    return code, dict(bits=bits, palette_oc=palette_oc, tile_oc=tile)


def make_case(kind, seed, bits=None, **case_args):
    rng = np.random.default_rng(seed)
    if kind == "conv":
        p, x, w, bias, mult, shift = conv_case(seed)
        rows, cls = w.reshape(p.out_c, -1), Conv2dCbParams
    elif kind == "pointwise":
        p, x, w, bias, mult, shift = conv_case(seed, k=(1, 1), stride=(1, 1), dil=(1, 1), pads=(0, 0, 0, 0),
                                               groups=1, in_c=int(rng.integers(4, 40)), out_c=int(rng.integers(1, 20)))
        rows, cls = w.reshape(p.out_c, -1), Conv2dCbParams
    elif kind == "dw":
        p, x, w, bias, mult, shift = dw_case(seed, **case_args)
        rows, cls = w.reshape(-1, p.out_c).T, DwConv2dCbParams
    else:
        p, x, w, bias, mult, shift = fc_case(seed)
        rows, cls = w, FcCbParams
    code, extra = _codebook_case(rng, p, np.ascontiguousarray(rows), bits)
    if kind == "fc" and rng.random() < 0.3:  # per-tensor requantization
        extra["per_channel"] = 0
        mult, shift = mult[:1], shift[:1]
    if cls is Conv2dCbParams:
        extra["band_h"] = int(rng.integers(1, p.out_h + 1))
    cp = cls(**{**asdict(p), **extra})
    return cp, x, code, bias, mult, shift


def run_c(lib, p, x, code, bias, mult, shift, scratch_bytes=None):
    name, golden = KERNELS[type(p)]
    out_shape = (p.rows, p.out_features) if isinstance(p, FcCbParams) else (p.out_h, p.out_w, p.out_c)
    out = np.full(out_shape, 77, np.int8)
    n = lib[name + "_scratch_size"](ctypes.byref(STRUCTS[type(p)](**asdict(p))))
    scratch = np.zeros(max(scratch_bytes or n, 1) + 16, np.int8)
    scratch[n:] = 0x5A  # guard: the kernel writes only its declared scratch
    idx = np.ascontiguousarray(code.indices)
    pal = np.ascontiguousarray(code.palette)
    b = np.ascontiguousarray(bias) if bias is not None else None
    status = getattr(lib, name)(ctypes.byref(STRUCTS[type(p)](**asdict(p))), ptr(np.ascontiguousarray(x)), ptr(idx),
                                ptr(pal), ptr(b) if b is not None else None, ptr(mult), ptr(shift), ptr(scratch),
                                ptr(out))
    assert np.all(scratch[n:] == 0x5A), "wrote past its scratch"
    return status, out, n


@pytest.mark.parametrize("kind", ["conv", "pointwise", "dw", "fc"])
def test_kernel_equals_golden(lib, kind):
    for seed in range(40):
        p, x, code, bias, mult, shift = make_case(kind, 1000 * len(kind) + seed)
        name, golden = KERNELS[type(p)]
        status, out, n = run_c(lib, p, x, code, bias, mult, shift)
        assert status == TC_OK, (name, p)
        assert n == lookup(name).scratch_bytes(p), (name, p)
        expected = golden(p, x, code.indices, code.palette, bias, mult, shift)
        np.testing.assert_array_equal(out.reshape(expected.shape), expected, err_msg=f"{name} seed {seed} {p}")


@pytest.mark.parametrize("bits", [2, 4])
def test_whole_word_rows_decoded_per_palette_equal_golden(lib, bits):
    """Pointwise rows of whole index words (in_c 16, 32, 48, 64: a multiple of 16 at 2 bits, of 8
    at 4), which tc_cb_decode_rows decodes as one stream per palette, with tiles that start and
    end inside a palette group (tile_oc not a multiple of palette_oc) and several bands."""
    for seed in range(12):
        rng = np.random.default_rng(7100 + seed)
        in_c = int(rng.choice([16, 32, 48, 64]))
        p, x, w, bias, mult, shift = conv_case(7100 + seed, k=(1, 1), stride=(1, 1), dil=(1, 1), pads=(0, 0, 0, 0),
                                               groups=1, in_c=in_c, out_c=12, in_hw=(3, 5))
        extra = dict(bits=bits, palette_oc=int(rng.choice([2, 3, 4, 6])), tile_oc=int(rng.choice([4, 5, 7])), band_h=1)
        code = cb.cluster_weights(w.reshape(p.out_c, -1), np.ones(p.out_c, np.float32), bits,
                                  palette_oc=extra["palette_oc"], seed=1)
        cp = Conv2dCbParams(**{**asdict(p), **extra})
        expected = conv2d_cb_s8(cp, x, code.indices, code.palette, bias, mult, shift)
        status, out, _ = run_c(lib, cp, x, code, bias, mult, shift)
        assert status == TC_OK, cp
        np.testing.assert_array_equal(out.reshape(expected.shape), expected, err_msg=f"seed {seed} {cp}")


def test_dw_inplace_equals_golden(lib):
    """tc_dwconv2d_cb_s8_inplace with out == in: the output in the buffer's first bytes."""
    checked = 0
    for seed in range(60):
        p, x, code, bias, mult, shift = make_case("dw", 500 + seed, depth_mult=1)
        if p.out_h * p.out_w > p.in_h * p.in_w:
            continue
        n = lib.tc_dwconv2d_cb_s8_inplace_scratch_size(ctypes.byref(STRUCTS[type(p)](**asdict(p))))
        assert n == lookup("tc_dwconv2d_cb_s8_inplace").scratch_bytes(p)
        scratch = np.zeros(n, np.int8)
        buf = np.ascontiguousarray(x.reshape(-1)).copy()
        status = lib.tc_dwconv2d_cb_s8_inplace(ctypes.byref(STRUCTS[type(p)](**asdict(p))), ptr(buf),
                                               ptr(code.indices), ptr(code.palette),
                                               ptr(bias) if bias is not None else None, ptr(mult), ptr(shift),
                                               ptr(scratch), ptr(buf))
        assert status == TC_OK
        expected = dwconv2d_cb_s8(p, x, code.indices, code.palette, bias, mult, shift).reshape(-1)
        np.testing.assert_array_equal(buf[:expected.size], expected, err_msg=f"seed {seed} {p}")
        checked += 1
    assert checked >= 20


def test_golden_is_the_int8_kernel_on_decoded_weights():
    """The mirror's definition: tc_conv2d_s8 on CodebookWeights.decode() (requantization unchanged)."""
    from tinycc.ops.conv import Conv2dParams, conv2d_s8

    p, x, code, bias, mult, shift = make_case("conv", 5)
    base = Conv2dParams(**{f.name: getattr(p, f.name) for f in fields(Conv2dParams)})
    w = code.decode().reshape(p.out_c, p.k_h, p.k_w, p.in_c // p.groups)
    np.testing.assert_array_equal(conv2d_cb_s8(p, x, code.indices, code.palette, bias, mult, shift),
                                  conv2d_s8(base, x, w, bias, mult, shift))


@pytest.mark.parametrize("field,value", [("bits", 1), ("bits", 7), ("palette_oc", 0), ("tile_oc", 0),
                                         ("tile_oc", 10_000), ("band_h", 0), ("band_h", 10_000)])
@pytest.mark.parametrize("kind", ["conv", "dw", "fc"])
def test_bad_codebook_fields_are_arg_errors(lib, kind, field, value):
    p, x, code, bias, mult, shift = make_case(kind, 3, bits=4)
    if not hasattr(p, field):
        pytest.skip(f"{type(p).__name__} has no {field}")
    bad = type(p)(**{**asdict(p), field: value})
    status, out, _ = run_c(lib, bad, x, code, bias, mult, shift, scratch_bytes=4096)
    assert status == TC_ARG_ERROR
    assert np.all(out == 77), "wrote output on an argument error"


@pytest.mark.parametrize("field,value", [("in_h", 0), ("k_w", 0), ("stride_h", 0), ("dil_w", 0), ("pad_top", -1),
                                         ("depth_mult", 0), ("out_c", 7)])
def test_bad_depthwise_geometry_is_an_arg_error(lib, field, value):
    """tc_dwconv2d_cb_s8 checks its window with tc_conv2d_s8's checks (tc_conv2d_args_ok)."""
    p, x, code, bias, mult, shift = make_case("dw", 3, bits=4)
    bad = type(p)(**{**asdict(p), field: value})
    status, out, _ = run_c(lib, bad, x, code, bias, mult, shift, scratch_bytes=4096)
    assert status == TC_ARG_ERROR
    assert np.all(out == 77), "wrote output on an argument error"

def test_sanitizer_build(tmp_path):
    """ASan/UBSan: every kernel on shapes with odd depths and tails, scratch exactly its size."""
    require_sanitizers()
    cases = []
    for kind, seed in (("conv", 11), ("pointwise", 12), ("dw", 13), ("fc", 14), ("conv", 15), ("dw", 16)):
        p, x, code, bias, mult, shift = make_case(kind, seed)
        cases.append((p, x, code, bias, mult, shift))
    cases.append(_dw_quad_case(9101))  # the DSP 3x3 4-channel path's ring at the image borders
    # 5-bit indices, 8 per row (5 bytes): the second group's word would end a byte past the row
    p, x, w, bias, mult, shift = fc_case(61, rows=1, in_features=8)
    code, extra = _codebook_case(np.random.default_rng(61), p, w, 5)
    cases.append((FcCbParams(**{**asdict(p), **extra}), x, code, bias, mult, shift))
    lines = ['#include "tc_codebook.h"', "#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>",
             "int main(void) {", "    int bad = 0;"]

    def arr(ctype, name, a):
        vals = ", ".join(str(int(v)) for v in np.asarray(a).reshape(-1)) or "0"
        return f"    static const {ctype} {name}[] = {{{vals}}};"

    for k, (p, x, code, bias, mult, shift) in enumerate(cases):
        name, golden = KERNELS[type(p)]
        expected = golden(p, x, code.indices, code.palette, bias, mult, shift).reshape(-1)
        fields_c = ", ".join(str(v) for v in asdict(p).values())
        lines += [f"    {{ static const {type(p).C_STRUCT} p = {{{fields_c}}};",
                  arr("int8_t", "x", x), arr("uint8_t", "idx", code.indices), arr("int8_t", "pal", code.palette),
                  arr("int32_t", "bias", bias if bias is not None else [0]), "      (void)bias;", arr("int32_t", "mult", mult),
                  arr("int32_t", "shift", shift), arr("int8_t", "want", expected),
                  f"      int8_t *scratch = malloc((size_t){name}_scratch_size(&p));",
                  f"      int8_t *out = malloc({expected.size});",
                  f"      if ({name}(&p, x, idx, pal, {'bias' if bias is not None else 'NULL'}, mult, shift, scratch, out) "
                  f"!= TC_OK || memcmp(out, want, {expected.size}) != 0) {{ printf(\"case {k} differs\\n\"); bad = 1; }}",
                  "      free(scratch); free(out); }"]
    lines += ["    return bad;", "}"]
    src = tmp_path / "main.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "cb_san"
    sources = [str(RUNTIME / f) for f in kernel_sources(*(n for n, _ in KERNELS.values()))]
    for defines in ([], ["-DTC_EMULATE_DSP"]):
        subprocess.run([c_compiler(), "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-g",
                        "-fsanitize=address,undefined", "-fno-sanitize-recover=all", *defines, f"-I{RUNTIME}",
                        "-o", str(exe), str(src), *sources], check=True, capture_output=True, text=True)
        r = subprocess.run([str(exe)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def _run_overlapped(lib, p, x, code, bias, mult, shift, out_minus_in):
    """The kernel with its output `out_minus_in` bytes after its input in one buffer."""
    name, _ = KERNELS[type(p)]
    x = np.ascontiguousarray(x).reshape(-1)
    out_size = p.out_h * p.out_w * p.out_c
    in_off, out_off = max(0, -out_minus_in), max(0, out_minus_in)
    buf = np.zeros(max(in_off + x.size, out_off + out_size), np.int8)
    buf[in_off:in_off + x.size] = x
    scratch = np.zeros(max(1, lib[name + "_scratch_size"](ctypes.byref(STRUCTS[type(p)](**asdict(p))))), np.int8)
    base = buf.ctypes.data
    status = getattr(lib, name)(ctypes.byref(STRUCTS[type(p)](**asdict(p))), ctypes.c_void_p(base + in_off),
                                ptr(code.indices), ptr(code.palette), ptr(bias) if bias is not None else None,
                                ptr(mult), ptr(shift), ptr(scratch), ctypes.c_void_p(base + out_off))
    assert status == TC_OK
    return buf[out_off:out_off + out_size]


@pytest.mark.parametrize("kind", ["conv", "dw"])
def test_output_may_overlap_the_input_as_licensed(lib, kind):
    """The overlap the lowering grants the planner (codebook_band_overlap_delta for conv tiles and
    bands, the int8 depthwise licence for depthwise) is safe: with the output that close to the
    input the results are unchanged."""
    from tinycc.ops.conv import codebook_band_overlap_delta, dwconv2d_overlap_licence

    checked = 0
    for seed in range(60):
        p, x, code, bias, mult, shift = make_case(kind, 7000 + seed, **({"depth_mult": 1} if kind == "dw" else {}))
        if kind == "conv":
            delta = codebook_band_overlap_delta(p)
        else:
            licence = dwconv2d_overlap_licence(p)
            if not licence:
                continue
            delta = -(-licence["overlap_delta"] // p.in_c) * p.in_c  # the nearest allowed start
        if delta >= p.in_h * p.in_w * p.in_c:
            continue  # no overlap at all
        golden = KERNELS[type(p)][1](p, x, code.indices, code.palette, bias, mult, shift).reshape(-1)
        np.testing.assert_array_equal(_run_overlapped(lib, p, x, code, bias, mult, shift, delta), golden,
                                      err_msg=f"seed {seed} delta {delta} {p}")
        checked += 1
    assert checked >= 20


def _dw_quad_case(seed):
    """A depthwise case the DSP 4-channel 3x3 path takes (tc_dwconv2d_cb_s8_dsp.c): 3x3, dilation
    1, depth_mult 1, in_c a multiple of 4, rows up to its 50-pixel ring (and a few past it)."""
    rng = np.random.default_rng(seed)
    stride = tuple(int(s) for s in rng.integers(1, 3, size=2))
    pads = tuple(int(v) for v in rng.integers(0, 2, size=4))
    in_hw = (int(rng.integers(1, 14)), int(rng.choice([3, 5, 8, 24, 47, 48, 49, 50])))
    return make_case("dw", seed, in_c=int(rng.choice([4, 8, 12])), depth_mult=1, k=(3, 3), dil=(1, 1),
                     stride=stride, pads=pads, in_hw=in_hw)


def test_dw_3x3_quad_path_equals_golden(lib):
    """The 3x3 4-channel path on codebook taps (DSP builds; the portable path otherwise), out of
    place (also with the output as close to the input as the licence allows) and in place
    (out == in), every bit width, clamps and both shift regimes."""
    from tinycc.ops.conv import dwconv2d_overlap_licence

    inplace_checked = 0
    for seed in range(48):
        p, x, code, bias, mult, shift = _dw_quad_case(9100 + seed)
        expected = dwconv2d_cb_s8(p, x, code.indices, code.palette, bias, mult, shift)
        status, out, _ = run_c(lib, p, x, code, bias, mult, shift)
        assert status == TC_OK, p
        np.testing.assert_array_equal(out.reshape(expected.shape), expected, err_msg=f"seed {seed} {p}")
        delta = -(-dwconv2d_overlap_licence(p)["overlap_delta"] // p.in_c) * p.in_c  # nearest licensed start
        if delta < p.in_h * p.in_w * p.in_c:
            np.testing.assert_array_equal(_run_overlapped(lib, p, x, code, bias, mult, shift, delta),
                                          expected.reshape(-1), err_msg=f"overlap {delta}, seed {seed} {p}")
        if p.out_h * p.out_w > p.in_h * p.in_w:
            continue
        n = lib.tc_dwconv2d_cb_s8_inplace_scratch_size(ctypes.byref(STRUCTS[type(p)](**asdict(p))))
        buf = np.ascontiguousarray(x.reshape(-1)).copy()
        status = lib.tc_dwconv2d_cb_s8_inplace(ctypes.byref(STRUCTS[type(p)](**asdict(p))), ptr(buf),
                                               ptr(code.indices), ptr(code.palette),
                                               ptr(bias) if bias is not None else None, ptr(mult), ptr(shift),
                                               ptr(np.zeros(n, np.int8)), ptr(buf))
        assert status == TC_OK
        np.testing.assert_array_equal(buf[:expected.size], expected.reshape(-1), err_msg=f"in place, seed {seed} {p}")
        inplace_checked += 1
    assert inplace_checked >= 15


def test_whole_tile_conv_takes_the_int8_kernels_licence(lib):
    """tile_oc == out_c runs tc_conv2d_s8, whose DSP path for windows deeper than CONV2D_CHUNK
    writes the next row's first pixel while the row's last window is still read: the licence
    must keep that pixel off the input too (pixel pairs across a row end: out_w odd)."""
    from tinycc.ops.conv import codebook_band_overlap_delta, row_overlap_delta

    checked = 0
    for seed in range(12):
        base, x, w, bias, mult, shift = conv_case(8800 + seed, in_c=20, out_c=4 + 2 * (seed % 3), groups=1,
                                                  k=(3, 3), stride=(1, 1), dil=(1, 1), pads=(1, 1, 1, 1),
                                                  in_hw=(5, 5))
        code, extra = _codebook_case(np.random.default_rng(seed), base, w.reshape(base.out_c, -1))
        p = Conv2dCbParams(**{**asdict(base), **extra, "tile_oc": base.out_c, "band_h": 1})
        delta = codebook_band_overlap_delta(p)
        assert delta <= row_overlap_delta(p.in_h, p.in_w, p.in_c, p.out_h, p.out_w, p.out_c, p.stride_h,
                                          p.pad_top, lookahead_pixels=1)
        golden = conv2d_cb_s8(p, x, code.indices, code.palette, bias, mult, shift).reshape(-1)
        np.testing.assert_array_equal(_run_overlapped(lib, p, x, code, bias, mult, shift, delta), golden,
                                      err_msg=f"seed {seed} delta {delta} {p}")
        checked += 1
    assert checked == 12


@pytest.mark.parametrize("bits", [3, 5, 6])
def test_fc_single_row_odd_widths_equal_golden(lib, bits):
    """One input row at 3, 5 and 6 bits: tc_fc_cb_s8_dsp.c reads each group's 4 indices as one
    word (byte by byte at the row's end); depths around the word reads and the tails."""
    for seed, in_f in enumerate([4, 5, 7, 8, 9, 11, 12, 13, 16, 31, 64, 100, 255]):
        p, x, w, bias, mult, shift = fc_case(4200 + 17 * bits + seed, rows=1, in_features=in_f)
        code, extra = _codebook_case(np.random.default_rng(seed), p, w, bits)
        cp = FcCbParams(**{**asdict(p), **extra})
        status, out, _ = run_c(lib, cp, x, code, bias, mult, shift)
        assert status == TC_OK
        expected = KERNELS[FcCbParams][1](cp, x, code.indices, code.palette, bias, mult, shift)
        np.testing.assert_array_equal(out.reshape(expected.shape), expected, err_msg=f"{in_f} {cp}")


def _gathered_case(seed):
    """A tiled conv of the DSP gathered path (tc_conv2d_cb_s8_dsp.c, groups 1): short window rows
    (KWS's 10x4 first layer on one channel), column dilation, rows of whole groups (widened
    straight from the input inside the image), windows deeper than its CB_CHUNK = 144 values
    (chunks), odd tiles (the 1x2 loop), depths that are not whole groups of 4 (tails) and blocks
    of more than CB_OC_BLOCK = 32 channels."""
    rng = np.random.default_rng(seed)
    shapes = [dict(k=(10, 4), in_c=1, dil=(1, 1)), dict(k=(3, 3), in_c=5, dil=(1, 1)),
              dict(k=(3, 3), in_c=17, dil=(1, 2)), dict(k=(2, 5), in_c=3, dil=(2, 1)),
              dict(k=(1, 1), in_c=7, dil=(1, 1)), dict(k=(5, 3), in_c=11, dil=(1, 3)),
              dict(k=(3, 3), in_c=20, dil=(2, 1)), dict(k=(1, 1), in_c=24, dil=(1, 1))]
    shape = shapes[seed % len(shapes)]
    out_c = int(rng.choice([1, 3, 8, 13, 35]))
    p, x, w, bias, mult, shift = conv_case(seed, in_c=shape["in_c"], out_c=out_c, groups=1, k=shape["k"],
                                           dil=shape["dil"], in_hw=tuple(int(v) for v in rng.integers(4, 12, 2)))
    code, extra = _codebook_case(rng, p, w.reshape(p.out_c, -1))
    extra["tile_oc"] = int(rng.integers(1, out_c + 1))
    extra["band_h"] = int(rng.integers(1, p.out_h + 1))
    return Conv2dCbParams(**{**asdict(p), **extra}), x, code, bias, mult, shift


def test_conv_tile_gathered_path_equals_golden(lib):
    """Tiles of every window shape of the DSP gathered path (portable on the other build) == golden, also with the output as close to the input as the band licence
    allows."""
    from tinycc.ops.conv import codebook_band_overlap_delta

    deep = 0
    for seed in range(40):
        p, x, code, bias, mult, shift = _gathered_case(5300 + seed)
        deep += p.depth > 144
        expected = conv2d_cb_s8(p, x, code.indices, code.palette, bias, mult, shift)
        status, out, _ = run_c(lib, p, x, code, bias, mult, shift)
        assert status == TC_OK, p
        np.testing.assert_array_equal(out.reshape(expected.shape), expected, err_msg=f"seed {seed} {p}")
        delta = codebook_band_overlap_delta(p)
        if delta < p.in_h * p.in_w * p.in_c:
            np.testing.assert_array_equal(_run_overlapped(lib, p, x, code, bias, mult, shift, delta),
                                          expected.reshape(-1), err_msg=f"overlap {delta}, seed {seed} {p}")
    assert deep >= 3


def test_slack_tilings_stay_within_the_slack():
    """widen_codebook_tiles' candidates: every row at once only when it fits the slack; else one
    band with even tiles, widest first, never more decoded bytes than the slack holds, never
    narrower than the lowering's tile."""
    from tinycc.ops.conv import slack_tilings

    base = Conv2dCbParams(in_h=8, in_w=8, in_c=64, out_h=8, out_w=8, out_c=64, k_h=3, k_w=3, stride_h=1,
                          stride_w=1, dil_h=1, dil_w=1, pad_top=1, pad_left=1, groups=1, in_zp=0, out_zp=0,
                          act_min=-128, act_max=127, bits=4, palette_oc=1, tile_oc=1, band_h=1)
    assert slack_tilings(base, 63 * 576) == [(64, 1)]
    tilings = slack_tilings(base, 37 * 576 + 100)
    assert tilings == [(38, 8), (18, 8), (8, 8)]
    assert all((t - base.tile_oc) * base.depth <= 37 * 576 + 100 for t, _ in tilings)
    assert slack_tilings(base, 0) == [(1, 8)]  # no room for rows: one band still decodes each once
    assert slack_tilings(replace(base, band_h=8), 0) == []
    assert slack_tilings(replace(base, tile_oc=20, band_h=8), 10 * 576) == [(30, 8)]


@pytest.mark.parametrize("bits", [2, 4])
def test_fc_word_read_widths_equal_golden(lib, bits):
    """2- and 4-bit rows multiplied without decoding (tc_fc_cb_s8_dsp.c): index words of 16 and
    8 values, then whole groups of 4, then the tail; depths around every boundary, one and
    several input rows, palettes per row and shared."""
    for seed, in_f in enumerate([4, 7, 8, 9, 12, 15, 16, 17, 20, 24, 28, 31, 33, 64, 100, 255, 640]):
        p, x, w, bias, mult, shift = fc_case(4700 + 31 * bits + seed, rows=1 + seed % 3, in_features=in_f)
        code, extra = _codebook_case(np.random.default_rng(seed), p, w, bits)
        cp = FcCbParams(**{**asdict(p), **extra})
        status, out, _ = run_c(lib, cp, x, code, bias, mult, shift)
        assert status == TC_OK
        expected = KERNELS[FcCbParams][1](cp, x, code.indices, code.palette, bias, mult, shift)
        np.testing.assert_array_equal(out.reshape(expected.shape), expected, err_msg=f"{in_f} {cp}")


@pytest.mark.parametrize("field,value", [("in_h", 0), ("out_c", 0), ("k_w", 0), ("stride_h", 0), ("dil_w", 0),
                                         ("pad_top", -1), ("groups", 0), ("groups", 5)])
def test_bad_conv_geometry_is_an_arg_error(lib, field, value):
    """tc_conv2d_cb_s8 checks the fields it shares with tc_conv2d_s8 with tc_conv2d_s8's own check
    (tc_conv.h tc_conv2d_args_ok) before it decodes anything."""
    p, x, code, bias, mult, shift = make_case("conv", 3, bits=4)
    bad = replace(p, **{field: value})
    out = np.full(p.out_h * p.out_w * p.out_c, 77, np.int8)
    scratch = np.zeros(1 << 16, np.int8)  # the bad params' size is not asked: it may divide by 0
    status = lib.tc_conv2d_cb_s8(ctypes.byref(STRUCTS[Conv2dCbParams](**asdict(bad))), ptr(np.ascontiguousarray(x)),
                                 ptr(code.indices), ptr(code.palette), ptr(bias) if bias is not None else None,
                                 ptr(mult), ptr(shift), ptr(scratch), ptr(out))
    assert status == TC_ARG_ERROR
    assert np.all(out == 77), "wrote output on an argument error"


def test_band_tilings_trade_tile_for_taller_bands_within_the_tile_bytes():
    """A pointwise layer at the SRAM peak (MLPerf KWS: 64x64 on 25x5, tile 16, band 1): taller
    bands with narrower tiles, each giving up no more overlap than its tile saves, cheaper by the
    estimate; none for a layer whose rows are wide (IC's 16x144 on 32x32: a band row costs more
    than any tile saves)."""
    from tinycc.ops.conv import band_tilings, codebook_band_overlap_delta, tiling_cost

    kws = Conv2dCbParams(in_h=25, in_w=5, in_c=64, out_h=25, out_w=5, out_c=64, k_h=1, k_w=1, stride_h=1,
                         stride_w=1, dil_h=1, dil_w=1, pad_top=0, pad_left=0, groups=1, in_zp=0, out_zp=0,
                         act_min=-128, act_max=127, bits=4, palette_oc=8, tile_oc=16, band_h=1)
    tilings = band_tilings(kws)
    assert tilings and tilings[0] == (10, 2)
    for tile, band in tilings:
        q = replace(kws, tile_oc=tile, band_h=band)
        assert band > kws.band_h and (tile % 2 == 0 or tile == 1)
        assert codebook_band_overlap_delta(kws) - codebook_band_overlap_delta(q) <= (kws.tile_oc - tile) * kws.depth
        assert tiling_cost(kws, tile, band) < tiling_cost(kws, kws.tile_oc, kws.band_h)
    ic = replace(kws, in_h=32, in_w=32, in_c=16, out_h=32, out_w=32, out_c=16, k_h=3, k_w=3, pad_top=1,
                 pad_left=1, tile_oc=6)
    assert band_tilings(ic) == []


@pytest.mark.parametrize("bits", [2, 4])
def test_fc_table_path_equals_golden(lib, bits):
    """Palettes serving >= TC_FC_CB_TABLE_MIN_WEIGHTS weights (tc_fc_cb_s8_table: a 256-word
    decode table per palette in the scratch, blocks of 4 rows then single rows): in_features
    around the 8- and 4-value steps and the tail, palette groups of 4k rows and of odd sizes,
    one and several input rows, per-channel and per-tensor requantization, by tc_dsp_rq (shifts in
    [-23, -2], no clamp: fc_cb_rq_applies) and by the general requantization."""
    by_rq = []
    for seed, (out_f, palette_oc, in_f) in enumerate([(8, 8, 512), (8, 8, 513), (8, 8, 518), (8, 8, 524),
                                                      (12, 6, 700), (10, 5, 821), (16, 16, 256), (9, 9, 460),
                                                      (7, 7, 600), (4, 4, 1027)]):
        fast_rq = dict(act="full", regime="normal") if seed % 2 == 0 else {}  # fc_cb_rq_applies
        p, x, w, bias, mult, shift = fc_case(5100 + 37 * bits + seed, rows=1 + seed % 3, in_features=in_f,
                                             out_features=out_f, **fast_rq)
        code = cb.cluster_weights(w, np.ones(out_f, np.float32), bits, palette_oc=palette_oc, seed=1)
        extra = dict(bits=bits, palette_oc=palette_oc, tile_oc=1 + seed % out_f)
        if seed % 4 == 3:
            extra["per_channel"] = 0
            mult, shift = mult[:1], shift[:1]
        cp = FcCbParams(**{**asdict(p), **extra})
        assert fc_cb_uses_table(cp), cp
        status, out, n = run_c(lib, cp, x, code, bias, mult, shift)
        assert status == TC_OK
        assert n == lookup("tc_fc_cb_s8").scratch_bytes(cp) >= 1024
        expected = KERNELS[FcCbParams][1](cp, x, code.indices, code.palette, bias, mult, shift)
        np.testing.assert_array_equal(out.reshape(expected.shape), expected, err_msg=f"{in_f} {cp}")
        by_rq.append(cp.act_min == -128 and cp.act_max == 127 and bool(((shift >= -23) & (shift <= -2)).all()))
    assert any(by_rq) and not all(by_rq), by_rq


@pytest.fixture(scope="module")
def tiled_conv_model(tmp_path_factory):
    """An ONNX float model of three convs the planner tiles (tile_oc < out_c) on 7x9 pixels (an
    odd last pixel): 3x3 8 -> 44 (depth 72: an even number of 4-value groups, one chunk), 3x3
    44 -> 20 (depth 396: chunks of 144, 144 and 108 values, the last of 27 groups), 1x1 20 -> 60
    (depth 20: 5 groups), then an int8 1x1 conv."""
    torch = pytest.importorskip("torch")
    import warnings

    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Conv2d(8, 44, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(44, 20, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(20, 60, 1), torch.nn.ReLU(), torch.nn.Conv2d(60, 8, 1)).eval()
    path = tmp_path_factory.mktemp("cb_conv") / "conv.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.randn(1, 8, 7, 9),), str(path), input_names=["x"], output_names=["y"],
                          opset_version=17, dynamo=False)
    calib = path.parent / "calib.npz"
    np.savez(calib, x=np.random.default_rng(0).normal(0, 1, (8, 1, 8, 7, 9)).astype(np.float32))
    return path, calib


def test_tiled_conv_assembly_on_cortex_m4_equals_golden(tiled_conv_model):
    """The Thumb-2 2x2 loops of tc_conv2d_cb_s8_dsp.c (two steps per test over even groups, one
    step where the groups are odd, an odd last group of a chunk after the assembly) on the M4
    under QEMU: the golden model's outputs (4-bit; the loops do not depend on the width)."""
    from tinycc.compiler import QuantOptions
    from tinycc.engines import CompiledModel
    from tinycc.frontend import load_graph
    from tinycc.passes import run_pipeline
    from tinycc.sim.qemu import missing_tools

    if missing_tools(run=True) is not None:
        pytest.skip(f"Cortex-M toolchain or QEMU unavailable: {missing_tools(run=True)}")
    path, calib = tiled_conv_model
    g = run_pipeline(load_graph(path, {"x": (1, 8, 7, 9)}))
    model = CompiledModel(g, QuantOptions(calib=str(calib), quant="codebook", codebook_bits="4"), warn=lambda m: None)
    tiled = [(s.params.depth, s.params.tile_oc < s.params.out_c) for s in model.program.steps
             if s.kernel == "tc_conv2d_cb_s8"]
    assert tiled == [(72, True), (396, True), (20, True)]
    x = {model.graph.inputs[0]: np.random.default_rng(5).normal(0, 1, (1, 8, 7, 9)).astype(np.float32)}
    golden = model.run_int8(x)
    outputs, _ = model.run_qemu(x, "cortex-m4")
    for out in golden:
        np.testing.assert_array_equal(outputs[out], golden[out])


# Cortex-M4 instructions per MAC of MLPerf KWS's codebook convs at 4 bits (QEMU counts are
# deterministic), about 1 % over the figures measured with the requantization of tc_conv2d_s8's
# pair outputs and the per-palette row decode (benchmarks/bench_codebook.py --qemu --layers:
# conv 2.54, pointwise 2.58; int8 1.64 and 1.26).
KWS_CB4_BUDGETS = {"conv": 2.57, "pointwise": 2.61}


def test_kws_codebook_convs_on_cortex_m4_stay_within_budget(mlperf_dir):
    from tinycc.compiler import QuantOptions
    from tinycc.engines import CompiledModel
    from tinycc.frontend import load_graph
    from tinycc.passes import run_pipeline
    from tinycc.sim.qemu import missing_tools
    from tinycc.target.measure import layer_class

    if missing_tools(run=True) is not None:
        pytest.skip(f"Cortex-M toolchain or QEMU unavailable: {missing_tools(run=True)}")
    g = run_pipeline(load_graph(mlperf_dir / "kws_dscnn_qdq.onnx"))
    model = CompiledModel(g, QuantOptions(quant="codebook", codebook_bits="4"), warn=lambda m: None)
    x = {g.inputs[0]: np.load(mlperf_dir / "samples.npz")["kws_dscnn_int8"][:1]}
    golden = model.run_int8(x)
    outputs, run = model.run_qemu(x, "cortex-m4")
    for out in golden:
        np.testing.assert_array_equal(outputs[out], golden[out])
    totals = {}
    for step, count in zip(model.program.steps, run.step_instructions):
        if step.kernel == "tc_conv2d_cb_s8":
            t = totals.setdefault(layer_class(step), [0, 0])
            t[0] += count
            t[1] += step.macs
    per_mac = {cls: round(n / macs, 3) for cls, (n, macs) in totals.items()}
    assert set(per_mac) == set(KWS_CB4_BUDGETS), per_mac
    over = {cls: v for cls, v in per_mac.items() if v > KWS_CB4_BUDGETS[cls]}
    assert not over, f"codebook conv instructions per MAC over budget: {over} (all: {per_mac})"
