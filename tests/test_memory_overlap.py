"""Partial (row) overlaps: the planner may let a row-streaming output start below the input it
consumes; every placement honours the allowed shift, the lower bound stays a bound, and the
generated C of a model that uses overlaps still equals the golden model under the checked harness."""
from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinycc.memory.planner import (
    PLANNERS,
    Buffer,
    assert_no_overlap,
    assert_valid_with_overlaps,
    partial_overlaps,
    plan_arena,
    plan_arena_with_overlaps,
)

FAST = 0.02
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def overlap_problems(draw, max_buffers: int = 12):
    """Random 16-aligned buffers; some pairs live together get a partial overlap (dst, src, max_delta < 0)."""
    n = draw(st.integers(1, max_buffers))
    buffers = []
    for k in range(n):
        first = draw(st.integers(0, 8))
        length = draw(st.sampled_from([0, 1, 1, 2, 4]))
        buffers.append(Buffer(f"b{k}", 16 * draw(st.integers(1, 12)), first, first + length, 16))
    overlaps, used = [], set()
    for a, b in itertools.combinations(buffers, 2):
        if a.first <= b.last and b.first <= a.last and draw(st.integers(0, 2)) == 0:
            dst, src = (a, b) if draw(st.booleans()) else (b, a)
            if dst.name not in used and src.name not in used:
                used.update((dst.name, src.name))
                overlaps.append((dst.name, src.name, -16 * draw(st.integers(1, dst.size // 16 + 1))))
    return buffers, overlaps


def first_fit_with_overlaps(buffers, overlaps, order) -> int:
    """Independent first fit: lowest aligned offset whose byte range clashes with no placed buffer
    live at the same time, except a partial-overlap partner shifted far enough down."""
    allowed = {(d, s): m for d, s, m in overlaps}
    placed = []
    for b in order:
        forbidden = []
        for c, o in placed:
            if c.first <= b.last and b.first <= c.last:
                lo, hi = o - b.size + 1, o + c.size - 1  # b's start may not lie in [lo, hi]
                if (b.name, c.name) in allowed:
                    lo = max(lo, o + allowed[b.name, c.name] + 1)
                if (c.name, b.name) in allowed:
                    hi = min(hi, o - allowed[c.name, b.name] - 1)
                if lo <= hi:
                    forbidden.append((lo, hi))
        x = 0
        while any(lo <= x <= hi for lo, hi in forbidden):
            x = max(-(-(hi + 1) // b.align) * b.align for lo, hi in forbidden if lo <= x <= hi)
        placed.append((b, x))
    return max((o + b.size for b, o in placed), default=0)


@PROPERTY
@given(overlap_problems())
def test_every_planner_honours_the_allowed_shifts(case):
    buffers, overlaps = case
    for name in PLANNERS:
        plan = plan_arena_with_overlaps(buffers, (), overlaps, time_budget_s=FAST, planners=[name])
        assert_valid_with_overlaps(buffers, plan, (), overlaps)
        assert plan.lower_bound <= plan.arena_bytes
        for dst, src, delta in partial_overlaps(buffers, plan, overlaps):
            assert delta <= dict(((d, s), m) for d, s, m in overlaps)[dst, src]


@settings(max_examples=30, deadline=None)
@given(overlap_problems(max_buffers=6))
def test_branch_and_bound_is_exact_and_the_lower_bound_holds(case):
    """With every shift < 0 some first-fit order is still optimal, so brute force over orders is exact."""
    buffers, overlaps = case
    brute = min(first_fit_with_overlaps(buffers, overlaps, p) for p in itertools.permutations(buffers))
    plan = plan_arena_with_overlaps(buffers, (), overlaps, time_budget_s=1.0, planners=["branch_and_bound"])
    assert_valid_with_overlaps(buffers, plan, (), overlaps)
    assert plan.lower_bound <= brute == plan.arena_bytes


@PROPERTY
@given(overlap_problems())
def test_without_overlaps_it_is_plan_arena(case):
    buffers, _ = case
    assert plan_arena_with_overlaps(buffers, time_budget_s=FAST) == plan_arena(buffers, time_budget_s=FAST)


def test_overlap_chain_drifts_by_the_shift_only():
    # A conv chain as in KWS: five 8000-byte maps, each output may start 320 bytes below its input.
    buffers = [Buffer(f"t{k}", 8000, k, k + 1, 16) for k in range(5)]
    overlaps = [(f"t{k + 1}", f"t{k}", -320) for k in range(4)]
    plan = plan_arena_with_overlaps(buffers, (), overlaps)
    assert_valid_with_overlaps(buffers, plan, (), overlaps)
    assert plan.lower_bound == 8320 and plan.arena_bytes == 8000 + 4 * 320
    assert plan_arena(buffers).arena_bytes == 16000
    assert [d for _, _, d in partial_overlaps(buffers, plan, overlaps)] == [-320] * 4


def test_expansion_between_in_place_neighbours():
    """The VWW peak: x -> a (conv, -384), a -> a in place (depthwise), a -> e (36864-byte expansion,
    -18816), e -> p pinned at offset 0 (strided depthwise). Chained at the largest shifts the group
    needs 46848 bytes; keeping x apart from a and sliding e further down gives the optimum 46080."""
    buffers = [Buffer("x", 27648, 0, 1, 16), Buffer("a", 18432, 1, 3, 16), Buffer("e", 36864, 3, 4, 16),
               Buffer("p", 9216, 4, 5, 16), Buffer("s", 2304, 4, 4, 16), Buffer("q", 18432, 5, 6, 16)]
    pinned = [("p", "e", 0)]
    overlaps = [("a", "x", -384), ("e", "a", -18816), ("q", "p", -9600)]
    plan = plan_arena_with_overlaps(buffers, pinned, overlaps)
    assert_valid_with_overlaps(buffers, plan, pinned, overlaps)
    assert plan_arena(buffers, pinned).arena_bytes == 55296
    assert plan.arena_bytes == 46080
    used = partial_overlaps(buffers, plan, overlaps)
    assert ("e", "a") in {(d, s) for d, s, _ in used}
    assert_no_overlap(buffers, plan, pinned + used)


def test_checker_rejects_a_shift_beyond_the_allowed_one():
    buffers = [Buffer("x", 64, 0, 1, 16), Buffer("y", 64, 1, 2, 16)]
    plan = plan_arena_with_overlaps(buffers, (), [("y", "x", -32)])
    assert plan.arena_bytes == 96 and plan.offsets["x"] - plan.offsets["y"] == 32
    assert_valid_with_overlaps(buffers, plan, (), [("y", "x", -32)])
    with pytest.raises(AssertionError, match="overlaps"):
        assert_valid_with_overlaps(buffers, plan, (), [("y", "x", -48)])
    with pytest.raises(AssertionError, match="overlaps"):
        assert_no_overlap(buffers, plan)


def test_invalid_overlaps_are_rejected():
    buffers = [Buffer("x", 64, 0, 1, 16), Buffer("y", 64, 1, 2, 16)]
    for bad in ([("y", "x", 0)], [("y", "z", -16)], [("x", "x", -16)], [("y", "x", -16), ("x", "y", -16)]):
        with pytest.raises(ValueError):
            plan_arena_with_overlaps(buffers, (), bad)


def _expansion_model(path):
    """conv 3x3 (8 ch) -> depthwise 3x3 -> pointwise expansion to 32 ch -> strided depthwise -> conv."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    shapes = {"w0": (8, 3, 3, 3), "w1": (8, 1, 3, 3), "w2": (32, 8, 1, 1), "w3": (32, 1, 3, 3), "w4": (8, 32, 1, 1)}
    inits = [numpy_helper.from_array(0.3 * rng.standard_normal(s).astype(np.float32), n) for n, s in shapes.items()]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["a"], ["ra"]),
             helper.make_node("Conv", ["ra", "w1"], ["b"], pads=[1, 1, 1, 1], group=8),
             helper.make_node("Relu", ["b"], ["rb"]),
             helper.make_node("Conv", ["rb", "w2"], ["c"]),
             helper.make_node("Relu", ["c"], ["rc"]),
             helper.make_node("Conv", ["rc", "w3"], ["d"], pads=[1, 1, 1, 1], strides=[2, 2], group=32),
             helper.make_node("Relu", ["d"], ["rd"]),
             helper.make_node("Conv", ["rd", "w4"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 24, 24])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 6])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return rng


def test_checked_c_with_partial_overlaps_matches_golden(tmp_path):
    from tinycc.compiler import QuantOptions
    from tinycc.engines import CompiledModel
    from tinycc.frontend import load_graph
    from tinycc.memory.lifetimes import plan_memory
    from tinycc.passes import run_pipeline

    rng = _expansion_model(tmp_path / "m.onnx")
    model = CompiledModel(run_pipeline(load_graph(tmp_path / "m.onnx")), QuantOptions(), warn=lambda m: None)
    mem = model.mem
    sizes = {b.name: b.size for b in mem.buffers}
    partial = [(d, s, o) for d, s, o in mem.overlaps if -sizes[d] < o < 0]
    assert partial, mem.overlaps
    assert_no_overlap(mem.buffers, mem.plan, mem.overlaps)
    without = plan_memory(copy.deepcopy(model.program), overlap=False)
    assert mem.arena_bytes < without.arena_bytes
    x = {"x": rng.standard_normal((1, 3, 24, 24)).astype(np.float32)}
    from cbuild import require_sanitizers

    require_sanitizers()  # the checked harness (make check) uses ASan/UBSan
    outs, trace = model.run_c(x, check=True)
    golden = {}
    model.run_int8(x, observe=lambda t, v: golden.__setitem__(t, v))
    for k, step in enumerate(model.program.steps):
        np.testing.assert_array_equal(trace[k], golden[step.outputs[0]].reshape(-1), err_msg=step.name)
