"""Instruction budgets of the Cortex-M4 kernels (depthwise, shallow pointwise, max and average
pooling, add, mul), shape by shape
(deterministic QEMU counts).

The shapes and the measurement are benchmarks/bench_kernels.py's: one image with every call,
tc_trace_step around each, outputs checked bit for bit against the golden model. A budget is the
figure measured when it was set plus a few percent, so that a change that slows a kernel path
down (a shape falling off its fast path, a loop that spills) fails here rather than passing
unnoticed; a change that makes a path faster should lower its budget.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tinycc.sim.qemu import missing_tools

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from bench_kernels import (AVGPOOL, DEPTHWISE, DEPTHWISE_INPLACE, ELEMENTWISE, FIRSTCONV, MAXPOOL,  # noqa: E402
                           POINTWISE, measure, pooled_by_kernel)

_MISSING = missing_tools(run=True)
pytestmark = pytest.mark.skipif(_MISSING is not None,
                                reason=f"Cortex-M toolchain or QEMU unavailable: {_MISSING}")

# Instructions per MAC on the M4, per shape (out of place), measured + ~3 % (the 3x3 ones + ~1 %).
DEPTHWISE_BUDGETS = {
    "dw3x3_s1_48x48x8": 2.69,        # 3x3 stride 1: 4 pixels at a time, tc_dsp_rq2 (was 2.98, 3.30)
    "dw3x3_s1_24x24x32": 2.72,       # (was 2.73, 3.03, 3.35)
    "dw3x3_s1_12x12x64": 2.96,       # (was 3.28, 3.57)
    "dw3x3_s1_6x6x128": 3.81,        # a quad and a pair per row (was 3.82, 4.12, 4.15)
    "dw3x3_s1_3x3x256": 6.42,        # a pair and one pixel in C per row, per-group set-up (was 6.45, 6.70)
    "dw3x3_s2_48x48x32": 3.73,       # (was 3.76, 4.07, 4.15)
    "dw3x3_s2_6x6x128": 7.25,        # (was 7.29, 7.63, 7.65)
    "dw3x3_s1_wide_80x16": 2.79,     # rows wider than the quad ring: column tiles (was 2.80, 3.09, 3.40)
    "dw3x3_s2_wide_112x16": 3.96,    # (was 3.97, 4.30, 4.40)
    "dw3x3_s2_wide_64x24": 4.07,     # (was 4.08, 4.41, 4.50)
    "dw5x5_s1_20x20x48": 2.39,       # kernel rows unrolled in the assembly (was 2.65, 5.49)
    "dw5x5_s2_40x40x24": 3.09,       # (was 3.35, 5.50)
    "dw5x5_s1_5x5x160": 3.29,        # (was 3.85, 4.46)
    "dw5x5_s1_wide_96x8": 2.37,      # (was 2.60, 5.72)
    "dw7x7_s1_20x20x48": 2.09,       # (was 2.26, 4.11)
    "dw7x7_s2_40x40x24": 2.41,       # (was 2.55, 4.21)
    "dw7x7_s1_10x10x96": 2.17,       # (was 2.35, 3.84)
    "dw7x7_s2_10x10x96": 2.88,       # (was 3.40, 3.85)
    "dw7x7_s1_5x5x160": 2.71,        # (was 3.15, 2.83)
    "dw7x7_s1_wide_64x8": 2.10,      # (was 2.25, 4.33)
    "dw3x3_s1_12x12x20_c_not_4n": 2.99,  # (was 3.31, 3.60)
    "dw5x5_s1_10x10x30_c_not_4n": 2.89,  # (was 3.15, 5.78)
}
# In place, where one column tile holds the row (wider rows fall back to the plane path).
INPLACE_BUDGETS = {
    "dw3x3_s1_24x24x32_inplace": 2.73,   # (was 3.03)
    "dw3x3_s1_6x6x128_inplace": 3.82,    # (was 4.10)
    "dw5x5_s1_20x20x48_inplace": 2.40,   # (was 2.65, 11.89)
    "dw7x7_s1_10x10x96_inplace": 2.17,   # (was 2.35, 13.12)
    "dw7x7_s2_10x10x96_inplace": 2.89,   # (was 3.40, 14.21)
    "dw7x7_s1_5x5x160_inplace": 2.71,    # (was 3.15, 14.73)
    "dw5x5_s1_10x10x30_c_not_4n_inplace": 2.89,  # (was 3.15, 15.13)
}
# Pointwise and first layers with few input channels, instructions per MAC. Shallow 1x1 layers
# (Cin <= 8) take tc_conv2d_s8_dsp.c's conv2d_s8_shallow: per output 2 or 4 SMLADs and
# tc_dsp_rq2 (SMMLAR, SUB, ASR, SSAT; 6 instructions with the store), so Cin 3-4 cannot reach
# the 2.0; Cin 8 does (issue 15: <= 2.0).
POINTWISE_BUDGETS = {
    "pw_cin3_cout16_24x24": 3.84,             # (was 4.70; 42.55 on the portable path)
    "pw_cin4_cout16_24x24": 2.88,             # (was 3.52; 7.39)
    "pw_cin8_cout16_24x24": 2.04,             # (was 2.41; 3.70)
    "pw_cin8_cout48_12x12": 1.97,             # (was 2.31; 3.24)
    "pw_cin16_cout32_12x12": 2.09,            # the pixel-pair path (was 2.31, 2.17)
    "first_conv3x3_s2_cin3_cout8_48x48": 1.99,  # tc_conv2d_s8_first_dsp.c, measured 1.98 (budget was 2.09; 3.10 gathered)
}
# First layers as the MLPerf Tiny models have them (bench_kernels.py FIRSTCONV), per MAC: the
# first-layer path (tc_conv2d_s8_first_dsp.c): in one pass where every channel's widened weights
# fit beside a block of 8 pixels (VWW), in two passes over the input for IC's 16 channels; the
# gathered pixel-pair path for the KWS stem (64 channels: 32 passes).
FIRSTCONV_BUDGETS = {
    "first_conv3x3_s2_cin3_cout8_vww_rows": 2.01,    # measured 2.00 (was 2.09, 3.11)
    "first_conv3x3_s1_cin3_cout16_ic": 2.02,         # two passes, measured 2.01 (was 2.11; 2.39 gathered)
    "first_conv10x4_s2_cin1_cout64_kws": 1.64,       # the gathered path (was 1.76)
    "first_conv3x3_s1_cin1_cout16_28x28": 4.5,       # measured 4.46 (was 4.50; 41.8: the portable loop)
}
# Max pooling, instructions per element tap (the goal: <= 4 where channels come in 4s).
MAXPOOL_BUDGETS = {
    # a whole window's taps built once per run of whole windows, not per output pixel
    "maxpool2x2_s2_24x24x16": 3.5,           # (was 3.95, 19.0)
    "maxpool3x3_s2_32x32x16": 2.67,          # (was 3.00, 13.4)
    "maxpool2x2_s2_12x12x6_c_not_4n": 6.9,   # 2 words, the second over channels 2-5 (was 11.27, 20.1)
}
# Average pooling, instructions per element tap (tc_avgpool_s8_dsp.c; portable C in brackets).
AVGPOOL_BUDGETS = {
    "avgpool_global_25x5x64_kws": 1.95,   # (8.14)
    "avgpool_global_8x8x64_ic": 2.30,     # (8.04)
    "avgpool_global_3x3x256_vww": 6.40,   # per-output requantization dominates 9 taps (15.77)
    "avgpool2x2_s2_16x16x16": 14.3,       # 4 taps: window set-up and division per output (20.55)
}
# ADD / MUL, instructions per output element (the goal: <= 20). ADD layers of >= 1,024
# elements take tc_add_s8_table (operands looked up in 2 KB of compile-time tables, then one
# SMMLAR requantization; clamped outputs 4 to a word, clamped lane-wise); add_rows_*: tc_add_s8,
# what smaller ADD layers take.
ELEMENTWISE_BUDGETS = {
    "add_16x16x32_second_scale_smaller": 12.3,  # tc_add_s8_table (was 19.06 on tc_add_s8's rows)
    "add_8x8x64_equal_scales": 12.35,           # (was 15.12)
    "add_16x16x32_clamped": 14.9,               # 4 outputs packed, SSUB8 + SEL clamps (was 23.06)
    # the 0.5 operand without a multiply, its zero point in the other's rounding constant,
    # tc_dsp_rq2 on the doubled sum
    "add_rows_16x16x32_second_scale_smaller": 15.2,  # (was 19.06, 20.06, 94.1)
    "add_rows_8x8x64_equal_scales": 14.3,            # tc_dsp_rq2 (was 15.12, 16.12, 94.1)
    "add_rows_16x16x32_clamped": 18.25,              # a fused clamp of the upper bound (was 23.06, 24.06, 30.5, 94.1)
    "mul_16x16x32": 14.4,                       # tc_dsp_rq2 on the doubled product (was 16.05, 49.0)
}
# Pooled over the out-of-place shapes above, per kernel size (the goal: <= 3.5, 3x3 <= 3.0).
POOLED_BUDGETS = {"3x3": 3.29, "5x5": 2.67, "7x7": 2.28}  # 3x3 measured 3.25 (was 3.26, 3.49)


@pytest.fixture(scope="module")
def figures():
    shapes = dict(DEPTHWISE)
    shapes.update({name: DEPTHWISE_INPLACE[name] for name in INPLACE_BUDGETS})
    shapes.update(POINTWISE)
    shapes.update(MAXPOOL)
    shapes.update(AVGPOOL)
    shapes.update(ELEMENTWISE)
    shapes.update(FIRSTCONV)  # last: the shapes above keep their seeds
    return measure(shapes, "cortex-m4")


def test_every_budget_names_a_benchmark_shape():
    assert set(DEPTHWISE_BUDGETS) == set(DEPTHWISE)
    assert set(INPLACE_BUDGETS) <= set(DEPTHWISE_INPLACE)
    assert set(POINTWISE_BUDGETS) == set(POINTWISE)
    assert set(MAXPOOL_BUDGETS) == set(MAXPOOL)
    assert set(AVGPOOL_BUDGETS) == set(AVGPOOL)
    assert set(ELEMENTWISE_BUDGETS) == set(ELEMENTWISE)
    assert set(FIRSTCONV_BUDGETS) == set(FIRSTCONV)


@pytest.mark.parametrize("name", list(FIRSTCONV_BUDGETS))
def test_first_layer_shape_within_budget(figures, name):
    macs, n = figures[name]
    budget = FIRSTCONV_BUDGETS[name]
    assert n / macs <= budget, f"{name}: {n:,} instructions, {n / macs:.2f} per MAC > {budget}"


@pytest.mark.parametrize("name", list(ELEMENTWISE_BUDGETS))
def test_elementwise_shape_within_budget(figures, name):
    elements, n = figures[name]
    assert n / elements <= ELEMENTWISE_BUDGETS[name], f"{name}: {n / elements:.2f} per element"


@pytest.mark.parametrize("name", list(POINTWISE_BUDGETS))
def test_pointwise_shape_within_budget(figures, name):
    macs, n = figures[name]
    budget = POINTWISE_BUDGETS[name]
    assert n / macs <= budget, f"{name}: {n:,} instructions, {n / macs:.2f} per MAC > {budget}"


@pytest.mark.parametrize("name", list(MAXPOOL_BUDGETS))
def test_maxpool_shape_within_budget(figures, name):
    taps, n = figures[name]
    assert n / taps <= MAXPOOL_BUDGETS[name], f"{name}: {n / taps:.2f} per tap"


@pytest.mark.parametrize("name", list(AVGPOOL_BUDGETS))
def test_avgpool_shape_within_budget(figures, name):
    taps, n = figures[name]
    assert n / taps <= AVGPOOL_BUDGETS[name], f"{name}: {n / taps:.2f} per tap"


@pytest.mark.parametrize("name", list(DEPTHWISE_BUDGETS) + list(INPLACE_BUDGETS))
def test_depthwise_shape_within_budget(figures, name):
    budget = {**DEPTHWISE_BUDGETS, **INPLACE_BUDGETS}[name]
    macs, n = figures[name]
    assert n / macs <= budget, f"{name}: {n:,} instructions, {n / macs:.2f} per MAC > {budget}"


def test_depthwise_pooled_by_kernel_size_within_budget(figures):
    pooled = pooled_by_kernel({k: v for k, v in figures.items() if k in DEPTHWISE})
    for size, budget in POOLED_BUDGETS.items():
        assert pooled[size] <= budget, (size, pooled)


# --optimize size (-DTC_OPTIMIZE_SIZE): the 5x5 and 7x7 assembly goes over the kernel rows by a
# loop (about 2 KB of code instead of 7.5 KB for the unrolled rows), on the same job. Measured:
# 2.47, 3.14, 2.21, 2.88 per MAC against 2.32, 3.00, 2.10, 2.79 unrolled.
SIZE_BUILD_BUDGETS = {"dw5x5_s1_20x20x48": 2.55, "dw5x5_s2_40x40x24": 3.24, "dw7x7_s1_10x10x96": 2.28,
                      "dw7x7_s2_10x10x96": 2.97}


def test_depthwise_size_build_is_bit_exact_within_budget():
    figures = measure({name: DEPTHWISE[name] for name in SIZE_BUILD_BUDGETS}, "cortex-m4",
                      ("TC_OPTIMIZE_SIZE",))  # raises on any output differing from the golden model
    over = {name: round(n / macs, 3) for name, (macs, n) in figures.items()
            if n / macs > SIZE_BUILD_BUDGETS[name]}
    assert not over, over
