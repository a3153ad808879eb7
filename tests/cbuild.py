"""Build runtime_c/ into a shared library for kernel tests (ctypes), once per test session."""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "runtime_c"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-fPIC", "-shared"]

_cache: dict[str, ctypes.CDLL] = {}


def c_compiler() -> str:
    return os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc") or "cc"


def runtime_library(extra_sources: list[Path] = (), defines: list[str] = ()) -> ctypes.CDLL:
    """Compile every runtime_c/*.c (plus extras) with the strict flags; cached by content hash.

    `defines` are preprocessor definitions ("NAME" or "NAME=VALUE") passed as -D options, e.g.
    ["TC_EMULATE_DSP"] for the DSP fast paths on the emulated intrinsics.
    """
    sources = sorted(RUNTIME.glob("*.c")) + [Path(p) for p in extra_sources]
    digest = hashlib.sha256()
    for p in sources + sorted(RUNTIME.glob("*.h")):
        digest.update(p.name.encode())
        digest.update(p.read_bytes())
    for d in defines:
        digest.update(b"-D" + d.encode())
    key = digest.hexdigest()[:16]
    if key in _cache:
        return _cache[key]
    out_dir = Path(tempfile.gettempdir()) / "tinycc_test_libs"
    out_dir.mkdir(exist_ok=True)
    lib = out_dir / f"libtc_{key}.so"
    if not lib.exists():
        tmp = lib.with_suffix(f".{os.getpid()}.tmp")
        cmd = [c_compiler(), *STRICT, *(f"-D{d}" for d in defines), f"-I{RUNTIME}", "-o",
               str(tmp), *map(str, sources)]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        os.replace(tmp, lib)
    _cache[key] = ctypes.CDLL(str(lib))
    return _cache[key]


def ptr(a: np.ndarray):
    """ctypes pointer to a C-contiguous numpy array's data."""
    assert a.flags["C_CONTIGUOUS"]
    return a.ctypes.data_as(ctypes.c_void_p)
