"""The ONNX backend node tests as an external oracle for tinycc (tests/test_onnx_node.py and
benchmarks/bench_onnx_node.py).

The `onnx` wheels up to 1.19.0 ship `onnx/backend/test/data/node/<test>/` (model.onnx and
test_data_set_0/input_*.pb, output_*.pb); newer wheels do not. The node part of the 1.19.0 wheel
is fetched with `pip download` (the project's own onnx stays as it is) and unpacked once into a
cache folder: $TINYCC_ONNX_NODE_DIR, default ~/.cache/tinycc/onnx-node-1.19.0.

Each selected test (every operator of its graph is one tinycc lists as supported) runs in two
variants: as shipped, and with every graph input but the first turned into an initializer
(exporters write weights, axes, pads and scales as initializers; many node tests keep them as
inputs, which tinycc refuses because it compiles static graphs only).

Outcomes per engine:
  pass      float: max|err| <= 1e-4 * max|ref| (integer outputs exact) against the shipped
            outputs; int8: the golden integer model and the generated host C agree bit for bit
  refused   tinycc raised BadInput/Unsupported (exit 2) with a message
  wrong     a result that breaks the pass rule
  internal  any other exception (exit 70: a tinycc bug)
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Iterable

import numpy as np
import onnx
from onnx import numpy_helper

import tinycc.ops  # noqa: F401  (registers every importer)
from tinycc.ops.registry import ONNX_IMPORTERS

NODE_TESTS_ONNX_VERSION = "1.19.0"
CACHE_ENV = "TINYCC_ONNX_NODE_DIR"
WHEEL_MEMBER_PREFIX = "onnx/backend/test/data/node/"
COMPLETE_MARK = ".complete"

# README "Supported operators": every operator with an importer (tinycc/ops/: a new op is swept
# as soon as it is registered), plus the ones tinycc only folds (Shape/Gather/ConstantOfShape/Range
# chains, Constant) and QDQ's QuantizeLinear/DequantizeLinear.
FOLDED_OPS = frozenset("Constant Shape Gather ConstantOfShape Range QuantizeLinear DequantizeLinear".split())
SUPPORTED_OPS = frozenset(ONNX_IMPORTERS) | FOLDED_OPS

VARIANTS = ("shipped", "initializers")

# Wrong results or internal errors the sweep found in areas other engineers are fixing, by
# "test[variant]" and engine: reported in the summary, not failed on.
KNOWN_ISSUES: dict[tuple[str, str], str] = {}
OUTCOMES = ("pass", "refused", "wrong", "internal")
FLOAT_RTOL = 1e-4  # of max|reference|


class NodeTestsUnavailable(Exception):
    """The node tests could not be found or fetched; the message says why."""


# ---------------------------------------------------------------------------------------------
# Fetching


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    return Path.home() / ".cache" / "tinycc" / f"onnx-node-{NODE_TESTS_ONNX_VERSION}"


def node_tests_dir(fetch: bool = True) -> Path:
    """The folder holding <test>/model.onnx; fetched and unpacked on first use."""
    root = cache_dir()
    if (root / COMPLETE_MARK).exists():
        return root
    if not fetch:
        raise NodeTestsUnavailable(f"the ONNX node tests are not in {root}")
    with tempfile.TemporaryDirectory(prefix="tinycc_onnx_wheel_") as tmp:
        wheel = _download_wheel(Path(tmp))
        _unpack_node_tests(wheel, root)
    return root


def _download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--retries", "1",
           "--timeout", "20", "-d", str(dest), f"onnx=={NODE_TESTS_ONNX_VERSION}"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NodeTestsUnavailable(f"pip download onnx=={NODE_TESTS_ONNX_VERSION} failed: {exc}") from None
    wheels = sorted(dest.glob("onnx-*.whl"))
    if r.returncode != 0 or not wheels:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise NodeTestsUnavailable(f"pip download onnx=={NODE_TESTS_ONNX_VERSION} failed (no network?): {tail[0]}")
    return wheels[0]


def _unpack_node_tests(wheel: Path, root: Path) -> None:
    """Unpack the node tests next to `root`, then rename into place (safe with parallel runs)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        with zipfile.ZipFile(wheel) as z:
            for member in z.namelist():
                if not member.startswith(WHEEL_MEMBER_PREFIX) or member.endswith("/"):
                    continue
                rel = Path(member[len(WHEEL_MEMBER_PREFIX):])
                if rel.is_absolute() or ".." in rel.parts:
                    continue
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(member))
        (staging / COMPLETE_MARK).write_text(f"onnx {NODE_TESTS_ONNX_VERSION} node tests from {wheel.name}\n")
        try:
            os.replace(staging, root)
        except OSError:
            if not (root / COMPLETE_MARK).exists():  # another process did not win the race either
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Test cases


@dataclass
class NodeCase:
    """One node test: its folder, and the operators its graph uses."""

    name: str
    folder: Path
    op_types: tuple[str, ...]

    def model(self) -> onnx.ModelProto:
        return onnx.load(str(self.folder / "model.onnx"))

    def _tensors(self, kind: str) -> list[np.ndarray]:
        files = (self.folder / "test_data_set_0").glob(f"{kind}_*.pb")
        ordered = sorted(files, key=lambda p: int(re.search(r"_(\d+)\.pb$", p.name).group(1)))
        return [numpy_helper.to_array(onnx.TensorProto.FromString(p.read_bytes())) for p in ordered]

    def inputs(self) -> list[np.ndarray]:
        return self._tensors("input")

    def outputs(self) -> list[np.ndarray]:
        return self._tensors("output")


def _op_types(model: onnx.ModelProto) -> tuple[str, ...] | None:
    """The graph's operator types, or None if a node is outside the standard domain or the graph
    takes or returns something other than tensors (sequences, optionals: not tinycc's domain)."""
    if any(n.domain not in ("", "ai.onnx") for n in model.graph.node):
        return None
    if any(v.type.WhichOneof("value") != "tensor_type" for v in [*model.graph.input, *model.graph.output]):
        return None
    return tuple(sorted({n.op_type for n in model.graph.node}))


def all_cases(root: Path) -> list[NodeCase]:
    cases = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and (p / "model.onnx").exists()):
        if not (folder / "test_data_set_0").is_dir():
            continue
        ops = _op_types(onnx.load(str(folder / "model.onnx"), load_external_data=False))
        if ops is not None:
            cases.append(NodeCase(folder.name, folder, ops))
    return cases


def supported_cases(root: Path) -> list[NodeCase]:
    """The node tests whose every operator is in tinycc's supported list."""
    return [c for c in all_cases(root) if c.op_types and set(c.op_types) <= SUPPORTED_OPS]


def variant_model(case: NodeCase, variant: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The model and its feeds. "initializers": graph inputs after the first become initializers
    holding the shipped values (how exporters write weights, axes, pads, scales)."""
    model = case.model()
    values = case.inputs()
    initialized = {t.name for t in model.graph.initializer}
    graph_inputs = [vi for vi in model.graph.input if vi.name not in initialized]
    feeds = {vi.name: v for vi, v in zip(graph_inputs, values)}
    if variant == "shipped":
        return model, feeds
    if variant != "initializers":
        raise ValueError(variant)
    keep = graph_inputs[:1]
    for vi in graph_inputs[1:]:
        model.graph.initializer.append(numpy_helper.from_array(feeds.pop(vi.name), vi.name))
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model, feeds


def has_variant(case: NodeCase, variant: str) -> bool:
    """The initializer variant exists only where the test has more than one graph input."""
    if variant == "shipped":
        return True
    model = case.model()
    initialized = {t.name for t in model.graph.initializer}
    return sum(vi.name not in initialized for vi in model.graph.input) > 1


# ---------------------------------------------------------------------------------------------
# Running


@dataclass
class Result:
    case: str
    variant: str
    engine: str  # "float" | "int8"
    outcome: str  # one of OUTCOMES
    detail: str = ""

    @property
    def key(self) -> str:
        return f"{self.case}[{self.variant}]"


@dataclass
class FloatRun:
    result: Result
    graph: object = None  # the IR after passes, when float passed
    feeds: dict = field(default_factory=dict)


def _classify_exception(exc: BaseException) -> tuple[str, str]:
    from tinycc.errors import BadInput

    if isinstance(exc, BadInput):
        return "refused", str(exc)[:1000] or type(exc).__name__
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    return "internal", f"{type(exc).__name__}: {str(exc)[:300]}{where}"


# Node tests whose shipped outputs are written with few digits: checked with the tolerance of
# onnx's own backend test runner (rtol 1e-3, atol 1e-7) instead of 1e-4 x max|ref|.
ROUNDED_REFERENCES = {
    "test_averagepool_2d_ceil_last_window_starts_on_pad": "expected values written with 4 decimals",
}


def compare_float(ours: np.ndarray, ref: np.ndarray, rounded: bool = False) -> str | None:
    """None if `ours` passes against the shipped `ref`, else what is wrong."""
    ours = np.asarray(ours)
    if rounded and ours.shape == ref.shape and ref.dtype.kind == "f":
        ok = np.allclose(ours.astype(np.float64), ref.astype(np.float64), rtol=1e-3, atol=1e-7, equal_nan=True)
        return None if ok else "beyond rtol 1e-3 of the (rounded) reference"
    if ours.shape != ref.shape:
        return f"shape {ours.shape}, expected {ref.shape}"
    if ref.dtype.kind in "biu":
        if not np.array_equal(ours.astype(np.int64), ref.astype(np.int64)):
            return f"integer values differ at {int(np.sum(ours.astype(np.int64) != ref.astype(np.int64)))} places"
        return None
    ref64, ours64 = ref.astype(np.float64), ours.astype(np.float64)
    nan_ref, nan_ours = np.isnan(ref64), np.isnan(ours64)
    if not np.array_equal(nan_ref, nan_ours):
        return "NaN positions differ"
    finite = ~nan_ref
    if not np.array_equal(ref64[finite & ~np.isfinite(ref64)], ours64[finite & ~np.isfinite(ref64)]):
        return "infinities differ"
    ok = np.isfinite(ref64)
    if not ok.any():
        return None
    scale = float(np.max(np.abs(ref64[ok])))
    err = float(np.max(np.abs(ref64[ok] - ours64[ok])))
    if err > FLOAT_RTOL * scale or (scale == 0 and err > 0):
        return f"max|err| {err:.3g} > {FLOAT_RTOL:g} x max|ref| {scale:.3g}"
    return None


def run_float_case(case: NodeCase, variant: str, workdir: Path) -> FloatRun:
    """Import + passes + float reference (what `tinycc run --engine float` does), against the
    shipped outputs."""
    from tinycc.engines import run_engine
    from tinycc.frontend import load_graph
    from tinycc.passes import run_pipeline

    model, feeds = variant_model(case, variant)
    path = workdir / f"{case.name}_{variant}.onnx"
    onnx.save(model, str(path))
    try:
        g = run_pipeline(load_graph(path))
        ours = run_engine(g, feeds, "float", SimpleNamespace(dequantize=False))
        refs = case.outputs()
        problems = []
        for name, ref in zip(g.outputs, refs):
            why = compare_float(ours[name], ref, rounded=case.name in ROUNDED_REFERENCES)
            if why:
                problems.append(f"{name}: {why}")
        if len(g.outputs) != len(refs):
            problems.append(f"{len(g.outputs)} outputs, the test has {len(refs)}")
    except Exception as exc:  # classified: a refusal or an internal error
        outcome, detail = _classify_exception(exc)
        return FloatRun(Result(case.name, variant, "float", outcome, detail))
    if problems:
        return FloatRun(Result(case.name, variant, "float", "wrong", "; ".join(problems)))
    return FloatRun(Result(case.name, variant, "float", "pass"), g, feeds)


def int8_applies(g, feeds: dict[str, np.ndarray]) -> bool:
    """int8 applies to graphs with float inputs and outputs that compute something."""
    tensors = g.tensors
    return (bool(g.nodes) and all(tensors[n].dtype == "float32" for n in list(g.inputs) + list(g.outputs))
            and all(v.dtype == np.float32 for v in feeds.values()))


@dataclass
class Int8Prepared:
    case: str
    variant: str
    program: object
    mem: object
    golden: dict
    physical_inputs: dict


def prepare_int8(run: FloatRun) -> Int8Prepared | Result:
    """Quantize (calibrated on the shipped input), lower, plan, run the golden model."""
    from tinycc.lower import lower, quantize_inputs
    from tinycc.memory.lifetimes import plan_memory
    from tinycc.quant.calibrate import DEFAULT_METHOD, collect_stats
    from tinycc.quant.ptq import assign_qparams
    from tinycc.reference.int_exec import run_int8

    r = run.result
    try:
        stats = collect_stats(run.graph, [run.feeds], progress=False)
        program = lower(assign_qparams(run.graph, stats, DEFAULT_METHOD), r.case)
        mem = plan_memory(program)
        physical = quantize_inputs(program, run.feeds)
        golden = run_int8(program, physical)
    except Exception as exc:
        outcome, detail = _classify_exception(exc)
        return Result(r.case, r.variant, "int8", outcome, detail)
    return Int8Prepared(r.case, r.variant, program, mem, golden, physical)


C_FLAGS = ["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fPIC", "-shared"]


def run_int8_c_batch(items: list[Int8Prepared], workdir: Path) -> list[Result]:
    """Generate every project with its own prefix, build them all into one shared library with
    the strict flags, and compare each model's C outputs with its golden outputs."""
    from tinycc.codegen.emit import generate_project, write_files

    results: dict[int, Result] = {}
    sources_of: dict[int, list[str]] = {}
    built: list[tuple[int, str]] = []
    for i, it in enumerate(items):
        prefix = f"nt{i}"
        try:
            files = generate_project(it.program, it.mem, prefix, it.case)
        except Exception as exc:
            outcome, detail = _classify_exception(exc)
            results[i] = Result(it.case, it.variant, "int8", outcome, detail)
            continue
        folder = workdir / prefix
        write_files({k: v for k, v in files.items() if k in ("model.h", "model.c", "weights.h", "weights.c")},
                    folder)
        sources_of[i] = [str(folder / "model.c"), str(folder / "weights.c")]
        built.append((i, prefix))
    failed = _build_batch(built, sources_of, workdir)
    for i, why in failed.items():
        results[i] = Result(items[i].case, items[i].variant, "int8", "internal", f"the generated C does not build: {why}")
    ok = [(i, prefix) for i, prefix in built if i not in failed]
    if ok:
        lib = ctypes.CDLL(str(workdir / f"libnodetests{len(failed)}.so"))
        for i, prefix in ok:
            results[i] = _run_one(lib, prefix, items[i])
    return [results[i] for i in sorted(results)]


def _build_batch(built: list[tuple[int, str]], sources_of: dict[int, list[str]], workdir: Path) -> dict[int, str]:
    """Build the projects into one shared library, leaving out the projects whose C the compiler
    rejects (found from the paths in its messages). Returns {index: first error} of those; the
    library is workdir/libnodetests<number of failures>.so."""
    from tinycc.resources import data_dir
    from tinycc.sim.host import c_compiler

    runtime = data_dir("runtime_c")
    failed: dict[int, str] = {}
    while built:
        ok = [(i, prefix) for i, prefix in built if i not in failed]
        lib_path = workdir / f"libnodetests{len(failed)}.so"
        cmd = [c_compiler(), *C_FLAGS, f"-I{runtime}", "-o", str(lib_path),
               *(src for i, _ in ok for src in sources_of[i]), *map(str, sorted(runtime.glob("*.c")))]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode == 0:
            return failed
        culprits = {i for i, prefix in ok if f"/{prefix}/" in r.stderr}
        if not culprits:  # the runtime itself, or the link: nothing of the batch can run
            return {**failed, **{i: _first_error(r.stderr) for i, _ in ok}}
        for i in culprits:
            prefix = dict(built)[i]
            failed[i] = _first_error("\n".join(ln for ln in r.stderr.splitlines() if f"/{prefix}/" in ln))
    return failed


def _first_error(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if "error" in ln]
    return (lines or stderr.splitlines() or ["?"])[0][:300]


def _run_one(lib: ctypes.CDLL, prefix: str, it: Int8Prepared) -> Result:
    program = it.program
    fn_in = getattr(lib, f"{prefix}_input")
    fn_out = getattr(lib, f"{prefix}_output")
    fn_in.restype = ctypes.POINTER(ctypes.c_int8)
    fn_out.restype = ctypes.POINTER(ctypes.c_int8)
    fn_in.argtypes = fn_out.argtypes = [ctypes.c_int]
    invoke = getattr(lib, f"{prefix}_invoke_arena")
    for k, name in enumerate(program.inputs):
        data = np.ascontiguousarray(it.physical_inputs[name], dtype=np.int8).ravel()
        ctypes.memmove(fn_in(k), data.ctypes.data, data.size)
    status = invoke()
    if status != 0:
        return Result(it.case, it.variant, "int8", "internal", f"{prefix}_invoke_arena returned {status}")
    diffs = []
    for k, name in enumerate(program.outputs):
        size = program.tensors[name].size
        c_out = np.ctypeslib.as_array(fn_out(k), shape=(size,)).copy()
        gold = np.ascontiguousarray(it.golden[name], dtype=np.int8).ravel()
        if not np.array_equal(c_out, gold):
            diffs.append(f"{name}: {int(np.sum(c_out != gold))} of {size} values differ from the golden model")
    if diffs:
        return Result(it.case, it.variant, "int8", "wrong", "; ".join(diffs))
    return Result(it.case, it.variant, "int8", "pass")


# ---------------------------------------------------------------------------------------------
# Summary


def is_known(r: Result) -> bool:
    return (r.key, r.engine) in KNOWN_ISSUES


def failures(results: Iterable[Result]) -> list[Result]:
    """Wrong results and internal errors, except the known issues."""
    return [r for r in results if r.outcome in ("wrong", "internal") and not is_known(r)]


def known_issue_notes(results: Iterable[Result]) -> list[str]:
    notes = []
    for r in results:
        if is_known(r):
            state = "still" if r.outcome in ("wrong", "internal") else f"now {r.outcome}: remove it from KNOWN_ISSUES,"
            notes.append(f"known issue {state} {r.engine} {r.outcome} {r.key}: {KNOWN_ISSUES[(r.key, r.engine)]}")
    return notes


def summary_table(results: Iterable[Result]) -> str:
    results = list(results)
    lines = [f"{'engine':<7} {'variant':<13} {'tests':>6} " + " ".join(f"{o:>9}" for o in OUTCOMES)]
    for engine in ("float", "int8"):
        for variant in VARIANTS:
            counts = Counter(r.outcome for r in results if r.engine == engine and r.variant == variant)
            total = sum(counts.values())
            if total:
                lines.append(f"{engine:<7} {variant:<13} {total:>6} " + " ".join(f"{counts[o]:>9}" for o in OUTCOMES))
    return "\n".join(lines)
