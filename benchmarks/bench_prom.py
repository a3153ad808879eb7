"""PROM ternary pointwise convolutions: flash, Cortex-M4 instructions per MAC, energy, rule choice.

`--quant prom` (quant/ternary.py, runtime_c/tc_pw_ternary_s8*.c) on:
  - MLPerf Tiny VWW (MobileNetV1-0.25, the float ONNX in ../shared, calibrated and run on its
    real samples), and MobileNetV2-1.0 (torchvision's layer configuration, held out: no test
    or tuning used it) at 96x96, so that a QEMU run stays short; the pointwise layer shapes
    (channels) are those of the 224x224 network, only the pixel count is smaller.
  - the tests' zoo models (tests/zoo.py) for the rule choice.

Printed:
  1. per ternary layer: in x out channels, format, bytes vs int8; the total of the ternary layers
     in 2-bit and base-3 (targets <= 0.26x and <= 0.22x), and the model's whole flash vs int8;
  2. Cortex-M4 (QEMU instruction counts, deterministic): instructions per MAC of every pointwise
     layer, int8 (tc_conv2d_s8) vs ternary (tc_pw_ternary_s8), pooled and for Cout >= 64; the
     golden == QEMU output is checked for both;
  3. the energy estimate of quantization.md §1.4 (PROM's footing) vs all-int8 and float16;
  4. with --rules: output SQNR against float of PTQ PROM for each threshold rule (TWN, absmean)
     on the zoo models (the default rule is the better one on average).

Usage: python benchmarks/bench_prom.py [--models vww,mbv2] [--no-qemu] [--each-kernel] [--rules] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tinycc.compiler import QuantOptions  # noqa: E402
from tinycc.engines import CompiledModel  # noqa: E402
from tinycc.frontend import load_graph  # noqa: E402
from tinycc.memory.lifetimes import plan_memory  # noqa: E402
from tinycc.passes import run_pipeline  # noqa: E402
from tinycc.quant import ternary  # noqa: E402
from tinycc.report import prom_section  # noqa: E402
from tinycc.target.measure import layer_class  # noqa: E402

MLPERF = ROOT.parent / "shared" / "models" / "mlperf_tiny"
POINTWISE = ("pointwise", "ternary pointwise")


def vww(folder: Path):
    nhwc = np.load(MLPERF / "samples.npz")["vww_mobilenetv1_025_float"]
    samples = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))[:, None]  # the float ONNX takes NCHW
    calib = folder / "vww_calib.npy"
    np.save(calib, samples[:8])
    return MLPERF / "vww_mobilenetv1_025.onnx", calib, {"input_1:0": samples[9]}


def mbv2(folder: Path, res: int = 96):
    import torch
    from bench_patches import mobilenet_v2

    torch.manual_seed(0)
    model = mobilenet_v2(1.0).eval()
    x = torch.randn(1, 3, res, res)
    path = folder / f"mbv2_{res}.onnx"
    torch.onnx.export(model, (x,), path, input_names=["x"], output_names=["y"], opset_version=17, dynamo=False)
    rng = np.random.default_rng(0)
    calib = folder / "mbv2_calib.npy"
    np.save(calib, rng.normal(0, 1, (4, 1, 3, res, res)).astype(np.float32))
    return path, calib, {"x": rng.normal(0, 1, (1, 3, res, res)).astype(np.float32)}


MODELS = {"vww": vww, "mbv2": mbv2}


def compiled(path: Path, calib: Path, quant: str, formats: str = "auto", kernel: str | None = None) -> CompiledModel:
    """kernel: run every ternary layer with this kernel where it applies (to measure each on
    every layer); None: tinycc's choice (ops/conv.py pw_ternary_kernel)."""
    from tinycc.ops import conv

    saved = conv.pw_ternary_kernel
    if kernel is not None:
        conv.pw_ternary_kernel = lambda p: kernel if (kernel != "tc_pw_ternary_s8_lut" or p.in_c >= 4) else saved(p)
    try:
        g = run_pipeline(load_graph(path))
        opts = QuantOptions(calib=str(calib), quant=quant, ternary_formats=formats)
        return CompiledModel(g, opts, warn=lambda m: None)
    finally:
        conv.pw_ternary_kernel = saved


def flash_table(name: str, int8: CompiledModel, prom: CompiledModel) -> dict:
    section = prom_section(prom.program)["prom"]
    print(f"\n== {name}: ternary layers (2-bit where the DSP path runs, base-3 below 4 input channels)")
    print(f"{'layer':44s} {'in x out':>11s} {'format':>7s} {'bytes':>8s} {'int8':>8s}")
    for layer in section["ternary_layers"]:
        print(f"{layer['name'][-44:]:44s} {layer['in_c']:>5d} x {layer['out_c']:<4d} {layer['format']:>7s} "
              f"{layer['weight_bytes']:>8,d} {layer['int8_weight_bytes']:>8,d}")
    t8 = section["int8_weight_bytes"]
    print(f"ternary layers: {section['ternary_weight_bytes']:,} B vs {t8:,} B int8 = {section['flash_ratio']:.3f}x "
          f"(all 2-bit {section['flash_ratio_2bit']:.3f}x, all base-3 {section['flash_ratio_base3']:.3f}x); "
          f"{section['mac_share']:.1%} of the MACs")
    f8, fp = int8.program.flash_bytes, prom.program.flash_bytes
    print(f"whole model flash (weights, biases, requantization, params): int8 {f8:,} B, PROM {fp:,} B = {fp / f8:.3f}x")
    e = section["energy"]
    print(f"energy (45 nm, arithmetic only): float16 {e['float16_pj'] / 1e6:,.2f} uJ, int8 {e['int8_pj'] / 1e6:,.2f} uJ, "
          f"PROM {e['prom_pj'] / 1e6:,.2f} uJ -> float16/PROM {e['float16_over_prom']}x, int8/PROM "
          f"{e['int8_over_prom']}x (ternary adds charged at int32: "
          f"{e['float16_pj'] / e['prom_int32_acc_pj']:.1f}x vs float16)")
    return {"flash_int8": f8, "flash_prom": fp, **{k: v for k, v in section.items() if k != "ternary_layers"},
            "layers": section["ternary_layers"]}


def m4_layers(model: CompiledModel, x) -> list[dict]:
    golden = model.run_int8(x)
    out, run = model.run_qemu(x, "cortex-m4")
    for t in golden:
        if not np.array_equal(out[t], golden[t]):
            raise SystemExit(f"QEMU output {t} differs from the golden model")
    rows = []
    for step, count in zip(model.program.steps, run.step_instructions):
        cls = layer_class(step)
        if cls in POINTWISE:
            p = step.params
            rows.append({"name": step.onnx_name or step.node, "in_c": p.in_c, "out_c": p.out_c,
                         "macs": int(step.macs), "instructions": int(count)})
    return rows


KERNELS = ("tc_pw_ternary_s8", "tc_pw_ternary_s8_expand", "tc_pw_ternary_s8_lut")


def shift_column(model: CompiledModel, step) -> str:
    """A ternary layer's requantization shifts, min..max, and '*' when one lies outside what
    tc_conv2d_s8's assembly loops take (shifts -31..1: tc_conv2d_s8_dsp.c conv2d_asm_layer and the
    shallow path; shifts -1..1 by tc_dsp_rq_near / tc_dsp_rq2, tc_dot_s8_dsp.h), where the expanding
    kernel runs on a C loop. Ternary scales (mean |w| of the kept weights, not max |w| / 127) make
    multipliers about 64x larger than int8's, so narrow layers land on shifts -1..1."""
    shift = model.program.blobs[next(a.ref for a in step.args if a.ref.endswith("_shift"))]
    lo, hi = int(shift.min()), int(shift.max())
    return f"{lo}..{hi}" + ("*" if hi > 1 or lo < -31 else "")


def instructions_table(name: str, int8: CompiledModel, prom: CompiledModel, x, forced: dict) -> dict:
    a, b = m4_layers(int8, x), m4_layers(prom, x)
    each = {k: m4_layers(m, x) for k, m in forced.items()}
    assert all([r["name"] for r in a] == [r["name"] for r in rows] for rows in [b, *each.values()])
    print(f"\n== {name}: Cortex-M4 instructions per MAC of the pointwise layers (QEMU; golden == QEMU checked)")
    print("   ternary: tinycc's choice (kernel); then each kernel forced: add/sub + SMLAD, expand to int8, tables;")
    print("   shifts: the layer's requantization shifts (*: outside tc_conv2d_s8's assembly loops, see shift_column)")
    print(f"{'layer':38s} {'in x out':>11s} {'MACs':>10s} {'int8':>6s} {'ternary':>8s} {'kernel':>7s} "
          f"{'pw':>6s} {'expand':>6s} {'table':>6s} {'shifts':>8s}")
    for i, (r8, rt) in enumerate(zip(a, b)):
        step = prom.program.steps[[s.onnx_name or s.node for s in prom.program.steps].index(rt["name"])]
        kernel = step.kernel
        print(f"{r8['name'][-38:]:38s} {r8['in_c']:>5d} x {r8['out_c']:<4d} {r8['macs']:>10,d} "
              f"{r8['instructions'] / r8['macs']:>6.3f} {rt['instructions'] / rt['macs']:>8.3f} "
              f"{kernel.replace('tc_pw_ternary_s8', '') or 'pw':>7s} "
              + "".join(f"{each[k][i]['instructions'] / each[k][i]['macs']:>6.3f} " for k in each)
              + f"{shift_column(prom, step):>8s}")

    def pooled(rows, wide=False):
        sel = [r for r in rows if not wide or r["out_c"] >= 64]
        return sum(r["instructions"] for r in sel) / max(1, sum(r["macs"] for r in sel))

    out = {"int8_pooled": pooled(a), "ternary_pooled": pooled(b), "int8_wide": pooled(a, True),
           "ternary_wide": pooled(b, True), "layers_int8": a, "layers_ternary": b}
    print(f"pooled: int8 {out['int8_pooled']:.3f}, ternary {out['ternary_pooled']:.3f} instructions/MAC; "
          f"Cout >= 64: int8 {out['int8_wide']:.3f}, ternary {out['ternary_wide']:.3f}")
    return out


def rules_table() -> dict:
    """PTQ PROM output SQNR (dB) against float per rule on zoo models (random weights, inputs
    near the exported example), on the golden model."""
    sys.path.insert(0, str(ROOT / "tests"))
    import zoo
    from tinycc.reference.float_exec import run_float

    results = defaultdict(dict)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("mbv2", "mcunet", "dscnn", "shufflenet", "squeezenet"):
            path = zoo.export(name, "torchscript", Path(tmp))
            model, example = zoo.ZOO[name]()
            inputs = {n: t.numpy() for n, t in zip(zoo.input_names(model), example)}
            rng = np.random.default_rng(0)
            key = next(iter(inputs))
            calib = Path(tmp) / f"{name}_calib.npy"
            np.save(calib, (inputs[key][None] + rng.normal(0, 0.3, (8,) + inputs[key].shape)).astype(np.float32))
            g = run_pipeline(load_graph(path))
            x = {key: (inputs[key] + rng.normal(0, 0.3, inputs[key].shape)).astype(np.float32)}
            ref = run_float(g, x)
            for rule in ternary.RULES:
                m = CompiledModel(g, QuantOptions(calib=str(calib), quant="prom", ternary_rule=rule),
                                  warn=lambda m: None)
                got = m.run_int8(x)
                t = m.program.outputs[0]
                y = m.logical(t, got[t], dequantize=True).astype(np.float64)
                want = np.asarray(ref[t], np.float64)
                results[name][rule] = 10 * np.log10(np.sum(want ** 2) / max(np.sum((y - want) ** 2), 1e-30))
    print("\n== threshold rule: PTQ PROM output SQNR vs float (dB), zoo models")
    print(f"{'model':12s} " + " ".join(f"{r:>8s}" for r in ternary.RULES))
    for name, row in results.items():
        print(f"{name:12s} " + " ".join(f"{row[r]:>8.2f}" for r in ternary.RULES))
    means = {r: float(np.mean([row[r] for row in results.values()])) for r in ternary.RULES}
    print("mean         " + " ".join(f"{means[r]:>8.2f}" for r in ternary.RULES))
    return {"per_model": dict(results), "mean": means}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="vww,mbv2")
    ap.add_argument("--no-qemu", action="store_true")
    ap.add_argument("--rules", action="store_true")
    ap.add_argument("--each-kernel", action="store_true", help="also measure every ternary kernel on every layer")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            if name == "vww" and not (MLPERF / "vww_mobilenetv1_025.onnx").exists():
                print(f"skipping vww: {MLPERF} is absent")
                continue
            t0 = time.time()
            path, calib, x = MODELS[name](Path(tmp))
            int8, prom = compiled(path, calib, "int8"), compiled(path, calib, "prom")
            results[name] = {"flash": flash_table(name, int8, prom)}
            if not args.no_qemu:
                forced = {k: compiled(path, calib, "prom", kernel=k) for k in KERNELS} if args.each_kernel else {}
                results[name]["m4"] = instructions_table(name, int8, prom, x, forced)
            print(f"({time.time() - t0:.0f} s)")
    if args.rules:
        results["rules"] = rules_table()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
