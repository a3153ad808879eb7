"""Build the view-model of a generated project and render the templates.

Templates stay dumb: every value they print is computed here. Everything taken from the model
(names) goes through c_identifier() or c_comment() first: a model file is untrusted input.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import jinja2
import numpy as np

from .. import __version__
from ..kernels import lookup, prunable_macros, runtime_sources
from ..memory.lifetimes import MemoryPlan, scratch_name
from ..program import Program
from ..schedule.patches import STREAM_KERNEL
from ..resources import data_dir

_CTYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int32): "int32_t", np.dtype(np.int16): "int16_t",
           np.dtype(np.uint8): "uint8_t"}
_COMMENT_SAFE = re.compile(r"[^A-Za-z0-9_.:,;=+\-\[\]() ]")


def c_comment(text: str, limit: int = 60) -> str:
    """Text safe inside a /* */ comment: no '*/', no newlines, ASCII only."""
    text = _COMMENT_SAFE.sub("_", str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def c_float(x: float) -> str:
    """A float32 literal that round-trips exactly (9 significant digits)."""
    text = f"{float(np.float32(x)):.9g}"
    if not any(c in text for c in ".en"):
        text += ".0"
    return text + "f"


def _param_value(v) -> str:
    if isinstance(v, (tuple, list)):
        return "{" + ", ".join(str(int(e)) for e in v) + "}"
    return str(int(v))


def _array_body(data: np.ndarray, per_line: int) -> str:
    """The initializer lines of a C array, `per_line` values each, indented and comma-separated.
    Formatted from Python ints in one pass: the weights of a large model are millions of values,
    and this is most of the compile time."""
    flat = data.ravel().tolist()
    full = len(flat) // per_line * per_line
    line = "    " + ", ".join(["%d"] * per_line)
    lines = [line % tuple(flat[i:i + per_line]) for i in range(0, full, per_line)]
    if full < len(flat):
        lines.append("    " + ", ".join(map(str, flat[full:])))
    return ",\n".join(lines)


def _runtime_files(kernels: set[str], core) -> tuple[list[str], list[str]]:
    """The runtime .c files of the used kernels and of the variants the target may take
    (tinycc/kernels.py: host projects ship every variant), and all headers."""
    sources = runtime_sources(kernels, core.has_dsp if core else None)
    headers = sorted(f.name for f in data_dir("runtime_c").glob("*.h"))
    return sources, headers


def _shape_text(shape) -> str:
    return "x".join(str(d) for d in shape)


def _io_view(program: Program, mem: MemoryPlan, names: list[str], kind: str) -> list[dict]:
    out = []
    for i, name in enumerate(names):
        info = program.tensors[name]
        s, zp = info.quant.scalar()
        layout = "NHWC" if info.perm == (0, 2, 3, 1) else "row-major"
        streamed = name == program.streamed_input  # not in the arena: no offset
        out.append(dict(index=i, var=f"{kind}{i}", comment=c_comment(name), size=info.size,
                        shape=_shape_text(info.shape), layout=layout, scale=c_float(s), zp=int(zp),
                        offset=None if streamed else mem.offsets[name], streamed=streamed))
    return out


# --optimize: the compiler flags of the generated builds. size also defines TC_OPTIMIZE_SIZE, under
# which a kernel may leave out shape-specialised copies of its general path.
OPTIMIZE_FLAGS = {"speed": "-O2", "size": "-Os -DTC_OPTIMIZE_SIZE"}


def _stream_view(program: Program, inputs: list[dict], steps: list[dict]) -> dict | None:
    """--stream-input: the streamed input's geometry and what one run asks of the callback."""
    if program.streamed_input is None:
        return None
    _, h, w, c = program.tensors[program.streamed_input].shape
    windows = [s["window"] for s in steps if s["window"]]
    sizes = [rows * cols * c for _, rows, _, cols in windows]
    first_arena = next((t for t in inputs if not t["streamed"]), None)
    return dict(input=next(t for t in inputs if t["streamed"]), height=h, width=w, channels=c,
                windows=len(windows), max_window_bytes=max(sizes), bytes_read=sum(sizes),
                probe=("input", first_arena["index"], first_arena["offset"]) if first_arena else None)


def view_model(program: Program, mem: MemoryPlan, prefix: str, source_name: str, core=None, memory=None,
               notes: dict | None = None, exports: tuple[str, ...] = (), optimize: str = "speed") -> dict:
    blobs = []
    for name, data in program.blobs.items():
        per_line = 16 if data.dtype.itemsize == 1 else 8
        blobs.append(dict(name=f"{prefix}_{name}", ctype=_CTYPES[data.dtype], count=data.size,
                          body=_array_body(data, per_line)))
    steps = []
    kernels = set()
    calls = []  # (kernel, params) of every kernel call, for the code no step can take (prunable_macros)
    shared_params: dict = {}
    for k, step in enumerate(program.steps):
        inplace = k in mem.inplace_steps
        kernel, step_args = step.call(inplace)
        window = None
        if kernel == STREAM_KERNEL:  # the caller's row callback, no runtime kernel, no params struct
            w = step.params
            window = (w.row0, w.rows, w.col0, w.cols)
        else:
            kernels.add(kernel)
            calls.append((kernel, step.params))
        args = []
        for a in step_args:
            if a.kind in ("in", "out", "update"):
                args.append(f"A({mem.offsets[a.ref] + a.at})")
            elif a.kind == "const":
                args.append(f"{prefix}_{a.ref}")
            elif a.kind == "scratch":
                args.append(f"A({mem.offsets[scratch_name(k)]})")
        out = step.outputs[0] if step.outputs else ""
        out_info = program.tensors[out] if out else None
        params = None
        if step.params is not None and window is None:
            params = dict(type=step.params.C_STRUCT, name=f"{step.name}_params",
                          fields=[(f.name, _param_value(getattr(step.params, f.name)))
                                  for f in dataclasses.fields(step.params)], shared=False)
            if program.patch is not None and k not in mem.elided_steps:
                # patches of the same size share one const params struct in flash
                key = (params["type"], tuple(params["fields"]))
                params["name"] = shared_params.setdefault(key, params["name"])
                params["shared"] = params["name"] != f"{step.name}_params"
        scratch = [(mem.offsets[scratch_name(k)], a.nbytes) for a in step_args if a.kind == "scratch"]
        steps.append(dict(index=k, name=step.name, kernel=kernel, op=step.op, inplace=inplace, window=window,
                          elided=k in mem.elided_steps,
                          scratch=scratch[0] if scratch else None,
                          onnx=c_comment(step.onnx_name or step.node), params=params, args=args,
                          out_offset=mem.offsets[out] if out else 0, out_size=out_info.size if out_info else 0,
                          out_shape=_shape_text(out_info.shape) if out_info else "",
                          note=c_comment((step.note + ", " if step.note else "") + "in place" if inplace else step.note)))
    sources, headers = _runtime_files(kernels, core)
    # model.c includes the headers of the kernels it calls, so a kernel added to the runtime
    # leaves the projects that do not use it unchanged
    kernel_headers = sorted({lookup(k).header for k in kernels})
    inputs = _io_view(program, mem, program.inputs, "input")
    return dict(
        version=__version__, source=c_comment(source_name), prefix=prefix, PREFIX=prefix.upper(),
        arena_bytes=max(mem.arena_bytes, 16), arena_align=arena_alignment(mem),
        inputs=inputs, stream=_stream_view(program, inputs, steps),
        outputs=_io_view(program, mem, program.outputs, "output"), steps=steps, blobs=blobs,
        runtime_sources=sources, runtime_headers=headers, kernel_headers=kernel_headers, quant=program.quant_scheme,
        core=core, memory=memory, arm=_arm_view(prefix, core) if core else None,
        exports=list(exports), optimize=optimize, opt_flags=OPTIMIZE_FLAGS[optimize],
        **_prunable_view(calls), **_notes_view(notes or {}),
    )


def _prunable_view(calls) -> dict:
    """Kernel code only some layers can take (tinycc/kernels.py PrunableCode): `pruned`, the
    definitions that compile out what no layer of the model takes (MACRO=0), and `kept`, the
    macros of what a layer may take (a shared CMake runtime keeps that code for every model)."""
    macros = prunable_macros(calls)
    return dict(pruned=[f"{m}=0" for m, used in macros.items() if not used],
                kept=[m for m, used in macros.items() if used])


def _notes_view(notes: dict) -> dict:
    """Class labels (C string literals) and input normalisation (float literals) for model.h;
    notes: codegen.export.annotations()."""
    from .export import c_string

    labels = notes.get("labels")
    norm = notes.get("norm")
    return dict(labels=[c_string(t) for t in labels] if labels else None,
                norm=dict(mean=", ".join(c_float(v) for v in norm[0]), std=", ".join(c_float(v) for v in norm[1]),
                          channels=len(norm[0])) if norm else None)


def arena_alignment(mem: MemoryPlan) -> int:
    """The arena base alignment the generated C requires: the largest alignment the planner gave
    a buffer offset (an offset aligned to 16 is only an address aligned to 16 on a base aligned
    to 16), and never below 16 (the documented default of PREFIX_ARENA_ALIGN)."""
    return max([16] + [b.align for b in mem.buffers])


def _arm_view(prefix: str, core) -> dict:
    """What the Cortex-M build files print: flags as one string, the ELF name."""
    return dict(cpu_flags=" ".join(core.cpu_flags), elf=f"{prefix}.elf")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, autoescape=False)


TEMPLATES = {"model.h": "model.h.j2", "model.c": "model.c.j2", "weights.h": "weights.h.j2",
             "weights.c": "weights.c.j2", "main.c": "main.c.j2", "Makefile": "Makefile.j2",
             "CMakeLists.txt": "CMakeLists.txt.j2"}
# Added for a Cortex-M --target: linker script, startup code, semihosting harness, CMake toolchain.
ARM_TEMPLATES = {"arm/link.ld": "arm/link.ld.j2", "arm/startup.c": "arm/startup.c.j2",
                 "arm/tc_semihost.c": "arm/tc_semihost.c.j2", "arm/tc_target.h": "arm/tc_target.h.j2",
                 "arm/main.c": "arm/main.c.j2", "arm/toolchain.cmake": "arm/toolchain.cmake.j2"}


def generate_project(program: Program, mem: MemoryPlan, prefix: str, source_name: str, core=None,
                     memory=None, notes: dict | None = None, exports: tuple[str, ...] = (),
                     optimize: str = "speed") -> dict[str, bytes]:
    """All files of the project: relative path -> content.

    core/memory (tinycc.target.Core/Memory): a Cortex-M target; adds the cross build and its harness.
    notes: labels and input normalisation for model.h (codegen.export.annotations); exports:
    build-system integrations to add (codegen.export.EXPORTS); optimize: "speed" or "size"
    (OPTIMIZE_FLAGS)."""
    from .export import export_files

    vm = view_model(program, mem, prefix, source_name, core, memory, notes, exports, optimize)
    env = _environment()
    templates = dict(TEMPLATES, **(ARM_TEMPLATES if core else {}))
    files = {path: env.get_template(tpl).render(**vm).encode() for path, tpl in templates.items()}
    rt = data_dir("runtime_c")
    for name in vm["runtime_sources"] + vm["runtime_headers"]:
        files[f"runtime/{name}"] = (rt / name).read_bytes()
    files.update(export_files(files, vm, list(exports), env))
    return files


def write_files(files: dict[str, bytes], root: Path) -> None:
    for rel, content in sorted(files.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
