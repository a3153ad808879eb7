"""Build a generated project with the host C compiler and run its harness on int8 tensors."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import TinyccError
from ..program import Program

STRICT_CFLAGS = "-std=c99 -O2 -Wall -Wextra -Werror -pedantic"


class BuildError(TinyccError):
    """The generated C did not build or run (exit code 70: a tinycc bug)."""


def c_compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise BuildError("no host C compiler found (set CC, or install gcc or clang)")
    return cc


def build(project: Path, prefix: str, target: str = "all", cflags: str = STRICT_CFLAGS, cc: str | None = None,
          extra: str = "") -> Path:
    env = dict(os.environ, CC=cc or c_compiler(), CFLAGS=f"{cflags} {extra}".strip())
    r = subprocess.run(["make", "-s", "-C", str(project), target], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"building the generated project failed:\n{r.stdout}{r.stderr}")
    return project / {"trace": f"{prefix}_trace", "check": f"{prefix}_check"}.get(target, f"{prefix}_host")


def run_harness(exe: Path, program: Program, inputs: Mapping[str, np.ndarray], trace: bool = False,
                env: dict | None = None) -> tuple[dict[str, np.ndarray], dict[int, np.ndarray]]:
    """inputs: physical int8 arrays. Returns (outputs by name, trace by step index)."""
    with tempfile.TemporaryDirectory(prefix="tinycc_run_") as tmp:
        tmp = Path(tmp)
        args = [str(exe)]
        if trace:
            args += ["--trace", str(tmp / "trace.bin")]
        for i, name in enumerate(program.inputs):
            p = tmp / f"in{i}.bin"
            p.write_bytes(np.ascontiguousarray(inputs[name], dtype=np.int8).tobytes())
            args.append(str(p))
        outs = [tmp / f"out{i}.bin" for i in range(len(program.outputs))]
        args += [str(p) for p in outs]
        r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
        if r.returncode != 0:
            raise BuildError(f"the generated program failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
        if r.stderr.strip():
            raise BuildError(f"the generated program reported problems:\n{r.stderr}")
        results = {}
        for name, p in zip(program.outputs, outs):
            results[name] = np.frombuffer(p.read_bytes(), dtype=np.int8).reshape(program.tensors[name].shape)
        steps = {}
        if trace:
            data = (tmp / "trace.bin").read_bytes()
            pos = 0
            while pos < len(data):
                step, size = np.frombuffer(data[pos:pos + 8], dtype=np.int32)
                steps[int(step)] = np.frombuffer(data[pos + 8:pos + 8 + size], dtype=np.int8).copy()
                pos += 8 + int(size)
        return results, steps


def build_shared_library(project: Path, prefix: str, cflags: str = STRICT_CFLAGS, cc: str | None = None) -> Path:
    """The project's model (model.c, weights.c, runtime/) as a shared library, built with the
    same strict flags as the harness, to run many samples in one process (SharedModel)."""
    runtime = sorted(str(p) for p in (project / "runtime").glob("*.c"))
    lib = project / f"lib{prefix}_shared.so"
    cmd = [cc or c_compiler(), *cflags.split(), "-fPIC", "-shared", f"-I{project}", f"-I{project / 'runtime'}",
           "-o", str(lib), str(project / "model.c"), str(project / "weights.c"), *runtime]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"building the generated model as a shared library failed:\n{r.stdout}{r.stderr}")
    return lib


class SharedModel:
    """The generated C loaded in this process (ctypes): PREFIX_input(i), PREFIX_invoke_arena()
    and PREFIX_output(i) of model.h, so a data set runs without a process per sample."""

    def __init__(self, lib: Path, prefix: str, program: Program):
        import ctypes

        self._ctypes = ctypes
        self.program = program
        self.lib = ctypes.CDLL(str(lib))
        self._input = getattr(self.lib, f"{prefix}_input")
        self._output = getattr(self.lib, f"{prefix}_output")
        for fn in (self._input, self._output):
            fn.restype = ctypes.POINTER(ctypes.c_int8)
            fn.argtypes = [ctypes.c_int]
        # a streamed input has no arena buffer: PREFIX_invoke reads it from our array window by window
        self._invoke = getattr(self.lib, f"{prefix}_invoke" if program.streamed_input else f"{prefix}_invoke_arena")
        self._invoke.restype = ctypes.c_int

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """inputs: physical int8 arrays. Returns the outputs by name (copies)."""
        if self.program.streamed_input:
            return self._run_invoke(inputs)
        for k, name in enumerate(self.program.inputs):
            data = np.ascontiguousarray(inputs[name], dtype=np.int8).ravel()
            if data.size != self.program.tensors[name].size:
                raise BuildError(f"input {name!r}: {data.size} values, the model takes {self.program.tensors[name].size}")
            self._ctypes.memmove(self._input(k), data.ctypes.data, data.size)
        status = self._invoke()
        if status != 0:
            raise BuildError(f"the generated model returned status {status}")
        results = {}
        for k, name in enumerate(self.program.outputs):
            t = self.program.tensors[name]
            results[name] = np.ctypeslib.as_array(self._output(k), shape=(t.size,)).copy().reshape(t.shape)
        return results

    def _run_invoke(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """PREFIX_invoke(inputs..., outputs...) with our own arrays (the streamed-input API)."""
        arrays = [np.ascontiguousarray(inputs[name], dtype=np.int8).ravel() for name in self.program.inputs]
        for name, data in zip(self.program.inputs, arrays):
            if data.size != self.program.tensors[name].size:
                raise BuildError(f"input {name!r}: {data.size} values, the model takes {self.program.tensors[name].size}")
        outs = [np.zeros(self.program.tensors[name].size, np.int8) for name in self.program.outputs]
        status = self._invoke(*[self._ctypes.c_void_p(a.ctypes.data) for a in arrays + outs])
        if status != 0:
            raise BuildError(f"the generated model returned status {status}")
        return {name: o.reshape(self.program.tensors[name].shape) for name, o in zip(self.program.outputs, outs)}
