"""Compiler scaling: graph queries are answered from an index that follows every mutation path
(never stale), constant blobs are deduplicated through a hash index (same names as comparing with
every blob), and a deep chain compiles with a bounded number of full index rebuilds."""
from __future__ import annotations

import random
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

from tinycc import ir
from tinycc.ir import Graph, Node, Tensor
from tinycc.program import Program, c_identifier

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


def scan_consumers(g: Graph) -> dict[str, list[int]]:
    uses: dict[str, list[int]] = {}
    for n in g.nodes:
        for t in n.inputs:
            if t:
                uses.setdefault(t, []).append(id(n))
    return {t: sorted(v) for t, v in uses.items()}


def assert_index_matches_scan(g: Graph) -> None:
    got = {t: sorted(id(n) for n in ns) for t, ns in g.consumers().items()}
    assert got == scan_consumers(g)
    for i, n in enumerate(g.nodes):
        assert g.node_index(n) == i
        assert g.has_node_named(n.name)
        for t in n.outputs:
            assert g.producer(t) is next(m for m in g.nodes if t in m.outputs)
    assert g.producers() == {t: n for n in g.nodes for t in n.outputs}


def random_graph(rng: random.Random, n: int) -> Graph:
    g = Graph()
    g.add_tensor(Tensor("x", (1,)))
    g.inputs = ["x"]
    names = ["x"]
    for k in range(n):
        ins = [rng.choice(names) for _ in range(rng.randint(1, 3))]
        g.add_tensor(Tensor(f"t{k}", (1,)))
        g.add_node(Node(f"n{k}", "Add", ins, [f"t{k}"]))
        names.append(f"t{k}")
    return g


def mutate(rng: random.Random, g: Graph, k: int) -> None:
    """One of the ways passes change a graph, the in-place list edits included."""
    node = rng.choice(g.nodes)
    tensors = ["x"] + [t for n in g.nodes for t in n.outputs]
    choice = k % 10
    if choice == 0:
        node.inputs[0] = rng.choice(tensors)
    elif choice == 1:
        node.inputs.append(rng.choice(tensors))
    elif choice == 2 and len(node.inputs) > 1:
        node.inputs.pop()
    elif choice == 3:
        node.inputs = [rng.choice(tensors)]
    elif choice == 4:
        node.outputs = [f"new{k}"]
    elif choice == 5:
        g.remove_node(node)
    elif choice == 6:
        g.add_node(Node(f"m{k}", "Add", [rng.choice(tensors)], [f"m{k}_out"]), rng.randrange(len(g.nodes) + 1))
    elif choice == 7:
        node.name = f"renamed{k}"
    elif choice == 8:
        g.replace_uses(rng.choice(tensors), rng.choice(tensors))
    else:
        g.nodes = list(reversed(g.nodes))


@pytest.mark.parametrize("seed", range(6))
def test_graph_index_follows_every_mutation(seed):
    rng = random.Random(seed)
    g = random_graph(rng, 30)
    assert_index_matches_scan(g)
    for k in range(200):
        mutate(rng, g, rng.randrange(10))
        if rng.random() < 0.7:  # queries between mutations keep the index incremental
            assert_index_matches_scan(g)
    assert_index_matches_scan(g)
    copy = g.copy()
    mutate(rng, copy, 0)
    assert_index_matches_scan(copy)
    assert_index_matches_scan(g)


def test_graph_index_is_read_only():
    g = random_graph(random.Random(1), 5)
    with pytest.raises(TypeError):
        g.consumers()["x"] = ()
    with pytest.raises(AttributeError):
        g.consumers()["x"].append(g.nodes[0])


def add_blob_by_comparison(blobs: dict, data: np.ndarray, hint: str) -> str:
    """add_blob as it was: compare with every stored blob (the specification of the index)."""
    data = np.ascontiguousarray(data)
    for name, existing in blobs.items():
        if existing.dtype == data.dtype and existing.shape == data.shape and np.array_equal(existing, data):
            return name
    base = c_identifier(hint)
    name, k = base, 1
    while name in blobs:
        k += 1
        name = f"{base}_{k}"
    blobs[name] = data
    return name


def test_add_blob_names_as_comparing_with_every_blob():
    rng = np.random.default_rng(0)
    pool = [np.array([0.0, 1.0], np.float32), np.array([-0.0, 1.0], np.float32),
            np.array([np.nan], np.float32), np.array([1, 2], np.int32), np.array([1, 2], np.int8),
            np.array([[1, 2]], np.int32), np.zeros(0, np.int8), np.arange(6, dtype=np.int32)[::2]]
    program, expected = Program("m"), {}
    for k in range(300):
        data = pool[rng.integers(len(pool))] if rng.random() < 0.6 else rng.integers(-2, 2, rng.integers(1, 3)).astype(np.int8)
        hint = ["w", "bias", "mult"][k % 3]
        assert program.add_blob(data, hint) == add_blob_by_comparison(expected, data, hint)
    assert list(program.blobs) == list(expected)
    program.blobs["direct"] = np.array([7, 7], np.int16)  # changed behind add_blob's back
    assert program.add_blob(np.array([7, 7], np.int16), "x") == "direct"
    del program.blobs["direct"]
    assert program.add_blob(np.array([7, 7], np.int16), "x") == "x"


def test_deep_chain_compiles_with_few_index_rebuilds(tmp_path):
    """Every pass, lowering and planning step of a 300-layer chain together rebuild the graph index
    a bounded number of times (before: one full scan per query, quadratic in depth)."""
    import onnx_gen
    import tinycc

    path = tmp_path / "chain.onnx"
    onnx.save(onnx_gen.chain(300), path)
    before = ir._GraphIndex.builds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tinycc.compile(path, sram="16M", flash="64M", calib_samples=2)
    rebuilds = ir._GraphIndex.builds - before
    assert model.report["arena_bytes"] > 0
    assert rebuilds <= 60, rebuilds
