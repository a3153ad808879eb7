"""tinycc demo (`make demo`): compile the bundled digits CNN to C, build it, run it, compare.

1. `tinycc compile examples/digits_cnn.onnx --calib examples/digits_calib.npy -o demo_out`
2. print the compile report (demo_out/report.md)
3. build the generated project with the host C compiler (`make -C demo_out`)
4. run the C harness on the 360 held-out test digits, and the same images on tinycc's float
   engine and int8 golden model; print the accuracies and whether golden and C agree bit for bit

Needs only numpy and tinycc at run time (plus make and a C compiler).
Usage: python examples/demo.py [--out DIR] [--cc CC]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
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


def compile_model(out: Path) -> None:
    cmd = [sys.executable, "-m", "tinycc", "compile", str(MODEL), "--calib", str(CALIB), "-o", str(out),
           "--name", PREFIX, "--force"]
    print("$ tinycc " + " ".join(cmd[3:]), flush=True)
    subprocess.run(cmd, check=True)


def build_project(out: Path, cc: str | None) -> Path:
    env = dict(os.environ)
    if cc:
        env["CC"] = cc
    print(f"$ make -C {out}", flush=True)
    subprocess.run(["make", "-s", "-C", str(out)], check=True, env=env)
    return out / f"{PREFIX}_host"


def run_harness(exe: Path, inputs: list[np.ndarray], output_size: int) -> list[np.ndarray]:
    """Run the harness once per input (raw int8 files in, raw int8 file out)."""
    outputs = []
    with tempfile.TemporaryDirectory(prefix="tinycc_demo_") as tmp:
        src, dst = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        for x in inputs:
            src.write_bytes(np.ascontiguousarray(x, dtype=np.int8).tobytes())
            subprocess.run([str(exe), str(src), str(dst)], check=True)
            out = np.frombuffer(dst.read_bytes(), dtype=np.int8)
            if out.size != output_size:
                raise RuntimeError(f"the harness wrote {out.size} bytes, expected {output_size}")
            outputs.append(out.copy())
    return outputs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_out"),
                        help="generated project folder (default: demo_out)")
    parser.add_argument("--cc", default=None, help="host C compiler (default: $CC or cc)")
    args = parser.parse_args(argv)
    if shutil.which("make") is None:
        print("demo: `make` is needed to build the generated C project", file=sys.stderr)
        return 1

    from tinycc.compiler import QuantOptions
    from tinycc.engines import CompiledModel
    from tinycc.frontend import load_graph
    from tinycc.passes import run_pipeline
    from tinycc.quant.params import dequantize
    from tinycc.reference.float_exec import run_float

    start = time.time()
    compile_model(args.out)
    print()
    print((args.out / "report.md").read_text())
    report = json.loads((args.out / "report.json").read_text())
    exe = build_project(args.out, args.cc)

    test = np.load(TEST)
    images, labels = test["images"], test["labels"]
    g = run_pipeline(load_graph(str(MODEL)))
    (inp,), (out,) = g.inputs, g.outputs
    # The golden model: the same quantization as `tinycc compile` above (same calibration data
    # and method), run by tinycc's integer reference executor.
    print("\nquantizing again in-process for the float and golden engines ...", flush=True)
    with contextlib.redirect_stderr(io.StringIO()):  # calibration progress was shown above
        golden = CompiledModel(g, QuantOptions(calib=str(CALIB)), warn=lambda m: None)
    out_qp = golden.program.tensors[out].quant
    int8_inputs = [golden.quantize_inputs({inp: x[None]})[inp] for x in images]

    float_pred = np.array([run_float(g, {inp: x[None]})[out].argmax() for x in images])
    golden_raw = [golden.run_int8({inp: q})[out].reshape(-1) for q in int8_inputs]
    c_raw = run_harness(exe, int8_inputs, report["outputs"][0]["shape"][-1])
    golden_pred = np.array([dequantize(r, out_qp).argmax() for r in golden_raw])
    c_pred = np.array([dequantize(r, out_qp).argmax() for r in c_raw])
    identical = sum(np.array_equal(a, b) for a, b in zip(golden_raw, c_raw))

    n = len(labels)
    print(f"\ndigits test set: {n} images (8x8 grey), accuracy against the true labels\n")
    rows = [("float (tinycc float engine)", float_pred), ("int8 golden (tinycc int8 engine)", golden_pred),
            ("generated C (host build)", c_pred)]
    print(f"| {'engine':<34} | {'accuracy':>9} |")
    print(f"|{'-' * 36}|{'-' * 11}|")
    for name, pred in rows:
        print(f"| {name:<34} | {100 * np.mean(pred == labels):>8.2f}% |")
    print()
    print(f"golden == C bit for bit on {identical}/{n} test images: {'yes' if identical == n else 'NO'}")
    print(f"peak_sram_bytes {report['peak_sram_bytes']:,}  flash_bytes {report['flash_bytes']:,}  "
          f"MACs {report['macs']:,}  ({report['quant']})")
    print(f"demo finished in {time.time() - start:.1f} s; the generated project is in {args.out}/")
    return 0 if identical == n else 1


if __name__ == "__main__":
    sys.exit(main())
