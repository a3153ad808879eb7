"""ONNX front end: load and validate a model file, fold its static-shape chains, build the IR."""
from .onnx import load_graph  # noqa: F401
