"""A corpus of broken (and a few tricky but valid) model files and command-line arguments.

``write_broken_corpus(directory)`` writes the files and returns one ``BrokenCase`` per case. The
first three fields are ``(path, exit_code, message_parts)``: the CLI must exit with
``exit_code`` and its error message must contain every string in ``message_parts``. The other
fields say how to run the case and which stage must reject it:

- ``stage="load"``: ``tinycc.frontend.load.load_model`` raises ``error``;
- ``stage="convert"``: the file is a valid ONNX model that loads, and the ONNX front end must raise
  ``Unsupported`` naming the op type and the node;
- ``stage="arguments"``: the command line is bad (``--input-shape``/``--sram``), rejected before any
  model is read;
- ``stage="ok"``: the model is valid (tricky but legal) and must load and inspect fine.

Models are built with ``onnx.helper`` and saved without validation, so they stay broken.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tinycc.errors import EXIT_BAD_INPUT, EXIT_OK, BadInput, TinyccError, Unsupported

OPSET = 13


class BrokenCase(NamedTuple):
    path: Path
    exit_code: int
    message_parts: tuple[str, ...]
    stage: str = "load"
    error: type[TinyccError] | None = BadInput
    cli_args: tuple[str, ...] = ()  # extra arguments after the model path
    command: str = "inspect"  # the CLI subcommand that exercises the case

    @property
    def name(self) -> str:
        return self.path.name if not self.cli_args else f"{self.path.name} {' '.join(self.cli_args)}"


# ---------------------------------------------------------------------------------------------
# Valid building blocks


def conv_model(
    input_dims: tuple[int | str | None, ...] = (1, 3, 8, 8),
    opset: int = OPSET,
    input_type: int = TensorProto.FLOAT,
    weight_type: int = TensorProto.FLOAT,
) -> onnx.ModelProto:
    """x -> Conv 'conv0' (3->4 channels, 3x3, pad 1) -> Relu 'relu0' -> y."""
    weight = numpy_helper.from_array(np.ones((4, 3, 3, 3), helper.tensor_dtype_to_np_dtype(weight_type)), "w")
    bias = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu0"),
    ]
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", input_type, list(input_dims))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [weight, bias],
    )
    return wrap_graph(graph, opset)


def relu_model(input_dims: tuple[int, ...]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu0")],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_dims))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    return wrap_graph(graph)


def wrap_graph(graph: onnx.GraphProto, opset: int = OPSET, extra_opsets: tuple[tuple[str, int], ...] = ()) -> onnx.ModelProto:
    """A ModelProto (IR 8) importing the standard domain at `opset`, plus `extra_opsets`."""
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="tinycc-tests")
    model.ir_version = 8
    return model


# ---------------------------------------------------------------------------------------------
# Broken variants


def truncated_conv_bytes() -> list[tuple[str, bytes]]:
    """The conv model cut at several points, all inside length-delimited fields."""
    data = conv_model().SerializeToString()
    return [(f"cut{cut}", data[:cut]) for cut in (9, len(data) // 2, len(data) - 3)]


def cyclic_model() -> onnx.ModelProto:
    """x -> Add 'add_loop' <-> Relu 'relu_loop': each reads the other's output."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "r"], ["a"], name="add_loop"),
            helper.make_node("Relu", ["a"], ["r"], name="relu_loop"),
            helper.make_node("Identity", ["r"], ["y"], name="out"),
        ],
        "cycle",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    return wrap_graph(graph)


def unsorted_conv_model() -> onnx.ModelProto:
    model = conv_model()
    nodes = list(reversed([_copy(n) for n in model.graph.node]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def missing_initializer_model() -> onnx.ModelProto:
    model = conv_model()
    kept = [_copy(t) for t in model.graph.initializer if t.name != "b"]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def dangling_input_model() -> onnx.ModelProto:
    model = conv_model()
    model.graph.node[1].input[0] = "ghost"
    return model


def duplicate_output_model() -> onnx.ModelProto:
    model = conv_model()
    model.graph.node.append(helper.make_node("Sigmoid", ["x"], ["c"], name="sigmoid_dup"))
    return model


def rnn_model() -> onnx.ModelProto:
    """ONNX's plain RNN (LSTM and GRU are implemented, RNN is not)."""
    seq, batch, features, hidden = 2, 1, 4, 3
    w = numpy_helper.from_array(np.full((1, hidden, features), 0.1, np.float32), "W")
    r = numpy_helper.from_array(np.full((1, hidden, hidden), 0.1, np.float32), "R")
    graph = helper.make_graph(
        [helper.make_node("RNN", ["x", "W", "R"], ["y"], name="rnn0", hidden_size=hidden)],
        "rnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [seq, batch, features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w, r],
    )
    return wrap_graph(graph)


def nms_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["selected"], name="nms0")],
        "nms",
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 5, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 5]),
        ],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, None)],
    )
    return wrap_graph(graph)


def custom_domain_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"], name="relu0"),
            helper.make_node("FancyConv", ["r"], ["y"], name="custom0", domain="com.example"),
        ],
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    return wrap_graph(graph, extra_opsets=(("com.example", 1),))


def _copy(message):
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


# ---------------------------------------------------------------------------------------------
# The corpus


def write_broken_corpus(directory: Path) -> list[BrokenCase]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cases: list[BrokenCase] = []

    def raw(name: str, data: bytes, *parts: str) -> None:
        path = directory / name
        path.write_bytes(data)
        cases.append(BrokenCase(path, EXIT_BAD_INPUT, parts))

    def model(name: str, proto: onnx.ModelProto, *parts: str, **fields) -> Path:
        path = directory / name
        onnx.save_model(proto, str(path))
        exit_code = EXIT_OK if fields.get("stage") == "ok" else EXIT_BAD_INPUT
        cases.append(BrokenCase(path, exit_code, parts, **fields))
        return path

    # Not a file, or not ONNX at all.
    cases.append(BrokenCase(directory / "does_not_exist.onnx", EXIT_BAD_INPUT, ("no such file",)))
    (directory / "folder.onnx").mkdir(exist_ok=True)
    cases.append(BrokenCase(directory / "folder.onnx", EXIT_BAD_INPUT, ("is a directory",)))
    raw("empty.onnx", b"", "empty")
    raw("notes.onnx", b"This is not a model.\nJust some notes about one.\n", "text file")
    raw("random.onnx", np.random.default_rng(0).bytes(1000), "not a valid ONNX protobuf")
    raw("fake.tflite", b"\x1c\x00\x00\x00TFL3" + bytes(200), "TensorFlow Lite")
    npy_path = directory / "array.npy"
    np.save(npy_path, np.zeros((2, 3), np.float32))
    cases.append(BrokenCase(npy_path, EXIT_BAD_INPUT, ("NumPy",)))
    for label, data in truncated_conv_bytes():
        raw(f"truncated_{label}.onnx", data, "truncated or corrupt")

    # Valid protobuf, invalid graph.
    model("int64_input.onnx", conv_model(input_type=TensorProto.INT64), "'x'", "int64", error=Unsupported)
    model("int64_weights.onnx", conv_model(weight_type=TensorProto.INT64), "shape inference", "conv0")
    model("cycle.onnx", cyclic_model(), "cycle", "add_loop", "relu_loop")
    model("missing_initializer.onnx", missing_initializer_model(), "conv0", "'b'")
    model("dangling_input.onnx", dangling_input_model(), "relu0", "'ghost'")
    model("duplicate_output.onnx", duplicate_output_model(), "'c'", "defined twice")
    model("opset7.onnx", conv_model(opset=7), "opset 7", "version_converter", error=Unsupported)
    model("opset99.onnx", conv_model(opset=99), "opset 99", error=Unsupported)
    model("custom_domain.onnx", custom_domain_model(), "FancyConv", "custom0", "com.example", error=Unsupported)
    model("zero_dim.onnx", conv_model(input_dims=(1, 3, 0, 8)), "'x'", "zero-size")
    model("absurd_dim.onnx", relu_model((1, 2**30)), "'x'", "2**24")
    _write_model_missing_external_data(directory / "external_missing.onnx")
    cases.append(BrokenCase(directory / "external_missing.onnx", EXIT_BAD_INPUT, ("external", "missing")))

    # Dynamic dimensions and --input-shape.
    dynamic = model("dynamic_hw.onnx", conv_model(input_dims=("N", 3, "h", "w")), "--input-shape x=1x3xHxW")
    for shape, parts in [
        ("y=1x3x8x8", ("'y'", "no such input")),
        ("x=1x3x8", ("rank 3",)),
        ("x=1x4x8x8", ("contradicts", "fixed at 3")),
    ]:
        cases.append(BrokenCase(dynamic, EXIT_BAD_INPUT, parts, cli_args=("--input-shape", shape)))
    for shape in ("x=1x3xAx8", "x=", "=1x3x8x8", "x=1x3x0x8", "x=1x3x-8x8", "x:1x3x8x8"):
        cases.append(BrokenCase(dynamic, EXIT_BAD_INPUT, (repr(shape),), "arguments", None, ("--input-shape", shape)))
    cases.append(BrokenCase(dynamic, EXIT_OK, (), "ok", None, ("--input-shape", "x=1x3x8x8")))

    # Valid models the converter must reject, and valid-but-tricky ones that must load.
    model("rnn.onnx", rnn_model(), "RNN", "rnn0", stage="convert", error=Unsupported, command="compile")
    model("nms.onnx", nms_model(), "NonMaxSuppression", "nms0", stage="convert", error=Unsupported, command="compile")
    valid = model("unsorted.onnx", unsorted_conv_model(), stage="ok", error=None)
    for size in ("12q", "-5k", "0", "1.1k", "k", "256 kilobytes"):
        # "--sram=VALUE": argparse would take a separate "-5k" for an option name.
        cases.append(BrokenCase(valid, EXIT_BAD_INPUT, (repr(size),), "arguments", None, (f"--sram={size}",), "compile"))
    return cases


def _write_model_missing_external_data(path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul0")],
        "external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
        [numpy_helper.from_array(np.ones((16, 16), np.float32), "w")],
    )
    onnx.save_model(
        wrap_graph(graph), str(path), save_as_external_data=True, location=path.name + ".data", size_threshold=0
    )
    (path.parent / (path.name + ".data")).unlink()


# ---------------------------------------------------------------------------------------------
# Small valid models: fuzz seeds (tests/fuzz) and the starting points of regression cases


def gemm_softmax_model(weight: np.ndarray | None = None) -> onnx.ModelProto:
    """x [1, 8] -> Gemm 'fc0' (8 -> 4, transB) -> Softmax 'softmax0' -> y."""
    if weight is None:
        weight = np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w", "b"], ["logits"], name="fc0", transB=1),
            helper.make_node("Softmax", ["logits"], ["y"], name="softmax0", axis=-1),
        ],
        "gemm_softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight.astype(np.float32), "w"),
         numpy_helper.from_array(np.array([0.1, -0.2, 0.3, 0.0], np.float32), "b")],
    )
    return wrap_graph(graph)


def ceil_pool_model(size: int = 7, kernel: int = 2, stride: int = 2, pads: tuple[int, ...] = (0, 0, 0, 0),
                    op_type: str = "MaxPool") -> onnx.ModelProto:
    """x [1, 2, size, size] -> MaxPool/AveragePool 'pool0' (ceil_mode=1) -> Relu 'relu0' -> y."""
    graph = helper.make_graph(
        [
            helper.make_node(op_type, ["x"], ["p"], name="pool0", kernel_shape=[kernel, kernel],
                             strides=[stride, stride], pads=list(pads), ceil_mode=1),
            helper.make_node("Relu", ["p"], ["y"], name="relu0"),
        ],
        "ceil_pool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    return wrap_graph(graph)


def reshape_only_model() -> onnx.ModelProto:
    """x [1, 2, 3, 4] -> Reshape 'flat0' [1, 24] -> Identity 'id0' -> y: no computation at all."""
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["x", "shape"], ["r"], name="flat0"),
            helper.make_node("Identity", ["r"], ["y"], name="id0"),
        ],
        "reshape_only",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, 24], np.int64), "shape")],
    )
    return wrap_graph(graph)


def conv1d_bn_model() -> onnx.ModelProto:
    """x [1, 3, 16] -> Conv 'conv0' (1-D, 3 -> 4, k 3, bias) -> BatchNormalization 'bn0' -> Relu -> y."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b"),
        numpy_helper.from_array(np.array([1.0, 0.5, 2.0, 1.5], np.float32), "gamma"),
        numpy_helper.from_array(np.array([0.0, 0.1, -0.1, 0.2], np.float32), "beta"),
        numpy_helper.from_array(np.array([0.0, 0.5, -0.5, 0.1], np.float32), "mean"),
        numpy_helper.from_array(np.array([1.0, 2.0, 0.5, 1.0], np.float32), "var"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv0", pads=[1, 1]),
            helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"], name="bn0"),
            helper.make_node("Relu", ["n"], ["y"], name="relu0"),
        ],
        "conv1d_bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    return wrap_graph(graph)


def qdq_conv_model() -> onnx.ModelProto:
    """A pre-quantized (QDQ) model as TFLite's converter writes it, in miniature: int8 input ->
    DQ -> Conv 'conv0' (per-channel int8 weights, int32 bias) -> Q -> DQ -> GlobalAveragePool
    'gap0' -> Q -> DQ -> Flatten 'flat0' -> Gemm 'fc0' (per-tensor weights) -> Q -> int8 output."""
    rng = np.random.default_rng(1)
    s_in, s_conv, s_gap, s_out = 0.05, 0.1, 0.08, 0.2
    w_scale = np.array([0.01, 0.02, 0.015, 0.03], np.float32)
    fc_scale = np.float32(0.02)

    def q(name: str, array, dtype) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(array, dtype), name)

    inits = [
        q("s_in", s_in, np.float32), q("zp_in", -3, np.int8), q("s_conv", s_conv, np.float32), q("zp_conv", 5, np.int8),
        q("s_gap", s_gap, np.float32), q("zp_gap", 0, np.int8), q("s_out", s_out, np.float32), q("zp_out", -10, np.int8),
        q("w_q", rng.integers(-127, 128, (4, 3, 3, 3)), np.int8), q("w_s", w_scale, np.float32),
        q("w_zp", np.zeros(4), np.int8),
        q("b_q", rng.integers(-500, 500, 4), np.int32), q("b_s", w_scale * np.float32(s_in), np.float32),
        q("b_zp", np.zeros(4), np.int32),
        q("fc_q", rng.integers(-127, 128, (4, 5)), np.int8), q("fc_s", fc_scale, np.float32), q("fc_zp", 0, np.int8),
        q("fcb_q", rng.integers(-300, 300, 5), np.int32), q("fcb_s", fc_scale * np.float32(s_gap), np.float32),
        q("fcb_zp", 0, np.int32),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "s_in", "zp_in"], ["x_f"], name="dq_x"),
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_zp"], ["w_f"], name="dq_w", axis=0),
        helper.make_node("DequantizeLinear", ["b_q", "b_s", "b_zp"], ["b_f"], name="dq_b", axis=0),
        helper.make_node("Conv", ["x_f", "w_f", "b_f"], ["c"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("QuantizeLinear", ["c", "s_conv", "zp_conv"], ["c_q"], name="q_c"),
        helper.make_node("DequantizeLinear", ["c_q", "s_conv", "zp_conv"], ["c_f"], name="dq_c"),
        helper.make_node("GlobalAveragePool", ["c_f"], ["g"], name="gap0"),
        helper.make_node("QuantizeLinear", ["g", "s_gap", "zp_gap"], ["g_q"], name="q_g"),
        helper.make_node("DequantizeLinear", ["g_q", "s_gap", "zp_gap"], ["g_f"], name="dq_g"),
        helper.make_node("Flatten", ["g_f"], ["flat"], name="flat0"),
        helper.make_node("DequantizeLinear", ["fc_q", "fc_s", "fc_zp"], ["fc_f"], name="dq_fc"),
        helper.make_node("DequantizeLinear", ["fcb_q", "fcb_s", "fcb_zp"], ["fcb_f"], name="dq_fcb"),
        helper.make_node("Gemm", ["flat", "fc_f", "fcb_f"], ["logits"], name="fc0"),
        helper.make_node("QuantizeLinear", ["logits", "s_out", "zp_out"], ["y"], name="q_y"),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq_conv",
        [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 5])],
        inits,
    )
    return wrap_graph(graph)
