"""Arena bytes in use per step (memory.lifetimes.occupied_bytes) and benchmarks/bench_patches.py's
per-stage figures built on it: buffers placed over one another (partial row overlaps, elided
concat parts) count once, so no step is above the arena, unlike the plain sum of live bytes."""
from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.memory.lifetimes import occupied_bytes
from tinycc.memory.planner import Buffer
from tinycc.passes import run_pipeline
from tinycc.schedule.patches import PatchConfig, stage_limit
from tinycc.schedule.search import PatchOptions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_patches  # noqa: E402


def test_occupied_bytes_counts_overlapping_buffers_once():
    # a: steps 1..3 at 0..100; b: steps 2..3 at 60..160 (40 bytes over a); c: step 3 apart at 200
    mem = SimpleNamespace(buffers=[Buffer("a", 100, 1, 3), Buffer("b", 100, 2, 3), Buffer("c", 16, 3, 4)],
                          offsets={"a": 0, "b": 60, "c": 200}, live_bytes=[0, 0, 0, 0])
    assert occupied_bytes(mem) == [100, 160, 176, 16]


def test_stage_peaks_of_bench_patches_stay_within_the_arena(zoo_models, capsys):
    """mbv2 (zoo) with a patch stage over its first blocks: the layers after the stage overlap their
    input rows, and the sum of live bytes there exceeds the arena."""
    path, inputs = zoo_models[("mbv2", "torchscript")]
    g = run_pipeline(load_graph(path, {k: v.shape for k, v in inputs.items()}))
    layer_by_layer = CompiledModel(g, QuantOptions(), warn=lambda m: None, patching=PatchOptions("off"))
    split = min(stage_limit(layer_by_layer.program).splits)
    patched = CompiledModel(g, QuantOptions(), warn=lambda m: None,
                            patching=PatchOptions("forced", PatchConfig(split, 2, 2)))
    mem = patched.mem
    assert max(mem.live_bytes) > mem.arena_bytes  # the double counting this guards against
    bench_patches.stages(patched.program, mem)
    printed = capsys.readouterr().out
    peaks = [int(v.replace(",", "")) for v in re.findall(r"peak in use ([\d,]+) B", printed)]
    assert len(peaks) == 2 and max(peaks) <= mem.arena_bytes, printed
    assert max(peaks) == max(occupied_bytes(mem)), printed
