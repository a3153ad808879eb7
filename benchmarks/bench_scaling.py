"""Compile time against model size, and the peak of residual chains against their depth.

    python benchmarks/bench_scaling.py [--quick]

Models come from benchmarks/onnx_gen.py (onnx.helper, no torch): Conv3x3+Relu chains of 100, 400
and 1,600 layers, chains of identical residual blocks (16 KB maps) of 50, 100 and 400 blocks, and
MobileNetV2-1.0 at 224x224. Each is compiled in-process like `tinycc compile` (host target,
synthetic calibration with --calib-samples 2, so the figures measure the compiler, not the float
reference run) and timed in CPU seconds (time.process_time). Also printed: the number of full
graph-index rebuilds (tinycc.ir) and the peak SRAM with its lower bound.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import onnx_gen  # noqa: E402
import tinycc  # noqa: E402
from tinycc import ir  # noqa: E402


def measure(model: onnx.ModelProto, work: Path) -> tuple[float, int, dict]:
    path = work / f"{model.graph.name}.onnx"
    onnx.save(model, path)
    before = ir._GraphIndex.builds
    t0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = tinycc.compile(path, sram="256M", flash="1G", calib_samples=2)
    return time.process_time() - t0, ir._GraphIndex.builds - before, compiled.report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the smaller models")
    args = ap.parse_args()
    chains = (100, 400) if args.quick else (100, 400, 1600)
    blocks = (50, 100) if args.quick else (50, 100, 400)
    cases = [(f"chain {n} layers", lambda n=n: onnx_gen.chain(n)) for n in chains]
    cases += [(f"residual {n} blocks", lambda n=n: onnx_gen.residual_chain(n, hw=32)) for n in blocks]
    if not args.quick:
        cases.append(("MobileNetV2-1.0 224", lambda: onnx_gen.mobilenet_v2(1.0, 224)))
    print(f"{'model':<22} {'nodes':>6} {'CPU s':>7} {'s/node ms':>9} {'rebuilds':>8} {'peak B':>10} {'bound B':>10}  bound")
    with tempfile.TemporaryDirectory() as d:
        for label, make in cases:
            model = make()
            seconds, rebuilds, r = measure(model, Path(d))
            nodes = len(model.graph.node)
            print(f"{label:<22} {nodes:>6} {seconds:>7.2f} {1000 * seconds / nodes:>9.2f} {rebuilds:>8} "
                  f"{r['peak_sram_bytes']:>10,} {r['lower_bound_bytes']:>10,}  {r['lower_bound_kind']}", flush=True)


if __name__ == "__main__":
    main()
