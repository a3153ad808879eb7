"""Fake quantization inserted into a torch model: weights per layer, activations per tensor.

prepare() traces the model with torch.fx, folds BatchNorm (fold.py), wraps every Conv2d and
Linear in a QuantConv2d / QuantLinear whose weight goes through a weight quantizer (int8 here,
ternary in prom.py, palette in codebook.py), and puts an ActQuant after every tensor that tinycc
quantizes with its own parameters: the graph input, each layer output (after the ReLU/ReLU6 that
tinycc fuses into it), additions, global average pools. Data movement, max pooling and windowed
average pooling keep their input's parameters in tinycc (OpDef.int8_output "same_as_input"), so
they get none. The quantized forward pass is what tinycc's integer model computes, up to the
rounding of requantization.

A weight quantizer maps the latent float weight W (output channels on axis 0) to integer codes
and a per-output-channel scale; the layer computes with codes * scale and the straight-through
estimator (W + stopgrad(codes*scale - W), quantization.md §1.5) passes the gradient to W.
"""
from __future__ import annotations

import operator
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..quant.params import choose_qparams
from .fold import fold_batchnorm

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """Rounding as tinycc's quantizer does it (quant/params.py), not torch.round's half-to-even."""
    return torch.sign(x) * torch.floor(torch.abs(x) + 0.5)


def straight_through(latent: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
    """`quantized` in the forward pass, the identity's gradient to `latent` in the backward pass."""
    return latent + (quantized - latent).detach()


def channel_shape(w: torch.Tensor) -> list[int]:
    return [-1] + [1] * (w.dim() - 1)


class WeightQuantizer(nn.Module):
    """Latent float weights -> (integer codes, per-output-channel scale). Subclasses define
    codes_and_scale; forward is the straight-through fake quantization used in training."""

    scheme = "int8"

    def codes_and_scale(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            codes, scale = self.codes_and_scale(w)
        return straight_through(w, codes * scale.reshape(channel_shape(w)))


class Int8Weight(WeightQuantizer):
    """Symmetric int8 per output channel, codes in [-127, 127], scale max|W|/127 (an all-zero
    channel gets scale 1): the same rule as tinycc's PTQ (quant/params.quantize_weights_per_channel)."""

    scheme = "int8"

    def codes_and_scale(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = w.detach().reshape(w.shape[0], -1)
        scale = flat.abs().amax(dim=1) / 127.0
        scale = torch.where(scale > 0, scale, torch.ones_like(scale)).float()
        codes = round_half_away(w.detach() / scale.reshape(channel_shape(w))).clamp(-127, 127)
        return codes, scale


class _QuantLayer(nn.Module):
    """A Conv2d or Linear whose weight goes through `quantizer`. freeze() fixes the integer
    codes for the ONNX export, where the weight is a constant behind a per-channel
    QuantizeLinear/DequantizeLinear pair (export.py turns it into int8 codes)."""

    def __init__(self, layer: nn.Module, quantizer: WeightQuantizer):
        super().__init__()
        self.layer = layer
        self.quantizer = quantizer
        self.frozen = False

    @property
    def weight(self) -> nn.Parameter:
        return self.layer.weight

    @property
    def bias(self) -> nn.Parameter | None:
        return self.layer.bias

    def codes_and_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return self.quantizer.codes_and_scale(self.layer.weight)

    def quantized_weight(self) -> torch.Tensor:
        """codes * scale: the weight the integer model uses (no gradient)."""
        codes, scale = self.codes_and_scale()
        return codes * scale.reshape(channel_shape(codes))

    def freeze(self) -> None:
        """Fix codes * scale as a constant (a persistent buffer, so the exporter writes it as an
        initializer) for the ONNX export; export.py then replaces it by the int8 codes and a
        per-channel DequantizeLinear."""
        codes, scale = self.codes_and_scale()
        self.frozen_codes, self.frozen_scale = codes.to(torch.int8), scale.float()
        self.register_buffer("frozen_weight", (codes * scale.reshape(channel_shape(codes))).float())
        self.frozen = True

    def unfreeze(self) -> None:
        self._buffers.pop("frozen_weight", None)
        self.frozen = False

    def weight_for_forward(self) -> torch.Tensor:
        return self.frozen_weight if self.frozen else self.quantizer(self.layer.weight)


class QuantConv2d(_QuantLayer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer._conv_forward(x, self.weight_for_forward(), self.layer.bias)


class QuantLinear(_QuantLayer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight_for_forward(), self.layer.bias)


class ActQuant(nn.Module):
    """Per-tensor asymmetric int8 fake quantization of an activation (TFLite's scheme).

    The range is observed while `observing` (minmax: the running min and max, as tinycc's PTQ
    calibration; ema: an exponential moving average of each batch's min and max, Jacob et al.
    2018, while fine-tuning); scale and zero point then follow tinycc's own rule
    (quant.params.choose_qparams), so the exported parameters are the ones tinycc would choose
    for that range. `fixed` = (scale, zero point) for outputs TFLite fixes (softmax, sigmoid)."""

    def __init__(self, momentum: float = 0.9, fixed: tuple[float, int] | None = None):
        super().__init__()
        self.momentum = momentum
        self.fixed = fixed
        self.mode = "ema"  # or "minmax"
        self.observing = False
        self.enabled = True
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.register_buffer("seen", torch.tensor(False))

    def observe(self, x: torch.Tensor) -> None:
        lo, hi = x.detach().min(), x.detach().max()
        if not bool(self.seen):
            self.lo.copy_(lo)
            self.hi.copy_(hi)
            self.seen.fill_(True)
        elif self.mode == "minmax":
            self.lo.copy_(torch.minimum(self.lo, lo))
            self.hi.copy_(torch.maximum(self.hi, hi))
        else:
            self.lo.mul_(self.momentum).add_((1 - self.momentum) * lo)
            self.hi.mul_(self.momentum).add_((1 - self.momentum) * hi)

    def qparams(self) -> tuple[float, int]:
        """(scale as a float32 value, zero point) of the observed range."""
        if self.fixed is not None:
            return float(np.float32(self.fixed[0])), int(self.fixed[1])
        if not bool(self.seen):
            raise RuntimeError("an activation quantizer has no range yet: run tinycc.qat.calibrate (or finetune) "
                               "on real samples first")
        qp = choose_qparams(float(self.lo), float(self.hi))
        scale, zp = qp.scalar()
        return float(np.float32(scale)), int(zp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fixed is None and (self.observing or self.training):
            self.observe(x)
        if not self.enabled or (self.fixed is None and not bool(self.seen)):
            return x
        scale, zp = self.qparams()
        return torch.fake_quantize_per_tensor_affine(x, scale, zp, INT8_MIN, INT8_MAX)


# What tinycc does with each op's output (ops/*.py int8_output): its own calibrated params, the
# input's params (no quantizer needed), or TFLite's fixed ones.
SAME_AS_INPUT_MODULES = (nn.Identity, nn.Flatten, nn.Dropout, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
                         nn.Unflatten)
FUSED_ACTIVATION_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardtanh)
FIXED_MODULES = {nn.Softmax: (1 / 256, -128), nn.Sigmoid: (1 / 256, -128), nn.Tanh: (1 / 128, 0)}
SAME_AS_INPUT_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, torch.transpose,
                           torch.permute, operator.getitem, F.max_pool2d, F.avg_pool2d, F.dropout}
FUSED_ACTIVATION_FUNCTIONS = {F.relu, torch.relu, F.relu6, F.hardtanh, torch.clamp}
FIXED_FUNCTIONS = {F.softmax: (1 / 256, -128), torch.softmax: (1 / 256, -128), torch.sigmoid: (1 / 256, -128),
                   torch.tanh: (1 / 128, 0)}
SAME_AS_INPUT_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose", "contiguous",
                         "size", "dim"}
FUSED_ACTIVATION_METHODS = {"relu", "clamp"}
FIXED_METHODS = {"softmax": (1 / 256, -128), "sigmoid": (1 / 256, -128), "tanh": (1 / 128, 0)}


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def is_fused_activation(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(_module(gm, node), FUSED_ACTIVATION_MODULES)
    if node.op == "call_function":
        return node.target in FUSED_ACTIVATION_FUNCTIONS
    return node.op == "call_method" and node.target in FUSED_ACTIVATION_METHODS


def output_rule(gm: fx.GraphModule, node: fx.Node):
    """None (no quantizer: not a float tensor, or keeps its input's params), "calibrated", or
    ("fixed", scale, zero point) for the output of `node`."""
    meta = node.meta.get("tensor_meta")
    if node.op in ("output", "get_attr") or meta is None or not hasattr(meta, "dtype") or \
            not meta.dtype.is_floating_point:
        return None
    if node.op == "placeholder":
        return "calibrated"
    if isinstance(_module(gm, node), _QuantLayer) and len(node.users) == 1 and \
            is_fused_activation(gm, next(iter(node.users))):
        return None  # tinycc fuses the ReLU/ReLU6 into the layer: quantize after it
    if node.op == "call_module":
        mod = _module(gm, node)
        if isinstance(mod, SAME_AS_INPUT_MODULES):
            return None
        for kind, params in FIXED_MODULES.items():
            if isinstance(mod, kind):
                return ("fixed", *params)
    elif node.op == "call_function":
        if node.target in SAME_AS_INPUT_FUNCTIONS:
            return None
        if node.target in FIXED_FUNCTIONS:
            return ("fixed", *FIXED_FUNCTIONS[node.target])
    elif node.op == "call_method":
        if node.target in SAME_AS_INPUT_METHODS:
            return None
        if node.target in FIXED_METHODS:
            return ("fixed", *FIXED_METHODS[node.target])
    return "calibrated"


def wrap_layers(gm: fx.GraphModule, quantizer_for: Callable[[str, nn.Module], WeightQuantizer]) -> None:
    """Every Conv2d / Linear becomes a QuantConv2d / QuantLinear with quantizer_for(name, layer)."""
    for node in gm.graph.nodes:
        layer = _module(gm, node)
        if isinstance(layer, nn.Conv2d):
            wrapped = QuantConv2d(layer, quantizer_for(node.target, layer))
        elif isinstance(layer, nn.Linear):
            wrapped = QuantLinear(layer, quantizer_for(node.target, layer))
        else:
            continue
        parent, _, leaf = node.target.rpartition(".")
        setattr(gm.get_submodule(parent) if parent else gm, leaf, wrapped)


def insert_activation_quantizers(gm: fx.GraphModule, momentum: float) -> None:
    for i, node in enumerate(list(gm.graph.nodes)):
        rule = output_rule(gm, node)
        if rule is None:
            continue
        name = f"act_quant_{i}"
        gm.add_submodule(name, ActQuant(momentum, fixed=None if rule == "calibrated" else rule[1:]))
        with gm.graph.inserting_after(node):
            q = gm.graph.call_module(name, (node,))
        node.replace_all_uses_with(q, delete_user_cb=lambda user, q=q: user is not q)


def prepare(model: nn.Module, example: torch.Tensor,
            quantizer_for: Callable[[str, nn.Module], WeightQuantizer] = lambda name, layer: Int8Weight(),
            momentum: float = 0.9) -> fx.GraphModule:
    """A fake-quantized copy of `model` (torch.fx GraphModule): BatchNorm folded, every Conv2d
    and Linear weight through quantizer_for(name, layer) (default: int8 per channel), an ActQuant
    after each tensor tinycc quantizes. `example`: one input batch (shapes and dtypes are traced
    with it). The model given is not changed. Calibrate next (train.calibrate)."""
    gm = fold_batchnorm(model)
    wrap_layers(gm, quantizer_for)
    gm.recompile()
    with torch.no_grad():
        ShapeProp(gm).propagate(example)
    insert_activation_quantizers(gm, momentum)
    gm.graph.lint()
    gm.recompile()
    return gm


def quant_layers(model: nn.Module) -> dict[str, _QuantLayer]:
    return {name: m for name, m in model.named_modules() if isinstance(m, _QuantLayer)}


def activation_quantizers(model: nn.Module) -> dict[str, ActQuant]:
    return {name: m for name, m in model.named_modules() if isinstance(m, ActQuant)}
