"""Memory planning: execution order for minimal peak memory, and arena offset assignment."""
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
