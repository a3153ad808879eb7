"""Cross-compile a generated project for a Cortex-M core, run it under QEMU, measure it.

Build: `make arm` in the project (arm-none-eabi-gcc; arm/link.ld holds the --flash/--sram budget).
Run: qemu-system-arm on the core's board with semihosting; the harness reads input*.bin and
writes output*.bin in QEMU's working directory and prints a sentinel line with the stack
high-water mark. Cost: a TCG plugin (templates/arm/qemu_insncount.c) counts guest instructions
and records the count each time the harness's per-layer hook (tc_trace_step) runs, which gives
deterministic instructions per layer and per inference (arm-target.md section 3).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from ..errors import DoesNotFit
from ..resources import data_dir
from ..target import DEFAULT_STACK_BYTES, Core, Memory, board_problem
from .host import BuildError, c_compiler

ARM_PREFIX = os.environ.get("TINYCC_ARM_PREFIX", "arm-none-eabi-")
QEMU = os.environ.get("TINYCC_QEMU", "qemu-system-arm")
MARKER = "tc_trace_step"
SENTINEL = re.compile(r"tinycc: done stack_high_water=(\d+) stack_reserved=(\d+)")
_OVERFLOW = re.compile(r"region [`'](SRAM|FLASH)' overflowed by (\d+) bytes")


def missing_tools(run: bool = True) -> str | None:
    """What is missing to build (and with run=True, to emulate) Cortex-M code; None if nothing."""
    missing = [tool for tool in [f"{ARM_PREFIX}gcc", "make"] + ([QEMU] if run else []) if not shutil.which(tool)]
    if not missing and not _has_arm_libc():
        missing = ["the C library for arm-none-eabi (memcpy, memset)"]
    if not missing:
        return None
    return (f"{', '.join(missing)} not found (Debian: apt-get install gcc-arm-none-eabi "
            f"libnewlib-arm-none-eabi qemu-system-arm)")


@lru_cache(maxsize=None)
def _has_arm_libc() -> bool:
    r = subprocess.run([f"{ARM_PREFIX}gcc", "-print-file-name=libc.a"], capture_output=True, text=True)
    return r.returncode == 0 and os.path.isabs(r.stdout.strip())


# ---- build --------------------------------------------------------------------------------------
def cross_build(project: Path, prefix: str, memory: Memory | None = None, stack: int | None = None) -> Path:
    """`make arm` in a generated project; returns the ELF. A budget overflow raises DoesNotFit.

    stack: the stack reserve in bytes (default: the one in arm/link.ld)."""
    args = ["make", "-s", "-C", str(project), "arm", f"ARM_PREFIX={ARM_PREFIX}"]
    if stack is not None:
        args.append(f"STACK_SIZE={int(stack)}")
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        log = r.stdout + r.stderr
        overflow = _OVERFLOW.search(log)
        if overflow:
            raise DoesNotFit(_overflow_message(overflow.group(1), int(overflow.group(2)), memory, stack, log))
        raise BuildError(f"cross-compiling the generated project failed:\n{log}")
    return project / "build-arm" / f"{prefix}.elf"


def _overflow_message(region: str, missing: int, memory: Memory | None, stack: int | None, log: str) -> str:
    if region == "SRAM":
        budget = f" --sram {memory.sram_bytes:,} B" if memory else " --sram"
        reserve = stack if stack is not None else (memory.stack_bytes if memory else None)
        what = "the stack reserve" + (f" ({reserve:,} B)" if reserve is not None else "") + \
               ", .data and .bss (the arena and the runtime's state)"
        hint = ("a larger --sram, or a smaller stack reserve (compile --stack N, or make arm STACK_SIZE=N) "
                "if the static stack figure allows it")
    else:
        budget = f" --flash {memory.flash_bytes:,} B" if memory else " --flash"
        what = "code, weights and constants"
        hint = "a larger --flash, or a smaller model"
    ld_lines = "\n".join("  " + line.split("ld: ", 1)[-1] for line in log.splitlines() if "ld: " in line)
    return (f"the link does not fit the budget: {what} need {missing:,} bytes more than{budget} allows. "
            f"What would help: {hint}. Linker:\n{ld_lines}")


# ---- sizes --------------------------------------------------------------------------------------
@dataclass
class ElfSizes:
    """Bytes of the linked image. flash: everything loaded from flash (vector table, code, constants,
    the .data init image); sram: .data + .bss (the stack reserve is counted apart)."""

    flash: int
    sram: int
    stack_reserved: int
    sections: dict[str, int] = field(default_factory=dict)
    code_by_file: dict[str, int] = field(default_factory=dict)  # flash_by_source() of the link map


# readelf -S -W: [Nr] Name Type Addr Off Size ES Flg Lk Inf Al
_SECTION_ROW = re.compile(r"^\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*)\s+\d+\s+\d+\s+\d+$")


def elf_sizes(elf: Path) -> ElfSizes:
    flash = sram = stack = 0
    sections = {}
    for line in _tool(f"{ARM_PREFIX}readelf", "-S", "-W", str(elf)).splitlines():
        m = _SECTION_ROW.match(line)
        if not m or "A" not in m.group(4):
            continue
        name, kind, size, flags = m.group(1), m.group(2), int(m.group(3), 16), m.group(4)
        sections[name] = size
        if name == ".stack":
            stack = size
        elif "W" in flags:
            sram += size
        if kind != "NOBITS":
            flash += size
    link_map = elf.with_suffix(".map")
    by_file = flash_by_source(link_map.read_text(errors="replace")) if link_map.exists() else {}
    return ElfSizes(flash=flash, sram=sram, stack_reserved=stack, sections=sections, code_by_file=by_file)


# An input section in the link map: " .text.name" then its address, size and object, on the same
# line or (long names) on the next one.
_MAP_INPUT_SECTION = re.compile(r"^ (\.[^\s*]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)$", re.MULTILINE)
_HARNESS_OBJECT = re.compile(r"^build-arm/harness/(.+)\.o$")


def flash_by_source(link_map: str) -> dict[str, int]:
    """Bytes of code and constants (.text*, .rodata*) each source file put in the linked image
    (after --gc-sections), from the GNU ld map: {"runtime/tc_conv2d_s8.c": 2104, "model.c": ...,
    "weights.c": ..., "arm/startup.c": ..., "libc.a": ...}. This is what the report gives per
    kernel: a kernel's cost in flash is its runtime file's bytes."""
    body = link_map.split("Linker script and memory map", 1)[-1]
    out: dict[str, int] = {}
    for m in _MAP_INPUT_SECTION.finditer(body):
        section, size, obj = m.group(1), int(m.group(2), 16), m.group(3)
        if size == 0 or not section.startswith((".text", ".rodata")):
            continue
        own = _HARNESS_OBJECT.match(obj)
        key = own.group(1) + ".c" if own else Path(obj.split("(")[0]).name  # lib*.a(member.o)
        out[key] = out.get(key, 0) + size
    return dict(sorted(out.items()))


@dataclass
class StaticStack:
    """Worst-case stack from the GCC call graph (-fcallgraph-info=su). `unknown`: callees without
    stack information (precompiled library code such as memcpy), counted as 0 bytes."""

    bytes: int
    unknown: list[str]
    bounded: bool  # False if a frame is unbounded (alloca, VLA) or the graph has a cycle (recursion)


_CI_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
_CI_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
_CI_SIZE = re.compile(r"\\n(\d+) bytes \(([a-z,]+)\)")


# Stack bytes of the runtime's hand-written assembly functions, which gcc's call-graph output
# does not describe (they push registers and call nothing). Checked against the sources by
# tests/test_cortexm.py::test_handwritten_frames_match_the_assembly.
HANDWRITTEN_FRAMES = {"tc_conv2d_pairs_asm": 40, "tc_conv2d_pairs_sums_asm": 40,
                      "tc_conv2d_pairs_near_asm": 40, "tc_conv2d_shallow4_asm": 40,
                      "tc_conv2d_shallow8_asm": 40, "tc_conv2d_shallow4z_asm": 40, "tc_conv2d_shallow8z_asm": 40,
                      "tc_dwq_pairs_asm": 40, "tc_dwq_pairs_s2_asm": 40, "tc_dwq_quads_asm": 40,
                      "tc_dwk5_pairs_asm": 48, "tc_dwk5_pairs_s2_asm": 48, "tc_dwk7_pairs_asm": 48,
                      "tc_dwk7_pairs_s2_asm": 48,
                      "tc_conv2d_first_pairs_asm": 40}


def static_stack(build_dir: Path, root: str = "tc_reset_handler") -> StaticStack:
    frames: dict[str, tuple[int, bool]] = {}
    calls: dict[str, list[str]] = {}
    for ci in sorted(build_dir.rglob("*.ci")):
        text = ci.read_text(errors="replace")
        for title, label in _CI_NODE.findall(text):
            size = _CI_SIZE.search(label)
            if size:
                frames[title] = (int(size.group(1)), size.group(2) in ("static", "dynamic,bounded"))
        for src, dst in _CI_EDGE.findall(text):
            calls.setdefault(src, []).append(dst)
    for name, size in HANDWRITTEN_FRAMES.items():
        frames.setdefault(name, (size, True))
    unknown: set[str] = set()
    bounded = True
    depth: dict[str, int] = {}

    def worst(fn: str, path: frozenset) -> int:
        nonlocal bounded
        if fn in path:
            bounded = False
            return 0
        if fn in depth:
            return depth[fn]
        if fn not in frames:
            unknown.add(fn)
            return 0
        own, frame_bounded = frames[fn]
        bounded &= frame_bounded
        deepest = max((worst(callee, path | {fn}) for callee in calls.get(fn, [])), default=0)
        depth[fn] = own + deepest
        return depth[fn]

    total = worst(root, frozenset())
    return StaticStack(bytes=total, unknown=sorted(unknown), bounded=bounded)


# ---- run ----------------------------------------------------------------------------------------
@dataclass
class QemuRun:
    outputs: list[bytes]
    stack_high_water: int  # bytes, from the stack painted at reset, measured after the inference
    stack_reserved: int
    instructions: int | None = None  # one inference: from the hook before it to the last layer's hook
    step_instructions: list[int] | None = None  # per step, in program order
    console: str = ""
    pc_counts: dict[int, int] | None = None  # profile=True: executions per instruction address, whole run


def marker_address(elf: Path, symbol: str = MARKER) -> int:
    for line in _tool(f"{ARM_PREFIX}nm", str(elf)).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == symbol:
            return int(parts[0], 16) & ~1
    raise BuildError(f"{elf.name} has no symbol {symbol!r}: was the harness built with `make arm`?")


def run_elf(elf: Path, core: Core, inputs: Sequence[bytes], output_sizes: Sequence[int], count: bool = True,
            steps: int | None = None, timeout: float = 600, profile: bool = False) -> QemuRun:
    """Run the harness ELF on `inputs` (raw int8 bytes, in order). count: instruction counts
    (needs the plugin; None if it cannot be built); steps: the number of model steps, to check
    that every layer hook was seen; profile: also count executions per instruction address."""
    if not core.can_run:
        raise BuildError(f"no QEMU board emulates the {core.name}")
    plugin = insncount_plugin() if count else None
    with tempfile.TemporaryDirectory(prefix="tinycc_qemu_") as tmp:
        work = Path(tmp)
        for i, data in enumerate(inputs):
            (work / f"input{i}.bin").write_bytes(data)
        cmd = [QEMU, "-M", core.board, "-nographic", "-monitor", "none", "-serial", "none",
               "-semihosting-config", "enable=on,target=native", "-kernel", str(Path(elf).resolve())]
        pcs = f",pcs={work / 'pcs.txt'}" if profile else ""
        plugin_args = (["-plugin", f"{plugin},mark={marker_address(elf):#x},out={work / 'counts.txt'}{pcs}"]
                       if plugin else [])
        r = _run_qemu(cmd + plugin_args, work, timeout, core)
        if plugin and r.returncode != 0 and "plugin" in r.stderr.lower() and not SENTINEL.search(r.stderr):
            plugin = None  # this QEMU cannot load it (built without plugins, other API version)
            r = _run_qemu(cmd, work, timeout, core)
        console = r.stdout + r.stderr
        done = SENTINEL.search(console)
        if r.returncode != 0 or not done:
            raise BuildError(f"the {core.name} harness failed under QEMU {core.board} (exit {r.returncode}"
                             f"{_exit_meaning(r.returncode)}):\n{console}")
        outputs = []
        for i, size in enumerate(output_sizes):
            data = (work / f"output{i}.bin").read_bytes()
            if len(data) != size:
                raise BuildError(f"output{i}.bin has {len(data)} bytes, expected {size}")
            outputs.append(data)
        run = QemuRun(outputs, stack_high_water=int(done.group(1)), stack_reserved=int(done.group(2)),
                      console=console)
        if plugin:
            run.instructions, run.step_instructions = _read_counts(work / "counts.txt", steps)
            if profile:
                run.pc_counts = {int(a, 16): int(n) for a, n in
                                 (line.split() for line in (work / "pcs.txt").read_text().splitlines())}
        return run


def function_profile(elf: Path, pc_counts: dict[int, int]) -> dict[str, int]:
    """Executed instructions per function of `elf` (from QemuRun.pc_counts), largest first."""
    import bisect

    starts: list[tuple[int, int, str]] = []  # (start, end, name) of each function symbol
    for line in _tool(f"{ARM_PREFIX}nm", "-S", "--defined-only", str(elf)).splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2].lower() == "t":
            start = int(parts[0], 16) & ~1
            starts.append((start, start + int(parts[1], 16), parts[3]))
    starts.sort()
    keys = [s for s, _, _ in starts]
    totals: dict[str, int] = {}
    for addr, n in pc_counts.items():
        i = bisect.bisect_right(keys, addr) - 1
        name = starts[i][2] if i >= 0 and addr < starts[i][1] else "?"
        totals[name] = totals.get(name, 0) + n
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


@dataclass
class TargetFigures:
    sizes: ElfSizes
    static_stack: StaticStack
    run: QemuRun | None  # None: not emulated (no board, no QEMU, or the budget exceeds the board)
    not_run: str = ""  # why it did not run


def build_and_measure(files: dict[str, bytes], prefix: str, core: Core, memory: Memory, inputs: Sequence[bytes],
                      output_sizes: Sequence[int], steps: int) -> TargetFigures:
    """Cross-compile a generated project (files: path -> content) in a scratch folder, read its sizes
    and static stack, and run it once under QEMU when the core has a board and QEMU is installed."""
    from ..codegen.emit import write_files

    with tempfile.TemporaryDirectory(prefix="tinycc_arm_build_") as tmp:
        project = Path(tmp)
        write_files(files, project)
        elf = cross_build(project, prefix, memory)
        figures = TargetFigures(elf_sizes(elf), static_stack(project / "build-arm"), None)
        check_stack_reserve(figures.static_stack, figures.sizes.stack_reserved)
        problem = board_problem(core, memory) or missing_tools(run=True)
        if problem:
            figures.not_run = problem
        else:
            figures.run = run_elf(elf, core, inputs, output_sizes, steps=steps)
        return figures


def check_stack_reserve(static: StaticStack, reserved: int) -> None:
    """DoesNotFit when the stack reserve is below the build's static worst case: the image
    would overflow its stack (a fault under QEMU, memory corruption on a part without a guard)."""
    if static.bytes <= reserved:
        return
    suggestion = (static.bytes + 255) // 256 * 256
    raise DoesNotFit(f"the stack reserve is {reserved:,} bytes but the static worst case of this build is "
                     f"{static.bytes:,} bytes (gcc's call graph, from the reset handler down): it would overflow. "
                     f"What would help: --stack {suggestion} or more (the default is {DEFAULT_STACK_BYTES}). "
                     f"Nothing was written.")


def _run_qemu(cmd: list[str], cwd: Path, timeout: float, core: Core) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildError(f"QEMU ({core.board}) did not finish within {timeout:.0f} s") from None


def _exit_meaning(rc: int) -> str:
    names = {1: "I/O error", 2: "the model returned an error", 131: "HardFault", 132: "MemManage fault",
             133: "BusFault", 134: "UsageFault"}
    return f": {names[rc]}" if rc in names else (f": exception {rc - 128}" if rc > 128 else "")


def _read_counts(path: Path, steps: int | None) -> tuple[int, list[int]]:
    marks = []
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "mark":
            marks.append(int(value))
    if len(marks) < 1 or (steps is not None and len(marks) != steps + 1):
        raise BuildError(f"the instruction counter saw {len(marks)} layer hooks, expected "
                         f"{'?' if steps is None else steps + 1}")
    per_step = [b - a for a, b in zip(marks, marks[1:])]
    return marks[-1] - marks[0], per_step


@lru_cache(maxsize=None)
def insncount_plugin() -> Path | None:
    """The instruction-count plugin, built once with the host C compiler (cached by source hash).
    None when it cannot be built or QEMU lacks plugin support."""
    source = data_dir("templates") / "arm" / "qemu_insncount.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    out_dir = Path(tempfile.gettempdir()) / "tinycc_qemu_plugin"
    lib = out_dir / f"insncount_{digest}.so"
    if lib.exists():
        return lib
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = lib.with_suffix(f".{os.getpid()}.tmp")
    try:
        r = subprocess.run([c_compiler(), "-std=c99", "-O2", "-shared", "-fPIC", "-o", str(tmp), str(source)],
                           capture_output=True, text=True)
    except (OSError, BuildError):
        return None
    if r.returncode != 0:
        return None
    os.replace(tmp, lib)
    return lib


def _tool(name: str, *args: str) -> str:
    r = subprocess.run([name, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"{name} failed:\n{r.stderr}")
    return r.stdout
