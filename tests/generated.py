"""The generated projects whose bytes the refactoring check pins (tests/test_generated_identical.py).

Every project is compiled through the command line (`tinycc compile`), exactly as a user would,
so the same code runs at any revision of tinycc (benchmarks/compare_generated.py runs this file
against an older checkout). The projects: the whole torchscript zoo (tests/zoo.py, synthetic
seeded calibration), the four MLPerf Tiny QDQ models and two float MLPerf models calibrated on
the stored samples (deterministic), each for the host and for --target cortex-m4.

Digested: every file of the project except runtime/ (the C runtime may be split into other
files without changing what it computes: the kernel tests prove that). With --target the
report holds the ELF sizes and the instruction count of one inference under QEMU, so a change
of the compiled kernels' code shows there too. The build files list the runtime sources: they
are digested without those names (RUNTIME_SOURCE), and the test checks that they list exactly
the .c files shipped in runtime/.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
from conftest import zoo_cache_dir  # the zoo export cache, one key for every user

TESTS_DIR = Path(__file__).resolve().parent
SHARED_DIR = Path(os.environ.get("TINYCC_SHARED_DIR") or TESTS_DIR.parent.parent / "shared")
MLPERF_DIR = SHARED_DIR / "models" / "mlperf_tiny"
TARGETS = ("host", "cortex-m4")
ZOO_EXPORTER = "torchscript"
MLPERF_QDQ = ("ic_resnet8", "vww_mobilenetv1_025", "kws_dscnn", "ad_autoencoder")
MLPERF_FLOAT = ("kws_dscnn", "ic_resnet8")  # calibrated on samples.npz (NHWC exports)
SKIPPED_FILES = ("runtime/",)
# the runtime sources the build files name: whole '    runtime/x.c' lines (CMake), ' runtime/x.c' (Makefile)
RUNTIME_SOURCE = re.compile(rb"(?m)^[ \t]+runtime/[\w./]+\.c\n|[ \t]+runtime/[\w./]+\.c(?=\s)")
# CMake's shared runtime library: foreach(tc_file x.c y.c) names them without the folder
RUNTIME_LIST = re.compile(rb"(?<=foreach\(tc_file)((?: [\w.]+\.c)+)(?=\))")
BUILD_FILES = ("Makefile", "CMakeLists.txt")


def zoo_model(name: str) -> Path:
    """The torchscript export of a zoo model, from the shared cache (exported on a miss)."""
    path = zoo_cache_dir() / f"{name}_{ZOO_EXPORTER}.onnx"
    if not path.exists():
        sys.path.insert(0, str(TESTS_DIR))
        import zoo

        path.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp())
        exported = zoo.export(name, ZOO_EXPORTER, work)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(exported.read_bytes())
        tmp.replace(path)
    return path


def cases(mlperf: bool = True) -> list[str]:
    """Case ids: '<source>:<model>@<target>'."""
    models = [f"zoo:{name}" for name in _zoo_names()]
    if mlperf and MLPERF_DIR.is_dir():
        models += [f"qdq:{m}" for m in MLPERF_QDQ] + [f"float:{m}" for m in MLPERF_FLOAT]
    return [f"{m}@{t}" for m in models for t in TARGETS]


def _zoo_names() -> list[str]:
    sys.path.insert(0, str(TESTS_DIR))
    import zoo

    return [n for n in zoo.ZOO if (n, ZOO_EXPORTER) not in zoo.KNOWN_EXPORT_FAILURES]


def compile_case(case: str, work: Path) -> dict[str, bytes]:
    """Compile one case with `tinycc compile` into work/ and return its files (relative path -> bytes)."""
    from tinycc.cli import main

    model, target = case.split("@")
    source, name = model.split(":")
    argv = ["compile", "-o", str(work / "out"), "--target", target, "--force", "--name", "model"]
    if source == "zoo":
        path = zoo_model(name)
    elif source == "qdq":
        path = MLPERF_DIR / f"{name}_qdq.onnx"
    else:
        path = MLPERF_DIR / f"{name}_nhwc.onnx"
        calib = work / "calib.npy"
        with np.load(MLPERF_DIR / "samples.npz") as samples:
            np.save(calib, samples[f"{name}_float"])
        argv += ["--calib", str(calib)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv[:1] + [str(path)] + argv[1:])
    if rc != 0:
        raise RuntimeError(f"{case}: tinycc compile exited {rc}:\n{err.getvalue()}")
    root = work / "out"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def listed_runtime_sources(files: dict[str, bytes]) -> dict[str, list[str]]:
    """Build file -> the runtime .c files it names, in order."""
    out = {}
    for f in BUILD_FILES:
        if f in files:
            out[f] = [m.strip().decode() for m in RUNTIME_SOURCE.findall(files[f])]
            out[f] += ["runtime/" + n.decode() for m in RUNTIME_LIST.findall(files[f]) for n in m.split()]
    return out


def _without_runtime_sources(data: bytes) -> bytes:
    return RUNTIME_LIST.sub(b"", RUNTIME_SOURCE.sub(b"", data))


def digests(files: dict[str, bytes]) -> dict[str, str]:
    """sha256 of every file outside runtime/; the build files without their runtime source names."""
    return {rel: hashlib.sha256(_without_runtime_sources(data) if rel in BUILD_FILES else data).hexdigest()
            for rel, data in sorted(files.items()) if not rel.startswith(SKIPPED_FILES)}


def case_digests(case: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        return digests(compile_case(case, Path(tmp)))


if __name__ == "__main__":  # python tests/generated.py CASE... : prints {case: {file: sha256}} as JSON
    import json

    print(json.dumps({c: case_digests(c) for c in (sys.argv[1:] or cases())}, indent=1, sort_keys=True))
