"""Build runtime_c/ into a shared library for kernel tests (ctypes), once per test session."""
from __future__ import annotations

import ctypes
import functools
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


def kernel_sources(*kernels: str) -> list[str]:
    """The runtime_c .c files of the named kernels and of the kernels they call: entry points and
    every variant, as their declarations (tinycc/kernels.py) list them (a host project's files)."""
    from tinycc.kernels import runtime_sources

    return runtime_sources(kernels)


def ptr(a: np.ndarray):
    """ctypes pointer to a C-contiguous numpy array's data."""
    assert a.flags["C_CONTIGUOUS"]
    return a.ctypes.data_as(ctypes.c_void_p)


SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


@functools.lru_cache(maxsize=None)
def sanitizer_problem(cc: str | None = None) -> str | None:
    """Why `cc` (default: the compiler tinycc builds generated projects with, as `make check`
    does) cannot build and run an AddressSanitizer/UBSan program here; None if it can. clang
    is often installed without its sanitizer runtime (libclang_rt.asan), which only the link
    or the run reveals."""
    if cc is None:
        from tinycc.sim.host import c_compiler as project_compiler

        cc = project_compiler()
    if shutil.which(cc) is None:
        return f"{cc} is not installed"
    with tempfile.TemporaryDirectory(prefix="tinycc_asan_probe_") as tmp:
        probe = Path(tmp) / "probe.c"
        probe.write_text("#include <stdlib.h>\nint main(void) { char *p = malloc(4); p[0] = 0; free(p); return 0; }\n")
        exe = Path(tmp) / "probe"
        r = subprocess.run([cc, *SANITIZE, str(probe), "-o", str(exe)], capture_output=True, text=True)
        if r.returncode != 0:
            return f"{cc} cannot build -fsanitize=address,undefined programs here: {r.stderr.strip()[-300:]}"
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
        r = subprocess.run([str(exe)], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            return f"{cc} builds sanitized programs that do not run here: {r.stderr.strip()[-300:]}"
    return None


def require_sanitizers(cc: str | None = None) -> None:
    """Skip the calling test, with the reason, where sanitized programs cannot be built and run."""
    import pytest

    problem = sanitizer_problem(cc)
    if problem:
        pytest.skip(problem)
