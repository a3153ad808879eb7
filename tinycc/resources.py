"""Locate the data that ships with tinycc: C templates, the C runtime, bundled examples."""
from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder `name` (templates, runtime_c, examples), installed or in the source tree."""
    installed = _PKG / "data" / name
    if installed.is_dir():
        return installed
    source = _PKG.parent / name
    if source.is_dir():
        return source
    raise FileNotFoundError(f"tinycc data folder {name!r} is missing from the installation")
