"""Codebook (clustered) weights, --quant codebook (tinycc/quant/codebook.py, tc_*_cb_s8):
the format round-trips, the clustering keeps pre-clustered weights exactly, the generated C
equals the golden model bit for bit (host with ASan/UBSan and per-layer write checks, and QEMU
on the M3 and M4), and the CLI options are checked."""
from __future__ import annotations

import copy
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.errors import BadInput
from tinycc.frontend import load_graph
from tinycc.passes import run_pipeline
from tinycc.quant import codebook as cb
from tinycc.sim.qemu import missing_tools


# ---- format ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("depth", [1, 3, 4, 9, 27, 64])
def test_pack_unpack_round_trip(bits, depth):
    rng = np.random.default_rng(bits * 100 + depth)
    idx = rng.integers(0, 1 << bits, size=(5, depth))
    packed = cb.pack_indices(idx, bits)
    assert packed.dtype == np.uint8 and packed.shape == (5, cb.row_bytes(depth, bits))
    np.testing.assert_array_equal(cb.unpack_indices(packed, depth, bits), idx)


def test_slot_order_is_sxtb16_lane_order():
    """Slots 0..3 of a whole group hold values 0, 2, 1, 3; a tail stays in order (the C decoder
    and the packing share this layout: tc_codebook.h)."""
    assert list(cb.slot_order(11)) == [0, 2, 1, 3, 4, 6, 5, 7, 8, 9, 10]
    # 2-bit: value 2 of the row lands in bits 2..3 of the first byte
    idx = np.zeros((1, 4), np.int64)
    idx[0, 2] = 3
    assert cb.pack_indices(idx, 2)[0, 0] == 0b1100


def test_dp_kmeans_is_optimal_on_a_small_case():
    """Exact 1-D k-means: the DP error equals the best over every contiguous partition."""
    import itertools

    rng = np.random.default_rng(3)
    values = np.sort(rng.choice(np.arange(-60, 60), 9, replace=False)).astype(np.float64)
    weights = rng.uniform(0.5, 3, 9)
    centres = cb.kmeans_dp(values, weights, 3)
    err = lambda c: float(np.sum(weights * np.min((values[:, None] - c[None, :]) ** 2, axis=1)))  # noqa: E731
    best = np.inf
    for a, b in itertools.combinations(range(1, 9), 2):
        parts = np.split(np.arange(9), [a, b])
        c = np.array([np.sum(values[p] * weights[p]) / np.sum(weights[p]) for p in parts])
        best = min(best, err(c))
    assert err(centres) == pytest.approx(best)


def test_clustering_bounds_palette_and_error():
    rng = np.random.default_rng(0)
    q = np.clip(np.round(rng.normal(0, 40, (16, 3, 3, 8))), -127, 127).astype(np.int8)
    scale = rng.uniform(0.01, 0.02, 16).astype(np.float32)
    for bits in (2, 3, 4):
        w = cb.cluster_weights(q, scale, bits)
        assert w.palette.shape == (16 // w.palette_oc, 1 << bits)
        dec = w.decode()
        for g0 in range(0, 16, w.palette_oc):
            assert len(np.unique(dec[g0:g0 + w.palette_oc])) <= 1 << bits
        # a finer palette never does worse
        if bits > 2:
            coarse = cb.cluster_weights(q, scale, bits - 1, palette_oc=w.palette_oc).decode()
            fine_err = np.sum((dec.astype(int) - q.reshape(16, -1)) ** 2)
            assert fine_err <= np.sum((coarse.astype(int) - q.reshape(16, -1)) ** 2)


def test_preclustered_codes_are_kept_exactly():
    """int8 codes (a QDQ export) with <= 2^bits values per group: the palette is those values and
    the decoded weights are the stored ones (nothing re-clustered)."""
    rng = np.random.default_rng(1)
    levels = np.array([-90, -31, -4, 0, 7, 22, 60, 127])
    q = rng.choice(levels, size=(32, 64)).astype(np.int8)
    w = cb.cluster_weights(q, np.full(32, 0.01, np.float32), 3)
    assert w.method == "pre-clustered"
    np.testing.assert_array_equal(w.decode(), q)
    assert set(np.unique(w.palette)) == set(levels)


def test_parse_codebook_bits():
    assert cb.parse_codebook_bits("4,conv1=6, fc=2") == cb.CodebookBits(4, (("conv1", 6), ("fc", 2)))
    assert cb.parse_codebook_bits(None).default == 4
    for bad in ("1", "7", "x", "conv1=4", "4,conv1", "4,conv1=9", ""):
        with pytest.raises(BadInput):
            cb.parse_codebook_bits(bad)


def test_small_layers_stay_int8():
    assert not cb.shrinks_flash(4, 1, 4)  # 4 weights: a 16-entry palette costs more
    assert cb.shrinks_flash(64, 64, 4)


def test_smallest_layers_within_the_share_stay_int8():
    layers = [("a", 100), ("b", 40), ("c", 1000), ("d", 30), ("e", 40)]
    # room 0.05 * 3000 = 150 bytes: d (30), b (40), e (40) fit, a (100) does not
    assert cb.small_layers_kept_int8(layers, 3000) == {"d", "b", "e"}
    assert cb.small_layers_kept_int8(layers, 500) == set()


# ---- calibration-aware clustering -----------------------------------------------------------
def test_tensor_stats_moments():
    from tinycc.quant.calibrate import TensorStats

    rng = np.random.default_rng(0)
    xs = rng.normal(2.0, 3.0, (50, 4, 5))
    stats = TensorStats(rng)
    for x in xs:
        stats.observe(x)
    mean, mean_square = stats.moments()
    np.testing.assert_allclose(mean, xs.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(mean_square, (xs.astype(np.float32).astype(np.float64) ** 2).mean(axis=0), rtol=1e-6)
    stats.observe(np.zeros(3))  # a tensor whose shape varies has no moments
    assert stats.moments() is None


@pytest.mark.parametrize("stride,dilation,pads,group", [(1, 1, (1, 1, 1, 1), 1), (2, 1, (0, 1, 2, 1), 2),
                                                        (1, 2, (2, 0, 1, 2), 6)])
def test_conv_patch_means_are_the_means_of_what_each_weight_reads(stride, dilation, pads, group):
    """_conv_patch_means against a direct loop over output positions (zero padding, stride,
    dilation, grouped and depthwise convolutions, OHWI weights)."""
    rng = np.random.default_rng(stride * 10 + group)
    in_h, in_w, in_c, out_c, k = 7, 6, 6, 12, 3
    plane = rng.normal(size=(in_h, in_w, in_c))
    attrs = {"kernel": (k, k), "strides": (stride, stride), "dilations": (dilation, dilation), "pads": pads}
    pt, pl, pb, pr = pads
    out_h = (in_h + pt + pb - dilation * (k - 1) - 1) // stride + 1
    out_w = (in_w + pl + pr - dilation * (k - 1) - 1) // stride + 1
    in_g = in_c // group
    got = cb._conv_patch_means(plane, attrs, (out_c, k, k, in_g), out_h, out_w)
    patches = cb._patches(plane[None], SimpleNamespace(op="Conv", attrs=attrs), (out_c, k, k, in_g),
                          (1, out_h, out_w, out_c))  # [positions, groups, depth] (GPTQ's covariance)
    want = np.zeros((out_c, k, k, in_g))
    for o in range(out_c):
        first = (o // (out_c // group)) * in_g
        for i in range(k):
            for j in range(k):
                for c in range(in_g):
                    vals = []
                    for y in range(out_h):
                        for x in range(out_w):
                            r, s = y * stride + i * dilation - pt, x * stride + j * dilation - pl
                            inside = 0 <= r < in_h and 0 <= s < in_w
                            vals.append(plane[r, s, first + c] if inside else 0.0)
                    want[o, i, j, c] = np.mean(vals)
                    got_vals = patches[:, o // (out_c // group), (i * k + j) * in_g + c]
                    np.testing.assert_allclose(got_vals, vals, atol=1e-12)
    np.testing.assert_allclose(got, want.reshape(out_c, -1), atol=1e-12)


def _output_error(q, decoded, scale, importance):
    return float(np.sum(scale[:, None] ** 2 * importance * (q - decoded.astype(np.int64)) ** 2))


def test_importance_weighting_lowers_the_output_error():
    """Inputs of very different variance (the large ones with small weights, as after
    training): palettes weighted by it cost much less output error (the error the weighting
    measures) than palettes that count every input the same."""
    rng = np.random.default_rng(4)
    loud = np.arange(32) % 4 == 0
    q = np.clip(np.round(rng.normal(0, np.where(loud, 6, 50), (8, 32))), -127, 127).astype(np.int64)
    scale = np.full(8, 0.01)
    importance = np.broadcast_to(np.where(loud, 100.0, 0.01), (8, 32))
    plain = cb.cluster_weights(q, scale, 3).decode()
    weighted = cb.cluster_weights(q, scale, 3, importance=importance).decode()
    assert _output_error(q, weighted, scale, importance) < 0.5 * _output_error(q, plain, scale, importance)


def _correlated_layer(seed, out_c=16, depth=48, samples=400):
    """int8 rows and the covariance of inputs that vary together (a few latent factors plus
    noise, as neighbouring pixels and channels do), with per-channel scales."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, 4)) @ rng.normal(size=(4, depth)) + 0.3 * rng.normal(size=(samples, depth))
    q = np.clip(np.round(rng.normal(0, 40, (out_c, depth))), -127, 127).astype(np.int64)
    scale = rng.uniform(0.005, 0.02, out_c)
    return q, scale, np.cov(x, rowvar=False, bias=True)


def _covariance_error(q, decoded, scale, cov):
    e = q - decoded.astype(np.int64)
    return float(np.sum(scale ** 2 * np.sum((e @ cov) * e, axis=1)))


@pytest.mark.parametrize("bits", [2, 4])
def test_gptq_assignment_lowers_the_output_error_of_correlated_inputs(bits):
    """With the inputs' covariance, the GPTQ-style assignment (each column's rounding error
    compensated by the later columns) and the refitted palette cost much less output error
    than nearest-entry indices into the diagonally weighted palette; the format is unchanged."""
    q, scale, cov = _correlated_layer(bits)
    diag = np.broadcast_to(np.diag(cov), q.shape)
    plain = cb.cluster_weights(q, scale, bits, importance=diag)
    gptq = cb.cluster_weights(q, scale, bits, importance=diag, covariance=cov[None])
    assert gptq.palette.shape == plain.palette.shape and gptq.indices.shape == plain.indices.shape
    assert np.all(np.diff(gptq.palette.astype(np.int64), axis=1) >= 0)  # sorted, padded with the last value
    assert _covariance_error(q, gptq.decode(), scale, cov) < 0.7 * _covariance_error(q, plain.decode(), scale, cov)


def test_gptq_blocks_use_their_own_covariance():
    """Output channels in different covariance blocks (grouped or depthwise convolutions) are
    each assigned with their block's matrix: one matrix for all of them, or the blocks'
    matrices swapped, cost more error."""
    q1, scale, cov1 = _correlated_layer(5, out_c=8, depth=9)
    q2, _, cov2 = _correlated_layer(6, out_c=8, depth=9)
    cov2 = cov2[::-1, ::-1].copy()  # a different correlation structure
    q = np.concatenate([q1, q2])
    scale = np.concatenate([scale, scale])
    diag = np.concatenate([np.broadcast_to(np.diag(cov1), q1.shape), np.broadcast_to(np.diag(cov2), q2.shape)])

    def error(covariance):
        d = cb.cluster_weights(q, scale, 3, palette_oc=16, importance=diag, covariance=covariance).decode()
        return _covariance_error(q1, d[:8], scale[:8], cov1) + _covariance_error(q2, d[8:], scale[8:], cov2)

    right = error(np.stack([cov1, cov2]))
    assert right < min(error(np.stack([cov2, cov1])), error(cov1[None]), error(cov2[None]))


def test_refit_palette_solves_the_least_squares_problem():
    """For fixed indices the refitted palette minimises the covariance-weighted error: equal to
    a direct least-squares solve over the flattened problem."""
    q, scale, cov = _correlated_layer(7, out_c=6, depth=12)
    rng = np.random.default_rng(8)
    idx = rng.integers(0, 4, q.shape)
    block = np.zeros(len(q), np.int64)
    got = cb.refit_palette(q.astype(np.float64), scale ** 2, np.zeros(4), idx, cov[None], block)
    root = np.linalg.cholesky(cov + 1e-12 * np.eye(len(cov))).T  # cov = root^T root
    a = np.concatenate([scale[o] * root @ (idx[o][:, None] == np.arange(4)) for o in range(len(q))])
    b = np.concatenate([scale[o] * root @ q[o] for o in range(len(q))])
    np.testing.assert_allclose(got, np.linalg.lstsq(a, b, rcond=None)[0], rtol=1e-6, atol=1e-6)


def test_bias_shift_gives_the_clustered_layer_the_int8_mean_output():
    """With the shift added, the clustered layer's mean accumulator over the samples equals the
    int8 layer's to within the rounding of one bias step."""
    rng = np.random.default_rng(5)
    q = np.clip(np.round(rng.normal(0, 40, (6, 40))), -127, 127).astype(np.int64)
    decoded = cb.cluster_weights(q, np.full(6, 0.01), 2).decode().astype(np.int64)
    in_scale = 0.05
    x = rng.normal(1.0, 0.5, (200, 40)) * np.linspace(0.2, 3, 40)  # float inputs, non-zero means
    codes = np.round(x / in_scale)
    int8_mean = (codes @ q.T).mean(axis=0)
    clustered_mean = (codes @ decoded.T).mean(axis=0)
    shift = cb.bias_shift(q, decoded, codes.mean(axis=0) * in_scale, in_scale)
    assert np.max(np.abs(clustered_mean - int8_mean)) > 20  # the clustering does shift the mean
    np.testing.assert_allclose(clustered_mean + shift, int8_mean, atol=0.5 + 1e-9)


# ---- end to end -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compiled_codebook():
    return {}


def _compile(zoo_models, name, bits, tmp_path, cache, quant="codebook"):
    """A zoo model with codebook weights (calibrated as tests/test_int8_zoo.py does)."""
    if (name, bits, quant) not in cache:
        path, inputs = zoo_models[(name, "torchscript")]
        g = run_pipeline(load_graph(path, {k: v.shape for k, v in inputs.items()}))
        rng = np.random.default_rng(0)
        calib = tmp_path / "calib.npz"
        np.savez(calib, **{k: np.stack([(v * rng.uniform(0.5, 1.5) + rng.normal(0, 0.3, v.shape)).astype(np.float32)
                                        for _ in range(4)]) for k, v in inputs.items()})
        opts = QuantOptions(calib=str(calib), quant=quant, codebook_bits=str(bits))
        cache[(name, bits, quant)] = (inputs, CompiledModel(g, opts, warn=pytest.fail))
    return cache[(name, bits, quant)]


def _inputs(inputs, seed):
    rng = np.random.default_rng(seed)
    return {k: (v + rng.normal(0, 0.2, v.shape)).astype(np.float32) for k, v in inputs.items()}


CB_KERNELS = {"tc_conv2d_cb_s8", "tc_dwconv2d_cb_s8", "tc_fc_cb_s8"}


def test_model_layers_get_moments_and_the_smallest_stay_int8(zoo_models):
    """record_codebook_schemes on a calibrated zoo model: every codebook layer carries its
    input's moments in its weights' row layout, the layers left int8 (other than those the
    codebook would not shrink) are the smallest and hold <= INT8_KEEP_SHARE of the weight bytes,
    and a layer named in --codebook-bits is clustered even if small."""
    from tinycc.ops.registry import OPS
    from tinycc.quant.calibrate import collect_stats
    from tinycc.quant.ptq import assign_qparams

    path, inputs = zoo_models[("mbv2", "torchscript")]
    g = run_pipeline(load_graph(path, {k: v.shape for k, v in inputs.items()}))
    stats = collect_stats(g, [_inputs(inputs, seed) for seed in range(3)], progress=False)

    samples = [_inputs(inputs, seed) for seed in range(3)]

    def schemes(bits):
        q = assign_qparams(g, stats, "minmax")
        cb.record_codebook_schemes(q, bits, stats, samples)
        return q, [n for n in q.nodes if OPS[n.op].bias_axis(q, n) is not None]

    q, nodes = schemes(cb.CodebookBits(3))
    size = {n.name: q.tensors[n.inputs[1]].data.size for n in nodes}
    clustered = [n for n in nodes if n.attrs["weight_scheme"] == cb.CODEBOOK]
    kept = [n for n in nodes if n.attrs["weight_scheme"] != cb.CODEBOOK
            and cb.shrinks_flash(len(q.tensors[n.inputs[1]].data), size[n.name] // len(q.tensors[n.inputs[1]].data), 3)]
    assert clustered and kept
    for n in clustered:
        w = q.tensors[n.inputs[1]].data
        moments = n.attrs["codebook_input"]
        depth = w.size // len(w)
        assert moments.mean.shape == (len(w), depth)
        # the covariance blocks' diagonals are the variances the palettes are weighted by
        cov = moments.covariance
        assert cov.shape[1:] == (depth, depth) and len(w) % len(cov) == 0
        block = np.arange(len(w)) // (len(w) // len(cov))
        np.testing.assert_allclose(np.einsum("bii->bi", cov)[block], cb.codebook_importance(moments),
                                   rtol=1e-6, atol=1e-9)
    assert sum(size[n.name] for n in kept) <= cb.INT8_KEEP_SHARE * sum(size.values())
    assert max(size[n.name] for n in kept) <= min(size[n.name] for n in clustered)
    smallest = kept[0]
    _, nodes = schemes(cb.CodebookBits(3, ((smallest.onnx_name or smallest.name, 3),)))
    assert next(n for n in nodes if n.name == smallest.name).attrs["weight_scheme"] == cb.CODEBOOK


@pytest.mark.parametrize("name,bits,quant", [("dscnn", 2, "codebook"), ("mbv2", 3, "codebook"), ("mlp", 4, "codebook"),
                                             ("mbv2", 4, "prom+codebook")])
def test_c_equals_golden_layer_by_layer(zoo_models, name, bits, quant, tmp_path, compiled_codebook):
    inputs, model = _compile(zoo_models, name, bits, tmp_path, compiled_codebook, quant)
    kernels = {s.kernel for s in model.program.steps}
    assert kernels & CB_KERNELS, kernels
    if quant == "prom+codebook":  # pointwise convs ternary, the other layers with weights codebook
        assert any(k.startswith("tc_pw_ternary_s8") for k in kernels), kernels
        assert model.program.quant_scheme.startswith("prom-") and "+codebook4" in model.program.quant_scheme
    x = _inputs(inputs, 7)
    golden = {}
    outs = model.run_int8(x, observe=lambda t, v: golden.__setitem__(t, v))
    from cbuild import require_sanitizers

    require_sanitizers()
    c_outs, trace = model.run_c(x, check=True)  # ASan/UBSan, guard bytes, per-layer write checks
    last_writer = {step.outputs[0]: k for k, step in enumerate(model.program.steps)}
    for t, k in last_writer.items():
        np.testing.assert_array_equal(trace[k], golden[t].reshape(-1), err_msg=f"{name} step {k}")
    for out in outs:
        np.testing.assert_array_equal(c_outs[out], outs[out])


@pytest.mark.skipif(missing_tools(run=True) is not None,
                    reason=f"Cortex-M toolchain or QEMU unavailable: {missing_tools(run=True)}")
def test_mbv2_on_cortex_m4_equals_golden(zoo_models, tmp_path, compiled_codebook):
    """The DSP and assembly paths on the M4 (3x3 depthwise of 4-channel groups through the int8
    pixel-pair assembly; convs decoded whole through tc_conv2d_s8): the golden model's outputs."""
    inputs, model = _compile(zoo_models, "mbv2", 3, tmp_path, compiled_codebook)
    quad = [s for s in model.program.steps if s.kernel == "tc_dwconv2d_cb_s8" and s.params.k_h == s.params.k_w == 3
            and s.params.in_c % 4 == 0]
    assert quad, "no depthwise layer takes the 4-channel 3x3 path"
    x = _inputs(inputs, 11)
    golden = model.run_int8(x)
    outputs, run = model.run_qemu(x, "cortex-m4")
    for out in golden:
        np.testing.assert_array_equal(outputs[out], golden[out])


def test_convs_off_the_peak_are_decoded_whole_without_a_larger_arena(zoo_models, tmp_path, compiled_codebook):
    """widen_codebook_tiles: some convs that lowering tiles (more than CONV_EXTRA_BYTES of rows)
    run decoded whole, and the arena is no larger than with the lowering's tiles (a re-plan with a
    larger arena is dropped)."""
    from dataclasses import replace

    from tinycc.memory.lifetimes import plan_memory
    from tinycc.ops.conv import CONV_EXTRA_BYTES, codebook_band_overlap_delta, codebook_conv_tiling
    from tinycc.program import Arg

    _, model = _compile(zoo_models, "mbv2", 3, tmp_path, compiled_codebook)
    widened = [k for k, s in enumerate(model.program.steps) if s.kernel == "tc_conv2d_cb_s8"
               and s.params.out_c * s.params.depth > CONV_EXTRA_BYTES and s.params.tile_oc == s.params.out_c]
    assert widened
    lowered = copy.copy(model.program)
    lowered.steps = list(model.program.steps)
    for k in widened:  # back to the lowering's tiles
        step = lowered.steps[k]
        tile, band = codebook_conv_tiling(step.params.out_h, step.params.out_w, step.params.out_c, step.params.depth)
        p = replace(step.params, tile_oc=tile, band_h=band)
        lowered.steps[k] = replace(step, params=p, overlap_delta=codebook_band_overlap_delta(p),
                                   args=[Arg("scratch", "", tile * p.depth) if a.kind == "scratch" else a
                                         for a in step.args])
    lowered_mem = plan_memory(lowered)
    assert model.mem.arena_bytes <= lowered_mem.arena_bytes
    # a re-plan whose arena grows is never kept
    from tinycc.ops.conv import widen_codebook_tiles

    larger = type("Plan", (), {"arena_bytes": lowered_mem.arena_bytes + 1})()
    kept, kept_mem = widen_codebook_tiles(lowered, lowered_mem, lambda program: larger)
    assert kept is lowered and kept_mem is lowered_mem


# ---- the digits model (examples/): CLI, report, QEMU, a pre-clustered export ------------------
ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits_cnn.onnx"
DIGITS_CALIB = ROOT / "examples" / "digits_calib.npy"


def tinycc(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "tinycc", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT)


def test_cli_compile_reports_codebook_layers(tmp_path):
    out = tmp_path / "proj"
    r = tinycc("compile", DIGITS, "-o", out, "--calib", DIGITS_CALIB, "--quant", "codebook",
               "--codebook-bits", "2,/classifier/Gemm=4")
    assert r.returncode == 0, r.stderr
    import json

    report = json.loads((out / "report.json").read_text())
    assert report["quant"] == "int8-ptq-minmax+codebook2,/classifier/Gemm=4"
    layers = {layer["name"]: layer for layer in report["layers"]}
    fc = layers["/classifier/Gemm"]["codebook"]
    assert fc["bits"] == 4 and fc["palette_entries"] == 16
    coded = [layer for layer in report["layers"] if "codebook" in layer]
    assert {layer["kernel"] for layer in coded} == {"tc_conv2d_cb_s8", "tc_dwconv2d_cb_s8", "tc_fc_cb_s8"}
    for layer in coded:
        c = layer["codebook"]
        assert c["flash_bytes"] < c["int8_flash_bytes"], layer
        assert c["scratch_bytes"] == layer["scratch_bytes"] > 0
        if layer["name"] != "/classifier/Gemm":
            assert c["bits"] == 2
    # the first conv (9 weights per channel at 2 bits: 3 bytes + palettes) and the rest all shrink
    assert "tc_cb_decode_rows" in (out / "runtime" / "tc_codebook.c").read_text()


def test_cli_bad_codebook_option_exits_2_before_calibrating(tmp_path):
    r = tinycc("compile", DIGITS, "-o", tmp_path / "p", "--calib", DIGITS_CALIB, "--quant", "codebook",
               "--codebook-bits", "4,nosuchlayer=2")
    assert r.returncode == 2, r.stderr
    assert "no layer with weights is named 'nosuchlayer'" in r.stderr and "Traceback" not in r.stderr
    assert "calibrating" not in r.stderr and not (tmp_path / "p").exists()


@pytest.mark.parametrize("quant,bits,message", [
    ("int8", "4", "--codebook-bits applies to --quant codebook"),
    ("codebook", "9", "outside 2 to 6"),
    ("codebook", "conv=2", "give the default bits first"),
    ("ternary", None, "int8 or codebook"),
])
def test_api_bad_codebook_options(quant, bits, message):
    import tinycc

    with pytest.raises(BadInput, match=message):
        tinycc.compile(DIGITS, calib=DIGITS_CALIB, quant=quant, codebook_bits=bits)


@pytest.fixture(scope="module")
def digits_cb3():
    g = run_pipeline(load_graph(DIGITS))
    return CompiledModel(g, QuantOptions(calib=str(DIGITS_CALIB), quant="codebook", codebook_bits="3"),
                         warn=pytest.fail)


_NO_QEMU = missing_tools(run=True)


@pytest.mark.skipif(_NO_QEMU is not None, reason=f"Cortex-M toolchain or QEMU unavailable: {_NO_QEMU}")
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4"])
def test_cortex_m_under_qemu_equals_golden(digits_cb3, core):
    """Portable C on the M3, the DSP paths on the M4: the golden model's outputs."""
    x = {digits_cb3.graph.inputs[0]: np.load(DIGITS_CALIB)[:1]}
    golden = digits_cb3.run_int8(x)
    outputs, run = digits_cb3.run_qemu(x, core)
    for out in golden:
        np.testing.assert_array_equal(outputs[out], golden[out], err_msg=core)
    assert run.instructions > 0


def _dkm_like_export(tmp_path, bits):
    """digits_cnn.onnx with every Conv/Gemm weight snapped to 2^bits float values per tensor (what
    a DKM fine-tuning exports): returns the path and {initializer name: its levels}."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(DIGITS)
    weights = {n.input[1] for n in m.graph.node if n.op_type in ("Conv", "Gemm")}
    levels = {}
    for init in m.graph.initializer:
        if init.name in weights:
            w = numpy_helper.to_array(init).astype(np.float32)
            lv = np.quantile(w, (np.arange(1 << bits) + 0.5) / (1 << bits)).astype(np.float32)
            snapped = lv[np.argmin(np.abs(w[..., None] - lv), axis=-1)]
            init.CopyFrom(numpy_helper.from_array(snapped, init.name))
            levels[init.name] = lv
    path = tmp_path / "digits_dkm.onnx"
    onnx.save(m, path)
    return path, levels


def test_preclustered_model_is_packed_without_reclustering(tmp_path):
    """A float model whose weights take <= 2^bits values per group: every codebook layer keeps
    them (method pre-clustered), and its decoded int8 weights times the scale are the stored
    float weights to within half a quantization step."""
    from tinycc.compiler import quantize_graph
    from tinycc.quant.weights import encode_weights

    path, levels = _dkm_like_export(tmp_path, 2)
    g = run_pipeline(load_graph(path))
    q = quantize_graph(g, QuantOptions(calib=str(DIGITS_CALIB), quant="codebook", codebook_bits="2"))
    coded = [n for n in q.nodes if n.attrs.get("weight_scheme") == "codebook"]
    assert len(coded) >= 5
    for node in coded:
        enc = encode_weights(q, node, float(q.tensors[node.inputs[0]].quant.scale))
        assert enc.codebook.method == "pre-clustered", node.name
        w = q.tensors[node.inputs[1]].data.reshape(len(enc.q), -1).astype(np.float64)
        scale = enc.qp.scale.astype(np.float64)[:, None]
        assert np.all(np.abs(enc.q.reshape(len(w), -1) * scale - w) <= scale / 2 * (1 + 1e-6)), node.name
        for g0 in range(0, len(w), enc.codebook.palette_oc):  # no two stored values merged
            group = slice(g0, g0 + enc.codebook.palette_oc)
            assert len(np.unique(enc.q.reshape(len(w), -1)[group])) == len(np.unique(w[group]))


def test_tinycc_qat_codebook_export_is_kept_bit_for_bit(tmp_path):
    """tinycc.qat's DKM export (int8 codes on <= 2^bits palette values per group of 4 channels):
    every codebook layer keeps the stored codes (no re-clustering), so the codebook build computes
    exactly what the int8 build of the same file computes, and its C equals its golden model."""
    torch = pytest.importorskip("torch")
    from test_qat import tiny_mobilenet

    import tinycc
    from tinycc import qat

    rng = np.random.default_rng(1)
    x = rng.random((16, 1, 6, 6), dtype=np.float32)
    ex = torch.zeros(1, 1, 6, 6)
    q = qat.prepare_codebook(tiny_mobilenet(), ex, bits=3, group_size=4)
    qat.calibrate(q, x)
    path = tmp_path / "dkm.onnx"
    qat.export_qdq(q, ex, path, "image", "logits")
    int8 = tinycc.compile(path)
    coded = tinycc.compile(path, quant="codebook", codebook_bits=3)
    layers = [layer["codebook"] for layer in coded.report["layers"] if "codebook" in layer]
    assert len(layers) >= 5 and all(c["palette_method"] == "pre-clustered" for c in layers), layers
    golden = coded.run(x[:4], engine="int8")["logits"]
    np.testing.assert_array_equal(golden, int8.run(x[:4], engine="int8")["logits"])
    np.testing.assert_array_equal(coded.run(x[:4], engine="c")["logits"], golden)


@pytest.fixture(scope="module")
def fc_table_model(tmp_path_factory):
    """An ONNX Linear(301 -> 42) -> ReLU -> Linear(42 -> 40), float: the first layer's palette
    serves all 42 rows (12,642 weights): the decode-table path, with 16-input steps, 3 groups of
    4 after them, a 1-value tail, 10 blocks of 4 rows and 2 single rows."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(301, 42), torch.nn.ReLU(), torch.nn.Linear(42, 40)).eval()
    path = tmp_path_factory.mktemp("fc_table") / "fc.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.randn(1, 301),), str(path), input_names=["x"], output_names=["y"],
                          opset_version=17, dynamo=False)
    rng = np.random.default_rng(0)
    calib = path.parent / "calib.npz"
    np.savez(calib, x=rng.normal(0, 1, (8, 1, 301)).astype(np.float32))
    return path, calib


@pytest.mark.skipif(missing_tools(run=True) is not None,
                    reason=f"Cortex-M toolchain or QEMU unavailable: {missing_tools(run=True)}")
@pytest.mark.parametrize("bits", [2, 4])
def test_fc_decode_table_on_cortex_m4_equals_golden(fc_table_model, bits):
    """Fully connected palettes shared by enough weights go through the 256-word decode table and
    its Thumb-2 loops on the M4 (tc_fc_cb_s8_table): the golden model's outputs."""
    from tinycc.ops.dense import fc_cb_uses_table

    path, calib = fc_table_model
    g = run_pipeline(load_graph(path, {"x": (1, 301)}))
    model = CompiledModel(g, QuantOptions(calib=str(calib), quant="codebook", codebook_bits=str(bits)),
                          warn=lambda m: None)
    table = [s.params for s in model.program.steps if s.kernel == "tc_fc_cb_s8" and fc_cb_uses_table(s.params)]
    assert [(p.in_features, p.out_features, p.palette_oc) for p in table] == [(301, 42, 42)]
    x = {model.graph.inputs[0]: np.random.default_rng(5).normal(0, 1, (1, 301)).astype(np.float32)}
    golden = model.run_int8(x)
    outputs, _ = model.run_qemu(x, "cortex-m4")
    for out in golden:
        np.testing.assert_array_equal(outputs[out], golden[out])
