"""A bounded, seeded slice of the model fuzzer (tests/fuzz/fuzz_models.py) in the suite.

Mutants of the small hand-made models and the digits example (no ../shared needed) go through
`tinycc compile` in forked children: none may end in an internal error, a timeout, a crash or a
message with a traceback, and every model that compiles must give C that builds with -Werror.
The big campaigns run from the command line (see the fuzzer's docstring).
"""
from __future__ import annotations

import shutil

import pytest

from fuzz.fuzz_models import FAILURES, format_table, make_case, run_campaign, seed_corpus, summarize

SEED = 20260517
CASES = 150


@pytest.fixture(scope="module")
def seeds():
    return seed_corpus(("builtin", "examples"))


def test_cases_are_deterministic_per_seed(seeds):
    first = [make_case(seeds, SEED, i) for i in range(20)]
    again = [make_case(seeds, SEED, i) for i in range(20)]
    assert [(c.data, c.options, c.mutations) for c in first] == [(c.data, c.options, c.mutations) for c in again]
    other = [make_case(seeds, SEED + 1, i) for i in range(20)]
    assert [c.data for c in first] != [c.data for c in other]


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) to build the generated projects")
def test_fuzz_slice_has_no_internal_errors_and_builds(seeds, tmp_path):
    outcomes = run_campaign(seeds, SEED, list(range(CASES)), tmp_path, jobs=1, timeout=60)
    summary = summarize(outcomes)
    failing = [o for o in outcomes if o.category in FAILURES]
    report = format_table(summary) + "".join(
        f"\ncase {o.index} ({o.seed_model}) {o.category} {o.status}: {o.mutations}\n{o.stderr[-600:]}{o.detail[-1500:]}"
        for o in failing[:5])
    assert not failing, report
    # the slice must exercise both sides: models that compile and build, and clear refusals
    assert summary["categories"]["ok"] >= CASES // 10, report
    assert summary["categories"]["exit2"] >= CASES // 10, report
