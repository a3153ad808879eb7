"""Which generated files differ between a git revision and the working tree.

    python benchmarks/compare_generated.py --base REV [CASE...]

Checks out REV into a temporary git worktree, compiles there every project of tests/generated.py
(this checkout's case list and compile procedure, that revision's tinycc, templates, runtime and
zoo), compiles the same projects with the working tree, and prints, per project, the files whose
digest differs (runtime/ is not compared, the build files without their runtime source names:
see tests/generated.py). Exit status 1 when something differs.

Use it before tests/data/update_generated_digests.py: after a rebase onto main, every difference
must come from main's own changes of the generated code.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "tests" / "generated.py"


def digests_at(tree: Path, cases: list[str], shared: Path) -> dict[str, dict[str, str]]:
    """Run tests/generated.py (this checkout's) against the tinycc of `tree`."""
    runner = tree / "tests" / "_compare_generated_runner.py"
    shutil.copyfile(GENERATED, runner)
    try:
        env = dict(os.environ, PYTHONPATH=str(tree), TINYCC_SHARED_DIR=str(shared))
        out = subprocess.run([sys.executable, str(runner), *cases], cwd=tree, env=env, check=True,
                             capture_output=True, text=True).stdout
    finally:
        runner.unlink()
    return json.loads(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="git revision to compare the working tree with")
    ap.add_argument("cases", nargs="*", help="case ids (default: all of tests/generated.py)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    import generated

    cases = args.cases or generated.cases()
    base_tree = Path(tempfile.mkdtemp(prefix="tinycc_base_")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_tree), args.base],
                   check=True, capture_output=True)
    try:
        before = digests_at(base_tree, cases, generated.SHARED_DIR)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)], check=True)
    after = digests_at(ROOT, cases, generated.SHARED_DIR)
    differ = 0
    for case in cases:
        a, b = before.get(case, {}), after.get(case, {})
        files = sorted(f for f in set(a) | set(b) if a.get(f) != b.get(f))
        if files:
            differ += 1
            print(f"{case}: " + ", ".join(f + ("" if f in a and f in b else " (only before)" if f in a else " (only after)")
                                         for f in files))
    print(f"{differ} of {len(cases)} projects differ from {args.base}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
