"""Execution order search: exact against brute force, decomposition, and the structures it exists for."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinycc.schedule.order import best_order, cut_points, initial_order, peak_bytes, search_order, step_bytes
from tinycc.schedule.order import _segment_problem, _step_bytes  # the search's own cost model

ROOT = Path(__file__).resolve().parent.parent


def graph(edges, sizes: dict, outputs=(), index: dict | None = None) -> nx.DiGraph:
    g = nx.DiGraph()
    for n in sizes:
        g.add_node(n, **({"index": index[n]} if index else {}))
    g.add_edges_from(edges)
    for n in outputs:
        g.nodes[n]["is_output"] = True
    return g


def assert_topological(g: nx.DiGraph, order) -> None:
    pos = {n: k for k, n in enumerate(order)}
    assert sorted(map(str, order)) == sorted(map(str, g.nodes)) and len(pos) == len(order)
    assert all(pos[u] < pos[v] for u, v in g.edges)


@st.composite
def small_dags(draw, max_nodes: int = 8):
    n = draw(st.integers(1, max_nodes))
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    percent = draw(st.sampled_from([15, 35, 70]))  # edge density
    for v in range(1, n):
        for u in range(v):
            if draw(st.integers(0, 99)) < percent:
                g.add_edge(u, v)
    for v in g.nodes:
        if g.out_degree(v) == 0 or draw(st.integers(0, 9)) == 0:
            g.nodes[v]["is_output"] = draw(st.booleans())
    out_bytes = {v: draw(st.one_of(st.integers(1, 1000), st.sampled_from([4, 8]))) for v in g.nodes}
    scratch = {v: draw(st.sampled_from([0, 0, 7, 300])) for v in g.nodes}
    return g, out_bytes, scratch


@st.composite
def block_graphs(draw, max_blocks: int = 10):
    """Chains of CNN-like blocks: plain layer, residual (identity or projection), SE, inception."""
    g, out_bytes = nx.DiGraph(), {}

    def node(size, *preds):
        v = f"n{len(out_bytes):03d}"
        g.add_node(v)
        out_bytes[v] = size
        g.add_edges_from((p, v) for p in preds)
        return v

    size = st.integers(8, 4096)
    x = node(draw(size))
    for _ in range(draw(st.integers(1, max_blocks))):
        kind = draw(st.sampled_from(["layer", "residual", "projection", "se", "inception"]))
        if kind == "layer":
            x = node(draw(size), x)
        elif kind in ("residual", "projection"):
            skip = node(draw(size), x) if kind == "projection" else x
            a = node(draw(size), x)
            b = node(out_bytes[skip], a)
            x = node(out_bytes[skip], skip, b)
        elif kind == "se":
            body = node(draw(size), x)
            gate = node(4, node(4, node(4, body)))
            x = node(out_bytes[body], body, gate)
        else:
            ends = []
            for _ in range(draw(st.integers(2, 4))):
                y = x
                for _ in range(draw(st.integers(1, 3))):
                    y = node(draw(size), y)
                ends.append(y)
            x = node(sum(out_bytes[e] for e in ends), *ends)
    g.nodes[x]["is_output"] = True
    return g, out_bytes


# --------------------------------------------------------------------------------------------------

def test_peak_bytes_by_hand():
    g = graph([("a", "b"), ("b", "c")], {"a": 10, "b": 20, "c": 30}, outputs=["c"])
    assert step_bytes(g, ["a", "b", "c"], {"a": 10, "b": 20, "c": 30}) == [10, 30, 50]
    assert peak_bytes(g, ["a", "b", "c"], {"a": 10, "b": 20, "c": 30}) == 50
    assert peak_bytes(g, ["a", "b", "c"], {"a": 10, "b": 20, "c": 30}, {"a": 100}) == 110
    # A second graph input read only at the end is live from step 0.
    g.add_edge("d", "c")
    sizes = {"a": 10, "b": 20, "c": 30, "d": 5}
    assert peak_bytes(g, ["a", "b", "d", "c"], sizes) == 55
    assert peak_bytes(g, ["d", "a", "b", "c"], sizes) == 55
    # An output nobody reads stays live to the end; a non-output nobody reads dies at once.
    g2 = graph([("a", "b"), ("a", "c")], {"a": 1, "b": 10, "c": 100}, outputs=["b"])
    assert peak_bytes(g2, ["a", "b", "c"], {"a": 1, "b": 10, "c": 100}) == 111
    g2.nodes["b"]["is_output"] = False
    assert peak_bytes(g2, ["a", "b", "c"], {"a": 1, "b": 10, "c": 100}) == 101


def test_equal_tensors_read_by_the_same_step_are_both_freed():
    # Regression: n001 and n003 (9 bytes each) are both last read by n004; the search once freed
    # only one of them and settled for 29 bytes.
    edges = [("n000", "n001"), ("n000", "n002"), ("n001", "n004"), ("n002", "n003"), ("n003", "n004"),
             ("n004", "n005"), ("n005", "n006"), ("n005", "n009"), ("n006", "n007"), ("n007", "n008"),
             ("n008", "n009"), ("n009", "n010")]
    sizes = {"n000": 8, "n001": 9, "n002": 11, "n003": 9, "n004": 9, "n005": 8, "n006": 4, "n007": 4,
             "n008": 4, "n009": 8, "n010": 8}
    g = graph(edges, sizes, outputs=["n010"])
    assert min(peak_bytes(g, o, sizes) for o in nx.all_topological_sorts(g)) == 28
    assert search_order(g, sizes, decompose=False).peak == 28


@settings(max_examples=100, deadline=None)
@given(small_dags(max_nodes=10), st.randoms(use_true_random=False))
def test_search_cost_model_agrees_with_peak_bytes(case, rng):
    g, out_bytes, scratch = case
    init = initial_order(g)
    rank = {n: k for k, n in enumerate(init)}
    problem = _segment_problem(g, init, rank, out_bytes, scratch)
    keys = {n: rng.random() for n in g.nodes}
    order = list(nx.lexicographical_topological_sort(g, key=keys.__getitem__))
    assert _step_bytes(problem, [rank[n] for n in order]) == step_bytes(g, order, out_bytes, scratch)


def test_peak_bytes_rejects_invalid_orders():
    g = graph([("a", "b")], {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="before its input"):
        peak_bytes(g, ["b", "a"], {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="every node"):
        peak_bytes(g, ["a"], {"a": 1, "b": 1})


@settings(max_examples=100, deadline=None)
@given(small_dags())
def test_exact_search_matches_brute_force(case):
    g, out_bytes, scratch = case
    brute = min(peak_bytes(g, o, out_bytes, scratch) for o in nx.all_topological_sorts(g))
    for decompose in (True, False):
        result = search_order(g, out_bytes, scratch, decompose=decompose)
        assert_topological(g, result.order)
        assert result.exact
        assert result.peak == peak_bytes(g, result.order, out_bytes, scratch) == brute
    assert best_order(g, out_bytes, scratch) == search_order(g, out_bytes, scratch).order


@settings(max_examples=40, deadline=None)
@given(block_graphs())
def test_decomposition_is_exact_on_block_graphs(case):
    g, out_bytes = case
    split = search_order(g, out_bytes)
    whole = search_order(g, out_bytes, decompose=False)
    assert split.exact and whole.exact
    assert split.peak == whole.peak
    assert_topological(g, split.order)
    assert split.peak <= peak_bytes(g, initial_order(g), out_bytes)


@settings(max_examples=30, deadline=None)
@given(block_graphs(), st.randoms(use_true_random=False))
def test_never_worse_than_a_given_order(case, rng):
    """Whatever order the caller's indices describe, the result is at least as good."""
    g, out_bytes = case
    other = list(nx.topological_sort(g))
    keys = {n: rng.random() for n in g.nodes}
    naive = list(nx.lexicographical_topological_sort(g, key=keys.__getitem__))
    for k, n in enumerate(naive):
        g.nodes[n]["index"] = k
    assert initial_order(g) == naive
    order = best_order(g, out_bytes)
    assert_topological(g, order)
    assert peak_bytes(g, order, out_bytes) <= peak_bytes(g, naive, out_bytes)
    assert peak_bytes(g, order, out_bytes) <= peak_bytes(g, other, out_bytes)


def test_residual_with_projection_shortcut():
    # x -> a -> b -> add, x -> s (1x1 projection) -> add. Running the big projection first keeps it
    # live across a and b.
    sizes = {"x": 16, "s": 64, "a": 32, "b": 64, "add": 16}
    g = graph([("x", "s"), ("x", "a"), ("a", "b"), ("s", "add"), ("b", "add")], sizes, outputs=["add"],
              index={"x": 0, "s": 1, "a": 2, "b": 3, "add": 4})
    assert peak_bytes(g, initial_order(g), sizes) == 160  # s, a and b at b's step
    order = best_order(g, sizes)
    assert order == ["x", "a", "b", "s", "add"]
    assert peak_bytes(g, order, sizes) == 144  # x, b and s at s's step
    assert cut_points(g) == ["x", "add"]


def test_inception_branches_run_one_after_another():
    # Breadth-first (the exporter's order here) holds both wide intermediates at once.
    sizes = {"x": 10, "p1": 100, "p2": 100, "q1": 1, "q2": 1, "cat": 2}
    edges = [("x", "p1"), ("x", "p2"), ("p1", "q1"), ("p2", "q2"), ("q1", "cat"), ("q2", "cat")]
    g = graph(edges, sizes, outputs=["cat"], index={n: k for k, n in enumerate(sizes)})
    assert initial_order(g) == ["x", "p1", "p2", "q1", "q2", "cat"]
    assert peak_bytes(g, initial_order(g), sizes) == 210
    result = search_order(g, sizes)
    assert result.order == ["x", "p1", "q1", "p2", "q2", "cat"] and result.peak == 111 and result.exact


def test_initial_order_is_kept_when_already_optimal():
    sizes = {"x": 1, "a": 1, "b": 1, "y": 1}
    g = graph([("x", "a"), ("x", "b"), ("a", "y"), ("b", "y")], sizes, outputs=["y"],
              index={"x": 0, "b": 1, "a": 2, "y": 3})
    assert best_order(g, sizes) == ["x", "b", "a", "y"]  # "a" < "b" by name, but the index decides


def test_large_graph_falls_back_to_beam_search():
    g = nx.DiGraph()
    sizes = {}
    width, depth = 12, 10  # 12 independent chains of 10 layers: far too many states for exact DP
    g.add_node("in")
    sizes["in"] = 8
    for c in range(width):
        prev = "in"
        for d in range(depth):
            v = f"c{c:02d}_{d}"
            sizes[v] = 50 + 37 * ((c * 7 + d * 3) % 11)
            g.add_edge(prev, v)
            prev = v
        g.add_edge(prev, "out")
    sizes["out"] = 8
    g.nodes["out"]["is_output"] = True
    result = search_order(g, sizes, time_budget_s=0.05)
    assert_topological(g, result.order)
    assert not result.exact
    assert result.peak == peak_bytes(g, result.order, sizes) <= peak_bytes(g, initial_order(g), sizes)


def test_invalid_graphs_are_rejected():
    g = nx.DiGraph([("a", "b"), ("b", "a")])
    with pytest.raises(ValueError, match="cycle"):
        best_order(g, {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="no size"):
        best_order(nx.DiGraph([("a", "b")]), {"a": 1})
    assert best_order(nx.DiGraph(), {}) == []


_DETERMINISM_SCRIPT = """
import json, random
import networkx as nx
from tinycc.schedule.order import search_order
rng = random.Random(5)
g = nx.DiGraph()
names = [f"t{k}" for k in range(40)]
g.add_nodes_from(names)
for v in range(1, 40):
    for u in rng.sample(range(v), min(v, rng.randint(1, 3))):
        g.add_edge(names[u], names[v])
g.nodes[names[-1]]["is_output"] = True
sizes = {n: rng.randint(1, 500) for n in names}
r = search_order(g, sizes, {n: rng.choice([0, 64]) for n in names}, time_budget_s=0.05)
print(json.dumps([r.order, r.peak, r.exact]))
"""


def test_orders_are_identical_across_processes():
    results = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        run = subprocess.run([sys.executable, "-c", _DETERMINISM_SCRIPT], env=env, capture_output=True,
                             text=True, check=True)
        results.append(json.loads(run.stdout))
    assert results[0] == results[1]
