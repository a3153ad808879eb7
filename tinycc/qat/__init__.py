"""Quantization-aware training for tinycc (torch; `pip install tinycc[train]`).

Fine-tune a float torch model so that the integer model tinycc compiles from it loses as little
accuracy as possible, then export a QDQ ONNX model that `tinycc compile` takes as it is:

    from tinycc import qat
    q = qat.prepare_prom(model, example)          # BatchNorm folded, fake quantization inserted
    qat.calibrate(q, calib_images)                # activation ranges (min/max)
    qat.finetune(q, train_images, train_labels)   # straight-through estimator, EMA ranges
    qat.export_qdq(q, example, "model_qdq.onnx")  # int8 (and ternary / palette) codes + scales

- PROM (quantization.md §1.6): pointwise (1x1, groups 1) convolutions get ternary weights
  {-1, 0, +1} times a per-output-channel scale (TWN threshold 0.7 mean|W| with the L2-optimal
  scale, or BitNet's absmean); every other conv / depthwise / linear layer int8 per channel.
- Codebook (DKM, quantization.md §3.1): every conv / depthwise / linear layer's weights take at
  most 2^B int8 values per palette group (times a per-channel scale), learned by differentiable
  k-means (attention over the centroids, temperature).
Activations are int8 per tensor (TFLite's ChooseQuantizationParams on EMA or min/max ranges).

torch is needed here only: tinycc itself (the compiler) never imports this package.
"""
from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("tinycc.qat needs torch: pip install 'tinycc[train]'") from err

from .codebook import CodebookWeight, kmeans_1d, prepare_codebook  # noqa: E402
from .export import export_qdq, weight_summary  # noqa: E402
from .fold import fold_batchnorm  # noqa: E402
from .prepare import ActQuant, Int8Weight, QuantConv2d, QuantLinear, prepare  # noqa: E402
from .prom import TernaryWeight, is_pointwise, prepare_prom  # noqa: E402
from .train import calibrate, evaluate, finetune  # noqa: E402

__all__ = ["ActQuant", "CodebookWeight", "Int8Weight", "QuantConv2d", "QuantLinear", "TernaryWeight", "calibrate",
           "evaluate", "export_qdq", "finetune", "fold_batchnorm", "is_pointwise", "kmeans_1d", "prepare",
           "prepare_codebook", "prepare_prom", "weight_summary"]
