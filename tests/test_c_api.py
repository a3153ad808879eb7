"""The public C API of a generated project, called directly: `*_invoke`, `*_invoke_f32`,
`*_input`/`*_output`/`*_invoke_arena` (the project built as a shared library, ctypes), the
arena's alignment, and the host harness's `--repeat`.

The reference is the golden model with the engines' own quantize/dequantize functions
(CompiledModel.quantize_inputs, CompiledModel.logical), so that the C wrappers and `tinycc run`
stay tied together. The model has two inputs and two outputs; its input scales are powers of two
(exact float division in every precision, so rounding ties are exact ties), its outputs have
non-zero zero points, one output scale needs 9 significant digits, and one output is a Pad of an
input (every input byte reaches it unchanged).
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinycc.codegen.emit import generate_project, write_files
from tinycc.compiler import QuantOptions
from tinycc.engines import CompiledModel
from tinycc.frontend import load_graph
from tinycc.passes import run_pipeline
from tinycc.sim.host import c_compiler

IMAGE_RANGE = (-3.0, 4.96875)      # minmax calibration: scale 255/32/255 = 2^-5, zero point -32
VECTOR_RANGE = (-0.5, 1.4921875)   # scale 2^-7, zero point -64
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def api_model(path: Path) -> Path:
    """image [1,3,5,4] -> Conv -> Relu -> GAP -> Gemm -> scores [1,5]; vector [1,6] -> Pad -> padded [1,8]."""
    rng = np.random.default_rng(7)
    inits = [numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32), "w"),
             numpy_helper.from_array((rng.standard_normal(4) * 0.1).astype(np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((5, 4)).astype(np.float32), "fw"),
             numpy_helper.from_array(np.array([0.3, -0.2, 0.1, 0.5, -0.4], np.float32), "fb"),
             numpy_helper.from_array(np.array([0, 1, 0, 1], np.int64), "pads")]
    nodes = [helper.make_node("Conv", ["image", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv"], ["relu"]),
             helper.make_node("GlobalAveragePool", ["relu"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["flat"]),
             helper.make_node("Gemm", ["flat", "fw", "fb"], ["scores"], transB=1),
             helper.make_node("Pad", ["vector", "pads"], ["padded"])]
    graph = helper.make_graph(
        nodes, "api",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 5, 4]),
         helper.make_tensor_value_info("vector", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 5]),
         helper.make_tensor_value_info("padded", TensorProto.FLOAT, [1, 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def calibration(path: Path) -> Path:
    """Samples whose extremes are exactly the ranges above (minmax keeps them)."""
    rng = np.random.default_rng(3)
    image = rng.uniform(*IMAGE_RANGE, (8, 1, 3, 5, 4)).astype(np.float32)
    vector = rng.uniform(*VECTOR_RANGE, (8, 1, 6)).astype(np.float32)
    image[0].flat[:2] = IMAGE_RANGE
    vector[0].flat[:2] = VECTOR_RANGE
    np.savez(path, image=image, vector=vector)
    return path


def build_library(project: Path, name: str, defines: tuple[str, ...] = ()) -> Path:
    """model.c + weights.c + the project's runtime as one shared library, strict flags."""
    sources = ["model.c", "weights.c", *sorted(str(p.relative_to(project)) for p in (project / "runtime").glob("*.c"))]
    lib = project / name
    cmd = [c_compiler(), *STRICT, "-fPIC", "-shared", "-I.", "-Iruntime", *(f"-D{d}" for d in defines),
           "-o", str(lib), *sources]
    r = subprocess.run(cmd, cwd=project, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return lib


def load_api(lib_path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(lib_path))
    p = ctypes.c_void_p
    lib.model_invoke.argtypes = [p, p, p, p]
    lib.model_invoke_f32.argtypes = [p, p, p, p]
    lib.model_input.argtypes = lib.model_output.argtypes = [ctypes.c_int]
    lib.model_input.restype = lib.model_output.restype = p
    for f in (lib.model_invoke, lib.model_invoke_f32, lib.model_invoke_arena):
        f.restype = ctypes.c_int
    return lib


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("c_api")
    g = run_pipeline(load_graph(api_model(tmp / "api.onnx")))
    model = CompiledModel(g, QuantOptions(calib=str(calibration(tmp / "calib.npz"))))
    project = tmp / "project"
    write_files(generate_project(model.program, model.mem, "model", "api"), project)
    prog = model.program
    return SimpleNamespace(model=model, program=prog, project=project, lib=load_api(build_library(project, "libapi.so")),
                           ins=prog.inputs, outs=prog.outputs)


def ptr(a: np.ndarray) -> ctypes.c_void_p:
    assert a.flags["C_CONTIGUOUS"]
    return ctypes.c_void_p(a.ctypes.data)


def random_int8(api, rng) -> dict[str, np.ndarray]:
    """int8 inputs in the physical layout, both extremes included."""
    out = {}
    for name in api.ins:
        v = rng.integers(-128, 128, api.program.tensors[name].shape).astype(np.int8)
        v.flat[:2] = (-128, 127)
        out[name] = v
    return out


def golden(api, physical: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The golden model on int8 inputs given in the physical layout."""
    from tinycc.reference.int_exec import run_int8

    return run_int8(api.program, physical)


def c_invoke(api, physical, lib=None) -> dict[str, np.ndarray]:
    lib = lib or api.lib
    ins = [np.ascontiguousarray(physical[n]) for n in api.ins]
    outs = [np.zeros(api.program.tensors[n].shape, np.int8) for n in api.outs]
    assert lib.model_invoke(*map(ptr, ins), *map(ptr, outs)) == 0
    return dict(zip(api.outs, outs))


def assert_same(got: dict, want: dict) -> None:
    for name in want:
        np.testing.assert_array_equal(got[name], want[name].reshape(got[name].shape), err_msg=name)


# ---- *_invoke -------------------------------------------------------------------------------------
def test_invoke_matches_the_golden_model(api):
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = random_int8(api, rng)
        assert_same(c_invoke(api, x), golden(api, x))


def test_invoke_copies_every_input_byte(api):
    """Two runs whose inputs differ in their last byte only: a copy one byte short keeps the
    previous run's byte and returns the previous output."""
    rng = np.random.default_rng(1)
    x = random_int8(api, rng)
    for name in api.ins:
        a = {k: v.copy() for k, v in x.items()}
        b = {k: v.copy() for k, v in x.items()}
        a[name].flat[-1], b[name].flat[-1] = -128, 127
        want_a, want_b = golden(api, a), golden(api, b)
        assert any(not np.array_equal(want_a[o], want_b[o]) for o in api.outs), f"{name}'s last byte is dead"
        assert_same(c_invoke(api, a), want_a)
        assert_same(c_invoke(api, b), want_b)


def test_invoke_leaves_the_callers_input_and_accepts_one_buffer_for_both(api):
    x = random_int8(api, np.random.default_rng(2))
    kept = {k: v.copy() for k, v in x.items()}
    want = golden(api, x)
    assert_same(c_invoke(api, x), want)
    assert_same(x, kept)
    # the vector input's buffer, large enough for the padded output, serves as both
    vector, padded = api.ins[1], api.outs[1]
    shared = np.zeros(api.program.tensors[padded].size, np.int8)
    shared[:x[vector].size] = x[vector].ravel()
    scores = np.zeros(api.program.tensors[api.outs[0]].shape, np.int8)
    assert api.lib.model_invoke(ptr(x[api.ins[0]]), ptr(shared), ptr(scores), ptr(shared)) == 0
    np.testing.assert_array_equal(shared, want[padded].ravel())
    np.testing.assert_array_equal(scores, want[api.outs[0]].reshape(scores.shape))


def arena_array(pointer: int, size: int) -> np.ndarray:
    return np.ctypeslib.as_array((ctypes.c_int8 * size).from_address(pointer))


def test_zero_copy_api_matches_the_golden_model(api):
    lib = api.lib
    rng = np.random.default_rng(3)
    for _ in range(2):
        x = random_int8(api, rng)
        for i, name in enumerate(api.ins):
            arena_array(lib.model_input(i), api.program.tensors[name].size)[:] = x[name].ravel()
        assert lib.model_invoke_arena() == 0
        want = golden(api, x)
        for i, name in enumerate(api.outs):
            got = arena_array(lib.model_output(i), api.program.tensors[name].size)
            np.testing.assert_array_equal(got, want[name].ravel(), err_msg=name)
    for bad in (-1, len(api.ins)):
        assert lib.model_input(bad) is None
    assert lib.model_output(len(api.outs)) is None


def test_invoke_with_the_arena_pointers_themselves(api):
    """model_input(i) as the input and model_output(i) as the output: no copy, same results."""
    lib = api.lib
    x = random_int8(api, np.random.default_rng(4))
    for i, name in enumerate(api.ins):
        arena_array(lib.model_input(i), x[name].size)[:] = x[name].ravel()
    ins = [ctypes.c_void_p(lib.model_input(i)) for i in range(len(api.ins))]
    outs = [ctypes.c_void_p(lib.model_output(i)) for i in range(len(api.outs))]
    assert lib.model_invoke(*ins, *outs) == 0
    want = golden(api, x)
    for i, name in enumerate(api.outs):
        np.testing.assert_array_equal(arena_array(lib.model_output(i), want[name].size), want[name].ravel())


# ---- *_invoke_f32 ---------------------------------------------------------------------------------
def float_inputs(api, rng) -> list[dict[str, np.ndarray]]:
    """Logical-layout float inputs: exact rounding ties of both signs, values just inside and
    beyond the int8 range, far out of range, zero, and random values."""
    cases = []
    for _ in range(3):
        case = {}
        for name in api.ins:
            info = api.program.tensors[name]
            scale, zp = info.quant.scalar()
            q = rng.integers(-140, 140, info.size).astype(np.float64)          # steps, incl. beyond int8
            frac = rng.choice([-0.5, 0.5, 0.0, 0.25, -0.25, 0.49], info.size)  # ties (exact: scale 2^-k)
            real = (q - zp + frac) * scale
            real[:6] = [0.0, -1e6, 1e6, (-128.5 - zp) * scale, (127.5 - zp) * scale, -2.5 * scale]
            case[name] = real.astype(np.float32).reshape(info.logical_shape)
        cases.append(case)
    return cases


def test_input_scales_make_exact_ties(api):
    """The premise of the f32 test: powers of two (a tie is a tie in float32 and in double)."""
    for name in api.ins:
        scale, _ = api.program.tensors[name].quant.scalar()
        assert np.log2(scale) == round(np.log2(scale)), (name, scale)


def test_output_scale_needs_nine_digits(api):
    """The premise that makes scale literals matter: 6 significant digits would change it."""
    scale, zp = api.program.tensors[api.outs[0]].quant.scalar()
    assert np.float32(f"{scale:.6g}") != np.float32(scale) and zp != 0


def test_invoke_f32_matches_quantize_golden_dequantize(api):
    lib, model = api.lib, api.model
    for x in float_inputs(api, np.random.default_rng(5)):
        physical = model.quantize_inputs(x)   # the engines' quantization (tinycc run)
        want = {name: model.logical(name, v, dequantize=True) for name, v in golden(api, physical).items()}
        ins = [np.ascontiguousarray(x[n].transpose(api.program.tensors[n].perm or range(x[n].ndim)), np.float32)
               for n in api.ins]
        outs = [np.zeros(api.program.tensors[n].shape, np.float32) for n in api.outs]
        assert lib.model_invoke_f32(*map(ptr, ins), *map(ptr, outs)) == 0
        for name, got in zip(api.outs, outs):
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want[name].reshape(got.shape), err_msg=name)


# ---- alignment --------------------------------------------------------------------------------------
def arena_base(api, lib) -> int:
    return lib.model_input(0) - api.model.mem.offsets[api.ins[0]]


@pytest.mark.parametrize("align", [None, 64, 4096])
def test_arena_base_has_the_alignment_of_model_h(api, align):
    lib = api.lib if align is None else load_api(build_library(api.project, f"libapi{align}.so",
                                                               (f"MODEL_ARENA_ALIGN={align}",)))
    assert arena_base(api, lib) % (align or 16) == 0
    pointers = [lib.model_input(i) for i in range(len(api.ins))] + [lib.model_output(i) for i in range(len(api.outs))]
    assert all(p % 16 == 0 for p in pointers), [hex(p) for p in pointers]
    assert "#define MODEL_ARENA_ALIGN 16" in (api.project / "model.h").read_text()


def test_an_alignment_below_the_planners_does_not_compile(api, tmp_path):
    r = subprocess.run([c_compiler(), *STRICT, "-I.", "-Iruntime", "-DMODEL_ARENA_ALIGN=8", "-c", "model.c",
                        "-o", str(tmp_path / "model.o")], cwd=api.project, capture_output=True, text=True)
    assert r.returncode != 0 and "MODEL_ARENA_ALIGN must be a power of two" in r.stderr


def make(project: Path, target: str, cflags: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, CC=c_compiler(), CFLAGS=" ".join(cflags))
    return subprocess.run(["make", "-s", "-B", "-C", str(project), target], env=env, capture_output=True, text=True)


def run_harness(api, exe: Path, physical, tmp: Path, *options: str) -> subprocess.CompletedProcess:
    args = [str(exe), *options]
    for i, name in enumerate(api.ins):
        (tmp / f"in{i}.bin").write_bytes(np.ascontiguousarray(physical[name]).tobytes())
        args.append(str(tmp / f"in{i}.bin"))
    args += [str(tmp / f"out{i}.bin") for i in range(len(api.outs))]
    return subprocess.run(args, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))


def harness_outputs(api, tmp: Path) -> dict[str, np.ndarray]:
    return {name: np.frombuffer((tmp / f"out{i}.bin").read_bytes(), np.int8) for i, name in enumerate(api.outs)}


def test_checked_harness_verifies_the_arena_address(api, tmp_path):
    """`make check` (ASan/UBSan, write checks) with a 4096-byte arena alignment runs; the same
    build with the alignment attribute taken away must be caught by the harness's check."""
    project = tmp_path / "p"
    shutil.copytree(api.project, project, ignore=shutil.ignore_patterns("*.so", "model_*"))
    x = random_int8(api, np.random.default_rng(6))
    r = make(project, "check", STRICT + ["-DMODEL_ARENA_ALIGN=4096"])
    assert r.returncode == 0, r.stderr
    r = run_harness(api, project / "model_check", x, tmp_path)
    assert r.returncode == 0, r.stderr
    assert_same(harness_outputs(api, tmp_path), golden(api, x))
    # no attribute: the arena is only as aligned as an int32 inside the guard struct
    r = make(project, "check", STRICT + ["-DMODEL_ARENA_ALIGN=1048576", "-DTC_ARENA_ALIGNED="])
    assert r.returncode == 0, r.stderr
    r = run_harness(api, project / "model_check", x, tmp_path)
    assert r.returncode == 2 and "is not 1048576-byte aligned" in r.stderr, (r.returncode, r.stderr)


# ---- the host harness -----------------------------------------------------------------------------
def test_harness_repeat_writes_the_output_of_its_input(api, tmp_path):
    """--repeat N times N runs; each must start from the input file, not from what the previous
    run left in the arena (this model's conv output overlaps its input)."""
    lib = api.lib
    x = random_int8(api, np.random.default_rng(7))
    image = arena_array(lib.model_input(0), x[api.ins[0]].size)
    image[:] = x[api.ins[0]].ravel()
    arena_array(lib.model_input(1), x[api.ins[1]].size)[:] = x[api.ins[1]].ravel()
    assert lib.model_invoke_arena() == 0
    assert not np.array_equal(image, x[api.ins[0]].ravel()), "premise: a run overwrites the input"
    project = tmp_path / "p"
    shutil.copytree(api.project, project, ignore=shutil.ignore_patterns("*.so", "model_*"))
    assert make(project, "all", STRICT).returncode == 0
    want = golden(api, x)
    for options in ([], ["--repeat", "1"], ["--repeat", "3"]):
        r = run_harness(api, project / "model_host", x, tmp_path, *options)
        assert r.returncode == 0, r.stderr
        assert ("invoke_us=" in r.stdout) == bool(options)
        assert_same(harness_outputs(api, tmp_path), want)
    for bad in ("0", "-2", "x", "3x"):
        r = run_harness(api, project / "model_host", x, tmp_path, "--repeat", bad)
        assert r.returncode == 1 and "--repeat takes a positive number" in r.stderr


# ---- Cortex-M -------------------------------------------------------------------------------------
def _qemu_missing() -> str | None:
    from tinycc.sim.qemu import missing_tools

    return missing_tools(run=True)


@pytest.mark.skipif(_qemu_missing() is not None, reason=f"Cortex-M tools missing: {_qemu_missing()}")
def test_cortex_m7_arena_aligned_to_a_cache_line(api, tmp_path):
    """-DMODEL_ARENA_ALIGN=32 (an M7 cache line) for the cross build: the harness checks the
    address under QEMU and the outputs are the golden model's."""
    from tinycc.sim.qemu import ARM_PREFIX, run_elf
    from tinycc.target import get_core, memory_for

    core = get_core("cortex-m7")
    project = tmp_path / "m7"
    write_files(generate_project(api.program, api.model.mem, "model", "api", core,
                                 memory_for(core, core.sram_capacity, None)), project)
    cflags = "-std=c99 -O2 -Wall -Wextra -Werror -pedantic -ffp-contract=off -DMODEL_ARENA_ALIGN=32"
    r = subprocess.run(["make", "-s", "-C", str(project), "arm", f"ARM_PREFIX={ARM_PREFIX}", f"ARM_CFLAGS={cflags}"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    x = random_int8(api, np.random.default_rng(8))
    run = run_elf(project / "build-arm" / "model.elf", core, [x[n].tobytes() for n in api.ins],
                  [api.program.tensors[n].size for n in api.outs], count=False)
    want = golden(api, x)
    for name, raw in zip(api.outs, run.outputs):
        np.testing.assert_array_equal(np.frombuffer(raw, np.int8), want[name].ravel(), err_msg=name)
