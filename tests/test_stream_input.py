"""--stream-input (here with halo reuse, so that the same runs also prove the halo copies in C,
on the host and on the M4): the graph input never sits in the arena; each patch reads the window of rows and
columns it needs through the caller's callback (PREFIX_invoke_stream). The streamed golden, the host
C (harness reading input0.bin through the callback, under ASan/UBSan with per-step write checks),
the C called from Python with a callback, and the Cortex-M4 under QEMU all give the layer-by-layer
golden's outputs bit for bit; the arena leaves the input out; bad combinations exit 2."""
from __future__ import annotations

import ctypes
import json
import re

import numpy as np
import pytest

from tinycc.cli import main
from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.passes import run_pipeline
from tinycc.schedule.patches import STREAM_KERNEL, PatchConfig, stage_limit
from tinycc.schedule.search import PatchOptions

GRID = (3, 2)  # uneven over a 12x12 stage output of the zoo's mbv2 (stride 2, residual adds)


@pytest.fixture(scope="module")
def mbv2(zoo_models):
    """(graph, float inputs, streamed model on a forced plan with halo reuse, layer-by-layer
    reference model). The deepest stage whose output is 12x12 (not deeper: there every window is
    the whole width, and the column offsets of the windows would go untested)."""
    path, inputs = zoo_models[("mbv2", "torchscript")]
    g = run_pipeline(load_graph(path, {k: v.shape for k, v in inputs.items()}))
    reference = CompiledModel(g, QuantOptions(), warn=lambda m: None, patching=PatchOptions("off"))
    splits = stage_limit(reference.program).splits
    split = max(k for k, t in splits.items() if reference.program.tensors[t].shape[1] >= 12)
    streamed = CompiledModel(g, QuantOptions(), warn=lambda m: None,
                             patching=PatchOptions("forced", PatchConfig(split, *GRID, "reuse"), stream=True))
    return g, inputs, streamed, reference


def _samples(inputs, n, seed):
    rng = np.random.default_rng(seed)
    return [{k: (v + rng.normal(0, 0.3, v.shape)).astype(np.float32) for k, v in inputs.items()} for _ in range(n)]


def test_streamed_plan_reads_windows_and_leaves_the_input_out_of_the_arena(mbv2):
    _, _, streamed, reference = mbv2
    p = streamed.program
    x = p.streamed_input
    assert x == p.inputs[0] and p.patch.streamed
    reads = [s for s in p.steps if s.kernel == STREAM_KERNEL]
    assert len(reads) == GRID[0] * GRID[1]
    assert all(s.args[0].kind == "stream" and s.args[0].ref == x for s in reads)
    assert x not in {b.name for b in streamed.mem.buffers}  # no arena buffer for the input
    assert not any(x in s.inputs for s in p.steps)
    # the windows cover the whole input, each one a patch's region (halo included)
    h, w = p.tensors[x].shape[1:3]
    cover = np.zeros((h, w), int)
    for s in reads:
        win = s.params
        cover[win.row0:win.row0 + win.rows, win.col0:win.col0 + win.cols] += 1
    assert (cover >= 1).all() and (cover > 1).any()  # overlapping halos
    assert any(s.params.col0 > 0 for s in reads) and any(s.params.row0 > 0 for s in reads)
    # the same plan with the whole input in the arena needs more
    from tinycc.schedule.search import plan_program

    _, whole, _ = plan_program(reference.program, PatchOptions("forced", p.patch.config))
    assert streamed.mem.arena_bytes < whole.arena_bytes


def test_streamed_golden_and_host_c_equal_layer_by_layer_golden(mbv2):
    """The harness reads input0.bin through the callback (fseek/fread per window row), built with
    ASan/UBSan and a check after every step that it wrote only its planned region; every step's
    output equals the streamed golden's, and the outputs the layer-by-layer golden's."""
    from cbuild import require_sanitizers

    _, inputs, streamed, reference = mbv2
    (x,) = _samples(inputs, 1, 5)
    golden = {}
    outs = streamed.run_int8(x, observe=lambda t, v: golden.__setitem__(t, v))
    ref = reference.run_int8(x)
    for t in ref:
        np.testing.assert_array_equal(outs[t], ref[t])
    require_sanitizers()
    c_outs, trace = streamed.run_c(x, check=True)
    last_writer = {step.outputs[0]: k for k, step in enumerate(streamed.program.steps)}
    for t, k in last_writer.items():
        np.testing.assert_array_equal(trace[k], golden[t].reshape(-1), err_msg=f"step {k}")
    for t in ref:
        np.testing.assert_array_equal(c_outs[t], ref[t])


def _shared(model):
    from tinycc.sim.host import build_shared_library

    return ctypes.CDLL(str(build_shared_library(model.project_dir, "model")))


READ_ROWS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
                             ctypes.c_int32, ctypes.POINTER(ctypes.c_int8))


def test_invoke_stream_with_a_callback_asks_the_planned_windows_and_propagates_errors(mbv2):
    """model_invoke_stream called with a Python callback: it asks exactly the windows of the plan, in
    order; the outputs are the layer-by-layer golden's; a nonzero return stops the run and comes back
    unchanged; model_invoke (whole buffer) and model_invoke_f32 (rows quantized as read) agree."""
    _, inputs, streamed, reference = mbv2
    p = streamed.program
    lib = _shared(streamed)
    xs = _samples(inputs, 2, 9)
    image = streamed.quantize_inputs(xs[0])[p.streamed_input]
    _, h, w, c = image.shape
    asked = []
    fail_at = [None]

    def read_rows(ctx, row0, rows, col0, cols, dst):
        asked.append((row0, rows, col0, cols))
        if fail_at[0] is not None and len(asked) == fail_at[0]:
            return 7
        window = np.ascontiguousarray(image[0, row0:row0 + rows, col0:col0 + cols, :]).reshape(-1)
        ctypes.memmove(dst, window.ctypes.data, window.size)
        return 0

    callback = READ_ROWS(read_rows)
    out_name = p.outputs[0]
    out = np.zeros(p.tensors[out_name].size, np.int8)
    lib.model_invoke_stream.restype = ctypes.c_int
    assert lib.model_invoke_stream(callback, None, out.ctypes.data_as(ctypes.c_void_p)) == 0
    planned = [(s.params.row0, s.params.rows, s.params.col0, s.params.cols) for s in p.steps if s.kernel == STREAM_KERNEL]
    assert asked == planned
    ref = reference.run_int8(xs[0])[out_name]
    np.testing.assert_array_equal(out.reshape(ref.shape), ref)

    asked.clear()
    fail_at[0] = 3
    assert lib.model_invoke_stream(callback, None, out.ctypes.data_as(ctypes.c_void_p)) == 7
    assert len(asked) == 3  # stopped at once

    whole = np.ascontiguousarray(streamed.quantize_inputs(xs[1])[p.streamed_input]).reshape(-1)
    out2 = np.zeros_like(out)
    lib.model_invoke.restype = ctypes.c_int
    assert lib.model_invoke(whole.ctypes.data_as(ctypes.c_void_p), out2.ctypes.data_as(ctypes.c_void_p)) == 0
    np.testing.assert_array_equal(out2.reshape(ref.shape), reference.run_int8(xs[1])[out_name])

    # float API: the physical (NHWC) float input, quantized window row by window row
    from tinycc.lower import quantize_inputs

    phys = {k: np.ascontiguousarray(v.transpose(0, 2, 3, 1)) for k, v in xs[1].items()}
    assert quantize_inputs(p, phys)[p.streamed_input].shape == (1, h, w, c)
    f_in = np.ascontiguousarray(phys[p.inputs[0]], dtype=np.float32).reshape(-1)
    f_out = np.zeros(out.size, np.float32)
    lib.model_invoke_f32.restype = ctypes.c_int
    assert lib.model_invoke_f32(f_in.ctypes.data_as(ctypes.c_void_p), f_out.ctypes.data_as(ctypes.c_void_p)) == 0
    s, zp = p.tensors[out_name].quant.scalar()
    expect = (out2.astype(np.float32) - np.float32(zp)) * np.float32(s)
    np.testing.assert_array_equal(f_out, expect)


def test_run_c_samples_use_the_streamed_api(mbv2):
    _, inputs, streamed, reference = mbv2
    xs = _samples(inputs, 2, 13)
    for got, x in zip(streamed.run_c_samples(xs), xs):
        ref = reference.run_int8(x)
        for t in ref:
            np.testing.assert_array_equal(got[t], ref[t])


def test_cortex_m4_streams_the_input_from_the_host_file(mbv2):
    """Under QEMU the harness reads each window row of input0.bin through semihosting: the arena
    never holds the input, and the outputs are the layer-by-layer golden's bit for bit."""
    from tinycc.sim.qemu import missing_tools

    missing = missing_tools(run=True)
    if missing is not None:
        pytest.skip(f"Cortex-M toolchain or QEMU unavailable: {missing}")
    _, inputs, streamed, reference = mbv2
    (x,) = _samples(inputs, 1, 17)
    target, run = streamed.run_qemu(x, "cortex-m4")
    golden = reference.run_int8(x)
    for t in golden:
        np.testing.assert_array_equal(target[t], golden[t])
    assert run.instructions > 0



def _closes_after_opening(trace: str, name: str) -> bool:
    """Whether an strace log (-e trace=openat,close) shows file `name` opened and that descriptor
    closed again."""
    opened = re.search(r'openat\([^"]*"%s", [^)]*\)\s*=\s*(\d+)' % re.escape(name), trace)
    return opened is not None and re.search(r"close\(%s\)\s*=\s*0" % opened.group(1), trace[opened.end():]) is not None


def test_cortex_m4_harness_closes_the_streamed_input_file(mbv2, tmp_path, monkeypatch):
    """The harness opens input0.bin once for the whole inference (SYS_OPEN) and closes it again
    (SYS_CLOSE), like the files it reads and writes whole: QEMU maps them to host open/close."""
    import shutil

    from tinycc.sim import qemu

    missing = qemu.missing_tools(run=True)
    if missing is not None:
        pytest.skip(f"Cortex-M toolchain or QEMU unavailable: {missing}")
    if shutil.which("strace") is None:
        pytest.skip("strace missing: the host's open/close calls of QEMU cannot be seen")
    log = tmp_path / "strace.log"
    wrapper = tmp_path / "qemu-under-strace"
    wrapper.write_text(f'#!/bin/sh\nexec strace -f -qq -e trace=openat,close -o "{log}" '
                       f'"{shutil.which(qemu.QEMU)}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(qemu, "QEMU", str(wrapper))
    _, inputs, streamed, _ = mbv2
    streamed.run_qemu(_samples(inputs, 1, 17)[0], "cortex-m4")
    trace = log.read_text()
    assert '"input0.bin"' in trace, "strace saw no open of input0.bin"
    assert _closes_after_opening(trace, "output0.bin")  # the parse works on the file written whole
    assert _closes_after_opening(trace, "input0.bin"), "the streamed input0.bin is never closed"

# ---- command line ------------------------------------------------------------------------------------
def test_cli_stream_input_report_and_refusals(mlperf_dir, tmp_path, capsys, zoo_models):
    model = mlperf_dir / "ic_resnet8_qdq.onnx"
    assert main(["compile", str(model), "-o", str(tmp_path / "s"), "--stream-input"]) == 0
    report = json.loads((tmp_path / "s" / "report.json").read_text())
    assert report["patch"]["stream_input"] and report["patch"]["chosen"]
    assert report["patch"]["stage_input_bytes"] == 0 and report["patch"]["streamed_input_bytes"] > 0
    assert report["peak_sram_bytes"] == report["arena_bytes"]
    assert "_invoke_stream(" in (tmp_path / "s" / "model.h").read_text()
    capsys.readouterr()
    assert main(["compile", str(model), "-o", str(tmp_path / "off"), "--stream-input", "--patch", "off"]) == 2
    assert "needs a patch stage" in capsys.readouterr().err
    assert main(["compile", str(model), "-o", str(tmp_path / "e"), "--stream-input", "--export", "cmake"]) == 2
    assert "--export" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.load(mlperf_dir / "samples.npz")["ic_resnet8_int8"][:1])
    outs = {}
    for extra in ([], ["--stream-input"]):
        out = tmp_path / f"y{len(extra)}.npy"
        assert main(["run", str(model), "--input", str(tmp_path / "x.npy"), "--engine", "c", "-o", str(out),
                     *extra]) == 0
        outs[len(extra)] = np.load(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    path, inputs = zoo_models[("mlp", "torchscript")]
    assert main(["compile", str(path), "-o", str(tmp_path / "mlp"), "--stream-input"]) == 2
    assert "none is possible" in capsys.readouterr().err
