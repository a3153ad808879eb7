"""Patch-based inference figures (issue 11): peak SRAM layer by layer vs patched, MAC overhead,
Cortex-M4 instruction overhead under QEMU, bit-exactness of the patched C.

    python benchmarks/bench_patches.py [--skip-mbv2] [--skip-qemu]

Models: MobileNetV2 width 1.0 at 224x224 (torchvision's layer configuration, built here in torch
with random weights and BatchNorm statistics; MCUNetV2 reports 1372 kB -> 172 kB with 4x4 patches,
not counting the 147 kB input), MobileNetV2-0.35 at 160x160 (layer by layer above 256 KiB), and
the MLPerf Tiny VWW model (TinyEngine's patch-based figure: 58,232 B). Every figure is computed
by tinycc here; the peak counts the input buffer (it lives in the arena), except on the rows
`--stream-input`, where the input is read window by window through the row callback and never
sits in SRAM (MCUNetV2's "excluding the input" figures, achievable on a device).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MLPERF = ROOT.parent / "shared" / "models" / "mlperf_tiny"

# torchvision MobileNetV2: (expansion t, channels c, repeats n, stride s)
MBV2_SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _make_divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def mobilenet_v2(width: float):
    import torch
    from torch import nn

    def cbr(i, o, k=3, s=1, g=1):
        return [nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False), nn.BatchNorm2d(o), nn.ReLU6()]

    class Block(nn.Module):
        def __init__(self, i, o, s, t):
            super().__init__()
            hidden = i * t
            layers = (cbr(i, hidden, 1) if t != 1 else []) + cbr(hidden, hidden, 3, s, hidden) + \
                [nn.Conv2d(hidden, o, 1, bias=False), nn.BatchNorm2d(o)]
            self.body = nn.Sequential(*layers)
            self.residual = s == 1 and i == o

        def forward(self, x):
            return x + self.body(x) if self.residual else self.body(x)

    c_in = _make_divisible(32 * width)
    last = _make_divisible(1280 * max(1.0, width))
    layers = cbr(3, c_in, 3, 2)
    for t, c, n, s in MBV2_SETTING:
        c_out = _make_divisible(c * width)
        for i in range(n):
            layers.append(Block(c_in, c_out, s if i == 0 else 1, t))
            c_in = c_out
    layers += cbr(c_in, last, 1) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(last, 1000)]
    net = nn.Sequential(*layers).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return net


def export_mbv2(width: float, res: int, folder: Path) -> Path:
    import torch

    path = folder / f"mbv2_{width}_{res}.onnx"
    x = torch.zeros(1, 3, res, res)
    torch.onnx.export(mobilenet_v2(width), (x,), path, input_names=["x"], output_names=["y"], opset_version=17,
                      dynamo=False)
    return path


def _calib(shape, n=2):
    rng = np.random.default_rng(0)
    return rng.normal(0, 1, (n,) + tuple(shape)).astype(np.float32)


def plan(path: Path, patch: str, sram: int | None, calib: Path | None, stream: bool = False):
    """(program, memory plan, decision) as `tinycc compile --patch ... [--stream-input]` makes them."""
    from tinycc.compiler import QuantOptions, build_program
    from tinycc.frontend import load_graph
    from tinycc.passes import run_pipeline
    from tinycc.schedule.search import PatchOptions, parse_patch

    g = run_pipeline(load_graph(path))
    program = build_program(g, QuantOptions(calib=str(calib) if calib else None), warn=lambda m: None)
    from tinycc.schedule.search import plan_program

    return g, *plan_program(program, PatchOptions(*parse_patch(patch), sram, stream=stream))


def row(label, program, mem, decision):
    from tinycc.schedule.search import extra_macs

    pp = program.patch
    inp = program.tensors[program.inputs[0]].size
    extra = extra_macs(pp) if pp else 0
    macs0 = program.macs - extra
    chosen = pp.config.text() if pp else "layer by layer"
    if program.streamed_input:  # the arena holds no input: the peak is the figure without it
        print(f"| {label} | {chosen} | streamed | {mem.arena_bytes:,} | {inp:,} never in SRAM | "
              f"{100 * extra / macs0:.2f} % |" + (f" {decision.layer_by_layer_arena:,} |" if decision else " |"))
        return
    print(f"| {label} | {chosen} | {mem.arena_bytes:,} | {mem.arena_bytes - inp:,} | {inp:,} | "
          f"{100 * extra / macs0:.2f} % |" + (f" {decision.layer_by_layer_arena:,} |" if decision else " |"))


def stages(program, mem) -> None:
    """The stages of a plan: where each runs, its grid and halo strategy, its own peak, its MACs;
    and the planner's lower bound for the whole plan (live bytes less what overlaps may share).
    Peaks are arena bytes in use (occupied_bytes: buffers placed over one another count once)."""
    from tinycc.memory.lifetimes import occupied_bytes
    from tinycc.schedule.patches import patch_stages

    print(f"\nplan {program.patch.config.text()}: arena {mem.arena_bytes:,} B, planner's lower bound "
          f"{mem.lower_bound:,} B ({mem.lower_bound_kind})")
    end, in_use = 0, occupied_bytes(mem)
    for n, pp in enumerate(patch_stages(program.patch)):
        steps = [k for ks in pp.patch_steps for k in ks]
        peak = max(in_use[k] for k in steps)
        end = max(steps)
        print(f"- stage {n + 1}: steps {pp.start}..{pp.config.split - 1} -> {pp.stage_output} "
              f"{'x'.join(map(str, program.tensors[pp.stage_output].shape[1:]))}, grid {pp.config.rows} x "
              f"{pp.config.cols}, halo {pp.halo}, peak in use {peak:,} B, +{100 * pp.mac_overhead:.1f} % of the "
              f"stage's MACs")
    after = max(in_use[end + 1:], default=0)
    print(f"- after the stages, layer by layer: peak in use {after:,} B\n")


def bit_exact(g, program, mem, reference_program, x) -> bool:
    """Patched C (host) == layer-by-layer golden on one input."""
    from tinycc.engines import CompiledModel
    from tinycc.lower import quantize_inputs
    from tinycc.reference.int_exec import run_int8

    model = CompiledModel.from_program(g, program, mem)
    c_out, _ = model.run_c({g.inputs[0]: x})
    ref = run_int8(reference_program, quantize_inputs(reference_program, {g.inputs[0]: x}))
    return all(np.array_equal(c_out[k], ref[k]) for k in ref)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-mbv2", action="store_true")
    ap.add_argument("--skip-qemu", action="store_true")
    args = ap.parse_args()
    print("| model | patch stage | peak SRAM (input counted) | without the input | input | extra MACs | layer by layer |")
    print("|---|---|---:|---:|---:|---:|---:|")
    vww = MLPERF / "vww_mobilenetv1_025_qdq.onnx"
    results = {}
    if vww.exists():
        for patch, stream in (("off", False), ("auto", False), ("auto", True)):
            t = time.time()
            g, program, mem, decision = plan(vww, patch, 256 * 1024, None, stream)
            results[("vww", patch + (" --stream-input" if stream else ""))] = (g, program, mem)
            row(f"VWW (MLPerf Tiny, TinyEngine patch 58,232) --patch {patch}{' --stream-input' if stream else ''} "
                f"[{time.time() - t:.1f} s]", program, mem, decision)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_mbv2:
            path = export_mbv2(1.0, 224, tmp)
            np.save(tmp / "c224.npy", _calib((3, 224, 224)))
            mbv2 = {}
            for patch, stream in (("off", False), ("auto", False), ("auto", True)):
                g, program, mem, decision = plan(path, patch, None, tmp / "c224.npy", stream)
                mbv2[(patch, stream)] = (program, mem)
                row(f"MobileNetV2-1.0 224 (MCUNetV2: 1372 kB -> 172 kB + 147 kB input) --patch {patch}"
                    f"{' --stream-input' if stream else ''}", program, mem, decision)
            program, mem = mbv2[("auto", True)]
            stages(program, mem)
            x = _calib((1, 3, 224, 224), 1)[0]
            print(f"\nMobileNetV2-1.0 224 --stream-input: streamed host C == layer-by-layer golden: "
                  f"{bit_exact(g, program, mem, mbv2[('off', False)][0], x)}\n")
        path = export_mbv2(0.35, 160, tmp)
        np.save(tmp / "c160.npy", _calib((3, 160, 160)))
        g, off_program, off_mem, _ = plan(path, "off", None, tmp / "c160.npy")
        row("MobileNetV2-0.35 160 --patch off", off_program, off_mem, None)
        # the default (--patch fit): patches only because layer by layer exceeds the budget
        g, program, mem, decision = plan(path, "fit", 256 * 1024, tmp / "c160.npy")
        row("MobileNetV2-0.35 160 --sram 256k (default --patch fit)", program, mem, decision)
        x = _calib((1, 3, 160, 160), 1)[0]
        print(f"\nMobileNetV2-0.35 160: layer by layer {off_mem.arena_bytes:,} B > 256 KiB = {off_mem.arena_bytes > 262144}; "
              f"patched {mem.arena_bytes:,} B fits = {mem.arena_bytes <= 262144}; patched host C == layer-by-layer "
              f"golden: {bit_exact(g, program, mem, off_program, x)}")
    if vww.exists() and not args.skip_qemu:
        from tinycc.engines import CompiledModel
        from tinycc.sim.qemu import missing_tools

        if missing_tools():
            print("QEMU/arm-none-eabi-gcc missing: no instruction counts")
            return 0
        x = np.load(MLPERF / "samples.npz")["vww_mobilenetv1_025_int8"][:1]
        from tinycc.schedule.search import instruction_overhead

        g, off_program, off_mem = results[("vww", "off")]
        off_outs, off_run = CompiledModel.from_program(g, off_program, off_mem).run_qemu({g.inputs[0]: x}, "cortex-m4")
        i0 = off_run.instructions
        # the chosen plans, and each one's grid with the other halo strategy (same input mode)
        plans = [("auto", results[("vww", "auto")]), ("auto --stream-input", results[("vww", "auto --stream-input")])]
        for label, (_, program, _) in list(plans):
            cfg = program.patch.config
            other = f"{cfg.split}x{cfg.rows}x{cfg.cols}" + ("" if cfg.halo == "reuse" else ":reuse")
            if cfg.rows > 1 or cfg.halo == "reuse":
                stream = program.streamed_input is not None
                _, p2, m2, _ = plan(vww, other, 256 * 1024, None, stream)
                plans.append((other + (" --stream-input" if stream else ""), (g, p2, m2)))
        print(f"\nVWW on Cortex-M4 (QEMU), layer by layer {i0:,} instructions:\n")
        print("| --patch | plan | peak SRAM | extra MACs | extra M4 instructions (QEMU) | search's estimate | "
              "outputs == layer by layer |")
        print("|---|---|---:|---:|---:|---:|---|")
        for label, (g, program, mem) in plans:
            outs, run = CompiledModel.from_program(g, program, mem).run_qemu({g.inputs[0]: x}, "cortex-m4")
            pp = program.patch
            extra = pp.macs_patched - pp.macs_layer_by_layer
            same = all(np.array_equal(off_outs[k], outs[k]) for k in off_outs)
            peak = f"{mem.arena_bytes:,}" + (" (input streamed)" if program.streamed_input else "")
            print(f"| {label} | {pp.config.text()} | {peak} | {100 * extra / (program.macs - extra):.2f} % | "
                  f"{100 * (run.instructions - i0) / i0:+.2f} % | "
                  f"{100 * instruction_overhead(program, mem, off_program):+.2f} % | {same} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
