"""Codebook weights (--quant codebook) on the MLPerf Tiny reference models: flash, SRAM, speed.

Each model (the QDQ files in ../shared: the same int8 weights and activation parameters in every
build, so only the weight encoding differs) is compiled with int8 weights and with codebook
weights at each --codebook-bits B. Printed:
  1. weight flash (weights, indices and palettes; biases and requantization arrays are the same in
     every build) against int8, and peak SRAM against int8: the issue's targets are weight flash
     <= 0.55x int8 at B = 4 and <= 0.30x at B = 2, with peak_sram_bytes <= int8 + 1 KiB;
  2. how each layer's palette was chosen: exact 1-D k-means (dp) or k-means++ with restarts
     (whichever has the lower measured error), or kept (pre-clustered);
  3. with --qemu: the golden model's outputs under QEMU on the Cortex-M4 (bit-exact check) and
     instructions per MAC by layer class (conv, pointwise, depthwise, fc), codebook against int8
     on the same layers; the issue's target is within 1.15x; with --layers also per layer (which
     shows where the cost goes: a codebook conv's tile_oc x band_h, decoded rows x output rows per
     band, is in the table; a fully connected layer's tile_oc, or table/N where the DSP kernel
     goes through a decode table per palette of N rows).

With --ad-mse N,...: only the AD autoencoder's output MSE against int8 (int8 output codes) for
fully connected palettes shared by N weights (quant/codebook.py FC_PALETTE_WEIGHTS), on the QDQ
model (no calibration data, so no GPTQ) and on the float model calibrated on half of the samples
(GPTQ), evaluated on the other half; with each build's weight flash against int8.

Usage: python benchmarks/bench_codebook.py [--models NAME,...] [--bits 4,2] [--qemu [--layers]] [--json FILE]
       python benchmarks/bench_codebook.py --ad-mse 16384,4096 [--bits 4,2]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinycc.compiler import QuantOptions  # noqa: E402
from tinycc.engines import CompiledModel  # noqa: E402
from tinycc.frontend import load_graph  # noqa: E402
from tinycc.ops.dense import fc_cb_uses_table  # noqa: E402
from tinycc.passes import run_pipeline  # noqa: E402
from tinycc.report import blob_kind  # noqa: E402
from tinycc.sim.qemu import missing_tools  # noqa: E402
from tinycc.target.measure import layer_class  # noqa: E402

MLPERF = ROOT.parent / "shared" / "models" / "mlperf_tiny"
MODELS = ("ic_resnet8", "vww_mobilenetv1_025", "kws_dscnn", "ad_autoencoder")
CLASSES = ("conv", "pointwise", "depthwise", "fc")
TARGETS = {4: 0.55, 2: 0.30}
SRAM_SLACK = 1024


def weight_flash(model: CompiledModel) -> int:
    """Bytes of the weight arrays (int8 weights, or codebook indices and palettes)."""
    return sum(b.nbytes for name, b in model.program.blobs.items() if blob_kind(name) == "weights")


def build(name: str, bits: int | None) -> CompiledModel:
    g = run_pipeline(load_graph(MLPERF / f"{name}_qdq.onnx"))
    opts = QuantOptions() if bits is None else QuantOptions(quant="codebook", codebook_bits=str(bits))
    return CompiledModel(g, opts, warn=lambda m: None)


def class_costs(model: CompiledModel, run) -> dict[str, list[int]]:
    by_class = defaultdict(lambda: [0, 0])
    for step, count in zip(model.program.steps, run.step_instructions):
        cls = layer_class(step)
        if cls:
            by_class[cls][0] += count
            by_class[cls][1] += step.macs
    return dict(by_class)


def layer_costs(model: CompiledModel, run) -> dict[str, dict]:
    """Per MAC-heavy step (by node name): class, kernel, instructions, MACs, and a codebook
    conv's tiling."""
    out = {}
    for step, count in zip(model.program.steps, run.step_instructions):
        cls = layer_class(step)
        if not cls:
            continue
        p = step.params
        tiling = f"{p.tile_oc}x{p.band_h}" if hasattr(p, "band_h") else (f"{p.tile_oc}" if hasattr(p, "tile_oc") else "")
        if step.kernel == "tc_fc_cb_s8" and fc_cb_uses_table(p):  # decode table per palette, no tile
            tiling = f"table/{p.palette_oc}"
        if hasattr(p, "out_features"):
            shape = f"{p.out_features}x{p.in_features}"
        else:
            shape = f"{p.out_c}x{p.k_h}x{p.k_w}x{p.in_c // getattr(p, 'groups', p.in_c)} on {p.out_h}x{p.out_w}"
        out[step.node] = {"class": cls, "kernel": step.kernel, "instructions": count, "macs": step.macs,
                          "tiling": tiling, "shape": shape}
    return out


def measure(name: str, bits_list: list[int], qemu: bool) -> dict:
    x = np.load(MLPERF / "samples.npz")[f"{name}_int8"][:1]
    result = {}
    for bits in [None] + bits_list:
        model = build(name, bits)
        key = "int8" if bits is None else f"cb{bits}"
        methods = Counter()  # how each codebook layer's palettes were chosen (step note "codebook B-bit (method)")
        for step in model.program.steps:
            if "_cb_" in step.kernel:
                methods[step.note.rpartition("(")[2].rstrip(")")] += 1
        r = {"weight_flash": weight_flash(model), "flash": int(model.program.flash_bytes),
             "peak_sram": int(model.mem.arena_bytes), "codebook_layers": sum(methods.values()),
             "palette_methods": dict(methods),
             "layers_with_weights": sum(1 for s in model.program.steps if layer_class(s))}
        inputs = {model.graph.inputs[0]: x}
        golden = model.run_int8(inputs)
        if qemu:
            outputs, run = model.run_qemu(inputs, "cortex-m4")
            r["bit_exact_m4"] = all(np.array_equal(outputs[k], golden[k]) for k in golden)
            r["instructions"] = run.instructions
            r["classes"] = class_costs(model, run)
            r["layers"] = layer_costs(model, run)
        result[key] = r
        print(f"  {name} {key}: done", file=sys.stderr)
    return result


def print_tables(results: dict, bits_list: list[int], qemu: bool) -> bool:
    ok = True
    print("\n## Weight flash and peak SRAM, codebook against int8\n")
    print("| model | int8 weights B | " + " | ".join(f"B={b} weights B (x int8) | B={b} peak SRAM - int8"
                                                     for b in bits_list) + " |")
    print("|---|---:|" + "---:|---:|" * len(bits_list))
    totals = defaultdict(int)
    for name, r in results.items():
        base = r["int8"]
        totals["int8"] += base["weight_flash"]
        cells = []
        for b in bits_list:
            c = r[f"cb{b}"]
            totals[b] += c["weight_flash"]
            ratio = c["weight_flash"] / base["weight_flash"]
            extra = c["peak_sram"] - base["peak_sram"]
            good = ratio <= TARGETS.get(b, 1.0) and extra <= SRAM_SLACK
            ok &= good
            cells.append(f"{c['weight_flash']:,} ({ratio:.3f}x){'' if good else ' MISSED'} | {extra:+,}")
        print(f"| {name} | {base['weight_flash']:,} | " + " | ".join(cells) + " |")
    print(f"| all | {totals['int8']:,} | " + " | ".join(
        f"{totals[b]:,} ({totals[b] / totals['int8']:.3f}x) | " for b in bits_list) + " |")
    print("\nTargets: " + ", ".join(f"B={b} <= {t:.2f}x" for b, t in TARGETS.items())
          + f"; peak SRAM <= int8 + {SRAM_SLACK} B.")
    print("\n## Codebook layers and how their palettes were chosen (lower measured error per group: exact 1-D "
          "k-means 'dp' or k-means++ with restarts; 'mixed': both won some groups; 'pre-clustered': kept)\n")
    print("| model | bits | codebook layers / layers with weights | palette methods |")
    print("|---|---:|---:|---|")
    for name, r in results.items():
        for b in bits_list:
            c = r[f"cb{b}"]
            methods = ", ".join(f"{m} {n}" for m, n in sorted(c["palette_methods"].items()))
            print(f"| {name} | {b} | {c['codebook_layers']} / {c['layers_with_weights']} | {methods} |")
    if qemu:
        print("\n## Cortex-M4 instructions per MAC by layer class (QEMU), codebook / int8\n")
        print("| model | class | int8 | " + " | ".join(f"B={b} | ratio" for b in bits_list) + " |")
        print("|---|---|---:|" + "---:|---:|" * len(bits_list))
        totals = {k: defaultdict(lambda: [0, 0]) for k in ["int8"] + [f"cb{b}" for b in bits_list]}
        for name, r in list(results.items()) + [("all models", None)]:
            for cls in CLASSES:
                if r is None:
                    cells = {k: totals[k].get(cls) for k in totals}
                else:
                    cells = {k: r[k]["classes"].get(cls) for k in totals}
                    for k, v in cells.items():
                        if v:
                            totals[k][cls][0] += v[0]
                            totals[k][cls][1] += v[1]
                if not cells["int8"] or not cells["int8"][1]:
                    continue
                base = cells["int8"][0] / cells["int8"][1]
                row = []
                for b in bits_list:
                    v = cells[f"cb{b}"]
                    per = v[0] / v[1]
                    row.append(f"{per:.2f} | {per / base:.2f}")
                print(f"| {name} | {cls} | {base:.2f} | " + " | ".join(row) + " |")
        exact = all(v.get("bit_exact_m4", True) for r in results.values() for v in r.values())
        print(f"\nCortex-M4 outputs equal the golden model's on every build: {exact}")
        ok &= exact
    return ok


def print_layers(results: dict, bits_list: list[int]) -> None:
    print("\n## Cortex-M4 instructions per MAC per layer (QEMU), codebook / int8; tiling: tile_oc x band_h\n")
    print("| model | layer | class | shape | MACs | int8 | " + " | ".join(f"B={b} | tiling | ratio" for b in bits_list)
          + " |")
    print("|---|---:|---|---|---:|---:|" + "---:|---|---:|" * len(bits_list))
    for name, r in results.items():
        for k, (node, base) in enumerate(r["int8"]["layers"].items()):
            per = base["instructions"] / base["macs"]
            cells = []
            for b in bits_list:
                c = r[f"cb{b}"]["layers"].get(node)
                if c is None:
                    cells.append("- | - | -")
                    continue
                cb = c["instructions"] / c["macs"]
                cells.append(f"{cb:.2f} | {c['tiling'] or '-'} | {cb / per:.2f}")
            print(f"| {name} | {k} | {base['class']} | {base['shape']} | {base['macs']:,} | {per:.2f} | "
                  + " | ".join(cells) + " |")


def output_codes(model: CompiledModel, rows: np.ndarray) -> np.ndarray:
    """The golden model's int8 output codes for each sample row (one inference per row)."""
    name = model.graph.inputs[0]
    return np.stack([next(iter(model.run_int8({name: r[None]}).values())).astype(np.int64).ravel() for r in rows])


def ad_output_mse(bits_list: list[int], palette_weights: list[int]) -> list[dict]:
    """AD autoencoder: mean square of (codebook - int8) output codes, per FC palette group size
    (codebook.FC_PALETTE_WEIGHTS) and bits, on two builds:
      qdq   the QDQ model (what the tables above measure): palettes without calibration data, so
            no GPTQ assignment (nearest palette value), on all samples;
      calib the float model calibrated on the first half of the samples (GPTQ assignment, input
            variance weighting), evaluated on the second half; int8 calibrated the same way.
    Also the weight flash of each build against int8, as a group size must keep the targets."""
    import tempfile

    from tinycc.quant import codebook

    samples = np.load(MLPERF / "samples.npz")
    half = len(samples["ad_autoencoder_float"]) // 2
    calib_x, eval_x = samples["ad_autoencoder_float"][:half], samples["ad_autoencoder_float"][half:]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        calib = Path(tmp) / "calib.npy"
        np.save(calib, calib_x.astype(np.float32))

        def builds(bits):
            cb = {} if bits is None else {"quant": "codebook", "codebook_bits": str(bits)}
            qdq = CompiledModel(run_pipeline(load_graph(MLPERF / "ad_autoencoder_qdq.onnx")), QuantOptions(**cb),
                                warn=lambda m: None)
            fl = CompiledModel(run_pipeline(load_graph(MLPERF / "ad_autoencoder.onnx")),
                               QuantOptions(calib=str(calib), **cb), warn=lambda m: None)
            return {"qdq": (qdq, samples["ad_autoencoder_int8"]), "calib": (fl, eval_x)}

        base = {k: (output_codes(m, x), weight_flash(m)) for k, (m, x) in builds(None).items()}
        saved = codebook.FC_PALETTE_WEIGHTS
        try:
            for weights in palette_weights:
                codebook.FC_PALETTE_WEIGHTS = weights
                for bits in bits_list:
                    for k, (m, x) in builds(bits).items():
                        codes, flash = output_codes(m, x), weight_flash(m)
                        out.append({"palette_weights": weights, "bits": bits, "build": k,
                                    "mse": float(np.mean((codes - base[k][0]) ** 2)),
                                    "flash_x_int8": flash / base[k][1]})
                        print(f"  ad_autoencoder cb{bits} {k} palette {weights}: done", file=sys.stderr)
        finally:
            codebook.FC_PALETTE_WEIGHTS = saved
    return out


def print_ad_mse(rows: list[dict]) -> None:
    print("\n## AD autoencoder: output MSE against int8 (int8 output codes), by FC palette group size\n")
    print("qdq: the QDQ model, no calibration data (no GPTQ), all samples; calib: the float model calibrated on "
          "the first half of the samples (GPTQ), evaluated on the second half.\n")
    print("| FC weights per palette | bits | build | MSE vs int8 | weight flash x int8 |")
    print("|---:|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['palette_weights']:,} | {r['bits']} | {r['build']} | {r['mse']:.2f} | {r['flash_x_int8']:.3f}x |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--bits", default="4,2")
    ap.add_argument("--qemu", action="store_true", help="also run on the Cortex-M4 under QEMU")
    ap.add_argument("--layers", action="store_true", help="with --qemu: also a table per layer")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--ad-mse", metavar="N,...", help="only the AD autoencoder's output MSE against int8, "
                    "for these FC palette group sizes (weights per palette, e.g. 16384,4096)")
    args = ap.parse_args(argv)
    if not MLPERF.is_dir():
        print(f"bench_codebook: ../shared absent: {MLPERF} not found", file=sys.stderr)
        return 2
    if args.qemu and missing_tools(run=True):
        print(f"bench_codebook: cannot run QEMU: {missing_tools(run=True)}", file=sys.stderr)
        return 2
    bits_list = [int(b) for b in args.bits.split(",")]
    if args.ad_mse:
        print_ad_mse(ad_output_mse(bits_list, [int(w) for w in args.ad_mse.split(",")]))
        return 0
    results = {name: measure(name, bits_list, args.qemu) for name in args.models.split(",")}
    ok = print_tables(results, bits_list, args.qemu)
    if args.qemu and args.layers:
        print_layers(results, bits_list)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=list) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
