"""tinycc demo (`make demo`): compile the bundled digits CNN to C, build it, run it, validate it.

1. compile examples/digits_cnn.onnx with examples/digits_calib.npy into demo_out/ (the Python
   API; the same as `tinycc compile examples/digits_cnn.onnx --calib examples/digits_calib.npy
   -o demo_out --name digits --force`) and print its report (demo_out/report.md)
2. build the generated project with its Makefile and the host C compiler (`make -C demo_out`)
   and run the harness on one test image (raw int8 files in and out)
3. validate on the 360 held-out test digits (`tinycc validate ... --data examples/digits_test.npz
   --labels labels`): accuracy of tinycc's float engine, its int8 golden model and the generated
   C, and whether golden and C agree bit for bit on every image

Needs only numpy and tinycc at run time (plus make and a C compiler): no torch, onnxruntime or
scikit-learn.
Usage: python examples/demo.py [--out DIR] [--cc CC]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODEL = HERE / "digits_cnn.onnx"
CALIB = HERE / "digits_calib.npy"
TEST = HERE / "digits_test.npz"
PREFIX = "digits"


def build_project(out: Path, cc: str | None) -> Path:
    env = dict(os.environ, **({"CC": cc} if cc else {}))
    print(f"$ make -C {out}", flush=True)
    subprocess.run(["make", "-s", "-C", str(out)], check=True, env=env)
    return out / f"{PREFIX}_host"


def run_harness(exe: Path, x: np.ndarray, output_size: int) -> np.ndarray:
    """The harness on one quantized input: raw int8 file in, raw int8 file out."""
    with tempfile.TemporaryDirectory(prefix="tinycc_demo_") as tmp:
        src, dst = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        src.write_bytes(np.ascontiguousarray(x, dtype=np.int8).tobytes())
        print(f"$ {exe} in.bin out.bin", flush=True)
        subprocess.run([str(exe), str(src), str(dst)], check=True)
        out = np.frombuffer(dst.read_bytes(), dtype=np.int8)
    if out.size != output_size:
        raise RuntimeError(f"the harness wrote {out.size} bytes, expected {output_size}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_out"),
                        help="generated project folder (default: demo_out)")
    parser.add_argument("--cc", default=None, help="host C compiler (default: $CC or cc)")
    args = parser.parse_args(argv)
    if shutil.which("make") is None:
        print("demo: `make` is needed to build the generated C project", file=sys.stderr)
        return 1

    import tinycc

    start = time.time()
    print(f"$ tinycc compile {MODEL.name} --calib {CALIB.name} -o {args.out} --name {PREFIX} --force", flush=True)
    model = tinycc.compile(MODEL, calib=CALIB, output=args.out, name=PREFIX, force=True)
    print()
    print((args.out / "report.md").read_text())

    exe = build_project(args.out, args.cc)
    test = np.load(TEST)
    image = test["images"][:1]
    (inp,), (out,) = model.inputs, model.outputs
    codes = model.c_inputs(image)[inp]  # the int8 codes the C takes (quantized as digits_invoke_f32 does)
    c_out = run_harness(exe, codes, int(np.prod(model.report["outputs"][0]["shape"])))
    golden = model.run(image, engine="int8")[out].reshape(-1)
    print(f"test image 0: C predicts {int(c_out.argmax())} (label {int(test['labels'][0])}), "
          f"golden {'equal' if np.array_equal(c_out, golden) else 'DIFFERENT'}\n")

    print(f"$ tinycc validate {MODEL.name} --data {TEST.name} --labels labels", flush=True)
    result = model.validate(TEST, labels="labels", progress=None)
    print(tinycc.validate_markdown(result))
    r = model.report
    print(f"peak_sram_bytes {r['peak_sram_bytes']:,}  flash_bytes {r['flash_bytes']:,}  "
          f"MACs {r['macs']:,}  ({r['quant']})")
    print(f"demo finished in {time.time() - start:.1f} s; the generated project is in {args.out}/")
    exact = all(b["identical"] == b["samples"] for b in result["bit_exact"].values())
    return 0 if exact and np.array_equal(c_out, golden) else 1


if __name__ == "__main__":
    sys.exit(main())
