"""benchmarks/bench_profile.py's arithmetic (no QEMU): the best rate per layer class, the
instructions above it ("excess", what the kernel owners are aimed with) and the layer shapes."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from bench_profile import LayerCount, ModelProfile, best_rates, describe_shape, excess  # noqa: E402


def _layer(cls, macs, instructions):
    return LayerCount("s", "k", "", cls, macs, instructions)


def test_best_rate_is_the_lowest_per_class_over_every_model():
    a = ModelProfile("a", 0, True, [_layer("conv", 100, 150), _layer("depthwise", 10, 40), _layer(None, 0, 99)])
    b = ModelProfile("b", 0, True, [_layer("conv", 200, 250), _layer("depthwise", 10, 35)])
    assert best_rates([a, b]) == {"conv": 1.25, "depthwise": 3.5}


def test_excess_is_what_the_best_rate_would_save():
    best = {"conv": 1.25}
    assert excess(_layer("conv", 100, 150), best) == 25
    assert excess(_layer("conv", 200, 250), best) == 0  # the best layer itself
    assert excess(_layer(None, 0, 500), best) == 0  # not a MAC layer: nothing to compare with


def test_shapes_of_windowed_and_other_steps():
    conv = SimpleNamespace(params=SimpleNamespace(in_h=49, in_w=10, in_c=1, out_h=25, out_w=5, out_c=64,
                                                  k_h=10, k_w=4, stride_h=2), args=[])
    assert describe_shape(conv, None) == "49x10x1 -> 25x5x64 k10x4 s2"
    program = SimpleNamespace(tensors={"y": SimpleNamespace(shape=(1, 12))})
    fc = SimpleNamespace(params=SimpleNamespace(), args=[SimpleNamespace(kind="in", ref="x"),
                                                         SimpleNamespace(kind="out", ref="y")])
    assert describe_shape(fc, program) == "1x12"
