#!/usr/bin/env python3
"""MLPerf Tiny: compile time, memory, flash and host speed of tinycc next to TFLite Micro and
TinyEngine (figures from ../shared/models/mlperf_tiny/peers.json).

    python benchmarks/bench_mlperf.py            # both float (PTQ) and QDQ models
    python benchmarks/bench_mlperf.py --qdq      # pre-quantized models only

Columns
  compile s   load + passes + quantization (+ calibration on samples.npz) + lowering + planning
  no reuse    every activation buffer separate (what a planner without reuse needs)
  lifetimes   best arena with lifetime-based reuse only (no in-place, no overlap, no reordering)
  tinycc      peak_sram_bytes: the arena with reordering, in-place and row overlap (I/O inside)
  lower bnd   largest sum of simultaneously live buffers under the chosen order
  TFLM head   TFLite Micro arena head (activations + scratch); TinyEngine PEAK_MEM (incl. I/O)
  flash       weights + constants (+ params structs) vs the .tflite file size
  host us     one inference of the generated C on this machine (gcc -O2), mean of repeats
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MLPERF = ROOT.parent / "shared" / "models" / "mlperf_tiny"
MODELS = ["ic_resnet8", "vww_mobilenetv1_025", "kws_dscnn", "ad_autoencoder"]


def compile_one(path: Path, calib: Path | None):
    from tinycc.compiler import QuantOptions, build_program
    from tinycc.frontend import load_graph
    from tinycc.memory.lifetimes import plan_memory
    from tinycc.passes import run_pipeline

    t0 = time.perf_counter()
    g = run_pipeline(load_graph(path))
    program = build_program(g, QuantOptions(calib=str(calib) if calib else None), warn=lambda m: None)
    mem = plan_memory(program)
    seconds = time.perf_counter() - t0
    import copy

    plain = plan_memory(copy.deepcopy(program), inplace=False, reorder=False, overlap=False)
    return g, program, mem, plain, seconds


def host_time_us(program, mem, x, repeat: int = 50) -> float:
    from tinycc.codegen.emit import generate_project, write_files
    from tinycc.lower import quantize_inputs
    from tinycc.sim.host import build

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_files(generate_project(program, mem, "model", "bench"), tmp)
        exe = build(tmp, "model")
        q = quantize_inputs(program, x)
        args = [str(exe), "--repeat", str(repeat)]
        for i, name in enumerate(program.inputs):
            (tmp / f"in{i}.bin").write_bytes(q[name].tobytes())
            args.append(str(tmp / f"in{i}.bin"))
        args += [str(tmp / f"out{i}.bin") for i in range(len(program.outputs))]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        return float(re.search(r"invoke_us=([0-9.]+)", out).group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qdq", action="store_true", help="only the pre-quantized QDQ models")
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    if not MLPERF.is_dir():
        print(f"skipped: {MLPERF} not found (the MLPerf Tiny models live in ../shared)")
        return 0
    peers = json.loads((MLPERF / "peers.json").read_text())
    samples = np.load(MLPERF / "samples.npz")
    head = (f"{'model':<22} {'kind':<5} {'compile s':>9} {'no reuse':>9} {'lifetimes':>9} {'tinycc':>8} "
            f"{'lower bnd':>9} {'TFLM head':>9} {'TinyEng':>8} {'flash':>8} {'.tflite':>8} {'host us':>8}")
    print(head)
    print("-" * len(head))
    kinds = ["qdq"] if args.qdq else ["float", "qdq"]
    for name in MODELS:
        for kind in kinds:
            if kind == "qdq":
                path, calib = MLPERF / f"{name}_qdq.onnx", None
                x = samples[f"{name}_int8"][:1]
            else:
                nhwc = MLPERF / f"{name}_nhwc.onnx"
                path = nhwc if nhwc.exists() else MLPERF / f"{name}.onnx"
                calib = Path(tempfile.mkdtemp()) / "calib.npy"
                np.save(calib, samples[f"{name}_float"])
                x = samples[f"{name}_float"][:1]
            g, program, mem, plain, seconds = compile_one(path, calib)
            us = host_time_us(program, mem, {g.inputs[0]: x}, args.repeat)
            te = peers["tinyengine"].get(name, {}).get("peak_mem")
            p = peers["models"][name]
            print(f"{name:<22} {kind:<5} {seconds:>9.2f} {mem.no_reuse_bytes:>9,} {plain.arena_bytes:>9,} "
                  f"{mem.arena_bytes:>8,} {mem.plan.lower_bound:>9,} {p['tflm_arena_head']:>9,} "
                  f"{(f'{te:,}' if te else 'n/a'):>8} {program.flash_bytes:>8,} {p['tflite_file_bytes']:>8,} {us:>8.1f}")
    print("\nTinyEngine figures: its own planner on the same int8 models (softmax removed; IC includes a "
          "73,728 B weight copy in SRAM); KWS is unsupported by TinyEngine.")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
