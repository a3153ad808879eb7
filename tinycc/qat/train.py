"""Calibration and fine-tuning of a fake-quantized model (prepare.py), with progress output."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from .prepare import activation_quantizers


def _batches(n: int, batch: int, gen: torch.Generator | None = None):
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    return order.split(batch)


def calibrate(model: nn.Module, samples: np.ndarray | torch.Tensor, batch: int = 64) -> None:
    """Set every activation range to the min/max over `samples` (leading sample axis), with
    the weights already quantized and activations not yet: what tinycc's minmax PTQ measures,
    on the quantized weights. Resets earlier ranges."""
    x = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    quantizers = activation_quantizers(model).values()
    model.eval()
    for q in quantizers:
        q.seen.fill_(False)
        q.mode, q.observing, q.enabled = "minmax", True, False
    with torch.no_grad():
        for idx in _batches(len(x), batch):
            model(x[idx])
    for q in quantizers:
        q.mode, q.observing, q.enabled = "ema", False, True


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch: int = 256) -> float:
    """Top-1 accuracy of the model (eval mode: hard quantization) on a labelled set."""
    model.eval()
    x, y = torch.as_tensor(np.asarray(images, dtype=np.float32)), torch.as_tensor(np.asarray(labels))
    correct = 0
    with torch.no_grad():
        for idx in _batches(len(x), batch):
            correct += int((model(x[idx]).argmax(dim=1) == y[idx]).sum())
    return correct / len(x)


def distillation_loss(logits: torch.Tensor, teacher: nn.Module, x: torch.Tensor, temperature: float) -> torch.Tensor:
    teacher.eval()
    with torch.no_grad():
        target = torch.log_softmax(teacher(x) / temperature, dim=1)
    student = torch.log_softmax(logits / temperature, dim=1)
    return temperature ** 2 * nn.functional.kl_div(student, target, reduction="batchmean", log_target=True)


def finetune(model: nn.Module, images: np.ndarray, labels: np.ndarray, epochs: int = 10, lr: float = 1e-3,
             batch: int = 64, weight_decay: float = 0.0, augment: Callable | None = None, seed: int = 0,
             teacher: nn.Module | None = None, temperature: float = 2.0,
             log: Callable[[str], None] | None = print) -> list[float]:
    """Quantization-aware fine-tuning for classification: cross-entropy on the model's logits,
    AdamW with a cosine learning rate, activation ranges tracked by EMA. `augment(batch,
    generator)` transforms each training batch. `teacher` (e.g. the float model): adds knowledge
    distillation, temperature^2 * KL(teacher || model) at `temperature` (Hinton et al. 2015), the
    usual help for low-bit fine-tuning. Prints one line per epoch (loss, training accuracy,
    seconds) unless log is None. Returns the mean loss of every epoch; the model is left in eval
    mode."""
    if not list(activation_quantizers(model).values()) or not all(bool(q.seen) or q.fixed is not None
                                                                   for q in activation_quantizers(model).values()):
        raise RuntimeError("calibrate the model (tinycc.qat.calibrate) before fine-tuning it")
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.as_tensor(np.asarray(images, dtype=np.float32)), torch.as_tensor(np.asarray(labels))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(epochs, 1))
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for epoch in range(epochs):
        start, total, correct = time.time(), 0.0, 0
        model.train()
        for idx in _batches(len(x), batch, gen):
            xb = augment(x[idx], gen) if augment is not None else x[idx]
            opt.zero_grad()
            logits = model(xb)
            loss = loss_fn(logits, y[idx])
            if teacher is not None:
                loss = loss + distillation_loss(logits, teacher, xb, temperature)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(dim=1) == y[idx]).sum())
        sched.step()
        losses.append(total / len(x))
        if log is not None:
            log(f"  epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}, train accuracy {100 * correct / len(x):.2f} %, "
                f"{time.time() - start:.1f} s")
    model.eval()
    return losses
