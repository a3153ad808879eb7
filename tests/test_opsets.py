"""The front end across the opset range: zoo models exported by torch at opset 11 (the oldest
supported) and the same models converted up to opset 21 match onnxruntime (Softmax, Split,
Squeeze, Reduce, Clip and Pad changed their forms between these versions)."""
from __future__ import annotations

import onnx
import pytest

torch = pytest.importorskip("torch")
from onnx import version_converter

import zoo
from conftest import ort_run, rel_err
from tinycc.frontend import load_graph
from tinycc.passes import run_pipeline
from tinycc.reference.float_exec import run_float


def _export_opset11(name, path):
    with zoo.single_threaded():
        model, example = zoo.ZOO[name]()
        torch.onnx.export(model, example, str(path), opset_version=11, dynamo=False,
                          input_names=zoo.input_names(model), output_names=zoo.output_names(model))
    return {n: t.numpy() for n, t in zip(zoo.input_names(model), example)}


@pytest.mark.parametrize("name", ["mbv3", "shufflenet", "mlp", "misc_ops", "squeezenet"])
@pytest.mark.parametrize("opset", [11, 21])
def test_opsets_11_and_21_match_onnxruntime(name, opset, tmp_path):
    path = tmp_path / f"{name}_11.onnx"
    inputs = _export_opset11(name, path)
    if opset != 11:
        converted = tmp_path / f"{name}_{opset}.onnx"
        onnx.save(version_converter.convert_version(onnx.load(path), opset), converted)
        path = converted
    assert onnx.load(path).opset_import[0].version == opset
    g = run_pipeline(load_graph(path))
    ours = run_float(g, inputs)
    for out, ref in zip(g.outputs, ort_run(path, inputs)):
        assert rel_err(ours[out], ref) <= 1e-4
