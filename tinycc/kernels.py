"""The C kernels, each declared once, next to the op that lowers to it (tinycc/ops/*.py).

A declaration says what the rest of tinycc needs to know about a runtime_c/ kernel: its C entry
point and header, the params dataclass that mirrors its C struct, its golden (numpy) mirror,
the kinds of its arguments after the params pointer, the .c files of its portable entry point and of its faster variants,
its scratch size and its in-place twin. The code generator (which files a project ships), the
lowering (scratch sizes), the ctypes kernel tests, the sanitizer builds and the target
measurements read it; nothing else keeps a list of kernels.

    declare("tc_fc_s8", header="tc_conv.h", params=FcParams, golden=fc_s8,
            args=("in", "const", "const", "const", "const", "out"),
            sources=("tc_fc_s8.c",), variants=(Variant("dsp", ("tc_fc_s8_dsp.c",)),))

Variants follow CMSIS-NN's wrapper layout: the entry point (the portable C99 reference, the
spec) picks a variant at compile time by a preprocessor condition; every variant is bit-exact
with the reference. A variant is shipped when the target may take it (see `runtime_sources`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

ARG_KINDS = ("in", "const", "out", "update", "scratch")  # as program.Arg.kind


@dataclass(frozen=True)
class Variant:
    """A faster implementation behind a kernel's entry point.

    name: "dsp" (ARMv7E-M SIMD C, also built on the host with -DTC_EMULATE_DSP), "asm"
    (hand-written Thumb-2, GNU toolchains only) or "fast" (register-blocked portable C for the
    cores without the DSP extension, tc_conv.h's TC_FAST_PORTABLE); sources: its runtime_c/ files; when: the
    preprocessor condition under which the entry point may take it (tc_arm_dsp.h)."""

    name: str
    sources: tuple[str, ...]
    when: str = "TC_HAVE_DSP"


DSP = "dsp"
ASM = "asm"
FAST = "fast"


@dataclass(frozen=True)
class PrunableCode:
    """Code in a kernel's files that only some steps can take, compiled out of the projects that
    have none: `macro` (a preprocessor switch of the runtime, 1 by default) is defined 0 in a
    project where `needed(params)` holds for no step of the kernels declaring it (see
    `prunable_macros`). Pruning never changes a result: the kernel then takes its general path,
    bit-exact with the pruned code. E.g. tc_dwconv2d_s8's unrolled 5x5 / 7x7 assembly, 7.5 KB
    that a model of 3x3 depthwise layers never runs."""

    macro: str
    needed: Callable[[Any], bool]


@dataclass(frozen=True)
class KernelDecl:
    name: str  # C entry point, e.g. "tc_conv2d_s8"
    header: str  # the runtime_c header that declares it
    params: Any  # the params dataclass mirroring the C struct (has C_STRUCT), or None
    args: tuple[str, ...]  # kinds of the arguments after the params pointer (ARG_KINDS)
    sources: tuple[str, ...]  # runtime_c .c files of the portable entry point
    variants: tuple[Variant, ...] = ()
    # The one source of the scratch size in bytes (params -> int), checked equal to the C
    # `<name>_scratch_size` function by tests/test_kernels_conv.py; None: no scratch.
    scratch_bytes: Callable[[Any], int] | None = None
    inplace: str = ""  # the kernel computing the same in place (with the output over input 0)
    # The bit-exact numpy mirror: golden(params, *values of the "in"/"const"/"update" arguments in
    # order) -> output array. Passes that re-parameterise a step (the patch stage) rebuild its
    # golden from here.
    golden: Callable[..., Any] | None = None
    # Other kernels this one calls (e.g. a weight decoder that runs tc_conv2d_s8 on the decoded
    # weights): a project that uses this kernel ships theirs too, with their variants.
    calls: tuple[str, ...] = ()
    prunable: tuple[PrunableCode, ...] = ()  # code a project without a step that needs it leaves out

    @property
    def c_struct(self) -> str | None:
        return self.params.C_STRUCT if self.params is not None else None

    @property
    def pointer_args(self) -> int:
        return len(self.args)

    def files(self, variants: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """The .c files of the entry point and of the named variants (None: all of them)."""
        out = list(self.sources)
        for v in self.variants:
            if variants is None or v.name in variants:
                out += [s for s in v.sources if s not in out]
        return tuple(out)


KERNELS: dict[str, KernelDecl] = {}


def declare(name: str, *, header: str, params: Any, golden: Callable[..., Any], args: tuple[str, ...],
            sources: tuple[str, ...], variants: tuple[Variant, ...] = (), scratch_bytes: Callable[[Any], int] | None = None,
            inplace: str = "", calls: tuple[str, ...] = (),
            prunable: tuple[PrunableCode, ...] = ()) -> KernelDecl:
    """Declare a C kernel (once: a second declaration of the same name is an error)."""
    bad = [a for a in args if a not in ARG_KINDS]
    if bad:
        raise ValueError(f"{name}: unknown argument kinds {bad} (expected {ARG_KINDS})")
    if name in KERNELS:
        raise ValueError(f"kernel {name} is declared twice")
    decl = KernelDecl(name, header, params, tuple(args), tuple(sources), tuple(variants), scratch_bytes, inplace,
                      golden, tuple(calls), tuple(prunable))
    KERNELS[name] = decl
    return decl


def all_kernels() -> dict[str, KernelDecl]:
    """Every declared kernel (importing the op modules, where the declarations live)."""
    from . import ops  # noqa: F401  (registers every op module)

    return KERNELS


def lookup(name: str) -> KernelDecl:
    try:
        return all_kernels()[name]
    except KeyError:
        raise KeyError(f"kernel {name!r} is not declared (tinycc/kernels.py: declare it next to its op)") from None


def runtime_sources(kernels, has_dsp: bool | None = None) -> list[str]:
    """The runtime_c .c files a project that calls `kernels` compiles, sorted.

    has_dsp None (host projects: the library may be rebuilt for any core, and the tests build it
    with -DTC_EMULATE_DSP): every variant ships, each compiles to nothing where its condition is
    false. True (a DSP core, e.g. --target cortex-m4): the DSP, assembly and fast portable
    variants (the project's host harness builds too). False (M0, M3): the fast portable variants."""
    names: set[str] = set()
    todo, seen = list(kernels), set()
    while todo:  # the kernels named and those they call
        k = todo.pop()
        if k in seen:
            continue
        seen.add(k)
        decl = lookup(k)
        # a DSP core's project also ships the fast portable variants: its host harness (`make`)
        # and anyone building its runtime for another core take them (on the core they compile
        # to nothing)
        names.update(decl.files(None if has_dsp is None else (DSP, ASM, FAST) if has_dsp else (FAST,)))
        todo.extend(decl.calls)
    return sorted(names)


def prunable_macros(steps) -> dict[str, bool]:
    """The PrunableCode macros of a project's kernels: macro -> whether a step needs the code
    (False: the project defines it 0, compiling the code out).

    steps: (kernel name, params) of every kernel call of a project. A macro stays on when a step
    of any kernel declaring it needs it, and when a kernel declaring it is reached through
    another one's `calls` (the params are then the caller's making, not the project's to see)."""
    steps = list(steps)
    called: set[str] = set()
    todo = [k for name, _ in steps for k in lookup(name).calls]
    while todo:
        k = todo.pop()
        if k not in called:
            called.add(k)
            todo.extend(lookup(k).calls)
    needed: dict[str, bool] = {}
    for name, params in [*steps, *((k, None) for k in sorted(called))]:
        for part in lookup(name).prunable:
            needed[part.macro] = needed.get(part.macro, False) or params is None or bool(part.needed(params))
    return dict(sorted(needed.items()))

