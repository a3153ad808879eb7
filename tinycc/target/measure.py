"""`tinycc compile --target CORE`: the cross build, its figures in the report, the link budget."""
from __future__ import annotations

import sys

from ..program import Program
from . import DEFAULT_STACK_BYTES, HOST, Core, Memory, get_core, memory_for

ZERO_INPUT = "all-zero input"


def target_memory(target: str | None, sram: int, flash: int | None,
                  stack: int | None = None) -> tuple[Core | None, Memory | None]:
    """(core, link budget) for --target; (None, None) for the host."""
    if not target or target == HOST:
        return None, None
    core = get_core(target)
    return core, memory_for(core, sram, flash, DEFAULT_STACK_BYTES if stack is None else stack)


def measure_on_target(files: dict[str, bytes], report: dict, program: Program, prefix: str, core: Core,
                      memory: Memory, warn=None) -> str:
    """Cross-compile the generated project (the link enforces --flash/--sram: DoesNotFit when it
    fails), add the ELF figures to the report, and where QEMU has a board for the core run one
    inference on an all-zero input to count instructions and measure the stack.

    Without arm-none-eabi-gcc the project is still valid: warn and add nothing. Returns a summary
    line for the user (empty or starting with a newline)."""
    from ..report import add_target_figures
    from ..sim.qemu import build_and_measure, missing_tools

    warn = warn or (lambda m: print(m, file=sys.stderr))
    missing = missing_tools(run=False)
    if missing:
        warn(f"tinycc: WARNING: {missing}: the {core.name} project was written but not cross-compiled, "
             f"so report.json has no ELF sizes, stack or instruction figures.")
        return ""
    zero_inputs = [bytes([program.tensors[t].quant.scalar()[1] & 0xFF]) * program.tensors[t].size
                   for t in program.inputs]
    figures = build_and_measure(files, prefix, core, memory, zero_inputs,
                                [program.tensors[t].size for t in program.outputs], len(program.steps))
    add_target_figures(report, core, figures.sizes, figures.static_stack, figures.run, run_input=ZERO_INPUT)
    stack = report["stack_bytes"]
    text = (f"\n  {core.name}: ELF flash {report['flash_bytes_elf']:,} B, SRAM {report['sram_bytes_elf']:,} B "
            f"+ stack reserve {stack['reserved']:,} B (static worst case {stack['static']:,} B")
    if figures.run is None:
        warn(f"tinycc: note: not run under QEMU ({figures.not_run}), so report.json has no instruction counts")
        return text + ")"
    text += f", measured {stack['measured']:,} B)"
    if report["instructions"]:
        ins = report["instructions"]
        text += f"; {ins['per_inference']:,} instructions per inference ({ins['per_mac']} per MAC)"
    return text


def layer_class(step) -> str | None:
    """conv / depthwise / pointwise / fc for a step of the MAC-heavy kernels, None for the rest:
    the classes in which instructions per MAC are reported (benchmarks/bench_cortexm.py). The
    op says (OpDef.layer_class)."""
    from ..ops.registry import OPS

    return OPS[step.op].layer_class(step)
