"""The CLI on broken input: documented exit code, a clear message, never a traceback.

Each case is a subprocess (~0.5 s), so only a representative subset of the broken corpus runs
here; tests/test_load.py covers every case at the load_model level.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from broken_models import write_broken_corpus
from tinycc.errors import EXIT_BAD_INPUT

ROOT = Path(__file__).resolve().parent.parent

CLI_CASES = [
    "does_not_exist.onnx",
    "folder.onnx",
    "empty.onnx",
    "notes.onnx",
    "fake.tflite",
    "array.npy",
    "truncated_cut9.onnx",
    "int64_input.onnx",
    "cycle.onnx",
    "missing_initializer.onnx",
    "duplicate_output.onnx",
    "opset7.onnx",
    "custom_domain.onnx",
    "external_missing.onnx",
    "dynamic_hw.onnx",
    "dynamic_hw.onnx --input-shape x=1x3x8",
    "dynamic_hw.onnx --input-shape x=1x3xAx8",
    "dynamic_hw.onnx --input-shape x=1x3x8x8",
    "rnn.onnx",
    "unsorted.onnx",
    "unsorted.onnx --sram=-5k",
    "unsorted.onnx --sram=1.1k",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return {case.name: case for case in write_broken_corpus(tmp_path_factory.mktemp("broken"))}


def test_cli_cases_exist_in_the_corpus():
    with tempfile.TemporaryDirectory() as scratch:
        names = {case.name for case in write_broken_corpus(Path(scratch))}
    assert set(CLI_CASES) <= names, sorted(set(CLI_CASES) - names)


def run_tinycc(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run(
        [sys.executable, "-m", "tinycc", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_reports_broken_input(corpus, tmp_path, name):
    case = corpus[name]
    out_dir = tmp_path / "out"
    args = [case.command, str(case.path), *case.cli_args]
    if case.command == "compile":
        args += ["-o", str(out_dir)]
    result = run_tinycc(*args)

    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == case.exit_code, (result.returncode, result.stdout, result.stderr)
    for part in case.message_parts:
        assert part in result.stderr, f"{part!r} not in stderr: {result.stderr!r}"
    if case.stage == "load":
        assert str(case.path) in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    if case.command == "compile":
        assert not out_dir.exists(), "compile created its output folder despite failing"


def test_debug_shows_the_traceback(corpus):
    result = run_tinycc("inspect", str(corpus["cycle.onnx"].path), "--debug")
    assert result.returncode == EXIT_BAD_INPUT
    assert "Traceback" in result.stderr and "cycle" in result.stderr
