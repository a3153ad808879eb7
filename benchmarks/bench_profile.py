"""Per-layer instruction profile of whole models on an emulated Cortex-M core.

Each MLPerf Tiny reference model (the QDQ files in ../shared, real int8 sample 0 from
samples.npz) is cross-compiled for the core, run once under QEMU with the instruction-count
plugin (the harness's tc_trace_step hook after every step gives per-layer counts; the plugin's
per-address counts, summed per ELF symbol, give per-function counts), and checked bit for bit
against the integer golden model. Instruction counts are deterministic (executed instructions,
not time), so two runs of the same build print the same table.

Printed per model:
  1. every step: kernel, layer shape, MACs, instructions, instructions per MAC, share of the
     inference (the count of a step includes its dispatch from model.c: the params and the call);
  2. per kernel entry point: calls, MACs, instructions, per MAC;
  3. the functions executing the most instructions over the whole run (the MAC loops next to
     their set-up: staging, padding fills, requantization, memset/memcpy);
  4. the work outside MAC layers (element-wise, pooling, softmax, copies) and, for the MAC layers,
     the instructions above the best rate of their class in the models measured ("excess"),
     i.e. what a kernel at that rate everywhere would save.
Then over all models: the biggest convolution and depthwise layers ranked by excess (where the
kernel owners' work pays most).

Usage: python benchmarks/bench_profile.py [--models NAME,...] [--core cortex-m4] [--top N] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinycc.compiler import QuantOptions  # noqa: E402
from tinycc.engines import CompiledModel  # noqa: E402
from tinycc.frontend import load_graph  # noqa: E402
from tinycc.passes import run_pipeline  # noqa: E402
from tinycc.sim.qemu import function_profile, missing_tools  # noqa: E402
from tinycc.target.measure import layer_class  # noqa: E402

MLPERF = ROOT.parent / "shared" / "models" / "mlperf_tiny"
MODELS = ("vww_mobilenetv1_025", "kws_dscnn", "ic_resnet8")
# Issue 15's whole-model goals on the Cortex-M4 (instructions per inference).
GOALS = {"cortex-m4": {"vww_mobilenetv1_025": 12.0e6, "kws_dscnn": 3.85e6, "ic_resnet8": 15.0e6}}


@dataclass
class LayerCount:
    step: str
    kernel: str
    shape: str
    layer_class: str | None
    macs: int
    instructions: int


@dataclass
class ModelProfile:
    name: str
    instructions: int
    bit_exact: bool
    layers: list[LayerCount] = field(default_factory=list)
    functions: dict[str, int] = field(default_factory=dict)


def describe_shape(step, program) -> str:
    """The layer's geometry: HxWxC -> HxWxC with kernel and stride for windowed kernels, else the
    output tensor's shape."""
    p = step.params
    if p is not None and all(hasattr(p, f) for f in ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "k_h")):
        return (f"{p.in_h}x{p.in_w}x{p.in_c} -> {p.out_h}x{p.out_w}x{p.out_c} "
                f"k{p.k_h}x{p.k_w} s{p.stride_h}")
    outs = [a.ref for a in step.args if a.kind in ("out", "update")]
    if outs and outs[0] in program.tensors:
        return "x".join(str(d) for d in program.tensors[outs[0]].shape)
    return ""


def profile_model(name: str, core: str) -> ModelProfile:
    g = run_pipeline(load_graph(MLPERF / f"{name}_qdq.onnx"))
    model = CompiledModel(g, QuantOptions(), warn=lambda m: None)
    x = np.load(MLPERF / "samples.npz")[f"{name}_int8"][:1]
    inputs = {g.inputs[0]: x}
    golden = model.run_int8(inputs)
    outputs, run = model.run_qemu(inputs, core, profile=True)
    exact = all(np.array_equal(outputs[k], golden[k]) for k in golden)
    prof = ModelProfile(name, run.instructions, exact)
    for step, count in zip(model.program.steps, run.step_instructions):
        prof.layers.append(LayerCount(step.name, step.kernel, describe_shape(step, model.program),
                                      layer_class(step), step.macs, count))
    prof.functions = function_profile(model.target_elf(core), run.pc_counts)
    return prof


def best_rates(profiles: list[ModelProfile]) -> dict[str, float]:
    """Per layer class, the lowest instructions per MAC of any layer measured."""
    best: dict[str, float] = {}
    for prof in profiles:
        for layer in prof.layers:
            if layer.layer_class and layer.macs:
                rate = layer.instructions / layer.macs
                best[layer.layer_class] = min(best.get(layer.layer_class, rate), rate)
    return best


def excess(layer: LayerCount, best: dict[str, float]) -> int:
    """Instructions above what the layer would take at the best rate of its class."""
    if not (layer.layer_class and layer.macs):
        return 0
    return max(0, round(layer.instructions - layer.macs * best[layer.layer_class]))


def per_mac(instructions: int, macs: int) -> str:
    return f"{instructions / macs:.2f}" if macs else "-"


def print_model(prof: ModelProfile, best: dict[str, float], top: int, goal: float | None = None) -> None:
    total = prof.instructions
    macs = sum(layer.macs for layer in prof.layers)
    flag = "" if prof.bit_exact else "  ** NOT BIT-EXACT **"
    print(f"\n## {prof.name}: {total:,} instructions, {macs:,} MACs, {total / macs:.2f} per MAC{flag}\n")
    if goal:
        print(f"Goal {goal:,.0f}: {max(0, total - goal):,.0f} instructions to cut "
              f"({100 * max(0, total - goal) / total:.1f}%).\n")
    print("| step | kernel | class | shape | MACs | instructions | per MAC | share | excess |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for layer in prof.layers:
        print(f"| {layer.step} | {layer.kernel} | {layer.layer_class or '-'} | {layer.shape} | {layer.macs:,} "
              f"| {layer.instructions:,} | {per_mac(layer.instructions, layer.macs)} "
              f"| {100 * layer.instructions / total:.1f}% | {excess(layer, best):,} |")
    steps_sum = sum(layer.instructions for layer in prof.layers)
    if steps_sum != total:
        print(f"\n(between steps, outside every kernel: {total - steps_sum:,} instructions)")

    kernels: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # kernel -> [calls, MACs, instructions]
    for layer in prof.layers:
        k = kernels[layer.kernel]
        k[0] += 1
        k[1] += layer.macs
        k[2] += layer.instructions
    print("\n| kernel | calls | MACs | instructions | per MAC | share |")
    print("|---|---:|---:|---:|---:|---:|")
    for kernel, (calls, kmacs, ins) in sorted(kernels.items(), key=lambda kv: -kv[1][2]):
        print(f"| {kernel} | {calls} | {kmacs:,} | {ins:,} | {per_mac(ins, kmacs)} | {100 * ins / total:.1f}% |")

    whole = sum(prof.functions.values())
    print(f"\nFunctions executing the most instructions (whole run, {whole:,} with the harness's I/O):\n")
    print("| function | instructions | share |")
    print("|---|---:|---:|")
    for fn, n in list(prof.functions.items())[:top]:
        print(f"| {fn} | {n:,} | {100 * n / whole:.1f}% |")

    non_mac = sum(layer.instructions for layer in prof.layers if not layer.layer_class)
    over = sum(excess(layer, best) for layer in prof.layers)
    copies = sum(n for fn, n in prof.functions.items() if fn in ("memcpy", "memset", "memmove"))
    print(f"\nOutside MAC layers (element-wise, pooling, softmax, copies): {non_mac:,} instructions "
          f"({100 * non_mac / total:.1f}%); memcpy/memset/memmove: {copies:,}; MAC layers above their "
          f"class's best rate: {over:,} ({100 * over / total:.1f}%).")


def print_targets(profiles: list[ModelProfile], best: dict[str, float], top: int) -> None:
    print("\n## Biggest convolution and depthwise layers, all models, by excess instructions\n")
    print("Best rate per class (instructions per MAC): "
          + ", ".join(f"{cls} {rate:.2f}" for cls, rate in sorted(best.items())) + "\n")
    print("| model | step | class | shape | MACs | instructions | per MAC | excess |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    rows = [(prof.name, layer) for prof in profiles for layer in prof.layers if layer.layer_class]
    rows.sort(key=lambda r: -excess(r[1], best))
    for model, layer in rows[:top]:
        print(f"| {model} | {layer.step} | {layer.layer_class} | {layer.shape} | {layer.macs:,} "
              f"| {layer.instructions:,} | {per_mac(layer.instructions, layer.macs)} | {excess(layer, best):,} |")
    by_class: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for _, layer in rows:
        c = by_class[layer.layer_class]
        c[0] += layer.macs
        c[1] += layer.instructions
        c[2] += excess(layer, best)
    print("\n| class | MACs | instructions | per MAC | excess |")
    print("|---|---:|---:|---:|---:|")
    for cls, (cmacs, ins, ex) in sorted(by_class.items(), key=lambda kv: -kv[1][1]):
        print(f"| {cls} | {cmacs:,} | {ins:,} | {per_mac(ins, cmacs)} | {ex:,} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--core", default="cortex-m4")
    ap.add_argument("--top", type=int, default=12, help="rows of the function and layer rankings (default 12)")
    ap.add_argument("--json", metavar="FILE", help="also write the per-layer and per-function counts as JSON")
    args = ap.parse_args(argv)
    missing = missing_tools(run=True)
    if missing:
        print(f"bench_profile: cannot run: {missing}", file=sys.stderr)
        return 2
    if not MLPERF.is_dir():
        print(f"bench_profile: ../shared absent: {MLPERF} not found", file=sys.stderr)
        return 2
    profiles = []
    for name in args.models.split(","):
        profiles.append(profile_model(name, args.core))
        print(f"  measured {name}", file=sys.stderr)
    best = best_rates(profiles)
    print(f"# Per-layer profile on {args.core} (QEMU instruction counts, sample 0)")
    for prof in profiles:
        print_model(prof, best, args.top, GOALS.get(args.core, {}).get(prof.name))
    print_targets(profiles, best, args.top)
    if args.json:
        Path(args.json).write_text(json.dumps([{"model": p.name, "instructions": p.instructions,
                                                "bit_exact": p.bit_exact,
                                                "layers": [vars(layer) for layer in p.layers],
                                                "functions": p.functions} for p in profiles], indent=2) + "\n")
    return 0 if all(p.bit_exact for p in profiles) else 1


if __name__ == "__main__":
    sys.exit(main())
