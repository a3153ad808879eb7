"""Quality and speed of the memory planner and the order search on synthetic problems.

    python benchmarks/bench_planner.py [--budget 1.0] [--cases 8]

Arena planner: efficiency = lower_bound / arena (1.0 = provably optimal), for the best greedy planner
alone and for the full planner. Order search: peak of the initial order vs the searched one.
Also used to calibrate WORK_UNITS_PER_SECOND / TRANSITIONS_PER_SECOND (budget vs measured seconds).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import networkx as nx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinycc.schedule.order import initial_order, peak_bytes, search_order  # noqa: E402
from tinycc.memory.planner import GREEDY_PLANNERS, Buffer, assert_no_overlap, plan_arena  # noqa: E402


def random_intervals(rng: random.Random, n: int) -> list[Buffer]:
    """Comparable sizes (the hard case: no single buffer dominates), lifetimes up to n/4 steps."""
    out = []
    for k in range(n):
        first = rng.randrange(n)
        out.append(Buffer(f"b{k}", 16 * rng.randint(1, 1000), first, min(n - 1, first + rng.randint(0, n // 4)), 16))
    return out


def cnn_like(rng: random.Random, n: int) -> list[Buffer]:
    """A chain of layers with residual skips every few layers: each skip source lives 2-4 steps longer."""
    out, k = [], 0
    while k < n:
        size = 16 * rng.choice([rng.randint(10, 200), rng.randint(200, 4000)])
        extra = rng.choice([0, 0, 0, 2, 3, 4])
        out.append(Buffer(f"t{k}", size, k, min(n, k + 1 + extra), 16))
        k += 1
    return out


def bench_planner(budget: float, cases: int) -> None:
    rng = random.Random(2024)
    print(f"arena planner, time_budget_s={budget}")
    print(f"{'family':>10} {'n':>5} {'greedy eff':>11} {'final eff':>10} {'min eff':>8} {'mean s':>7} {'max s':>7}")
    for family, make in (("random", random_intervals), ("cnn", cnn_like)):
        for n in (10, 16, 30, 100, 300):
            greedy_eff, final_eff, times = [], [], []
            for _ in range(cases):
                buffers = make(rng, n)
                t0 = time.perf_counter()
                plan = plan_arena(buffers, time_budget_s=budget)
                times.append(time.perf_counter() - t0)
                assert_no_overlap(buffers, plan)
                greedy = min(plan.candidates[g] for g in GREEDY_PLANNERS)
                greedy_eff.append(plan.lower_bound / greedy)
                final_eff.append(plan.efficiency)
            print(f"{family:>10} {n:>5} {statistics.mean(greedy_eff):>11.4f} {statistics.mean(final_eff):>10.4f} "
                  f"{min(final_eff):>8.4f} {statistics.mean(times):>7.3f} {max(times):>7.3f}")


def random_dag(rng: random.Random, n: int, p: float) -> tuple[nx.DiGraph, dict, dict]:
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for v in range(1, n):
        preds = [u for u in range(v) if rng.random() < p] or [rng.randrange(v)]
        g.add_edges_from((u, v) for u in preds)
    for v in g.nodes:
        if g.out_degree(v) == 0:
            g.nodes[v]["is_output"] = True
    return g, {v: rng.randint(1, 1000) for v in g.nodes}, {v: rng.choice([0, 0, rng.randint(1, 300)]) for v in g.nodes}


def bench_order(budget: float, cases: int) -> None:
    rng = random.Random(7)
    print(f"\norder search, time_budget_s={budget}")
    print(f"{'n':>5} {'edge p':>7} {'peak/initial':>13} {'exact':>6} {'mean s':>7} {'max s':>7}")
    for n, p in ((12, 0.3), (20, 0.15), (30, 0.1), (60, 0.05), (150, 0.02)):
        ratios, exact, times = [], 0, []
        for _ in range(cases):
            g, out_bytes, scratch = random_dag(rng, n, p)
            t0 = time.perf_counter()
            result = search_order(g, out_bytes, scratch, time_budget_s=budget)
            times.append(time.perf_counter() - t0)
            ratios.append(result.peak / peak_bytes(g, initial_order(g), out_bytes, scratch))
            exact += result.exact
        print(f"{n:>5} {p:>7} {statistics.mean(ratios):>13.3f} {exact:>3}/{cases:<2} "
              f"{statistics.mean(times):>7.3f} {max(times):>7.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--cases", type=int, default=8)
    args = ap.parse_args()
    bench_planner(args.budget, args.cases)
    bench_order(args.budget, args.cases)


if __name__ == "__main__":
    main()
