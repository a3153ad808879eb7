"""tinycc.frontend.load.load_model on broken, tricky and real models."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from broken_models import wrap_graph, conv_model, relu_model, write_broken_corpus
from tinycc.errors import BadInput, Unsupported
from tinycc.frontend.load import load_model
from tinycc.units import parse_input_shapes, parse_size

MLPERF = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf_tiny"


def _corpus_names() -> list[str]:
    with tempfile.TemporaryDirectory() as scratch:
        return [case.name for case in write_broken_corpus(Path(scratch))]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return {case.name: case for case in write_broken_corpus(tmp_path_factory.mktemp("broken"))}


def _load_args(case):
    """load_model's input_shapes from the case's --input-shape arguments."""
    texts = [case.cli_args[i + 1] for i, arg in enumerate(case.cli_args) if arg == "--input-shape"]
    return parse_input_shapes(texts) if texts else None


def _static_dims(value: onnx.ValueInfoProto) -> list[int]:
    dims = value.type.tensor_type.shape.dim
    assert all(d.HasField("dim_value") for d in dims), f"{value.name} is not static: {dims}"
    return [d.dim_value for d in dims]


def _assert_user_message(err: BaseException, path: Path, parts=()) -> None:
    message = str(err)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message, message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


@pytest.mark.parametrize("name", _corpus_names())
def test_broken_corpus(corpus, name):
    case = corpus[name]
    if case.stage == "load":
        with pytest.raises(BadInput) as info:
            load_model(case.path, _load_args(case))
        assert type(info.value) is case.error
        _assert_user_message(info.value, case.path, case.message_parts)
    elif case.stage == "arguments":
        flag, _, value = case.cli_args[0].partition("=")
        value = value or case.cli_args[1]
        parse = parse_size if flag == "--sram" else parse_input_shapes
        with pytest.raises(ValueError) as info:
            parse(value if flag == "--sram" else [value])
        for part in case.message_parts:
            assert part in str(info.value)
    else:  # "ok" and "convert": a valid model that loads with static inputs
        model = load_model(case.path, _load_args(case))
        for value in model.graph.input:
            assert min(_static_dims(value)) >= 1


# ---------------------------------------------------------------------------------------------
# Valid models come back normalised


def _save(model: onnx.ModelProto, tmp_path: Path, name: str = "model.onnx") -> Path:
    path = tmp_path / name
    onnx.save_model(model, str(path))
    return path


def test_symbolic_batch_becomes_one_and_shapes_are_inferred(tmp_path):
    model = load_model(_save(conv_model(input_dims=("batch", 3, 8, 8)), tmp_path))
    assert _static_dims(model.graph.input[0]) == [1, 3, 8, 8]
    assert _static_dims(model.graph.output[0]) == [1, 4, 8, 8]
    assert {v.name for v in model.graph.value_info} == {"c"}


def test_unknown_batch_dim_becomes_one(tmp_path):
    model = load_model(_save(conv_model(input_dims=(None, 3, 8, 8)), tmp_path))
    assert _static_dims(model.graph.input[0]) == [1, 3, 8, 8]


def test_input_shapes_fill_symbolic_dims_and_may_set_the_batch(tmp_path):
    path = _save(conv_model(input_dims=("N", 3, "h", "w")), tmp_path)
    model = load_model(path, {"x": (2, 3, 16, 12)})
    assert _static_dims(model.graph.input[0]) == [2, 3, 16, 12]
    assert _static_dims(model.graph.output[0]) == [2, 4, 16, 12]


def test_input_shapes_may_repeat_fixed_dims(tmp_path):
    model = load_model(_save(conv_model(), tmp_path), {"x": [1, 3, 8, 8]})
    assert _static_dims(model.graph.input[0]) == [1, 3, 8, 8]


def test_unsorted_graph_is_sorted(tmp_path, corpus):
    model = load_model(corpus["unsorted.onnx"].path)
    assert [n.name for n in model.graph.node] == ["conv0", "relu0"]


def test_initializers_listed_as_inputs_are_constants(tmp_path):
    model = conv_model()
    model.ir_version = 3
    model.graph.input.extend([helper.make_tensor_value_info(t.name, TensorProto.FLOAT, t.dims) for t in model.graph.initializer])
    loaded = load_model(_save(model, tmp_path))
    assert [v.name for v in loaded.graph.input] == ["x"]
    assert loaded.ir_version >= 4


def test_local_functions_are_inlined(tmp_path):
    double = helper.make_function(
        "local.fns", "Double", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])], [helper.make_opsetid("", 13)]
    )
    graph = helper.make_graph(
        [helper.make_node("Double", ["x"], ["y"], name="double0", domain="local.fns")],
        "fn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = wrap_graph(graph, extra_opsets=(("local.fns", 1),))
    model.functions.append(double)
    loaded = load_model(_save(model, tmp_path))
    assert [n.op_type for n in loaded.graph.node] == ["Add"]


def test_unused_foreign_opset_import_is_fine(tmp_path):
    graph = relu_model((1, 4)).graph
    model = wrap_graph(graph, extra_opsets=(("com.microsoft", 1), ("ai.onnx.ml", 3)))
    assert len(load_model(_save(model, tmp_path)).graph.node) == 1


def test_ai_onnx_domain_spelling_is_the_default_domain(tmp_path):
    model = relu_model((1, 4))
    model.opset_import[0].domain = "ai.onnx"
    assert len(load_model(_save(model, tmp_path)).graph.node) == 1


def test_int8_and_uint8_inputs_are_accepted(tmp_path):
    for elem_type in (TensorProto.INT8, TensorProto.UINT8):
        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"], name="id0")],
            "q",
            [helper.make_tensor_value_info("x", elem_type, ["batch", 10])],
            [helper.make_tensor_value_info("y", elem_type, ["batch", 10])],
        )
        loaded = load_model(_save(wrap_graph(graph), tmp_path))
        assert _static_dims(loaded.graph.output[0]) == [1, 10]


def test_empty_1d_constants_are_allowed(tmp_path):
    """Torch exports Resize with empty roi/scales placeholders."""
    graph = helper.make_graph(
        [helper.make_node("Resize", ["x", "roi", "scales", "sizes"], ["y"], name="resize0", mode="nearest")],
        "resize",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
            numpy_helper.from_array(np.zeros(0, np.float32), "scales"),
            numpy_helper.from_array(np.array([1, 2, 8, 8], np.int64), "sizes"),
        ],
    )
    loaded = load_model(_save(wrap_graph(graph), tmp_path))
    assert _static_dims(loaded.graph.output[0]) == [1, 2, 8, 8]


def test_external_data_next_to_the_model_is_loaded(tmp_path):
    model = conv_model()
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="ext.data", size_threshold=0)
    loaded = load_model(path)
    weight = next(t for t in loaded.graph.initializer if t.name == "w")
    assert not onnx.external_data_helper.uses_external_data(weight)
    np.testing.assert_array_equal(numpy_helper.to_array(weight), np.ones((4, 3, 3, 3), np.float32))


# ---------------------------------------------------------------------------------------------
# Exported by torch, with a symbolic batch


def _small_net():
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

    torch.manual_seed(0)
    return torch, Net().eval()


def _assert_runs_like(original: Path, loaded: onnx.ModelProto) -> None:
    ort = pytest.importorskip("onnxruntime")
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    expected = ort.InferenceSession(str(original), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    session = ort.InferenceSession(loaded.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], expected, rtol=1e-6, atol=1e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_export_with_dynamic_batch_and_initializers_as_inputs(tmp_path):
    torch, net = _small_net()
    path = tmp_path / "ts.onnx"
    torch.onnx.export(
        net, (torch.zeros(1, 3, 8, 8),), str(path), dynamo=False, input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=13, keep_initializers_as_inputs=True,
    )
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    loaded = load_model(path)
    assert [v.name for v in loaded.graph.input] == ["x"]
    assert _static_dims(loaded.graph.input[0]) == [1, 3, 8, 8]
    assert _static_dims(loaded.graph.output[0]) == [1, 2]
    _assert_runs_like(path, loaded)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_dynamo_export_with_dynamic_batch(tmp_path):
    torch, net = _small_net()
    path = tmp_path / "dynamo.onnx"
    torch.onnx.export(
        net, (torch.zeros(2, 3, 8, 8),), str(path), dynamo=True, input_names=["x"], output_names=["y"],
        dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, verbose=False,
    )
    loaded = load_model(path)
    assert _static_dims(loaded.graph.input[0]) == [1, 3, 8, 8]
    assert _static_dims(loaded.graph.output[0]) == [1, 2]
    _assert_runs_like(path, loaded)


@pytest.mark.parametrize("name", ["ic_resnet8.onnx", "vww_mobilenetv1_025.onnx", "kws_dscnn_qdq.onnx", "ad_autoencoder.onnx"])
def test_mlperf_reference_models_load(name):
    if not MLPERF.is_dir():
        pytest.skip(f"../shared absent: {MLPERF} not found")
    model = load_model(MLPERF / name)
    assert all(min(_static_dims(v)) >= 1 for v in model.graph.input)


def test_real_tflite_file_is_recognised():
    path = MLPERF / "kws_dscnn_int8.tflite"
    if not path.is_file():
        pytest.skip(f"../shared absent: {path} not found")
    with pytest.raises(BadInput, match="TensorFlow Lite"):
        load_model(path)


# ---------------------------------------------------------------------------------------------
# Errors beyond the corpus


def _raises(path: Path, error, *parts, input_shapes=None):
    with pytest.raises(BadInput) as info:
        load_model(path, input_shapes)
    assert type(info.value) is error
    _assert_user_message(info.value, path, parts)


def test_unknown_rank_input_needs_a_shape(tmp_path):
    path = _save(conv_model(), tmp_path)
    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.ClearField("shape")
    _save(model, tmp_path)
    _raises(path, BadInput, "'x' has unknown rank", "--input-shape x=")
    assert _static_dims(load_model(path, {"x": (1, 3, 5, 5)}).graph.input[0]) == [1, 3, 5, 5]


def test_all_dynamic_inputs_are_listed_at_once(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"], name="add0")],
        "two",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, "n"]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, None]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    path = _save(wrap_graph(graph), tmp_path)
    _raises(path, BadInput, "--input-shape a=1xN", "input 'b' has shape [1, ?]; give --input-shape b=1xD1")
    _raises(path, BadInput, "--input-shape b=1xD1", input_shapes={"a": (1, 5)})


def test_input_shapes_errors(tmp_path):
    model = conv_model()
    model.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 3]))
    path = _save(model, tmp_path)
    _raises(path, BadInput, "'w'", "constant initializer", input_shapes={"w": (4, 3, 3, 3)})
    _raises(path, BadInput, "positive integer", input_shapes={"x": (1, 3, 8, -8)})
    _raises(path, BadInput, "fixed at 1", input_shapes={"x": (2, 3, 8, 8)})


@pytest.mark.parametrize("elem_type, kind", [(TensorProto.FLOAT16, "float16"), (TensorProto.INT32, "int32")])
def test_unsupported_input_element_types(tmp_path, elem_type, kind):
    _raises(_save(conv_model(input_type=elem_type), tmp_path), Unsupported, f"'x' has element type {kind}")


def test_sequence_input_is_unsupported(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("SequenceLength", ["s"], ["y"], name="len0")],
        "seq",
        [helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [])],
    )
    _raises(_save(wrap_graph(graph), tmp_path), Unsupported, "'s' is a sequence_type")


def test_ml_domain_node_is_unsupported(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Normalizer", ["x"], ["y"], name="norm0", domain="ai.onnx.ml", norm="L2")],
        "ml",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = wrap_graph(graph, extra_opsets=(("ai.onnx.ml", 3),))
    _raises(_save(model, tmp_path), Unsupported, "'norm0' (Normalizer)", "ai.onnx.ml")


def test_self_loop_is_a_cycle(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["y"], name="self_add")],
        "loop",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    _raises(_save(wrap_graph(graph), tmp_path), BadInput, "cycle: 'self_add' (Add) -> 'self_add' (Add)")


def test_unproduced_output_and_no_outputs(tmp_path):
    model = relu_model((1, 4))
    model.graph.output.append(helper.make_tensor_value_info("nowhere", TensorProto.FLOAT, [1]))
    _raises(_save(model, tmp_path, "a.onnx"), BadInput, "graph output 'nowhere'")
    del model.graph.output[:]
    _raises(_save(model, tmp_path, "b.onnx"), BadInput, "no outputs")


def test_duplicate_graph_inputs(tmp_path):
    model = relu_model((1, 4))
    model.graph.input.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]))
    _raises(_save(model, tmp_path), BadInput, "'x' is defined twice")


def test_model_without_runtime_inputs(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["c"], ["y"], name="relu0")],
        "const",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.ones(2, np.float32), "c")],
    )
    _raises(_save(wrap_graph(graph), tmp_path), BadInput, "no runtime inputs")


def test_checker_failure_is_condensed(tmp_path):
    model = relu_model((1, 4))
    model.graph.node[0].attribute.append(helper.make_attribute("alpha", 1.0))  # Relu has no attributes
    _raises(_save(model, tmp_path), BadInput, "ONNX checker rejects", "alpha")


def test_short_raw_data_is_rejected(tmp_path):
    model = conv_model()
    model.graph.initializer[0].raw_data = model.graph.initializer[0].raw_data[:12]
    _raises(_save(model, tmp_path), BadInput, "initializer 'w'", "12 bytes of raw data (432 expected)")


def test_zero_size_and_huge_initializers(tmp_path):
    model = conv_model()
    model.graph.initializer.append(helper.make_tensor("empty2d", TensorProto.FLOAT, [0, 4], []))
    _raises(_save(model, tmp_path, "a.onnx"), BadInput, "initializer 'empty2d'", "zero-size")
    model = conv_model()
    model.graph.initializer.append(_dims_only("huge", [2**16, 2**16]))
    _raises(_save(model, tmp_path, "b.onnx"), BadInput, "'huge'", "4294967296 elements")
    model = conv_model()
    model.graph.initializer.append(_dims_only("big", [2**15, 2**15]))
    _raises(_save(model, tmp_path, "c.onnx"), BadInput, "'big'", "4294967296 bytes")


def _dims_only(name: str, dims: list[int]) -> onnx.TensorProto:
    """A float tensor that declares dims but holds no data (as a corrupt file would)."""
    tensor = onnx.TensorProto(name=name, data_type=TensorProto.FLOAT)
    tensor.dims.extend(dims)
    return tensor


def test_inferred_zero_size_value_is_rejected(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"], name="slice0")],
        "slice",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(np.array([2], np.int64), "starts"),
            numpy_helper.from_array(np.array([2], np.int64), "ends"),
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
        ],
    )
    _raises(_save(wrap_graph(graph), tmp_path), BadInput, "output 'y'", "zero-size")


def test_names_that_are_not_utf8_are_corruption(tmp_path):
    data = relu_model((1, 4)).SerializeToString()
    assert data.count(b"relu0") == 1
    path = tmp_path / "latin1.onnx"
    path.write_bytes(data.replace(b"relu0", b"rel\xe90"))
    _raises(path, BadInput, "node name b'rel\\xe90'", "not valid UTF-8")


def test_foreign_formats(tmp_path):
    for name, data, part in [
        ("model.pt", b"PK\x03\x04" + bytes(100), "ZIP archive"),
        ("model.h5", b"\x89HDF\r\n\x1a\n" + bytes(100), "HDF5"),
        ("blank.onnx", b"\x12\x03abc", "does not contain an ONNX model"),  # a ModelProto with only producer_name
    ]:
        (tmp_path / name).write_bytes(data)
        _raises(tmp_path / name, BadInput, part)


def test_external_data_escaping_the_model_folder(tmp_path):
    inner = tmp_path / "models"
    inner.mkdir()
    path = inner / "ext.onnx"
    onnx.save_model(conv_model(), str(path), save_as_external_data=True, location="ext.data", size_threshold=0)
    (inner / "ext.data").rename(tmp_path / "ext.data")
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../ext.data"
    onnx.save_model(model, str(path))
    _raises(path, BadInput, "external data", "outside")


def test_external_data_out_of_bounds(tmp_path):
    path = tmp_path / "ext.onnx"
    onnx.save_model(conv_model(), str(path), save_as_external_data=True, location="ext.data", size_threshold=0)
    (tmp_path / "ext.data").write_bytes(b"\0" * 8)
    _raises(path, BadInput, "external data")


def test_file_over_2_gib_is_refused_without_reading(tmp_path):
    path = tmp_path / "huge.onnx"
    with open(path, "wb") as f:
        f.truncate(2 * 1024**3 + 1)  # sparse: no disk space used
    _raises(path, BadInput, "2 GiB")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path):
    path = _save(conv_model(), tmp_path)
    path.chmod(0)
    try:
        _raises(path, BadInput, "cannot read")
    finally:
        path.chmod(0o600)


def test_mutated_files_never_escape_as_other_exceptions(tmp_path):
    """Byte-level fuzzing: every mutant either loads or raises BadInput, never anything else."""
    data = bytearray(conv_model(input_dims=("N", 3, 8, 8)).SerializeToString())
    rng = np.random.default_rng(1234)
    path = tmp_path / "mutant.onnx"
    outcomes = {"loaded": 0, "rejected": 0}
    for _ in range(300):
        mutant = bytearray(data)
        for position in rng.integers(0, len(mutant), size=rng.integers(1, 4)):
            mutant[position] = rng.integers(0, 256)
        path.write_bytes(bytes(mutant))
        try:
            load_model(path)
            outcomes["loaded"] += 1
        except BadInput as err:
            _assert_user_message(err, path)
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 0 and outcomes["loaded"] > 0, outcomes
