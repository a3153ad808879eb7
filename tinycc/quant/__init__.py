"""Quantization: calibration, int8 post-training quantization (TFLite int8 scheme)."""
