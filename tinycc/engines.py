"""Execution engines behind `tinycc run`: float reference, int8 golden model, generated C."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .errors import BadInput, Unsupported
from .ir import Graph
from .reference.float_exec import run_float

ENGINES = ("float", "int8", "c")


def run_engine(g: Graph, inputs: Mapping[str, np.ndarray], engine: str, args) -> dict[str, np.ndarray]:
    if engine == "float":
        return run_float(g, {k: np.asarray(v, dtype=np.float32) for k, v in inputs.items()})
    raise Unsupported(f"engine {engine!r} is not available yet")


def compare_engines(g: Graph, inputs, engines, args) -> str:
    raise Unsupported("--compare is not available yet")
