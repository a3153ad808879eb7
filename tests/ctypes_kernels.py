"""Calling runtime_c kernels from the tests of tests/test_ops_matmul.py and
tests/test_ops_structural.py: ctypes structs built from a params dataclass (the declaration in
tinycc/kernels.py says which struct and how many pointers), and one AddressSanitizer + UBSan
driver whose params are C99 designated initializers, as the code generator emits them."""
from __future__ import annotations

import ctypes
import os
import subprocess
from dataclasses import asdict
from pathlib import Path

import numpy as np

from cbuild import RUNTIME, c_compiler, kernel_sources, ptr, require_sanitizers, runtime_library
from tinycc.kernels import lookup

TC_OK, TC_ARG_ERROR = 0, -1
SENTINEL = 0x5A  # output buffers start with it, so "wrote nothing" is observable
_struct_types: dict[str, type] = {}


def c_struct(p):
    """The C struct mirrored by dataclass `p` (int32 fields, int32[n] for tuple fields)."""
    values = asdict(p)
    cls = _struct_types.get(p.C_STRUCT)
    if cls is None:
        spec = [(k, ctypes.c_int32 * len(v) if isinstance(v, tuple) else ctypes.c_int32) for k, v in values.items()]
        cls = _struct_types[p.C_STRUCT] = type(p.C_STRUCT, (ctypes.Structure,), {"_fields_": spec})
    s = cls()
    for k, v in values.items():
        if isinstance(v, tuple):
            getattr(s, k)[:] = v
        else:
            setattr(s, k, v)
    return s


def call(name: str, p, *arrays) -> int:
    """Calls kernel `name` of the runtime library; arrays (or None) after the params pointer."""
    lib = runtime_library()
    fn = getattr(lib, name)
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p] * (len(lookup(name).args) + 1)
    return fn(ctypes.byref(c_struct(p)), *[None if a is None else ptr(np.ascontiguousarray(a)) for a in arrays])


def run_c(name: str, p, out_size: int, *inputs, scratch: int = 0) -> tuple[int, np.ndarray]:
    """(status, output) of a kernel whose last pointer is its int8 output (after a scratch
    buffer of `scratch` bytes when given)."""
    out = np.full(out_size, SENTINEL, np.int8)
    extra = [np.zeros(max(scratch, 1), np.int8)] if scratch else []
    return call(name, p, *[np.ascontiguousarray(a) for a in inputs], *extra, out), out


def _initializer(p) -> str:
    def value(v):
        return "{" + ", ".join(str(int(e)) for e in v) + "}" if isinstance(v, tuple) else str(int(v))
    return "{" + ", ".join(f".{k} = {value(v)}" for k, v in asdict(p).items()) + "}"


def _array(name: str, a) -> str:
    a = np.asarray(a)
    ctype = {np.dtype(np.int8): "int8_t", np.dtype(np.int32): "int32_t"}[a.dtype]
    values = ", ".join(map(str, a.reshape(-1).tolist())) or "0"
    return f"static const {ctype} {name}[{max(a.size, 1)}] = {{{values}}};"


def run_under_sanitizers(tmp_path: Path, cases) -> None:
    """cases: (kernel, params, [input arrays in argument order], scratch bytes, expected int8
    output). Builds one driver with -fsanitize=address,undefined from the kernels' declared
    sources and asserts every call returns TC_OK with the expected bytes and no report."""
    require_sanitizers()
    blocks, calls, headers = [], [], set()
    for k, (kernel, p, arrays, scratch, want) in enumerate(cases):
        headers.add(lookup(kernel).header)
        blocks.append(f"static const {p.C_STRUCT} P{k} = {_initializer(p)};")
        names = []
        for j, a in enumerate(arrays):
            blocks.append(_array(f"A{k}_{j}", a))
            names.append(f"A{k}_{j}")
        blocks.append(_array(f"W{k}", np.asarray(want, np.int8)))
        scratch_decl = f"int8_t *s = (int8_t *)malloc({max(scratch, 1)});" if scratch else "int8_t *s = NULL;"
        args = ", ".join([f"&P{k}", *names, *(["s"] if scratch else []), "out"])
        calls.append(f"""    {{
        int8_t *out = (int8_t *)malloc(sizeof W{k});
        {scratch_decl}
        if (out != NULL) memset(out, {SENTINEL}, sizeof W{k});
        if (out == NULL || {kernel}({args}) != TC_OK || memcmp(out, W{k}, sizeof W{k}) != 0) {{
            printf("case {k} ({kernel}) failed\\n");
            ++failures;
        }}
        free(out);
        free(s);
    }}""")
    source = "\n".join(["#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>",
                        *(f'#include "{h}"' for h in sorted(headers)), "", *blocks, "",
                        "int main(void) {", "    int failures = 0;", *calls,
                        '    if (failures == 0) printf("ALL OK\\n");', "    return failures != 0;", "}", ""])
    driver = tmp_path / "driver.c"
    driver.write_text(source)
    exe = tmp_path / "driver"
    from tinycc.sim.host import c_compiler as project_compiler

    cc = project_compiler() or c_compiler()
    kernels = sorted({c[0] for c in cases})
    build = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1",
                            "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                            f"-I{RUNTIME}", str(driver), *[str(RUNTIME / s) for s in kernel_sources(*kernels)],
                            "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1"))
    assert run.returncode == 0 and "ALL OK" in run.stdout and not run.stderr, run.stdout[-2000:] + run.stderr[-4000:]
