"""The front end across the opset range: zoo models exported by torch at opset 11 (the oldest
supported) and the same models converted up to opset 21 and to the newest opset the installed
onnx knows match onnxruntime (Softmax, Split, Squeeze, Reduce, Clip and Pad changed their forms
between 11 and 21; later opsets revised operators only by new element types, which
tinycc/frontend/opsets.py accepts operator by operator, checked here against onnx's schemas)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
from onnx import version_converter

import zoo
from conftest import ort_run, rel_err
from tinycc.errors import Unsupported
from tinycc.frontend import load_graph
from tinycc.frontend import opsets
from tinycc.frontend.onnx import OWN_SEMANTICS
from tinycc.ops.registry import ONNX_IMPORTERS
from tinycc.passes import run_pipeline
from tinycc.reference.float_exec import run_float


def _export_opset11(name, path):
    with zoo.single_threaded():
        model, example = zoo.ZOO[name]()
        torch.onnx.export(model, example, str(path), opset_version=11, dynamo=False,
                          input_names=zoo.input_names(model), output_names=zoo.output_names(model))
    return {n: t.numpy() for n, t in zip(zoo.input_names(model), example)}


@pytest.mark.parametrize("name", ["mbv3", "shufflenet", "mlp", "misc_ops", "squeezenet"])
@pytest.mark.parametrize("opset", [11, 21, opsets.max_opset()])
def test_opsets_11_to_newest_match_onnxruntime(name, opset, tmp_path):
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


def _signature(schema) -> dict:
    """What a revision can change besides element types: inputs, outputs, attributes."""
    return dict(inputs=[(i.name, i.option) for i in schema.inputs], outputs=[(o.name, o.option) for o in schema.outputs],
                attributes={name: (a.type, a.required, a.default_value.SerializeToString())
                            for name, a in schema.attributes.items()})


@pytest.mark.parametrize("op", sorted(opsets.SAME_MEANING_REVISIONS))
def test_same_meaning_revisions_match_onnx_schemas(op):
    """Each listed revision exists, and changes nothing but element types and the attributes it
    lists (which are new in that version)."""
    for version, added in opsets.SAME_MEANING_REVISIONS[op].items():
        schema = onnx.defs.get_schema(op, version)
        assert schema.since_version == version, f"{op} has no revision at opset {version}"
        before, after = _signature(onnx.defs.get_schema(op, version - 1)), _signature(schema)
        assert before["inputs"] == after["inputs"] and before["outputs"] == after["outputs"], (op, version)
        new_attributes = set(after["attributes"]) - set(before["attributes"])
        assert new_attributes == set(added), (op, version, new_attributes)
        assert all(after["attributes"][a] == before["attributes"][a] for a in before["attributes"]), (op, version)


def test_every_revision_the_installed_onnx_knows_is_reviewed():
    """Every revision after opset 21 of an operator tinycc implements itself is in the table, so
    that models at any opset the installed onnx knows are accepted. A newer onnx that revises an
    operator fails here: read its changelog and list the revision if the meaning is unchanged."""
    missing = []
    for op in sorted(set(ONNX_IMPORTERS) | OWN_SEMANTICS):
        for version in range(opsets.SEMANTICS_OPSET + 1, opsets.max_opset() + 1):
            if onnx.defs.get_schema(op, version).since_version == version:
                if version not in opsets.SAME_MEANING_REVISIONS.get(op, {}):
                    missing.append(f"{op}-{version}")
    assert not missing, f"operator revisions not reviewed: {missing}"


def _conv_model(opset: int, path):
    w = onnx.numpy_helper.from_array(np.full((2, 1, 3, 3), 0.1, np.float32), "w")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
         onnx.helper.make_node("Relu", ["c"], ["y"], name="relu")], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 4, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, 4, 4])], initializer=[w])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)]), path)
    return path


def test_a_revision_not_listed_is_refused_by_node(tmp_path, monkeypatch):
    """Conv was revised in opset 22 (bfloat16): accepted at 22 as listed; without the entry the
    node is refused by name, pointing at the opset to re-export with."""
    path = _conv_model(22, tmp_path / "conv22.onnx")
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 1, 4, 4)
    assert rel_err(run_float(load_graph(path), {"x": x})["y"], ort_run(path, {"x": x})[0]) <= 1e-4
    monkeypatch.setitem(opsets.SAME_MEANING_REVISIONS, "Conv", {})
    with pytest.raises(Unsupported, match=r"'conv': Conv at opset 22 follows its opset-22 definition.*opset_version=21"):
        load_graph(path)


def test_revision_attributes_outside_the_old_meaning_are_refused():
    quant = dict(inputs=["x", "s", "z"], outputs=["y"], name="q")
    plain = onnx.helper.make_node("DequantizeLinear", **quant)
    as_float = onnx.helper.make_node("DequantizeLinear", output_dtype=onnx.TensorProto.FLOAT, **quant)
    as_half = onnx.helper.make_node("DequantizeLinear", output_dtype=onnx.TensorProto.FLOAT16, **quant)
    assert opsets.revision_problem(plain, 23) is None
    assert opsets.revision_problem(as_float, 23) is None
    assert "output_dtype=10" in opsets.revision_problem(as_half, 23)
    assert opsets.revision_problem(as_half, 21) is None  # opset 21 has no such attribute: the checker's job


def test_opsets_outside_the_range_are_refused(tmp_path):
    for version, words in [(10, "supports opsets 11 to"), (opsets.max_opset() + 1, "newer than the installed onnx")]:
        with pytest.raises(Unsupported, match=words):
            load_graph(_conv_model(version, tmp_path / f"conv{version}.onnx"))
