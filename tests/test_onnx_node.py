"""The ONNX backend node tests shipped with onnx 1.19.0, for every operator tinycc lists as
supported (harness: tests/onnx_node.py; full table: benchmarks/bench_onnx_node.py).

Each test runs as shipped and with its graph inputs after the first turned into initializers.
Float engine: passes against the shipped outputs or refuses clearly (exit 2); never a wrong
answer, never an internal error. int8, where it applies (float I/O, the graph quantizes): the
golden model and the generated host C agree bit for bit; the default slice checks one node test
per distinct operator set in each variant, TINYCC_NODE_TESTS=all checks every one.

The node tests are fetched once with pip (cached, see onnx_node.cache_dir); without network the
sweep skips with the reason. The tests at the end need no download: they pin what the sweep found.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

import onnx_node as on
from tinycc.errors import Unsupported
from tinycc.frontend import load_graph
from tinycc.passes import run_pipeline
from tinycc.reference.float_exec import run_float

FULL_SWEEP = os.environ.get("TINYCC_NODE_TESTS", "") == "all"
INT8_SHARDS = 4  # int8 batches: one shared library each, spread over xdist workers


@pytest.fixture(scope="session")
def node_cases() -> list[on.NodeCase]:
    try:
        root = on.node_tests_dir()
    except on.NodeTestsUnavailable as exc:
        pytest.skip(f"ONNX node tests unavailable: {exc}")
    return on.supported_cases(root)


@pytest.fixture(scope="session")
def float_runs(node_cases) -> list[on.FloatRun]:
    with tempfile.TemporaryDirectory(prefix="tinycc_node_") as tmp:
        return [on.run_float_case(c, v, Path(tmp)) for c in node_cases for v in on.VARIANTS if on.has_variant(c, v)]


def _failures(results: list[on.Result]) -> str:
    return "\n".join(f"{r.outcome}: {r.key}: {r.detail}" for r in on.failures(results))


def _print_summary(capsys, title: str, results: list[on.Result]) -> None:
    notes = "".join(f"\n{n}" for n in on.known_issue_notes(results))
    with capsys.disabled():
        print(f"\nONNX node tests, {title}:\n{on.summary_table(results)}{notes}")


def test_supported_list_matches_the_importers():
    """The operators the sweep selects are the README's list, and tinycc handles each one: by an
    importer, by its own folding (Shape/Size), by QDQ import, or by onnx's reference evaluator
    on constant inputs (the Constant/ConstantOfShape/Gather/Range chains of static shapes)."""
    from tinycc.frontend.onnx import OWN_SEMANTICS
    from tinycc.ops.registry import ONNX_IMPORTERS

    folded_only = {"Constant", "ConstantOfShape", "Gather", "Range"}
    assert set(ONNX_IMPORTERS) <= on.SUPPORTED_OPS
    assert on.SUPPORTED_OPS <= set(ONNX_IMPORTERS) | OWN_SEMANTICS | folded_only


def test_node_tests_cover_the_supported_operators(node_cases):
    """A guard on the selection itself: most supported operators have node tests selected."""
    covered = {op for c in node_cases for op in c.op_types}
    assert len(node_cases) > 300
    assert {"Conv", "Gemm", "MaxPool", "AveragePool", "Softmax", "Resize", "Pad", "Slice"} <= covered


@pytest.mark.parametrize("variant", on.VARIANTS)
def test_float_matches_or_refuses(float_runs, variant, capsys):
    results = [r.result for r in float_runs if r.result.variant == variant]
    _print_summary(capsys, f"float engine ({variant})", results)
    assert results
    assert not _failures(results), _failures(results)


def _int8_slice(node_cases: list[on.NodeCase], float_runs: list[on.FloatRun]) -> list[on.FloatRun]:
    """Passing float runs where int8 applies; by default one per distinct operator set and variant."""
    eligible = [r for r in float_runs if r.result.outcome == "pass" and on.int8_applies(r.graph, r.feeds)]
    if FULL_SWEEP:
        return eligible
    chosen, seen = [], set()
    ops = {c.name: c.op_types for c in node_cases}
    for r in eligible:
        key = (ops[r.result.case], r.result.variant)
        if key not in seen:
            seen.add(key)
            chosen.append(r)
    return chosen


@pytest.mark.parametrize("shard", range(INT8_SHARDS))
def test_int8_golden_equals_c(node_cases, float_runs, shard, tmp_path, capsys):
    runs = _int8_slice(node_cases, float_runs)[shard::INT8_SHARDS]
    results, prepared = [], []
    for run in runs:
        p = on.prepare_int8(run)
        (results if isinstance(p, on.Result) else prepared).append(p)
    results += on.run_int8_c_batch(prepared, tmp_path)
    _print_summary(capsys, f"int8 golden vs C (shard {shard + 1}/{INT8_SHARDS}, "
                   f"{'full sweep' if FULL_SWEEP else 'default slice'})", results)
    assert results
    assert not _failures(results), _failures(results)
    assert sum(r.outcome == "pass" for r in results) >= len(results) // 2


# ---------------------------------------------------------------------------------------------
# What the sweep found, pinned without the download


def _save(tmp_path: Path, nodes, inputs, outputs, initializers=(), opset: int = 17) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def _tensor(name: str, shape, elem=onnx.TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def test_training_mode_dropout_is_refused(tmp_path):
    """Dropout with training_mode=True zeroes random elements: tinycc used to treat it as the
    identity (test_training_dropout*)."""
    inits = [onnx.numpy_helper.from_array(np.array(0.5, np.float32), "r"),
             onnx.numpy_helper.from_array(np.array(True), "t")]
    path = _save(tmp_path, [helper.make_node("Dropout", ["x", "r", "t"], ["y"], name="drop")],
                 [_tensor("x", [2, 3])], [_tensor("y", [2, 3])], inits)
    with pytest.raises(Unsupported, match="'drop'.*training mode"):
        load_graph(path)


def test_inference_mode_dropout_is_the_identity(tmp_path):
    inits = [onnx.numpy_helper.from_array(np.array(0.5, np.float32), "r"),
             onnx.numpy_helper.from_array(np.array(False), "t")]
    path = _save(tmp_path, [helper.make_node("Dropout", ["x", "r", "t"], ["y"])],
                 [_tensor("x", [2, 3])], [_tensor("y", [2, 3])], inits)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(run_float(run_pipeline(load_graph(path)), {"x": x})["y"], x)


@pytest.mark.parametrize("elem", [onnx.TensorProto.INT8, onnx.TensorProto.UINT8])
def test_float_engine_dequantizes_raw_inputs_of_qdq_models(tmp_path, elem):
    """A QDQ model takes raw int8/uint8 values; the float engine computes on the real values
    they stand for (it used to take the raw integers as reals: test_dequantizelinear)."""
    zp_type = np.int8 if elem == onnx.TensorProto.INT8 else np.uint8
    zp = 3 if zp_type == np.int8 else 131
    inits = [onnx.numpy_helper.from_array(np.array(0.5, np.float32), "s"),
             onnx.numpy_helper.from_array(np.array(zp, zp_type), "zp")]
    nodes = [helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["x"]),
             helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "s", "zp"], ["y"])]
    path = _save(tmp_path, nodes, [_tensor("q", [4], elem)], [_tensor("y", [4], elem)], inits)
    raw = np.array([0, 3, 100, 127], zp_type) if zp_type == np.int8 else np.array([0, 131, 200, 255], zp_type)
    g = run_pipeline(load_graph(path))
    real = run_float(g, {"q": raw})["y"]
    expected = np.maximum((raw.astype(np.float32) - zp) * 0.5, 0)
    assert np.array_equal(real, expected)


@pytest.mark.parametrize("op", ["Reshape", "Flatten", "Identity"])
def test_view_only_model_builds_warning_free(tmp_path, op):
    """A model whose every step is a view compiles to C without kernel calls; it used to declare
    an unused status variable, which -Werror rejects (test_reshape_*, test_flatten_*)."""
    from tinycc.compiler import QuantOptions
    from tinycc.engines import CompiledModel

    inits = [onnx.numpy_helper.from_array(np.array([4, 6], np.int64), "shape")] if op == "Reshape" else []
    node = helper.make_node(op, ["x", "shape"] if op == "Reshape" else ["x"], ["y"])
    out_shape = [2, 12] if op == "Flatten" else ([4, 6] if op == "Reshape" else [2, 3, 4])
    path = _save(tmp_path, [node], [_tensor("x", [2, 3, 4])], [_tensor("y", out_shape)], inits)
    g = run_pipeline(load_graph(path))
    calib = tmp_path / "calib.npy"
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(1, 2, 3, 4)
    np.save(calib, x)
    model = CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)
    c_out, _ = model.run_c({"x": x[0]})
    golden = model.run_int8({"x": x[0]})
    assert all(np.array_equal(c_out[k], golden[k]) for k in golden)
