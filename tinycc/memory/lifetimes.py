"""Buffers and lifetimes of a Program, in-place decisions, execution order, and the arena plan.

Time: graph inputs are written at time 0, step k runs at time k + 1, outputs stay live until
time len(steps) + 1 (read by the caller). Views (reshape) share their source's buffer; an
in-place step's output shares the buffer of the input it overwrites (see choose_inplace). A
row-streaming step's output may partially overlap the input it consumes (see choose_overlaps):
the planner decides per pair whether and how far, so overlaps never chain into rigid groups.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from ..program import Program
from ..schedule.order import search_order
from .planner import (Buffer, Plan, _union_length, merge_groups, partial_overlaps, plan_arena,
                      plan_arena_with_overlaps)

ALIGN = 16
LIVE_BYTES = "max live bytes"
LIVE_BYTES_LESS_OVERLAPS = "max live bytes less partial overlaps"


@dataclass
class MemoryPlan:
    plan: Plan
    buffers: list[Buffer]
    offsets: dict[str, int]  # every tensor (views included) and scratch buffer -> arena offset
    live_bytes: list[int]  # bytes live at each step (index = step)
    live_tensors: list[list[str]]
    inplace_steps: set[int] = field(default_factory=set)
    no_reuse_bytes: int = 0  # every buffer separate: what a planner without reuse would need
    # (buffer, buffer it sits on, offset) in use: pinned in-place outputs, elided concat parts, and
    # partial overlaps (output, input, output offset - input offset) that share bytes in this plan
    overlaps: list = field(default_factory=list)
    elided_steps: set[int] = field(default_factory=set)  # copies made unnecessary (concat in place)
    # No placement the planner may choose is smaller (the order and in-place decisions given):
    # with partial overlaps allowed, the live bytes less what overlapping pairs can share, whichever
    # plan won; lower_bound_kind names the bound.
    lower_bound: int = 0
    lower_bound_kind: str = LIVE_BYTES

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes


def occupied_bytes(mem: MemoryPlan) -> list[int]:
    """Arena bytes in use at each step (index = step, as live_bytes): the union of the live
    buffers' byte ranges, so buffers placed over one another (elided concat parts, partial row
    overlaps) count once where live_bytes adds up their sizes. Never above the arena."""
    n = len(mem.live_bytes)
    ranges: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for b in mem.buffers:
        at = mem.offsets[b.name]
        for k in range(max(b.first, 1), min(b.last, n) + 1):
            ranges[k - 1].append((at, at + b.size))
    return [_union_length(r) for r in ranges]


def scratch_name(step_index: int) -> str:
    return f"__scratch_{step_index}"


# ---- execution order ------------------------------------------------------------------------------
def step_dag(program: Program) -> tuple[nx.DiGraph, dict, dict]:
    """DAG of steps (plus one pseudo-node per graph input) for the order search."""
    g = nx.DiGraph()
    out_bytes, scratch = {}, {}
    writers: dict[str, list[int]] = {}
    for name in program.inputs:
        if name == program.streamed_input:
            continue  # not in the arena: the steps that read it get windows through the callback
        node = ("input", name)
        g.add_node(node, index=-1)
        out_bytes[node] = program.tensors[name].size
        writers[program.root(name)] = [node]
    for k, step in enumerate(program.steps):
        g.add_node(k, index=k)
        scratch[k] = step.scratch_bytes
        first_write = [t for t in step.outputs if program.root(t) not in writers]
        out_bytes[k] = sum(program.tensors[t].size for t in first_write)
        for t in step.outputs:
            prev = writers.setdefault(program.root(t), [])
            for p in prev:  # concat parts complete the tensor in order
                g.add_edge(p, k)
            prev.append(k)
    for k, step in enumerate(program.steps):
        for t in step.inputs:
            for w in writers.get(program.root(t), []):
                if w != k:
                    g.add_edge(w, k)
    outputs = {program.root(t) for t in program.outputs}
    for root, ws in writers.items():
        if root in outputs:
            g.nodes[ws[0]]["is_output"] = True
    return g, out_bytes, scratch


def reorder_steps(program: Program, time_budget_s: float = 0.5) -> None:
    """Put the steps in the topological order with the lowest peak of live bytes."""
    g, out_bytes, scratch = step_dag(program)
    order = search_order(g, out_bytes, scratch, time_budget_s).order
    steps = [program.steps[k] for k in order if isinstance(k, int)]
    program.steps = steps


# ---- in-place -------------------------------------------------------------------------------------
def _last_reads(program: Program) -> dict[str, int]:
    """Last step index reading each view-root; graph outputs are read after the last step."""
    last: dict[str, int] = {}
    for k, step in enumerate(program.steps):
        for t in step.inputs + step.outputs:
            if t in program.tensors:
                r = program.root(t)
                last[r] = max(last.get(r, k), k)
    end = len(program.steps)
    for t in program.outputs:
        last[program.root(t)] = end
    return last


def choose_inplace(program: Program) -> tuple[dict[str, str], set[int], list[tuple[str, str, int]]]:
    """Let a step's output take over an input buffer that this step reads for the last time.

    Returns (merged: output view-root -> buffer root, steps that run in place, pinned). An
    output as large as the buffer joins it (merged); a smaller one (strided depthwise) stays
    its own buffer pinned at offset 0 of the input's, so the rest is free again afterwards."""
    last = _last_reads(program)
    outputs = {program.root(t) for t in program.outputs}
    group_of: dict[str, str] = {}
    group_last: dict[str, int] = dict(last)
    group_size: dict[str, int] = {r: program.tensors[r].size for r in last}
    inplace_steps: set[int] = set()
    pinned: list[tuple[str, str, int]] = []
    written_before: set[str] = set()
    for k, step in enumerate(program.steps):
        outs = [program.root(t) for t in step.outputs]
        if step.inplace_inputs and len(outs) == 1 and outs[0] not in written_before:
            out = outs[0]
            for i in step.inplace_inputs:
                src = step.inputs[i]
                g = group_of.get(program.root(src), program.root(src))
                if group_last[g] != k or g in outputs or group_size[g] < program.tensors[out].size:
                    continue
                if program.tensors[out].size < group_size[g]:
                    pinned.append((out, g, 0))
                else:
                    group_of[out] = g
                    group_last[g] = last[out]
                    if out in outputs:
                        outputs.add(g)
                inplace_steps.add(k)
                break
        written_before.update(outs)
    return group_of, inplace_steps, pinned


# ---- buffers and plan ------------------------------------------------------------------------------
def program_buffers(program: Program, merged: dict[str, str] | None = None,
                    inplace_steps: set[int] = frozenset()) -> list[Buffer]:
    merged = merged or {}

    def buf(t: str) -> str:
        r = program.root(t)
        return merged.get(r, r)

    end = len(program.steps) + 1
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    size: dict[str, int] = {}
    buffers = []

    def touch(b: str, k: int, t: str) -> None:
        first.setdefault(b, k)
        last[b] = max(last.get(b, k), k)
        size[b] = max(size.get(b, 0), program.tensors[program.root(t)].size)

    for name in program.inputs:
        if name != program.streamed_input:  # a streamed input never sits in the arena
            touch(buf(name), 0, name)
    for k, step in enumerate(program.steps, start=1):
        for t in step.inputs + step.outputs:
            if t in program.tensors:
                touch(buf(t), k, t)
        _, args = step.call((k - 1) in inplace_steps)
        nbytes = sum(a.nbytes for a in args if a.kind == "scratch")
        if nbytes:
            buffers.append(Buffer(scratch_name(k - 1), nbytes, k, k, ALIGN))
    for name in program.outputs:
        last[buf(name)] = end
    for b in sorted(first, key=lambda r: (first[r], r)):
        buffers.append(Buffer(b, size[b], first[b], last[b], ALIGN))
    return buffers


def choose_elisions(program: Program, merged: dict[str, str], taken: set[str]) -> tuple[list, set[int]]:
    """Concat without copies: a part whose input is read by nothing else is produced straight
    into its slice of the output, pinned there; the copy step disappears from the C."""
    def buf(t):
        r = program.root(t)
        return merged.get(r, r)

    readers: dict[str, int] = {}
    for step in program.steps:
        for t in set(step.inputs):
            if t in program.tensors:
                readers[buf(t)] = readers.get(buf(t), 0) + 1
    groups = set(merged.values())  # in-place groups hold tensors of other steps: leave them alone
    boundary = {buf(t) for t in program.inputs + program.outputs}
    fixed, elided = [], set()
    for k, step in enumerate(program.steps):
        if step.copy_into is None:
            continue
        src = buf(step.inputs[0])
        dst = buf(step.copy_into[0])
        if src in boundary or src in taken or readers.get(src) != 1 or src in groups or src == dst:
            continue
        if step.copy_into[1] % ALIGN:  # every buffer starts 16-byte aligned (word loads in kernels)
            continue
        fixed.append((src, dst, step.copy_into[1]))
        taken.add(src)
        elided.add(k)
    return fixed, elided


def choose_overlaps(program: Program, merged: dict[str, str], inplace_steps: set[int],
                    buffers: list[Buffer]) -> list[tuple[str, str, int]]:
    """Partial overlaps (output buffer, input buffer, max_delta) for row-streaming kernels whose input
    dies at the step that first writes the output: the output may slide over the input rows already
    consumed, starting at most max_delta (< 0) bytes from the input; any lower start is safe too."""
    first = {b.name: b.first for b in buffers}
    last = {b.name: b.last for b in buffers}

    def buf(t):
        r = program.root(t)
        return merged.get(r, r)

    outputs = {buf(t) for t in program.outputs}
    overlaps = []
    for k, step in enumerate(program.steps):
        if step.overlap_delta is None or step.overlap_delta >= 0 or k in inplace_steps or len(step.outputs) != 1:
            continue
        if ALIGN % step.overlap_modulus:  # placements differ by multiples of ALIGN only
            continue
        src, dst = buf(step.inputs[0]), buf(step.outputs[0])
        at = k + 1  # the step's time (see the module docstring)
        if src == dst or src in outputs or last.get(src) != at or first.get(dst) != at:
            continue
        overlaps.append((dst, src, step.overlap_delta))
    return overlaps


def force_overlaps(buffers: list[Buffer], pinned: list[tuple[str, str, int]],
                   candidates: list[tuple[str, str, int]], below: int = 0) -> list[tuple[str, str, int]]:
    """Pins (dst, src, delta) that put every allowed overlap `below` alignment units under its
    largest shift (0: at the limit), where that really shares bytes and ties no other buffers
    live at the same time onto the same bytes (chains of pins move whole groups)."""
    size = {b.name: b.size for b in buffers}
    forced: list[tuple[str, str, int]] = []
    clashes = _group_clashes(buffers, pinned)
    for dst, src, max_delta in candidates:
        delta = (max_delta // ALIGN - below) * ALIGN
        if delta <= -size[dst]:
            continue
        trial = pinned + forced + [(dst, src, delta)]
        try:
            new = _group_clashes(buffers, trial)
        except ValueError:
            continue
        if new - clashes <= {frozenset((dst, src))}:
            forced.append((dst, src, delta))
            clashes = new
    return forced


def _group_clashes(buffers: list[Buffer], fixed: list[tuple[str, str, int]]) -> set[frozenset]:
    """Pairs of buffers tied into one group by `fixed` that are live together and share bytes."""
    out = set()
    for g in merge_groups(buffers, fixed):
        for i, (a, ra) in enumerate(g.members):
            for b, rb in g.members[i + 1:]:
                if a.first <= b.last and b.first <= a.last and ra < rb + b.size and rb < ra + a.size:
                    out.add(frozenset((a.name, b.name)))
    return out


def plan_memory(program: Program, time_budget_s: float = 1.0, inplace: bool = True,
                reorder: bool = True, overlap: bool = True, force_overlap_below: int | None = None) -> MemoryPlan:
    """Order the steps, decide in-place execution, and place every buffer in one arena.

    Partial overlaps only widen the placements allowed, but the planners are heuristics, so the
    plan is made with and without them and the smaller arena wins. force_overlap_below=j (tests
    of the checked harness) instead pins every allowed overlap j alignment units under its limit
    (see force_overlaps), so that each kernel runs under the overlap it is licensed for."""
    if reorder:
        reorder_steps(program, time_budget_s / 2)
    merged, inplace_steps, pinned = choose_inplace(program) if inplace else ({}, set(), [])
    taken = {b for rel in pinned for b in rel[:2]}
    concat_fixed, elided = choose_elisions(program, merged, taken) if inplace else ([], set())
    pinned = pinned + concat_fixed
    buffers = program_buffers(program, merged, inplace_steps)
    plan = plan_arena(buffers, fixed=pinned, time_budget_s=time_budget_s / 4)
    candidates = choose_overlaps(program, merged, inplace_steps, buffers) if overlap else []
    used: list[tuple[str, str, int]] = []
    if candidates and force_overlap_below is not None:
        used = force_overlaps(buffers, pinned, candidates, force_overlap_below)
        plan = plan_arena(buffers, fixed=pinned + used, time_budget_s=time_budget_s / 4)
    bound, bound_kind = plan.lower_bound, LIVE_BYTES
    if candidates and force_overlap_below is None:
        overlapped = plan_arena_with_overlaps(buffers, pinned, candidates, time_budget_s / 4)
        # the plan without overlaps is one the overlapped problem allows too: its bound holds for both
        if overlapped.lower_bound < bound:
            bound, bound_kind = overlapped.lower_bound, LIVE_BYTES_LESS_OVERLAPS
        if overlapped.arena_bytes < plan.arena_bytes:
            plan = overlapped
            used = partial_overlaps(buffers, plan, candidates)
    offsets = dict(plan.offsets)
    for t in program.tensors:
        r = program.root(t)
        b = merged.get(r, r)
        if b in offsets:
            offsets[t] = offsets[b]
    n = len(program.steps)
    live_bytes, live_tensors = [0] * n, [[] for _ in range(n)]
    for b in buffers:  # each buffer visits only its own steps (not every buffer at every step)
        for k in range(max(b.first, 1), min(b.last, n) + 1):
            live_bytes[k - 1] += b.size
            live_tensors[k - 1].append(b.name)
    no_reuse = sum(b.size for b in program_buffers(program))
    return MemoryPlan(plan, buffers, offsets, live_bytes, live_tensors, inplace_steps, no_reuse,
                      pinned + used, elided, bound, bound_kind)
