"""Generated C projects: strict builds, sanitizers, determinism, hostile names, budget errors."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.passes import run_pipeline
from tinycc.sim.host import build, run_harness

HOSTILE = ['x*/ #include "evil.h" /*', 'line\nbreak', "quote\"'\\", "naïve-ünïcode✓", "0starts_with_digit", ""]


def _tinycc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinycc", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def hostile_model(path: Path) -> Path:
    """Conv -> Relu -> GAP -> Gemm whose every node/tensor name is hostile text."""
    rng = np.random.default_rng(0)
    names = [f"{h}{i}" for i, h in enumerate(HOSTILE)]
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), names[0] + "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), names[1] + "b")
    fw = numpy_helper.from_array(rng.standard_normal((5, 4)).astype(np.float32), names[2] + "fw")
    x, c, r, p, f, y = (n + s for n, s in zip(names, ["in", "conv", "relu", "pool", "flat", "out"]))
    nodes = [
        helper.make_node("Conv", [x, w.name, b.name], [c], name=names[3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", [c], [r], name=names[4]),
        helper.make_node("GlobalAveragePool", [r], [p], name=names[5]),
        helper.make_node("Flatten", [p], [f], name="*/flatten"),
        helper.make_node("Gemm", [f, fw.name], [y], name="#define gemm", transB=1),
    ]
    graph = helper.make_graph(nodes, "g\n*/", [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 3, 6, 5])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 5])], [w, b, fw])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    return hostile_model(tmp_path_factory.mktemp("m") / "hostile.onnx")


def test_compile_writes_a_complete_project(small_model, tmp_path):
    out = tmp_path / "out"
    r = _tinycc("compile", small_model, "-o", out, "--sram", "64k")
    assert r.returncode == 0, r.stderr
    for f in ["model.c", "model.h", "weights.c", "weights.h", "main.c", "Makefile", "CMakeLists.txt",
              "report.json", "report.md"]:
        assert (out / f).is_file(), f
    report = json.loads((out / "report.json").read_text())
    for key in ["peak_sram_bytes", "arena_bytes", "flash_bytes", "macs", "params", "quant", "layers",
                "lower_bound_bytes", "planner"]:
        assert key in report
    assert report["macs"] == 4 * 6 * 5 * 27 + 5 * 4
    assert report["params"] == (4 * 27 + 4) + 5 * 4  # conv weights and bias, Gemm weights
    assert sum(layer["params"] for layer in report["layers"]) == report["params"]
    assert {"name", "op", "output_shape", "macs", "params", "weight_bytes", "live_bytes"} <= set(report["layers"][0])
    assert "WARNING" in r.stderr  # no --calib: loud warning


def test_params_count_every_layer_even_when_weights_are_shared(tmp_path):
    """Two layers with identical weights share one blob in flash; each still has its params."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 3, 1, 1)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w1"), numpy_helper.from_array(w.copy(), "w2"),
             numpy_helper.from_array(b, "b1"), numpy_helper.from_array(b.copy(), "b2")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"]), helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["y"])]
    graph = helper.make_graph(nodes, "shared", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])], inits)
    path = tmp_path / "shared.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    r = _tinycc("compile", path, "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["params"] == 2 * (9 + 3)


def test_generated_c_has_no_model_text(small_model, tmp_path):
    out = tmp_path / "out"
    assert _tinycc("compile", small_model, "-o", out).returncode == 0
    for f in ["model.c", "model.h", "weights.c", "weights.h", "main.c"]:
        text = (out / f).read_text(encoding="ascii")  # ASCII only
        assert '#include "evil.h"' not in text and "#define gemm" not in text
        assert text.count("/*") == text.count("*/"), f


def test_output_is_byte_identical(small_model, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _tinycc("compile", small_model, "-o", a).returncode == 0
    assert _tinycc("compile", small_model, "-o", b).returncode == 0
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_over_budget_exits_3_and_writes_nothing(small_model, tmp_path):
    out = tmp_path / "out"
    r = _tinycc("compile", small_model, "-o", out, "--sram", "100")
    assert r.returncode == 3
    assert "bytes missing" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_existing_output_is_refused(small_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    r = _tinycc("compile", small_model, "-o", out)
    assert r.returncode == 2 and "--force" in r.stderr
    assert (out / "keep.txt").read_text() == "user data"


COMPILERS = [c for c in ("gcc", "clang") if shutil.which(c)]


@pytest.mark.parametrize("cc", COMPILERS or [pytest.param("gcc", marks=pytest.mark.skip("no C compiler"))])
def test_strict_build_and_sanitizers(small_model, tmp_path, cc):
    from cbuild import require_sanitizers

    require_sanitizers(cc)  # clang is often installed without its sanitizer runtime
    g = run_pipeline(load_graph(small_model))
    model = CompiledModel(g, QuantOptions(), warn=lambda m: None)
    from tinycc.codegen.emit import generate_project, write_files

    write_files(generate_project(model.program, model.mem, "model", "hostile"), tmp_path)
    flags = "-std=c99 -O1 -g -Wall -Wextra -Werror -pedantic -fsanitize=address,undefined -fno-sanitize-recover=all"
    exe = build(tmp_path, "model", cflags=flags, cc=cc)
    rng = np.random.default_rng(1)
    x = {g.inputs[0]: rng.standard_normal((1, 3, 6, 5)).astype(np.float32)}
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0", UBSAN_OPTIONS="halt_on_error=1")
    outs, _ = run_harness(exe, model.program, model.quantize_inputs(x), env=env)
    golden = model.run_int8(x)
    for k in golden:
        np.testing.assert_array_equal(outs[k], golden[k])


def test_clang_is_available_in_ci():
    if os.environ.get("CI") and not shutil.which("clang"):
        pytest.fail(".ci/run installs clang; it is missing")


@pytest.mark.skipif(not shutil.which("cmake"), reason="cmake not installed")
def test_cmake_build(small_model, tmp_path):
    out = tmp_path / "out"
    assert _tinycc("compile", small_model, "-o", out).returncode == 0
    build_dir = tmp_path / "build"
    cfg = subprocess.run(["cmake", "-S", str(out), "-B", str(build_dir), "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror -pedantic"],
                         capture_output=True, text=True)
    assert cfg.returncode == 0, cfg.stderr
    b = subprocess.run(["cmake", "--build", str(build_dir)], capture_output=True, text=True)
    assert b.returncode == 0, b.stdout + b.stderr
    assert any(p.name.endswith("_host") for p in build_dir.iterdir())
