"""Arena offset assignment: give every buffer an offset in one arena so that buffers live at the same
time never share bytes, with the arena as small as we can make it.

This is dynamic storage allocation (NP-hard). Several planners run and the smallest arena wins:

* ``greedy_by_size``       non-increasing size, smallest gap that fits (Pisarchyk & Lee; TFLite GPU).
* ``first_fit_by_size``    non-increasing size, lowest gap that fits (TFLM GreedyMemoryPlanner, TinyEngine).
* ``first_fit_by_lifetime`` longest lifetime first, lowest gap (TinyEngine ``sort_by_lifetime``).
* ``greedy_by_breadth``    the buffers of the most crowded step first, smallest gap (Pisarchyk & Lee).
* ``greedy_by_conflicts``  most time-conflicts first, smallest gap (TVM USMP ordering).
* ``branch_and_bound``     exhaustive search over placement orders for small problems (see below).
* ``hill_climb``           local search over the placement order, seeded (TVM USMP hill_climb).
* ``first_fit_latest_first`` latest-born buffer first, lowest gap; only with partial overlaps. An overlap
  lets an output sit *below* the input it streams over, so placing later buffers first puts each output
  low and lets its input slide down onto it: a chain of any length of such layers is solved in one pass,
  where the local search, whose budget does not grow with the chain, gives up beyond a few dozen.

Why a search over *orders* is enough: take any valid placement, sort its buffers by offset and re-place
them in that order at the lowest free offset ("first fit"); no buffer moves up. Repeating this reaches a
placement that first fit reproduces from an order with non-decreasing offsets. So some order gives an
optimal arena with first fit, and branch-and-bound only has to enumerate those "canonical" orders. This
holds for plain buffers; with fixed relative placements (below) the search is a heuristic.

Fixed relative placements ``(child, parent, byte_offset)`` pin ``offset(child) = offset(parent) +
byte_offset`` (concat written in place by its producers, in-place ops, views). Buffers tied together form a
*group* that is placed as one unit; buffers of the same group may share bytes, which is the point of
aliasing, so the caller is responsible for the group's internal layout being right.

Determinism: the output depends only on the inputs. The search budget ``time_budget_s`` is converted
into a count of work units (one per placement constraint examined) at a fixed rate measured on an
x86-64 host, never read from a clock, so slow and fast machines produce the same plan.

Partial overlaps ``(dst, src, max_delta)`` (``plan_arena_with_overlaps``) relax one conflict instead of
tying two buffers together: while both are live, ``dst`` may also start at most ``max_delta`` (< 0) bytes
relative to ``src``, sharing the top of its range with the bottom of ``src`` (a row-streaming kernel whose
output slides over input rows already consumed, as in vMCU). The planner stays free to keep them apart.
The argument for searching orders still holds (re-placing never moves a buffer onto a partner placed
below it, since max_delta < 0), and the lower bound subtracts the most bytes each live pair can share.

Arena size: ``arena_bytes`` is exactly ``max(offset + size)``, not rounded. Offsets are relative to the
arena base, which the code generator must align to at least the largest ``Buffer.align``.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Iterable, Sequence

GREEDY_PLANNERS = (
    "greedy_by_size",
    "first_fit_by_size",
    "first_fit_by_lifetime",
    "greedy_by_breadth",
    "greedy_by_conflicts",
)
SEARCH_PLANNERS = ("branch_and_bound", "hill_climb")
# Orders made for partial overlaps, run only on problems that have some (or when asked alone).
OVERLAP_PLANNERS = ("first_fit_latest_first",)
# Also the preference order when two planners find the same arena size.
PLANNERS = GREEDY_PLANNERS + SEARCH_PLANNERS + OVERLAP_PLANNERS

# Work units (placement constraints examined) per second of time_budget_s; measured with
# benchmarks/bench_planner.py (CPU time) on an x86-64 host running CPython 3.11.
WORK_UNITS_PER_SECOND = 3_000_000
# Branch-and-bound is tried on problems with at most this many groups.
EXACT_MAX_ITEMS = 16
HILL_CLIMB_SEED = 0x7C0DE


@dataclass(frozen=True)
class Buffer:
    """A tensor (or scratch area) to place: ``size`` bytes, live at steps ``first..last`` inclusive."""

    name: str
    size: int
    first: int
    last: int
    align: int = 4

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError(f"buffer {self.name!r}: size must be > 0, got {self.size}")
        if self.first > self.last:
            raise ValueError(f"buffer {self.name!r}: first step {self.first} is after last step {self.last}")
        if self.align <= 0 or self.align & (self.align - 1):
            raise ValueError(f"buffer {self.name!r}: align must be a power of two, got {self.align}")


@dataclass(frozen=True)
class Plan:
    """Where each buffer goes. ``offsets`` keeps the order of the buffers given to ``plan_arena``."""

    offsets: dict[str, int]
    arena_bytes: int
    planner: str
    lower_bound: int
    candidates: dict[str, int]

    @property
    def efficiency(self) -> float:
        """lower_bound / arena_bytes: 1.0 means provably optimal."""
        return self.lower_bound / self.arena_bytes if self.arena_bytes else 1.0


@dataclass(frozen=True)
class Group:
    """Buffers placed as one unit: ``(buffer, offset relative to the group)``; the smallest relative
    offset is 0. ``modulus``/``residue``: group offsets must be ``residue`` modulo ``modulus`` so that
    every member meets its alignment."""

    members: tuple[tuple[Buffer, int], ...]
    modulus: int
    residue: int

    @property
    def extent(self) -> int:
        return max(rel + b.size for b, rel in self.members)


def merge_groups(buffers: Sequence[Buffer], fixed: Iterable[tuple[str, str, int]] = ()) -> list[Group]:
    """Tie buffers together along the fixed relations; every buffer ends up in exactly one group.

    Groups are ordered by the position of their first member in ``buffers``, members by position too.
    Raises ValueError on unknown names, contradictory relations, or offsets that no alignment satisfies.
    """
    index = {}
    for i, b in enumerate(buffers):
        if b.name in index:
            raise ValueError(f"duplicate buffer name {b.name!r}")
        index[b.name] = i
    parent = list(range(len(buffers)))
    rel_to_parent = [0] * len(buffers)  # offset(i) - offset(parent[i])

    def find(i: int) -> tuple[int, int]:
        """Root of i and offset(i) - offset(root), compressing the path."""
        path = []
        while parent[i] != i:
            path.append(i)
            i = parent[i]
        root, acc = i, 0
        for node in reversed(path):
            acc += rel_to_parent[node]
            parent[node], rel_to_parent[node] = root, acc
        return root, (rel_to_parent[path[0]] if path else 0)

    for child, par, delta in fixed:
        for name in (child, par):
            if name not in index:
                raise ValueError(f"fixed placement names unknown buffer {name!r}")
        (rc, oc), (rp, op) = find(index[child]), find(index[par])
        if rc == rp:
            if oc - op != delta:
                raise ValueError(f"fixed placement {child!r} = {par!r} + {delta} contradicts earlier ones")
            continue
        # offset(rc) = offset(child) - oc = offset(par) + delta - oc = offset(rp) + op + delta - oc
        parent[rc], rel_to_parent[rc] = rp, op + delta - oc

    members: dict[int, list[tuple[int, int]]] = {}
    for i in range(len(buffers)):
        root, rel = find(i)
        members.setdefault(root, []).append((i, rel))
    groups = []
    for root in sorted(members, key=lambda r: members[r][0][0]):
        base = min(rel for _, rel in members[root])
        placed = tuple((buffers[i], rel - base) for i, rel in members[root])
        groups.append(_aligned_group(placed))
    return groups


def _aligned_group(members: tuple[tuple[Buffer, int], ...]) -> Group:
    modulus = max(b.align for b, _ in members)
    anchor_buf, anchor_rel = max(members, key=lambda m: m[0].align)
    residue = (-anchor_rel) % modulus
    for b, rel in members:
        if (residue + rel) % b.align:
            raise ValueError(
                f"fixed placements put {b.name!r} at {rel - anchor_rel:+d} bytes from {anchor_buf.name!r}, "
                f"which breaks its {b.align}-byte alignment")
    return Group(members, modulus, residue)


# --------------------------------------------------------------------------------------------------
# The prepared problem: groups ("items") with their time conflicts as forbidden offset differences.

@dataclass
class _Problem:
    n: int
    extent: list[int]
    lifetime: list[int]
    modulus: list[int]
    residue: list[int]
    plain: list[bool]
    # conflicts[i] = [(j, ((lo, hi), ...)), ...]: offset(i) - offset(j) must avoid every [lo, hi].
    conflicts: list[list[tuple[int, tuple[tuple[int, int], ...]]]]
    # steps[k] = [(item, bytes of the item live at that step), ...] for every step where a buffer starts.
    steps: list[list[tuple[int, int]]]
    breadth: list[int]
    lower_bound: int
    # step_saving[k]: the most bytes that partial overlaps can share at steps[k] (0 without them).
    step_saving: list[int] | None = None
    birth: list[int] | None = None  # first step of each item
    has_partial: bool = False  # some partial overlap links two items


def _prepare(groups: Sequence[Group], partial: dict[tuple[str, str], int] | None = None) -> _Problem:
    """``partial``: (dst, src) -> max_delta, see ``plan_arena_with_overlaps``."""
    n = len(groups)
    partial = partial or {}
    members = sorted(
        ((b.first, b.last, i, rel, b.size, b.name) for i, g in enumerate(groups) for b, rel in g.members))
    pair_ivs: list[dict[int, list[tuple[int, int]]]] = [{} for _ in range(n)]
    active: list[tuple[int, int, int, int, int, str]] = []
    for m in members:
        first, _, i, rel_i, size_i, name_i = m
        active = [a for a in active if a[1] >= first]
        for _, _, j, rel_j, size_j, name_j in active:
            if j == i:
                continue
            # offset(member i) - offset(member j) must avoid [lo_m, hi_m]
            lo_m, hi_m = 1 - size_i, size_j - 1
            if (name_i, name_j) in partial:
                lo_m = max(lo_m, partial[name_i, name_j] + 1)
            if (name_j, name_i) in partial:
                hi_m = min(hi_m, -partial[name_j, name_i] - 1)
            if lo_m > hi_m:
                continue
            lo, hi = rel_j - rel_i + lo_m, rel_j - rel_i + hi_m
            pair_ivs[i].setdefault(j, []).append((lo, hi))
            pair_ivs[j].setdefault(i, []).append((-hi, -lo))
        active.append(m)
    conflicts = [[(j, _merge_intervals(ivs)) for j, ivs in sorted(d.items())] for d in pair_ivs]

    steps, breadth, saving = _live_per_step(groups, members, partial)
    breadth = [b - s for b, s in zip(breadth, saving)]
    extent = [g.extent for g in groups]
    lower_bound = max(breadth + extent, default=0)
    return _Problem(
        n=n,
        extent=extent,
        lifetime=[max(b.last for b, _ in g.members) - min(b.first for b, _ in g.members) for g in groups],
        modulus=[g.modulus for g in groups],
        residue=[g.residue for g in groups],
        plain=[len(g.members) == 1 for g in groups],
        conflicts=conflicts,
        steps=steps,
        breadth=breadth,
        lower_bound=lower_bound,
        step_saving=saving,
        birth=[min(b.first for b, _ in g.members) for g in groups],
        has_partial=_links_items(groups, partial),
    )


def _links_items(groups: Sequence[Group], partial: dict[tuple[str, str], int]) -> bool:
    item = {b.name: i for i, g in enumerate(groups) for b, _ in g.members}
    return any(item[dst] != item[src] for dst, src in partial)


def _merge_intervals(ivs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ivs):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _live_per_step(groups, members, partial) -> tuple[list[list[tuple[int, int]]], list[int], list[int]]:
    """Bytes each item occupies at every step where some buffer starts (the live total only peaks
    there). An item's bytes are the union of its live members' byte ranges (aliases count once).
    Also the most bytes that live partial-overlap pairs of different items can share there."""
    steps, breadth, saving = [], [], []
    active: list[tuple[int, int, int, int, int, str]] = []
    k = 0
    while k < len(members):
        t = members[k][0]
        while k < len(members) and members[k][0] == t:
            active.append(members[k])
            k += 1
        active = [a for a in active if a[1] >= t]
        ranges: dict[int, list[tuple[int, int]]] = {}
        for _, _, i, rel, size, _ in active:
            ranges.setdefault(i, []).append((rel, rel + size))
        live = [(i, _union_length(r)) for i, r in sorted(ranges.items())]
        steps.append(live)
        breadth.append(sum(b for _, b in live))
        saving.append(_partial_saving(active, partial) if partial else 0)
    return steps, breadth, saving


def _partial_saving(active, partial: dict[tuple[str, str], int]) -> int:
    """Upper bound on the bytes shared by live partial-overlap pairs: ``dst`` starts at least
    ``-max_delta`` bytes below ``src``, so the pair spans at least max(size_src - max_delta, size_dst)."""
    live = {name: (i, size) for _, _, i, _, size, name in active}
    total = 0
    for (dst, src), max_delta in partial.items():
        if dst in live and src in live and live[dst][0] != live[src][0]:
            size_d, size_s = live[dst][1], live[src][1]
            total += max(0, size_d + size_s - max(size_s - max_delta, size_d))
    return total


def _union_length(ranges: list[tuple[int, int]]) -> int:
    total, reach = 0, None
    for lo, hi in sorted(ranges):
        if reach is None or lo > reach:
            total += hi - lo
            reach = hi
        elif hi > reach:
            total += hi - reach
            reach = hi
    return total


# --------------------------------------------------------------------------------------------------
# Placing items one by one.

def _align_up(x: int, modulus: int, residue: int) -> int:
    return x + (residue - x) % modulus


def _fit(forbidden: list[tuple[int, int]], modulus: int, residue: int, best_fit: bool) -> int:
    """Lowest aligned offset >= 0 outside every forbidden [lo, hi] (first fit), or the lowest one in the
    tightest bounded gap, falling back to above everything (best fit)."""
    forbidden.sort()
    free_from = 0
    x = _align_up(0, modulus, residue)
    best_slack = best_x = None
    for lo, hi in forbidden:
        if lo > x:
            if not best_fit:
                return x
            slack = lo - free_from
            if best_slack is None or slack < best_slack:
                best_slack, best_x = slack, x
        if hi >= free_from:
            free_from = hi + 1
            x = _align_up(free_from, modulus, residue)
    return x if best_x is None else best_x


class _Placer:
    """First-fit / best-fit placement of items in a given order, with incremental re-placement."""

    def __init__(self, pb: _Problem, best_fit: bool):
        self.pb = pb
        self.best_fit = best_fit
        self.work = 0

    def place(self, order: Sequence[int], pos: list[int], off: list[int], start: int = 0) -> None:
        """Place order[start:] given pos (position of each item in order) and off of order[:start]."""
        pb = self.pb
        conflicts, modulus, residue, best_fit = pb.conflicts, pb.modulus, pb.residue, self.best_fit
        work = 0
        for p in range(start, len(order)):
            i = order[p]
            forbidden = []
            for j, ivs in conflicts[i]:
                if pos[j] < p:
                    xj = off[j]
                    for lo, hi in ivs:
                        forbidden.append((xj + lo, xj + hi))
            work += len(conflicts[i]) + 1
            off[i] = _fit(forbidden, modulus[i], residue[i], best_fit)
        self.work += work

    def place_all(self, order: Sequence[int]) -> list[int]:
        pos = _positions(order)
        off = [0] * self.pb.n
        self.place(order, pos, off)
        return off


def _positions(order: Sequence[int]) -> list[int]:
    pos = [0] * len(order)
    for p, i in enumerate(order):
        pos[i] = p
    return pos


def _arena(pb: _Problem, off: Sequence[int]) -> int:
    return max((o + e for o, e in zip(off, pb.extent)), default=0)


def _greedy_order(pb: _Problem, name: str) -> list[int]:
    items = range(pb.n)
    if name in ("greedy_by_size", "first_fit_by_size"):
        return sorted(items, key=lambda i: (-pb.extent[i], -pb.lifetime[i], i))
    if name == "first_fit_by_lifetime":
        return sorted(items, key=lambda i: (-pb.lifetime[i], -pb.extent[i], i))
    if name == "first_fit_latest_first":
        return sorted(items, key=lambda i: (-pb.birth[i], -pb.extent[i], i))
    if name == "greedy_by_conflicts":
        return sorted(items, key=lambda i: (-len(pb.conflicts[i]), -pb.extent[i], i))
    if name == "greedy_by_breadth":
        order, seen = [], [False] * pb.n
        for k in sorted(range(len(pb.steps)), key=lambda k: (-pb.breadth[k], k)):
            for i, _ in sorted(pb.steps[k], key=lambda e: (-pb.extent[e[0]], -pb.lifetime[e[0]], e[0])):
                if not seen[i]:
                    seen[i] = True
                    order.append(i)
        return order
    raise ValueError(f"unknown greedy planner {name!r}")


def _uses_best_fit(name: str) -> bool:
    return not name.startswith("first_fit")


# --------------------------------------------------------------------------------------------------
# Exact search over canonical placement orders (small problems).

def _branch_and_bound(pb: _Problem, incumbent: list[int], work_limit: int) -> tuple[list[int], bool]:
    """Smallest first-fit placement over canonical orders (offsets non-decreasing, ties by item index).

    A bisection on the arena size between the lower bound and the incumbent: each probe searches for
    a placement below a target, which prunes far harder than a plain branch-and-bound that starts
    from the incumbent. The lower bound itself is probed first since it is often reachable.
    Returns (offsets, proven): proven means optimal (for plain buffers) within the work limit.
    """
    placer = _Placer(pb, best_fit=False)
    best_off, hi = list(incumbent), _arena(pb, incumbent)
    lo = pb.lower_bound
    target = lo
    while lo < hi:
        found, finished = _canonical_search(pb, target + 1, placer, work_limit)
        if found is not None:
            best_off, hi = found, _arena(pb, found)
            if finished:  # the best placement below target + 1, hence the optimum
                return best_off, True
        elif finished:
            lo = target + 1
        else:
            return best_off, False
        target = (lo + hi - 1) // 2
    return best_off, True


def _canonical_search(pb: _Problem, below: int, placer: _Placer, work_limit: int) -> tuple[list[int] | None, bool]:
    """Depth-first search for the smallest placement with an arena < ``below``.
    Returns (offsets or None, finished within the work limit)."""
    n = pb.n
    off = [0] * n
    placed = [False] * n
    best, best_off, finished = below, None, True

    def lowest_fit(i: int) -> int:
        forbidden = [(off[j] + lo, off[j] + hi) for j, ivs in pb.conflicts[i] if placed[j] for lo, hi in ivs]
        placer.work += len(pb.conflicts[i]) + 1
        return _fit(forbidden, pb.modulus[i], pb.residue[i], best_fit=False)

    def step_bound(last_off: int) -> int:
        """Unplaced items go at >= last_off, so at each step they stack above it with the parts of
        placed (plain) items that reach above it."""
        bound = 0
        placer.work += sum(len(live) for live in pb.steps)
        for k, live in enumerate(pb.steps):
            total = last_off - (pb.step_saving[k] if pb.step_saving else 0)
            for i, nbytes in live:
                if not placed[i]:
                    total += nbytes
                elif pb.plain[i]:
                    total += max(0, off[i] + pb.extent[i] - max(off[i], last_off))
            bound = max(bound, total)
        return bound

    def dfs(depth: int, last_off: int, last_item: int, cur_max: int) -> None:
        nonlocal best, best_off, finished
        if depth == n:
            best, best_off = cur_max, list(off)
            return
        if placer.work > work_limit:
            finished = False
            return
        bound, candidates = cur_max, []
        for i in range(n):
            if placed[i]:
                continue
            x = lowest_fit(i)
            bound = max(bound, max(x, last_off) + pb.extent[i])
            if x > last_off or (x == last_off and i > last_item):
                candidates.append((x, -pb.extent[i], i))
        if not candidates or bound >= best or step_bound(last_off) >= best:
            return
        for x, _, i in sorted(candidates):
            placed[i], off[i] = True, x
            dfs(depth + 1, x, i, max(cur_max, x + pb.extent[i]))
            placed[i] = False
            if best <= pb.lower_bound or not finished:
                return

    dfs(0, 0, -1, 0)
    return best_off, finished


# --------------------------------------------------------------------------------------------------
# Local search over the placement order (larger problems).

def _hill_climb(pb: _Problem, start_order: list[int], best_fit: bool, work_limit: int) -> list[int]:
    """Move a buffer that ends at the top of the arena earlier in the order (swap with, or jump before,
    a conflicting buffer placed before it, sometimes any earlier buffer); keep moves that do not grow
    the arena, and accept worse ones with a shrinking probability (simulated annealing). Seeded, so
    deterministic. The constants were tuned with benchmarks/bench_planner.py."""
    rng = random.Random(HILL_CLIMB_SEED)
    placer = _Placer(pb, best_fit)
    order = list(start_order)
    pos = _positions(order)
    off = [0] * pb.n
    placer.place(order, pos, off)
    cur = _arena(pb, off)
    best, best_off = cur, list(off)
    while placer.work < work_limit and best > pb.lower_bound:
        critical = [i for i in range(pb.n) if off[i] + pb.extent[i] == cur
                    and any(pos[j] < pos[i] for j, _ in pb.conflicts[i])]
        if not critical:
            break
        c = rng.choice(critical)
        if rng.random() < 0.2:
            j = order[rng.randrange(pos[c])]
        else:
            j = rng.choice([j for j, _ in pb.conflicts[c] if pos[j] < pos[c]])
            if rng.random() < 0.3:  # second-level neighbour: something that pushed j up
                further = [k for k, _ in pb.conflicts[j] if pos[k] < pos[j]]
                if further:
                    j = rng.choice(further)
        saved_order, saved_off = list(order), list(off)
        pc, pj = pos[c], pos[j]
        if rng.random() < 0.5:
            order[pc], order[pj] = j, c
        else:
            del order[pc]
            order.insert(pj, c)
        start = min(pc, pj)
        for p in range(start, max(pc, pj) + 1):
            pos[order[p]] = p
        placer.place(order, pos, off, start)
        new = _arena(pb, off)
        progress = placer.work / work_limit
        temperature = 0.02 * cur * (1.0 - progress)
        if new <= cur or (temperature > 0 and rng.random() < math.exp(-(new - cur) / temperature)):
            cur = new
            if new < best:
                best, best_off = new, list(off)
        else:
            order, off = saved_order, saved_off
            for p in range(start, max(pc, pj) + 1):
                pos[order[p]] = p
    return best_off


# --------------------------------------------------------------------------------------------------

def plan_arena(
    buffers: Sequence[Buffer],
    fixed: Sequence[tuple[str, str, int]] = (),
    time_budget_s: float = 1.0,
    planners: Sequence[str] | None = None,
) -> Plan:
    """Run the planners (all of ``PLANNERS`` by default) and return the smallest arena.

    Ties go to the planner listed first in ``PLANNERS``. The search planners are skipped when a
    greedy one already reaches the lower bound; they share ``time_budget_s`` (deterministic, see the
    module docstring). Raises ValueError for malformed buffers or fixed placements.
    """
    wanted = _wanted_planners(planners)
    groups = merge_groups(buffers, fixed)
    return _solve(buffers, groups, _prepare(groups), time_budget_s, wanted)


def plan_arena_with_overlaps(
    buffers: Sequence[Buffer],
    fixed: Sequence[tuple[str, str, int]] = (),
    overlaps: Sequence[tuple[str, str, int]] = (),
    time_budget_s: float = 1.0,
    planners: Sequence[str] | None = None,
) -> Plan:
    """``plan_arena`` where each ``(dst, src, max_delta)`` of ``overlaps`` lets ``dst`` share bytes with
    ``src`` while both are live, provided ``offset(dst) - offset(src) <= max_delta < 0`` (see the module
    docstring); placing them apart stays allowed. ``partial_overlaps`` lists the pairs a plan uses.
    Raises ValueError for unknown names, a non-negative max_delta, or a pair named twice."""
    wanted = _wanted_planners(planners)
    names = {b.name for b in buffers}
    partial: dict[tuple[str, str], int] = {}
    for dst, src, max_delta in overlaps:
        if dst not in names or src not in names or dst == src:
            raise ValueError(f"partial overlap ({dst!r}, {src!r}) names unknown or identical buffers")
        if max_delta >= 0:
            raise ValueError(f"partial overlap {dst!r} over {src!r}: max_delta must be < 0, got {max_delta}")
        if (dst, src) in partial or (src, dst) in partial:
            raise ValueError(f"partial overlap of {dst!r} and {src!r} given twice")
        partial[dst, src] = max_delta
    groups = merge_groups(buffers, fixed)
    return _solve(buffers, groups, _prepare(groups, partial), time_budget_s, wanted)


def partial_overlaps(buffers: Sequence[Buffer], plan: Plan,
                     overlaps: Sequence[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """The ``(dst, src, offset(dst) - offset(src))`` of the allowed overlaps whose byte ranges really
    intersect in ``plan``, in the order given."""
    size = {b.name: b.size for b in buffers}
    used = []
    for dst, src, _ in overlaps:
        delta = plan.offsets[dst] - plan.offsets[src]
        if -size[dst] < delta < size[src]:
            used.append((dst, src, delta))
    return used


def _wanted_planners(planners: Sequence[str] | None) -> tuple[str, ...]:
    wanted = PLANNERS if planners is None else tuple(planners)
    unknown = [p for p in wanted if p not in PLANNERS]
    if unknown or not wanted:
        raise ValueError(f"unknown planners {unknown}; choose from {PLANNERS}")
    return wanted


def _solve(buffers: Sequence[Buffer], groups: list[Group], pb: _Problem, time_budget_s: float,
           wanted: tuple[str, ...]) -> Plan:
    results: dict[str, list[int]] = {}
    for name in GREEDY_PLANNERS:
        if name in wanted:
            results[name] = _Placer(pb, _uses_best_fit(name)).place_all(_greedy_order(pb, name))

    searches = [name for name in SEARCH_PLANNERS if name in wanted]
    if searches:
        start_name = min(results, key=lambda k: _arena(pb, results[k])) if results else "greedy_by_size"
        start_order = _greedy_order(pb, start_name)
        start_off = results.get(start_name) or _Placer(pb, _uses_best_fit(start_name)).place_all(start_order)
        budget = max(1, int(time_budget_s * WORK_UNITS_PER_SECOND))
        proven = _arena(pb, start_off) <= pb.lower_bound
        if proven and not results:  # only searches were asked for; they stop at once at the lower bound
            results[searches[0]] = start_off
        for name in searches:
            if proven:
                break
            if name == "branch_and_bound":
                if pb.n > EXACT_MAX_ITEMS and "hill_climb" in searches:
                    continue
                share = budget if "hill_climb" not in searches else budget // 2
                results[name], proven = _branch_and_bound(pb, start_off, share)
                budget -= share
            else:
                results[name] = _hill_climb(pb, start_order, _uses_best_fit(start_name), max(budget, 1))

    # after the searches and apart from their start, so that problems without a gain keep their plan
    for name in OVERLAP_PLANNERS:
        if name in wanted and (pb.has_partial or not results):
            results[name] = _Placer(pb, _uses_best_fit(name)).place_all(_greedy_order(pb, name))

    candidates = {name: _arena(pb, off) for name, off in results.items()}
    chosen = min(candidates, key=lambda k: (candidates[k], PLANNERS.index(k)))
    item_off = results[chosen]
    by_name = {b.name: item_off[i] + rel for i, g in enumerate(groups) for b, rel in g.members}
    return Plan(
        offsets={b.name: by_name[b.name] for b in buffers},
        arena_bytes=candidates[chosen],
        planner=chosen,
        lower_bound=pb.lower_bound,
        candidates=candidates,
    )


def assert_no_overlap(buffers: Sequence[Buffer], plan: Plan, fixed: Sequence[tuple[str, str, int]] = ()) -> None:
    """Check a plan: every buffer placed, aligned, inside the arena, fixed placements honoured, and no
    two buffers live at the same step share a byte unless they are tied by fixed placements."""
    _check_plan(buffers, plan, fixed, {})


def assert_valid_with_overlaps(buffers: Sequence[Buffer], plan: Plan, fixed: Sequence[tuple[str, str, int]] = (),
                               overlaps: Sequence[tuple[str, str, int]] = ()) -> None:
    """``assert_no_overlap`` for ``plan_arena_with_overlaps``: a pair of ``overlaps`` may also share bytes
    when ``offset(dst) - offset(src) <= max_delta``."""
    _check_plan(buffers, plan, fixed, {(dst, src): d for dst, src, d in overlaps})


def _check_plan(buffers, plan, fixed, partial: dict[tuple[str, str], int]) -> None:
    group_of = {}
    for gi, g in enumerate(merge_groups(buffers, fixed)):
        for b, _ in g.members:
            group_of[b.name] = gi
    off = plan.offsets
    for b in buffers:
        assert b.name in off, f"{b.name!r} has no offset"
        o = off[b.name]
        assert o >= 0 and o % b.align == 0, f"{b.name!r} at {o} is not {b.align}-aligned or negative"
        assert o + b.size <= plan.arena_bytes, f"{b.name!r} [{o}, {o + b.size}) exceeds arena {plan.arena_bytes}"
    for child, parent, delta in fixed:
        assert off[child] == off[parent] + delta, f"{child!r} must be at {parent!r}{delta:+d}"
    by_first = sorted(buffers, key=lambda b: (b.first, b.last))
    for k, a in enumerate(by_first):
        for b in by_first[k + 1:]:
            if b.first > a.last:
                break
            if group_of[a.name] == group_of[b.name]:
                continue
            oa, ob = off[a.name], off[b.name]
            if (a.name, b.name) in partial and oa - ob <= partial[a.name, b.name]:
                continue
            if (b.name, a.name) in partial and ob - oa <= partial[b.name, a.name]:
                continue
            assert oa + a.size <= ob or ob + b.size <= oa, (
                f"{a.name!r} [{oa}, {oa + a.size}) steps {a.first}..{a.last} overlaps "
                f"{b.name!r} [{ob}, {ob + b.size}) steps {b.first}..{b.last}")


def describe_plan(buffers: Sequence[Buffer], plan: Plan) -> str:
    """A text table of the plan, lowest offset first (for --print-plan and debugging)."""
    lines = [f"arena {plan.arena_bytes} B by {plan.planner}, lower bound {plan.lower_bound} B "
             f"({100 * plan.efficiency:.1f}% efficient)",
             "  candidates: " + ", ".join(f"{k}={v}" for k, v in plan.candidates.items()),
             f"  {'offset':>10} {'size':>10}  {'steps':>11}  name"]
    for b in sorted(buffers, key=lambda b: (plan.offsets[b.name], b.first, b.name)):
        lines.append(f"  {plan.offsets[b.name]:>10} {b.size:>10}  {b.first:>5}..{b.last:<5}  {b.name}")
    return "\n".join(lines)
