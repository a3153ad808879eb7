"""Cortex-M targets: compiler flags, QEMU boards and memory maps for `--target`.

One table row per core. `board` is the QEMU machine that emulates it (None: build-only). The
memory map is the board's: the code memory (FLASH) holds the vector table, code, constants and
the .data init image; SRAM holds the stack (at the bottom, so that an overflow leaves SRAM and
hits the guard), .data and .bss (the arena). Board capacities bound what `--flash`/`--sram`
may ask for when the image is to run under QEMU; a real part has its own limits.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadInput

HOST = "host"
KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Core:
    name: str  # --target value
    cpu_flags: tuple[str, ...]  # -mcpu/-mthumb/-mfpu/-mfloat-abi
    arch: str  # v6m | v7m | v7em | v8m | v81m
    board: str | None  # QEMU -M machine, None when no QEMU board models the core
    flash_origin: int
    flash_capacity: int
    sram_origin: int
    sram_capacity: int

    @property
    def has_dsp(self) -> bool:
        """ARMv7E-M and later have the DSP extension (SMLAD, SXTB16, SSAT): __ARM_FEATURE_DSP."""
        return self.arch in ("v7em", "v8m", "v81m")

    @property
    def stack_guard(self) -> str:
        """How a stack overflow is caught: MPU no-access region below SRAM, or the MSPLIM register."""
        return {"v7m": "mpu", "v7em": "mpu", "v8m": "msplim", "v81m": "msplim"}.get(self.arch, "none")

    @property
    def can_run(self) -> bool:
        return self.board is not None


_MPS2 = dict(flash_origin=0x00000000, flash_capacity=4 * MiB, sram_origin=0x20000000, sram_capacity=4 * MiB)

CORES: dict[str, Core] = {c.name: c for c in [
    # No QEMU machine has a Cortex-M0+: the build is checked (ISA, link budget), not run. The
    # memory map is the common one (flash at 0, SRAM at 0x20000000); edit arm/link.ld for a part.
    Core("cortex-m0plus", ("-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"), "v6m", None,
         flash_origin=0x00000000, flash_capacity=1 * MiB, sram_origin=0x20000000, sram_capacity=256 * KiB),
    Core("cortex-m3", ("-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"), "v7m", "mps2-an385", **_MPS2),
    Core("cortex-m4", ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"), "v7em",
         "mps2-an386", **_MPS2),
    Core("cortex-m7", ("-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"), "v7em",
         "mps2-an500", **_MPS2),
    # AN505 boots the M33 in the Secure state: code and SRAM are used through their Secure aliases.
    Core("cortex-m33", ("-mcpu=cortex-m33", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"), "v8m",
         "mps2-an505", flash_origin=0x10000000, flash_capacity=4 * MiB, sram_origin=0x38000000,
         sram_capacity=2 * MiB),
    # AN547: code in the 512 KiB ITCM, data in the 512 KiB DTCM. -mfpu=auto takes MVE and the FPU
    # from -mcpu.
    Core("cortex-m55", ("-mcpu=cortex-m55", "-mthumb", "-mfpu=auto", "-mfloat-abi=hard"), "v81m",
         "mps3-an547", flash_origin=0x00000000, flash_capacity=512 * KiB, sram_origin=0x20000000,
         sram_capacity=512 * KiB),
]}

TARGETS = (HOST, *CORES)
DEFAULT_STACK_BYTES = 2048


def get_core(name: str) -> Core:
    try:
        return CORES[name]
    except KeyError:
        raise BadInput(f"unknown --target {name!r}: choose one of {', '.join(TARGETS)}") from None


def runnable_core(name: str) -> Core:
    """The core, which must have a QEMU board (for --engine qemu)."""
    core = get_core(name)
    if not core.can_run:
        raise BadInput(f"--target {name}: no QEMU board emulates this core, so it can be built but not run; "
                       f"cores that run: {', '.join(c.name for c in CORES.values() if c.can_run)}")
    return core


@dataclass(frozen=True)
class Memory:
    """The linker-script budget: what --flash/--sram allow, placed at the core's origins."""

    flash_origin: int
    flash_bytes: int
    sram_origin: int
    sram_bytes: int
    stack_bytes: int = DEFAULT_STACK_BYTES


def memory_for(core: Core, sram: int, flash: int | None, stack: int = DEFAULT_STACK_BYTES) -> Memory:
    """The budget for the link. Without --flash the core's code memory (its board's) is the limit."""
    return Memory(core.flash_origin, core.flash_capacity if flash is None else flash, core.sram_origin, sram, stack)


def board_problem(core: Core, memory: Memory) -> str | None:
    """Why an image linked for `memory` cannot run on the core's QEMU board; None if it can."""
    if not core.can_run:
        return f"no QEMU board emulates the {core.name}"
    if memory.sram_bytes > core.sram_capacity or memory.flash_bytes > core.flash_capacity:
        return (f"the QEMU board {core.board} has {core.flash_capacity // KiB:,} KiB of code memory and "
                f"{core.sram_capacity // KiB:,} KiB of SRAM, less than the budget (--flash {memory.flash_bytes:,} B, "
                f"--sram {memory.sram_bytes:,} B)")
    return None
