"""Sanity of the model zoo itself: every export runs in onnxruntime and agrees with torch."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import zoo
from conftest import ort_run, rel_err

EXPORT_TOLERANCE = 1e-5


def torch_outputs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    with torch.no_grad(), zoo.single_threaded():
        out = model(*inputs)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def test_export_matches_torch(zoo_key, zoo_models):
    path, inputs = zoo_models[zoo_key]
    model, example = zoo.ZOO[zoo_key[0]]()
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == list(inputs), "ONNX inputs must be the forward() arguments"
    assert [o.name for o in graph.output] == zoo.output_names(model)
    expected = torch_outputs(model, example)
    actual = ort_run(path, inputs)
    assert len(actual) == len(expected)
    for name, a, ref in zip(zoo.output_names(model), actual, expected):
        assert rel_err(a, ref) <= EXPORT_TOLERANCE, f"{zoo_key} output {name}"


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_torchscript_export_has_symbolic_batch(name, zoo_models):
    path, inputs = zoo_models[(name, "torchscript")]
    first = onnx.load(str(path)).graph.input[0]
    batch_dim = first.type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.HasField("dim_value")

    model, example = zoo.ZOO[name]()
    gen = torch.Generator().manual_seed(1)
    batched = (torch.randn((3, *example[0].shape[1:]), generator=gen), *example[1:])
    feeds = dict(zip(inputs, (t.numpy() for t in batched)))
    for a, ref in zip(ort_run(path, feeds), torch_outputs(model, batched)):
        assert rel_err(a, ref) <= EXPORT_TOLERANCE


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_zoo_model_is_deterministic_and_mcu_scale(name):
    (model, inputs), (again, inputs_again) = zoo.ZOO[name](), zoo.ZOO[name]()
    assert all(torch.equal(a, b) for a, b in zip(inputs, inputs_again))
    for (key, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), key
    assert sum(p.numel() for p in model.parameters()) <= 200_000
    assert all(t.numel() <= 64 * 64 * 3 for t in inputs)
    assert not model.training


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_batchnorm_is_exported_with_non_trivial_statistics(name, zoo_models):
    model, _ = zoo.ZOO[name]()
    batchnorms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    path, _ = zoo_models[(name, "torchscript")]
    exported = sum(n.op_type == "BatchNormalization" for n in onnx.load(str(path)).graph.node)
    assert exported == len(batchnorms), "the torchscript export must leave BatchNorm for tinycc to fold"
    for bn in batchnorms:
        assert not bn.training
        for trivial, tensor in ((0.0, bn.running_mean), (1.0, bn.running_var), (1.0, bn.weight), (0.0, bn.bias)):
            assert (tensor - trivial).abs().min() > 0 and (tensor - trivial).abs().max() > 0.05


def test_independent_counts_on_a_hand_counted_model():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),  # 216 weights + 8 folded bias; 8*8*8 outputs * 27
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8),  # 72 + 8 bias; 8*4*4 outputs * 9
        nn.Conv2d(8, 4, 1, bias=False),  # 32, no bias; 4*4*4 outputs * 8
        nn.Flatten(),
        nn.Linear(64, 5),  # 320 + 5; 5 outputs * 64
    ).eval()
    params, macs = zoo.independent_counts(model, (torch.randn(1, 3, 8, 8),))
    assert params == 216 + 8 + 72 + 8 + 32 + 320 + 5
    assert macs == 512 * 27 + 128 * 9 + 64 * 8 + 5 * 64


def test_independent_counts_scale_with_batch_but_params_do_not():
    model, (x,) = zoo.ZOO["resnet"]()
    params1, macs1 = zoo.independent_counts(model, (x,))
    params2, macs2 = zoo.independent_counts(model, (torch.cat((x, x)),))
    assert params1 == params2 == sum(
        m.weight.numel() + m.weight.shape[0] for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    )
    assert macs2 == 2 * macs1
