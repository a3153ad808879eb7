"""tinycc validate: a data set through the float, int8, C (and QEMU) engines.

Checked against independent oracles where there are some: onnxruntime for the float accuracy,
the TFLite Micro outputs recorded in samples.npz for the QDQ MLPerf models, numpy formulas for
the error metrics, and `run --compare float,int8` for the per-layer SQNR of one sample.
"""
from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from tinycc.cli import main
from tinycc.validate import ErrorStats, LayerStats, Progress, parse_engines

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits_cnn.onnx"
CALIB = ROOT / "examples" / "digits_calib.npy"
TEST = ROOT / "examples" / "digits_test.npz"
MLPERF = ROOT.parent / "shared" / "models" / "mlperf_tiny"
N = 40  # digits samples per test: enough for a meaningful accuracy, fast


def validate_cli(capsys, *args):
    rc = main(["validate", str(DIGITS), "--calib", str(CALIB), *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def digits_result(tmp_path_factory):
    """`tinycc validate` on the first N test digits: (exit code, stdout, JSON result, md file)."""
    import contextlib

    tmp = tmp_path_factory.mktemp("validate")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(["validate", str(DIGITS), "--calib", str(CALIB), "--data", str(TEST), "--labels", "labels",
                   "--limit", str(N), "--json", str(tmp / "v.json"), "--md", str(tmp / "v.md")])
    return rc, stdout.getvalue(), json.loads((tmp / "v.json").read_text()), (tmp / "v.md").read_text()


def test_digits_tables_and_files(digits_result):
    rc, out, result, md = digits_result
    assert rc == 0
    assert md == out
    assert result["samples"] == N and result["engines"] == ["float", "int8", "c"]
    for heading in ("| engine | accuracy |", "| engines | top-1 agreement |", "| output | engine | max abs |",
                    "== int8 golden bit for bit: 40/40", "| # | layer | op | SQNR dB |", "diverges most"):
        assert heading in out
    assert result["bit_exact"] == {"c": {"identical": N, "samples": N}}


def test_float_accuracy_matches_onnxruntime(digits_result):
    ort = pytest.importorskip("onnxruntime")
    data = np.load(TEST)
    images, labels = data["images"][:N], data["labels"][:N]
    session = ort.InferenceSession(str(DIGITS), providers=["CPUExecutionProvider"])
    predictions = [int(session.run(None, {"image": x[None]})[0].argmax()) for x in images]
    assert digits_result[2]["accuracy"]["float"] == pytest.approx(np.mean(np.array(predictions) == labels))


def test_quantized_accuracy_and_agreement_are_those_of_the_engines(digits_result):
    """Accuracy and pairwise top-1 agreement equal what `run` gives per engine on the same data."""
    import tinycc

    result = digits_result[2]
    data = np.load(TEST)
    images, labels = data["images"][:N], data["labels"][:N]
    m = tinycc.compile(DIGITS, calib=CALIB)
    pred = {e: m.run(images, engine=e, dequantize=True)["probs"].argmax(-1) for e in ("float", "int8", "c")}
    for e in pred:
        assert result["accuracy"][e] == pytest.approx(np.mean(pred[e] == labels))
    for pair in result["agreement"]:
        a, b = pair["engines"]
        assert pair["agree"] == int(np.sum(pred[a] == pred[b])) and pair["samples"] == N
    assert 0.9 <= result["accuracy"]["int8"] <= 1.0


def test_worst_layer_is_the_lowest_sqnr(digits_result):
    result = digits_result[2]
    finite = [r for r in result["layers"] if r["sqnr_db"] is not None]
    assert result["worst_layer"] == min(finite, key=lambda r: r["sqnr_db"])
    assert len(result["layers"]) >= 8  # every layer of the digits CNN is compared


def test_one_sample_layer_sqnr_equals_run_compare(tmp_path, capsys):
    """Over a data set of one sample the per-layer SQNR is exactly `run --compare float,int8`'s."""
    x = np.load(TEST)["images"][:1]
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(DIGITS), "--calib", str(CALIB), "--input", str(tmp_path / "x.npy"),
                 "--compare", "float,int8"]) == 0
    compare = {int(m.group(1)): float(m.group(2))
               for m in re.finditer(r"^\s*(\d+)\s+\S+\s+\S+\s+(-?[\d.]+|inf)\s", capsys.readouterr().out, re.M)}
    rc, _, _ = validate_cli(capsys, "--data", tmp_path / "x.npy", "--engines", "float,int8",
                            "--json", tmp_path / "v.json")
    assert rc == 0
    layers = json.loads((tmp_path / "v.json").read_text())["layers"]
    assert len(compare) == len(layers) > 5
    for row in layers:
        assert row["sqnr_db"] == pytest.approx(compare[row["step"]], abs=0.006)


def test_error_metrics_are_x_cube_ai_formulas():
    """Accumulated over samples, the metrics equal the formulas over the whole data set at once."""
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(7, 13))
    test = ref + rng.normal(scale=0.1, size=ref.shape)
    stats = ErrorStats()
    for r, t in zip(ref, test):
        stats.add(r, t)
    d = test - ref
    got = stats.as_dict()
    assert got["max_abs"] == pytest.approx(np.max(np.abs(d)))
    assert got["mean_abs"] == pytest.approx(np.mean(np.abs(d)))
    assert got["l2_relative"] == pytest.approx(np.linalg.norm(d) / np.linalg.norm(ref))
    assert got["cosine"] == pytest.approx(np.sum(ref * test) / (np.linalg.norm(ref) * np.linalg.norm(test)))
    layer = LayerStats()
    for r, t in zip(ref, test):
        layer.add(r, t)
    assert layer.sqnr_db() == pytest.approx(10 * math.log10(np.sum(ref ** 2) / np.sum(d ** 2)))
    exact = ErrorStats()
    exact.add(ref, ref)
    assert exact.as_dict() == {"max_abs": 0.0, "mean_abs": 0.0, "l2_relative": 0.0, "cosine": pytest.approx(1.0)}


def test_c_differing_from_golden_is_reported_and_exit_70(monkeypatch, tmp_path, capsys):
    from tinycc.engines import CompiledModel

    original = CompiledModel.run_c_samples

    def off_by_one_on_the_second_sample(self, samples):
        outs = original(self, samples)
        if self._calls == 1:
            for v in outs[0].values():
                v.reshape(-1)[0] ^= 1
        self._calls += 1
        return outs

    monkeypatch.setattr(CompiledModel, "_calls", 0, raising=False)
    monkeypatch.setattr(CompiledModel, "run_c_samples", off_by_one_on_the_second_sample)
    rc, out, err = validate_cli(capsys, "--data", TEST, "--labels", "labels", "--limit", 3, "--engines", "int8,c")
    assert rc == 70
    assert "bit for bit: 2/3 samples (NO" in out
    assert "differs from the int8 golden model" in err


@pytest.mark.parametrize("data, labels, message", [
    (np.zeros((5, 1, 8, 7), np.float32), None, r"has shape \(5, 1, 8, 7\); the model expects \(1, 1, 8, 8\)"),
    (np.zeros((5, 1, 8, 8), np.float32), "nolabels", "--labels 'nolabels'"),
    (np.zeros((5, 1, 8, 8), np.float32), "labels3", "3 labels for 5 samples"),
    (np.full((2, 1, 8, 8), np.nan, np.float32), None, "NaN"),
])
def test_bad_data_is_exit_2_with_the_shapes(tmp_path, capsys, data, labels, message):
    np.savez(tmp_path / "d.npz", image=data, labels3=np.arange(3))
    args = ["--data", tmp_path / "d.npz"] + (["--labels", labels] if labels else [])
    rc, out, err = validate_cli(capsys, *args)
    assert rc == 2 and re.search(message, err), err
    assert "Traceback" not in err and out == ""


def test_bad_options_are_exit_2(tmp_path, capsys):
    for args, message in ([("--engines", "float,tpu"), "--engines takes"],
                          [("--limit", "0"), "--limit 0"],
                          [("--target", "cortex-m4"), "goes with the qemu engine"],
                          [("--json", tmp_path / "missing" / "v.json"), "does not exist"]):
        rc, _, err = validate_cli(capsys, "--data", TEST, "--labels", "labels", *args)
        assert rc == 2 and message in err, err


def test_parse_engines_brings_the_golden_model():
    assert parse_engines("c,float") == ["float", "int8", "c"]
    assert parse_engines(["qemu"]) == ["int8", "qemu"]


def test_progress_bar_only_on_a_terminal():
    quiet = io.StringIO()
    bar = Progress(4, stream=quiet)  # a StringIO is not a tty
    bar.update(2)
    bar.close()
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    bar = Progress(4, enabled=True, stream=shown)
    bar.update(2, "c")
    bar.update(4, "done")
    bar.close()
    assert "\rvalidate [" in shown.getvalue() and "2/4" in shown.getvalue() and shown.getvalue().endswith("\n")


def test_run_batch_on_c_engine_equals_golden(tmp_path, capsys):
    """A batch on the C engine runs in one process (shared library): same outputs as int8."""
    np.save(tmp_path / "x.npy", np.load(TEST)["images"][:6])
    outs = {}
    for engine in ("int8", "c"):
        assert main(["run", str(DIGITS), "--calib", str(CALIB), "--input", str(tmp_path / "x.npy"),
                     "--engine", engine, "-o", str(tmp_path / f"{engine}.npy")]) == 0
        outs[engine] = np.load(tmp_path / f"{engine}.npy")
    assert outs["c"].shape == (6, 10) and np.array_equal(outs["c"], outs["int8"])
    assert len({row.tobytes() for row in outs["c"]}) > 1  # each sample really ran on its own input


def test_qemu_engine_equals_golden(tmp_path, capsys):
    from tinycc.sim.qemu import missing_tools

    why = missing_tools()
    if why:
        pytest.skip(why)
    rc, out, _ = validate_cli(capsys, "--data", TEST, "--labels", "labels", "--limit", 2,
                              "--engines", "int8,qemu", "--json", tmp_path / "v.json")
    assert rc == 0
    assert json.loads((tmp_path / "v.json").read_text())["bit_exact"] == {"qemu": {"identical": 2, "samples": 2}}
    assert "generated C under QEMU == int8 golden bit for bit: 2/2" in out


MLPERF_MODELS = ["ic_resnet8", "vww_mobilenetv1_025", "kws_dscnn", "ad_autoencoder"]


@pytest.mark.parametrize("name", MLPERF_MODELS)
def test_mlperf_qdq_models_reproduce_tflm(name, tmp_path, capsys):
    """On the QDQ MLPerf Tiny models, labels = the argmax of TFLite Micro's recorded outputs: the
    int8 and C engines are bit-exact with TFLM, so their accuracy is 100 %."""
    if not (MLPERF / "samples.npz").is_file():
        pytest.skip(f"needs the MLPerf Tiny models in {MLPERF} (../shared); absent")
    import onnx

    samples = np.load(MLPERF / "samples.npz")
    model = MLPERF / f"{name}_qdq.onnx"
    x, tflm = samples[f"{name}_int8"][:3], samples[f"{name}_tflm_out"][:3]
    (input_name,) = [i.name for i in onnx.load(str(model), load_external_data=False).graph.input]
    np.savez(tmp_path / "data.npz", **{input_name: x, "tflm_top1": tflm.reshape(len(tflm), -1).argmax(1)})
    rc = main(["validate", str(model), "--data", str(tmp_path / "data.npz"), "--labels", "tflm_top1",
               "--json", str(tmp_path / "v.json")])
    out = capsys.readouterr().out
    assert rc == 0, out
    result = json.loads((tmp_path / "v.json").read_text())
    assert result["accuracy"]["int8"] == result["accuracy"]["c"] == 1.0
    assert result["bit_exact"]["c"]["identical"] == result["samples"] == len(x)
    assert result["worst_layer"] is not None and "diverges most" in out
