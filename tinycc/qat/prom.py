"""PROM (Meiner et al., arXiv 2505.03254): ternary pointwise convolutions, int8 elsewhere.

Every Conv2d with a 1x1 kernel and groups == 1 gets ternary weights t in {-1, 0, +1} times a
per-output-channel scale alpha_o (free at run time: per-channel requantization already has one
multiplier per channel); the first conv, depthwise convs and Linear layers stay int8 per
channel; activations are int8 per tensor (quantization.md §1.6). Threshold rules (§1.5):

  twn      Delta_o = 0.7 * mean|W_o|, t = sign(W) [|W| > Delta_o], alpha_o = mean of |W| over the
           support (the L2-optimal scale for that support; Li & Liu 2016)
  absmean  gamma_o = mean|W_o|, t = clamp(round(W / gamma_o), -1, 1), alpha_o = gamma_o
           (BitNet b1.58; the same as a threshold of 0.5 gamma_o)

The export writes t as int8 codes with alpha_o as the DequantizeLinear scale, so that tinycc's
int8 path computes exactly PROM's integer arithmetic and its ternary kernels detect the layer.
"""
from __future__ import annotations

import torch
from torch import fx, nn

from .prepare import Int8Weight, WeightQuantizer, prepare, round_half_away

TERNARY_RULES = ("twn", "absmean")
TWN_THRESHOLD = 0.7


def ternary_codes(w: torch.Tensor, rule: str = "twn") -> tuple[torch.Tensor, torch.Tensor]:
    """(codes in {-1, 0, +1} as floats, alpha per output channel) of weights `w` (axis 0 = output
    channels). A channel whose weights are all zero gets codes 0 and alpha 1 (a scale must be
    positive; it multiplies nothing)."""
    if rule not in TERNARY_RULES:
        raise ValueError(f"ternary rule {rule!r}: one of {', '.join(TERNARY_RULES)}")
    flat = w.detach().reshape(w.shape[0], -1)
    mean_abs = flat.abs().mean(dim=1, keepdim=True)
    if rule == "twn":
        support = flat.abs() > TWN_THRESHOLD * mean_abs
        codes = torch.sign(flat) * support
        count = support.sum(dim=1)
        alpha = (flat.abs() * support).sum(dim=1) / count.clamp_min(1)
    else:
        safe = torch.where(mean_abs > 0, mean_abs, torch.ones_like(mean_abs))
        codes = round_half_away(flat / safe).clamp(-1, 1)
        alpha = mean_abs.reshape(-1)
    alpha = torch.where(alpha > 0, alpha, torch.ones_like(alpha)).float()
    return codes.reshape(w.shape), alpha


class TernaryWeight(WeightQuantizer):
    """Straight-through ternary fake quantization with a per-output-channel scale."""

    scheme = "ternary"

    def __init__(self, rule: str = "twn"):
        super().__init__()
        if rule not in TERNARY_RULES:
            raise ValueError(f"ternary rule {rule!r}: one of {', '.join(TERNARY_RULES)}")
        self.rule = rule

    def codes_and_scale(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return ternary_codes(w, self.rule)

    def extra_repr(self) -> str:
        return f"rule={self.rule}"


def is_pointwise(layer: nn.Module) -> bool:
    """A 1x1 convolution with groups == 1: the layers PROM makes ternary."""
    return isinstance(layer, nn.Conv2d) and tuple(layer.kernel_size) == (1, 1) and layer.groups == 1


def prepare_prom(model: nn.Module, example: torch.Tensor, rule: str = "twn", momentum: float = 0.9) -> fx.GraphModule:
    """A fake-quantized copy of `model` for PROM: BatchNorm folded, pointwise convolutions
    ternary (rule "twn" or "absmean"), other layers int8 per channel, activations int8."""
    return prepare(model, example, lambda name, layer: TernaryWeight(rule) if is_pointwise(layer) else Int8Weight(),
                   momentum)
