"""ONNX LSTM and GRU (tinycc/ops/recurrent.py): float against onnxruntime (directions, layouts,
linear_before_reset, initial states, Y / Y_h / Y_c), torch's nn.LSTM / nn.GRU through both
exporters, the int8 kernels against their numpy mirrors (random shapes and zero points, argument
errors), TFLM's int16 sigmoid / tanh against the float functions, and end to end: golden == C
(ASan/UBSan build) with the state in planned scratch, and int8 vs float SQNR."""
from __future__ import annotations

import ctypes
import warnings
from dataclasses import asdict, fields

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cbuild import ptr, require_sanitizers, runtime_library
from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.errors import Unsupported
from tinycc.frontend import load_graph
from tinycc.kernels import lookup
from tinycc.ops.recurrent import (GruParams, LstmParams, cell_scale_power, gru_s8, lstm_s8, make_gru_params,
                                  make_lstm_params, sigmoid_q15, tanh_multiplier, tanh_q15)
from tinycc.passes import run_pipeline
from tinycc.reference.float_exec import run_float

RNG = np.random.default_rng(14)
GATES = {"LSTM": 4, "GRU": 3}


def _onnx_model(path, op, steps=6, in_size=5, hidden=7, direction="forward", layout=0, lbr=0, batch=1,
                outputs=("y", "y_h"), initial=False, opset=17):
    """One ONNX LSTM/GRU node with constant weights (and optionally constant initial states)."""
    g, dirs = GATES[op], 2 if direction == "bidirectional" else 1
    inits = [numpy_helper.from_array(RNG.normal(0, 0.5, (dirs, g * hidden, in_size)).astype(np.float32), "W"),
             numpy_helper.from_array(RNG.normal(0, 0.5, (dirs, g * hidden, hidden)).astype(np.float32), "R"),
             numpy_helper.from_array(RNG.normal(0, 0.3, (dirs, 2 * g * hidden)).astype(np.float32), "B")]
    inputs = ["x", "W", "R", "B"]
    if initial:
        state = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
        inputs += ["", "h0"] + (["c0"] if op == "LSTM" else [])
        inits.append(numpy_helper.from_array(RNG.normal(0, 0.5, state).astype(np.float32), "h0"))
        if op == "LSTM":
            inits.append(numpy_helper.from_array(RNG.normal(0, 0.5, state).astype(np.float32), "c0"))
    attrs = dict(hidden_size=hidden, direction=direction)
    if layout:
        attrs["layout"] = 1
    if op == "GRU":
        attrs["linear_before_reset"] = lbr
    names = {"y": "y", "y_h": "y_h", "y_c": "y_c"}
    outs = [names[o] if o in outputs else "" for o in ("y", "y_h", "y_c")[:3 if op == "LSTM" else 2]]
    while outs and not outs[-1]:
        outs.pop()
    node = helper.make_node(op, inputs, outs, name="rnn", **attrs)
    x_shape = [batch, steps, in_size] if layout else [steps, batch, in_size]
    graph = helper.make_graph([node], "rnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs if o], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, path)
    return model, x_shape


def _ort(model, feeds):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def _ort_reference(model, x, layout):
    """onnxruntime's outputs; it refuses layout=1 (batchwise), so that model runs as its layout-0
    twin (input, initial states and outputs transposed)."""
    if not layout:
        return _ort(model, {"x": x})
    twin = onnx.ModelProto()
    twin.CopyFrom(model)
    node = twin.graph.node[0]
    node.ClearField("attribute")
    node.attribute.extend(a for a in model.graph.node[0].attribute if a.name != "layout")
    for init in twin.graph.initializer:
        if init.name in ("h0", "c0"):
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).transpose(1, 0, 2).copy(), init.name))
    twin.graph.input[0].CopyFrom(helper.make_tensor_value_info("x", TensorProto.FLOAT, x.transpose(1, 0, 2).shape))
    outs = _ort(twin, {"x": x.transpose(1, 0, 2).copy()})
    return [o.transpose(2, 0, 1, 3) if o.ndim == 4 else o.transpose(1, 0, 2) for o in outs]


# ---- float ----------------------------------------------------------------------------------------
FLOAT_CASES = [("LSTM", "forward", 0, 0), ("LSTM", "reverse", 1, 0), ("LSTM", "bidirectional", 0, 0),
               ("GRU", "forward", 0, 0), ("GRU", "forward", 0, 1), ("GRU", "reverse", 1, 1),
               ("GRU", "bidirectional", 1, 0)]


@pytest.mark.parametrize("op,direction,layout,lbr", FLOAT_CASES)
def test_float_matches_onnxruntime(tmp_path, op, direction, layout, lbr):
    outputs = ("y", "y_h", "y_c") if op == "LSTM" else ("y", "y_h")
    model, x_shape = _onnx_model(tmp_path / "m.onnx", op, direction=direction, layout=layout, lbr=lbr, batch=2,
                                 outputs=outputs, initial=True, opset=14 if layout else 17)
    x = RNG.normal(0, 1, x_shape).astype(np.float32)
    got = run_float(run_pipeline(load_graph(tmp_path / "m.onnx")), {"x": x})
    for name, want in zip(outputs, _ort_reference(model, x, layout)):
        np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-6, err_msg=name)


def _torch_rnn(kind: str):
    import torch

    class Net(torch.nn.Module):
        """nn.LSTM / nn.GRU, batch first, then a linear layer on the last step, taken the two
        usual ways: y[:, -1] (LSTM here: a Gather of Y) and h_n[-1] (GRU here: Y_h)."""

        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, kind)(10, 12, batch_first=True)
            self.fc = torch.nn.Linear(12, 4)

        def forward(self, x):
            y, h_n = self.rnn(x)
            return self.fc(y[:, -1] if kind == "LSTM" else h_n[-1])

    torch.manual_seed(0)
    return Net().eval()


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_torch_export_float_and_int8(tmp_path, kind, exporter):
    """torch.onnx's nn.LSTM / nn.GRU (ONNX LSTM/GRU nodes, zero initial states built by Expand):
    float == torch, int8 golden == C, SQNR >= 30 dB."""
    torch = pytest.importorskip("torch")
    net = _torch_rnn(kind)
    x = torch.randn(1, 15, 10, generator=torch.Generator().manual_seed(1))
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.set_num_threads(1)
        torch.onnx.export(net, (x,), str(path), dynamo=exporter == "dynamo", input_names=["x"],
                          output_names=["y"], opset_version=18 if exporter == "dynamo" else 17,
                          **({"external_data": False, "verbose": False} if exporter == "dynamo" else {}))
        want = net(x).detach().numpy()
    assert kind in {n.op_type for n in onnx.load(path).graph.node}
    g = run_pipeline(load_graph(path))
    (node,) = [n for n in g.nodes if n.op == kind]
    assert node.inputs[4:] == [], "the exporters' zero initial states are dropped (not parameters)"
    np.testing.assert_allclose(run_float(g, {"x": x.numpy()})["y"], want, rtol=1e-4, atol=1e-5)
    compiled = _compile(g, tmp_path, (1, 15, 10))
    assert [s.kernel for s in compiled.program.steps if s.op == kind] == [f"tc_{kind.lower()}_s8"]
    _golden_equals_c_and_sqnr(compiled, g, (1, 15, 10), min_sqnr=30.0)


# ---- int8 end to end --------------------------------------------------------------------------------
def _compile(g, tmp_path, x_shape):
    calib = tmp_path / "calib.npy"
    np.save(calib, RNG.normal(0, 1, (24, *x_shape)).astype(np.float32))
    return CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)


def _sqnr(ref, got) -> float:
    ref = ref.astype(np.float64)
    return 10 * np.log10((ref ** 2).sum() / max(((got - ref) ** 2).sum(), 1e-30))


def _golden_equals_c_and_sqnr(compiled, g, x_shape, min_sqnr, check=False, samples=3):
    ref, got = [], []
    for k in range(samples):
        feeds = {"x": RNG.normal(0, 1, x_shape).astype(np.float32)}
        golden = compiled.run_int8(feeds)
        c_out, _ = compiled.run_c(feeds, check=check)
        floats = run_float(g, feeds)
        for name, v in golden.items():
            np.testing.assert_array_equal(c_out[name], v, err_msg=f"{name} sample {k}")
            ref.append(floats[name].ravel())
            got.append(compiled.logical(name, v, True).ravel())
    sqnr = _sqnr(np.concatenate(ref), np.concatenate(got))
    assert sqnr >= min_sqnr, f"int8 vs float SQNR {sqnr:.1f} dB"


@pytest.mark.parametrize("op,direction,lbr,batch", [("LSTM", "forward", 0, 1), ("LSTM", "bidirectional", 0, 2),
                                                    ("GRU", "bidirectional", 0, 2), ("GRU", "reverse", 1, 1)])
def test_int8_golden_equals_checked_c_with_state_in_scratch(tmp_path, op, direction, lbr, batch):
    require_sanitizers()
    _onnx_model(tmp_path / "m.onnx", op, steps=9, direction=direction, lbr=lbr, batch=batch)
    g = run_pipeline(load_graph(tmp_path / "m.onnx"))
    compiled = _compile(g, tmp_path, (9, batch, 5))
    steps = [s for s in compiled.program.steps if s.op == op]
    assert [s.kernel for s in steps] == [f"tc_{op.lower()}_s8"] * (2 if direction == "bidirectional" else 1)
    # the state: one scratch buffer of the declared size, placed by the planner for each step
    for step in steps:
        assert step.scratch_bytes == lookup(step.kernel).scratch_bytes(step.params) > 0
    assert compiled.mem.arena_bytes >= steps[0].scratch_bytes + 9 * batch * (5 + 7 * len(steps))
    _golden_equals_c_and_sqnr(compiled, g, (9, batch, 5), min_sqnr=30.0, check=True, samples=2)


def test_int8_refuses_clearly_what_it_does_not_implement(tmp_path):
    _onnx_model(tmp_path / "h0.onnx", "GRU", initial=True)
    _onnx_model(tmp_path / "yc.onnx", "LSTM", outputs=("y_c",))
    for name, why in (("h0", "initial_h"), ("yc", "final cell state")):
        g = run_pipeline(load_graph(tmp_path / f"{name}.onnx"))
        with pytest.raises(Unsupported, match=why):
            _compile(g, tmp_path, (6, 1, 5))


# ---- integer references -------------------------------------------------------------------------------
def test_tflm_sigmoid_and_tanh_within_a_few_lsb_of_the_float_functions():
    x = np.arange(-32768, 32768, dtype=np.int64)  # Q3.12
    real = x / 4096.0
    assert np.abs(sigmoid_q15(x) - 32768 / (1 + np.exp(-real))).max() <= 3
    assert np.abs(tanh_q15(x, *tanh_multiplier(-12)) - 32768 * np.tanh(real)).max() <= 3
    for power in (-15, -11, -9, 0):  # the cell state's scales
        got = tanh_q15(x, *tanh_multiplier(power))
        assert np.abs(got - 32768 * np.tanh(x * 2.0 ** power)).max() <= 4, power


def test_sigmoid_table_is_tflms_sigmoid_of_i_over_24():
    """The 256 entries copied from TFLM's sigmoid_table_uint16: sigmoid(i / 24) in 0.16 within
    one unit (TFLM's own rounding is not quite round-half-up), non-decreasing: a copying slip
    would show."""
    from tinycc.ops.recurrent import SIGMOID_TABLE_Q16

    i = np.arange(256)
    assert np.abs(SIGMOID_TABLE_Q16 - np.minimum(np.round(65536 / (1 + np.exp(-i / 24))), 65535)).max() <= 1
    assert SIGMOID_TABLE_Q16[0] == 32768 and np.all(np.diff(SIGMOID_TABLE_Q16) >= 0)


def test_cell_scale_never_saturates():
    for steps in (1, 15, 16, 49, 1000, 32767):
        p = cell_scale_power(steps)
        assert 32767 * 2.0 ** p >= steps and (p == -15 or 32767 * 2.0 ** (p - 1) < steps)


# ---- C kernels against their mirrors ------------------------------------------------------------------
def _struct(cls):
    return type(cls.C_STRUCT, (ctypes.Structure,), {"_fields_": [(f.name, ctypes.c_int32) for f in fields(cls)]})


STRUCTS = {LstmParams: _struct(LstmParams), GruParams: _struct(GruParams)}
SENTINEL = 0x5A


def _bind(lib):
    for name, argc in (("tc_lstm_s8", 11), ("tc_gru_s8", 12)):
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p] * argc
        getattr(lib, name + "_scratch_size").restype = ctypes.c_int32
        getattr(lib, name + "_scratch_size").argtypes = [ctypes.c_void_p]
    return lib


@pytest.fixture(scope="module")
def lib():
    return _bind(runtime_library())


@pytest.fixture(scope="module")
def dsp_lib():
    """The library with the ARMv7E-M DSP paths on emulated intrinsics (tc_arm_dsp.h)."""
    return _bind(runtime_library(defines=["TC_EMULATE_DSP"]))


def _random_case(op, seed):
    rng = np.random.default_rng(seed)
    steps, in_size, hidden = (int(v) for v in rng.integers(1, 12, 3))
    batch = int(rng.integers(1, 4))
    directions = int(rng.integers(1, 3))
    g = GATES[op]
    kw = dict(steps=steps, batch=batch, directions=directions, direction=int(rng.integers(directions)),
              input_size=in_size, hidden_size=hidden, reverse=int(rng.integers(2)),
              in_zp=int(rng.integers(-128, 128)), hidden_zp=int(rng.integers(-128, 128)))
    # output scales down to 2^-15 (the state's own LSB) make every state bit observable
    s_h = float(2.0 ** rng.uniform(-15, -6))
    if op == "LSTM":
        p = make_lstm_params(s_h, **kw)
    else:
        p = make_gru_params(s_h, linear_before_reset=int(rng.integers(2)), **kw)
    x = rng.integers(-128, 128, (steps, batch, in_size), dtype=np.int8)
    w = rng.integers(-127, 128, (g * hidden, in_size), dtype=np.int8)
    r = rng.integers(-127, 128, (g * hidden, hidden), dtype=np.int8)
    bias = rng.integers(-5000, 5000, g * hidden).astype(np.int32)
    # multipliers in_scale * w_scale / 2^-12 of real layers (mostly unsaturated gates), a few
    # above one (saturating)
    mults = [rng.integers(1 << 30, (1 << 31) - 1, g * hidden).astype(np.int32) for _ in range(2)]
    shifts = [np.where(rng.random(g * hidden) < 0.05, 1, rng.integers(-12, -4, g * hidden)).astype(np.int32)
              for _ in range(2)]
    consts = [w, r, bias]
    if op == "GRU":
        consts.append(rng.integers(-5000, 5000, g * hidden).astype(np.int32))
    consts += [mults[0], shifts[0], mults[1], shifts[1]]
    return p, x, consts


def _run_c(lib, op, p, x, consts):
    fn = getattr(lib, f"tc_{op.lower()}_s8")
    cp = STRUCTS[type(p)](**asdict(p))
    size = getattr(lib, f"tc_{op.lower()}_s8_scratch_size")(ctypes.byref(cp))
    scratch = np.zeros(max(size, 2) // 2, dtype=np.int16)  # 2-byte aligned, as the planner's 16
    out = np.full((p.steps, p.directions, p.batch, p.hidden_size), SENTINEL, dtype=np.int8)
    status = fn(ctypes.byref(cp), ptr(x), *(ptr(np.ascontiguousarray(c)) for c in consts), ptr(scratch), ptr(out))
    return status, out, size


@pytest.mark.parametrize("variant", ["portable", "dsp"])
@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_kernel_equals_golden_on_random_cases(lib, dsp_lib, op, variant):
    lib = dsp_lib if variant == "dsp" else lib
    golden = lstm_s8 if op == "LSTM" else gru_s8
    for seed in range(40):
        p, x, consts = _random_case(op, 100 * seed + len(op))
        status, out, size = _run_c(lib, op, p, x, consts)
        assert status == 0
        assert size == lookup(f"tc_{op.lower()}_s8").scratch_bytes(p)
        # the other direction's rows stay as they were (the golden gets them as `current`)
        want = golden(p, x, *consts, np.full_like(out, SENTINEL)).reshape(out.shape)
        np.testing.assert_array_equal(out, want, err_msg=f"seed {seed} {p}")


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_kernel_rejects_bad_arguments_and_writes_nothing(lib, op):
    p, x, consts = _random_case(op, 7)
    bad = [dict(steps=0), dict(batch=0), dict(directions=3), dict(direction=p.directions), dict(hidden_size=0), dict(reverse=2), dict(in_zp=200), dict(hidden_zp=-129)]
    bad += ([dict(cell_tanh_multiplier=5), dict(cell_tanh_multiplier=0, cell_tanh_shift=15), dict(forget_shift=1)]
            if op == "LSTM" else [dict(linear_before_reset=2)])
    golden = lstm_s8 if op == "LSTM" else gru_s8
    for change in bad:
        q = type(p)(**{**asdict(p), **change})
        status, out, _ = _run_c(lib, op, q, x, consts)
        assert status == -1 and np.all(out == SENTINEL), change
        with pytest.raises(ValueError):
            golden(q, x, *consts)
    consts[-1] = consts[-1].copy()
    consts[-1][0] = 31  # a requantization shift out of range
    status, out, _ = _run_c(lib, op, p, x, consts)
    assert status == -1 and np.all(out == SENTINEL)


def test_c_sigmoid_and_tanh_equal_their_mirrors_on_every_int16(lib):
    """The element functions every gate goes through, exhaustively: an LSB the outputs rarely
    show (the int8 output is much coarser than the int16 state) must still agree."""
    sigmoid, tanh = lib.tc_rnn_sigmoid_q15, lib.tc_rnn_tanh_q15
    sigmoid.restype, sigmoid.argtypes = ctypes.c_int16, [ctypes.c_int16]
    tanh.restype, tanh.argtypes = ctypes.c_int16, [ctypes.c_int16, ctypes.c_int32, ctypes.c_int32]
    x = np.arange(-32768, 32768, dtype=np.int64)
    assert sigmoid_q15(np.array([0]))[0] == 16384 and tanh_q15(np.array([0]), 0, 0)[0] == 0
    np.testing.assert_array_equal([sigmoid(int(v)) for v in x], sigmoid_q15(x))
    for power in (-15, -12, -9, 0):
        m, s = tanh_multiplier(power)
        np.testing.assert_array_equal([tanh(int(v), m, s) for v in x], tanh_q15(x, m, s), err_msg=str(power))


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_cortex_m4_under_qemu_equals_golden(tmp_path, op):
    """The kernels cross-compiled for a Cortex-M4 (arm-none-eabi-gcc, DSP core) give the golden
    model's bytes: a bidirectional layer (two calls, the second completing Y) and Y_h."""
    from tinycc.sim.qemu import missing_tools

    if missing_tools(run=True):
        pytest.skip(f"Cortex-M4 check: {missing_tools(run=True)}")
    _onnx_model(tmp_path / "m.onnx", op, steps=12, direction="bidirectional", lbr=1, batch=1)
    g = run_pipeline(load_graph(tmp_path / "m.onnx"))
    compiled = _compile(g, tmp_path, (12, 1, 5))
    feeds = {"x": RNG.normal(0, 1, (12, 1, 5)).astype(np.float32)}
    m4, run = compiled.run_qemu(feeds)
    for name, v in compiled.run_int8(feeds).items():
        np.testing.assert_array_equal(m4[name], v, err_msg=name)
    assert run.instructions > 0


def test_int8_refuses_a_bias_that_could_overflow_the_accumulator(tmp_path):
    """A huge bias against tiny weights and inputs: int32 gate sums could overflow in C."""
    model, _ = _onnx_model(tmp_path / "m.onnx", "GRU")
    inits = {i.name: i for i in model.graph.initializer}
    inits["W"].CopyFrom(numpy_helper.from_array(np.full((1, 21, 5), 1e-4, np.float32), "W"))
    inits["B"].CopyFrom(numpy_helper.from_array(np.full((1, 42), 50.0, np.float32), "B"))
    onnx.save(model, tmp_path / "m.onnx")
    g = run_pipeline(load_graph(tmp_path / "m.onnx"))
    calib = tmp_path / "calib.npy"
    np.save(calib, RNG.normal(0, 1e-3, (8, 6, 1, 5)).astype(np.float32))
    with pytest.raises(Unsupported, match="bias too large"):
        CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)
