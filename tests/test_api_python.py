"""The Python API (tinycc.compile / Model / layers): the same files, report and results as the
command line, errors as tinycc.errors exceptions (never SystemExit)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tinycc
from tinycc.cli import main

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits_cnn.onnx"
CALIB = ROOT / "examples" / "digits_calib.npy"
TEST = ROOT / "examples" / "digits_test.npz"


@pytest.fixture(scope="module")
def digits():
    return tinycc.compile(DIGITS, calib=CALIB, sram="64k")


@pytest.fixture(scope="module")
def images():
    return np.load(TEST)["images"][:8]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_project_and_report_as_the_cli(digits, tmp_path, capsys):
    assert main(["compile", str(DIGITS), "--calib", str(CALIB), "--sram", "64k", "-o", str(tmp_path / "cli")]) == 0
    capsys.readouterr()
    assert digits.write(tmp_path / "api") == tmp_path / "api"
    assert tree(tmp_path / "api") == tree(tmp_path / "cli")
    assert digits.report == json.loads((tmp_path / "cli" / "report.json").read_text())
    assert set(digits.files) == set(tree(tmp_path / "cli"))
    assert "peak SRAM" in repr(digits) and digits.inputs == ["image"] and digits.outputs == ["probs"]


def test_output_argument_writes_the_project(tmp_path):
    m = tinycc.compile(DIGITS, calib=CALIB, output=tmp_path / "deep" / "out", name="digits")
    assert (tmp_path / "deep" / "out" / "model.h").read_bytes() == m.files["model.h"]
    assert b"digits_invoke" in m.files["model.h"]


def test_write_refuses_what_the_cli_refuses(digits, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(tinycc.BadInput, match="not empty"):
        digits.write(tmp_path / "mine")
    with pytest.raises(tinycc.BadInput, match="not a project tinycc wrote"):
        digits.write(tmp_path / "mine", force=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    digits.write(tmp_path / "project")
    (tmp_path / "project" / "model.c").write_text("edited")
    digits.write(tmp_path / "project", force=True)  # a project tinycc wrote: replaced
    assert (tmp_path / "project" / "model.c").read_bytes() == digits.files["model.c"]


def test_run_float_matches_onnxruntime(digits, images):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(DIGITS), providers=["CPUExecutionProvider"])
    expected = np.concatenate([session.run(None, {"image": x[None]})[0] for x in images])
    got = digits.run(images, engine="float")["probs"]
    assert got.shape == (8, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_run_quantized_engines(digits, images):
    int8 = digits.run(images, engine="int8")["probs"]
    c = digits.run({"image": images}, engine="c")["probs"]
    assert int8.dtype == np.int8 and int8.shape == (8, 10)
    assert np.array_equal(int8, c)
    one = digits.run(images[:1], engine="c")["probs"]  # one sample: the harness, main.c
    assert one.shape == (1, 10) and np.array_equal(one, int8[:1])
    real = digits.run(images, engine="int8", dequantize=True)["probs"]
    scale, zero = digits.report["outputs"][0]["scale"], digits.report["outputs"][0]["zero_point"]
    assert real.dtype == np.float32
    np.testing.assert_allclose(real, (int8.astype(np.float64) - zero) * scale, rtol=1e-6)
    stacked = digits.run(images[:3, None], engine="int8")["probs"]  # (N,) + the input shape: stacked
    assert stacked.shape == (3, 1, 10) and np.array_equal(stacked[:, 0], int8[:3])


def test_validate_is_the_cli_result(digits, tmp_path, capsys):
    result = digits.validate(TEST, labels="labels", limit=12)
    assert main(["validate", str(DIGITS), "--calib", str(CALIB), "--data", str(TEST), "--labels", "labels",
                 "--limit", "12", "--json", str(tmp_path / "v.json")]) == 0
    printed = capsys.readouterr().out
    cli = json.loads((tmp_path / "v.json").read_text())
    assert {k: v for k, v in result.items() if k != "seconds"} == {k: v for k, v in cli.items() if k != "seconds"}
    assert tinycc.validate_markdown(result).split("| engine |")[0] == printed.split("| engine |")[0]


def test_validate_in_memory_data(digits):
    data = np.load(TEST)
    result = digits.validate(data["images"][:10], labels=data["labels"][:10], engines="float,int8")
    assert result["samples"] == 10 and result["engines"] == ["float", "int8"]
    assert result["bit_exact"] == {} and 0.8 <= result["accuracy"]["int8"] <= 1.0


@pytest.mark.parametrize("call, error, message", [
    (lambda m: tinycc.compile(DIGITS, calib=CALIB, sram="1k"), tinycc.DoesNotFit, "bytes missing"),
    (lambda m: tinycc.compile(ROOT / "no_such.onnx"), tinycc.BadInput, "no such file"),
    (lambda m: tinycc.compile(DIGITS, sram="lots"), tinycc.BadInput, "sram"),
    (lambda m: tinycc.compile(DIGITS, target="cortex-z9"), tinycc.BadInput, "cortex-z9"),
    (lambda m: tinycc.compile(DIGITS, stack="1k"), tinycc.BadInput, "target core"),
    (lambda m: tinycc.compile(DIGITS, name="not an identifier"), tinycc.BadInput, "C identifier"),
    (lambda m: m.run(np.zeros((2, 3), np.float32)), tinycc.BadInput, r"shape \(2, 3\); the model expects"),
    (lambda m: m.run({"x": np.zeros((1, 1, 8, 8))}), tinycc.BadInput, "no array for input"),
    (lambda m: m.run(np.zeros((1, 1, 8, 8)), engine="gpu"), tinycc.BadInput, "engine 'gpu'"),
    (lambda m: m.validate(TEST, labels="nope"), tinycc.BadInput, "nope"),
    (lambda m: m.validate(np.zeros((3, 1, 8, 8)), labels=np.arange(4)), tinycc.BadInput, "4 labels for 3"),
])
def test_errors_are_exceptions(digits, call, error, message):
    with pytest.raises(error, match=message):
        call(digits)


def test_layers_is_the_inspect_table(capsys):
    rows = tinycc.layers(DIGITS)
    assert main(["inspect", str(DIGITS)]) == 0
    table = capsys.readouterr().out
    assert rows and all(r["name"][:20] in table for r in rows)
    assert {"name", "op", "out_shape", "params", "macs", "act_bytes"} <= set(rows[0])
    assert len(tinycc.layers(DIGITS, passes=False)) > len(rows)  # BatchNorm etc. before folding


def test_demo_needs_only_numpy_and_tinycc():
    """`make demo` installs tinycc alone (numpy, onnx, jinja2, networkx): examples/demo.py and the
    tinycc modules it runs import nothing from the test extra."""
    import ast
    import subprocess
    import sys

    tree = ast.parse((ROOT / "examples" / "demo.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - set(sys.stdlib_module_names) - {"__future__"} == {"numpy", "tinycc"}
    blocked = ["torch", "onnxruntime", "sklearn", "onnxscript", "pytest", "hypothesis"]
    code = (f"import sys; sys.modules.update(dict.fromkeys({blocked!r}))\n"
            "import numpy as np, tinycc\n"
            f"m = tinycc.compile({str(DIGITS)!r}, calib={str(CALIB)!r})\n"
            f"r = m.validate({str(TEST)!r}, labels='labels', limit=3)\n"
            "assert r['bit_exact']['c']['identical'] == 3\n"
            "print(tinycc.validate_markdown(r))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
