"""Which activation range estimator should tinycc use by default? Measure it.

For each model, every calibration method (minmax, percentile, mse), with and without empirical
bias correction, is compiled to int8 and run on the integer golden model (bit-exact with the
generated C). Reported per configuration:

  agree   top-1 agreement of int8 with float on the evaluation samples (classifiers)
  acc     int8 accuracy against the true labels (digits only; float accuracy in the header)
  SQNR    signal-to-quantization-noise ratio in dB of the network's output, float as the
          signal; for a softmax classifier, of the logits (the softmax input): int8 softmax
          outputs have a fixed 1/256 step that hides differences between methods
  AD err  autoencoder: relative change of the reconstruction error, MSE(int8 out, in) /
          MSE(float out, in) - 1 (the requirement is within 8%)

Models: the four MLPerf Tiny float models with samples.npz's real inputs (../shared; skipped
when absent), the bundled digits example (calibrated on its 200 training images, evaluated on
the 360 held-out test images) and, when torch is installed, two random-weight zoo models
(tests/zoo.py) on Gaussian inputs. The MLPerf Tiny samples are all the real data we have for
those models, so they are calibrated and evaluated on the same samples: their figures are
optimistic for every method alike, which is fine for ranking methods but not as accuracy claims.

Usage: python benchmarks/bench_calibration.py [--models NAME,...] [--no-zoo]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinycc.frontend import load_graph  # noqa: E402
from tinycc.engines import sqnr_db  # noqa: E402
from tinycc.lower import lower, quantize_inputs  # noqa: E402
from tinycc.passes import run_pipeline  # noqa: E402
from tinycc.quant.bias_correction import correct_biases  # noqa: E402
from tinycc.quant.calibrate import METHODS, collect_stats  # noqa: E402
from tinycc.quant.params import dequantize  # noqa: E402
from tinycc.quant.ptq import assign_qparams  # noqa: E402
from tinycc.reference.float_exec import run_float  # noqa: E402
from tinycc.reference.int_exec import run_int8, to_logical  # noqa: E402

MLPERF = ROOT.parent / "shared" / "models" / "mlperf_tiny"
EXAMPLES = ROOT / "examples"
ZOO_MODELS = ("mbv2", "resnet")
ZOO_SAMPLES = 16


@dataclass
class Case:
    name: str
    onnx: Path
    calib: np.ndarray  # (samples, *logical input shape), batch axis included
    evaluate: np.ndarray
    kind: str = "classifier"  # or "autoencoder"
    labels: np.ndarray | None = None
    note: str = ""


@dataclass
class Result:
    case: str
    method: str
    bias_correction: bool
    agree: tuple[int, int] | None = None
    accuracy: float | None = None
    sqnr: float = 0.0
    ad_change: float | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


# ---- the models -------------------------------------------------------------------------------
def mlperf_cases() -> list[Case]:
    if not MLPERF.is_dir():
        print(f"../shared absent: {MLPERF} not found; MLPerf Tiny models skipped", file=sys.stderr)
        return []
    data = np.load(MLPERF / "samples.npz")

    def batched(a):
        return a[:, None]  # one sample per inference, batch axis 1

    ad = batched(data["ad_autoencoder_float"])
    cases = [Case("ic_resnet8", MLPERF / "ic_resnet8_nhwc.onnx", batched(data["ic_resnet8_float"]), None),
             Case("kws_dscnn", MLPERF / "kws_dscnn_nhwc.onnx", batched(data["kws_dscnn_float"]), None),
             Case("vww_mbv1_025", MLPERF / "vww_mobilenetv1_025_nhwc.onnx",
                  batched(data["vww_mobilenetv1_025_float"]), None),
             Case("ad_autoencoder", MLPERF / "ad_autoencoder.onnx", ad, ad, kind="autoencoder")]
    for c in cases:
        c.evaluate = c.calib if c.evaluate is None else c.evaluate
        c.note = "calibrated and evaluated on the same samples"
    return cases


def digits_case() -> list[Case]:
    if not (EXAMPLES / "digits_cnn.onnx").is_file():
        print("examples/digits_cnn.onnx missing (run examples/train_digits.py); digits skipped", file=sys.stderr)
        return []
    test = np.load(EXAMPLES / "digits_test.npz")
    calib = np.load(EXAMPLES / "digits_calib.npy").astype(np.float32)
    return [Case("digits", EXAMPLES / "digits_cnn.onnx", calib[:, None], test["images"][:, None],
                 labels=test["labels"], note="calibrated on 200 training images, evaluated on 360 test images")]


def zoo_cases(workdir: Path) -> list[Case]:
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        import zoo
    except ImportError as exc:
        print(f"zoo models skipped ({exc})", file=sys.stderr)
        return []
    cases = []
    rng = np.random.default_rng(0)
    for name in ZOO_MODELS:
        path = zoo.export(name, "torchscript", workdir)
        _, example = zoo.ZOO[name]()
        shape = tuple(example[0].shape)
        calib = rng.standard_normal((ZOO_SAMPLES,) + shape).astype(np.float32)
        evaluate = rng.standard_normal((ZOO_SAMPLES,) + shape).astype(np.float32)
        cases.append(Case(f"zoo_{name}", path, calib, evaluate,
                          note=f"random weights; {ZOO_SAMPLES} Gaussian calibration inputs, {ZOO_SAMPLES} others"))
    return cases


# ---- measuring ----------------------------------------------------------------------------------
def run_case(case: Case, methods, bias_correction_options) -> list[Result]:
    g = run_pipeline(load_graph(str(case.onnx)))
    (inp,), (out,) = g.inputs, g.outputs
    calib = [{inp: x} for x in case.calib]
    evaluate = [{inp: x} for x in case.evaluate]
    start = time.time()
    stats = collect_stats(g, calib, progress=False)
    stats_s = time.time() - start
    ref = np.stack([run_float(g, s)[out] for s in evaluate]).astype(np.float64)
    probe = _sqnr_tensor(g, out)
    ref_probe = np.stack([_float_value(g, probe, s) for s in evaluate])
    results = []
    for method in methods:
        base = assign_qparams(g, stats, method)
        for bc in bias_correction_options:
            start = time.time()
            q = correct_biases(g, base, calib) if bc else base
            program = lower(q, g.name)
            got, got_probe = (np.stack(v) for v in zip(*(_int8_values(program, out, probe, s) for s in evaluate)))
            r = Result(case.name, method, bc, sqnr=sqnr_db(ref_probe, got_probe),
                       seconds=stats_s + time.time() - start)
            if case.kind == "classifier":
                r.agree = (int(np.sum(ref.reshape(len(ref), -1).argmax(1) == got.reshape(len(got), -1).argmax(1))),
                           len(ref))
                if case.labels is not None:
                    r.accuracy = float(np.mean(got.reshape(len(got), -1).argmax(1) == case.labels))
                    r.extra["float_accuracy"] = float(np.mean(ref.reshape(len(ref), -1).argmax(1) == case.labels))
            else:
                x = case.evaluate.reshape(ref.shape).astype(np.float64)
                mse_float = np.mean((ref - x) ** 2)
                r.ad_change = float(np.mean((got - x) ** 2) / mse_float - 1.0)
            results.append(r)
    return results


def _sqnr_tensor(g, out: str) -> str:
    """The logits when `out` is a softmax output, else `out`."""
    producer = g.producer(out)
    return producer.inputs[0] if producer is not None and producer.op == "Softmax" else out


def _float_value(g, name: str, sample: dict) -> np.ndarray:
    """`name`'s float value on `sample`, in the physical layout."""
    values = {}
    run_float(g, sample, observe=lambda t, v: values.__setitem__(t, v) if t == name else None)
    return np.asarray(values[name], dtype=np.float64).reshape(-1)


def _int8_values(program, out: str, probe: str, sample: dict) -> tuple[np.ndarray, np.ndarray]:
    """Dequantized int8 output (logical layout) and probe tensor (physical layout)."""
    stored = probe
    while stored in program.views:  # a reshape that the program computes as a view of its input
        stored = program.views[stored]
    seen = {}
    raw = run_int8(program, quantize_inputs(program, sample),
                   observe=lambda t, v: seen.__setitem__(t, v) if t == stored else None)[out]
    value = dequantize(to_logical(program, out, raw), program.tensors[out].quant).astype(np.float64)
    probe_raw = raw if stored == out else seen[stored]
    return value, dequantize(probe_raw, program.tensors[stored].quant).astype(np.float64).reshape(-1)


# ---- reporting ----------------------------------------------------------------------------------
def format_table(results: list[Result]) -> str:
    lines = [f"{'model':<16} {'method':<11} {'BC':<3} {'agree':>7} {'acc':>7} {'SQNR dB':>8} {'AD err':>8} {'s':>6}",
             "-" * 74]
    for r in results:
        agree = f"{r.agree[0]}/{r.agree[1]}" if r.agree else "-"
        acc = f"{100 * r.accuracy:.2f}" if r.accuracy is not None else "-"
        ad = f"{100 * r.ad_change:+.2f}%" if r.ad_change is not None else "-"
        lines.append(f"{r.case:<16} {r.method:<11} {'on' if r.bias_correction else 'off':<3} {agree:>7} {acc:>7} "
                     f"{r.sqnr:>8.2f} {ad:>8} {r.seconds:>6.1f}")
    return "\n".join(lines)


def summary(results: list[Result]) -> str:
    """Mean SQNR and total agreement per configuration, over all models."""
    configs = sorted({(r.method, r.bias_correction) for r in results}, key=lambda c: (METHODS.index(c[0]), c[1]))
    lines = [f"{'method':<11} {'BC':<3} {'mean SQNR dB':>12} {'min SQNR dB':>11} {'agree':>9} {'worst AD err':>12}",
             "-" * 64]
    for method, bc in configs:
        rs = [r for r in results if r.method == method and r.bias_correction == bc]
        agree = [r.agree for r in rs if r.agree]
        ad = [r.ad_change for r in rs if r.ad_change is not None]
        lines.append(f"{method:<11} {'on' if bc else 'off':<3} {np.mean([r.sqnr for r in rs]):>12.2f} "
                     f"{min(r.sqnr for r in rs):>11.2f} "
                     f"{sum(a[0] for a in agree):>4}/{sum(a[1] for a in agree):<4} "
                     f"{(f'{100 * max(ad, key=abs):+.2f}%' if ad else '-'):>12}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated subset of model names")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--no-zoo", action="store_true", help="leave out the random-weight zoo models")
    parser.add_argument("--no-bias-correction", action="store_true", help="only measure without bias correction")
    args = parser.parse_args(argv)
    methods = args.methods.split(",")
    bc_options = (False,) if args.no_bias_correction else (False, True)
    with tempfile.TemporaryDirectory(prefix="bench_calib_") as tmp:
        cases = mlperf_cases() + digits_case() + ([] if args.no_zoo else zoo_cases(Path(tmp)))
        if args.models:
            wanted = set(args.models.split(","))
            cases = [c for c in cases if c.name in wanted]
        results = []
        for case in cases:
            print(f"{case.name}: {case.note}", flush=True)
            case_results = run_case(case, methods, bc_options)
            if "float_accuracy" in case_results[0].extra:
                print(f"  float accuracy {100 * case_results[0].extra['float_accuracy']:.2f}%")
            results += case_results
    print()
    print(format_table(results))
    print()
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
