"""The planner on long chains: identical residual blocks need the same peak at any depth, the
overlap search does not give up on long chains of row-streaming layers, and lower_bound_bytes is
a true lower bound of what the planner may do (partial overlaps included), whichever plan won."""
from __future__ import annotations

import itertools
import sys
import warnings
from pathlib import Path

import onnx
import pytest

from tinycc.memory import lifetimes
from tinycc.memory.planner import Buffer, assert_valid_with_overlaps, plan_arena_with_overlaps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_memory_overlap import first_fit_with_overlaps  # noqa: E402


def compile_report(model: onnx.ModelProto, path: Path) -> dict:
    import tinycc

    onnx.save(model, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tinycc.compile(path, sram="64M", flash="512M", calib_samples=2).report


def test_residual_chains_of_any_depth_have_the_same_peak(tmp_path):
    """Identical residual blocks on 16 KB maps (x + Conv(Relu(Conv(x)))): the peak does not grow with
    depth (before: 33,792 B at 10 and 100 blocks, 49,152 B at 50, with the lifetime-only bound
    reported as lower bound, so the 50-block plan looked optimal)."""
    import onnx_gen

    reports = {n: compile_report(onnx_gen.residual_chain(n, hw=32), tmp_path / f"r{n}.onnx") for n in (50, 100, 400)}
    peaks = {n: r["peak_sram_bytes"] for n, r in reports.items()}
    assert set(peaks.values()) == {33792}, peaks
    for r in reports.values():
        assert r["lower_bound_bytes"] <= r["peak_sram_bytes"]
        assert r["lower_bound_kind"] == lifetimes.LIVE_BYTES_LESS_OVERLAPS


def capture_plans(monkeypatch) -> list:
    """The (buffers, pinned, overlaps) plan_memory hands to the overlap planner, per compile."""
    seen = []
    real = lifetimes.plan_arena_with_overlaps

    def spy(buffers, fixed, overlaps, time_budget_s=1.0, planners=None):
        seen.append((list(buffers), list(fixed), list(overlaps)))
        return real(buffers, fixed, overlaps, time_budget_s, planners)

    monkeypatch.setattr(lifetimes, "plan_arena_with_overlaps", spy)
    return seen


@pytest.mark.parametrize("blocks", [1, 2])
def test_reported_lower_bound_is_below_the_exhaustive_optimum(tmp_path, monkeypatch, blocks):
    """lower_bound_bytes <= the smallest arena any placement allowed to the planner reaches (brute force
    over first-fit orders, exact with shifts < 0; see test_memory_overlap)."""
    import onnx_gen

    seen = capture_plans(monkeypatch)
    report = compile_report(onnx_gen.residual_chain(blocks, hw=32), tmp_path / "m.onnx")
    buffers, pinned, overlaps = seen[-1]
    assert not pinned and len(buffers) <= 8
    best = min(first_fit_with_overlaps(buffers, overlaps, p) for p in itertools.permutations(buffers))
    assert report["lower_bound_bytes"] <= best <= report["peak_sram_bytes"]
