"""Self-gated activation fusion (issue 15): x * HardSigmoid(x) and x * Sigmoid(x) as one lookup
table (passes/fuse.fuse_self_gating), measured on the zoo's MobileNetV3-style net exported the way
torch writes hard-swish at opset 13 (HardSigmoid + Mul) against the same export without the fusion
and against the opset-17 export (one HardSwish op).

    python benchmarks/bench_fusion.py [--size 112] [--skip-qemu]

Prints peak SRAM, flash and (with arm-none-eabi-gcc and qemu-system-arm) Cortex-M4 instructions
per inference for each build.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def export(size: int, opset: int, out: Path) -> Path:
    import torch

    from zoo import ZOO

    model, _ = ZOO["mbv3"]()
    path = out / f"mbv3_{size}_opset{opset}.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, size, size),), str(path), opset_version=opset, dynamo=False)
    return path


def build(path: Path, calib: Path, fused: bool, target: str | None) -> dict:
    import tinycc
    from tinycc.passes import pipeline

    saved = pipeline.PIPELINE
    if not fused:
        pipeline.PIPELINE = [p for p in saved if p[0] != "fuse_self_gating"]
    try:
        m = tinycc.compile(path, calib=calib, sram="4M", target=target)
    finally:
        pipeline.PIPELINE = saved
    ins = (m.report.get("instructions") or {}).get("per_inference")
    return dict(peak=m.report["peak_sram_bytes"], flash=m.report["flash_bytes"], ins=ins)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=112, help="input height and width (default 112)")
    ap.add_argument("--skip-qemu", action="store_true", help="no Cortex-M4 instruction counts")
    args = ap.parse_args()
    qemu = not args.skip_qemu and shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")
    target = "cortex-m4" if qemu else None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        calib = out / "calib.npy"
        np.save(calib, np.random.default_rng(0).normal(0, 1, (4, 3, args.size, args.size)).astype(np.float32))
        rows = [("opset 13 (x * HardSigmoid(x)), fusion off", export(args.size, 13, out), False),
                ("opset 13 (x * HardSigmoid(x)), fused", export(args.size, 13, out), True),
                ("opset 17 (HardSwish op)", export(args.size, 17, out), True)]
        print(f"MobileNetV3-style zoo net (tests/zoo.py 'mbv3') at {args.size}x{args.size}, int8")
        print(f"| build | peak SRAM (B) | flash (B) | M4 instructions |\n|---|---:|---:|---:|")
        for label, path, fused in rows:
            r = build(path, calib, fused, target)
            ins = f"{r['ins']:,}" if r["ins"] else "n/a (no arm toolchain/QEMU)"
            print(f"| {label} | {r['peak']:,} | {r['flash']:,} | {ins} |")


if __name__ == "__main__":
    main()
