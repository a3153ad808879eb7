"""int8 end to end on the whole zoo: the generated C (ASan/UBSan, guard bytes, per-layer write
checks, every in-place feature on) equals the integer golden model bit for bit, layer by layer,
so does the project cross-compiled for Cortex-M cores under QEMU, and the int8 model stays close
to the float one."""
from __future__ import annotations

import numpy as np
import pytest
import zoo

from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.passes import run_pipeline
from tinycc.reference.float_exec import run_float
from tinycc.sim.qemu import missing_tools


def _calibration(g, inputs, n, seed):
    """Random inputs around the example input's scale (the zoo has no data set)."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        samples.append({k: (v * rng.uniform(0.5, 1.5) + rng.normal(0, 0.3, v.shape)).astype(np.float32)
                        for k, v in inputs.items()})
    return samples


@pytest.fixture(scope="module")
def compiled_zoo():
    return {}


def _compile(zoo_models, zoo_key, tmp_path, compiled_zoo):
    if zoo_key not in compiled_zoo:
        path, inputs = zoo_models[zoo_key]
        g = run_pipeline(load_graph(path, {k: v.shape for k, v in inputs.items()}))
        samples = _calibration(g, inputs, 8, 0)
        calib = tmp_path / "calib.npz"
        np.savez(calib, **{k: np.stack([s[k] for s in samples]) for k in inputs})
        compiled_zoo[zoo_key] = (g, inputs, CompiledModel(g, QuantOptions(calib=str(calib)), warn=pytest.fail))
    return compiled_zoo[zoo_key]


# int8 runs on the torchscript exports; both exporters' graphs are checked by the float tests.
ZOO_NAMES = list(zoo.ZOO)


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_c_equals_golden_layer_by_layer(zoo_models, name, tmp_path, compiled_zoo):
    zoo_key = (name, "torchscript")
    g, inputs, model = _compile(zoo_models, zoo_key, tmp_path, compiled_zoo)
    rng = np.random.default_rng(7)
    x = {k: (v + rng.normal(0, 0.2, v.shape)).astype(np.float32) for k, v in inputs.items()}
    golden = {}
    outs = model.run_int8(x, observe=lambda t, v: golden.__setitem__(t, v))
    from cbuild import require_sanitizers

    require_sanitizers()  # the checked harness (make check) uses ASan/UBSan
    c_outs, trace = model.run_c(x, check=True)
    last_writer = {step.outputs[0]: k for k, step in enumerate(model.program.steps)}
    for t, k in last_writer.items():  # concat parts complete a tensor over several steps
        np.testing.assert_array_equal(trace[k], golden[t].reshape(-1),
                                      err_msg=f"{zoo_key} step {k} {model.program.steps[k].name}")
    for name in outs:
        np.testing.assert_array_equal(c_outs[name], outs[name])


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_int8_tracks_float(zoo_models, name, tmp_path, compiled_zoo):
    zoo_key = (name, "torchscript")
    g, inputs, model = _compile(zoo_models, zoo_key, tmp_path, compiled_zoo)
    ref = run_float(g, inputs)
    got = model.run_int8(inputs)
    for name, r in ref.items():
        q = model.logical(name, got[name], dequantize=True)
        signal = float(np.sum(r.astype(np.float64) ** 2))
        noise = float(np.sum((q - r).astype(np.float64) ** 2))
        sqnr = 10 * np.log10(signal / max(noise, 1e-30))
        assert sqnr > 15.0, f"{zoo_key} output {name}: SQNR {sqnr:.1f} dB"


_NO_QEMU = missing_tools(run=True)


@pytest.mark.skipif(_NO_QEMU is not None, reason=f"Cortex-M toolchain or QEMU unavailable: {_NO_QEMU}")
@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m33", "cortex-m3"])
@pytest.mark.parametrize("name", ZOO_NAMES)
def test_cortex_m_under_qemu_equals_golden(zoo_models, name, core, tmp_path, compiled_zoo):
    """The cross-compiled project (DSP and assembly paths on the M4 and M33, portable C on the
    M3) gives the golden model's outputs under QEMU."""
    zoo_key = (name, "torchscript")
    g, inputs, model = _compile(zoo_models, zoo_key, tmp_path, compiled_zoo)
    rng = np.random.default_rng(11)
    x = {k: (v + rng.normal(0, 0.2, v.shape)).astype(np.float32) for k, v in inputs.items()}
    golden = model.run_int8(x)
    target, run = model.run_qemu(x, core)
    for out in golden:
        np.testing.assert_array_equal(target[out], golden[out], err_msg=f"{zoo_key} {core} {out}")
    assert run.instructions > 0
