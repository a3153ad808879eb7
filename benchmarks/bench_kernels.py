"""Instructions per MAC of single kernel calls on an emulated Cortex-M, shape by shape.

Each shape below is one call of the int8 depthwise or convolution kernel (random weights,
inputs and per-channel requantization from tests/test_kernels_dsp.py's case makers, so the same
shapes the kernel tests use), cross-compiled for the core with the test driver
tests/c/qemu_kernels_driver.c (built with QK_PERF: tc_trace_step around every call), run under
QEMU with the instruction-count plugin, checked bit for bit against the numpy golden model.
The count of a call includes its dispatch (about 30 instructions: the params copy and the call).

Printed: per shape, the MACs (every tap of every window, padded ones included, as the models'
MAC counts; for max and average pooling the element taps; for ADD/MUL the output elements), the instructions
and the instructions per MAC (per tap, per element); then the depthwise figures pooled by kernel size (sum of instructions / sum of MACs).

Usage: python benchmarks/bench_kernels.py [--core cortex-m4] [--only depthwise|inplace|pointwise|maxpool|avgpool|elementwise|firstconv]
                                          [--define TC_NO_ASM] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_kernels_qemu import QEMU_KINDS as KINDS, build_image, golden, split_results  # noqa: E402
from tinycc.sim.qemu import missing_tools, run_elf  # noqa: E402
from tinycc.target import get_core  # noqa: E402


def _dw(in_hw, k, stride, c, pads=None, inplace=False):
    """A depthwise layer, 'same' padding by default (TF's: the extra pixel at the bottom/right);
    inplace: through tc_dwconv2d_s8_inplace with the output over the input (as the memory planner
    schedules most depthwise layers of inverted-residual nets)."""
    if pads is None:
        total = [max((-(-in_hw[i] // stride) - 1) * stride + k - in_hw[i], 0) for i in range(2)]
        pads = (total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2)
    kwargs = dict(in_hw=in_hw, k=(k, k), stride=(stride, stride), dil=(1, 1), pads=pads, in_c=c,
                  act="full", regime="normal", bias="small", style="uniform")
    return ("dw_inplace", kwargs) if inplace else ("dw", dict(kwargs, depth_mult=1))


def _pw(in_hw, in_c, out_c, k=1, stride=1, pads=(0, 0, 0, 0)):
    return ("conv", dict(in_hw=in_hw, k=(k, k), stride=(stride, stride), dil=(1, 1), pads=pads,
                         in_c=in_c, out_c=out_c, groups=1, act="full", regime="normal",
                         bias="small", style="uniform"))


# Depthwise layers of MobileNet/MCUNet/ProxylessNAS-like nets at MCU resolutions: every kernel
# size at strides 1 and 2, wide rows (wider than the 3x3 quad path's 50-pixel ring rows), small
# planes (per-row and per-group set-up), channels not a multiple of 4.
DEPTHWISE = {
    "dw3x3_s1_48x48x8": _dw((12, 48), 3, 1, 8),
    "dw3x3_s1_24x24x32": _dw((24, 24), 3, 1, 32),
    "dw3x3_s1_12x12x64": _dw((12, 12), 3, 1, 64),
    "dw3x3_s1_6x6x128": _dw((6, 6), 3, 1, 128),
    "dw3x3_s1_3x3x256": _dw((3, 3), 3, 1, 256),
    "dw3x3_s2_48x48x32": _dw((9, 48), 3, 2, 32),
    "dw3x3_s2_6x6x128": _dw((6, 6), 3, 2, 128),
    "dw3x3_s1_wide_80x16": _dw((6, 80), 3, 1, 16),
    "dw3x3_s2_wide_112x16": _dw((7, 112), 3, 2, 16),
    "dw3x3_s2_wide_64x24": _dw((7, 64), 3, 2, 24),
    "dw5x5_s1_20x20x48": _dw((10, 20), 5, 1, 48),
    "dw5x5_s2_40x40x24": _dw((9, 40), 5, 2, 24),
    "dw5x5_s1_5x5x160": _dw((5, 5), 5, 1, 160),
    "dw5x5_s1_wide_96x8": _dw((6, 96), 5, 1, 8),
    "dw7x7_s1_20x20x48": _dw((10, 20), 7, 1, 48),
    "dw7x7_s2_40x40x24": _dw((11, 40), 7, 2, 24),
    "dw7x7_s1_10x10x96": _dw((10, 10), 7, 1, 96),
    "dw7x7_s2_10x10x96": _dw((10, 10), 7, 2, 96),
    "dw7x7_s1_5x5x160": _dw((5, 5), 7, 1, 160),
    "dw7x7_s1_wide_64x8": _dw((8, 64), 7, 1, 8),
    "dw3x3_s1_12x12x20_c_not_4n": _dw((12, 12), 3, 1, 20),
    "dw5x5_s1_10x10x30_c_not_4n": _dw((10, 10), 5, 1, 30),
}

# The same layers in place (the planner's choice where it saves the second buffer).
DEPTHWISE_INPLACE = {
    f"{name}_inplace": _dw(kw["in_hw"], kw["k"][0], kw["stride"][0], kw["in_c"], kw["pads"], inplace=True)
    for name, (_, kw) in DEPTHWISE.items()
}

# Pointwise and first layers with few input channels (the requantization per output is spread
# over few MACs).
POINTWISE = {
    "pw_cin3_cout16_24x24": _pw((24, 24), 3, 16),
    "pw_cin4_cout16_24x24": _pw((24, 24), 4, 16),
    "pw_cin8_cout16_24x24": _pw((24, 24), 8, 16),
    "pw_cin8_cout48_12x12": _pw((12, 12), 8, 48),
    "pw_cin16_cout32_12x12": _pw((12, 12), 16, 32),
    "first_conv3x3_s2_cin3_cout8_48x48": _pw((48, 48), 3, 8, k=3, stride=2, pads=(0, 0, 1, 1)),
}

# First layers (tc_conv2d_s8_first_dsp.c) as the MLPerf Tiny models have them: the VWW stem
# (rows 0-23 of its 96x96 RGB input), the IC stem (32x32 RGB, padded on every side) and the KWS
# stem (10x4 windows over the 49x10 MFCC plane), and a 3x3 stem on one channel.
FIRSTCONV = {
    "first_conv3x3_s2_cin3_cout8_vww_rows": _pw((24, 96), 3, 8, k=3, stride=2, pads=(0, 0, 1, 1)),
    "first_conv3x3_s1_cin3_cout16_ic": _pw((32, 32), 3, 16, k=3, stride=1, pads=(1, 1, 1, 1)),
    "first_conv10x4_s2_cin1_cout64_kws": ("conv", dict(_pw((49, 10), 1, 64)[1], k=(10, 4),
                                                       stride=(2, 2), pads=(4, 1, 5, 1))),
    "first_conv3x3_s1_cin1_cout16_28x28": _pw((28, 28), 1, 16, k=3, stride=1, pads=(1, 1, 1, 1)),
}


def _maxpool(in_hw, k, stride, c, pads=(0, 0, 0, 0)):
    return ("maxpool", dict(in_hw=in_hw, k=(k, k), stride=(stride, stride), pads=pads, ceil_mode=False,
                            channels=c, act="full"))


# Max pooling (per element tap: output elements x window taps).
MAXPOOL = {
    "maxpool2x2_s2_24x24x16": _maxpool((24, 24), 2, 2, 16),
    "maxpool3x3_s2_32x32x16": _maxpool((32, 32), 3, 2, 16, pads=(1, 1, 1, 1)),
    "maxpool2x2_s2_12x12x6_c_not_4n": _maxpool((12, 12), 2, 2, 6),
}

def _avgpool(in_hw, k, stride, c, pads=(0, 0, 0, 0), use_requant=0):
    return ("avgpool", dict(in_hw=in_hw, k=(k, k) if isinstance(k, int) else k,
                            stride=(stride, stride), pads=pads, ceil_mode=False, channels=c,
                            count_include_pad=int(pads != (0, 0, 0, 0)), use_requant=use_requant,
                            act="full"))


# Average pooling (per element tap, as max pooling): the global pools that end the MLPerf Tiny
# models (KWS 25x5x64, IC 8x8x64, VWW 3x3x256, requantizing as TFLite MEAN) and a 2x2 window.
AVGPOOL = {
    "avgpool_global_25x5x64_kws": _avgpool((25, 5), (25, 5), 1, 64, use_requant=1),
    "avgpool_global_8x8x64_ic": _avgpool((8, 8), 8, 1, 64, use_requant=1),
    "avgpool_global_3x3x256_vww": _avgpool((3, 3), 3, 1, 256, use_requant=1),
    "avgpool2x2_s2_16x16x16": _avgpool((16, 16), 2, 2, 16),
}

# Element-wise ADD / MUL (per output element), the residual adds of ResNets and the gating
# products of SE blocks / hard-swish. ADD layers of >= 1,024 elements (all of these) are lowered
# to tc_add_s8_table (kind add_table: the operands looked up); the add_rows_* shapes measure
# tc_add_s8, which the smaller layers take, on the same shapes.
_ADD_SHAPES = {
    "16x16x32_second_scale_smaller": dict(shape=(1, 16, 16, 32), scales=(0.03, 0.012, 0.04)),
    "8x8x64_equal_scales": dict(shape=(1, 8, 8, 64), scales=(0.02, 0.02, 0.03)),
    "16x16x32_clamped": dict(shape=(1, 16, 16, 32), scales=(0.01, 0.03, 0.04), act=(-128, 100)),
}
ELEMENTWISE = {
    **{f"add_{name}": ("add_table", kwargs) for name, kwargs in _ADD_SHAPES.items()},
    **{f"add_rows_{name}": ("add", kwargs) for name, kwargs in _ADD_SHAPES.items()},
    "mul_16x16x32": ("mul", dict(shape=(1, 16, 16, 32), scales=(0.05, 1 / 256, 0.04))),
}

GROUPS = {"depthwise": DEPTHWISE, "inplace": DEPTHWISE_INPLACE, "pointwise": POINTWISE, "maxpool": MAXPOOL,
          "avgpool": AVGPOOL, "elementwise": ELEMENTWISE, "firstconv": FIRSTCONV}


def macs(kind: str, p) -> int:
    """MACs, or for (max, average) pooling element taps (output elements x window taps), for ADD/MUL output
    elements."""
    if kind in ("add", "add_table", "mul"):
        return int(np.prod(p.out_dims))
    if kind in ("maxpool", "avgpool"):
        return p.out_h * p.out_w * p.channels * p.k_h * p.k_w
    if kind in ("dw", "dw_inplace"):
        return p.out_h * p.out_w * p.out_c * p.k_h * p.k_w
    return p.out_h * p.out_w * p.out_c * p.k_h * p.k_w * (p.in_c // p.groups)


def make_cases(shapes: dict) -> list:
    """(kind, name, case) per shape; the seed is fixed so that counts are reproducible."""
    return [(kind, name, KINDS[kind][0](1000 + i, **kwargs))
            for i, (name, (kind, kwargs)) in enumerate(shapes.items())]


def measure(shapes: dict, core_name: str = "cortex-m4", defines: tuple[str, ...] = ()) -> dict:
    """{name: (MACs, instructions)}; raises AssertionError on any output differing from the
    golden model."""
    core = get_core(core_name)
    cases = make_cases(shapes)
    with tempfile.TemporaryDirectory(prefix="tinycc_bench_kernels_") as tmp:
        elf = build_image(core, cases, Path(tmp), defines=("QK_PERF", *defines))
        expected = [golden(kind, case) for kind, _, case in cases]
        run = run_elf(elf, core, [], [sum(1 + y.size for y in expected)], timeout=120)
    if run.step_instructions is None:
        raise RuntimeError("the QEMU instruction-count plugin is unavailable")
    counts = run.step_instructions[0::2]  # marks before and after each call
    assert len(counts) == len(cases)
    out = {}
    for (kind, name, case), want, (status, got), n in zip(cases, expected,
                                                        split_results(cases, run.outputs[0]), counts):
        assert status == 0 and np.array_equal(got, want), f"{name}: not bit-exact with the golden model"
        out[name] = (macs(kind, case[0]), n)
    return out


def pooled_by_kernel(figures: dict) -> dict:
    """Depthwise instructions per MAC pooled by kernel size ('3x3', '5x5', ...), out of place
    and in place together."""
    pools = defaultdict(lambda: [0, 0])
    for name, (m, n) in figures.items():
        if name.startswith("dw"):
            pool = pools[name[2:5]]
            pool[0] += n
            pool[1] += m
    return {k: v[0] / v[1] for k, v in sorted(pools.items())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--core", default="cortex-m4")
    ap.add_argument("--only", choices=sorted(GROUPS))
    ap.add_argument("--define", action="append", default=[],
                    help="extra -D for the build (e.g. TC_NO_ASM, TC_NO_DSP)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    missing = missing_tools(run=True)
    if missing:
        print(f"bench_kernels: cannot run: {missing}", file=sys.stderr)
        return 2
    shapes = {}
    for group, table in GROUPS.items():
        if args.only in (None, group):
            shapes.update(table)
    figures = measure(shapes, args.core, tuple(args.define))
    print(f"# Kernel calls on {args.core} (QEMU instructions, bit-exact with the golden model)\n")
    print("| shape | MACs (pooling: element taps; add/mul: elements) | instructions | per MAC (tap, element) |")
    print("|---|---:|---:|---:|")
    for name, (m, n) in figures.items():
        print(f"| {name} | {m:,} | {n:,} | {n / m:.2f} |")
    pooled = pooled_by_kernel(figures)
    if pooled:
        print("\nDepthwise, pooled by kernel size: " +
              ", ".join(f"{k} {v:.2f}" for k, v in pooled.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": figures, "pooled": pooled}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
