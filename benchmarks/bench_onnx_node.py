"""The full sweep of the ONNX backend node tests (onnx 1.19.0) for the operators tinycc supports.

Every selected node test runs as shipped and with its graph inputs after the first turned into
initializers (how exporters write weights, axes, pads and scales). Float engine: against the
shipped outputs (max|err| <= 1e-4 x max|ref|, integers exact) or a clear refusal. int8, where it
applies (the float engine passed, float I/O): the golden model against the generated host C, bit
for bit (all projects built into one shared library with -Wall -Wextra -Werror -pedantic).
Harness and outcome definitions: tests/onnx_node.py. The suite runs a slice of the int8 part
(tests/test_onnx_node.py; TINYCC_NODE_TESTS=all runs all of it).

Usage: python benchmarks/bench_onnx_node.py [--filter SUBSTRING] [--refusals]
  --refusals   also count the refusal reasons (first line of each message, numbers elided)
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import onnx_node as on  # noqa: E402


def _reason(detail: str) -> str:
    lines = [ln.strip() for ln in detail.splitlines() if ln.strip()]
    text = lines[1] if len(lines) > 1 and lines[0].endswith(":") else lines[0]  # "...:\n  - reason"
    text = re.sub(r"^\S+\.onnx: ", "", text)
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'", "'…'", text))[:150]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", default="", help="only node tests whose name contains this")
    parser.add_argument("--refusals", action="store_true", help="count the refusal reasons")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    try:
        root = on.node_tests_dir()
    except on.NodeTestsUnavailable as exc:
        print(f"ONNX node tests unavailable: {exc}", file=sys.stderr)
        return 1
    cases = [c for c in on.supported_cases(root) if args.filter in c.name]
    start = time.perf_counter()
    results, prepared = [], []
    with tempfile.TemporaryDirectory(prefix="tinycc_node_bench_") as tmp:
        work = Path(tmp)
        for case in cases:
            for variant in on.VARIANTS:
                if not on.has_variant(case, variant):
                    continue
                run = on.run_float_case(case, variant, work)
                results.append(run.result)
                if run.result.outcome == "pass" and on.int8_applies(run.graph, run.feeds):
                    p = on.prepare_int8(run)
                    (results if isinstance(p, on.Result) else prepared).append(p)
        float_s = time.perf_counter() - start
        results += on.run_int8_c_batch(prepared, work)
    total_s = time.perf_counter() - start
    print(f"ONNX backend node tests (onnx {on.NODE_TESTS_ONNX_VERSION}) for tinycc's supported operators: "
          f"{len(cases)} selected of {len(on.all_cases(root))}\n")
    print(on.summary_table(results))
    print(f"\nfloat + int8 golden: {float_s:.1f} s; with the C build and run: {total_s:.1f} s")
    bad = [r for r in results if r.outcome in ("wrong", "internal")]
    for r in bad:
        print(f"{r.engine} {r.outcome}: {r.key}: {r.detail}")
    for note in on.known_issue_notes(results):
        print(note)
    if args.refusals:
        for engine in ("float", "int8"):
            counts = Counter(_reason(r.detail) for r in results if r.engine == engine and r.outcome == "refused")
            print(f"\n{engine} refusals by reason:")
            for reason, n in counts.most_common():
                print(f"  {n:>4}  {reason}")
    return 1 if on.failures(results) else 0


if __name__ == "__main__":
    sys.exit(main())
