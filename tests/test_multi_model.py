"""Several models in one firmware: two generated projects link into one program (host and a
Cortex-M4 ELF under QEMU) with one copy of the shared runtime, and each model's outputs equal its
golden model's. The C symbols of two projects collide only in the runtime (tc_*), whose files are
identical across projects of one tinycc version."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinycc.cli import main
from tinycc.sim.qemu import missing_tools, run_elf
from tinycc.target import CORES

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits_cnn.onnx"
CALIB = ROOT / "examples" / "digits_calib.npy"
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffp-contract=off"]

MAIN = """/* Two tinycc models in one program: reads input0.bin (digits) and input1.bin (kws), runs both,
 * writes output0.bin and output1.bin. */
#include <stdint.h>
#include <stdio.h>
#include "digits/model.h"
#include "kws/model.h"
#ifdef TC_ON_TARGET
#include "tc_target.h"
#define READ(p, b, n) tc_target_read_file(p, b, n)
#define WRITE(p, b, n) tc_target_write_file(p, b, n)
#else
static int READ(const char *p, int8_t *b, int32_t n) {
    FILE *f = fopen(p, "rb"); size_t got;
    if (!f) return 1;
    got = fread(b, 1, (size_t)n, f); fclose(f); return got != (size_t)n;
}
static int WRITE(const char *p, const int8_t *b, int32_t n) {
    FILE *f = fopen(p, "wb"); size_t put;
    if (!f) return 1;
    put = fwrite(b, 1, (size_t)n, f); fclose(f); return put != (size_t)n;
}
#endif
int main(void) {
    if (READ("input0.bin", digits_input(0), DIGITS_INPUT0_SIZE)) return 1;
    if (READ("input1.bin", kws_input(0), KWS_INPUT0_SIZE)) return 1;
    if (digits_invoke_arena() != 0 || kws_invoke_arena() != 0) return 2;
    if (WRITE("output0.bin", digits_output(0), DIGITS_OUTPUT0_SIZE)) return 1;
    if (WRITE("output1.bin", kws_output(0), KWS_OUTPUT0_SIZE)) return 1;
#ifdef TC_ON_TARGET
    tc_target_puts("tinycc: done stack_high_water=");
    tc_target_put_u32(tc_stack_high_water());
    tc_target_puts(" stack_reserved=");
    tc_target_put_u32(tc_stack_reserved());
    tc_target_puts("\\n");
#endif
    return 0;
}
"""


def _run_cli(*argv: str) -> None:
    assert main([str(a) for a in argv]) == 0


@pytest.fixture(scope="module")
def two_models(zoo_models, tmp_path_factory):
    """digits (bundled) and the zoo's keyword spotter, compiled; a sample and its golden output
    for each; a runtime folder holding every kernel file either project has (one copy)."""
    tmp = tmp_path_factory.mktemp("multi")
    kws_path, kws_inputs = zoo_models[("dscnn", "torchscript")]
    models = {}
    for name, model, calib, x in (
            ("digits", DIGITS, CALIB, np.load(CALIB)[:1]),
            ("kws", kws_path, None, next(iter(kws_inputs.values()))[:1].astype(np.float32))):
        extra = ["--calib", calib] if calib else []
        _run_cli("compile", model, "-o", tmp / name, "--name", name, "--target", "cortex-m4", "--sram", "128k",
                 "--flash", "1M", *extra)
        np.save(tmp / f"{name}_x.npy", x)
        _run_cli("run", model, "--engine", "int8", "--input", tmp / f"{name}_x.npy", "-o", tmp / f"{name}_y.npy",
                 *extra)
        models[name] = (tmp / name, np.load(tmp / f"{name}_y.npy"))
    runtime = tmp / "runtime"
    runtime.mkdir()
    for project, _ in models.values():
        for f in (project / "runtime").iterdir():
            if (runtime / f.name).exists():
                assert (runtime / f.name).read_bytes() == f.read_bytes(), f"runtime/{f.name} differs between projects"
            else:
                shutil.copy(f, runtime / f.name)
    return tmp, models, runtime


def _quantized_inputs(tmp: Path, models) -> list[bytes]:
    """Each model's sample quantized as model.h says and the golden engine does (TFLite Micro's
    QUANTIZE: x / scale in float32, rounded half away from zero)."""
    out = []
    for name in ("digits", "kws"):
        report = json.loads((models[name][0] / "report.json").read_text())
        io = report["inputs"][0]
        x = np.load(tmp / f"{name}_x.npy").astype(np.float32)
        if len(io["shape"]) == 4 and io["layout"] == "NHWC":
            x = x.transpose(0, 2, 3, 1)
        v = (x / np.float32(io["scale"])).astype(np.float64)
        q = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + io["zero_point"], -128, 127).astype(np.int8)
        out.append(q.tobytes())
    return out


def _sources(tmp: Path, runtime: Path) -> list[str]:
    return [str(tmp / n / f) for n in ("digits", "kws") for f in ("model.c", "weights.c")] + \
        sorted(str(f) for f in runtime.glob("*.c"))


def _check_outputs(outputs: list[bytes], models) -> None:
    for data, name in zip(outputs, ("digits", "kws")):
        golden = models[name][1].astype(np.int8).ravel()
        np.testing.assert_array_equal(np.frombuffer(data, dtype=np.int8), golden, err_msg=name)


def test_runtime_is_the_only_shared_symbol_set(two_models):
    """nm: the global symbols two projects both define are the runtime's kernels (tc_*) only."""
    tmp, models, _ = two_models
    if shutil.which("nm") is None or shutil.which("cc") is None:
        pytest.skip("nm or cc not installed")
    defined = {}
    for name, (project, _) in models.items():
        syms = set()
        for src in ["model.c", "weights.c", *sorted(p.name for p in (project / "runtime").glob("*.c"))]:
            path = project / src if (project / src).exists() else project / "runtime" / src
            obj = tmp / f"{name}_{Path(src).stem}.o"
            subprocess.run(["cc", "-std=c99", "-c", "-I", str(project), "-I", str(project / "runtime"),
                            "-o", str(obj), str(path)], check=True)
            nm = subprocess.run(["nm", "-g", "--defined-only", str(obj)], capture_output=True, text=True, check=True)
            syms |= {line.split()[-1] for line in nm.stdout.splitlines() if line.strip()}
        defined[name] = syms
    common = defined["digits"] & defined["kws"]
    assert common and all(s.startswith("tc_") for s in common), sorted(common)


def test_two_models_in_one_host_program(two_models, tmp_path):
    tmp, models, runtime = two_models
    (tmp_path / "main.c").write_text(MAIN)
    for i, data in enumerate(_quantized_inputs(tmp, models)):
        (tmp_path / f"input{i}.bin").write_bytes(data)
    exe = tmp_path / "both"
    subprocess.run(["cc", *STRICT, "-I", str(tmp), "-I", str(runtime), "-o", str(exe), str(tmp_path / "main.c"),
                    *_sources(tmp, runtime)], check=True)
    subprocess.run([str(exe)], cwd=tmp_path, check=True)
    _check_outputs([(tmp_path / f"output{i}.bin").read_bytes() for i in range(2)], models)


@pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))
def test_two_models_in_one_cortex_m4_elf_under_qemu(two_models, tmp_path):
    tmp, models, runtime = two_models
    core = CORES["cortex-m4"]
    arm = tmp / "digits" / "arm"  # startup code, semihosting and the linker script of one project
    (tmp_path / "main.c").write_text(MAIN)
    elf = tmp_path / "both.elf"
    cmd = ["arm-none-eabi-gcc", *core.cpu_flags, *STRICT, "-ffunction-sections", "-fdata-sections",
           "-DTC_ON_TARGET", "-I", str(tmp), "-I", str(runtime), "-I", str(arm),
           "-nostartfiles", "-T", str(arm / "link.ld"), "-Wl,--defsym=TC_STACK_SIZE=4096", "-Wl,--gc-sections",
           "-Wl,--no-warn-rwx-segments", "-o", str(elf), str(tmp_path / "main.c"), str(arm / "startup.c"),
           str(arm / "tc_semihost.c"), *_sources(tmp, runtime)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    sizes = [int(np.asarray(models[n][1]).size) for n in ("digits", "kws")]
    run = run_elf(elf, core, _quantized_inputs(tmp, models), sizes, count=False, timeout=120)
    _check_outputs(run.outputs, models)
