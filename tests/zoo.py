"""A zoo of small torch models shaped like real microcontroller networks, and their ONNX exports.

Every model is built from a fixed seed, at MCU scale (inputs up to 64x64x3, at most ~200k
parameters), so the whole zoo runs in numpy within seconds. BatchNorm layers get non-trivial
running statistics and affine parameters, so BatchNorm folding is really exercised.

`ZOO[name]()` returns `(model in eval mode, example inputs)`; `export(name, exporter, out_dir)`
writes one ONNX file with the TorchScript or the dynamo exporter; `independent_counts` counts
parameters and MACs with torch hooks, as an oracle for `tinycc inspect`.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import warnings
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SEED = 0
EXPORTERS = ("torchscript", "dynamo")
TORCHSCRIPT_OPSET = 17
DYNAMO_OPSET = 18

# (model name, exporter) -> why that export cannot be produced. Tests skip these pairs visibly.
KNOWN_EXPORT_FAILURES: dict[tuple[str, str], str] = {}


# ----------------------------------------------------------------------------------------------
# Building blocks


def _same_padding(kernel: int | tuple[int, int], dilation: int) -> int | tuple[int, int]:
    if isinstance(kernel, int):
        return dilation * (kernel - 1) // 2
    return tuple(dilation * (k - 1) // 2 for k in kernel)


def conv_bn(
    in_c: int,
    out_c: int,
    kernel: int | tuple[int, int],
    stride: int = 1,
    *,
    padding: int | tuple[int, int] | None = None,
    groups: int = 1,
    dilation: int = 1,
    act: type[nn.Module] | None = nn.ReLU,
) -> nn.Sequential:
    """Conv2d without bias, BatchNorm2d, optional activation ("same" padding by default)."""
    if padding is None:
        padding = _same_padding(kernel, dilation)
    layers: list[nn.Module] = [
        nn.Conv2d(in_c, out_c, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(out_c),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def classifier(in_c: int, classes: int) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_c, classes))


class SqueezeExcite(nn.Module):
    """MobileNetV3 SE: GAP -> 1x1 conv -> ReLU -> 1x1 conv -> hardsigmoid -> scale the input."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        squeezed = max(8, channels // reduction)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.relu(self.reduce(s))
        return x * F.hardsigmoid(self.expand(s))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, kxk depthwise, optional SE, linear 1x1 project, residual."""

    def __init__(
        self,
        in_c: int,
        out_c: int,
        kernel: int,
        stride: int,
        expand: int,
        act: type[nn.Module] = nn.ReLU6,
        se: bool = False,
    ):
        super().__init__()
        hidden = in_c * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(in_c, hidden, 1, act=act))
        layers.append(conv_bn(hidden, hidden, kernel, stride, groups=hidden, act=act))
        if se:
            layers.append(SqueezeExcite(hidden))
        layers.append(conv_bn(hidden, out_c, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and in_c == out_c

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class BasicBlock(nn.Module):
    """ResNet block; a strided 1x1 projection shortcut when the shape changes; ReLU after add."""

    def __init__(self, in_c: int, out_c: int, stride: int):
        super().__init__()
        self.conv1 = conv_bn(in_c, out_c, 3, stride)
        self.conv2 = conv_bn(out_c, out_c, 3, act=None)
        needs_projection = stride != 1 or in_c != out_c
        self.shortcut = conv_bn(in_c, out_c, 1, stride, act=None) if needs_projection else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    n, c, h, w = x.size()
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit. Stride 1: split channels, transform one half, concat, shuffle.
    Stride 2: two branches over the whole input, concat, shuffle."""

    def __init__(self, in_c: int, out_c: int, stride: int, split_with: str = "chunk"):
        super().__init__()
        branch_c = out_c // 2
        self.split_with = split_with
        if stride == 1:
            if in_c != out_c:
                raise ValueError("a stride-1 ShuffleNet unit keeps the channel count")
            self.branch1 = None
            branch_in = branch_c
        else:
            self.branch1 = nn.Sequential(
                conv_bn(in_c, in_c, 3, stride, groups=in_c, act=None), conv_bn(in_c, branch_c, 1)
            )
            branch_in = in_c
        self.branch2 = nn.Sequential(
            conv_bn(branch_in, branch_c, 1),
            conv_bn(branch_c, branch_c, 3, stride, groups=branch_c, act=None),
            conv_bn(branch_c, branch_c, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.branch1 is None:
            if self.split_with == "chunk":
                kept, transformed = x.chunk(2, dim=1)
            else:
                kept, transformed = torch.split(x, x.shape[1] // 2, dim=1)
            out = torch.cat((kept, self.branch2(transformed)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class Fire(nn.Module):
    """SqueezeNet fire module: squeeze 1x1 -> (expand 1x1 || expand 3x3) -> concat."""

    def __init__(self, in_c: int, squeeze: int, expand1: int, expand3: int):
        super().__init__()
        self.squeeze = nn.Conv2d(in_c, squeeze, 1)
        self.expand1 = nn.Conv2d(squeeze, expand1, 1)
        self.expand3 = nn.Conv2d(squeeze, expand3, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        s = F.relu(self.squeeze(x))
        return torch.cat((F.relu(self.expand1(s)), F.relu(self.expand3(s))), dim=1)


class Inception(nn.Module):
    """Four parallel branches (1x1 | 1x1-3x3 | 1x1-5x5 | maxpool-1x1), concatenated."""

    def __init__(self, in_c: int, c1: int, c3: tuple[int, int], c5: tuple[int, int], cpool: int):
        super().__init__()
        self.b1 = conv_bn(in_c, c1, 1)
        self.b3 = nn.Sequential(conv_bn(in_c, c3[0], 1), conv_bn(c3[0], c3[1], 3))
        self.b5 = nn.Sequential(conv_bn(in_c, c5[0], 1), conv_bn(c5[0], c5[1], 5))
        self.bpool = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn(in_c, cpool, 1))
        self.out_channels = c1 + c3[1] + c5[1] + cpool

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.b1(x), self.b3(x), self.b5(x), self.bpool(x)), dim=1)


class Reduction(nn.Module):
    """Stride-2 concat block: 3x3/s2 | 1x1 -> 1x3 -> 3x1/s2 (asymmetric padding) | maxpool/s2."""

    def __init__(self, in_c: int, c3: int, c_factorized: int):
        super().__init__()
        self.b3 = conv_bn(in_c, c3, 3, 2)
        self.b_factorized = nn.Sequential(
            conv_bn(in_c, c_factorized, 1),
            conv_bn(c_factorized, c_factorized, (1, 3), padding=(0, 1)),
            conv_bn(c_factorized, c_factorized, (3, 1), 2, padding=(1, 0)),
        )
        self.bpool = nn.MaxPool2d(3, 2, 1)
        self.out_channels = c3 + c_factorized + in_c

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.b3(x), self.b_factorized(x), self.bpool(x)), dim=1)


# ----------------------------------------------------------------------------------------------
# Models


class MobileNetV2(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(3, 16, 3, 2, act=nn.ReLU6),
            InvertedResidual(16, 16, 3, 1, expand=1),
            InvertedResidual(16, 24, 3, 2, expand=4),
            InvertedResidual(24, 24, 3, 1, expand=4),
            InvertedResidual(24, 32, 3, 2, expand=4),
            InvertedResidual(32, 32, 3, 1, expand=4),
            InvertedResidual(32, 48, 3, 1, expand=4),
            conv_bn(48, 128, 1, act=nn.ReLU6),
        )
        self.head = classifier(128, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class MobileNetV3(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        hs, relu = nn.Hardswish, nn.ReLU
        self.features = nn.Sequential(
            conv_bn(3, 16, 3, 2, act=hs),
            InvertedResidual(16, 16, 3, 2, expand=1, act=relu, se=True),
            InvertedResidual(16, 24, 3, 2, expand=4, act=relu),
            InvertedResidual(24, 24, 5, 1, expand=3, act=hs, se=True),
            InvertedResidual(24, 40, 5, 2, expand=4, act=hs, se=True),
            InvertedResidual(40, 40, 5, 1, expand=3, act=hs, se=True),
            conv_bn(40, 144, 1, act=hs),
        )
        self.head = nn.Sequential(nn.Linear(144, 128), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(128, classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class MCUNet(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(3, 16, 3, 2, act=nn.ReLU6),
            InvertedResidual(16, 16, 3, 1, expand=1),
            InvertedResidual(16, 24, 7, 2, expand=3),
            InvertedResidual(24, 24, 5, 1, expand=4),
            InvertedResidual(24, 40, 7, 2, expand=3),
            InvertedResidual(40, 40, 3, 1, expand=4),
            InvertedResidual(40, 48, 5, 1, expand=5),
        )
        self.head = classifier(48, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class ResNet(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 3), nn.MaxPool2d(3, 2, 1))
        self.blocks = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2))
        self.head = classifier(64, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))


class DSCNN(nn.Module):
    """Keyword spotting DS-CNN on 49 MFCC frames x 10 coefficients, like MLPerf Tiny's."""

    def __init__(self, classes: int = 12, width: int = 64, blocks: int = 4):
        super().__init__()
        # TF "same" padding for a 10x4 kernel at stride 2 on 49x10: 4 top, 5 bottom, 1 left, 1 right.
        self.stem = nn.Sequential(
            nn.ZeroPad2d((1, 1, 4, 5)), conv_bn(1, width, (10, 4), 2, padding=0), nn.Dropout(0.2)
        )
        self.blocks = nn.Sequential(
            *(
                nn.Sequential(conv_bn(width, width, 3, groups=width), conv_bn(width, width, 1))
                for _ in range(blocks)
            )
        )
        self.pool = nn.AvgPool2d((25, 5))
        self.fc = nn.Linear(width, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


class ShuffleNetV2(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1))
        self.units = nn.Sequential(
            ShuffleUnit(24, 48, 2),
            ShuffleUnit(48, 48, 1, split_with="chunk"),
            ShuffleUnit(48, 48, 1, split_with="split"),
            ShuffleUnit(48, 96, 2),
            ShuffleUnit(96, 96, 1),
        )
        self.last = conv_bn(96, 128, 1)
        self.head = classifier(128, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.last(self.units(self.stem(x))))


class SqueezeNet(nn.Module):
    """Input 49x49 so that both ceil-mode max pools produce one more row/column than floor mode."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(32, 8, 32, 32),
            Fire(64, 8, 32, 32),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(64, 16, 48, 48),
            Fire(96, 16, 48, 48),
        )
        self.head = nn.Sequential(
            nn.Dropout(0.5), nn.Conv2d(96, classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class ConcatNet(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        first = Inception(16, 8, (8, 12), (4, 8), 8)
        reduction = Reduction(first.out_channels, 24, 16)
        second = Inception(48, 8, (12, 16), (8, 8), 8)
        self.features = nn.Sequential(
            conv_bn(3, 16, 3),
            first,
            reduction,
            conv_bn(reduction.out_channels, 48, 3, dilation=2),
            second,
            conv_bn(second.out_channels, 64, 3, 2, padding=0),
        )
        self.head = classifier(64, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    def __init__(self, features: int = 64, classes: int = 10):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(features, 128),
            nn.BatchNorm1d(128),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(128, 64),
            nn.BatchNorm1d(64),
            nn.LeakyReLU(0.1),
            nn.Dropout(0.1),
            nn.Linear(64, 32),
            nn.Tanh(),
            nn.Linear(32, 16),
            nn.Sigmoid(),
            nn.Linear(16, classes),
            nn.Softmax(dim=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class MiscOps(nn.Module):
    """Exercises the front end's less common ops; the data flow is arbitrary but every op counts."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1))
        self.conv = conv_bn(3, 8, 3)
        self.pool_with_pad = nn.AvgPool2d(3, 2, 1, count_include_pad=True)
        self.pool_ceil_exclude_pad = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.hardtanh = nn.Hardtanh(-0.5, 0.5)
        self.padded_conv = nn.Conv2d(8, 8, 3)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: Tensor) -> Tensor:  # shapes below are for a 24x24 input, batch N
        x = (x - self.mean) / self.std
        y = self.conv(x)  # (N, 8, 24, 24)
        up = self.upsample(self.pool_with_pad(y))  # (N, 8, 24, 24)
        t = self.hardtanh(y.permute(0, 1, 3, 2) + up)
        s = y[:, :, 1:-1, ::2]  # (N, 8, 22, 12)
        s = self.padded_conv(F.pad(s, (6, 8, 2, 2)))  # zero pad to 26x26, conv to 24x24
        z = torch.cat((t, F.pad(s, (0, 0, 1, 0), value=0.25)[:, :, :24]), dim=2)  # (N, 8, 48, 24)
        mean = z.mean(dim=(2, 3), keepdim=True)  # (N, 8, 1, 1)
        peak = F.adaptive_max_pool2d(torch.clamp(self.pool_ceil_exclude_pad(y), -1.0, 2.0), 1)  # (N, 8, 1, 1)
        h = torch.cat((mean, peak), dim=1).squeeze(-1)  # (N, 16, 1)
        h = torch.flatten(h.transpose(1, 2), 1)  # (N, 16)
        logits = self.fc(h).unsqueeze(1)  # (N, 1, classes)
        return F.log_softmax(logits, dim=-1).squeeze(1)


class TwoHeadDetector(nn.Module):
    """Shared backbone with a second input added to its features; class and box heads."""

    output_names = ("scores", "boxes")

    def __init__(self, anchors: int = 3, classes: int = 4):
        super().__init__()
        self.classes = classes
        self.backbone = nn.Sequential(conv_bn(3, 16, 3, 2), InvertedResidual(16, 24, 3, 2, expand=4))
        self.neck = conv_bn(24, 32, 3)
        self.cls_head = nn.Conv2d(32, anchors * classes, 1)
        self.box_head = nn.Conv2d(32, anchors * 4, 3, padding=1)

    def forward(self, image: Tensor, prior: Tensor) -> tuple[Tensor, Tensor]:
        features = self.neck(self.backbone(image) + prior)
        n = image.shape[0]
        scores = self.cls_head(features).permute(0, 2, 3, 1).reshape(n, -1, self.classes)
        boxes = self.box_head(features).permute(0, 2, 3, 1).reshape(n, -1, 4)
        return F.softmax(scores, dim=-1), boxes


# ----------------------------------------------------------------------------------------------
# Construction with deterministic weights and non-trivial BatchNorm


def _batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _set_batchnorm_parameters(model: nn.Module, example_inputs: tuple[Tensor, ...], gen: torch.Generator) -> None:
    """Give every BatchNorm random, non-trivial statistics and affine parameters.

    The statistics start from a forward pass on random data (so activations stay of order one
    through deep stacks instead of exploding or vanishing), then are perturbed, so that a wrong
    fold of any of the four BN tensors shows up in the outputs.
    """
    bns = _batchnorms(model)
    if not bns:
        return
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration pass
        bn.train()
    calibration = tuple(torch.randn((8, *x.shape[1:]), generator=gen) for x in example_inputs)
    with torch.no_grad():
        model(*calibration)
        for bn in bns:
            c = bn.num_features
            bn.eval()
            bn.running_mean += 0.2 * torch.randn(c, generator=gen) * bn.running_var.sqrt()
            bn.running_var *= torch.empty(c).uniform_(0.6, 1.6, generator=gen)
            bn.weight.copy_(torch.empty(c).uniform_(0.6, 1.4, generator=gen))
            bn.bias.copy_(0.2 * torch.randn(c, generator=gen))


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one thread: these models are too small to gain from more, and on a busy
    2-core machine torch's worker threads make them 10-30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


ZooEntry = tuple[nn.Module, tuple[Tensor, ...]]  # (model in eval mode, example inputs)


def _build(model_cls: Callable[[], nn.Module], *input_shapes: tuple[int, ...]) -> Callable[[], ZooEntry]:
    def build() -> ZooEntry:
        with single_threaded():
            return _build_seeded(model_cls, input_shapes)

    return build


def _build_seeded(model_cls: Callable[[], nn.Module], input_shapes: tuple[tuple[int, ...], ...]) -> ZooEntry:
    torch.manual_seed(SEED)
    model = model_cls().eval()
    gen = torch.Generator().manual_seed(SEED)
    inputs = tuple(torch.randn(shape, generator=gen) for shape in input_shapes)
    _set_batchnorm_parameters(model, inputs, gen)
    return model.eval(), inputs


ZOO: dict[str, Callable[[], ZooEntry]] = {
    "mbv2": _build(MobileNetV2, (1, 3, 48, 48)),
    "mbv3": _build(MobileNetV3, (1, 3, 56, 56)),
    "mcunet": _build(MCUNet, (1, 3, 47, 45)),
    "resnet": _build(ResNet, (1, 3, 32, 32)),
    "dscnn": _build(DSCNN, (1, 1, 49, 10)),
    "shufflenet": _build(ShuffleNetV2, (1, 3, 48, 48)),
    "squeezenet": _build(SqueezeNet, (1, 3, 49, 49)),
    "concatnet": _build(ConcatNet, (1, 3, 32, 32)),
    "mlp": _build(MLP, (1, 64)),
    "misc_ops": _build(MiscOps, (1, 3, 24, 24)),
    "two_io": _build(TwoHeadDetector, (1, 3, 32, 32), (1, 24, 8, 8)),
}


# ----------------------------------------------------------------------------------------------
# Operator-coverage models (issue 14): kept out of ZOO, whose models the generated-project digests,
# the patch tests and the int8 zoo sweep pin; tests/test_zoo_new_models.py and
# benchmarks/bench_ops.py run these.


class GRUKeywordSpotter(nn.Module):
    """Keyword spotting on 49 frames x 10 MFCC: a 1-D conv front end over time, a GRU (torch's
    linear_before_reset=1 form), the last step into a linear classifier."""

    def __init__(self, classes: int = 12, hidden: int = 48):
        super().__init__()
        self.front = nn.Sequential(nn.Conv1d(10, 32, 3, padding=1), nn.BatchNorm1d(32), nn.ReLU())
        self.gru = nn.GRU(32, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x: Tensor) -> Tensor:  # x: (N, 49, 10)
        feats = self.front(x.transpose(1, 2)).transpose(1, 2)  # (N, 49, 32)
        y, _ = self.gru(feats)
        return self.fc(y[:, -1:, :].flatten(1))


class SmallUNet(nn.Module):
    """Two-level U-Net: max-pool downsampling, a ConvTranspose and a bilinear upsampling, skip
    concatenations, per-pixel class logits."""

    def __init__(self, classes: int = 3):
        super().__init__()
        self.enc1 = conv_bn(3, 8, 3)
        self.enc2 = conv_bn(8, 16, 3)
        self.up2 = nn.ConvTranspose2d(16, 16, 2, stride=2)
        self.dec2 = conv_bn(32, 16, 3)
        self.dec1 = conv_bn(24, 8, 3)
        self.head = nn.Conv2d(8, classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        e1 = self.enc1(x)  # (N, 8, 32, 32)
        e2 = self.enc2(F.max_pool2d(e1, 2))  # (N, 16, 16, 16)
        bottom = F.max_pool2d(e2, 2)  # (N, 16, 8, 8)
        d2 = self.dec2(torch.cat((self.up2(bottom), e2), dim=1))  # (N, 16, 16, 16)
        up1 = F.interpolate(d2, scale_factor=2, mode="bilinear", align_corners=False)
        return self.head(self.dec1(torch.cat((up1, e1), dim=1)))  # (N, classes, 32, 32)


class ConvMixer(nn.Module):
    """ConvMixer (Trockman & Kolter): patch embedding (Conv, GELU, BatchNorm: a standalone
    BatchNorm after the activation), isotropic blocks of a residual depthwise 7x7 conv and a
    pointwise conv. The blocks put BatchNorm before GELU (foldable into the conv): with
    ConvMixer's own order every block adds two int8 element-wise requantizations per layer and
    the int8 output drops below 30 dB SQNR at depth 2 (27.7 dB, benchmarks/bench_ops.py)."""

    def __init__(self, dim: int = 32, depth: int = 3, kernel: int = 7, patch: int = 4, classes: int = 10):
        super().__init__()
        self.embed = nn.Sequential(nn.Conv2d(3, dim, patch, stride=patch), nn.GELU(), nn.BatchNorm2d(dim))
        self.blocks = nn.ModuleList(
            nn.ModuleDict({
                "mix": nn.Sequential(nn.Conv2d(dim, dim, kernel, groups=dim, padding=kernel // 2), nn.BatchNorm2d(dim),
                                     nn.GELU()),
                "point": nn.Sequential(nn.Conv2d(dim, dim, 1), nn.BatchNorm2d(dim), nn.GELU()),
            }) for _ in range(depth))
        self.head = classifier(dim, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.embed(x)
        for block in self.blocks:
            x = block["point"](x + block["mix"](x))
        return self.head(x)


class MobileViTBlockNet(nn.Module):
    """A MobileViT-style block: conv stem, local 3x3 and 1x1 convs, unfold the feature map into
    tokens, a transformer layer (LayerNorm, two-head attention, LayerNorm, GELU MLP), fold back,
    fuse with the block input by concatenation and a 3x3 conv."""

    def __init__(self, channels: int = 16, dim: int = 32, heads: int = 2, classes: int = 10):
        super().__init__()
        self.heads = heads
        self.stem = nn.Sequential(conv_bn(3, channels, 3, 2, act=nn.SiLU), conv_bn(channels, channels, 3, 2, act=nn.SiLU))
        self.local = nn.Sequential(conv_bn(channels, channels, 3, act=nn.SiLU), nn.Conv2d(channels, dim, 1, bias=False))
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.fold = conv_bn(dim, channels, 1, act=nn.SiLU)
        self.fuse = conv_bn(2 * channels, channels, 3, act=nn.SiLU)
        self.head = classifier(channels, classes)

    def attention(self, t: Tensor) -> Tensor:
        n, tokens, dim = t.shape
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        split = lambda u: u.reshape(n, tokens, self.heads, dim // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        att = torch.softmax(q @ k.transpose(-2, -1) * (dim // self.heads) ** -0.5, dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(n, tokens, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)  # (N, C, 8, 8)
        n, _, h, w = x.shape
        t = self.local(x).flatten(2).transpose(1, 2)  # unfold: (N, 64 tokens, dim)
        t = t + self.attention(self.norm1(t))
        t = t + self.mlp(self.norm2(t))
        y = self.fold(t.transpose(1, 2).reshape(n, -1, h, w))  # fold back: (N, C, 8, 8)
        return self.head(self.fuse(torch.cat((x, y), dim=1)))


# Operator-coverage models (issue 14): built and exported like ZOO's.
OPS_ZOO: dict[str, Callable[[], ZooEntry]] = {
    "kws_gru": _build(GRUKeywordSpotter, (1, 49, 10)),
    "unet": _build(SmallUNet, (1, 3, 32, 32)),
    "convmixer": _build(ConvMixer, (1, 3, 32, 32)),
    "mobilevit": _build(MobileViTBlockNet, (1, 3, 32, 32)),
}


# ----------------------------------------------------------------------------------------------
# Export


def input_names(model: nn.Module) -> list[str]:
    """The forward() argument names; the dynamo exporter uses them too, so both exports agree."""
    return list(inspect.signature(model.forward).parameters)


def output_names(model: nn.Module) -> list[str]:
    return list(getattr(model, "output_names", ("output",)))


# Logs one warning per missing torchvision op on every dynamo export; irrelevant here.
_DYNAMO_REGISTRATION_LOGGER = "torch.onnx._internal.exporter._registration"


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def export(name: str, exporter: str, out_dir: Path) -> Path:
    """Export zoo model `name` to `out_dir/<name>_<exporter>.onnx` and return the path.

    torchscript: opset 17, dynamic batch on the first input (and the outputs), so importers
    meet a symbolic dimension and Shape->Gather->Concat->Reshape chains; TrainingMode.PRESERVE
    on the eval-mode model keeps BatchNormalization nodes (the default EVAL mode would fold
    them into the convolutions, leaving tinycc's BN folding untested).
    dynamo: opset 18, static shapes, the exporter's default graph optimization (which folds
    BatchNorm itself), i.e. what users get from a plain `torch.onnx.export(..., dynamo=True)`.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"unknown exporter {exporter!r}; expected one of {EXPORTERS}")
    model, inputs = (ZOO[name] if name in ZOO else OPS_ZOO[name])()
    path = Path(out_dir) / f"{name}_{exporter}.onnx"
    ins, outs = input_names(model), output_names(model)
    with single_threaded(), warnings.catch_warnings(), _quiet_logger(_DYNAMO_REGISTRATION_LOGGER):
        # Expected and harmless here (the exports are checked against torch by the tests): the
        # TorchScript exporter's deprecation, tracer notes on Python ints in shapes, its advice
        # against constant folding with PRESERVE (meant for models in training mode), and
        # its note that strided Slices are not constant-folded.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="It is recommended that constant folding be turned off")
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        if exporter == "torchscript":
            torch.onnx.export(
                model,
                inputs,
                str(path),
                dynamo=False,
                opset_version=TORCHSCRIPT_OPSET,
                input_names=ins,
                output_names=outs,
                dynamic_axes={n: {0: "batch"} for n in (ins[0], *outs)},
                training=torch.onnx.TrainingMode.PRESERVE,
            )
        else:
            torch.onnx.export(
                model,
                inputs,
                str(path),
                dynamo=True,
                opset_version=DYNAMO_OPSET,
                input_names=ins,
                output_names=outs,
                external_data=False,
                verbose=False,
            )
    return path


# ----------------------------------------------------------------------------------------------
# Independent parameter and MAC counts


def independent_counts(model: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[int, int]:
    """(parameters, MACs) of one forward pass on `inputs`, counted with torch hooks.

    Counts only Conv2d and Linear, as a compiler sees them after BatchNorm folding:
    parameters = weights + biases, where a layer whose output feeds a BatchNorm counts a bias
    even if it had none (folding creates it) and the BatchNorm itself counts nothing.
    MACs = output elements * in_channels / groups * kh * kw for Conv2d, and
    output elements * in_features for Linear (in * out per row). Pools, adds, activations and
    the SE multiply are not counted. MACs scale with the batch of `inputs`.
    """
    # id(output) -> (producing layer, output); holding the tensor keeps its id from being reused.
    layer_outputs: dict[int, tuple[nn.Module, Tensor]] = {}
    folded_bias: set[nn.Module] = set()
    seen: dict[nn.Module, None] = {}  # layers that ran, in order, each once
    macs = 0

    def on_layer(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal macs
        seen[module] = None
        layer_outputs[id(output)] = (module, output)
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs += output.numel() * (module.in_channels // module.groups) * kh * kw
        else:
            macs += output.numel() * module.in_features

    def on_batchnorm(module: nn.Module, args: tuple[Tensor, ...]) -> None:
        produced = layer_outputs.get(id(args[0]))
        if produced is not None:
            folded_bias.add(produced[0])

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            handles.append(m.register_forward_hook(on_layer))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            handles.append(m.register_forward_pre_hook(on_batchnorm))
    try:
        with torch.no_grad(), single_threaded():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()

    params = 0
    for m in seen:
        params += m.weight.numel()
        if m.bias is not None or m in folded_bias:
            params += m.weight.shape[0]
    return params, macs
