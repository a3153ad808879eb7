"""Instructions per inference and per MAC on emulated Cortex-M cores, portable C vs DSP path.

Each MLPerf Tiny reference model (the QDQ files in ../shared, real int8 sample 0 from
samples.npz) is cross-compiled for a Cortex-M3 (ARMv7-M: no DSP extension, so the runtime's
portable C) and a Cortex-M4 (ARMv7E-M: the runtime's `__ARM_FEATURE_DSP` paths where they
exist), run under QEMU, checked bit-exact against the integer golden model, and measured with
the instruction-count plugin (deterministic: executed instructions, not time).

Printed:
  1. per model and core: instructions per inference and per MAC, and the latency that count
     implies at the clock of the MLPerf Tiny v1.1 submission boards (at 1 instruction = 1 cycle,
     a lower bound: loads, multiplies and branches take 2+ cycles on an M4) next to the published
     X-CUBE-AI latency (../shared/docs/peers.md section 2.4);
  2. with the Cortex-M3: its instructions per inference against CMSIS-NN's own portable C (no DSP
     extension) on the same models (peers.md), issue 15's goal for the portable path;
  3. instructions per MAC by layer class (standard conv, depthwise, pointwise, fully connected),
     over all four models and per model; the issue's goal for the DSP path is <= 1.5 on pointwise
     and standard convolutions (CMSIS-NN reports about 1.3-1.5).

  4. with --profile: the functions that execute the most instructions, per model and core
     (the QEMU plugin's per-address counts summed per ELF symbol; the whole run, I/O included).

Usage: python benchmarks/bench_cortexm.py [--models NAME,...] [--cores cortex-m3,cortex-m4] [--json FILE]
                                          [--profile [N]]
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinycc.compiler import QuantOptions  # noqa: E402
from tinycc.engines import CompiledModel  # noqa: E402
from tinycc.frontend import load_graph  # noqa: E402
from tinycc.passes import run_pipeline  # noqa: E402
from tinycc.resources import data_dir  # noqa: E402
from tinycc.sim.qemu import ARM_PREFIX, function_profile, missing_tools  # noqa: E402
from tinycc.target.measure import layer_class  # noqa: E402

MLPERF = ROOT.parent / "shared" / "models" / "mlperf_tiny"
MODELS = ("ic_resnet8", "vww_mobilenetv1_025", "kws_dscnn", "ad_autoencoder")
CLASSES = ("conv", "depthwise", "pointwise", "fc")

# MLPerf Tiny v1.1 closed division, STMicroelectronics X-CUBE-AI 8.1.0 (peers.md section 2.4):
# board, core, MHz, median latency in ms per model.
PEERS = {
    "cortex-m4": ("NUCLEO-L4R5ZI", 120, {"vww_mobilenetv1_025": 118.69, "ic_resnet8": 214.0,
                                         "kws_dscnn": 62.87, "ad_autoencoder": 6.86}),
    "cortex-m33": ("NUCLEO-U575ZI-Q", 160, {"vww_mobilenetv1_025": 71.56, "ic_resnet8": 128.21,
                                            "kws_dscnn": 38.58, "ad_autoencoder": 4.85}),
    "cortex-m7": ("NUCLEO-H7A3ZI-Q", 280, {"vww_mobilenetv1_025": 29.63, "ic_resnet8": 51.95,
                                           "kws_dscnn": 15.35, "ad_autoencoder": 1.82}),
}


# CMSIS-NN's own portable C (no DSP extension) on the Cortex-M3, instructions per inference,
# kernels only (peers.md, "CMSIS-NN on Cortex-M4, measured here", the "M3 pure C" column):
# issue 15's goal for tinycc's portable path (the fast portable variants, runtime_c/tc_*_fast.c).
CMSIS_NN_PORTABLE_M3 = {"vww_mobilenetv1_025": 31_951_631, "kws_dscnn": 10_530_546, "ic_resnet8": 41_842_824}


def dsp_sources() -> list[str]:
    """Runtime files that mention an ARMv7E-M DSP path (ACLE __ARM_FEATURE_DSP or the runtime's switch)."""
    return sorted(f.name for f in data_dir("runtime_c").iterdir()
                  if f.suffix in (".c", ".h") and re.search(r"__ARM_FEATURE_DSP|TC_HAVE_DSP", f.read_text()))


# DSP-extension instructions (ARMv7E-M and later; not in ARMv7-M, whose SSAT/USAT are excluded).
_DSP_MNEMONICS = re.compile(r"\t(smla[dbt][xbt]?|smlsd|smua?d|smusd|smlal[dbt]|sx[ta]*b16|ux[ta]*b16|pkh(bt|tb)|"
                            r"q(add|sub)(8|16)?|[su]h?(add|sub)(8|16)|ssat16|usat16|sel|smmul|smmla|smul[bt][bt])\b")


def dsp_instructions(elf: Path) -> dict[str, int]:
    """How many DSP-extension instructions the linked image contains, by mnemonic."""
    text = subprocess.run([f"{ARM_PREFIX}objdump", "-d", str(elf)], capture_output=True, text=True,
                          check=True).stdout
    counts: dict[str, int] = defaultdict(int)
    for m in _DSP_MNEMONICS.finditer(text):
        counts[m.group(1)] += 1
    return dict(sorted(counts.items()))


def measure(name: str, cores: list[str], profile: bool = False) -> dict:
    g = run_pipeline(load_graph(MLPERF / f"{name}_qdq.onnx"))
    model = CompiledModel(g, QuantOptions(), warn=lambda m: None)
    x = np.load(MLPERF / "samples.npz")[f"{name}_int8"][:1]
    inputs = {g.inputs[0]: x}
    golden = model.run_int8(inputs)
    result = {"macs": model.program.macs, "cores": {}}
    for core in cores:
        t0 = time.perf_counter()
        outputs, run = model.run_qemu(inputs, core, profile=profile)
        exact = all(np.array_equal(outputs[k], golden[k]) for k in golden)
        by_class = defaultdict(lambda: [0, 0])  # class -> [instructions, MACs]
        for step, count in zip(model.program.steps, run.step_instructions):
            cls = layer_class(step)
            if cls:
                by_class[cls][0] += count
                by_class[cls][1] += step.macs
        result["cores"][core] = {"instructions": run.instructions, "bit_exact": exact,
                                 "dsp_instructions": dsp_instructions(model.target_elf(core)),
                                 "stack_high_water": run.stack_high_water, "seconds": time.perf_counter() - t0,
                                 "classes": {k: tuple(v) for k, v in by_class.items()}}
        if profile:
            result["cores"][core]["functions"] = function_profile(model.target_elf(core), run.pc_counts)
    return result


def print_inference_table(results: dict, cores: list[str]) -> None:
    print("\n## Instructions per inference (QEMU, sample 0, bit-exact with the golden model)\n")
    print("| model | MACs | " + " | ".join(f"{c} insns | per MAC" for c in cores) + " |")
    print("|---|---:|" + "---:|---:|" * len(cores))
    for name, r in results.items():
        cells = []
        for c in cores:
            m = r["cores"][c]
            flag = "" if m["bit_exact"] else " NOT BIT-EXACT"
            cells.append(f"{m['instructions']:,}{flag} | {m['instructions'] / r['macs']:.2f}")
        print(f"| {name} | {r['macs']:,} | " + " | ".join(cells) + " |")
    for core in cores:
        if core not in PEERS:
            continue
        board, mhz, peer = PEERS[core]
        print(f"\n{core}: lower-bound latency at {mhz} MHz (1 instruction = 1 cycle) vs MLPerf Tiny v1.1 "
              f"X-CUBE-AI 8.1.0 on {board}:\n")
        print("| model | tinycc lower bound ms | X-CUBE-AI ms | ratio |")
        print("|---|---:|---:|---:|")
        for name, r in results.items():
            ms = r["cores"][core]["instructions"] / (mhz * 1e3)
            print(f"| {name} | {ms:.2f} | {peer[name]:.2f} | {ms / peer[name]:.2f} |")


def print_portable_table(results: dict, cores: list[str]) -> None:
    """The Cortex-M3 (portable C) against CMSIS-NN's portable C on the same models."""
    names = [n for n in results if n in CMSIS_NN_PORTABLE_M3]
    if "cortex-m3" not in cores or not names:
        return
    print("\n## Portable C on the Cortex-M3 vs CMSIS-NN's portable C (peers.md, kernels only)\n")
    print("| model | tinycc M3 insns | CMSIS-NN pure C insns | ratio |")
    print("|---|---:|---:|---:|")
    for name in names:
        ours, peer = results[name]["cores"]["cortex-m3"]["instructions"], CMSIS_NN_PORTABLE_M3[name]
        print(f"| {name} | {ours:,} | {peer:,} | {ours / peer:.2f} |")


def print_class_table(results: dict, cores: list[str]) -> None:
    print("\n## Instructions per MAC by layer class\n")
    print("| model | class | MACs | " + " | ".join(cores) + " |")
    print("|---|---|---:|" + "---:|" * len(cores))
    totals = {c: defaultdict(lambda: [0, 0]) for c in cores}
    for name, r in list(results.items()) + [("all models", None)]:
        for cls in CLASSES:
            if r is None:
                cells = {c: totals[c][cls] for c in cores}
            else:
                cells = {c: r["cores"][c]["classes"].get(cls) for c in cores}
                for c in cores:
                    if cells[c]:
                        totals[c][cls][0] += cells[c][0]
                        totals[c][cls][1] += cells[c][1]
            if not any(v and v[1] for v in cells.values()):
                continue
            macs = next(v[1] for v in cells.values() if v and v[1])
            print(f"| {name} | {cls} | {macs:,} | " + " | ".join(f"{cells[c][0] / cells[c][1]:.2f}" for c in cores)
                  + " |")


def print_profile(results: dict, cores: list[str], top: int) -> None:
    print(f"\n## Functions executing the most instructions (top {top}, whole run)\n")
    print("| model | core | function | instructions | share |")
    print("|---|---|---|---:|---:|")
    for name, r in results.items():
        for core in cores:
            functions = r["cores"][core]["functions"]
            total = sum(functions.values())
            for fn, n in list(functions.items())[:top]:
                print(f"| {name} | {core} | {fn} | {n:,} | {100 * n / total:.1f}% |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--cores", default="cortex-m3,cortex-m4")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--profile", nargs="?", type=int, const=8, metavar="N",
                    help="also print the N functions (default 8) executing the most instructions")
    args = ap.parse_args(argv)
    missing = missing_tools(run=True)
    if missing:
        print(f"bench_cortexm: cannot run: {missing}", file=sys.stderr)
        return 2
    if not MLPERF.is_dir():
        print(f"bench_cortexm: ../shared absent: {MLPERF} not found", file=sys.stderr)
        return 2
    cores = args.cores.split(",")
    dsp = dsp_sources()
    print("# tinycc on emulated Cortex-M cores")
    print(f"\nRuntime files with a DSP path: {', '.join(dsp) if dsp else 'none (every core runs the portable C)'}")
    results = {}
    for name in args.models.split(","):
        results[name] = measure(name, cores, profile=args.profile is not None)
        took = ", ".join(f"{c} {r['seconds']:.1f} s" for c, r in results[name]["cores"].items())
        print(f"  measured {name} ({took})", file=sys.stderr)
    for core in cores:
        found = defaultdict(int)
        for r in results.values():
            for mnemonic, n in r["cores"][core]["dsp_instructions"].items():
                found[mnemonic] = max(found[mnemonic], n)
        listed = ", ".join(f"{m} x{n}" for m, n in sorted(found.items())) or "none: portable C only"
        print(f"DSP instructions in the {core} images (largest count per mnemonic): {listed}")
    print_inference_table(results, cores)
    print_portable_table(results, cores)
    print_class_table(results, cores)
    if args.profile is not None:
        print_profile(results, cores, args.profile)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=list) + "\n")
    return 0 if all(m["bit_exact"] for r in results.values() for m in r["cores"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
