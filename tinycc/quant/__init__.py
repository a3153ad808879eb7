"""Quantization: calibration, int8 post-training quantization (TFLite int8 scheme)."""

# --quant: the weight formats (compiler.QuantOptions.schemes splits the combination)
QUANT_CHOICES = ("int8", "prom", "codebook", "prom+codebook")
