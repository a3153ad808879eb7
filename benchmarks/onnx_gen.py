"""Torch-free ONNX generators for compiler scaling and planner benchmarks (onnx.helper only).

    chain(layers)            Conv3x3+Relu repeated: the plain deep chain
    residual_chain(blocks)   identical residual blocks: x + Conv(Relu(Conv(x)))
    mobilenet_v2(width, res) MobileNetV2 (inverted residuals, ReLU6 as Clip) with random weights

Weights come from a seeded generator, so a model is the same file every time.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Builder:
    def __init__(self, seed: int = 0):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.k = 0

    def name(self, hint: str) -> str:
        self.k += 1
        return f"{hint}{self.k}"

    def const(self, arr: np.ndarray, hint: str) -> str:
        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(arr.astype(np.float32), n))
        return n

    def conv(self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, group: int = 1,
             gain: float = 1.0) -> str:
        fan_in = cin // group * k * k
        w = self.rng.normal(0, gain * np.sqrt(2.0 / fan_in), (cout, cin // group, k, k))
        b = self.rng.normal(0, 0.05, cout)
        y = self.name("conv")
        self.nodes.append(helper.make_node(
            "Conv", [x, self.const(w, "w"), self.const(b, "b")], [y], kernel_shape=[k, k],
            pads=[k // 2] * 4, strides=[stride, stride], group=group))
        return y

    def op(self, op: str, inputs: list[str], **attrs) -> str:
        y = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [y], **attrs))
        return y

    def relu6(self, x: str) -> str:
        lo = self.const(np.array(0.0), "lo")
        hi = self.const(np.array(6.0), "hi")
        return self.op("Clip", [x, lo, hi])

    def model(self, x: str, shape: list[int], y: str, out_shape: list[int], name: str) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, name,
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, out_shape)], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def chain(layers: int, channels: int = 8, hw: int = 8) -> onnx.ModelProto:
    """`layers` Conv3x3 + Relu on a small plane: compile time is dominated by per-node costs."""
    b = _Builder(1)
    x = "input"
    for _ in range(layers):
        x = b.op("Relu", [b.conv(x, channels, channels)])
    return b.model("input", [1, channels, hw, hw], x, [1, channels, hw, hw], f"chain{layers}")


def residual_chain(blocks: int, channels: int = 16, hw: int = 8) -> onnx.ModelProto:
    """`blocks` identical residual blocks x + Conv(Relu(Conv(x))), then Relu. The branch is scaled
    down (gain 0.05) so that 400 blocks stay finite in float32."""
    b = _Builder(2)
    x = "input"
    for _ in range(blocks):
        y = b.conv(b.op("Relu", [b.conv(x, channels, channels)]), channels, channels, gain=0.05)
        x = b.op("Relu", [b.op("Add", [x, y])])
    return b.model("input", [1, channels, hw, hw], x, [1, channels, hw, hw], f"residual{blocks}")


def _divisible(v: float, d: int = 8) -> int:
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


def mobilenet_v2(width: float = 1.0, res: int = 224, classes: int = 1000) -> onnx.ModelProto:
    """MobileNetV2 (Sandler et al. 2018) with random weights, BN folded into the convs."""
    b = _Builder(3)
    cin = _divisible(32 * width)
    x = b.relu6(b.conv("input", 3, cin, 3, 2))
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]
    for t, c, n, s in settings:
        cout = _divisible(c * width)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = x if t == 1 else b.relu6(b.conv(x, cin, hidden, 1))
            y = b.relu6(b.conv(y, hidden, hidden, 3, stride, group=hidden))
            y = b.conv(y, hidden, cout, 1)
            x = b.op("Add", [x, y]) if stride == 1 and cin == cout else y
            cin = cout
    last = _divisible(1280 * max(1.0, width))
    x = b.relu6(b.conv(x, cin, last, 1))
    x = b.op("GlobalAveragePool", [x])
    x = b.op("Flatten", [x], axis=1)
    w = b.const(b.rng.normal(0, 0.01, (classes, last)), "fc_w")
    fb = b.const(np.zeros(classes), "fc_b")
    x = b.op("Gemm", [x, w, fb], transB=1)
    return b.model("input", [1, 3, res, res], x, [1, classes], f"mobilenetv2_{width}_{res}")
