"""Calibration: run the float graph on sample inputs and estimate each activation's range.

Methods: "minmax" (TFLite's default), "percentile" (clip to the 0.01 / 99.99 percentiles of the
observed values) and "mse" (the clipping range that minimises the int8 quantization error of
the observed values). Values are kept as a bounded random subsample per tensor. Whatever the
method, the inputs of fixed-scale ops (softmax logits) get min/max: see range_methods.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..arrays import check_values, load_arrays
from ..errors import BadInput
from ..ir import Graph
from ..reference.float_exec import run_float

METHODS = ("minmax", "percentile", "mse")
# Chosen by measurement: `python benchmarks/bench_calibration.py` (int8 golden vs float on the 4
# MLPerf Tiny models with samples.npz, calibrated and evaluated on those same samples; the digits
# example on its 360 held-out images; 2 random-weight zoo models on Gaussian inputs). Output
# (logit) SQNR over the 7 models, mean / worst, and top-1 agreement with float:
#   minmax      31.2 / 22.7 dB  411/413   (+ bias correction: 33.4 / 28.1 dB  412/413)
#   percentile  29.4 / 20.3 dB  410/413   (+ bias correction: 31.7 / 24.6 dB  411/413)
#   mse         30.6 / 21.8 dB  412/413   (+ bias correction: 33.5 / 27.8 dB  412/413)
# min/max is best or within 0.8 dB on every model; clipping hurts these small networks more than
# coarser steps do (percentile loses a top-1 on ic_resnet8). AD reconstruction error: +1.8% to
# +2.4% over float with every method (limit 8%).
DEFAULT_METHOD = "minmax"
RESERVOIR = 1 << 16
SYNTHETIC_SAMPLES = 16


class TensorStats:
    def __init__(self, rng: np.random.Generator):
        self.min = np.inf
        self.max = -np.inf
        self.values: list[np.ndarray] = []
        self.count = 0
        self.rng = rng
        # element-wise sums over the samples (the tensor's physical shape): the codebook
        # quantizer weighs each weight by the mean square of the input it multiplies and
        # corrects the bias by the mean (quant/codebook.py input_moments)
        self.sum: np.ndarray | None = None
        self.sum_sq: np.ndarray | None = None
        self.samples = 0

    def observe(self, x: np.ndarray) -> None:
        self._accumulate_moments(np.asarray(x, dtype=np.float32))
        x = np.asarray(x, dtype=np.float32).ravel()
        if x.size == 0:
            return
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))
        take = min(x.size, RESERVOIR // 4)
        self.values.append(x if take == x.size else self.rng.choice(x, take, replace=False))
        self.count += 1
        if sum(v.size for v in self.values) > 2 * RESERVOIR:
            pool = np.concatenate(self.values)
            self.values = [self.rng.choice(pool, RESERVOIR, replace=False)]

    def _accumulate_moments(self, x: np.ndarray) -> None:
        if self.sum is not None and self.sum.shape != x.shape:  # a shape that varies: no moments
            self.samples = -1
        if self.samples < 0:
            return
        x64 = x.astype(np.float64)
        self.sum = x64 if self.sum is None else self.sum + x64
        self.sum_sq = x64 * x64 if self.sum_sq is None else self.sum_sq + x64 * x64
        self.samples += 1

    def moments(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(mean, mean square) of every element over the observed samples, in the tensor's
        physical shape; None if nothing (or values of varying shapes) was observed."""
        if self.samples <= 0:
            return None
        return self.sum / self.samples, self.sum_sq / self.samples

    def range(self, method: str) -> tuple[float, float]:
        if method == "minmax" or not self.values:
            return self.min, self.max
        v = np.concatenate(self.values)
        if method == "percentile":
            lo, hi = np.percentile(v, [0.01, 99.99])
            return float(min(lo, 0.0)), float(max(hi, 0.0))
        if method == "mse":
            return mse_range(v, self.min, self.max)
        raise ValueError(method)


def range_methods(g: Graph, method: str) -> dict[str, str]:
    """The range estimator for each activation: `method`, except min/max for the inputs of ops
    with a fixed output scale (softmax, sigmoid, tanh), also through data movement
    (same_as_input ops) in between: clipping a softmax's logits changes its probabilities,
    and their resolution matters less (quantization.md §5.2, step 4).

    Min/max for the graph inputs too was measured (benchmarks/bench_calibration.py) and left
    out: no change on real data (bounded inputs: clipping hardly moves their range), and 1.6 dB
    worse output SQNR with mse on a zoo model fed Gaussian inputs.
    """
    from ..ops.registry import OPS

    methods = {}
    for node in reversed(g.nodes):
        rule = OPS[node.op].int8_output(g, node)
        feeds_fixed = isinstance(rule, tuple) or (rule == "same_as_input" and any(
            methods.get(t) == "minmax" for t in node.outputs))
        if feeds_fixed and node.inputs and node.inputs[0]:
            methods[node.inputs[0]] = "minmax"
    return {name: methods.get(name, method) for name, t in g.tensors.items() if not t.is_const}


def mse_range(v: np.ndarray, vmin: float, vmax: float, steps: int = 48) -> tuple[float, float]:
    """Shrink [min, max] toward 0 by a common factor; keep the factor with the least int8 MSE."""
    from .params import choose_qparams

    vmin, vmax = min(vmin, 0.0), max(vmax, 0.0)
    best, best_err = (vmin, vmax), np.inf
    for f in np.linspace(1.0, 0.3, steps):
        lo, hi = vmin * f, vmax * f
        qp = choose_qparams(lo, hi)
        s, zp = float(qp.scale), int(qp.zero_point)
        q = np.clip(np.round(v / s) + zp, -128, 127)
        err = float(np.mean(((q - zp) * s - v) ** 2))
        if err < best_err:
            best, best_err = (lo, hi), err
    return best


def load_calibration(path: str | Path, g: Graph, logical_shapes: Mapping[str, tuple]) -> list[dict[str, np.ndarray]]:
    """Samples from .npy (leading sample axis, one-input models) or .npz keyed by input name."""
    p = Path(path)
    arrays = load_arrays(p, g.inputs, "calibration file", select=True)
    check_values(arrays, f"calibration file {str(p)!r}", finite=True)
    samples = None
    for name, arr in arrays.items():
        want = tuple(logical_shapes[name])
        if arr.ndim == len(want) + 1 and arr.shape[1:] == want:  # (samples,) + shape
            n = arr.shape[0]
        elif want and want[0] == 1 and arr.ndim == len(want) and arr.shape[1:] == want[1:]:  # samples as batch
            n = arr.shape[0]
            arr = arr.reshape((n,) + want)
        else:
            raise BadInput(f"calibration data for {name!r} has shape {arr.shape}; expected (samples,) + {want}")
        samples = n if samples is None else min(samples, n)
        arrays[name] = arr.astype(np.float32)
    if not samples:
        raise BadInput(f"calibration file {str(p)!r} holds no samples")
    return [{name: arrays[name][i] for name in g.inputs} for i in range(samples)]


def synthetic_samples(g: Graph, logical_shapes: Mapping[str, tuple], count: int = SYNTHETIC_SAMPLES,
                      seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{n: rng.standard_normal(logical_shapes[n]).astype(np.float32) for n in g.inputs} for _ in range(count)]


def collect_stats(g: Graph, samples: Iterable[Mapping[str, np.ndarray]], progress: bool = True) -> dict[str, TensorStats]:
    rng = np.random.default_rng(1234)
    stats: dict[str, TensorStats] = {}

    def observe(name, value):
        stats.setdefault(name, TensorStats(rng)).observe(value)

    samples = list(samples)
    step = max(1, len(samples) // 10)
    for i, s in enumerate(samples):
        for name in g.inputs:
            v = np.asarray(s[name], dtype=np.float32)
            perm = g.tensors[name].perm
            observe(name, v if perm is None else v.transpose(perm))
        run_float(g, s, observe=observe)
        if progress and len(samples) >= 50 and (i + 1) % step == 0:
            print(f"tinycc: calibrating {i + 1}/{len(samples)} samples", file=sys.stderr, flush=True)
    return stats
