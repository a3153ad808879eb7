"""Property test of the whole memory pipeline (order, in-place, pinned outputs, views, plan) on
random programs: replaying the plan byte by byte, no step ever reads a tensor whose bytes were
overwritten since it was written, and graph outputs survive to the end."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinycc.ir import QuantParams
from tinycc.memory.lifetimes import plan_memory, scratch_name
from tinycc.memory.planner import assert_no_overlap
from tinycc.program import Arg, Program, Step, TensorInfo

QP = QuantParams(np.array(1.0, np.float32), np.array(0, np.int32))


@st.composite
def programs(draw):
    p = Program("random")
    n_inputs = draw(st.integers(1, 2))
    available = []
    for i in range(n_inputs):
        name = f"in{i}"
        p.tensors[name] = TensorInfo(name, (draw(st.integers(1, 64)),), QP)
        p.inputs.append(name)
        available.append(name)
    for k in range(draw(st.integers(1, 12))):
        ins = draw(st.lists(st.sampled_from(available), min_size=1, max_size=2, unique=True))
        kind = draw(st.sampled_from(["plain", "inplace", "smaller", "view"]))
        out = f"t{k}"
        src_size = p.tensors[ins[0]].size
        if kind == "view":
            p.tensors[out] = TensorInfo(out, (src_size,), QP)
            p.views[out] = ins[0]
            available.append(out)
            continue
        size = {"plain": draw(st.integers(1, 64)), "inplace": src_size,
                "smaller": max(1, src_size // draw(st.integers(2, 4)))}[kind]
        p.tensors[out] = TensorInfo(out, (size,), QP)
        args = [Arg("in", t) for t in ins]
        if draw(st.booleans()):
            args.append(Arg("scratch", "", draw(st.integers(1, 32))))
        args.append(Arg("out", out))
        p.steps.append(Step(f"s{k}", "Op", f"n{k}", "", "tc_op", None, args, lambda *a: None,
                            inplace_inputs=(0,) if kind in ("inplace", "smaller") else ()))
        available.append(out)
    if not p.steps:
        return None
    produced = [t for s in p.steps for t in s.outputs]
    p.outputs = draw(st.lists(st.sampled_from(produced), min_size=1, max_size=2, unique=True))
    return p


def replay(p: Program, mem) -> None:
    owner = {}  # byte -> tensor root that last wrote it

    def region(t):
        off = mem.offsets[t]
        return range(off, off + p.tensors[t].size)

    def check(t, when):
        root = p.root(t)
        assert all(owner.get(b) == root for b in region(t)), f"{t} clobbered before {when}"

    for t in p.inputs:
        for b in region(t):
            owner[b] = p.root(t)
    for k, step in enumerate(p.steps):
        for t in step.inputs:
            check(t, f"step {k}")
        _, args = step.call(k in mem.inplace_steps)
        if any(a.kind == "scratch" for a in args):
            off = mem.offsets[scratch_name(k)]
            for b in range(off, off + sum(a.nbytes for a in args if a.kind == "scratch")):
                owner[b] = ("scratch", k)
        for t in step.outputs:
            for b in region(t):
                owner[b] = p.root(t)
    for t in p.outputs:
        check(t, "the end")


@settings(max_examples=300, deadline=None)
@given(programs())
def test_plans_never_clobber_live_tensors(p):
    if p is None:
        return
    mem = plan_memory(p, time_budget_s=0.05)
    assert_no_overlap(mem.buffers, mem.plan, mem.overlaps)
    replay(p, mem)
    assert mem.arena_bytes >= max(p.tensors[t].size for t in p.tensors)
