"""tinycc compile: quantize -> lower -> plan memory -> check budget -> emit C + report.

Output appears only when everything succeeded: files are written to a temporary folder next to
the destination, then renamed into place.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BadInput, DoesNotFit
from .ir import Graph
from .lower import lower
from .memory.lifetimes import MemoryPlan, plan_memory
from .program import Program, c_identifier
from .quant.calibrate import DEFAULT_METHOD, collect_stats, load_calibration, synthetic_samples
from .quant.ptq import assign_qparams


@dataclass
class QuantOptions:
    calib: str | None = None
    method: str | None = None
    samples: int | None = None
    bias_correction: bool = False

    @classmethod
    def from_args(cls, args) -> "QuantOptions":
        return cls(getattr(args, "calib", None), getattr(args, "calib_method", None),
                   getattr(args, "calib_samples", None), getattr(args, "bias_correction", False))


def logical_input_shapes(g: Graph) -> dict[str, tuple]:
    out = {}
    for name in g.inputs:
        t = g.tensors[name]
        out[name] = tuple(t.shape[i] for i in np.argsort(t.perm)) if t.perm else tuple(t.shape)
    return out


def is_prequantized(g: Graph) -> bool:
    return all(g.tensors[t].quant is not None for t in g.inputs) and any(
        t.quant is not None for t in g.tensors.values() if not t.is_const and t.name not in g.inputs)


def quantize_graph(g: Graph, opts: QuantOptions, warn=print) -> Graph:
    """Annotate a float graph with int8 quantization parameters (PTQ)."""
    if is_prequantized(g):
        return assign_qparams(g, None, None)
    shapes = logical_input_shapes(g)
    if opts.calib:
        samples = load_calibration(opts.calib, g, shapes)
    else:
        warn("tinycc: WARNING: no --calib data given; calibrating on synthetic random inputs. "
             "Accuracy of the int8 model will be poor: pass real samples with --calib FILE.npy/.npz.")
        samples = synthetic_samples(g, shapes)
    if opts.samples:
        samples = samples[: opts.samples]
    stats = collect_stats(g, samples)
    q = assign_qparams(g, stats, opts.method or DEFAULT_METHOD)
    if opts.bias_correction:
        from .quant.bias_correction import correct_biases

        q = correct_biases(g, q, samples)
    return q


def build_program(g: Graph, opts: QuantOptions, warn=None) -> Program:
    warn = warn or (lambda m: print(m, file=sys.stderr))
    q = quantize_graph(g, opts, warn)
    program = lower(q, g.name)
    program.quant_scheme = "int8-qdq" if is_prequantized(g) else f"int8-ptq-{opts.method or DEFAULT_METHOD}"
    return program


def default_prefix(g: Graph, name: str | None) -> str:
    prefix = c_identifier(name or g.name or "model", 24).lower()
    if name and prefix != name:
        raise BadInput(f"--name {name!r} is not a C identifier (try {prefix!r})")
    return prefix


def check_budget(program: Program, mem: MemoryPlan, sram: int) -> None:
    if mem.arena_bytes <= sram:
        return
    k = int(np.argmax(mem.live_bytes)) if mem.live_bytes else 0
    step = program.steps[k] if program.steps else None
    live = sorted(((b.size, b.name) for b in mem.buffers if b.first <= k + 1 <= b.last), reverse=True)
    live_text = ", ".join(f"{name[:40]!r} {size:,} B" for size, name in live[:6])
    where = f"step {k} ({step.op} {step.onnx_name or step.node!r})" if step else "the input"
    raise DoesNotFit(
        f"the model needs {mem.arena_bytes:,} bytes of SRAM but --sram allows {sram:,} "
        f"({mem.arena_bytes - sram:,} bytes missing). The peak is at {where}, where these buffers are live: "
        f"{live_text}. What would help: a smaller input resolution or width multiplier, "
        f"patch-based inference of the first layers (MCUNetV2), or a larger --sram if the device has it. "
        f"Nothing was written.")


def compile_model(g: Graph, args, sram: int, flash: int | None) -> str:
    from .codegen.emit import generate_project
    from .report import build_report, render_markdown

    out = Path(args.output)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not args.force:
        raise BadInput(f"output folder {str(out)!r} exists and is not empty (use --force to replace it)")
    prefix = default_prefix(g, args.name)
    program = build_program(g, QuantOptions.from_args(args))
    mem = plan_memory(program)
    check_budget(program, mem, sram)
    report = build_report(program, mem, sram=sram, flash=flash, source=Path(args.model).name)
    if flash is not None and report["flash_bytes"] > flash:
        raise DoesNotFit(f"weights and constants need {report['flash_bytes']:,} bytes of flash but --flash "
                         f"allows {flash:,}. Nothing was written.")
    from .target.measure import measure_on_target, target_memory

    core, memory = target_memory(getattr(args, "target", None), sram, flash, getattr(args, "stack_bytes", None))
    files = generate_project(program, mem, prefix, Path(args.model).name, core, memory)
    target_text = measure_on_target(files, report, program, prefix, core, memory) if core else (
        "\n  the stack is not included (it depends on the core and compiler): compile with "
        "--target cortex-mN to link against the budget and measure it")
    import json

    files["report.json"] = (json.dumps(report, indent=2) + "\n").encode()
    files["report.md"] = render_markdown(report).encode()
    from .codegen.profile_svg import memory_profile_svg

    files["memory.svg"] = memory_profile_svg(program, mem, sram).encode()
    write_atomically(files, out, force=args.force)
    return (f"tinycc: wrote {out}/ ({len(files)} files)\n"
            f"  peak SRAM {report['peak_sram_bytes']:,} B (arena {report['arena_bytes']:,} B, "
            f"lower bound {report['lower_bound_bytes']:,} B, planner {report['planner']}), "
            f"flash {report['flash_bytes']:,} B, {report['macs']:,} MACs, {report['params']:,} params"
            + target_text)


def write_atomically(files: dict[str, bytes], out: Path, force: bool = False) -> None:
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp", dir=out.parent))
    try:
        from .codegen.emit import write_files

        write_files(files, tmp)
        if out.exists():
            if not force and any(out.iterdir()):
                raise BadInput(f"output folder {str(out)!r} appeared while compiling")
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
