"""Memory planning: tensor lifetimes, in-place and overlap, arena offset assignment (the execution
order comes from tinycc.schedule)."""
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
    "Plan",
    "assert_no_overlap",
    "describe_plan",
    "merge_groups",
    "plan_arena",
]
