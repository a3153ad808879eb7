"""Buffers and lifetimes of a Program, and the arena plan built from them.

Time: graph inputs are written at time 0, step k runs at time k + 1, outputs stay live until
time len(steps) + 1 (read by the caller). Views (reshape) share their source's buffer.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..program import Program
from .planner import Buffer, Plan, plan_arena

ALIGN = 16


@dataclass
class MemoryPlan:
    plan: Plan
    buffers: list[Buffer]
    offsets: dict[str, int]  # every tensor (views included) and scratch buffer -> arena offset
    live_bytes: list[int]  # bytes live at each step (index = step)
    live_tensors: list[list[str]]

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes


def scratch_name(step_index: int) -> str:
    return f"__scratch_{step_index}"


def program_buffers(program: Program) -> list[Buffer]:
    end = len(program.steps) + 1
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for name in program.inputs:
        root = program.root(name)
        first[root] = 0
        last[root] = max(last.get(root, 0), 0)
    buffers = []
    for k, step in enumerate(program.steps, start=1):
        for t in step.inputs:
            if t in program.tensors:
                root = program.root(t)
                last[root] = max(last.get(root, k), k)
        for t in step.outputs:
            root = program.root(t)
            first.setdefault(root, k)
            last[root] = max(last.get(root, k), k)
        if step.scratch_bytes:
            buffers.append(Buffer(scratch_name(k - 1), step.scratch_bytes, k, k, ALIGN))
    for name in program.outputs:
        last[program.root(name)] = end
    for root in sorted(first, key=lambda r: (first[r], r)):
        size = program.tensors[root].size
        buffers.append(Buffer(root, size, first[root], last[root], ALIGN))
    return buffers


def plan_memory(program: Program, time_budget_s: float = 1.0) -> MemoryPlan:
    buffers = program_buffers(program)
    plan = plan_arena(buffers, time_budget_s=time_budget_s)
    offsets = dict(plan.offsets)
    for t in program.tensors:
        root = program.root(t)
        if root in offsets:
            offsets[t] = offsets[root]
    n = len(program.steps)
    live_bytes, live_tensors = [], []
    for k in range(1, n + 1):
        live = [b for b in buffers if b.first <= k <= b.last]
        live_bytes.append(sum(b.size for b in live))
        live_tensors.append([b.name for b in live])
    return MemoryPlan(plan, buffers, offsets, live_bytes, live_tensors)
