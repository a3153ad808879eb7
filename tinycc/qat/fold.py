"""BatchNorm folding before quantization-aware training.

PROM's exported pointwise weights must be exactly ternary codes times a per-channel scale.
Folding a BatchNorm after quantization would multiply every weight of a channel by that
channel's BN factor and move the bias: the exported weights would no longer be the ones the
fine-tuning saw. So every BatchNorm is folded into the Conv2d / Linear that feeds it before the
fake quantizers see the weights; the fine-tuning trains the folded weights, and what is
quantized is what is exported (quantization.md §1.6: "fold BN into the conv before computing
Delta and alpha").

    W' = W * gamma / sqrt(var + eps)        (per output channel)
    b' = (b - mean) * gamma / sqrt(var + eps) + beta

This is the inference-mode BatchNorm (running statistics), exact up to float rounding.
"""
from __future__ import annotations

import copy

import torch
from torch import fx, nn

FOLDABLE = (nn.Conv2d, nn.Linear)
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def folded_weight_and_bias(weight: torch.Tensor, bias: torch.Tensor | None,
                           bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """(W', b') of a layer followed by `bn` in inference mode; output channels on axis 0."""
    with torch.no_grad():
        gamma = bn.weight if bn.affine else torch.ones_like(bn.running_var)
        beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        factor = gamma / torch.sqrt(bn.running_var + bn.eps)
        b = bias if bias is not None else torch.zeros_like(bn.running_mean)
        w = weight * factor.reshape([-1] + [1] * (weight.dim() - 1))
        return w, (b - bn.running_mean) * factor + beta


def fold_layer(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    """A copy of `layer` (Conv2d or Linear) with `bn` folded in; it always has a bias."""
    folded = copy.deepcopy(layer)
    w, b = folded_weight_and_bias(layer.weight, layer.bias, bn)
    folded.weight = nn.Parameter(w.detach().clone())
    folded.bias = nn.Parameter(b.detach().clone())
    return folded


def _target(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def fold_batchnorm(model: nn.Module) -> fx.GraphModule:
    """The model traced with torch.fx, every BatchNorm that follows a Conv2d/Linear (its only
    user) folded into it and removed. The input model is not changed. A BatchNorm that follows
    anything else is left in place (tinycc folds or lowers it at compile time; it is then not
    fake-quantized as a weight)."""
    was_training = model.training
    model.eval()  # BatchNorm folding uses the running statistics
    try:
        gm = fx.symbolic_trace(copy.deepcopy(model))
    finally:
        model.train(was_training)
    gm.eval()
    for node in list(gm.graph.nodes):
        bn = _target(gm, node)
        if not isinstance(bn, BATCHNORMS) or not node.args or not isinstance(node.args[0], fx.Node):
            continue
        producer = node.args[0]
        layer = _target(gm, producer)
        if not isinstance(layer, FOLDABLE) or len(producer.users) != 1:
            continue
        _set_submodule(gm, producer.target, fold_layer(layer, bn))
        node.replace_all_uses_with(producer)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm


def _set_submodule(root: nn.Module, dotted: str, module: nn.Module) -> None:
    parent_name, _, leaf = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, leaf, module)
