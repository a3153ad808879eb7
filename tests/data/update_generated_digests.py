"""Regenerate tests/data/generated_digests.json: the sha256 of every generated file (outside
runtime/) of the projects listed in tests/generated.py, host and cortex-m4.

Run it ONLY when a change of the generated code is intended (a template, the lowering, the
planner, a report field), after checking with `python benchmarks/compare_generated.py --base REV`
that every differing file differs for that reason. A refactoring must leave the digests as they
are: tests/test_generated_identical.py fails on any difference.

    PYTHONPATH=. python tests/data/update_generated_digests.py [CASE...]   (a few minutes)

With CASE arguments only those entries are replaced; the others are kept.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent
sys.path.insert(0, str(DATA.parent))

import generated  # noqa: E402

DIGESTS = DATA / "generated_digests.json"


def main(argv: list[str]) -> int:
    known = json.loads(DIGESTS.read_text()) if DIGESTS.exists() and argv else {}
    for case in argv or generated.cases():
        print(case, file=sys.stderr)
        known[case] = generated.case_digests(case)
    DIGESTS.write_text(json.dumps(dict(sorted(known.items())), indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(known)} projects to {DIGESTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
