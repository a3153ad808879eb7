"""The Python API: tinycc from notebooks and scripts.

    import tinycc
    m = tinycc.compile("model.onnx", calib="x.npy", sram="256k")   # nothing written yet
    m.report["peak_sram_bytes"]                                     # report.json, as a dict
    y = m.run(x, engine="c", dequantize=True)                       # {output name: array}
    r = m.validate("test.npz", labels="labels")                     # what `tinycc validate` prints
    m.write("out/")                                                 # the C project

A thin layer over the command line's code (compiler.compile_project, engines, validate): the
same model gives the same files, report and results as the CLI. Errors raise the exceptions of
tinycc.errors (BadInput, Unsupported, DoesNotFit), never SystemExit. Progress and warnings
(e.g. calibration on synthetic data) go to stderr, as on the command line.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Mapping, Sequence

import numpy as np

from .errors import BadInput

def _graph(model: str | Path, input_shapes: Mapping[str, Sequence[int]] | None):
    from .frontend import load_graph
    from .passes import run_pipeline

    shapes = {k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()}
    return run_pipeline(load_graph(str(model), shapes))


def _size(value: int | str | None, option: str) -> int | None:
    from .units import parse_size

    if value is None or isinstance(value, int):
        return value
    try:
        return parse_size(value)
    except ValueError as exc:
        raise BadInput(f"{option}: {exc}") from None


def compile(model: str | Path, calib: str | Path | None = None, sram: int | str = "256k",
            flash: int | str | None = None, output: str | Path | None = None, target: str | None = None,
            name: str | None = None, calib_method: str | None = None, calib_samples: int | None = None,
            bias_correction: bool = False, stack: int | str | None = None,
            input_shapes: Mapping[str, Sequence[int]] | None = None, force: bool = False,
            optimize: str = "speed", quant: str = "int8", codebook_bits: str | int | None = None) -> "Model":
    """Compile an ONNX model, like `tinycc compile`, and return it as a Model.

    model: the .onnx file. calib: calibration data (.npy with a leading sample axis, or .npz
    keyed by input name); without it tinycc warns and calibrates on synthetic data. sram, flash,
    stack: budgets as in the CLI ("256k", "1M", or bytes). output: also write the C project
    there (see Model.write); None keeps it in memory. target: None (host) or a Cortex-M core,
    e.g. "cortex-m4". name: the C prefix (default: from the file name). input_shapes: static
    shapes for dynamic inputs, e.g. {"x": (1, 3, 96, 96)}. force: let `output` replace a project
    tinycc wrote. optimize: "speed" (default) or "size", as --optimize. quant: as --quant, "int8",
    "prom" (pointwise convs ternary), "codebook" (clustered weights; codebook_bits as the CLI's
    --codebook-bits: 4, or "4,conv1=6") or "prom+codebook".

    Raises BadInput/Unsupported (exit 2 on the CLI) or DoesNotFit (exit 3).
    """
    from .compiler import compile_project
    from .target import TARGETS

    if target is not None and target not in TARGETS:
        raise BadInput(f"target {target!r}: one of {', '.join(TARGETS)}")
    if quant not in ("int8", "codebook"):
        raise BadInput(f"quant {quant!r}: int8 or codebook")
    stack_bytes = _size(stack, "stack")
    if stack_bytes is not None and target in (None, "host"):
        raise BadInput("stack sets the stack reserve of a Cortex-M build: give a target core too")
    args = SimpleNamespace(model=str(model), calib=str(calib) if calib is not None else None,
                           calib_method=calib_method, calib_samples=calib_samples, bias_correction=bias_correction,
                           name=name, target=target, stack_bytes=stack_bytes, optimize=optimize, quant=quant,
                           codebook_bits=None if codebook_bits is None else str(codebook_bits))
    if optimize not in ("speed", "size"):
        raise BadInput(f"optimize={optimize!r}: speed or size")
    g = _graph(model, input_shapes)
    project = compile_project(g, args, sram=_size(sram, "sram"), flash=_size(flash, "flash"))
    compiled = Model(g, project, args)
    if output is not None:
        compiled.write(output, force=force)
    return compiled


class Model:
    """A compiled model: its report, the files of its C project, and its engines.

    Made by tinycc.compile(); every engine runs the program that the files were generated from
    (one quantization, one memory plan)."""

    def __init__(self, graph, project, args):
        from .engines import CompiledModel

        self.graph = graph
        self._project = project
        self._args = args
        self._engines = CompiledModel.from_program(graph, project.program, project.mem,
                                                   getattr(args, "optimize", "speed"))

    @property
    def report(self) -> dict:
        """report.json as a dict (peak_sram_bytes, flash_bytes, macs, params, layers, ...)."""
        return self._project.report

    @property
    def files(self) -> dict[str, bytes]:
        """The C project: file name (with folders, e.g. 'runtime/tc_conv.c') -> contents."""
        return dict(self._project.files)

    @property
    def inputs(self) -> list[str]:
        return list(self.graph.inputs)

    @property
    def outputs(self) -> list[str]:
        return list(self.graph.outputs)

    def __repr__(self) -> str:
        r = self.report
        return (f"<tinycc.Model {r['model']!r}: {r['quant']}, peak SRAM {r['peak_sram_bytes']:,} B, "
                f"flash {r['flash_bytes']:,} B, {r['macs']:,} MACs>")

    def _samples(self, inputs, what: str):
        from .arrays import check_values, split_samples
        from .compiler import logical_input_shapes

        if not isinstance(inputs, Mapping):
            if len(self.graph.inputs) != 1:
                raise BadInput(f"the model has {len(self.graph.inputs)} inputs ({', '.join(self.graph.inputs)}); "
                               f"give a dict keyed by input name")
            inputs = {self.graph.inputs[0]: inputs}
        missing = [n for n in self.graph.inputs if n not in inputs]
        if missing:
            raise BadInput(f"{what}: no array for input(s) {missing} (got {sorted(inputs)})")
        arrays = {n: np.asarray(inputs[n]) for n in self.graph.inputs}
        check_values(arrays, what, finite=True)
        return split_samples(arrays, logical_input_shapes(self.graph), what)

    def run(self, inputs: np.ndarray | Mapping[str, np.ndarray], engine: str = "int8", dequantize: bool = False,
            target: str = "cortex-m4") -> dict[str, np.ndarray]:
        """Run one sample or a batch, like `tinycc run`.

        inputs: an array (one-input model) or a dict keyed by input name, ONNX layout; a leading
        axis of N samples (or N in place of a batch dimension of 1) runs each sample and stacks
        the outputs the same way. engine: "float" (numpy float reference), "int8" (golden
        model), "c" (the generated C, built with the host compiler) or "qemu" (cross-compiled
        for `target` and run under QEMU). Quantized engines return int8 codes (a QDQ model's
        uint8 codes), or float32 with dequantize=True. Returns {output name: array}.
        """
        from .arrays import stack_outputs
        from .engines import run_compiled, run_samples

        engines = ("float", "int8", "c", "qemu")
        if engine not in engines:
            raise BadInput(f"engine {engine!r}: one of {', '.join(engines)}")
        samples, mode = self._samples(inputs, "inputs")
        if engine == "float":
            results = run_samples(self.graph, samples, "float", SimpleNamespace(dequantize=dequantize))
        else:
            if engine == "qemu":
                from .target import runnable_core

                runnable_core(target)
            results = run_compiled(self._engines, samples, engine, dequantize, target)
        return stack_outputs(results, mode)

    def c_inputs(self, inputs: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One sample as the generated C takes it: int8 codes quantized like PREFIX_invoke_f32, in
        the C layout (NHWC for 4-D tensors) -- what PREFIX_input(i) holds, and the raw input
        files of the host harness (main.c). {input name: int8 array}."""
        samples, _ = self._samples(inputs, "inputs")
        if len(samples) != 1:
            raise BadInput(f"c_inputs takes one sample; got {len(samples)}")
        return self._engines.quantize_inputs(samples[0])

    def validate(self, data, labels=None, engines: str | Sequence[str] = ("float", "int8", "c"),
                 limit: int | None = None, target: str = "cortex-m4", progress: bool | None = False) -> dict:
        """Run a data set through several engines and measure them, like `tinycc validate`.

        data: a data set file (.npy / .npz keyed by input name), an array, or a dict of arrays,
        with a leading sample axis. labels: class indices (N,) or one-hot (N, C) as an array, or
        with a file, the key of the labels in the .npz. engines: from float, int8, c, qemu.
        limit: the first N samples only. Returns the result dict that the CLI prints and writes
        with --json (render it with tinycc.validate_markdown)."""
        from .validate import load_data, validate

        if isinstance(data, (str, Path)):
            if labels is not None and not isinstance(labels, str):
                raise BadInput("with a data file, labels is the key of the labels in the .npz (or a .npy file)")
            samples, label_ids = load_data(data, self.graph, labels)
        else:
            samples, _ = self._samples(data, "data")
            label_ids = labels
        if limit is not None:
            samples = samples[:limit]
            label_ids = label_ids[:limit] if label_ids is not None else None
        return validate(self._engines, samples, label_ids, engines, target, source=self.report["model"],
                        progress=progress)

    def write(self, output: str | Path, force: bool = False) -> Path:
        """Write the C project to the folder `output`, as `tinycc compile -o` does: created (with
        its parents) only once complete; an existing non-empty folder is refused unless force is
        set and it is a project tinycc wrote. Returns the folder."""
        from .compiler import check_output_folder, write_atomically

        out = Path(output)
        user_files = [Path(f) for f in (self._args.model, self._args.calib) if f]
        check_output_folder(out, force, user_files)
        write_atomically(self._project.files, out, force=force, user_files=user_files)
        return out


def layers(model: str | Path, input_shapes: Mapping[str, Sequence[int]] | None = None,
           passes: bool = True) -> list[dict]:
    """The per-layer table of `tinycc inspect` (after the graph passes unless passes=False), as
    dicts: name, op, output shape, params, MACs, activation bytes at int8. No calibration."""
    from dataclasses import asdict

    from .frontend import load_graph
    from .inspect import layer_rows
    from .passes import run_pipeline

    shapes = {k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()}
    g = load_graph(str(model), shapes)
    return [asdict(row) for row in layer_rows(run_pipeline(g) if passes else g)]


def validate_markdown(result: dict) -> str:
    """The markdown tables `tinycc validate` prints, from Model.validate's result."""
    from .validate import render_markdown

    return render_markdown(result)
