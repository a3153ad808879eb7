"""The CLI end to end: inspect totals against an independent count, run with every engine,
per-layer comparison, and a plain `pip install .` into a fresh venv."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def tinycc(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "tinycc", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


@pytest.mark.parametrize("name", ["mbv2", "resnet", "dscnn", "squeezenet", "mlp"])
def test_inspect_totals_match_an_independent_count(name, zoo_models):
    import zoo
    from tinycc.frontend import load_graph
    from tinycc.inspect import layer_rows
    from tinycc.passes import run_pipeline

    path, inputs = zoo_models[(name, "torchscript")]
    g = run_pipeline(load_graph(path, {k: v.shape for k, v in inputs.items()}))
    rows = layer_rows(g)
    with zoo.single_threaded():
        model, example = zoo.ZOO[name]()
        params, macs = zoo.independent_counts(model, example)
    assert sum(r.macs for r in rows) == macs
    assert sum(r.params for r in rows if r.op in ("Conv", "Dense")) == params
    r = tinycc("inspect", path, *[a for k, v in inputs.items() for a in ("--input-shape", f"{k}={'x'.join(map(str, v.shape))}")])
    assert r.returncode == 0, r.stderr
    assert f"MACs: {macs:,}" in r.stdout


@pytest.fixture(scope="module")
def kws(mlperf_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("kws")
    x = np.load(mlperf_dir / "samples.npz")["kws_dscnn_float"]
    np.save(d / "x.npy", x[:1])
    np.save(d / "calib.npy", x)
    return mlperf_dir / "kws_dscnn_nhwc.onnx", d


def test_run_engines_agree(kws):
    model, d = kws
    outs = {}
    for engine in ("float", "int8", "c"):
        extra = [] if engine == "float" else ["--calib", d / "calib.npy", "--dequantize"]
        r = tinycc("run", model, "--input", d / "x.npy", "-o", d / f"{engine}.npy", "--engine", engine, *extra)
        assert r.returncode == 0, r.stderr
        outs[engine] = np.load(d / f"{engine}.npy")
    np.testing.assert_array_equal(outs["int8"], outs["c"])
    assert np.argmax(outs["float"]) == np.argmax(outs["int8"])
    assert np.max(np.abs(outs["float"] - outs["int8"])) < 0.05
    r = tinycc("run", model, "--input", d / "x.npy", "-o", d / "raw.npy", "--engine", "int8", "--calib", d / "calib.npy")
    assert r.returncode == 0 and np.load(d / "raw.npy").dtype == np.int8


def test_compare_points_at_layers(kws):
    model, d = kws
    r = tinycc("run", model, "--input", d / "x.npy", "--compare", "int8,c", "--calib", d / "calib.npy")
    assert r.returncode == 0, r.stderr
    assert "bit-exact" in r.stdout and "Conv" in r.stdout
    r = tinycc("run", model, "--input", d / "x.npy", "--compare", "float,int8", "--calib", d / "calib.npy")
    assert r.returncode == 0, r.stderr
    assert "SQNR" in r.stdout
    r = tinycc("run", model, "--input", d / "x.npy", "--compare", "float,banana")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_plain_pip_install_ships_templates_and_runtime(tmp_path, kws):
    """A non-editable install (the wheel of `pip install .`) must carry templates/ and
    runtime_c/ inside the package: build the wheel, unpack it, run it from another folder."""
    import zipfile

    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wheel = next((tmp_path / "dist").glob("tinycc-*.whl"))
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    assert (site / "tinycc" / "data" / "templates" / "model.c.j2").is_file()
    assert (site / "tinycc" / "data" / "runtime_c" / "tc_common.h").is_file()
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site))
    r = subprocess.run([sys.executable, "-c", "import tinycc; print(tinycc.__file__)"], capture_output=True,
                       text=True, cwd=work, env=env)
    assert str(site) in r.stdout, (r.stdout, r.stderr)
    model, _ = kws
    r = subprocess.run([sys.executable, "-m", "tinycc", "compile", str(model), "-o", "out"], capture_output=True,
                       text=True, cwd=work, env=env)
    assert r.returncode == 0, r.stderr
    assert (work / "out" / "runtime" / "tc_common.h").is_file()
    assert (work / "out" / "model.c").is_file()
