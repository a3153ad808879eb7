"""What the NHWC layout pass leaves behind on the zoo models (tests/zoo.py ZOO and OPS_ZOO).

    python benchmarks/bench_layout.py [--models a,b] [--exporter torchscript|dynamo]

Per model, after the graph passes: the Transpose steps (how many, and the int8 bytes they write),
then int8 (calibrated on 16 N(0, 1) samples like tests/test_zoo_new_models.py): the planned arena
(peak SRAM) and whether the host C equals the golden model on the example input.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import zoo  # noqa: E402
from conftest import zoo_cache_dir  # noqa: E402
from tinycc.compiler import QuantOptions  # noqa: E402
from tinycc.engines import CompiledModel  # noqa: E402
from tinycc.frontend import load_graph  # noqa: E402
from tinycc.passes import run_pipeline  # noqa: E402

CALIBRATION_SAMPLES = 16


def measure(name: str, exporter: str, tmp: Path) -> dict:
    path = zoo_cache_dir() / f"{name}_{exporter}.onnx"
    if not path.exists():
        path = zoo.export(name, exporter, tmp)
    model, example = (zoo.ZOO[name] if name in zoo.ZOO else zoo.OPS_ZOO[name])()
    feeds = {n: t.numpy() for n, t in zip(zoo.input_names(model), example)}
    g = run_pipeline(load_graph(path))
    transposes = [n for n in g.nodes if n.op == "Transpose"]
    rng = np.random.default_rng(0)
    calib = tmp / f"{name}_calib.npz"
    np.savez(calib, **{n: rng.normal(0, 1, (CALIBRATION_SAMPLES, *x.shape)).astype(np.float32)
                       for n, x in feeds.items()})
    compiled = CompiledModel(g, QuantOptions(calib=str(calib)), warn=lambda m: None)
    golden = compiled.run_int8(feeds)
    c_out, _ = compiled.run_c(feeds)
    return dict(model=name, transposes=len(transposes),
                transpose_bytes=sum(int(np.prod(g.tensors[n.outputs[0]].shape)) for n in transposes),
                arena=compiled.mem.arena_bytes, c_equal=all(np.array_equal(c_out[k], v) for k, v in golden.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exporter", choices=zoo.EXPORTERS, default="torchscript")
    ap.add_argument("--models", default=",".join(list(zoo.ZOO) + list(zoo.OPS_ZOO)))
    args = ap.parse_args()
    print("| model | transposes | transposed bytes | peak SRAM (arena) | C == golden |")
    print("|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="bench_layout_") as tmp, zoo.single_threaded():
        for name in args.models.split(","):
            r = measure(name, args.exporter, Path(tmp))
            print(f"| {r['model']} | {r['transposes']} | {r['transpose_bytes']:,} B | {r['arena']:,} B | "
                  f"{'yes' if r['c_equal'] else '**NO**'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
