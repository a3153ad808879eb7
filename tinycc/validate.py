"""tinycc validate: a whole data set through the float, int8 (golden), C and QEMU engines.

The model is quantized and lowered once (engines.CompiledModel); the C engine loads the
generated model as a shared library and runs every sample in this process. Reported, over the
data set: accuracy against labels per engine, top-1 agreement between engines, error statistics
of each quantized engine's outputs against float (X-CUBE-AI's metrics, in dequantized units),
how many samples the C (and QEMU) outputs equal the golden model's bit for bit (all of them, or
tinycc has a bug), and per layer the SQNR of int8 against float (what `run --compare float,int8`
shows for one sample), pointing at the layer where int8 diverges most.

The result is a plain dict (JSON-ready: an infinite SQNR, i.e. no error, is null);
render_markdown() turns it into the tables the command prints.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .errors import BadInput

ENGINES = ("float", "int8", "c", "qemu")
DEFAULT_ENGINES = ("float", "int8", "c")
QUANTIZED = ("int8", "c", "qemu")


# ---- the data set -------------------------------------------------------------------------------
def parse_engines(text: str | Sequence[str]) -> list[str]:
    """'float,int8,c' -> ['float', 'int8', 'c'] (in the canonical order; c and qemu bring the
    golden model, int8, which they are checked against)."""
    names = [e.strip() for e in (text.split(",") if isinstance(text, str) else text) if e.strip()]
    unknown = [e for e in names if e not in ENGINES]
    if unknown or not names:
        raise BadInput(f"--engines takes a comma-separated list from {', '.join(ENGINES)} (got {text!r})")
    if any(e in ("c", "qemu") for e in names):
        names.append("int8")
    return [e for e in ENGINES if e in names]


def class_ids(labels, count: int, what: str) -> np.ndarray:
    """Labels as one class index per sample: (N,) integers, or (N, C) one-hot/scores (argmax)."""
    v = np.asarray(labels)
    if v.ndim == 2 and v.shape[1] > 1:
        v = v.argmax(axis=1)
    elif v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1 or not (np.issubdtype(v.dtype, np.integer) or np.issubdtype(v.dtype, np.bool_)
                           or (np.issubdtype(v.dtype, np.floating) and np.all(np.mod(v, 1) == 0))):
        raise BadInput(f"{what}: labels must be class indices, shape (N,), or one-hot rows, shape (N, C); "
                       f"got shape {v.shape} dtype {v.dtype}")
    if len(v) != count:
        raise BadInput(f"{what}: {len(v)} labels for {count} samples")
    return v.astype(np.int64)


def load_data(path: str | Path, g, labels: str | None = None) -> tuple[list[dict[str, np.ndarray]], np.ndarray | None]:
    """A data set file -> (samples, class ids or None).

    `path`: .npy (one-input model) or .npz keyed by input name, with a leading sample axis (or N
    in place of a batch dimension of 1); an .npz holding one array besides the labels feeds a
    one-input model whatever its key. `labels`: the key of the labels in the .npz, or a .npy
    file of them."""
    from .arrays import check_values, load_arrays, split_samples
    from .compiler import logical_input_shapes

    what = f"data file {str(path)!r}"
    ignore = ()
    label_values = None
    if labels is not None:
        if labels.endswith(".npy") and Path(labels).is_file():
            label_values = np.load(labels, allow_pickle=False)
        else:
            label_values = _npz_array(path, labels, what)
            ignore = (labels,)
    arrays = load_arrays(path, g.inputs, "data file", select=True, ignore=ignore)
    check_values(arrays, what, finite=True)
    shapes = logical_input_shapes(g)
    samples, _ = split_samples(arrays, shapes, what)
    ids = class_ids(label_values, len(samples), what) if label_values is not None else None
    return samples, ids


def _npz_array(path: str | Path, key: str, what: str) -> np.ndarray:
    from .arrays import open_array_file

    data = open_array_file(path, what)
    if isinstance(data, np.ndarray):
        raise BadInput(f"--labels {key!r}: {what} holds one array; give the data as an .npz with the labels "
                       f"under that key, or --labels LABELS.npy")
    if key not in data.files:
        raise BadInput(f"--labels {key!r}: {what} has no such array (has {data.files})")
    return data[key]


# ---- statistics over the data set ---------------------------------------------------------------
class ErrorStats:
    """X-CUBE-AI's output metrics of `test` against the float reference, over many samples:
    max and mean absolute error, L2 relative error ||test - ref|| / ||ref||, cosine similarity."""

    def __init__(self):
        self.count = 0
        self.max_abs = 0.0
        self.sum_abs = self.sum_sq_err = self.sum_ref_sq = self.sum_test_sq = self.sum_dot = 0.0

    def add(self, ref: np.ndarray, test: np.ndarray) -> None:
        r = np.asarray(ref, np.float64).reshape(-1)
        t = np.asarray(test, np.float64).reshape(-1)
        d = t - r
        self.count += r.size
        if r.size:
            self.max_abs = max(self.max_abs, float(np.max(np.abs(d))))
        self.sum_abs += float(np.sum(np.abs(d)))
        self.sum_sq_err += float(d @ d)
        self.sum_ref_sq += float(r @ r)
        self.sum_test_sq += float(t @ t)
        self.sum_dot += float(r @ t)

    def as_dict(self) -> dict:
        norms = math.sqrt(self.sum_ref_sq * self.sum_test_sq)
        return {
            "max_abs": self.max_abs,
            "mean_abs": self.sum_abs / self.count if self.count else 0.0,
            "l2_relative": _finite(math.sqrt(self.sum_sq_err / self.sum_ref_sq) if self.sum_ref_sq
                                   else (0.0 if self.sum_sq_err == 0 else math.inf)),
            "cosine": self.sum_dot / norms if norms else (1.0 if self.sum_sq_err == 0 else 0.0),
        }


class LayerStats:
    """SQNR of a layer's int8 output against float over the data set: 10 log10(sum ref^2 /
    sum (ref - int8)^2), the formula of engines.sqnr_db applied to every sample at once."""

    def __init__(self):
        self.signal = self.noise = self.max_abs = 0.0

    def add(self, ref: np.ndarray, test: np.ndarray) -> None:
        d = test - ref
        self.signal += float(ref @ ref)
        self.noise += float(d @ d)
        if d.size:
            self.max_abs = max(self.max_abs, float(np.max(np.abs(d))))

    def sqnr_db(self) -> float:
        if self.noise == 0:
            return math.inf
        return 10 * math.log10(self.signal / self.noise) if self.signal > 0 else -math.inf


def _finite(x: float) -> float | None:
    """JSON has no infinity: an infinite figure (no error at all) is null."""
    return x if math.isfinite(x) else None


def top1(outputs: Mapping[str, np.ndarray], name: str) -> int:
    return int(np.argmax(np.asarray(outputs[name]).reshape(-1)))


# ---- progress -----------------------------------------------------------------------------------
class Progress:
    """A one-line progress bar on stderr, shown only when stderr is a terminal."""

    def __init__(self, total: int, enabled: bool | None = None, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total, self.width, self.start = total, width, time.time()

    def update(self, done: int, what: str = "") -> None:
        if not self.enabled:
            return
        filled = self.width * done // max(self.total, 1)
        self.stream.write(f"\rvalidate [{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} "
                          f"{what:<10} {time.time() - self.start:5.1f} s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# ---- the run ------------------------------------------------------------------------------------
def validate(model, samples: Sequence[Mapping[str, np.ndarray]], labels: np.ndarray | None = None,
             engines: Sequence[str] = DEFAULT_ENGINES, target: str = "cortex-m4", source: str = "",
             progress: bool | None = None) -> dict:
    """Run `samples` (input name -> array of the model's input shape) through `engines` of a
    compiled model (engines.CompiledModel) and measure them; see the module docstring. `labels`:
    one class index per sample. Returns the result dict (render_markdown prints it)."""
    from .engines import run_with_layers

    engines = parse_engines(engines)
    if not samples:
        raise BadInput("the data set holds no samples")
    if labels is not None:
        labels = class_ids(labels, len(samples), "labels")
    g, program = model.graph, model.program
    if "qemu" in engines:
        from .target import runnable_core

        runnable_core(target)
    first = g.outputs[0]
    predictions = {e: [] for e in engines}
    errors = {name: {e: ErrorStats() for e in engines if e in QUANTIZED} for name in g.outputs}
    identical = {e: 0 for e in engines if e in ("c", "qemu")}
    layers = {}
    seconds = {e: 0.0 for e in engines}
    bar = Progress(len(samples), progress)
    for i, sample in enumerate(samples):
        bar.update(i, "")
        outs = {}
        if "float" in engines:
            t = time.time()
            outs["float"], float_layers = run_with_layers(model, sample, "float")
            seconds["float"] += time.time() - t
        t = time.time()
        golden, int8_layers = run_with_layers(model, sample, "int8")
        seconds["int8"] += time.time() - t
        raw = {"int8": golden}
        if "c" in engines:
            t = time.time()
            raw["c"] = model.run_c_samples([sample])[0]
            seconds["c"] += time.time() - t
        if "qemu" in engines:
            t = time.time()
            raw["qemu"] = model.run_qemu(sample, target, count=False)[0]
            seconds["qemu"] += time.time() - t
        for e, r in raw.items():
            outs[e] = {k: model.logical(k, v, dequantize=True) for k, v in r.items()}
            if e != "int8":
                identical[e] += all(np.array_equal(r[k], golden[k]) for k in golden)
        for e in engines:
            predictions[e].append(top1(outs[e], first))
        if "float" in engines:
            for name in g.outputs:
                for e, stats in errors[name].items():
                    stats.add(outs["float"][name], outs[e][name])
            from .engines import comparable_layers

            for k, step, ref, test in comparable_layers(model, float_layers, int8_layers):
                layers.setdefault(k, LayerStats()).add(ref, test)
    bar.update(len(samples), "done")
    bar.close()
    return _result(model, source, engines, predictions, labels, errors, identical, layers, seconds, first)


def _result(model, source, engines, predictions, labels, errors, identical, layers, seconds, first) -> dict:
    from .inspect import safe_text

    n = len(predictions[engines[0]])
    pred = {e: np.array(p) for e, p in predictions.items()}
    layer_rows = []
    for k in sorted(layers):
        step = model.program.steps[k]
        layer_rows.append({"step": k, "name": safe_text(step.onnx_name or step.node, 80), "op": step.op,
                           "sqnr_db": _finite(layers[k].sqnr_db()), "max_abs": layers[k].max_abs})
    worst = min(layer_rows, key=lambda r: math.inf if r["sqnr_db"] is None else r["sqnr_db"], default=None)
    return {
        "model": source,
        "quant": model.program.quant_scheme,
        "samples": n,
        "engines": list(engines),
        "top1_output": first,
        "accuracy": {e: float(np.mean(pred[e] == labels)) for e in engines} if labels is not None else None,
        "agreement": [{"engines": [a, b], "agree": int(np.sum(pred[a] == pred[b])), "samples": n}
                      for i, a in enumerate(engines) for b in engines[i + 1:]],
        "errors": {name: {e: s.as_dict() for e, s in per.items()} for name, per in errors.items()}
        if "float" in engines else None,
        "bit_exact": {e: {"identical": k, "samples": n} for e, k in identical.items()},
        "layers": layer_rows if "float" in engines else None,
        "worst_layer": worst if "float" in engines else None,
        "seconds": {e: round(s, 3) for e, s in seconds.items()},
    }


def mismatches(result: dict) -> list[str]:
    """Engines whose outputs differ from the golden model on some sample (a tinycc bug)."""
    return [e for e, r in result["bit_exact"].items() if r["identical"] != r["samples"]]


# ---- markdown -----------------------------------------------------------------------------------
def _fmt(x: float | None, digits: int = 4) -> str:
    return "exact" if x is None else f"{x:.{digits}g}"


def render_markdown(r: dict) -> str:
    from .report import markdown_text

    n = r["samples"]
    lines = [f"## tinycc validate: {markdown_text(r['model'] or 'model', 60)}", "",
             f"{n} samples, {r['quant']}, engines {', '.join(r['engines'])}; top-1 = argmax of output "
             f"`{markdown_text(r['top1_output'])}`.", ""]
    acc = r["accuracy"]
    lines += ["| engine | accuracy | seconds |", "|---|---:|---:|"]
    for e in r["engines"]:
        a = f"{100 * acc[e]:.2f} %" if acc is not None else "(no labels)"
        lines.append(f"| {e} | {a} | {r['seconds'][e]:.2f} |")
    if r["agreement"]:
        lines += ["", "| engines | top-1 agreement |", "|---|---:|"]
        for p in r["agreement"]:
            lines.append(f"| {p['engines'][0]} / {p['engines'][1]} | {p['agree']}/{p['samples']} "
                         f"({100 * p['agree'] / p['samples']:.2f} %) |")
    if r["errors"]:
        lines += ["", "Outputs against float, dequantized (X-CUBE-AI's metrics):", "",
                  "| output | engine | max abs | mean abs | L2 relative | cosine |", "|---|---|---:|---:|---:|---:|"]
        for name, per in r["errors"].items():
            for e, s in per.items():
                lines.append(f"| {markdown_text(name)} | {e} | {s['max_abs']:.4g} | {s['mean_abs']:.4g} | "
                             f"{_fmt(s['l2_relative'])} | {s['cosine']:.6f} |")
    for e, b in r["bit_exact"].items():
        what = "generated C (host)" if e == "c" else "generated C under QEMU"
        ok = "yes" if b["identical"] == b["samples"] else "NO: a tinycc bug, please report it"
        lines += ["", f"{what} == int8 golden bit for bit: {b['identical']}/{b['samples']} samples ({ok})"]
    if r["layers"]:
        worst = r["worst_layer"]
        lines += ["", "Per layer, int8 golden against float over the data set:", "",
                  "| # | layer | op | SQNR dB | max abs err |", "|---:|---|---|---:|---:|"]
        for row in r["layers"]:
            mark = " **worst**" if row is worst else ""
            lines.append(f"| {row['step']} | {markdown_text(row['name'], 60)} | {row['op']} | "
                         f"{_fmt(row['sqnr_db'], 4)}{mark} | {row['max_abs']:.4g} |")
        if worst is not None:
            lines += ["", f"int8 diverges most from float at step {worst['step']} ({worst['op']} "
                          f"{markdown_text(worst['name'], 60)!r}): SQNR {_fmt(worst['sqnr_db'])} dB."]
    return "\n".join(lines) + "\n"
