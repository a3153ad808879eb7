"""Choosing a patch stage: split point and grid (`--patch fit` and `auto`), or applying a forced one.

`fit` (the default) patches only when the layer-by-layer plan exceeds --sram: a model that fits
compiles exactly as with `off` (same program, same plan, no patch report), one that would not fit
gets the plan below for a binding budget. `auto` also patches a model that fits, for a lower peak.

Every (split, rows x cols) is scored from the receptive-field regions alone, which is cheap:
the extra MACs of recomputed halos, and an estimate of the peak (bytes live at once when every
buffer is separate: the whole stage input and stage output, plus the live tensors of the largest
patch; after the stage, the layer-by-layer live bytes). The most promising candidates are then
built and planned for real, and the decision always compares real arenas:

* a binding budget (layer-by-layer arena > --sram): the fewest estimated extra Cortex-M4
  instructions among the plans that fit; if none fits, the smallest arena found (the budget check
  then reports it);
* otherwise: the smallest arena among candidates within --patch-overhead extra MACs; arenas within
  ARENA_TIE of it count as equal, and then the fewest estimated instructions win (the best grid is
  also built with the other halo strategy, recompute or reuse, which often ties on memory).

Every grid is a candidate with halos recomputed and, with more than one row of patches, with halo
rows reused (schedule/patches.py). The instruction estimate is a cost model of the Cortex-M4
(instructions per MAC by layer kind, a cost per extra kernel call and per copy and copied byte)
calibrated on QEMU counts; bench_patches.py prints it next to the measured overhead.

A second stage (schedule/patches.py) is searched after the first when the first does not fill
the arena (_second_stage: second stages from the first's end, scored the same way), and both
stages are also chosen together (_joint_stages: first stages whose estimate is set by the layers
after them, each with its best-scored second stage); a two-stage plan replaces a one-stage plan
only when its arena is smaller, within the same --patch-overhead (MACs of both stages).

Patching is used only when its arena is smaller than the layer-by-layer one.

`--stream-input` needs a patch stage (the input is read window by window through the caller's
callback, schedule/patches.py): `fit` then searches like `auto`, the chosen plan is kept even if
the layer-by-layer arena with the whole input were smaller, `off` is refused (exit 2), and the
estimates leave the whole input out and count each patch's input window instead.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..errors import BadInput
from ..memory.lifetimes import MemoryPlan, plan_memory, reorder_steps
from ..program import Program
from .patches import (PatchConfig, StageLimit, apply_patches, grid_tiles, needed_regions, patch_stages,
                      stage_limit, stream_input_problem)
from .receptive_field import Region, classify, image_hwc

DEFAULT_OVERHEAD = 0.10

# ---- Cortex-M4 instruction cost of a plan (a model, calibrated on QEMU counts of MLPerf Tiny VWW,
# layer by layer and six patch plans: benchmarks/bench_patches.py prints the model next to the
# measured counts). Instructions per MAC depend on the layer: convolutions with few input channels
# and depthwise layers (the layers a patch stage holds) cost more per MAC than deep pointwise ones.
# Every extra kernel call on a smaller patch pays loop set-up and partial SIMD tails; every copy of
# the patch stage (crop, tile, halo, input window) a fixed cost plus a cost per byte.
def instructions_per_mac(step) -> float:
    p = step.params
    if step.kernel == "tc_dwconv2d_s8":
        return 3.8
    if step.kernel == "tc_conv2d_s8":
        return 3.3 if p.in_c <= 8 else 2.2 if p.in_c <= 16 else 1.65 if p.in_c <= 32 else 1.3
    return 2.0


INSTR_PER_EXTRA_CALL = 1500
COPY_OPS = ("Crop", "PatchOutput", "StreamRows", "HaloSave", "HaloRestore")
INSTR_PER_COPY, INSTR_PER_COPIED_BYTE = 300, 0.25


def instruction_estimate(program: Program, elided: set[int] = frozenset()) -> int:
    """Estimated Cortex-M4 instructions of one inference of a (patched) program."""
    total = 0.0
    for k, step in enumerate(program.steps):
        if k in elided:
            continue
        if step.op in COPY_OPS:
            total += INSTR_PER_COPY + INSTR_PER_COPIED_BYTE * program.tensors[step.outputs[0]].size
        else:
            total += instructions_per_mac(step) * step.macs
    return int(total)


def instruction_overhead(patched: Program, mem: MemoryPlan, layer_by_layer: Program) -> float:
    """Estimated extra instructions of a patch plan / the layer-by-layer estimate."""
    base = instruction_estimate(layer_by_layer)
    calls = len(patched.steps) - len(mem.elided_steps) - len(layer_by_layer.steps)
    extra = instruction_estimate(patched, mem.elided_steps) - base + INSTR_PER_EXTRA_CALL * max(calls, 0)
    return extra / max(base, 1)
MAX_GRID = 8  # rows and columns tried by the search
BUILT_CANDIDATES = 4  # candidates planned for real per decision
ARENA_TIE = 0.01  # arenas this close count as equal: then the fewer estimated instructions win


@dataclass(frozen=True)
class PatchOptions:
    mode: str = "fit"  # fit | auto | off | forced (see the module docstring)
    config: PatchConfig | None = None
    sram: int | None = None
    overhead: float = DEFAULT_OVERHEAD
    stream: bool = False  # --stream-input

    @classmethod
    def from_args(cls, args, sram: int | None = None) -> "PatchOptions":
        mode, config = parse_patch(getattr(args, "patch", None) or "fit")
        overhead = parse_overhead(getattr(args, "patch_overhead", None))
        stream = bool(getattr(args, "stream_input", False))
        if stream and mode == "off":
            raise BadInput("--stream-input reads the input patch by patch, so it needs a patch stage: "
                           "use --patch fit, auto or SxRxC, not off")
        return cls(mode, config, sram, overhead, stream)


def parse_patch(text: str) -> tuple[str, PatchConfig | None]:
    text = str(text).strip().lower()
    if text in ("fit", "auto", "off"):
        return text, None
    stages = [_parse_stage(part) for part in text.split("+")]
    if len(stages) <= 2 and all(stages):
        return "forced", stages[0] if len(stages) == 1 else dataclasses.replace(stages[0], then=stages[1])
    raise BadInput(f"--patch {text!r}: use fit, auto, off, or SPLITxROWSxCOLS[:reuse] (the first SPLIT steps run on "
                   f"a ROWS x COLS grid of patches, e.g. 12x4x4; :reuse keeps the overlapping rows between "
                   f"patches instead of recomputing them), optionally +SPLITxROWSxCOLS[:reuse] for a second "
                   f"stage that runs the steps up to its SPLIT on its own grid (e.g. 13x7x7:reuse+24x7x2:reuse)")


def _parse_stage(text: str) -> PatchConfig | None:
    grid, _, halo = text.partition(":")
    parts = grid.split("x")
    if len(parts) == 3 and all(p.isdigit() for p in parts) and halo in ("", "recompute", "reuse"):
        split, rows, cols = (int(p) for p in parts)
        if split >= 1 and rows >= 1 and cols >= 1:
            return PatchConfig(split, rows, cols, halo or "recompute")
    return None


def parse_overhead(text) -> float:
    if text is None:
        return DEFAULT_OVERHEAD
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100 or value != value:
        raise BadInput(f"--patch-overhead {raw!r}: a share of extra MACs such as 10% or 0.1")
    return value


@dataclass
class Candidate:
    config: PatchConfig
    overhead: float  # extra MACs / MACs of the whole model
    estimate: int  # bytes, see the module docstring
    instr: float = 0.0  # estimated extra Cortex-M4 instructions / the layer-by-layer estimate
    stage_peak: int = 0  # the patch stage's part of the estimate (breaks ties of `estimate` when
    # the layers after the stage dominate it)


@dataclass
class PatchDecision:
    """What the search did, for the report."""

    mode: str
    chosen: PatchConfig | None
    reason: str
    layer_by_layer_arena: int
    stop_reason: str
    tried: list[dict] = field(default_factory=list)  # candidates planned for real
    instr_overhead: float | None = None  # estimated extra M4 instructions of the chosen plan (fraction)
    second_reason: str = ""  # why a second stage (schedule/search._second_stage)


def live_estimates(program: Program) -> list[int]:
    """Bytes live at each step when no buffer shares memory (the estimator of the search)."""
    from ..memory.lifetimes import program_buffers

    buffers = program_buffers(program)
    return [sum(b.size for b in buffers if b.first <= k <= b.last) for k in range(1, len(program.steps) + 1)]


def _stage_estimate(program: Program, limit: StageLimit, config: PatchConfig, steps, ops,
                    stream: bool = False, cache: dict | None = None) -> tuple[int, int, float]:
    """(peak estimate of the patch stage, MACs of all patches, estimated extra instructions) from
    the regions alone.

    Rows and columns are independent (windows act per axis, regions are bounding boxes), so the
    regions of a tile are those of its row band combined with those of its column band. With halo
    reuse (config.halo): the same patch buffers, plus the halo buffers of every map between two
    row bands (all live at once, a bound), and each row computed once per column band. The extra
    instructions follow instruction_overhead's model (crops are not counted)."""
    out = limit.splits[config.split]
    h, w, _ = image_hwc(program, out)
    full = program.tensors[out].size + (0 if stream else program.tensors[limit.stage_input].size)
    tiles = grid_tiles(h, w, config.rows, config.cols)
    bands_r = sorted({(t.r0, t.r1) for t in tiles})
    bands_c = sorted({(t.c0, t.c1) for t in tiles})
    cache = {} if cache is None else cache  # the regions of one band, shared by every grid with it

    def need(tile: Region) -> dict[str, Region]:
        key = (config.split, len(steps), tile)
        if key not in cache:
            cache[key] = needed_regions(program, steps, ops, out, tile)
        return cache[key]

    row_need = [need(Region(r0, r1, 0, w)) for r0, r1 in bands_r]
    col_need = [need(Region(0, h, c0, c1)) for c0, c1 in bands_c]
    born: dict[str, int] = {}
    dies: dict[str, int] = {out: len(steps)}
    for j, step in enumerate(steps):
        born.setdefault(step.outputs[0], j)
        for t in step.inputs:
            dies[t] = max(dies.get(t, j), j)
    tensors = [t for t in born if t in row_need[0]]
    if stream:  # each patch's window of the input, live from the start of the patch to its last reader
        born[limit.stage_input] = 0
        tensors.append(limit.stage_input)
    reuse = config.halo == "reuse"
    macs = 0
    instr = 0.0
    calls = 0
    for j, step in enumerate(steps):
        t = step.outputs[0]
        if t in row_need[0]:
            calls += 1
            th, tw, _ = image_hwc(program, t)
            if reuse:  # each band computes the rows below those of the band above
                rows = sum(n[t].r1 - (max(n[t].r0, row_need[i - 1][t].r1) if i else n[t].r0)
                           for i, n in enumerate(row_need))
            else:
                rows = sum(n[t].height for n in row_need)
            cols = sum(n[t].width for n in col_need)
            step_macs = step.macs * rows * cols // (th * tw)
            macs += step_macs
            instr += instructions_per_mac(step) * (step_macs - step.macs)
    scratch = [s.scratch_bytes for s in steps]
    halo_bytes = 0
    patches = len(tiles)
    copies = patches  # the tiles into the stage output
    copied = program.tensors[out].size
    if stream:
        c_in = program.tensors[limit.stage_input].shape[3]
        copies += patches
        copied += sum(rn[limit.stage_input].height * cn[limit.stage_input].width * c_in
                      for rn in row_need for cn in col_need)
    if reuse:
        widest = {t: max(cn[t].width for cn in col_need) * program.tensors[t].shape[3] for t in tensors}
        for above, below in zip(row_need, row_need[1:]):
            kept = [t for t in tensors if t not in (out, limit.stage_input) and above[t].r1 > below[t].r0]
            halo_bytes = max(halo_bytes, sum((above[t].r1 - below[t].r0) * widest[t] for t in kept))
            copies += 2 * len(kept) * len(col_need)  # cropped out below the last reader, copied in above
            copied += 2 * sum((above[t].r1 - below[t].r0) * cn[t].width * program.tensors[t].shape[3]
                              for t in kept for cn in col_need)
    instr += INSTR_PER_EXTRA_CALL * ((patches - 1) * calls + copies) + INSTR_PER_COPY * copies \
        + INSTR_PER_COPIED_BYTE * copied
    # bytes live at each step of each patch: (row band x column band x tensor) sizes times
    # (tensor x step) lifetimes
    heights = np.array([[rn[t].height for t in tensors] for rn in row_need], dtype=np.int64).reshape(-1, len(tensors))
    widths = np.array([[cn[t].width * program.tensors[t].shape[3] for t in tensors] for cn in col_need],
                      dtype=np.int64).reshape(-1, len(tensors))
    key = ("alive", config.split, len(steps), tuple(tensors))
    if key not in cache:
        cache[key] = np.array([[born[t] <= j <= dies.get(t, len(steps)) for j in range(len(steps))]
                               for t in tensors], dtype=np.int64).reshape(len(tensors), len(steps))
    alive = cache[key]
    live = (heights[:, None, :] * widths[None, :, :]) @ alive  # (rows, cols, steps)
    peak = int((live + np.array(scratch, dtype=np.int64)).max(initial=-full - halo_bytes)) + full + halo_bytes \
        if steps else 0
    return max(peak, 0), macs, instr


def candidates(program: Program, limit: StageLimit, base_live: list[int], stream: bool = False,
               start: int = 0) -> list[Candidate]:
    """Every (split, grid, halo strategy) of a stage that starts at step `start`, scored."""
    total_macs = max(program.macs, 1)
    base_instr = max(instruction_estimate(program), 1)
    out = []
    cache: dict = {}
    for split, tensor in sorted(limit.splits.items()):
        steps = program.steps[start:split]
        ops = [classify(program, s) for s in steps]
        h, w, _ = image_hwc(program, tensor)
        after = max(base_live[split:], default=0)
        stage_macs_once = sum(s.macs for s in steps)
        reusable = not any(s.kernel == "tc_concat_s8_part" for s in steps)  # see patches._emit
        for rows in range(1, min(h, MAX_GRID) + 1):
            for cols in range(1, min(w, MAX_GRID) + 1):
                if rows * cols < 2:
                    continue
                for halo in (("recompute", "reuse") if rows > 1 and reusable else ("recompute",)):
                    config = PatchConfig(split, rows, cols, halo)
                    peak, macs, instr = _stage_estimate(program, limit, config, steps, ops, stream, cache)
                    out.append(Candidate(config, (macs - stage_macs_once) / total_macs, max(peak, after),
                                         instr / base_instr, peak))
    return out


SCREEN_BUDGET_S = 0.2  # planner time budget (deterministic work units) for candidates not yet chosen


def _plan(program: Program, config: PatchConfig, limit: StageLimit,
          budget_s: float = 1.0, stream: bool = False) -> tuple[Program, MemoryPlan]:
    patched = apply_patches(program, config, limit, stream)
    return patched, plan_memory(patched, time_budget_s=budget_s, reorder=False)


def plan_program(program: Program, opts: PatchOptions) -> tuple[Program, MemoryPlan, PatchDecision | None]:
    """The program to emit and its memory plan. With patching off, or with fit and a plan that
    fits --sram, this is exactly plan_memory (and no decision)."""
    if opts.mode in ("off", "fit") and not opts.stream:
        mem = plan_memory(program)
        if opts.mode == "off" or opts.sram is None or mem.arena_bytes <= opts.sram:
            from ..ops.conv import widen_codebook_tiles  # codebook convs off the peak: decoded whole

            program, mem = widen_codebook_tiles(program, mem, plan_memory)
            return program, mem, None
    ordered = copy.copy(program)
    ordered.steps = list(program.steps)
    reorder_steps(ordered, 0.5)
    base_mem = plan_memory(ordered, reorder=False)
    limit = stage_limit(ordered)
    decision = PatchDecision(opts.mode, None, "", base_mem.arena_bytes, limit.stop_reason)
    if opts.stream:
        problem = stream_input_problem(ordered, limit, opts.config.split if opts.config else None)
        if problem:
            raise BadInput(problem)
    if opts.mode == "forced":
        try:
            patched, mem = _plan(ordered, opts.config, limit, stream=opts.stream)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        decision.chosen = opts.config
        decision.reason = "forced with --patch"
        decision.second_reason = "forced with --patch" if opts.config.then is not None else ""
        decision.tried.append(_tried(patched, mem, ordered))
        decision.instr_overhead = instruction_overhead(patched, mem, ordered)
        return patched, mem, decision
    if not limit.splits:
        decision.reason = f"no patch stage is possible: {limit.stop_reason}"
        return ordered, base_mem, decision
    base_live = live_estimates(ordered)
    cands = candidates(ordered, limit, base_live, opts.stream)
    if opts.stream:  # only splits after which nothing reads the input can stream it
        cands = [c for c in cands if not stream_input_problem(ordered, limit, c.config.split)]
    binding = opts.sram is not None and base_mem.arena_bytes > opts.sram
    if binding:  # the cheapest in estimated instructions (extra MACs weighted per layer, calls, copies)
        pool = sorted((c for c in cands if c.estimate <= opts.sram), key=lambda c: (c.instr, c.estimate))
        pool += sorted(cands, key=lambda c: (c.estimate, c.instr))
    else:
        pool = sorted((c for c in cands if c.overhead <= opts.overhead),
                      key=lambda c: (c.estimate, c.stage_peak, c.instr))
        if opts.stream and not pool:  # streaming needs some plan: the cheapest in instructions
            pool = sorted(cands, key=lambda c: (c.instr, c.estimate))
    built = []
    seen = set()
    for cand in pool:
        if len(seen) >= BUILT_CANDIDATES:
            break
        if cand.config in seen:
            continue
        seen.add(cand.config)
        patched, mem = _plan(ordered, cand.config, limit, SCREEN_BUDGET_S, opts.stream)
        decision.tried.append(_tried(patched, mem, ordered))
        built.append((patched, mem, instruction_overhead(patched, mem, ordered)))
        if binding and mem.arena_bytes <= opts.sram:
            built = built[-1:]
            break
    best = None
    if built and not (binding and built[0][1].arena_bytes <= opts.sram):
        # the other halo strategy on the best grid: often a near-equal arena for fewer instructions
        lead = min(built, key=lambda b: b[1].arena_bytes)[0].patch.config
        twin = dataclasses.replace(lead, halo="recompute" if lead.halo == "reuse" else "reuse")
        allowed = {c.config for c in cands if binding or c.overhead <= opts.overhead}  # within --patch-overhead
        if twin not in seen and lead.rows > 1 and twin in allowed:
            patched, mem = _plan(ordered, twin, limit, SCREEN_BUDGET_S, opts.stream)
            decision.tried.append(_tried(patched, mem, ordered))
            built.append((patched, mem, instruction_overhead(patched, mem, ordered)))
    if built:
        # the smallest arena; of arenas within ARENA_TIE of it, the fewest estimated instructions
        smallest = min(m.arena_bytes for _, m, _ in built)
        best = min((b for b in built if b[1].arena_bytes <= smallest * (1 + ARENA_TIE)), key=lambda b: b[2])
    if best is not None:
        best = _plan(ordered, best[0].patch.config, limit, stream=opts.stream)  # the full planner budget
    if best is not None and not (binding and best[1].arena_bytes <= opts.sram):
        best = _second_stage(ordered, best, base_live, opts, binding, decision) or best
        best = _joint_stages(ordered, cands, best, base_live, opts, binding, decision) or best
    if best is not None and (opts.stream or best[1].arena_bytes < base_mem.arena_bytes):
        patched, mem = best
        decision.chosen = patched.patch.config
        decision.instr_overhead = instruction_overhead(patched, mem, ordered)
        pp = patched.patch
        if binding and mem.arena_bytes <= opts.sram:
            decision.reason = (f"the layer-by-layer arena ({base_mem.arena_bytes:,} B) exceeds --sram "
                               f"({opts.sram:,} B); the fewest estimated extra instructions among the plans "
                               f"tried that fit")
        elif binding:
            decision.reason = "no plan tried fits --sram; the smallest arena found"
        else:
            extra = extra_macs(pp) / max(program.macs, 1)
            decision.reason = (("the input is streamed (--stream-input); " if opts.stream else "") +
                               f"the smallest arena (within {100 * ARENA_TIE:.0f}%: the fewest estimated Cortex-M4 "
                               f"instructions) among the candidates with at most {100 * opts.overhead:.0f}% "
                               f"extra MACs ({base_mem.arena_bytes:,} B -> {mem.arena_bytes:,} B, "
                               f"{100 * extra:.1f}% more MACs, about {100 * decision.instr_overhead:.0f}% more "
                               f"instructions)")
        return patched, mem, decision
    if opts.stream:
        raise BadInput("--stream-input needs a patch stage, and no patch plan whose stage alone reads the input "
                       "was found: " + limit.stop_reason)
    decision.reason = ("no candidate within the MAC overhead limit" if not decision.tried else
                       f"no patch plan lowers the arena below the layer-by-layer {base_mem.arena_bytes:,} B")
    return ordered, base_mem, decision


SECOND_STAGE_CANDIDATES = 2  # second stages planned for real: the best scored,
SECOND_STAGE_CHEAP = 2  # then the fewest estimated instructions among those whose stage fits


def _second_stage(ordered: Program, best: tuple[Program, MemoryPlan], base_live: list[int], opts: PatchOptions,
                  binding: bool, decision: PatchDecision) -> tuple[Program, MemoryPlan] | None:
    """A second patch stage after the chosen first one, when the peak comes after the first stage
    (e.g. MobileNetV2's 28x28 blocks once the input is streamed): the steps from the first
    stage's end to a later split run on their own grid, over the first stage's output buffer.
    Scored like the first stage, within what --patch-overhead leaves (no limit when a budget
    binds); the smallest arena of those built (ties: the fewest estimated instructions), kept
    only if it is smaller than the one-stage arena. None when no second stage helps."""
    patched, mem = best
    first = patched.patch
    stage_end = max(first.patch_steps[-1])
    # the buffers that reach the top of the arena (times count from 1: time = step + 1)
    top = [b for b in mem.buffers if mem.plan.offsets[b.name] + b.size >= mem.arena_bytes]
    after = [b for b in top if b.last > stage_end + 1]
    if not after:
        return None  # the arena is set within the first stage: a second one cannot lower it
    peak_step = max(stage_end + 1, min(b.first for b in after) - 1)
    limit = stage_limit(ordered, first.config.split)
    if not limit.splits or limit.stage_input is None:
        return None
    used = (first.macs_patched - first.macs_layer_by_layer) / max(ordered.macs, 1)
    cands = candidates(ordered, limit, base_live, start=first.config.split)
    if not binding:
        cands = [c for c in cands if used + c.overhead <= opts.overhead]
    pool = sorted(cands, key=lambda c: (c.estimate, c.stage_peak, c.instr))
    built = []

    def build(cand: Candidate) -> None:
        config = dataclasses.replace(first.config, then=cand.config)
        two, two_mem = _plan(ordered, config, None, SCREEN_BUDGET_S, opts.stream)
        decision.tried.append(_tried(two, two_mem, ordered))
        built.append((two_mem.arena_bytes, instruction_overhead(two, two_mem, ordered), config))

    for cand in pool[:SECOND_STAGE_CANDIDATES]:
        build(cand)
    if not built:
        return None
    # The estimates of the layers after the stage count every buffer apart, so they often tie
    # and the lowest stage peak wins; a stage as well scored whose own estimate already fits the
    # arena just found may do as well for fewer instructions: plan the cheapest of those too.
    smallest = min(arena for arena, _, _ in built)
    done = {b[2].then for b in built}
    cheap = sorted((c for c in pool if c.estimate <= pool[0].estimate and c.stage_peak <= smallest
                    and c.config not in done), key=lambda c: c.instr)
    for cand in cheap[:SECOND_STAGE_CHEAP]:
        build(cand)
    smallest = min(arena for arena, _, _ in built)
    config = min((b for b in built if b[0] <= smallest * (1 + ARENA_TIE)), key=lambda b: b[1])[2]
    two = _plan(ordered, config, None, stream=opts.stream)  # the full planner budget
    if two[1].arena_bytes >= mem.arena_bytes:
        return None
    second = two[0].patch.next_stage
    at = patched.steps[peak_step]
    decision.second_reason = (
        f"with one stage the peak ({mem.live_bytes[peak_step]:,} B live) comes after it, at step "
        f"{peak_step - (len(patched.steps) - len(ordered.steps))} ({at.onnx_name or at.op}); of {len(cands)} "
        f"second stages within the MAC limit, {len(built)} planned, this one the smallest arena (within "
        f"{100 * ARENA_TIE:.0f}%: the fewest estimated instructions): {mem.arena_bytes:,} B -> "
        f"{two[1].arena_bytes:,} B, +{100 * extra_macs(second) / max(ordered.macs, 1):.2f} % MACs")
    return two


JOINT_SPLITS = 2  # first-stage ends whose second stages are scored (each costs one candidates() call)
JOINT_CANDIDATES = 2  # (first, second) pairs planned for real


def _joint_stages(ordered: Program, cands: list[Candidate], best: tuple[Program, MemoryPlan], base_live: list[int],
                  opts: PatchOptions, binding: bool, decision: PatchDecision) -> tuple[Program, MemoryPlan] | None:
    """Both stages chosen together. The first stage alone is chosen for the lowest peak over the
    whole network, which can favour a deep stage whose own peak is high; with a second stage
    taking over the layers after it, a shallower first stage with a lower own peak can win (the
    input streamed or not). First stages whose estimate is set by the layers after them are
    paired with the best-scored second stage from their end within the MAC limit, scored by the
    larger of the two stage estimates; the best pairs are planned, and one replaces `best` when
    its arena is smaller (within ARENA_TIE: fewer estimated instructions). None otherwise."""
    allowed = [c for c in cands if binding or c.overhead <= opts.overhead]
    # a pair's arena is at least its first stage's own peak: only first stages estimated below
    # the arena already found can win
    promising = sorted((c for c in allowed if c.stage_peak < c.estimate and c.stage_peak < best[1].arena_bytes),
                       key=lambda c: (c.stage_peak, c.instr))
    splits = list(dict.fromkeys(c.config.split for c in promising))[:JOINT_SPLITS]
    seconds = {}
    for split in splits:
        limit = stage_limit(ordered, split)
        if limit.splits and limit.stage_input is not None:
            seconds[split] = sorted(candidates(ordered, limit, base_live, start=split),
                                    key=lambda c: (c.estimate, c.stage_peak, c.instr))
    pairs = []
    for first in promising:
        for second in seconds.get(first.config.split, []):
            if binding or first.overhead + second.overhead <= opts.overhead:
                pairs.append(((max(first.stage_peak, second.estimate), first.instr + second.instr),
                              dataclasses.replace(first.config, then=second.config)))
                break
    tried = {t["patch"] for t in decision.tried}
    built = [(best[1].arena_bytes, instruction_overhead(best[0], best[1], ordered), best[0].patch.config)]
    for _, config in sorted(pairs, key=lambda p: p[0])[:JOINT_CANDIDATES]:
        if config.text() in tried:
            continue
        two, two_mem = _plan(ordered, config, None, SCREEN_BUDGET_S, opts.stream)
        decision.tried.append(_tried(two, two_mem, ordered))
        built.append((two_mem.arena_bytes, instruction_overhead(two, two_mem, ordered), config))
    smallest = min(arena for arena, _, _ in built)
    config = min((b for b in built if b[0] <= smallest * (1 + ARENA_TIE)), key=lambda b: b[1])[2]
    if config == best[0].patch.config:
        return None
    two = _plan(ordered, config, None, stream=opts.stream)  # the full planner budget
    if two[1].arena_bytes >= best[1].arena_bytes and not (
            two[1].arena_bytes <= best[1].arena_bytes * (1 + ARENA_TIE)
            and instruction_overhead(*two, ordered) < built[0][1]):
        return None
    decision.second_reason = (
        f"both stages chosen together: the plan chosen stage by stage ({best[0].patch.config.text()}, "
        f"{best[1].arena_bytes:,} B) is beaten by a first stage with a lower own peak and a second "
        f"stage over its output ({two[1].arena_bytes:,} B, +{100 * extra_macs(two[0].patch) / max(ordered.macs, 1):.2f} "
        f"% MACs in all); {len(pairs)} pairs within the MAC limit scored, {len(built) - 1} planned")
    return two


def extra_macs(plan) -> int:
    """Extra MACs of a patch plan (a PatchPlan: over all its stages)."""
    return sum(s.macs_patched - s.macs_layer_by_layer for s in patch_stages(plan))


def _tried(patched: Program, mem: MemoryPlan, layer_by_layer: Program) -> dict:
    pp = patched.patch
    model_macs = max(patched.macs - extra_macs(pp), 1)
    return {"patch": pp.config.text(), "arena_bytes": int(mem.arena_bytes),
            "mac_overhead_percent": round(100 * extra_macs(pp) / model_macs, 2),
            "instruction_overhead_estimate_percent": round(100 * instruction_overhead(patched, mem, layer_by_layer), 2)}
