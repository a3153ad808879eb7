"""tinycc: compile trained ONNX networks into self-contained C for microcontrollers."""

__version__ = "0.1.0"
