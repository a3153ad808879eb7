"""Codebook (clustered) weights: an int8 palette per group of output channels, b-bit indices.

Format (quantization.md §3.4, "shared int8 palette x per-channel scale"):

  palette   int8 [groups][2^bits]   output channels [g * palette_oc, (g + 1) * palette_oc) share
                                    palette g; the per-channel float scale is kept, so the
                                    decoded weights are ordinary int8 codes and requantization
                                    does not change (golden = int8 kernel on the decoded weights)
  indices   uint8 [out_c][row_bytes]  one row per output channel, row_bytes = ceil(depth*bits/8):
                                    a bit stream, LSB first, index of stream slot j at bits
                                    [j*bits, (j+1)*bits). Within every whole group of 4 values
                                    of a row the slots hold elements 0, 2, 1, 3 (SXTB16's lane
                                    order: slots (0, 1) are the even lane pair, (2, 3) the odd
                                    one, so a lookup of two indices gives an SMLAD operand);
                                    a row's last depth % 4 values are in order.

`depth` is what one output channel reads: k_h*k_w*in_c/groups (conv, OHWI), k_h*k_w
(depthwise), in_features (fully connected), i.e. the int8 weights reshaped to [out_c, -1].

The palette of a group is chosen on the group's int8 codes, each code weighted by the error it
causes in the layer's output: its channel's scale^2 (float domain) times, with calibration data,
the variance of the input value it multiplies (input_moments, codebook_importance); exact 1-D
k-means by dynamic programming over the <= 255 distinct codes, and k-means++ with restarts; the
one with the lower measured error wins (benchmarks/bench_codebook.py prints how often each does).
With calibration data the indices are then chosen GPTQ-style (gptq_refine: column by column,
each rounding error compensated by the columns not yet assigned through the inverse covariance of
the layer's input patches, input_covariances; the palette refitted by least squares; the result
kept only where it lowers the output error the covariance measures), and the int32 bias absorbs
the clustering's mean output shift (bias_shift). Digits validation splits (examples/qat_digits.py
--validation, two models), logit MSE against int8: 11.56 / 11.75 without GPTQ, 5.85 / 4.71 with;
on the 1-px-shifted copies 12.96 / 12.79 -> 6.66 / 6.30. --bias-correction (empirical, after the
clustering: it sees the decoded weights) stays opt-in: on top of GPTQ it measured 4.99 / 4.82
(shifted 6.08 / 6.16), shifted accuracy -0.31 / -0.06 points, at twice the compile time. A group whose codes already take <= 2^bits values (a pre-clustered model, e.g. DKM
fine-tuning output) keeps them: the palette is those values and nothing is re-clustered.

Which layers: every layer with weights whose codebook is smaller than its int8 weights, except
the smallest ones, which stay int8 while they hold <= INT8_KEEP_SHARE of the model's weight
bytes (small_layers_kept_int8).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BadInput
from ..golden.arith import round_half_away

CODEBOOK = "codebook"
MIN_BITS, MAX_BITS = 2, 6
# Palettes take at most 1/32 of the int8 weight bytes: with 2-bit indices (1/4) the layer stays
# under 0.30x of int8 (the target), with 4-bit under 0.55x.
PALETTE_SHARE = 32
# Depthwise and fully connected kernels decode each row once whatever the tile, so a small
# tile (this many bytes, or one row) costs only a call per tile; the issue allows 1 KiB of SRAM
# over the int8 build. (Convolutions choose their tiles in ops/conv.py codebook_conv_tiling.)
SCRATCH_BUDGET = 256
KMEANS_RESTARTS = 2
# Fully connected layers (fc_palette_channels): weights per 2- or 4-bit palette at least. The
# Cortex-M4 kernel builds a 256-entry table per palette (about 800 instructions) and then spends
# 3 instructions per 2 (4-bit) or 4 (2-bit) weights: from 16384 weights on the table is < 5 %.
FC_PALETTE_WEIGHTS = 16384
# The smallest layers stay int8 while together they hold at most this share of the model's weight
# bytes (small_layers_kept_int8). Chosen on a validation split of the digits example (4-bit,
# logit MSE against int8 on two models: 30.5 / 29.5 with none kept, 14.4 / 17.3 at 2.5 %,
# 11.6 / 14.9 at 5 %, 11.4 / 14.4 at 10 %; weight flash 0.508x, 0.517x, 0.530x, 0.543x int8).
# On the MLPerf Tiny models it costs <= 0.025x int8 at B=4 (weights 0.517x to 0.525x int8) and
# <= 0.03x at B=2 (0.276x to 0.288x): benchmarks/bench_codebook.py.
INT8_KEEP_SHARE = 0.05
KMEANS_ITERS = 30


# ---- the --codebook-bits option ---------------------------------------------------------------
@dataclass(frozen=True)
class CodebookBits:
    """--codebook-bits B[,LAYER=B...]: the default index width and per-layer overrides (ONNX node
    names, or tinycc's node names)."""

    default: int = 4
    layers: tuple[tuple[str, int], ...] = ()

    def for_node(self, onnx_name: str, name: str) -> int:
        over = dict(self.layers)
        return over.get(onnx_name, over.get(name, self.default))


def _bits_value(text: str, where: str) -> int:
    try:
        bits = int(text)
    except ValueError:
        raise BadInput(f"--codebook-bits: {where} {text!r} is not a number of bits ({MIN_BITS} to {MAX_BITS})") from None
    if not MIN_BITS <= bits <= MAX_BITS:
        raise BadInput(f"--codebook-bits: {where} {bits} is outside {MIN_BITS} to {MAX_BITS}")
    return bits


def parse_codebook_bits(text: str | int | None) -> CodebookBits:
    """'4' or '4,conv1=6,fc=2' (a layer without '=' is an error: the default comes first)."""
    if text is None:
        return CodebookBits()
    if isinstance(text, int):
        return CodebookBits(_bits_value(str(text), "bits"))
    parts = [s.strip() for s in str(text).split(",") if s.strip()]
    if not parts or "=" in parts[0]:
        raise BadInput(f"--codebook-bits {text!r}: give the default bits first, e.g. 4 or 4,conv1=6")
    layers = []
    for part in parts[1:]:
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise BadInput(f"--codebook-bits: {part!r} is not LAYER=BITS (e.g. conv1=6)")
        layers.append((name.strip(), _bits_value(value.strip(), f"layer {name.strip()!r}:")))
    return CodebookBits(_bits_value(parts[0], "default"), tuple(layers))


def check_layer_names(bits: CodebookBits, names: set[str]) -> None:
    """An override naming no layer with weights is a typo: say so rather than ignore it."""
    unknown = [n for n, _ in bits.layers if n not in names]
    if unknown:
        raise BadInput(f"--codebook-bits: no layer with weights is named {', '.join(map(repr, unknown))} "
                       f"(layers: {', '.join(sorted(names)[:12])}{' ...' if len(names) > 12 else ''})")


# ---- sizes --------------------------------------------------------------------------------------
def row_bytes(depth: int, bits: int) -> int:
    return (depth * bits + 7) // 8


def palette_channels(out_c: int, depth: int, bits: int) -> int:
    """Output channels per palette: the fewest that keep the palettes within 1/PALETTE_SHARE of
    the int8 weight bytes (a divisor of out_c; all channels when even one palette is more)."""
    need = -(-PALETTE_SHARE * (1 << bits) // depth)  # ceil(32 K / depth)
    for g in range(1, out_c + 1):
        if out_c % g == 0 and g >= need:
            return g
    return out_c


def fc_palette_channels(out_c: int, depth: int, bits: int) -> int:
    """Output features per palette of a fully connected layer: 2- and 4-bit palettes are shared
    by at least FC_PALETTE_WEIGHTS weights (the fewest rows that hold them, a divisor of out_c;
    all rows when none), so that the Cortex-M4 kernel's decode table, built per palette, costs
    little next to the lookups (tc_fc_cb_s8_dsp.c); other widths as palette_channels."""
    if bits not in (2, 4):
        return palette_channels(out_c, depth, bits)
    need = -(-FC_PALETTE_WEIGHTS // max(depth, 1))
    return next((g for g in range(need, out_c + 1) if out_c % g == 0), out_c)


def codebook_bytes(out_c: int, depth: int, bits: int, palette_oc: int) -> int:
    return out_c * row_bytes(depth, bits) + (out_c // palette_oc) * (1 << bits)


def shrinks_flash(out_c: int, depth: int, bits: int) -> bool:
    """Whether the codebook layout of a [out_c, depth] weight tensor is smaller than int8."""
    return codebook_bytes(out_c, depth, bits, palette_channels(out_c, depth, bits)) < out_c * depth


def tile_channels(out_c: int, depth: int) -> int:
    """Output channels decoded at a time: as many rows as SCRATCH_BUDGET holds (even, for the
    2x2 blocks of the DSP path), at least one."""
    t = max(1, min(out_c, SCRATCH_BUDGET // max(depth, 1)))
    return t - 1 if 1 < t < out_c and t % 2 else t


# ---- packing ------------------------------------------------------------------------------------
def slot_order(depth: int) -> np.ndarray:
    """Element stored in stream slot j of a row: 0, 2, 1, 3 within each whole group of 4, the
    tail in order (the permutation is its own inverse)."""
    order = np.arange(depth)
    whole = depth - depth % 4
    order[:whole] = order[:whole].reshape(-1, 4)[:, [0, 2, 1, 3]].reshape(-1)
    return order


def pack_indices(idx: np.ndarray, bits: int) -> np.ndarray:
    """[out_c, depth] indices (< 2^bits) -> uint8 [out_c, row_bytes] (LSB-first bit stream of the
    slots)."""
    out_c, depth = idx.shape
    slots = idx[:, slot_order(depth)].astype(np.uint32)
    bit_of = (slots[:, :, None] >> np.arange(bits, dtype=np.uint32)) & 1  # [o, j, b]
    stream = bit_of.reshape(out_c, depth * bits).astype(np.uint8)
    pad = row_bytes(depth, bits) * 8 - depth * bits
    stream = np.concatenate([stream, np.zeros((out_c, pad), np.uint8)], axis=1)
    return np.packbits(stream, axis=1, bitorder="little")


def unpack_indices(packed: np.ndarray, depth: int, bits: int) -> np.ndarray:
    """The inverse of pack_indices: int64 [out_c, depth]."""
    stream = np.unpackbits(packed.astype(np.uint8), axis=1, bitorder="little")[:, : depth * bits]
    slots = (stream.reshape(packed.shape[0], depth, bits).astype(np.int64) << np.arange(bits)).sum(axis=2)
    return slots[:, slot_order(depth)]


@dataclass(frozen=True)
class CodebookWeights:
    """A layer's codebook: what the C kernels read, and how it was made (for the report)."""

    bits: int
    depth: int
    palette_oc: int
    palette: np.ndarray  # int8 [groups, 2^bits]
    indices: np.ndarray  # uint8 [out_c, row_bytes]
    method: str  # "dp", "kmeans++", "mixed", or "pre-clustered" (no group was re-clustered)

    @property
    def out_c(self) -> int:
        return self.indices.shape[0]

    @property
    def flash_bytes(self) -> int:
        return int(self.palette.nbytes + self.indices.nbytes)

    def decode(self) -> np.ndarray:
        """int8 [out_c, depth]: the weights the kernels compute with."""
        idx = unpack_indices(self.indices, self.depth, self.bits)
        group = np.arange(self.out_c) // self.palette_oc
        return self.palette[group[:, None], idx].astype(np.int8)


def decode_codebook(palette: np.ndarray, indices: np.ndarray, bits: int, depth: int, palette_oc: int) -> np.ndarray:
    """int8 [out_c, depth] from the flash arrays (the golden kernels' view)."""
    return CodebookWeights(bits, depth, palette_oc, np.asarray(palette, np.int8).reshape(-1, 1 << bits),
                           np.asarray(indices, np.uint8).reshape(len(indices), -1), "").decode()


# ---- clustering ---------------------------------------------------------------------------------
def _interval_costs(values: np.ndarray, weights: np.ndarray):
    """cost[i, j]: weighted squared error of values[i..j] around their weighted mean (i <= j)."""
    cw = np.concatenate([[0.0], np.cumsum(weights)])
    cwx = np.concatenate([[0.0], np.cumsum(weights * values)])
    cwxx = np.concatenate([[0.0], np.cumsum(weights * values * values)])
    i = np.arange(len(values))[:, None]
    j = np.arange(len(values))[None, :]
    w = cw[j + 1] - cw[i]
    s = cwx[j + 1] - cwx[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = (cwxx[j + 1] - cwxx[i]) - np.where(w > 0, s * s / np.where(w > 0, w, 1), 0)
    return np.where(j >= i, np.maximum(cost, 0), np.inf)


def kmeans_dp(values: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Optimal 1-D weighted k-means of sorted distinct `values` (contiguous clusters, dynamic
    programming, O(k n^2)): the cluster centres (weighted means), float64."""
    n = len(values)
    cost = _interval_costs(values, weights)
    best = cost[0].copy()  # best[j]: values[0..j] in one cluster
    choice = np.zeros((k, n), np.int64)
    for c in range(1, k):
        # values[0..j] in c + 1 clusters, the last one values[i..j] (i >= 1)
        total = best[None, :-1].T + cost[1:, :]  # [i-1 -> i, j]
        i_best = np.argmin(total, axis=0)
        new = total[i_best, np.arange(n)]
        choice[c] = i_best + 1
        best = np.where(np.isfinite(new), new, best)
        choice[c][~np.isfinite(new)] = 0
    # walk back the cluster starts
    starts, j = [], n - 1
    for c in range(k - 1, -1, -1):
        i = int(choice[c][j]) if c > 0 else 0
        starts.append(i)
        j = i - 1
        if j < 0:
            break
    centres = []
    bounds = sorted(set(starts)) + [n]
    for a, b in zip(bounds[:-1], bounds[1:]):
        centres.append(np.sum(values[a:b] * weights[a:b]) / np.sum(weights[a:b]))
    return np.array(centres)


def kmeans_plusplus(values: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Weighted k-means++ seeding, then Lloyd iterations; the best of KMEANS_RESTARTS runs."""
    best, best_err = None, np.inf
    for _ in range(KMEANS_RESTARTS):
        centres = [values[rng.choice(len(values), p=weights / weights.sum())]]
        for _ in range(1, k):
            d = np.min((values[:, None] - np.array(centres)[None, :]) ** 2, axis=1) * weights
            if d.sum() <= 0:
                break
            centres.append(values[rng.choice(len(values), p=d / d.sum())])
        c = np.array(centres, np.float64)
        for _ in range(KMEANS_ITERS):
            a = _assign(values, c)
            mass = np.bincount(a, weights, minlength=len(c))
            total = np.bincount(a, weights * values, minlength=len(c))
            new = np.where(mass > 0, total / np.where(mass > 0, mass, 1), c)
            if np.array_equal(new, c):
                break
            c = new
        err = _palette_error(values, weights, _int8_palette(c))
        if err < best_err:
            best, best_err = c, err
    return best


def _int8_palette(centres: np.ndarray) -> np.ndarray:
    return np.unique(np.clip(round_half_away(centres), -128, 127)).astype(np.int64)


def _assign(values: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Index of the nearest palette entry (ties: the lower one) for each value."""
    return np.argmin(np.abs(values[:, None] - palette[None, :]), axis=1)


def _palette_error(values, weights, palette) -> float:
    return float(np.sum(weights * (values - palette[_assign(values, palette)]) ** 2))


def cluster_group(codes: np.ndarray, weights: np.ndarray, bits: int, rng) -> tuple[np.ndarray, str]:
    """The int8 palette (2^bits entries, sorted, padded with its last value) of one group's codes
    [channels, depth], each code weighted by `weights` (same shape, or one per channel); method:
    pre-clustered, dp or kmeans++ (the lower weighted error)."""
    k = 1 << bits
    values, inverse = np.unique(codes, return_inverse=True)
    if len(values) <= k:  # already <= 2^bits values: kept exactly
        palette, method = values.astype(np.int64), "pre-clustered"
    else:
        w = np.asarray(weights, np.float64)
        w = np.broadcast_to(w[:, None] if w.ndim == 1 else w, codes.shape)
        mass = np.bincount(inverse.reshape(-1), weights=w.reshape(-1), minlength=len(values))
        mass = np.maximum(mass, 1e-300)
        v = values.astype(np.float64)
        dp = _int8_palette(kmeans_dp(v, mass, k))
        pp = _int8_palette(kmeans_plusplus(v, mass, k, rng))
        e_dp, e_pp = _palette_error(v, mass, dp), _palette_error(v, mass, pp)
        palette, method = (dp, "dp") if e_dp <= e_pp else (pp, "kmeans++")
    padded = np.concatenate([palette, np.full(k - len(palette), palette[-1])]).astype(np.int8)
    return padded, method


def cluster_weights(q: np.ndarray, scale: np.ndarray, bits: int, palette_oc: int | None = None,
                    seed: int = 0, importance: np.ndarray | None = None,
                    fully_connected: bool = False,
                    covariance: np.ndarray | None = None) -> CodebookWeights:
    """Codebook of int8 weights q [out_c, ...] with per-channel scales. The palettes minimise the
    squared error of the layer's output: each weight's error counts with its channel's scale^2
    (float domain) times `importance` [out_c, depth], the variance of the input it multiplies
    (a diagonal Hessian proxy, see input_moments); without it, every input counts the same.
    With `covariance` [m, depth, depth] (the covariance of the inputs of each of m equal blocks
    of output channels, input_covariances), each group's indices are then chosen GPTQ-style and
    its palette refitted (gptq_refine), where that lowers the output error it measures."""
    out_c = q.shape[0]
    rows = q.reshape(out_c, -1).astype(np.int64)
    depth = rows.shape[1]
    palette_oc = palette_oc or exact_palette_channels(rows, bits) or \
        (fc_palette_channels if fully_connected else palette_channels)(out_c, depth, bits)
    scale2 = np.broadcast_to(np.asarray(scale, np.float64), (out_c,)) ** 2
    weights = scale2[:, None] * (np.ones((1, depth)) if importance is None else np.asarray(importance, np.float64))
    rng = np.random.default_rng(seed)  # fixed: the same model gives the same bytes
    palettes, methods, idx = [], [], np.empty_like(rows)
    for g0 in range(0, out_c, palette_oc):
        group = rows[g0:g0 + palette_oc]
        palette, method = cluster_group(group, weights[g0:g0 + palette_oc], bits, rng)
        palettes.append(palette)
        methods.append(method)
        idx[g0:g0 + palette_oc] = _assign(group.reshape(-1), palette.astype(np.int64)).reshape(group.shape)
    palettes = np.stack(palettes)
    clustered = np.repeat(np.array(methods) != "pre-clustered", palette_oc)  # pre-clustered rows are exact
    if covariance is not None and clustered.any():
        rows_c = np.flatnonzero(clustered)
        groups_c = np.unique(rows_c // palette_oc)
        block = rows_c // (out_c // len(covariance))
        group = np.searchsorted(groups_c, rows_c // palette_oc)
        palettes[groups_c], idx[rows_c] = gptq_refine(rows[rows_c], scale2[rows_c], palettes[groups_c], idx[rows_c],
                                                      covariance, block, group)
    method = methods[0] if len(set(methods)) == 1 else "mixed"
    return CodebookWeights(bits, depth, palette_oc, palettes, pack_indices(idx, bits), method)


# ---- GPTQ-style assignment (with the calibration inputs' covariance) ----------------------------
# Dampening of the covariance before its inverse (GPTQ's 1 % of the mean diagonal): inputs that
# never vary, or vary together, would otherwise make it singular.
GPTQ_DAMP = 0.01
# Rounds of (GPTQ assignment, palette refit); the error the covariance measures decides which
# round's result is kept (the plain nearest-entry assignment included).
GPTQ_ROUNDS = 2
GPTQ_ACT_ORDER = False  # act-order (GPTQ): columns by decreasing input variance
# Above this depth the covariance (depth^2 doubles per block) is not collected: diagonal only.
MAX_GPTQ_DEPTH = 2048


def _inverse_cholesky(cov: np.ndarray) -> np.ndarray:
    """[m, d, d] upper-triangular U with U^T U = (cov + damping)^-1: GPTQ's update rows (row j
    of U spreads a rounding error of column j over the columns after it)."""
    d = cov.shape[-1]
    eye = np.eye(d)
    damp = GPTQ_DAMP * np.maximum(np.trace(cov, axis1=1, axis2=2) / d, 1e-12)
    for _ in range(8):
        try:
            inv = np.linalg.inv(cov + damp[:, None, None] * eye)
            return np.swapaxes(np.linalg.cholesky(inv), 1, 2)
        except np.linalg.LinAlgError:  # numerically not positive definite: dampen more
            damp = damp * 10
    raise np.linalg.LinAlgError("covariance not positive definite even when dampened")


def gptq_assign(rows: np.ndarray, palettes: np.ndarray, upper: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Indices [r, depth] of rows (int8 codes) into their palettes [r, 2^bits], column by
    column: each column takes the nearest entry (ties: the first) to its value as updated so
    far, and its rounding error is spread over the columns not yet assigned through the
    inverse covariance (GPTQ, Frantar et al. 2022), so that they compensate it in the layer's
    output. upper: _inverse_cholesky of the covariance blocks; block[i]: the block of row i."""
    w = rows.astype(np.float64).copy()
    idx = np.empty(rows.shape, np.int64)
    picks = np.arange(len(rows))
    for j in range(w.shape[1]):
        idx[:, j] = np.argmin(np.abs(w[:, j, None] - palettes), axis=1)
        err = (w[:, j] - palettes[picks, idx[:, j]]) / upper[block, j, j]
        w[:, j + 1:] -= err[:, None] * upper[block, j, j + 1:]
    return idx


def _row_errors(rows, scale2, decoded, cov, block) -> np.ndarray:
    """Per row, scale^2 e^T C e with e = row - decoded: the variance of that output channel's
    float error on the calibration data (its mean is the bias shift's)."""
    e = rows - decoded
    out = np.empty(len(rows))
    for b in np.unique(block):
        mine = block == b
        out[mine] = scale2[mine] * np.sum((e[mine] @ cov[b]) * e[mine], axis=1)
    return out


def refit_palette(rows, scale2, palette, idx, cov, block) -> np.ndarray:
    """The palette values (float, same entries) that minimise the summed _row_errors of rows
    [r, depth] for fixed indices: the normal equations of a least-squares problem in 2^bits
    unknowns. Entries no weight uses keep their value."""
    k = len(palette)
    m, rhs = np.zeros(k * k), np.zeros(k)
    for b in np.unique(block):
        mine = np.flatnonzero(block == b)
        cq = (rows[mine] @ cov[b]) * scale2[mine, None]  # each row's C q, the rhs before the sums per entry
        rhs += np.bincount(idx[mine].reshape(-1), cq.reshape(-1), minlength=k)
        for r in mine:  # A^T C A: the sum of C over each pair of entries' positions (bincount, not k x d^2 flops)
            pairs = idx[r][:, None] * k + idx[r][None, :]
            m += scale2[r] * np.bincount(pairs.reshape(-1), cov[b].reshape(-1), minlength=k * k)
    m = m.reshape(k, k)
    used = np.diag(m) > 0
    out = palette.astype(np.float64).copy()
    if used.any():
        sub = m[np.ix_(used, used)]
        out[used] = np.linalg.lstsq(sub, rhs[used] - m[np.ix_(used, ~used)] @ out[~used], rcond=None)[0]
    return out


def _canonical(palette: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted int8 palette padded with its last value to k entries, indices into it) for
    palette values that may be unsorted, fractional or repeated."""
    values, inverse = np.unique(np.clip(round_half_away(palette), -128, 127), return_inverse=True)
    padded = np.concatenate([values, np.full(k - len(values), values[-1])])
    return padded.astype(np.int64), inverse.reshape(-1)[idx]


def gptq_refine(rows: np.ndarray, scale2: np.ndarray, palettes: np.ndarray, idx: np.ndarray,
                cov: np.ndarray, block: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(palettes [groups, 2^bits] int8, indices [r, depth]) of a layer's rows [r, depth] after
    GPTQ_ROUNDS rounds of gptq_assign (all rows at once, one inverse per covariance block) and
    refit_palette (per palette group), starting from the clustered palettes and their
    nearest-entry indices. Each group keeps whichever candidate has its lowest summed
    _row_errors, so it is never worse than the plain assignment by that measure. block[i],
    group[i]: row i's covariance block and palette group."""
    k = palettes.shape[1]
    order = np.argsort(-np.einsum("bii->i", cov), kind="stable") if GPTQ_ACT_ORDER else np.arange(rows.shape[1])
    back = np.argsort(order)
    rows, idx, cov = rows[:, order].astype(np.float64), idx[:, order], cov[:, order][:, :, order]
    upper = _inverse_cholesky(cov)
    members = [np.flatnonzero(group == gi) for gi in range(len(palettes))]

    def group_errors(pal, ix):
        e = _row_errors(rows, scale2, pal[group[:, None], ix], cov, block)
        return np.array([e[m].sum() for m in members])

    best_pal, best_idx = palettes.astype(np.int64), idx.copy()
    best_err = group_errors(best_pal, best_idx)
    current = best_pal
    for _ in range(GPTQ_ROUNDS):
        assigned = gptq_assign(rows, current[group].astype(np.float64), upper, block)
        fitted = np.stack([refit_palette(rows[m], scale2[m], current[gi], assigned[m], cov, block[m])
                           for gi, m in enumerate(members)])
        for values in (current, fitted):
            pal, ix = np.empty_like(best_pal), np.empty_like(best_idx)
            for gi, m in enumerate(members):
                pal[gi], ix[m] = _canonical(values[gi], assigned[m], k)
            err = group_errors(pal, ix)
            better = err < best_err
            best_err = np.where(better, err, best_err)
            best_pal[better] = pal[better]
            rows_better = better[group]
            best_idx[rows_better] = ix[rows_better]
        current = pal  # the refitted palettes, as int8 (the last candidate)
    return best_pal.astype(np.int8), best_idx[:, back]


def preclustered_layout(w: np.ndarray, scale: np.ndarray, bits: int) -> tuple[np.ndarray, int] | None:
    """For float weights w [out_c, ...] that take <= 2^bits distinct values per palette group (a
    DKM-style export: one float palette per group, or per channel after BatchNorm folding):
    (per-channel scales, palette_oc) such that the int8 codes of every group take <= 2^bits
    values too, so the clustering keeps them. Groups of palette_channels() channels share one
    scale (their largest); if only single channels qualify, each keeps its own scale and
    palette. None when the weights are not pre-clustered."""
    out_c = w.shape[0]
    rows = w.reshape(out_c, -1)
    s = np.broadcast_to(np.asarray(scale, np.float32), (out_c,))
    g = exact_palette_channels(rows, bits)
    if g is None:
        return None
    return np.repeat(s.reshape(-1, g).max(axis=1), g).astype(np.float32), g


def exact_palette_channels(rows: np.ndarray, bits: int) -> int | None:
    """Channels per palette with which every group of `rows` [out_c, depth] takes <= 2^bits
    values and the codebook still shrinks flash: the default grouping, else the largest smaller
    divisor of out_c (a fine-tuning export with smaller palette groups, or per channel); None if
    none does."""
    out_c, depth = rows.shape
    default = palette_channels(out_c, depth, bits)
    for g in [default] + [d for d in range(default - 1, 0, -1) if out_c % d == 0]:
        if codebook_bytes(out_c, depth, bits, g) < out_c * depth and \
                all(len(np.unique(rows[g0:g0 + g])) <= 1 << bits for g0 in range(0, out_c, g)):
            return g
    return None


# ---- what the calibration data says about each layer's inputs ---------------------------------
@dataclass(frozen=True)
class InputMoments:
    """Per weight [out_c, depth] (the weights' row layout): the mean and the mean square, over
    the calibration samples and the output positions, of the input value that weight multiplies
    (zero where it multiplies padding)."""

    mean: np.ndarray
    mean_square: np.ndarray
    # [m, depth, depth]: the covariance of the input patches of each of m equal blocks of output
    # channels (1 for a dense or ordinary conv, the groups of a grouped or depthwise conv), over
    # the samples and output positions (input_covariances); None: the diagonal alone
    covariance: np.ndarray | None = None


def input_moments(g, node, stats) -> InputMoments | None:
    """InputMoments of a Conv (NHWC, any group) or Dense node from the calibration statistics of
    its input (quant/calibrate.py TensorStats.moments); None for other layouts and ops, or when
    the statistics lack them (the clustering then weighs every input the same)."""
    x = g.tensors[node.inputs[0]]
    s = stats.get(node.inputs[0]) if stats is not None else None
    m = s.moments() if s is not None else None
    if m is None:
        return None
    w_shape = g.tensors[node.inputs[1]].shape
    if node.op == "Dense" and m[0].shape[-1:] == tuple(w_shape[1:]):
        return InputMoments(*(np.broadcast_to(a.reshape(-1, a.shape[-1]).mean(axis=0), (w_shape[0], w_shape[1]))
                              for a in m))
    if node.op == "Conv" and node.attrs.get("layout") == "NHWC" and len(x.shape) == 4 and m[0].ndim in (3, 4):
        out_h, out_w = g.tensors[node.outputs[0]].shape[1:3]
        return InputMoments(*(_conv_patch_means(a.reshape(a.shape[-3:]), node.attrs, w_shape, out_h, out_w)
                              for a in m))
    return None


def _conv_patch_means(plane: np.ndarray, a: dict, w_shape, out_h: int, out_w: int) -> np.ndarray:
    """[out_c, k_h*k_w*in_c/group]: the mean over output positions of the (zero-padded) input
    element that each weight of an NHWC conv (weights OHWI) reads."""
    (k_h, k_w), (s_h, s_w), (d_h, d_w) = a["kernel"], a["strides"], a["dilations"]
    pt, pl, pb, pr = a["pads"]
    padded = np.pad(plane, ((pt, pb), (pl, pr), (0, 0)))
    patch = np.empty((k_h, k_w, plane.shape[-1]))
    for i in range(k_h):
        for j in range(k_w):
            rows = padded[i * d_h: i * d_h + s_h * (out_h - 1) + 1: s_h, j * d_w: j * d_w + s_w * (out_w - 1) + 1: s_w]
            patch[i, j] = rows.reshape(-1, plane.shape[-1]).mean(axis=0)
    out_c, in_g = w_shape[0], w_shape[-1]
    group = plane.shape[-1] // in_g
    first = (np.arange(out_c) // (out_c // group)) * in_g  # each output channel's first input channel
    return np.stack([patch[:, :, c:c + in_g].reshape(-1) for c in first])


def _patches(x: np.ndarray, node, w_shape, out_shape) -> np.ndarray:
    """[positions, blocks, depth]: what each output position of a Dense (one block) or NHWC Conv
    (one block per group; weights OHWI) multiplies with its weights, zero padding included."""
    if node.op == "Dense":
        return x.reshape(-1, 1, w_shape[1])
    a = node.attrs
    (k_h, k_w), (s_h, s_w), (d_h, d_w) = a["kernel"], a["strides"], a["dilations"]
    pt, pl, pb, pr = a["pads"]
    out_h, out_w = out_shape[1:3]
    in_g = w_shape[-1]
    planes = np.pad(x.reshape((-1,) + x.shape[-3:]), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    taps = [planes[:, i * d_h: i * d_h + s_h * (out_h - 1) + 1: s_h, j * d_w: j * d_w + s_w * (out_w - 1) + 1: s_w]
            for i in range(k_h) for j in range(k_w)]  # each [n, out_h, out_w, in_c]
    p = np.stack(taps, axis=-2)  # [n, out_h, out_w, k_h*k_w, in_c]
    p = p.reshape(-1, k_h * k_w, x.shape[-1] // in_g, in_g)  # [positions, taps, group, in_g]
    return p.transpose(0, 2, 1, 3).reshape(len(p), x.shape[-1] // in_g, k_h * k_w * in_g)


def _gram_ready(g, node) -> bool:
    """Whether input_covariances handles the node (the layouts input_moments reads), with a
    depth small enough for depth^2 matrices."""
    w_shape = g.tensors[node.inputs[1]].shape
    if int(np.prod(w_shape[1:])) > MAX_GPTQ_DEPTH:
        return False
    x = g.tensors[node.inputs[0]]
    return node.op == "Dense" or (node.op == "Conv" and node.attrs.get("layout") == "NHWC" and len(x.shape) == 4)


def input_covariances(g, nodes, samples) -> dict[str, np.ndarray]:
    """{node name: [blocks, depth, depth]} the covariance of each node's input patches (see
    _patches) over the calibration samples and output positions, for GPTQ-style assignment:
    a second float run over the samples, keeping only sums (depth^2 per block)."""
    from ..reference.float_exec import run_float

    nodes = [n for n in nodes if _gram_ready(g, n)]
    readers: dict[str, list] = {}
    for n in nodes:
        readers.setdefault(n.inputs[0], []).append(n)
    sums: dict[str, list] = {}

    def observe(name, value):
        for n in readers.get(name, ()):
            p = _patches(np.asarray(value, np.float64), n, g.tensors[n.inputs[1]].shape,
                         g.tensors[n.outputs[0]].shape)
            gram = np.einsum("pbd,pbe->bde", p, p, optimize=True) if p.shape[1] > 1 else (p[:, 0].T @ p[:, 0])[None]
            acc = sums.setdefault(n.name, [0.0, 0.0, 0])
            acc[0], acc[1], acc[2] = acc[0] + gram, acc[1] + p.sum(axis=0), acc[2] + len(p)

    for s in samples:
        for name in g.inputs:
            if name in readers:
                v = np.asarray(s[name], dtype=np.float32)
                perm = g.tensors[name].perm
                observe(name, v if perm is None else v.transpose(perm))
        run_float(g, s, observe=observe if readers else None)
    out = {}
    for name, (gram, total, count) in sums.items():
        mean = total / count
        out[name] = gram / count - mean[:, :, None] * mean[:, None, :]
    return out


def codebook_importance(moments: InputMoments) -> np.ndarray:
    """[out_c, depth]: how much a unit error of each weight costs in the layer's output, the
    variance of the input it multiplies (a diagonal Hessian proxy, as GPTQ/AWQ-style methods
    use). The variance, not the mean square: bias_shift removes the mean of the output error,
    what remains of sum_j dw_j x_j is sum_j dw_j (x_j - E[x_j]). Chosen on a validation split of
    the digits example (examples/qat_digits.py; logit MSE against int8: variance 11.6 and 14.9
    on two models, mean square 12.5 and 17.2, no weighting 13.5 and 17.1)."""
    return np.maximum(moments.mean_square - moments.mean ** 2, 0.0)


def bias_shift(q: np.ndarray, decoded: np.ndarray, mean: np.ndarray, in_scale: float) -> np.ndarray:
    """int32 to add to each channel's bias so that the clustered layer's output has the int8
    layer's mean on the calibration data: sum_j (q - decoded)_j * E[x_j] / in_scale (bias
    correction, Nagel et al. 2019, for the clustering error only: the kernels compute with
    `decoded`). Rounded half away from zero."""
    diff = (q.reshape(len(q), -1).astype(np.float64) - decoded.reshape(len(q), -1).astype(np.float64))
    shift = np.sum(diff * mean, axis=1) / np.float64(np.float32(in_scale))
    return np.clip(round_half_away(shift), -(1 << 28), 1 << 28).astype(np.int64)


# ---- marking the nodes --------------------------------------------------------------------------
def weight_layer_names(g) -> set[str]:
    """The names --codebook-bits overrides may use: ONNX and tinycc names of nodes with weights."""
    from ..ops.registry import OPS

    nodes = [n for n in g.nodes if OPS[n.op].bias_axis(g, n) is not None]
    return {n.onnx_name or n.name for n in nodes} | {n.name for n in nodes}


def record_codebook_schemes(g, bits: CodebookBits, stats=None, samples=None) -> None:
    """Record the codebook scheme (and its bits) on every node with weights whose codebook is
    smaller than its int8 weights, except the smallest layers (small_layers_kept_int8); the
    others keep int8-per-channel. With calibration `stats`, also the InputMoments of the node's
    input (attrs["codebook_input"]): the clustering weighs each weight by them and corrects the
    bias (quant/weights.py)."""
    from ..ops.registry import OPS
    from .weights import TERNARY

    nodes = [n for n in g.nodes if OPS[n.op].bias_axis(g, n) is not None]
    check_layer_names(bits, weight_layer_names(g))
    sizes = {n.name: int(g.tensors[n.inputs[1]].data.size) for n in nodes}
    named = {name for name, _ in bits.layers}
    candidates = []
    for node in nodes:
        if node.attrs.get("weight_scheme") == TERNARY:
            continue  # PROM's ternary pointwise layers (--quant prom+codebook, or a ternary QAT export)
        w = g.tensors[node.inputs[1]]
        if shrinks_flash(w.shape[0], int(np.prod(w.shape[1:])), bits.for_node(node.onnx_name, node.name)):
            candidates.append(node)
    kept = small_layers_kept_int8([(n.name, sizes[n.name]) for n in candidates
                                   if not {n.name, n.onnx_name} & named], sum(sizes.values()))
    clustered = [n for n in candidates if n.name not in kept]
    covariances = input_covariances(g, clustered, samples) if samples is not None and stats is not None else {}
    for node in clustered:
        node.attrs["weight_scheme"] = CODEBOOK
        node.attrs["codebook_bits"] = bits.for_node(node.onnx_name, node.name)
        moments = input_moments(g, node, stats)
        if moments is not None:
            node.attrs["codebook_input"] = InputMoments(moments.mean, moments.mean_square,
                                                        covariances.get(node.name))


def small_layers_kept_int8(layers: list[tuple[str, int]], total: int) -> set[str]:
    """Names of the smallest layers ((name, int8 weight bytes), smallest first, ties in graph
    order) that together hold at most INT8_KEEP_SHARE of the model's `total` weight bytes: they
    stay int8. In CNNs these are the first layers (few channels), the ones whose clustering
    error the rest of the network amplifies most, and keeping them int8 costs the least flash.
    A layer named in --codebook-bits is never kept."""
    kept, room = set(), INT8_KEEP_SHARE * total
    for name, size in sorted(layers, key=lambda layer: layer[1]):
        if size > room:
            break
        kept.add(name)
        room -= size
    return kept


# ---- report -------------------------------------------------------------------------------------
def layer_report(step, blobs) -> dict | None:
    """report.json 'codebook' of a step with codebook weights (None for the others): bits,
    palettes and their size, flash bytes of indices + palettes against the int8 weights."""
    p = step.params
    if not hasattr(p, "palette_oc"):
        return None
    out_c = getattr(p, "out_c", None) or p.out_features
    depth = getattr(p, "depth", None) or p.in_features
    from ..report import blob_kind

    # the step's weight arrays (indices and palettes; its bias and requantization are int8's)
    flash = sum(blobs[a.ref].nbytes for a in step.args if a.kind == "const" and blob_kind(a.ref) == "weights")
    return {"bits": int(p.bits), "palettes": out_c // p.palette_oc, "palette_entries": 1 << p.bits,
            "palette_channels": int(p.palette_oc), "tile_channels": int(p.tile_oc),
            "flash_bytes": int(flash), "int8_flash_bytes": int(out_c * depth),
            "scratch_bytes": int(step.scratch_bytes), "palette_method": step.note.rpartition("(")[2].rstrip(")")}
