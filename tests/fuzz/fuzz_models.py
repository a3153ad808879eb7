"""Fuzz `tinycc compile` with mutated real models.

    python tests/fuzz/fuzz_models.py --seed 1 --cases 500 --jobs 2 --out /tmp/fuzz

Seed models: small hand-made ones (tests/broken_models.py), examples/digits_cnn.onnx, the zoo's
ONNX exports when the test suite has cached them, and the MLPerf Tiny models (float and QDQ) in
../shared when present. Each case takes one seed model, applies one to three mutations
(tests/fuzz/mutators.py: bytes, protobuf fields, graph, attributes, initializers, QDQ
parameters, shapes, opsets, names), sometimes adds calibration data or other options, and runs
`tinycc compile` in a forked child with a timeout and a memory limit. Outcomes:

  exit 0   the model compiled; its C is then built with the generated Makefile's flags
           (-std=c99 -O2 -Wall -Wextra -Werror -pedantic) and linked: failure = "c_build_fail"
  exit 2/3 a clear refusal: fine, unless the message is missing or carries a traceback
  exit 70  an internal error: a tinycc bug ("internal"), grouped by the innermost tinycc frame
  timeout, a signal or any other status: a bug too

Cases are deterministic per (seed, index) for a given seed corpus (its fingerprint is printed).
Failing cases are written to OUT/failures/CATEGORY/INDEX_SEEDMODEL/ with the model, stderr and a
command that reproduces them; OUT/summary.json holds the table and the sites.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread per forked case: the machine is shared
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

TESTS_DIR = Path(__file__).resolve().parents[1]
ROOT = TESTS_DIR.parent
for _path in (str(ROOT), str(TESTS_DIR)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import numpy as np  # noqa: E402
import onnx  # noqa: E402

from fuzz.mutators import BYTE_MUTATORS, FILE_STEMS, HOSTILE_NAMES, mutate  # noqa: E402

MLPERF_DIR = ROOT.parent / "shared" / "models" / "mlperf_tiny"
DEFAULT_CFLAGS = "-std=c99 -O2 -Wall -Wextra -Werror -pedantic"
DEFAULT_CPPFLAGS = "-I. -Iruntime"
MEMORY_LIMIT_BYTES = 4 * 1024**3  # address space of one forked compile
CATEGORIES = ["ok", "exit2", "exit3", "internal", "timeout", "crash", "bad_message", "c_build_fail", "c_run_fail",
              "lost"]
FAILURES = {"internal", "timeout", "crash", "bad_message", "c_build_fail", "c_run_fail", "lost"}


# ---------------------------------------------------------------------------------------------
# Seed corpus


@dataclass(frozen=True)
class SeedModel:
    name: str
    data: bytes
    weight: float  # relative draw frequency: small, fast models are drawn more


def builtin_seeds() -> list[SeedModel]:
    """Small hand-made models (fast to compile) covering the ops and features the fuzz targets."""
    import broken_models as bm

    builders = {
        "conv_relu": bm.conv_model, "gemm_softmax": bm.gemm_softmax_model, "pool_ceil": bm.ceil_pool_model,
        "qdq_conv": bm.qdq_conv_model, "reshape_only": bm.reshape_only_model, "conv1d_bn": bm.conv1d_bn_model,
    }
    return [SeedModel(f"builtin:{name}", build().SerializeToString(), 3.0) for name, build in builders.items()]


def _zoo_exports() -> list[Path]:
    try:
        from conftest import zoo_cache_dir
    except Exception:  # pytest or torch metadata missing: no zoo seeds
        return []
    cache = zoo_cache_dir()
    return sorted(cache.glob("*.onnx")) if cache.is_dir() else []


def seed_corpus(sources: tuple[str, ...] = ("builtin", "examples", "zoo", "mlperf")) -> list[SeedModel]:
    seeds: list[SeedModel] = []
    if "builtin" in sources:
        seeds += builtin_seeds()
    if "examples" in sources:
        seeds.append(SeedModel("examples:digits_cnn", (ROOT / "examples" / "digits_cnn.onnx").read_bytes(), 2.0))
    if "zoo" in sources:
        for path in _zoo_exports():
            slow = path.stem.startswith(("misc_ops", "shufflenet", "squeezenet"))
            seeds.append(SeedModel(f"zoo:{path.stem}", path.read_bytes(), 0.15 if slow else 0.35))
    if "mlperf" in sources and MLPERF_DIR.is_dir():
        for path in sorted(MLPERF_DIR.glob("*.onnx")):
            seeds.append(SeedModel(f"mlperf:{path.stem}", path.read_bytes(), 0.3 if "vww" in path.stem else 1.0))
    return seeds


def corpus_fingerprint(seeds: list[SeedModel]) -> str:
    digest = hashlib.sha256()
    for seed in seeds:
        digest.update(seed.name.encode() + hashlib.sha256(seed.data).digest())
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    index: int
    seed_model: str
    mutations: list[str]
    data: bytes
    file_name: str
    options: list[str]  # CLI options after the model; "{calib}" stands for the calibration file
    calib: tuple[str, bytes] | None = None  # (file name, contents)


def make_case(seeds: list[SeedModel], seed: int, index: int) -> Case:
    """Case ``index`` of campaign ``seed``: a function of (seed corpus, seed, index) only."""
    rng = random.Random(f"tinycc-fuzz/{seed}/{index}")
    model_seed = rng.choices(seeds, [s.weight for s in seeds])[0]
    model = onnx.ModelProto.FromString(model_seed.data)
    mutations = mutate(rng, model, rng.choice([1, 1, 1, 2, 2, 3]))
    data = model.SerializeToString()
    if rng.random() < 0.1 or not mutations:
        description, data = rng.choice(BYTE_MUTATORS)(rng, data)
        mutations.append(f"bytes: {description}")
    stem = model_seed.name.split(":")[-1] if rng.random() > 0.05 else rng.choice(FILE_STEMS)
    options = ["--calib-samples", "2"]
    calib = None
    if rng.random() < 0.15:
        calib = _calibration_file(rng, model)
        if calib is not None:
            options += ["--calib", "{calib}"]
            mutations.append(f"options: --calib {calib[0]}")
    extra = rng.random()
    if extra < 0.05:
        options += ["--calib-method", rng.choice(["mse", "percentile"])]
    elif extra < 0.08:
        options += ["--bias-correction"]
    elif extra < 0.12:
        options += ["--sram", rng.choice(["1k", "100", "64k"])]
    elif extra < 0.14:
        options += ["--name", rng.choice(HOSTILE_NAMES[:6] + ["ok_name", "tc"])]
    if extra < 0.14:
        shown = [calib[0] if opt == "{calib}" and calib else opt for opt in options[2:]]
        mutations.append(f"options: {' '.join(shown)}")
    return Case(index, model_seed.name, mutations, data, f"{stem}.onnx", options, calib)


def _calibration_file(rng: random.Random, model: onnx.ModelProto) -> tuple[str, bytes] | None:
    """Samples for the model's declared inputs (after mutation: shapes may be odd on purpose)."""
    constants = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in constants]
    if not inputs:
        return None
    count = rng.choice([1, 2, 3])
    arrays = {}
    for value in inputs:
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                for d in value.type.tensor_type.shape.dim]
        if np.prod(dims, dtype=np.float64) * count > 2**20:
            return None
        kind = rng.choice(["normal", "normal", "normal", "zeros", "huge", "nan"])
        samples = np.random.default_rng(rng.randrange(2**32)).standard_normal((count, *dims)).astype(np.float32)
        if kind == "zeros":
            samples[...] = 0
        elif kind == "huge":
            samples *= 1e30
        elif kind == "nan":
            samples.reshape(-1)[0] = np.nan
        arrays[value.name] = samples
    buffer = io.BytesIO()
    if len(arrays) == 1 and rng.random() < 0.8:
        np.save(buffer, next(iter(arrays.values())))
        return "calib.npy", buffer.getvalue()
    np.savez(buffer, **arrays)
    return "calib.npz", buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Running one case


@dataclass
class Outcome:
    index: int
    seed_model: str
    mutations: list[str]
    status: int | str  # exit code, "timeout" or "signal N"
    category: str
    seconds: float
    stderr: str = ""
    site: str = ""  # innermost tinycc frame of an internal error
    detail: str = ""  # traceback, or compiler output of a C build failure
    argv: list[str] = field(default_factory=list)


def run_case(case: Case, work: Path, *, timeout: float = 60.0, build: bool = True, run: bool = False,
             cc: str = "cc", obj_cache: Path | None = None) -> Outcome:
    """Write the case's files under ``work`` (which must be empty), compile, classify."""
    work.mkdir(parents=True, exist_ok=True)
    model_path = work / case.file_name
    model_path.write_bytes(case.data)
    calib_path = ""
    if case.calib is not None:
        calib_path = str(work / case.calib[0])
        Path(calib_path).write_bytes(case.calib[1])
    options = [calib_path if opt == "{calib}" else opt for opt in case.options]
    argv = ["compile", str(model_path), "-o", str(work / "out"), *options]
    start = time.monotonic()
    status, stdout, stderr = run_cli_forked(argv, timeout, work)
    outcome = Outcome(case.index, case.seed_model, case.mutations, status, "", 0.0, stderr[-4000:], argv=argv)
    outcome.category = _classify_exit(status, stderr)
    if outcome.category == "internal" or (outcome.category == "crash" and isinstance(status, int)):
        _, _, debug_err = run_cli_forked(argv + ["--debug"], timeout, work)
        outcome.detail = debug_err[-8000:]
        outcome.site = internal_error_site(debug_err)
    elif outcome.category == "ok" and build:
        error = build_c_project(work / "out", cc, obj_cache)
        if error is not None:
            outcome.category, outcome.detail = "c_build_fail", error[-8000:]
        elif run:
            error = run_c_project(work / "out")
            if error is not None:
                outcome.category, outcome.detail = "c_run_fail", error[-8000:]
    outcome.seconds = round(time.monotonic() - start, 3)
    return outcome


def _classify_exit(status: int | str, stderr: str) -> str:
    if status == "timeout":
        return "timeout"
    if not isinstance(status, int) or status not in (0, 2, 3, 70):
        return "crash"
    if status == 70:
        return "internal"
    if "Traceback" in stderr:
        return "bad_message"
    if status == 0:
        return "ok"
    if not re.search(r"^tinycc: error: \S", stderr, re.M):
        return "bad_message"
    return f"exit{status}"


PRELOADED_MODULES = ["tinycc.cli", "tinycc.frontend", "tinycc.passes", "tinycc.compiler", "tinycc.codegen.emit",
                     "tinycc.codegen.profile_svg", "tinycc.report", "tinycc.target.measure", "tinycc.engines",
                     "tinycc.quant.bias_correction", "onnx.reference", "onnx.inliner", "jinja2"]


def preload_modules() -> None:
    """Import what a compile imports lazily, once, so that forked cases do not each pay for it."""
    import importlib

    for name in PRELOADED_MODULES:
        importlib.import_module(name)


def run_cli_forked(argv: list[str], timeout: float, work: Path) -> tuple[int | str, str, str]:
    """``tinycc.cli.main(argv)`` in a forked child: (exit status, stdout, stderr). The child has
    its own memory limit; a hang is killed after ``timeout`` seconds."""
    from tinycc import cli

    out_path, err_path = work / "stdout.txt", work / "stderr.txt"
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 71
        try:
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
            os.dup2(os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
            os.dup2(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
            sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
            code = cli.main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # escaped the CLI's own handler: report it as a crash
            traceback.print_exc()
            code = 71
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    deadline = time.monotonic() + timeout
    status: int | str
    while True:
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(wait_status)
            if status < 0:
                status = f"signal {-status}"
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = "timeout"
            break
        time.sleep(0.01)
    return status, _read_text(out_path), _read_text(err_path)


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def internal_error_site(debug_stderr: str) -> str:
    """The innermost traceback frame inside tinycc/ (file:line function), else the last frame."""
    # a re-raised error ("raise IRError(...) from exc") prints the original traceback first
    original = debug_stderr.split("The above exception was the direct cause of the following exception")[0]
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', original)
    ours = [f for f in frames if "/tinycc/" in f[0].replace("\\", "/")]
    frame = (ours or frames or [("?", "0", "?")])[-1]
    path = frame[0].replace("\\", "/")
    short = path.split("/tinycc/", 1)[-1] if "/tinycc/" in path else Path(path).name
    error = re.search(r"internal error: (\w+)", debug_stderr)
    return f"{short}:{frame[1]} {frame[2]} {error.group(1) if error else ''}".strip()


# ---------------------------------------------------------------------------------------------
# Building the generated C


def _make_variable(makefile: str, name: str, default: str) -> str:
    match = re.search(rf"^{name}\s*[?+]?=\s*(.*)$", makefile, re.M)
    return match.group(1).strip() if match else default


def build_c_project(project: Path, cc: str = "cc", obj_cache: Path | None = None, timeout: float = 180) -> str | None:
    """Compile and link the host harness with the flags of the project's Makefile; None if it
    builds, else the compiler's output. Runtime kernels are copied verbatim into every project,
    so their objects are cached by content (``obj_cache``)."""
    makefile = (project / "Makefile").read_text()
    cflags = shlex.split(_make_variable(makefile, "CFLAGS", DEFAULT_CFLAGS))
    cppflags = shlex.split(_make_variable(makefile, "CPPFLAGS", DEFAULT_CPPFLAGS))
    if "-Werror" not in cflags:
        return f"the generated Makefile does not build with -Werror: CFLAGS = {' '.join(cflags)}"
    command = [cc, *cppflags, *cflags]
    headers = b"".join(p.read_bytes() for p in sorted((project / "runtime").glob("*.h")))
    objects = []
    sources = sorted(project.glob("*.c")) + sorted((project / "runtime").glob("*.c"))
    for source in sources:
        rel = source.relative_to(project)
        obj = project / (str(rel).replace("/", "_") + ".o")
        cached = None
        if obj_cache is not None and rel.parts[0] == "runtime":
            key = hashlib.sha256(" ".join(command).encode() + source.read_bytes() + headers).hexdigest()[:24]
            cached = obj_cache / f"{key}.o"
            if cached.exists():
                objects.append(cached)
                continue
        result = subprocess.run([*command, "-c", "-o", str(obj), str(rel)], cwd=project, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            return f"$ {' '.join(command)} -c {rel}\n{result.stdout}{result.stderr}"
        if cached is not None:
            obj_cache.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(obj, tmp)
            os.replace(tmp, cached)
        objects.append(obj)
    result = subprocess.run([cc, *cflags, "-o", "harness", *map(str, objects)], cwd=project, capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        return f"$ {cc} ... -o harness (link)\n{result.stdout}{result.stderr}"
    return None


def run_c_project(project: Path, timeout: float = 60) -> str | None:
    """Run the harness once on zero-filled inputs; None if it exits 0."""
    report = json.loads((project / "report.json").read_text())
    args = []
    for i, entry in enumerate(report["inputs"]):
        path = project / f"in{i}.bin"
        path.write_bytes(bytes(int(np.prod(entry["shape"], dtype=np.int64))))
        args.append(str(path))
    args += [str(project / f"out{i}.bin") for i in range(len(report["outputs"]))]
    result = subprocess.run([str(project / "harness"), *args], capture_output=True, text=True, timeout=timeout)
    return None if result.returncode == 0 else f"harness exit {result.returncode}\n{result.stderr}"


# ---------------------------------------------------------------------------------------------
# Campaign


def run_campaign(seeds: list[SeedModel], seed: int, indices: list[int], work_root: Path, *,
                 jobs: int = 1, timeout: float = 60.0, build: bool = True, run: bool = False, cc: str = "cc",
                 progress=None) -> list[Outcome]:
    """Run cases ``indices`` (``jobs`` forked workers, each taking every jobs-th case)."""
    preload_modules()
    work_root.mkdir(parents=True, exist_ok=True)
    obj_cache = work_root / "objcache"
    if jobs <= 1:
        return _worker(seeds, seed, indices, work_root / "w0", timeout, build, run, cc, obj_cache, progress)
    pids = []
    for k in range(jobs):
        share = indices[k::jobs]
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _worker(seeds, seed, share, work_root / f"w{k}", timeout, build, run, cc, obj_cache,
                        progress if k == 0 else None, record=work_root / f"results{k}.jsonl")
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    outcomes = []
    for k in range(jobs):
        path = work_root / f"results{k}.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        outcomes += [Outcome(**json.loads(line)) for line in lines]
    done = {o.index for o in outcomes}
    # a worker that died (a fuzzer bug: its traceback is above) loses the rest of its share
    outcomes += [Outcome(i, "?", [], "lost", "lost", 0.0) for i in indices if i not in done]
    return sorted(outcomes, key=lambda o: o.index)


def _worker(seeds, seed, indices, work, timeout, build, run, cc, obj_cache, progress,
            record: Path | None = None) -> list[Outcome]:
    """Run the cases one after the other; ``record``: a JSON-lines file each outcome is added to
    as soon as it is known."""
    outcomes = []
    for n, index in enumerate(indices):
        case = make_case(seeds, seed, index)
        case_dir = work / f"case{index}"
        shutil.rmtree(case_dir, ignore_errors=True)
        outcome = run_case(case, case_dir, timeout=timeout, build=build, run=run, cc=cc, obj_cache=obj_cache)
        outcomes.append(outcome)
        if record is not None:
            with open(record, "a") as f:
                f.write(json.dumps(outcome.__dict__) + "\n")
        shutil.rmtree(case_dir, ignore_errors=True)
        if progress is not None:
            progress(n + 1, len(indices), outcome)
    return outcomes


def summarize(outcomes: list[Outcome]) -> dict:
    counts = collections.Counter(o.category for o in outcomes)
    exit_codes = collections.Counter(str(o.status) for o in outcomes)
    sites: dict[str, list[int]] = collections.defaultdict(list)
    for o in outcomes:
        if o.category in FAILURES:
            key = o.site if o.category == "internal" else f"{o.category}: {_first_line(o.detail or o.stderr)}"
            sites[key].append(o.index)
    return {"cases": len(outcomes), "categories": {c: counts.get(c, 0) for c in CATEGORIES},
            "exit_codes": dict(sorted(exit_codes.items())), "sites": {k: v for k, v in sorted(sites.items())}}


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if re.search(r"\b(error|warning)\b:", line, re.I):
            return line.strip()[:160]
    return (text.strip().splitlines() or [""])[0][:160]


def format_table(summary: dict) -> str:
    c = summary["categories"]
    columns = [("cases", summary["cases"]), ("exit 0 (C built)", c["ok"]), ("exit 2", c["exit2"]),
               ("exit 3", c["exit3"]), ("exit 70", c["internal"]), ("timeout", c["timeout"]),
               ("crash", c["crash"]), ("bad message", c["bad_message"]), ("C build failures", c["c_build_fail"]),
               ("C run failures", c["c_run_fail"])] + ([("lost (fuzzer died)", c["lost"])] if c["lost"] else [])
    header = " | ".join(name for name, _ in columns)
    values = " | ".join(str(value).rjust(len(name)) for name, value in columns)
    lines = [header, values]
    if summary["sites"]:
        lines.append("failure sites (cases):")
        for site, indices in summary["sites"].items():
            shown = ", ".join(map(str, indices[:8])) + (" ..." if len(indices) > 8 else "")
            lines.append(f"  {len(indices):4d}  {site}   [{shown}]")
    return "\n".join(lines)


def save_failures(seeds, seed: int, outcomes: list[Outcome], out: Path) -> None:
    """Each failing case's files, output and a reproduction command under OUT/failures/."""
    for o in outcomes:
        if o.category not in FAILURES or o.category == "lost":
            continue
        case = make_case(seeds, seed, o.index)
        folder = out / "failures" / o.category / f"{o.index:06d}_{re.sub(r'[^A-Za-z0-9_]', '_', o.seed_model)}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / case.file_name).write_bytes(case.data)
        if case.calib is not None:
            (folder / case.calib[0]).write_bytes(case.calib[1])
        (folder / "stderr.txt").write_text(o.stderr)
        (folder / "detail.txt").write_text(o.detail)
        options = [case.calib[0] if opt == "{calib}" and case.calib else opt for opt in case.options]
        repro = shlex.join(["python", "-m", "tinycc", "compile", case.file_name, "-o", "out", *options, "--debug"])
        info = {"index": o.index, "seed": seed, "seed_model": o.seed_model, "mutations": o.mutations,
                "status": o.status, "category": o.category, "site": o.site, "reproduce": f"cd {folder} && {repro}"}
        (folder / "case.json").write_text(json.dumps(info, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="campaign seed (cases are deterministic per seed)")
    parser.add_argument("--cases", type=int, default=200, help="number of cases")
    parser.add_argument("--start", type=int, default=0, help="first case index (to replay a range)")
    parser.add_argument("--jobs", type=int, default=1, help="forked workers running cases side by side")
    parser.add_argument("--out", type=Path, default=None, help="folder for failing cases and summary.json")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per compile")
    parser.add_argument("--sources", default="builtin,examples,zoo,mlperf", help="seed model sources")
    parser.add_argument("--no-build", action="store_true", help="do not build the C of exit-0 cases")
    parser.add_argument("--run", action="store_true", help="also run each built harness on zero inputs")
    parser.add_argument("--cc", default=os.environ.get("CC", "cc"), help="C compiler for the builds")
    args = parser.parse_args(argv)
    seeds = seed_corpus(tuple(args.sources.split(",")))
    if not seeds:
        parser.error("no seed models found")
    out = args.out or Path(tempfile.mkdtemp(prefix="tinycc_fuzz_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"seed corpus {corpus_fingerprint(seeds)}: {len(seeds)} models "
          f"({', '.join(sorted({s.name.split(':')[0] for s in seeds}))}); seed {args.seed}, "
          f"cases {args.start}..{args.start + args.cases - 1}, jobs {args.jobs}", flush=True)
    started = time.monotonic()

    def progress(done, total, outcome):
        if done % 50 == 0 or done == total:
            print(f"  [worker 0] {done}/{total} cases, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="work_", dir=out))
    try:
        outcomes = run_campaign(seeds, args.seed, list(range(args.start, args.start + args.cases)), work,
                                jobs=args.jobs, timeout=args.timeout, build=not args.no_build, run=args.run,
                                cc=args.cc, progress=progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarize(outcomes)
    summary.update(seed=args.seed, start=args.start, corpus=corpus_fingerprint(seeds),
                   seconds=round(time.monotonic() - started, 1))
    save_failures(seeds, args.seed, outcomes, out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "outcomes.jsonl").write_text("".join(json.dumps(o.__dict__) + "\n" for o in outcomes))
    print(format_table(summary))
    print(f"{summary['seconds']} s; failing cases and summary.json in {out}")
    return 1 if any(summary["categories"][c] for c in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
