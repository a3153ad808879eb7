"""The operator-coverage models of issue 14 (tests/zoo.py OPS_ZOO), compiled to int8.

    python benchmarks/bench_ops.py [--exporter torchscript|dynamo] [--skip-qemu] [--models a,b]

Per model: the peak SRAM (the planned arena) next to the independent layer-by-layer bound (the
most bytes any one step keeps live: its inputs, outputs and scratch, compiler.arena_lower_bound;
no plan can go below it), flash (weights, tables and params structs), int8 vs float SQNR on the
example input plus 7 random N(0, 1) inputs, golden == host C, and the instructions of one
inference on a Cortex-M4 under QEMU (with the M4 outputs checked against the golden model).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import zoo  # noqa: E402
from tinycc.compiler import QuantOptions, arena_lower_bound  # noqa: E402
from tinycc.engines import CompiledModel  # noqa: E402
from tinycc.frontend import load_graph  # noqa: E402
from tinycc.passes import run_pipeline  # noqa: E402
from tinycc.reference.float_exec import run_float  # noqa: E402

CALIBRATION_SAMPLES = 16
EVAL_SAMPLES = 8


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    return float(10 * np.log10((ref ** 2).sum() / max(((got - ref) ** 2).sum(), 1e-30)))


def measure(name: str, exporter: str, tmp: Path, qemu: bool) -> dict:
    t0 = time.perf_counter()
    path = zoo.export(name, exporter, tmp)
    model, (example,) = zoo.OPS_ZOO[name]()
    example = example.numpy()
    in_name, out_name = zoo.input_names(model)[0], zoo.output_names(model)[0]
    g = run_pipeline(load_graph(path))
    rng = np.random.default_rng(0)  # the calibration of tests/test_zoo_new_models.py
    calib = tmp / f"{name}_calib.npy"
    np.save(calib, rng.normal(0, 1, (CALIBRATION_SAMPLES, *example.shape)).astype(np.float32))
    compiled = CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)
    samples = [example] + [rng.normal(0, 1, example.shape).astype(np.float32) for _ in range(EVAL_SAMPLES - 1)]
    refs, gots, c_equal = [], [], True
    for x in samples:
        golden = compiled.run_int8({in_name: x})
        c_out, _ = compiled.run_c({in_name: x})
        c_equal &= all(np.array_equal(c_out[k], v) for k, v in golden.items())
        refs.append(run_float(g, {in_name: x})[out_name].ravel())
        gots.append(compiled.logical(out_name, golden[out_name], True).ravel())
    program, mem = compiled.program, compiled.mem
    row = dict(model=name, exporter=exporter, steps=len(program.steps), macs=program.macs,
               arena=mem.arena_bytes, bound=arena_lower_bound(program)[0], flash=program.flash_bytes,
               sqnr=sqnr_db(np.concatenate(refs), np.concatenate(gots)), c_equal=c_equal,
               kernels=sorted({s.kernel for s in program.steps}), m4=None, m4_equal=None)
    if qemu:
        outs, run = compiled.run_qemu({in_name: example}, "cortex-m4")
        golden = compiled.run_int8({in_name: example})
        row.update(m4=run.instructions, m4_equal=all(np.array_equal(outs[k], v) for k, v in golden.items()))
    row["seconds"] = time.perf_counter() - t0
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exporter", choices=zoo.EXPORTERS, default="torchscript")
    ap.add_argument("--skip-qemu", action="store_true")
    ap.add_argument("--models", default=",".join(zoo.OPS_ZOO))
    args = ap.parse_args()
    qemu = not args.skip_qemu
    if qemu:
        from tinycc.sim.qemu import missing_tools

        if missing_tools(run=True):
            print(f"QEMU column skipped: {missing_tools(run=True)}")
            qemu = False
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_ops_") as tmp, zoo.single_threaded():
        for name in args.models.split(","):
            rows.append(measure(name, args.exporter, Path(tmp), qemu))
    print(f"\nOperator-coverage models, int8, {args.exporter} export "
          f"({CALIBRATION_SAMPLES} calibration samples, SQNR over {EVAL_SAMPLES} inputs)\n")
    print("| model | steps | MACs | peak SRAM (arena) | layer-by-layer bound | flash | SQNR | C == golden "
          "| M4 instructions | M4 == golden |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---|")
    for r in rows:
        m4 = f"{r['m4']:,}" if r["m4"] is not None else "—"
        m4_eq = {None: "—", True: "yes", False: "**NO**"}[r["m4_equal"]]
        print(f"| {r['model']} | {r['steps']} | {r['macs']:,} | {r['arena']:,} B | {r['bound']:,} B | "
              f"{r['flash']:,} B | {r['sqnr']:.1f} dB | {'yes' if r['c_equal'] else '**NO**'} | {m4} | {m4_eq} |")
    print()
    for r in rows:
        print(f"{r['model']}: {', '.join(r['kernels'])} ({r['seconds']:.1f} s)")
    ok = all(r["c_equal"] and r["m4_equal"] is not False for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
