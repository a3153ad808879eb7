"""tinycc compile: quantize -> lower -> plan memory -> check budget -> emit C + report.

Output appears only when everything succeeded: files are written to a temporary folder next to
the destination, then renamed into place. --force replaces only a folder tinycc wrote (see
check_output_folder). Before calibration, which can take minutes, a dry-run lowering with
placeholder ranges lists every node int8 cannot compile and checks a lower bound of the arena
against --sram (see preflight).
"""
from __future__ import annotations

import json
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
from .quant import ternary
from .quant.codebook import check_layer_names, parse_codebook_bits, record_codebook_schemes, weight_layer_names
from .quant import QUANT_CHOICES
from .quant.ptq import assign_qparams


@dataclass
class QuantOptions:
    calib: str | None = None
    method: str | None = None
    samples: int | None = None
    bias_correction: bool = False
    # weight quantization: "int8"; "prom": pointwise convs ternary (quant/ternary.py), the rest
    # int8; "codebook": clustered weights (quant/codebook.py); "prom+codebook": both (ternary
    # pointwise convs, codebook elsewhere)
    quant: str = "int8"
    codebook_bits: str | None = None  # --codebook-bits B[,LAYER=B...]
    ternary_rule: str = ternary.DEFAULT_RULE
    ternary_formats: str = "auto"  # auto | 2bit | base3 (quant/ternary.choose_format)

    @classmethod
    def from_args(cls, args) -> "QuantOptions":
        return cls(getattr(args, "calib", None), getattr(args, "calib_method", None),
                   getattr(args, "calib_samples", None), getattr(args, "bias_correction", False),
                   getattr(args, "quant", None) or "int8", getattr(args, "codebook_bits", None),
                   getattr(args, "ternary_rule", None) or ternary.DEFAULT_RULE,
                   getattr(args, "ternary_formats", None) or "auto")

    @property
    def schemes(self) -> set[str]:
        """The weight formats --quant names: {"int8"}, {"prom"}, {"codebook"} or both of those."""
        return set(self.quant.split("+"))

    def weight_scheme_label(self) -> str:
        """What report.json 'quant' adds for codebook weights ('' without)."""
        if "codebook" not in self.schemes:
            return ""
        return f"+codebook{self.codebook_bits or parse_codebook_bits(None).default}"


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
    check_weight_quant_options(g, opts)  # before calibration, which can take minutes
    if is_prequantized(g):
        return record_weight_quant(assign_qparams(g, None, None), opts, None)
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
    q = record_weight_quant(assign_qparams(g, stats, opts.method or DEFAULT_METHOD), opts, stats, samples)
    if opts.bias_correction:
        from .quant.bias_correction import correct_biases

        q = correct_biases(g, q, samples)
    return q


def check_weight_quant_options(g: Graph, opts: QuantOptions) -> None:
    """--quant / --codebook-bits errors (BadInput), including overrides naming no layer."""
    if opts.codebook_bits is not None and "codebook" not in opts.schemes:
        raise BadInput("--codebook-bits applies to --quant codebook or prom+codebook")
    if "codebook" in opts.schemes:
        check_layer_names(parse_codebook_bits(opts.codebook_bits), weight_layer_names(g))


def record_weight_quant(q: Graph, opts: QuantOptions, stats, samples=None) -> Graph:
    """The weight scheme --quant asks for, on the nodes it applies to (int8 is already recorded);
    codebook layers also take their inputs' calibration moments from `stats` (None: none) and
    their input covariances from the calibration `samples` (quant/codebook.py)."""
    if "codebook" in opts.schemes:
        record_codebook_schemes(q, parse_codebook_bits(opts.codebook_bits), stats, samples)
    return q


class _PlaceholderRange:
    """Calibration statistics for the dry run: every activation in [-1, 1]."""

    def range(self, method: str) -> tuple[float, float]:
        return -1.0, 1.0


def dry_run_program(g: Graph) -> Program:
    """The float graph lowered with placeholder activation ranges (no calibration).

    Which kernels, buffers and scratch a node needs follows from shapes and attributes, so this
    raises the same Unsupported (every node int8 cannot compile, listed at once by lower()) and
    has the same tensor sizes as the calibrated program, in well under a second."""
    stats = {name: _PlaceholderRange() for name, t in g.tensors.items() if not t.is_const}
    return lower(assign_qparams(g, stats, DEFAULT_METHOD), g.name)


def preflight(g: Graph, sram: int | None = None, patching: bool = False, stream: bool = False) -> None:
    """Refuse before calibration what calibration cannot change: nodes int8 cannot compile
    (Unsupported, all of them in one message) and, with a budget, a model whose arena lower
    bound already exceeds --sram (DoesNotFit). `patching`: a patch stage may replace the first
    steps, so only the steps that no stage can reach (and the whole graph inputs and outputs)
    count; `stream` (--stream-input): the input the patch stage reads does not count either.
    Pre-quantized models skip it: they are not calibrated, and the full plan comes as fast."""
    if is_prequantized(g):
        return
    program = dry_run_program(g)
    if stream:
        from .schedule.patches import stage_limit

        program.streamed_input = stage_limit(program).stage_input
    if sram is not None:
        check_lower_bound(program, sram, first_unpatchable_step(program) if patching else 0)


def first_unpatchable_step(program: Program) -> int:
    """Steps from here on run layer by layer under every patch plan. A first stage is a prefix
    steps[:split] at one of its valid splits (schedule/patches.stage_limit); a second stage runs
    steps[split:end] from a first stage's end, and may reach further than any first stage (a skip
    connection that crosses every later split of the first stage, e.g. a U-Net's, does not cross
    the second's)."""
    from .schedule.patches import stage_limit

    firsts = stage_limit(program).splits
    seconds = (max(stage_limit(program, split).splits, default=0) for split in firsts)
    return max([*firsts, *seconds], default=0)


def build_program(g: Graph, opts: QuantOptions, warn=None, sram: int | None = None,
                  patching: bool = False, stream: bool = False) -> Program:
    """Quantize and lower; `sram`: refuse early (before calibration) a model that cannot fit
    (`patching`: with any patch plan; `stream`: with the input streamed)."""
    warn = warn or (lambda m: print(m, file=sys.stderr))
    g = prom_weights(g, opts, warn)
    preflight(g, sram, patching, stream)
    q = quantize_graph(g, opts, warn)
    program = lower(q, g.name, opts.ternary_formats)
    program.quant_scheme = quant_scheme_name(g, opts, program) + opts.weight_scheme_label()
    return program


def prom_weights(g: Graph, opts: QuantOptions, warn) -> Graph:
    """With --quant prom, the graph whose pointwise convs carry ternary weights (before the
    calibration, which then sees the network that will run); otherwise g itself."""
    if opts.quant not in QUANT_CHOICES:
        raise BadInput(f"--quant {opts.quant!r}: one of {', '.join(QUANT_CHOICES)}")
    if "prom" not in opts.schemes:
        return g
    if is_prequantized(g):
        warn("tinycc: note: --quant prom on a pre-quantized model: its stored weights are used as they are "
             "(ternary where the model stores pointwise weights in {-1, 0, 1})")
        return g
    try:
        q, done = ternary.ternarize_pointwise(g, opts.ternary_rule)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    if not done:
        warn("tinycc: note: --quant prom: the model has no pointwise (1x1, stride 1, group 1) convolution; "
             "every layer stays int8")
    return q


def quant_scheme_name(g: Graph, opts: QuantOptions, program: Program) -> str:
    """report.json "quant": int8-qdq | int8-ptq-METHOD, with a prom- prefix when layers run ternary."""
    base = "int8-qdq" if is_prequantized(g) else f"int8-ptq-{opts.method or DEFAULT_METHOD}"
    if not any(step.kernel.startswith("tc_pw_ternary_s8") for step in program.steps):
        return base
    return "prom-qdq" if is_prequantized(g) else f"prom-{opts.ternary_rule}+{base}"


def default_prefix(g: Graph, name: str | None) -> str:
    prefix = c_identifier(name or g.name or "model", 24).lower()
    if name and prefix != name:
        raise BadInput(f"--name {name!r} is not a C identifier (try {prefix!r})")
    return prefix


def _step_label(program: Program, k: int) -> str:
    step = program.steps[k] if 0 <= k < len(program.steps) else None
    return f"step {k} ({step.op} {step.onnx_name or step.node!r})" if step else "the input"


def _buffers_text(buffers: list[tuple[int, str]]) -> str:
    return ", ".join(f"{name[:40]!r} {size:,} B" for size, name in sorted(buffers, reverse=True)[:6])


def _does_not_fit(needed: str, sram: int, missing: int, where: str, buffers: list[tuple[int, str]],
                  when: str, patched: str = "") -> DoesNotFit:
    """patched: the patch plan already in use (then more patching is not the obvious advice)."""
    patching = (f"a finer grid or another stage than the patch plan tried ({patched}; --patch SxRxC)" if patched
                else "patch-based inference of the first layers (MCUNetV2)")
    return DoesNotFit(
        f"the model needs {needed} bytes of SRAM but --sram allows {sram:,} ({missing:,} bytes missing). "
        f"{where}: {_buffers_text(buffers)}. What would help: a smaller input resolution or width multiplier, "
        f"{patching}, or a larger --sram if the device has it. "
        f"{when}Nothing was written.")


def check_budget(program: Program, mem: MemoryPlan, sram: int) -> None:
    if mem.arena_bytes <= sram:
        return
    k = int(np.argmax(mem.live_bytes)) if mem.live_bytes else 0
    live = [(b.size, b.name) for b in mem.buffers if b.first <= k + 1 <= b.last]
    raise _does_not_fit(f"{mem.arena_bytes:,}", sram, mem.arena_bytes - sram,
                        f"The peak is at {_step_label(program, k)}, where these buffers are live", live, "",
                        program.patch.config.text() if program.patch is not None else "")


def _may_share_memory(step) -> bool:
    """Whether the planner may place some of this step's outputs over its inputs: in place,
    partial row overlap, a concat part written into its slice, or an updated tensor."""
    return bool(step.inplace_inputs) or step.overlap_delta is not None or step.copy_into is not None \
        or any(a.kind == "update" for a in step.args)


def arena_lower_bound(program: Program, first_step: int = 0) -> tuple[int, int, list[tuple[int, str]]]:
    """(bytes, step index, [(bytes, buffer)]): memory that every plan of `program` needs (of
    steps from `first_step` on: the earlier ones may be replaced by a patch stage).

    Every buffer lies whole in the arena; while a step runs, its scratch and the distinct
    buffers it reads and writes are live together and, unless the step may share memory (see
    _may_share_memory), disjoint. So the largest such sum over the steps is a lower bound of
    any arena the planner can produce (index -1: a graph input or output alone)."""
    best = (0, -1, [])
    for name in program.inputs + program.outputs:
        if name == program.streamed_input:
            continue
        root = program.root(name)
        size = program.tensors[root].size
        if size > best[0]:
            best = (size, -1, [(size, root)])
    for k, step in enumerate(program.steps):
        if k < first_step:
            continue
        roots = {program.root(t) for t in step.inputs + step.outputs if t in program.tensors}
        sizes = [(program.tensors[r].size, r) for r in sorted(roots)]
        if _may_share_memory(step) and sizes:
            sizes = [max(sizes)]
        scratch = min(sum(a.nbytes for a in args if a.kind == "scratch")
                      for args in (step.args, step.call(True)[1]))
        if scratch:
            sizes.append((scratch, "scratch"))
        total = sum(size for size, _ in sizes)
        if total >= best[0]:  # on a tie, name the step: it says more than a graph input or output
            best = (total, k, sizes)
    return best


def check_lower_bound(program: Program, sram: int, first_step: int = 0) -> None:
    """DoesNotFit when even the lower bound of the arena exceeds --sram (before calibration)."""
    needed, k, buffers = arena_lower_bound(program, first_step)
    if needed <= sram:
        return
    where = f"{_step_label(program, k)} alone needs these buffers at once" if k >= 0 else \
        "This model input or output alone needs"
    raise _does_not_fit(f"at least {needed:,}", sram, needed - sram, where, buffers,
                        "Refused before calibration (from the shapes alone). ")


@dataclass
class CompiledProject:
    """A compiled model in memory: what `tinycc compile` writes (files), its report, and the
    program and memory plan they were generated from."""
    program: Program
    mem: MemoryPlan
    report: dict
    files: dict[str, bytes]
    target_text: str  # the target part of the summary (ELF figures, or how to get them)

    def summary(self, out: Path) -> str:
        r = self.report
        return (f"tinycc: wrote {out}/ ({len(self.files)} files)\n"
                f"  peak SRAM {r['peak_sram_bytes']:,} B (arena {r['arena_bytes']:,} B, "
                f"lower bound {r['lower_bound_bytes']:,} B, planner {r['planner']}), "
                f"flash {r['flash_bytes']:,} B, {r['macs']:,} MACs, {r['params']:,} params"
                + self.target_text)


def compile_model(g: Graph, args, sram: int, flash: int | None) -> str:
    out = Path(args.output)
    user_files = [Path(f) for f in (args.model, getattr(args, "calib", None), getattr(args, "labels", None)) if f]
    check_output_folder(out, args.force, user_files)
    project = compile_project(g, args, sram, flash)
    write_atomically(project.files, out, force=args.force, user_files=user_files)
    return project.summary(out)


def compile_project(g: Graph, args, sram: int, flash: int | None) -> CompiledProject:
    """Everything `tinycc compile` does except writing: quantize, lower, plan, check the budget
    (DoesNotFit), generate the files and the report (args: model, name, target, stack_bytes and
    the quantization options, as the command line gives them)."""
    from .codegen.emit import generate_project
    from .report import build_report, render_markdown

    from .schedule.search import PatchOptions, plan_program

    prefix = default_prefix(g, args.name)
    patching = PatchOptions.from_args(args, sram)
    # with patches only the steps no patch stage can reach bound the arena before calibration
    program = build_program(g, QuantOptions.from_args(args), sram=sram, patching=patching.mode != "off",
                            stream=patching.stream)
    program, mem, decision = plan_program(program, patching)
    check_budget(program, mem, sram)
    report = build_report(program, mem, sram=sram, flash=flash, source=Path(args.model).name)
    if decision is not None:
        from .schedule.report import patch_report

        report["patch"] = patch_report(program, mem, decision)
    if flash is not None and report["flash_bytes"] > flash:
        raise DoesNotFit(f"weights and constants need {report['flash_bytes']:,} bytes of flash but --flash "
                         f"allows {flash:,}. Nothing was written.")
    from .target.measure import measure_on_target, target_memory

    core, memory = target_memory(getattr(args, "target", None), sram, flash, getattr(args, "stack_bytes", None))
    from .codegen.export import integration_notes, parse_exports

    exports = parse_exports(getattr(args, "export", None) or [])
    if exports and program.streamed_input:
        raise BadInput("--stream-input with --export: the example applications of the exports write the input "
                       "through PREFIX_input(0), which a streamed input does not have; compile without --export "
                       "and call PREFIX_invoke_stream (model.h)")
    notes = integration_notes(program, args.model, getattr(args, "labels", None))
    optimize = getattr(args, "optimize", None) or "speed"
    report["optimize"] = optimize
    files = generate_project(program, mem, prefix, Path(args.model).name, core, memory, notes, tuple(exports),
                             optimize)
    target_text = measure_on_target(files, report, program, prefix, core, memory) if core else (
        "\n  the stack is not included (it depends on the core and compiler): compile with "
        "--target cortex-mN to link against the budget and measure it")
    if "patch" in report:
        from .schedule.report import add_patch_instructions

        add_patch_instructions(report)
    files["report.json"] = (json.dumps(report, indent=2) + "\n").encode()
    files["report.md"] = render_markdown(report).encode()
    from .codegen.profile_svg import buffer_chart_svg, memory_chart
    from .codegen.report_html import render_html

    chart = buffer_chart_svg(memory_chart(program, mem), sram)
    files["memory.svg"] = chart.encode()
    files["report.html"] = render_html(report, chart).encode()
    return CompiledProject(program, mem, report, files, target_text)


def _is_tinycc_project(folder: Path) -> bool:
    """A folder tinycc wrote: its report.json is tinycc's and its model.h is there."""
    try:
        report = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and "tinycc_version" in report and (folder / "model.h").is_file()


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


TMP_SUFFIX_BYTES = 16  # mkdtemp adds ".tmp" and 8 random characters to ".NAME"


def check_output_folder(out: Path, force: bool, user_files: list[Path] = ()) -> None:
    """Refuse an output folder (BadInput, nothing touched) that tinycc could not write or that
    --force must not replace. The --force rule: only an empty folder or a tinycc project (its
    report.json and model.h), and never one that holds a file the user gave (model, --calib)."""
    try:
        _check_output_folder(out, force, user_files)
    except OSError as exc:  # e.g. a name too long even to look up
        raise BadInput(f"cannot write the output folder {str(out)[:80]!r}: {exc.strerror or exc}") from None


def _check_output_folder(out: Path, force: bool, user_files: list[Path]) -> None:
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise BadInput(f"-o {str(out)!r} is a file, not a folder: tinycc writes a project folder there "
                           f"and never replaces a file; choose another -o")
        if any(out.iterdir()):
            if not force:
                raise BadInput(f"output folder {str(out)!r} exists and is not empty "
                               f"(use --force to replace it, if tinycc wrote it)")
            for f in user_files:
                if _inside(f, out):
                    raise BadInput(f"output folder {str(out)!r} contains {str(f)!r}, which this command reads: "
                                   f"--force would delete it. Choose another -o; nothing was deleted.")
            if not _is_tinycc_project(out):
                raise BadInput(f"output folder {str(out)!r} is not a project tinycc wrote (no tinycc report.json "
                               f"and model.h): --force replaces only those. Choose another -o, or empty it "
                               f"yourself; nothing was deleted.")
    parent = out.absolute().parent
    missing = [out.absolute().name]
    while not parent.exists():
        missing.append(parent.name)
        parent = parent.parent
    if not parent.is_dir():
        raise BadInput(f"cannot create output folder {str(out)!r}: {str(parent)!r} is a file")
    limit = _name_max(parent)
    long = [n for n in missing if len(os.fsencode(n)) > limit]
    if long or len(os.fsencode(out.absolute().name)) + 1 + TMP_SUFFIX_BYTES > limit:
        raise BadInput(f"cannot create output folder {str(out)!r}: the name "
                       f"{(long or [out.absolute().name])[0][:40]!r}... is too long for this file system "
                       f"(at most {limit - 1 - TMP_SUFFIX_BYTES} bytes for the folder itself)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BadInput(f"cannot create output folder {str(out)!r}: {str(parent)!r} is not writable")


def _make_parents(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (deepest last), to remove them on failure."""
    created = []
    for p in reversed([folder, *folder.parents]):
        if not p.exists():
            p.mkdir()
            created.append(p)
    return created


def write_atomically(files: dict[str, bytes], out: Path, force: bool = False,
                     user_files: list[Path] = ()) -> None:
    """Write files into a temporary folder beside `out`, then rename it into place. On any
    failure (an OSError becomes BadInput) or signal nothing stays: neither the temporary
    folder nor parent folders made for it, and a folder being replaced is restored."""
    out = out.absolute()
    created: list[Path] = []
    tmp = old = None
    try:
        created = _make_parents(out.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp", dir=out.parent))
        from .codegen.emit import write_files

        write_files(files, tmp)
        if out.exists() or out.is_symlink():
            if force:
                check_output_folder(out, force, list(user_files))
            elif out.is_dir() and not any(out.iterdir()):
                out.rmdir()
            else:
                raise BadInput(f"output folder {str(out)!r} appeared while compiling")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old", dir=out.parent))
            os.replace(out, old / "project")
        os.replace(tmp, out)
        tmp = None
    except BaseException as exc:
        if old is not None and not out.exists():
            os.replace(old / "project", out)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        for p in reversed(created):
            shutil.rmtree(p, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if isinstance(exc, OSError):
            raise BadInput(f"cannot write the output folder {str(out)!r}: {exc.strerror or exc}"
                           + (f" ({exc.filename})" if exc.filename else "")) from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
