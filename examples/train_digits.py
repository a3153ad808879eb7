"""Train the bundled example model: a small CNN on scikit-learn's 8x8 digits, exported to ONNX.

Writes, next to this script:
  digits_cnn.onnx    the float model (input `image` 1x1x8x8 in [0, 1], output `probs` 1x10)
  digits_calib.npy   200 training images, shape (200, 1, 8, 8) float16, for `tinycc compile --calib`
  digits_test.npz    the held-out test set: `images` (360, 1, 8, 8) float32, `labels` (360,) int64

The network is small but has the structure of a real microcontroller CNN, so that compiling it
exercises tinycc: 3x3 conv + BatchNorm + ReLU, depthwise-separable blocks with residual adds, a
strided conv, global average pooling, a Linear layer and a softmax. BatchNorm is exported
unfolded so that tinycc's own BatchNorm folding is what runs.

Needs torch and scikit-learn (`pip install -e ".[test]"`); runs on the CPU in well under a minute.
Usage: python examples/train_digits.py [--out-dir DIR]
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

SEED = 0
TEST_SAMPLES = 360  # the last 360 of the 1797 digits
CALIB_SAMPLES = 200
EPOCHS = 40
BATCH = 64
OPSET = 17
HERE = Path(__file__).resolve().parent


def conv_bn_relu(in_c: int, out_c: int, kernel: int, stride: int = 1, groups: int = 1,
                 relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_c, out_c, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(out_c)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class SeparableResidual(nn.Module):
    """Depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN, added to the input, then ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.depthwise = conv_bn_relu(channels, channels, 3, groups=channels)
        self.pointwise = conv_bn_relu(channels, channels, 1, relu=False)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.pointwise(self.depthwise(x)))


class DigitsCNN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(1, 16, 3),  # 16x8x8
            SeparableResidual(16),
            conv_bn_relu(16, 32, 3, stride=2),  # 32x4x4
            SeparableResidual(32),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(32, classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(self.features(image)), dim=1)


def load_dataset() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as (N, 1, 8, 8) float32 in [0, 1] and int64 labels, in sklearn's order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    return images, digits.target.astype(np.int64)


def shifted(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The batch moved by up to one pixel in each direction, zero-filled (data augmentation)."""
    dy, dx = (torch.randint(-1, 2, (2,), generator=gen) + 1).tolist()
    return nn.functional.pad(batch, (1, 1, 1, 1))[:, :, dy:dy + 8, dx:dx + 8]


def train(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> None:
    gen = torch.Generator().manual_seed(SEED)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    loss_fn = nn.NLLLoss()
    model.train()
    for _ in range(EPOCHS):
        for idx in torch.randperm(len(x), generator=gen).split(BATCH):
            opt.zero_grad()
            loss = loss_fn(torch.log(model(shifted(x[idx], gen)).clamp_min(1e-12)), y[idx])
            loss.backward()
            opt.step()
        sched.step()
    model.eval()


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(images)).argmax(dim=1).numpy()
    return float(np.mean(pred == labels))


def export_onnx(model: nn.Module, path: Path) -> None:
    """Legacy (TorchScript) exporter, opset 17, static 1x1x8x8 input, BatchNorm kept unfolded.

    TrainingMode.PRESERVE on a model in eval mode exports inference-mode BatchNormalization
    nodes; TrainingMode.EVAL would fuse them into the convolutions inside the exporter.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["image"], output_names=["probs"], do_constant_folding=False,
                          training=torch.onnx.TrainingMode.PRESERVE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=HERE, help="where to write the artifacts (default: examples/)")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # deterministic and fast enough: the model is tiny
    start = time.time()
    images, labels = load_dataset()
    train_x, train_y = images[:-TEST_SAMPLES], labels[:-TEST_SAMPLES]
    test_x, test_y = images[-TEST_SAMPLES:], labels[-TEST_SAMPLES:]
    model = DigitsCNN()
    train(model, train_x, train_y)
    print(f"trained in {time.time() - start:.1f} s: train accuracy {accuracy(model, train_x, train_y):.4f}, "
          f"test accuracy {accuracy(model, test_x, test_y):.4f} ({TEST_SAMPLES} images)")
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    export_onnx(model, out / "digits_cnn.onnx")
    calib = train_x[np.random.default_rng(SEED).choice(len(train_x), CALIB_SAMPLES, replace=False)]
    # float16 keeps the file small and is exact: pixel values are multiples of 1/16
    np.save(out / "digits_calib.npy", calib.astype(np.float16))
    np.savez_compressed(out / "digits_test.npz", images=test_x, labels=test_y)
    for name in ("digits_cnn.onnx", "digits_calib.npy", "digits_test.npz"):
        print(f"wrote {out / name} ({(out / name).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
