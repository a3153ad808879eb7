"""A real task trained in the tests: examples/train_digits.py trains the bundled CNN on
scikit-learn's digits from scratch; the freshly trained model compiled to int8 stays within half
a point of float on the 360 held-out images, and its generated C equals the golden model."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from tinycc.compiler import QuantOptions  # noqa: E402
from tinycc.engines import CompiledModel  # noqa: E402
from tinycc.frontend import load_graph  # noqa: E402
from tinycc.passes import run_pipeline  # noqa: E402
from tinycc.reference.float_exec import run_float  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def test_trained_digits_model_quantizes_within_half_a_point(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "train_digits.py"), "--out-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    g = run_pipeline(load_graph(tmp_path / "digits_cnn.onnx"))
    model = CompiledModel(g, QuantOptions(calib=str(tmp_path / "digits_calib.npy")), warn=pytest.fail)
    test = np.load(tmp_path / "digits_test.npz")
    images, labels = test["images"], test["labels"]
    name, out = g.inputs[0], g.outputs[0]
    float_pred = np.array([np.argmax(run_float(g, {name: x[None]})[out]) for x in images])
    int8_raw = [model.run_int8({name: x[None]})[out] for x in images]
    int8_pred = np.array([np.argmax(v) for v in int8_raw])
    float_acc, int8_acc = np.mean(float_pred == labels), np.mean(int8_pred == labels)
    assert float_acc > 0.9
    assert int8_acc >= float_acc - 0.005, (float_acc, int8_acc)
    c_out = model.run_c({name: images[0][None]})[0][out]
    np.testing.assert_array_equal(c_out, int8_raw[0])
