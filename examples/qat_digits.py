"""PROM and codebook quantization of a MobileNetV2-style network on real data, measured through tinycc.

A small MobileNetV2-style CNN (inverted residual blocks: pointwise expansion, depthwise 3x3,
linear pointwise projection, residual adds; ReLU6; global average pooling; a Linear classifier)
is trained in float on scikit-learn's 8x8 handwritten digits (the first 1,437 images; the last
360 are the held-out test set, as in train_digits.py), then quantized several ways. Every variant is
an ONNX model compiled by tinycc and evaluated on the 360 held-out images by tinycc's integer
golden model (tinycc.compile(...).run(..., engine="int8")):

  float             the float ONNX model, tinycc's float engine
  int8 PTQ          tinycc's own post-training int8 quantization (minmax, 200 calibration images)
  PROM PTQ          tinycc.qat.prepare_prom + calibrate, no training: pointwise convs ternary
                    (TWN), the rest int8, exported as QDQ
  PROM QAT          the same, fine-tuned with the straight-through estimator (tinycc.qat.finetune,
                    the float model as distillation teacher)
  codebook 4-bit    `tinycc run --quant codebook --codebook-bits 4 --calib`: the compiler's
  PTQ (tinycc)      k-means palettes, weighted by the calibration data, indices chosen GPTQ-style
                    with the inputs' covariance, the bias corrected for the clustering, the
                    smallest layers int8 (quant/codebook.py); also with
                    --bias-correction, next to int8 PTQ with --bias-correction
  codebook 4-bit    tinycc.qat.prepare_codebook(bits=4) + calibrate: every layer's weights
  PTQ               snapped to 16 int8 palette values per group of 8 output channels (1-D
                    k-means) x a per-channel scale
  codebook 2-bit    4 palette values per output channel, no training (the reference for DKM)
  PTQ
  DKM 2-bit         the 2-bit model fine-tuned with differentiable k-means (DKM)

Where the installed tinycc has `--quant prom` / `--quant codebook` (the compiler-side quantizers
of issues 12 and 13), the float model is also compiled with them (`tinycc run --engine int8
--quant ...`); otherwise those rows say "not available". For PROM QAT the generated C (host
compiler) is also run on the 360 images and compared with the golden model bit for bit.

Every row is also measured on a 1-px-shifted copy of the held-out images (each image moved by
-1, 0 and +1 pixel in each direction, zero-filled: 9 x 360 = 3,240 images): a finer and more
robust figure than 360 images (one image is 0.28 points).

--validation N holds the last N training images out as a validation split: the float model trains
on the others and every row is measured on the validation images (the held-out test images are
not read), to choose quantizer settings without looking at the test set. --ptq-only skips the
fine-tuning rows (PROM QAT, DKM).

Needs torch and scikit-learn (`pip install -e ".[train,test]"`). About 5 minutes of CPU time on one core.
Usage: python examples/qat_digits.py [--out-dir DIR] [--json RESULTS.json] [--validation N] [--ptq-only]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import tinycc  # noqa: E402
from tinycc import qat  # noqa: E402
from train_digits import load_dataset, shifted  # noqa: E402

SEED = 0
TEST_SAMPLES = 360
CALIB_SAMPLES = 200
FLOAT_EPOCHS = 60
PROM_EPOCHS, PROM_LR = 30, 3e-3
DKM_EPOCHS, DKM_LR, DKM_TAU = 15, 1e-3, 2e-4
# output channels per palette: 4-bit, groups of 8 channels; 2-bit, one palette per channel
# (4 values per output channel; a shared 2-bit palette per layer keeps too little of each channel)
PALETTE_GROUP = {4: 8, 2: 1}
BATCH = 64
OPSET = 17


def conv_bn(in_c: int, out_c: int, kernel: int, stride: int = 1, groups: int = 1, relu6: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_c, out_c, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(out_c)]
    if relu6:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion + ReLU6, 3x3 depthwise + ReLU6, linear 1x1 projection,
    added to the input when the shapes allow."""

    def __init__(self, in_c: int, out_c: int, expansion: int, stride: int):
        super().__init__()
        hidden = in_c * expansion
        self.body = nn.Sequential(conv_bn(in_c, hidden, 1), conv_bn(hidden, hidden, 3, stride, groups=hidden),
                                  conv_bn(hidden, out_c, 1, relu6=False))
        self.residual = stride == 1 and in_c == out_c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class DigitsMobileNetV2(nn.Module):
    """8x8x1 -> 10 logits. (expansion, channels, blocks, first stride) as in MobileNetV2's table."""

    BLOCKS = ((1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 2, 2))

    def __init__(self, classes: int = 10, stem: int = 16, head: int = 96):
        super().__init__()
        layers: list[nn.Module] = [conv_bn(1, stem, 3)]
        c = stem
        for expansion, out_c, blocks, stride in self.BLOCKS:
            for i in range(blocks):
                layers.append(InvertedResidual(c, out_c, expansion, stride if i == 0 else 1))
                c = out_c
        layers += [conv_bn(c, head, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(head, classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(image))


def train_float(model: nn.Module, images: np.ndarray, labels: np.ndarray, epochs: int) -> None:
    gen = torch.Generator().manual_seed(SEED)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(BATCH):
            opt.zero_grad()
            loss_fn(model(shifted(x[idx], gen)), y[idx]).backward()
            opt.step()
        sched.step()
        if (epoch + 1) % 20 == 0:
            print(f"  float epoch {epoch + 1}/{epochs}", flush=True)
    model.eval()


def export_float(model: nn.Module, path: Path) -> None:
    """BatchNorm kept unfolded (TrainingMode.PRESERVE in eval mode): tinycc folds it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["image"], output_names=["logits"], do_constant_folding=False,
                          training=torch.onnx.TrainingMode.PRESERVE)


def compiler_quant_modes() -> set[str]:
    """The --quant choices of the installed tinycc's `compile` command (empty: no --quant)."""
    from tinycc.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for action in sub.choices["run"]._actions:
        if "--quant" in action.option_strings:
            return set(action.choices or ())
    return set()


def tinycc_golden_predictions(model_path: Path, images: np.ndarray, calib: Path | None = None) -> np.ndarray:
    """Top-1 of tinycc's integer golden model (int8 output codes: argmax as in float)."""
    m = tinycc.compile(model_path, calib=calib)
    return np.argmax(m.run(images, engine="int8")[m.outputs[0]].reshape(len(images), -1), axis=1)


def tinycc_cli_predictions(model_path: Path, images: np.ndarray, calib: Path, quant_args: list[str],
                           work: Path) -> np.ndarray:
    """Top-1 of `tinycc run --engine int8 QUANT_ARGS` on a batch (the command line, so that this
    script needs no knowledge of the compiler's Python signature for new --quant modes)."""
    x, y = work / "test_images.npy", work / f"out_{'_'.join(quant_args).replace('-', '')}.npy"
    np.save(x, images)
    cmd = [sys.executable, "-m", "tinycc", "run", str(model_path), "--input", str(x), "-o", str(y),
           "--engine", "int8", "--calib", str(calib), *quant_args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
    return np.argmax(np.load(y).reshape(len(images), -1), axis=1)


def c_equals_golden(model_path: Path, images: np.ndarray) -> tuple[int, int]:
    """(samples where the generated host C equals the golden model, samples)."""
    m = tinycc.compile(model_path)
    golden = m.run(images, engine="int8")[m.outputs[0]]
    c = m.run(images, engine="c")[m.outputs[0]]
    same = [np.array_equal(golden[i], c[i]) for i in range(len(images))]
    return int(sum(same)), len(images)


def weight_description(path: Path) -> str:
    """What the exported int8 weight codes are, e.g. '11 layers ternary, 7 int8' or '18 layers,
    <= 4 distinct codes per output channel'."""
    import onnx

    rows = qat.weight_summary(onnx.load(str(path)))
    ternary = sum(r["codes_min"] >= -1 and r["codes_max"] <= 1 for r in rows)
    most = max(r["distinct_codes_per_channel"] for r in rows)
    if ternary:
        return f"{ternary} layers ternary, {len(rows) - ternary} int8"
    return f"{len(rows)} layers, <= {most} distinct int8 codes per output channel"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, help="keep the ONNX models here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="write the results table as JSON")
    parser.add_argument("--float-epochs", type=int, default=FLOAT_EPOCHS)
    parser.add_argument("--prom-epochs", type=int, default=PROM_EPOCHS)
    parser.add_argument("--dkm-epochs", type=int, default=DKM_EPOCHS)
    parser.add_argument("--validation", type=int, default=0, metavar="N",
                        help="train without the last N training images and measure on them, not on the test set")
    parser.add_argument("--ptq-only", action="store_true", help="skip the fine-tuning rows (PROM QAT, DKM)")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out_dir or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        results = run_experiment(out, args.float_epochs, args.prom_epochs, args.dkm_epochs, args.validation,
                                 args.ptq_only)
    print(render(results, "validation" if args.validation else "held-out"))
    print(f"\n{time.time() - start:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def one_pixel_shifts(images: np.ndarray) -> np.ndarray:
    """The images moved by -1, 0 and +1 pixel in each direction, zero-filled (what train_digits'
    `shifted` augments with): 9 copies, shift by shift."""
    padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)))
    h, w = images.shape[-2:]
    return np.concatenate([padded[:, :, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)])


def split(images: np.ndarray, labels: np.ndarray, validation: int):
    """(train_x, train_y, eval_x, eval_y): the last TEST_SAMPLES images are the test set; with
    `validation`, the last `validation` training images are evaluated instead and the test set
    is left out altogether."""
    train_x, train_y = images[:-TEST_SAMPLES], labels[:-TEST_SAMPLES]
    if validation:
        return train_x[:-validation], train_y[:-validation], train_x[-validation:], train_y[-validation:]
    return train_x, train_y, images[-TEST_SAMPLES:], labels[-TEST_SAMPLES:]


def run_experiment(out: Path, float_epochs: int, prom_epochs: int, dkm_epochs: int, validation: int = 0,
                   ptq_only: bool = False) -> list[dict]:
    train_x, train_y, test_x, test_y = split(*load_dataset(), validation)
    # every quantized row is measured on the evaluation images and on their 1-px-shifted copies
    # (9 shifts each, 3,240 images for the test set): 360 images resolve only 0.28 points
    eval_x = np.concatenate([test_x, one_pixel_shifts(test_x)])
    shift_y = np.tile(test_y, 9)
    calib = train_x[np.random.default_rng(SEED).choice(len(train_x), CALIB_SAMPLES, replace=False)]
    calib_path = out / "calib.npy"
    np.save(calib_path, calib)
    example = torch.zeros(1, 1, 8, 8)
    results: list[dict] = []

    def row(name: str, how: str, predictions: np.ndarray | None, weights: str = "", note: str = "") -> None:
        """predictions: on eval_x (the images, then their shifted copies)."""
        acc = None if predictions is None else float(np.mean(predictions[:len(test_y)] == test_y))
        shifted_acc = None if predictions is None else float(np.mean(predictions[len(test_y):] == shift_y))
        results.append({"model": name, "how": how, "accuracy": acc, "accuracy_shifted": shifted_acc,
                        "weights": weights, "note": note})
        shown = "not available" if acc is None else f"{100 * acc:.2f} % (shifted {100 * shifted_acc:.2f} %)"
        print(f"{name}: {shown} {note}", flush=True)

    print(f"training the float model ({float_epochs} epochs, {len(train_x)} images)...", flush=True)
    t = time.time()
    model = DigitsMobileNetV2()
    train_float(model, train_x, train_y, float_epochs)
    evaluated = "validation" if validation else "test"
    print(f"  {time.time() - t:.0f} s; torch float {evaluated} accuracy {100 * qat.evaluate(model, test_x, test_y):.2f} %")
    float_path = out / "digits_mbv2.onnx"
    export_float(model, float_path)
    m = tinycc.compile(float_path, calib=calib_path)
    row("float", "tinycc float engine", np.argmax(m.run(eval_x, engine="float")["logits"].reshape(len(eval_x), -1), 1),
        "float32")
    row("int8 PTQ", "tinycc compile --calib (minmax)", np.argmax(m.run(eval_x, engine="int8")["logits"].reshape(
        len(eval_x), -1), 1), "int8 per channel")
    m_bc = tinycc.compile(float_path, calib=calib_path, bias_correction=True)
    row("int8 PTQ + bias correction", "tinycc compile --calib --bias-correction",
        np.argmax(m_bc.run(eval_x, engine="int8")["logits"].reshape(len(eval_x), -1), 1), "int8 per channel")

    modes = compiler_quant_modes()
    if "prom" in modes:
        row("PROM PTQ (tinycc --quant prom)", "tinycc run --quant prom --calib",
            tinycc_cli_predictions(float_path, eval_x, calib_path, ["--quant", "prom"], out), "ternary pointwise")
    else:
        row("PROM PTQ (tinycc --quant prom)", "", None, note="(this tinycc has no --quant prom)")

    codebook_rows(float_path, eval_x, calib_path, out, modes, row)
    if ptq_only:
        return results
    print("PROM: BatchNorm folded, pointwise convolutions ternary (TWN), calibrated...", flush=True)
    prom = qat.prepare_prom(model, example)
    qat.calibrate(prom, calib)
    prom_ptq_path = out / "digits_mbv2_prom_ptq.onnx"
    qat.export_qdq(prom, example, prom_ptq_path, "image", "logits")
    row("PROM PTQ (tinycc.qat, no training)", "prepare_prom + calibrate, QDQ export",
        tinycc_golden_predictions(prom_ptq_path, eval_x), weight_description(prom_ptq_path))
    print(f"PROM QAT: fine-tuning {prom_epochs} epochs (the float model as distillation teacher)...", flush=True)
    qat.finetune(prom, train_x, train_y, epochs=prom_epochs, lr=PROM_LR, augment=shifted, seed=SEED, teacher=model)
    prom_qat_path = out / "digits_mbv2_prom_qat.onnx"
    qat.export_qdq(prom, example, prom_qat_path, "image", "logits")
    same, n = c_equals_golden(prom_qat_path, test_x)
    row("PROM QAT", "prepare_prom + calibrate + finetune, QDQ export", tinycc_golden_predictions(prom_qat_path, eval_x),
        weight_description(prom_qat_path), f"(generated C == golden on {same}/{n} images)")
    if same != n:
        raise SystemExit("the generated C differs from tinycc's golden model: a tinycc bug")

    for bits in (4, 2):
        print(f"codebook {bits}-bit: k-means palettes, calibrated...", flush=True)
        cb = qat.prepare_codebook(model, example, bits=bits, group_size=PALETTE_GROUP[bits], tau=DKM_TAU)
        qat.calibrate(cb, calib)
        path = out / f"digits_mbv2_codebook{bits}_ptq.onnx"
        qat.export_qdq(cb, example, path, "image", "logits")
        row(f"codebook {bits}-bit PTQ (tinycc.qat, no training)",
            f"prepare_codebook(bits={bits}, group_size={PALETTE_GROUP[bits]}) + calibrate",
            tinycc_golden_predictions(path, eval_x), weight_description(path))
    print(f"DKM 2-bit: fine-tuning {dkm_epochs} epochs (the float model as distillation teacher)...", flush=True)
    qat.finetune(cb, train_x, train_y, epochs=dkm_epochs, lr=DKM_LR, augment=shifted, seed=SEED, teacher=model)
    dkm_path = out / "digits_mbv2_dkm2.onnx"
    qat.export_qdq(cb, example, dkm_path, "image", "logits")
    row("DKM 2-bit", "prepare_codebook(bits=2, group_size=1) + calibrate + finetune",
        tinycc_golden_predictions(dkm_path, eval_x),
        weight_description(dkm_path))
    return results


def codebook_rows(float_path: Path, test_x: np.ndarray, calib_path: Path, out: Path, modes: set[str], row) -> None:
    """The compiler's codebook PTQ (k-means palettes, GPTQ index assignment): 4 bits without and with
    --bias-correction, and 2 bits (the no-training reference for DKM 2-bit, here with the compiler's
    GPTQ assignment rather than tinycc.qat's nearest-centroid snapping)."""
    for bits, extra, label in ((4, [], ""), (4, ["--bias-correction"], " + bias correction"), (2, [], "")):
        name = f"codebook {bits}-bit PTQ (tinycc --quant codebook{label})"
        if "codebook" not in modes:
            row(name, "", None, note="(this tinycc has no --quant codebook)")
            continue
        args = ["--quant", "codebook", "--codebook-bits", str(bits), *extra]
        row(name, f"tinycc run {' '.join(args)} --calib",
            tinycc_cli_predictions(float_path, test_x, calib_path, args, out), f"{bits}-bit palettes")


def render(results: list[dict], evaluated: str = "held-out") -> str:
    int8 = next(r["accuracy"] for r in results if r["model"] == "int8 PTQ")
    int8_shifted = next(r["accuracy_shifted"] for r in results if r["model"] == "int8 PTQ")
    count = "360 held-out" if evaluated == "held-out" else "validation split"
    lines = [f"| model | accuracy ({count}) | vs int8 PTQ | 1-px shifted copies (x9) | vs int8 PTQ | weights |",
             "|---|---:|---:|---:|---:|---|"]
    for r in results:
        if r["accuracy"] is None:
            lines.append(f"| {r['model']} | not available | | | | {r['note']} |")
            continue
        delta = 100 * (r["accuracy"] - int8)
        delta_shifted = 100 * (r["accuracy_shifted"] - int8_shifted)
        lines.append(f"| {r['model']} | {100 * r['accuracy']:.2f} % | {delta:+.2f} | {100 * r['accuracy_shifted']:.2f} % "
                     f"| {delta_shifted:+.2f} | {r['weights']} {r['note']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
