"""Memory planning: execution order for minimal peak memory, and arena offset assignment."""
from tinycc.memory.order import OrderResult, best_order, cut_points, peak_bytes, search_order, step_bytes
from tinycc.memory.planner import (
    PLANNERS,
    Buffer,
    Group,
    Plan,
    assert_no_overlap,
    describe_plan,
    merge_groups,
    plan_arena,
)

__all__ = [
    "PLANNERS",
    "Buffer",
    "Group",
    "OrderResult",
    "Plan",
    "assert_no_overlap",
    "best_order",
    "cut_points",
    "describe_plan",
    "merge_groups",
    "peak_bytes",
    "plan_arena",
    "search_order",
    "step_bytes",
]
