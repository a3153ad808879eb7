"""Execution order with the smallest peak memory (Serenity-style dynamic programming).

Model. ``G`` is a DAG of steps; an edge u -> v means v reads u's output. Executing the nodes in a
topological ``order``, node n's output of ``out_bytes[n]`` bytes is live from the step that produces it
to the step of its last consumer, inclusive. Graph inputs (nodes without predecessors) are live from
step 0; graph outputs (``G.nodes[n].get("is_output")``) stay live to the end; an output nobody reads dies
after its own step. ``scratch_bytes[n]`` is live during n's step only. Bytes live for the whole run do not
change which order is best: add them to the peak yourself.

Search. The bytes live while a node runs depend only on the set of nodes already run, so the best
order is a shortest-path-like dynamic program over "downward-closed" sets (every predecessor of a member
is a member), processed layer by layer (by set size), keeping for each set the smallest peak reaching it.
States that cannot beat the best heuristic order are dropped. Long graphs are first cut at nodes every
other node must precede or follow (e.g. the node after a residual add): the segments between cuts do not
interact, so each is solved on its own. A segment whose layers grow beyond the budget is solved by the
same program keeping only the most promising states (beam search), so the result is always a valid order
and is exact whenever no layer had to be trimmed.

Determinism: ties go to the node that comes first in a fixed initial order (the lexicographic topological
order by ``G.nodes[n]["index"]`` when every node has one, else by ``str(node)``); budgets are counted in
transitions, never read from a clock. When the initial order is already optimal it is returned unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

import networkx as nx

# DP transitions per second of time_budget_s (CPU time, CPython 3.11 on x86-64, benchmarks/bench_planner.py).
TRANSITIONS_PER_SECOND = 800_000
# States kept per layer when an exact search is out of budget.
BEAM_WIDTH = 64


@dataclass(frozen=True)
class OrderResult:
    order: list
    peak: int
    exact: bool  # True when no state was trimmed: the order is optimal


def initial_order(G: nx.DiGraph) -> list:
    """The deterministic reference order used for tie-breaking (and returned when nothing is better)."""
    if G.number_of_nodes() and all("index" in G.nodes[n] for n in G.nodes):
        return list(nx.lexicographical_topological_sort(G, key=lambda n: (G.nodes[n]["index"], str(n))))
    return list(nx.lexicographical_topological_sort(G, key=str))


def step_bytes(
    G: nx.DiGraph,
    order: Sequence[Hashable],
    out_bytes: Mapping[Hashable, int],
    scratch_bytes: Mapping[Hashable, int] | None = None,
) -> list[int]:
    """Bytes live during each step of ``order`` (see the module docstring for lifetimes)."""
    pos = {n: k for k, n in enumerate(order)}
    if len(pos) != len(order) or set(pos) != set(G.nodes):
        raise ValueError("order must list every node of the graph exactly once")
    for u, v in G.edges:
        if pos[u] >= pos[v]:
            raise ValueError(f"order runs {v!r} before its input {u!r}")
    scratch = scratch_bytes or {}
    last = len(order) - 1
    delta = [0] * (len(order) + 1)
    for n in order:
        start = 0 if G.in_degree(n) == 0 else pos[n]
        end = max([pos[n]] + [pos[s] for s in G.successors(n)])
        if G.nodes[n].get("is_output"):
            end = last
        delta[start] += out_bytes[n]
        delta[end + 1] -= out_bytes[n]
    live, profile = 0, []
    for k, n in enumerate(order):
        live += delta[k]
        profile.append(live + scratch.get(n, 0))
    return profile


def peak_bytes(
    G: nx.DiGraph,
    order: Sequence[Hashable],
    out_bytes: Mapping[Hashable, int],
    scratch_bytes: Mapping[Hashable, int] | None = None,
) -> int:
    """The largest ``step_bytes``: what the order needs if every live byte had its own place."""
    return max(step_bytes(G, order, out_bytes, scratch_bytes), default=0)


# --------------------------------------------------------------------------------------------------
# A scheduling problem over a subset of the nodes, in bitmask form.

@dataclass
class _Problem:
    nodes: list                      # in tie-break order; bit k <-> nodes[k]
    step_extra: list[int]            # bytes added while node k runs: its output (unless already live) + scratch
    scratch: list[int]
    pred_mask: list[int]             # predecessors inside the problem
    succ_mask: list[int]
    # frees[k] = [(mask, bytes), ...]: after node k runs, `bytes` die if every node of `mask` has run.
    frees: list[list[tuple[int, int]]]
    live_at_start: int
    lower_bound: int                 # no order does better: some step holds a node's inputs and output


def _segment_problem(G, seg: list, rank: dict, out_bytes, scratch) -> _Problem:
    """The nodes ``seg`` (contiguous in every valid order) as a stand-alone problem.

    Tensors produced before the segment and read in it are live at its start; graph outputs and
    tensors read after the segment stay live through it.
    """
    seg = sorted(seg, key=rank.__getitem__)
    end_rank = rank[seg[-1]]
    bit = {n: 1 << k for k, n in enumerate(seg)}
    pred_mask, succ_mask, step_extra = [], [], []
    live_at_start = 0
    external: dict = {}  # producer outside the segment -> mask of its consumers inside
    for n in seg:
        pm = 0
        for p in G.predecessors(n):
            if p in bit:
                pm |= bit[p]
            else:
                external[p] = external.get(p, 0) | bit[n]
        pred_mask.append(pm)
        succ_mask.append(sum(bit[s] for s in G.successors(n) if s in bit))
        is_input = G.in_degree(n) == 0
        if is_input:
            live_at_start += out_bytes[n]
        step_extra.append((0 if is_input else out_bytes[n]) + scratch.get(n, 0))

    def stays_live(n) -> bool:
        return bool(G.nodes[n].get("is_output")) or any(rank[s] > end_rank for s in G.successors(n))

    # A tensor read by several nodes gets an entry on each; only the last of them to run frees it.
    position = {n: k for k, n in enumerate(seg)}
    frees: list[list[tuple[int, int]]] = [[] for _ in seg]
    for k, n in enumerate(seg):
        if stays_live(n):
            continue
        if succ_mask[k] == 0:  # nobody reads it: it dies right after its own step
            frees[k].append((0, out_bytes[n]))
        for s in G.successors(n):
            frees[position[s]].append((succ_mask[k], out_bytes[n]))
    for p in sorted(external, key=rank.__getitem__):
        live_at_start += out_bytes[p]
        if not stays_live(p):
            mask = external[p]
            for k in range(len(seg)):
                if mask >> k & 1:
                    frees[k].append((mask, out_bytes[p]))
    lower_bound = max(
        out_bytes[n] + scratch.get(n, 0) + sum(out_bytes[p] for p in G.predecessors(n)) for n in seg)
    return _Problem(seg, step_extra, [scratch.get(n, 0) for n in seg], pred_mask, succ_mask,
                    frees, live_at_start, lower_bound)


def _step_bytes(pb: _Problem, order_bits: Sequence[int]) -> list[int]:
    """Bytes live during each step of running the problem's nodes in the given order."""
    done, live, profile = 0, pb.live_at_start, []
    for k in order_bits:
        step = live + pb.step_extra[k]
        profile.append(step)
        done |= 1 << k
        live = step - pb.scratch[k] - sum(b for mask, b in pb.frees[k] if mask & ~done == 0)
    return profile


def _run(pb: _Problem, order_bits: Sequence[int]) -> int:
    return max(_step_bytes(pb, order_bits), default=0)


def _greedy(pb: _Problem) -> tuple[list[int], int]:
    """Run next the ready node with the smallest step, then the smallest live bytes after it.
    Also returns how many (state, ready node) pairs it looked at, to size a beam search."""
    n = len(pb.nodes)
    done, live, order, looked_at = 0, pb.live_at_start, [], 0
    for _ in range(n):
        best = None
        for k in range(n):
            if not (done >> k & 1) and pb.pred_mask[k] & ~done == 0:
                looked_at += 1
                step = live + pb.step_extra[k]
                after_done = done | 1 << k
                after = step - pb.scratch[k] - sum(b for m, b in pb.frees[k] if m & ~after_done == 0)
                key = (step, after, k)
                if best is None or key < best[0]:
                    best = (key, k, after)
        _, k, live = best
        done |= 1 << k
        order.append(k)
    return order, looked_at


def _dp(pb: _Problem, upper: int, max_states: int | None, transitions_limit: int | None):
    """Layered DP. Returns (order or None, exact, transitions): order is None when no order has a
    peak below ``upper``; exact is False when a layer was trimmed to ``max_states``. Raises
    _OutOfBudget when ``transitions_limit`` is passed."""
    n = len(pb.nodes)
    full = (1 << n) - 1
    ready0 = 0
    for k in range(n):
        if pb.pred_mask[k] == 0:
            ready0 |= 1 << k
    # state: done mask -> (peak, live bytes after, ready mask, parent mask, node run last)
    layer = {0: (0, pb.live_at_start, ready0, -1, -1)}
    history = []
    exact = True
    transitions = 0
    for _ in range(n):
        nxt: dict[int, tuple[int, int, int, int, int]] = {}
        for done, (peak, live, ready, _, _) in layer.items():
            r = ready
            while r:
                low = r & -r
                r ^= low
                k = low.bit_length() - 1
                step = live + pb.step_extra[k]
                new_peak = peak if peak > step else step
                if new_peak >= upper:
                    continue
                new_done = done | low
                prev = nxt.get(new_done)
                if prev is not None and prev[0] <= new_peak:
                    continue
                after = step - pb.scratch[k]
                for mask, nbytes in pb.frees[k]:
                    if mask & ~new_done == 0:
                        after -= nbytes
                new_ready = ready ^ low
                s = pb.succ_mask[k]
                while s:
                    sl = s & -s
                    s ^= sl
                    j = sl.bit_length() - 1
                    if pb.pred_mask[j] & ~new_done == 0:
                        new_ready |= sl
                nxt[new_done] = (new_peak, after, new_ready, done, k)
            transitions += bin(ready).count("1")
            if transitions_limit is not None and transitions > transitions_limit:
                raise _OutOfBudget(transitions)
        if not nxt:
            return None, exact, transitions
        if max_states is not None and len(nxt) > max_states:
            exact = False
            kept = sorted(nxt.items(), key=lambda item: (item[1][0], item[1][1], item[0]))[:max_states]
            nxt = dict(kept)
        history.append(nxt)
        layer = nxt
    order, done = [], full
    for states in reversed(history):
        _, _, _, parent, k = states[done]
        order.append(k)
        done = parent
    order.reverse()
    return order, exact, transitions


class _OutOfBudget(Exception):
    pass


def _solve(pb: _Problem, budget: int) -> tuple[list[int], bool, int]:
    """Best order of one problem: (order as indices into pb.nodes, exact, transitions spent)."""
    n = len(pb.nodes)
    if n <= 1:
        return list(range(n)), True, 0
    greedy, transitions_per_state = _greedy(pb)
    best = min([list(range(n)), greedy], key=lambda o: _run(pb, o))  # ties keep the initial order
    upper = _run(pb, best)
    if upper <= pb.lower_bound:
        return best, True, 0
    try:
        order, exact, spent = _dp(pb, upper, None, budget // 2)
    except _OutOfBudget as e:
        spent = e.args[0]
        # Beam states have more ready nodes than the greedy path, and trimming sorts: count it double.
        width = min(BEAM_WIDTH, max(1, (budget - spent) // max(1, 2 * transitions_per_state)))
        order, exact, more = _dp(pb, upper, width, None)
        spent += more
    return (order if order is not None else best), exact, spent


# --------------------------------------------------------------------------------------------------
# Splitting at cut nodes.

def cut_points(G: nx.DiGraph, order: Sequence[Hashable] | None = None) -> list:
    """Nodes that every other node must precede or follow (ancestor or descendant of), in order."""
    order = list(order) if order is not None else initial_order(G)
    bit = {n: 1 << k for k, n in enumerate(order)}
    anc: dict = {}
    for n in order:
        m = 0
        for p in G.predecessors(n):
            m |= anc[p] | bit[p]
        anc[n] = m
    desc: dict = {}
    for n in reversed(order):
        m = 0
        for s in G.successors(n):
            m |= desc[s] | bit[s]
        desc[n] = m
    total = len(order)
    return [n for n in order if bin(anc[n]).count("1") + bin(desc[n]).count("1") + 1 == total]


def search_order(
    G: nx.DiGraph,
    out_bytes: Mapping[Hashable, int],
    scratch_bytes: Mapping[Hashable, int] | None = None,
    time_budget_s: float = 1.0,
    decompose: bool = True,
) -> OrderResult:
    """``best_order`` with details: the peak, and whether the order is proven optimal."""
    _check_inputs(G, out_bytes)
    scratch = dict(scratch_bytes or {})
    init = initial_order(G)
    if not init:
        return OrderResult([], 0, True)
    rank = {n: k for k, n in enumerate(init)}
    cuts = cut_points(G, init) if decompose else []
    segments = _segments(init, cuts)
    budget = max(1, int(time_budget_s * TRANSITIONS_PER_SECOND))
    solved: dict[int, list] = {}
    exact = True
    # Smallest segments first: they are cheap, and what they leave over goes to the big ones.
    by_size = sorted(range(len(segments)), key=lambda s: (len(segments[s]), s))
    for done_count, s in enumerate(by_size):
        seg = segments[s]
        pb = _segment_problem(G, seg, rank, out_bytes, scratch)
        share = budget // (len(segments) - done_count)
        seg_order, seg_exact, spent = _solve(pb, share)
        budget = max(0, budget - spent)
        solved[s] = [pb.nodes[k] for k in seg_order]
        exact = exact and seg_exact
    order = [n for s in range(len(segments)) for n in solved[s]]
    peak = peak_bytes(G, order, out_bytes, scratch)
    init_peak = peak_bytes(G, init, out_bytes, scratch)
    if init_peak <= peak:
        return OrderResult(init, init_peak, exact)
    return OrderResult(order, peak, exact)


def best_order(
    G: nx.DiGraph,
    out_bytes: Mapping[Hashable, int],
    scratch_bytes: Mapping[Hashable, int] | None = None,
    time_budget_s: float = 1.0,
) -> list:
    """A topological order of ``G`` with minimal peak memory (optimal unless the budget ran out)."""
    return search_order(G, out_bytes, scratch_bytes, time_budget_s).order


def _segments(init: list, cuts: list) -> list[list]:
    """Split the initial order into runs of nodes between cut points; every cut is its own run."""
    cut_set = set(cuts)
    segments, current = [], []
    for n in init:
        if n in cut_set:
            if current:
                segments.append(current)
            segments.append([n])
            current = []
        else:
            current.append(n)
    if current:
        segments.append(current)
    return segments


def _check_inputs(G: nx.DiGraph, out_bytes: Mapping[Hashable, int]) -> None:
    if not nx.is_directed_acyclic_graph(G):
        raise ValueError("the step graph has a cycle")
    missing = [n for n in G.nodes if n not in out_bytes]
    if missing:
        raise ValueError(f"out_bytes has no size for {missing[:5]}")
