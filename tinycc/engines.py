"""Execution engines behind `tinycc run`: float reference, int8 golden model, generated C."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import BadInput
from .ir import Graph
from .reference.float_exec import run_float

ENGINES = ("float", "int8", "c")  # engines that --compare can diff layer by layer (`run` also has qemu)


class CompiledModel:
    """A float graph quantized and lowered once; runs on the golden model or the generated C."""

    def __init__(self, g: Graph, opts, warn=None, patching=None):
        from .compiler import build_program
        from .schedule.search import PatchOptions, plan_program

        self.graph = g
        self.program = build_program(g, opts, warn)
        self.program, self.mem, self.patch_decision = plan_program(self.program, patching or PatchOptions())
        self._tmp = None
        self._exe = {}
        self._shared = None  # the generated C loaded in this process (sim.host.SharedModel)
        self._targets = {}  # core name -> (temporary project folder, ELF)
        self.optimize = "speed"

    @classmethod
    def from_program(cls, g: Graph, program, mem, optimize: str = "speed") -> "CompiledModel":
        """A model already quantized, lowered and planned (e.g. by compiler.compile_project);
        optimize: the --optimize of the C builds its engines run."""
        model = cls.__new__(cls)
        model.graph, model.program, model.mem, model.patch_decision = g, program, mem, None
        model.optimize = optimize
        model._tmp, model._exe, model._shared, model._targets = None, {}, None, {}
        return model

    def quantize_inputs(self, inputs):
        """Float inputs quantized like the generated *_invoke_f32 (golden.boundary.quantize); a
        QDQ model's integer inputs taken as they are (uint8 shifted to int8, as its params are)."""
        from .lower import quantize_inputs

        return quantize_inputs(self.program, {k: int8_codes(self.graph, k, v) for k, v in inputs.items()})

    def run_int8(self, inputs, observe=None):
        from .reference.int_exec import run_int8

        return run_int8(self.program, self.quantize_inputs(inputs), observe)

    @property
    def project_dir(self) -> Path:
        from .codegen.emit import generate_project, write_files

        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tinycc_c_")
            write_files(generate_project(self.program, self.mem, "model", self.graph.name,
                                         optimize=self.optimize), Path(self._tmp.name))
        return Path(self._tmp.name)

    def executable(self, target: str = "all") -> Path:
        """target: all (plain harness), trace (dumps every layer), check (ASan/UBSan + write checks)."""
        from .sim.host import build

        if target not in self._exe:
            self._exe[target] = build(self.project_dir, "model", target)
        return self._exe[target]

    def run_c(self, inputs, trace: bool = False, check: bool = False):
        import os

        from .sim.host import run_harness

        target = "check" if check else ("trace" if trace else "all")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0") if check else None
        return run_harness(self.executable(target), self.program, self.quantize_inputs(inputs),
                           trace=trace or check, env=env)

    def run_c_samples(self, samples) -> list[dict[str, np.ndarray]]:
        """Many samples through the generated C in this process (built once as a shared library
        with the harness's strict flags); the physical int8 outputs of each."""
        from .sim.host import SharedModel, build_shared_library

        if self._shared is None:
            self._shared = SharedModel(build_shared_library(self.project_dir, "model"), "model", self.program)
        return [self._shared.run(self.quantize_inputs(inputs)) for inputs in samples]

    def target_elf(self, target: str, sram: int | None = None, flash: int | None = None) -> Path:
        """The project generated and cross-compiled for a Cortex-M core (--target name); cached.

        sram/flash: the link budget (default: the board's whole memory)."""
        from .codegen.emit import generate_project, write_files
        from .sim.qemu import cross_build
        from .target import get_core, memory_for

        key = (target, sram, flash)
        if key not in self._targets:
            core = get_core(target)
            memory = memory_for(core, core.sram_capacity if sram is None else sram, flash)
            tmp = tempfile.TemporaryDirectory(prefix=f"tinycc_{target}_")
            write_files(generate_project(self.program, self.mem, "model", self.graph.name, core, memory,
                                         optimize=self.optimize), Path(tmp.name))
            self._targets[key] = (tmp, cross_build(Path(tmp.name), "model", memory))
        return self._targets[key][1]

    def run_qemu(self, inputs, target: str = "cortex-m4", count: bool = True, profile: bool = False):
        """Run the cross-compiled model under QEMU. Returns (outputs by name, sim.qemu.QemuRun);
        profile: QemuRun.pc_counts too (sim.qemu.function_profile sums them per function)."""
        from .sim.qemu import run_elf
        from .target import runnable_core

        core = runnable_core(target)
        physical = self.quantize_inputs(inputs)
        data = [np.ascontiguousarray(physical[name], dtype=np.int8).tobytes() for name in self.program.inputs]
        sizes = [self.program.tensors[name].size for name in self.program.outputs]
        run = run_elf(self.target_elf(target), core, data, sizes, count=count, steps=len(self.program.steps),
                      profile=profile)
        outputs = {name: np.frombuffer(raw, dtype=np.int8).reshape(self.program.tensors[name].shape)
                   for name, raw in zip(self.program.outputs, run.outputs)}
        return outputs, run

    def logical(self, name: str, value: np.ndarray, dequantize: bool) -> np.ndarray:
        from .quant.params import dequantize as deq
        from .reference.int_exec import to_logical

        v = to_logical(self.program, name, value)
        return deq(v, self.program.tensors[name].quant) if dequantize else v


def run_engine(g: Graph, inputs: Mapping[str, np.ndarray], engine: str, args) -> dict[str, np.ndarray]:
    return run_samples(g, [inputs], engine, args)[0]


def run_samples(g: Graph, samples: list[Mapping[str, np.ndarray]], engine: str, args) -> list[dict[str, np.ndarray]]:
    """Each sample (input name -> array of the model's input shape) through one engine; a
    quantized engine is compiled (quantized, lowered, built) once for all of them."""
    if engine == "float":
        return [float_outputs(g, run_float(g, {k: _float_engine_input(g, k, v) for k, v in s.items()}), args.dequantize)
                for s in samples]
    from .compiler import QuantOptions
    from .target import runnable_core

    target = getattr(args, "target", None) or DEFAULT_QEMU_TARGET
    if engine == "qemu":
        runnable_core(target)  # refuse a core without a QEMU board before compiling
    model = CompiledModel(g, QuantOptions.from_args(args), patching=_patching(args))
    return run_compiled(model, samples, engine, args.dequantize, target)


def run_compiled(model: CompiledModel, samples: list[Mapping[str, np.ndarray]], engine: str, dequantize: bool,
                 target: str = "cortex-m4") -> list[dict[str, np.ndarray]]:
    """Each sample through a quantized engine (int8, c, qemu) of a compiled model; outputs in the
    ONNX layout, as int8 codes (a QDQ model's uint8 codes) or, with `dequantize`, float32.
    Several samples on the C engine run in one process (CompiledModel.run_c_samples); one runs
    the generated harness, main.c, like `make` builds it."""
    g = model.graph
    if engine == "c" and len(samples) > 1:
        raw = model.run_c_samples(samples)
    else:
        raw = []
        for inputs in samples:
            if engine == "qemu":
                outs, run = model.run_qemu(inputs, target)
            else:
                outs = model.run_int8(inputs) if engine == "int8" else model.run_c(inputs)[0]
            raw.append(outs)
    results = [{k: model_codes(g, k, model.logical(k, v, dequantize)) for k, v in outs.items()} for outs in raw]
    if engine == "qemu":
        count = f" (the last of {len(samples)} samples)" if len(samples) > 1 else ""
        print(qemu_summary(target, run, model.program.macs) + count, file=sys.stderr)
    return results


DEFAULT_QEMU_TARGET = "cortex-m4"


def _patching(args):
    """`run --patch/--sram/--patch-overhead`: the same patch decision `compile` makes."""
    from .schedule.search import PatchOptions
    from .units import parse_size

    sram = getattr(args, "sram", None)
    if isinstance(sram, str):
        try:
            sram = parse_size(sram)
        except ValueError as exc:
            raise BadInput(f"--sram {sram!r}: {exc}") from None
    return PatchOptions.from_args(args, sram)


# ---- the integer inputs and outputs of QDQ models, as the ONNX model exchanges them ----------------
def _float_engine_input(g: Graph, name: str, value) -> np.ndarray:
    """Integer codes of a QDQ model's int8/uint8 input stay integers (run_float dequantizes them);
    everything else is a float32 tensor."""
    v = np.asarray(value)
    if name in g.int8_inputs and v.dtype in (np.int8, np.uint8):
        return v
    return v.astype(np.float32)


def int8_codes(g: Graph, name: str, value) -> np.ndarray:
    """A uint8 input of a QDQ model given as its uint8 codes -> tinycc's int8 codes (q - 128: the
    zero point was shifted likewise at import). Other values are returned unchanged."""
    v = np.asarray(value)
    if g.int8_inputs.get(name) == "uint8" and v.dtype == np.uint8:
        return (v.astype(np.int16) - 128).astype(np.int8)
    return v


def model_codes(g: Graph, name: str, value: np.ndarray) -> np.ndarray:
    """tinycc's int8 codes of a QDQ model's uint8 output -> the model's uint8 codes (q + 128)."""
    if g.int8_outputs.get(name) == "uint8" and value.dtype == np.int8:
        return (value.astype(np.int16) + 128).astype(np.uint8)
    return value


def onnx_quantize(value: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """ONNX QuantizeLinear to int8 as onnxruntime computes it: x / scale in float32, rounded half
    to even, plus the zero point, saturated. (The int8 engines follow TFLite instead: golden.boundary
    .quantize rounds half away from zero.)"""
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.rint(np.asarray(value, dtype=np.float32) / np.float32(scale))
    v = np.clip(np.nan_to_num(v, nan=0.0), -512, 512)
    return np.clip(v + zero_point, -128, 127).astype(np.int8)


def float_outputs(g: Graph, outputs: dict[str, np.ndarray], dequantize: bool) -> dict[str, np.ndarray]:
    """The float engine's results as the ONNX model returns them: an int8/uint8 output of a QDQ
    model is the float result through the model's last QuantizeLinear (what onnxruntime returns);
    with --dequantize, the real value it stands for, like the int8 engines."""
    from .quant.params import dequantize as real_value

    result = {}
    for name, v in outputs.items():
        q = g.tensors[name].quant
        if name in g.int8_outputs and q is not None:
            codes = onnx_quantize(v, *q.scalar())
            v = real_value(codes, q) if dequantize else model_codes(g, name, codes)
        result[name] = v
    return result


def qemu_summary(target: str, run, macs: int) -> str:
    from .target import get_core

    core = get_core(target)
    text = f"tinycc: ran on {core.name} (QEMU {core.board})"
    if run.instructions is not None:
        per_mac = f", {run.instructions / macs:.2f} per MAC" if macs else ""
        text += f": {run.instructions:,} instructions per inference{per_mac}"
    return text + f"; stack high-water {run.stack_high_water:,} of {run.stack_reserved:,} B"


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    noise = np.sum((ref - test.astype(np.float64)) ** 2)
    signal = np.sum(ref ** 2)
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(signal / noise)) if signal > 0 else float("-inf")


def compare_engines(g: Graph, inputs, engines, args) -> str:
    """Per-layer table of SQNR and max error between two engines; points at the first divergence."""
    from .compiler import QuantOptions
    from .inspect import safe_text

    engines = [e.strip() for e in engines]
    if len(engines) != 2 or any(e not in ENGINES for e in engines) or engines[0] == engines[1]:
        raise BadInput(f"--compare takes two different engines from {', '.join(ENGINES)}, e.g. float,int8")
    model = CompiledModel(g, QuantOptions.from_args(args), patching=_patching(args))
    per_engine = {}
    for e in engines:
        per_engine[e] = _layer_values(model, inputs, e)
    a, b = per_engine[engines[0]], per_engine[engines[1]]
    lines = [f"{'#':>3}  {'layer':<36} {'op':<18} {'SQNR dB':>9} {'max err':>12} {'max err LSB':>11}",
             "-" * 94]
    first_bad = None
    exact = "float" not in engines
    for k, step, va, vb in comparable_layers(model, a, b):
        scale, _ = model.program.tensors[step.outputs[0]].quant.scalar()
        err = float(np.max(np.abs(va.astype(np.float64) - vb.astype(np.float64)))) if va.size else 0.0
        lsb = err / scale if not exact else err
        s = sqnr_db(va, vb)
        bad = (err > 0) if exact else (s < 20.0)
        if bad and first_bad is None:
            first_bad = (k, step)
        mark = "  <- first divergence" if first_bad and first_bad[0] == k else ""
        lines.append(f"{k:>3}  {safe_text(step.onnx_name or step.node, 36):<36} {step.op:<18} {s:>9.2f} "
                     f"{err:>12.6g} {lsb:>11.2f}{mark}")
    if first_bad is None:
        lines.append("no divergence: " + ("bit-exact" if exact else "every layer above 20 dB SQNR"))
    else:
        k, step = first_bad
        lines.append(f"first divergence at step {k}: {step.op} {safe_text(step.onnx_name or step.node)!r}")
    return "\n".join(lines)


def comparable_layers(model: CompiledModel, a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]):
    """(step index, step, value in a, value in b) for every step whose output both engines'
    layer values (run_with_layers) hold."""
    for k, step in enumerate(model.program.steps):
        out = step.outputs[0]
        if out in a and out in b:
            yield k, step, a[out], b[out]


def _layer_values(model: CompiledModel, inputs, engine: str) -> dict[str, np.ndarray]:
    return run_with_layers(model, inputs, engine)[1]


def run_with_layers(model: CompiledModel, inputs, engine: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One sample through one engine (float, int8 or c), keeping every step's output.

    Returns (outputs, layer values): the outputs as the engine computes them (float: ONNX
    layout, as `run --engine float --dequantize` gives them; int8/c: physical int8 codes), and
    every step output as dequantized float64, flat, in the physical layout."""
    from .quant.params import dequantize

    prog = model.program
    values: dict[str, np.ndarray] = {}
    if engine == "float":
        g = model.graph
        outs = run_float(g, {k: _float_engine_input(g, k, v) for k, v in inputs.items()},
                         observe=lambda name, v: values.__setitem__(name, np.asarray(v, np.float64).reshape(-1)))
        return float_outputs(g, outs, dequantize=True), values
    if engine == "int8":
        raw = {}
        outs = model.run_int8(inputs, observe=lambda name, v: raw.__setitem__(name, v))
    else:
        outs, trace = model.run_c(inputs, trace=True)
        raw = {prog.steps[k].outputs[0]: v for k, v in trace.items()}
    for name, v in raw.items():
        values[name] = dequantize(v.reshape(-1), prog.tensors[name].quant).astype(np.float64)
    return outs, values
