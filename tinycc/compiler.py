"""tinycc compile: quantize, plan, emit C."""
from __future__ import annotations

from .errors import Unsupported


def compile_model(g, args, sram: int, flash: int | None):
    raise Unsupported("code generation is not available yet in this build: "
                      "use `tinycc inspect` and `tinycc run --engine float`")
