"""Resize (nearest) through the compiler: the import's source indices are the golden model's
nearest_indices (one function), so the float engine equals onnxruntime on a dense grid of sizes,
scales, coordinate_transformation_modes and nearest_modes; the int8 golden model equals the C."""
from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tinycc.frontend import load_graph
from tinycc.passes import run_pipeline
from tinycc.reference.float_exec import run_float

ort = pytest.importorskip("onnxruntime")

COORD_MODES = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
               "tf_half_pixel_for_nn"]
NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
# (in, out) along one axis for the `sizes` input: every shrink and growth up to 6 -> 10
SIZE_PAIRS = [(i, o) for i in range(1, 7) for o in range(1, 11)]
# non-integer scales included (x1/3, x2/3, x4/3 disagreed with onnxruntime before the fix)
SCALES = [1 / 3, 2 / 3, 4 / 3, 0.25, 0.5, 0.6, 0.75, 1.5, 1.7, 2.0, 2.5, 3.0]
SCALE_INPUTS = [3, 4, 5, 6, 7, 9]


def _position_input(h: int, w: int) -> np.ndarray:
    """Values that encode their own (row, column), so the output names its source pixel."""
    return (np.arange(h)[:, None] * 1000 + np.arange(w)[None, :]).astype(np.float32)[None, None]


def _cases():
    """(in_hw, sizes or None, scales or None): H and W take different pairs, so both axes vary."""
    cases = []
    pairs = SIZE_PAIRS
    for a, b in zip(pairs, pairs[7:] + pairs[:7]):
        cases.append(((a[0], b[0]), (a[1], b[1]), None))
    for s, (hin, win) in itertools.product(SCALES, zip(SCALE_INPUTS, SCALE_INPUTS[1:] + SCALE_INPUTS[:1])):
        s2 = SCALES[(SCALES.index(s) + 5) % len(SCALES)]
        oh, ow = int(np.floor(np.float32(hin) * np.float32(s))), int(np.floor(np.float32(win) * np.float32(s2)))
        if oh >= 1 and ow >= 1:
            cases.append(((hin, win), None, (s, s2)))
    return cases


def _model(cases, coord: str, nearest: str) -> onnx.ModelProto:
    """One Resize node per case, each on its own input (one onnxruntime session for the grid)."""
    nodes, inputs, outputs, inits = [], [], [], []
    for k, ((h, w), sizes, scales) in enumerate(cases):
        if sizes is not None:
            inits.append(helper.make_tensor(f"sizes{k}", TensorProto.INT64, [4], [1, 1, *sizes]))
            ins = [f"x{k}", "", "", f"sizes{k}"]
        else:
            inits.append(helper.make_tensor(f"scales{k}", TensorProto.FLOAT, [4], [1, 1, *scales]))
            ins = [f"x{k}", "", f"scales{k}"]
        nodes.append(helper.make_node("Resize", ins, [f"y{k}"], mode="nearest",
                                      coordinate_transformation_mode=coord, nearest_mode=nearest))
        inputs.append(helper.make_tensor_value_info(f"x{k}", TensorProto.FLOAT, [1, 1, h, w]))
        outputs.append(helper.make_tensor_value_info(f"y{k}", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "resize_grid", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)


@pytest.mark.parametrize("coord", COORD_MODES)
def test_float_engine_matches_onnxruntime_on_a_dense_grid(tmp_path, coord):
    cases = _cases()
    feeds = {f"x{k}": _position_input(*hw) for k, (hw, _, _) in enumerate(cases)}
    for nearest in NEAREST_MODES:
        model = _model(cases, coord, nearest)
        path = tmp_path / f"{nearest}.onnx"
        onnx.save(model, path)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        got = run_float(run_pipeline(load_graph(path)), feeds)
        for k, (hw, sizes, scales) in enumerate(cases):
            what = f"{coord}/{nearest} {hw} -> sizes {sizes} scales {scales}"
            assert got[f"y{k}"].shape == want[f"y{k}"].shape, what
            np.testing.assert_array_equal(got[f"y{k}"], want[f"y{k}"], err_msg=what)


@pytest.mark.parametrize("coord,nearest,scales", [("half_pixel", "floor", (1 / 3, 4 / 3)),
                                                  ("asymmetric", "round_prefer_ceil", (2 / 3, 4 / 3)),
                                                  ("align_corners", "round_prefer_floor", (1.5, 0.6))])
def test_int8_golden_equals_c(tmp_path, coord, nearest, scales):
    """A conv before the resize gives it quantization params; int8 golden == C, and the golden
    resize takes the same pixels as onnxruntime does."""
    from onnx import numpy_helper

    from tinycc.compiler import QuantOptions
    from tinycc.engines import CompiledModel

    rng = np.random.default_rng(5)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 1, 1)).astype(np.float32), "w")
    sc = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, *scales])
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Resize", ["c", "", "scales"], ["y"], mode="nearest",
                              coordinate_transformation_mode=coord, nearest_mode=nearest)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, sc])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    onnx.save(model, tmp_path / "m.onnx")
    compiled = CompiledModel(run_pipeline(load_graph(tmp_path / "m.onnx")), QuantOptions(), warn=lambda m: None)
    x = {"x": rng.standard_normal((1, 3, 9, 6)).astype(np.float32)}
    golden = compiled.run_int8(x)["y"]
    c_out, _ = compiled.run_c(x)
    np.testing.assert_array_equal(c_out["y"], golden)
    # the int8 resize picks the pixels onnxruntime picks (the conv output is its input)
    conv_q = {}
    compiled.run_int8(x, observe=lambda t, v: conv_q.__setitem__(t, v))
    h, w_ = 9, 6
    pos = helper.make_graph([helper.make_node("Resize", ["p", "", "scales"], ["q"], mode="nearest",
                                              coordinate_transformation_mode=coord, nearest_mode=nearest)],
                            "p", [helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, 1, h, w_])],
                            [helper.make_tensor_value_info("q", TensorProto.FLOAT, None)], [sc])
    src = ort.InferenceSession(helper.make_model(pos, opset_imports=[helper.make_opsetid("", 19)],
                                                 ir_version=9).SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {"p": _position_input(h, w_)})[0]
    rows, cols = src[0, 0, :, 0].astype(int) // 1000, src[0, 0, 0, :].astype(int) % 1000
    conv_nhwc = conv_q[compiled.program.steps[0].outputs[0]].reshape(1, h, w_, 4)
    np.testing.assert_array_equal(golden, conv_nhwc[:, rows][:, :, cols])
