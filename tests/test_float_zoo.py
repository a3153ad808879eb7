"""tinycc's float engine against onnxruntime on the zoo and the MLPerf Tiny models.

Every model is checked right after import and after every prefix of the pass pipeline, so a
pass that breaks the numerics is named by the first failing stage.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import onnx
import pytest

from conftest import ort_run, rel_err

pytest.importorskip("tinycc.frontend", reason="tinycc.frontend (the ONNX front end) is not importable")
from tinycc.frontend import load_graph  # noqa: E402
from tinycc.ir import Graph  # noqa: E402
from tinycc.passes import PIPELINE, run_pipeline  # noqa: E402
from tinycc.reference.float_exec import run_float  # noqa: E402

FLOAT_TOLERANCE = 1e-4
IMPORTED = "imported"  # the stage before any pass
STAGES = [IMPORTED, *(name for name, _ in PIPELINE)]


# MLPerf Tiny float models: file stem -> (samples.npz key, how the NHWC sample maps onto the
# model input, how many real samples to run). The float executor is numpy, so the big image
# models run on a few samples only.
MLPERF_MODELS: dict[str, tuple[str, str, int]] = {
    "ic_resnet8": ("ic_resnet8_float", "nchw", 2),
    "ic_resnet8_nhwc": ("ic_resnet8_float", "as_is", 2),
    "kws_dscnn": ("kws_dscnn_float", "nchw", 1),
    "kws_dscnn_nhwc": ("kws_dscnn_float", "as_is", 1),
    "vww_mobilenetv1_025": ("vww_mobilenetv1_025_float", "nchw", 1),
    "vww_mobilenetv1_025_nhwc": ("vww_mobilenetv1_025_float", "as_is", 1),
    "ad_autoencoder": ("ad_autoencoder_float", "as_is", 49),  # 49 frames of 640 features
}


def symbolic_input_shapes(path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """The static shapes to give load_graph: the actual input shape of every input that has a
    symbolic or unknown dimension in the file (static inputs are left to the model)."""
    shapes = {}
    for value in onnx.load(str(path), load_external_data=False).graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name in inputs and not all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(inputs[value.name].shape)
    return shapes


_imported: dict[tuple[str, tuple], Graph] = {}


def graph_at(path: Path, input_shapes: dict[str, tuple[int, ...]], stage: str) -> Graph:
    """The model imported (once per session) and run through the pipeline up to `stage`."""
    key = (str(path), tuple(sorted(input_shapes.items())))
    if key not in _imported:
        _imported[key] = load_graph(path, input_shapes or None)
    graph = _imported[key]
    return graph.copy() if stage == IMPORTED else run_pipeline(graph, upto=stage)


def assert_float_matches_onnxruntime(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray], what: str) -> None:
    output_names = [o.name for o in onnx.load(str(path), load_external_data=False).graph.output]
    expected = dict(zip(output_names, ort_run(path, inputs)))
    actual = run_float(graph, inputs)
    assert sorted(actual) == sorted(expected), f"{what}: outputs {sorted(actual)} != ONNX outputs {sorted(expected)}"
    for name, ref in expected.items():
        err = rel_err(actual[name], ref)
        assert err <= FLOAT_TOLERANCE, f"{what}: output {name!r} relative error {err:.3g} > {FLOAT_TOLERANCE}"


@pytest.mark.parametrize("stage", STAGES)
def test_zoo_float_matches_onnxruntime(zoo_key, stage, zoo_models):
    path, inputs = zoo_models[zoo_key]
    graph = graph_at(path, symbolic_input_shapes(path, inputs), stage)
    assert_float_matches_onnxruntime(path, graph, inputs, f"{'-'.join(zoo_key)} after {stage}")


def mlperf_real_inputs(mlperf_dir: Path, stem: str) -> dict[str, np.ndarray]:
    key, layout, count = MLPERF_MODELS[stem]
    with np.load(mlperf_dir / "samples.npz") as samples:
        real = samples[key][:count].astype(np.float32)
    if layout == "nchw":
        real = np.ascontiguousarray(real.transpose(0, 3, 1, 2))
    (input_value,) = onnx.load(str(mlperf_dir / f"{stem}.onnx"), load_external_data=False).graph.input
    return {input_value.name: real}


def random_like(inputs: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Gaussian inputs with the shape, mean and spread of the real ones."""
    rng = np.random.default_rng(seed)
    return {
        name: (rng.standard_normal(x.shape) * x.std() + x.mean()).astype(np.float32) for name, x in inputs.items()
    }


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("stem", list(MLPERF_MODELS))
def test_mlperf_float_matches_onnxruntime(stem, stage, mlperf_dir):
    path = mlperf_dir / f"{stem}.onnx"
    real = mlperf_real_inputs(mlperf_dir, stem)
    graph = graph_at(path, symbolic_input_shapes(path, real), stage)
    for kind, inputs in (("real", real), ("random", random_like(real, seed=0))):
        assert_float_matches_onnxruntime(path, graph, inputs, f"{stem} ({kind} inputs) after {stage}")
