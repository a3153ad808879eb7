"""--export zephyr|arduino|esp-idf|cmake, labels and normalisation in model.h, and the generated
CMakeLists used as a subdirectory: each flavour's structure, and a build of it with what this
machine has (arm-none-eabi-gcc with the flags Zephyr/Arduino builds use; cmake and the host
compiler for the cmake flavour, the ESP-IDF component, and two models in one CMake build)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

from tinycc.cli import main

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits_cnn.onnx"
CALIB = ROOT / "examples" / "digits_calib.npy"
# the tenth label tries to break out of a C string and comment, with a trigraph and non-ASCII text
LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", '"nine*/ \\??= é\t<&>']
ARM_GCC = shutil.which("arm-none-eabi-gcc")
ARM_GXX = shutil.which("arm-none-eabi-g++")
CMAKE = shutil.which("cmake")
# Arduino Nano 33 BLE (nRF52840, Cortex-M4F) and Zephyr on a Cortex-M4F board build C like this
ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os", "-ffunction-sections",
             "-fdata-sections", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    labels = tmp / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    out = tmp / "digits"
    assert main(["compile", str(DIGITS), "-o", str(out), "--calib", str(CALIB), "--name", "digits",
                 "--labels", str(labels), "--export", "zephyr,arduino", "--export", "esp-idf",
                 "--export", "cmake"]) == 0
    return out


def _cmake_sources(text: str, var_dir: str) -> list[str]:
    """model.c/weights.c and the runtime files a zephyr/CMakeLists.txt names."""
    files = re.findall(r"\$\{" + var_dir + r"\}/([\w./]+\.c)", text)
    runtime = re.search(r"foreach\(tc_file ([^)]*)\)", text).group(1).split()
    return files + [f"runtime/{f}" for f in runtime]


def test_zephyr_module_structure(project):
    module = (project / "zephyr" / "module.yml").read_text()
    assert "cmake: zephyr" in module and "kconfig: zephyr/Kconfig" in module
    cmake = (project / "zephyr" / "CMakeLists.txt").read_text()
    assert "if(CONFIG_TINYCC_DIGITS)" in cmake and "zephyr_library_named(tinycc_digits)" in cmake
    assert "zephyr_library_sources(" in cmake and "-ffp-contract=off" in cmake
    assert "config TINYCC_DIGITS" in (project / "zephyr" / "Kconfig").read_text()
    sources = _cmake_sources(cmake, "TC_DIGITS_DIR")
    assert {"model.c", "weights.c"} <= set(sources)
    assert all((project / s).is_file() for s in sources)
    assert set(s for s in sources if s.startswith("runtime/")) == {f"runtime/{p.name}" for p in
                                                                    (project / "runtime").glob("*.c")}


def test_arduino_library_structure(project):
    props = dict(line.split("=", 1) for line in (project / "library.properties").read_text().splitlines() if line)
    assert props["name"] == "digits" and props["includes"] == "digits_model.h" and props["dot_a_linkage"] == "true"
    src = project / "src"
    assert not [p for p in src.iterdir() if p.is_dir()], "Arduino puts only src/ itself on the include path"
    expected = {"model.c", "model.h", "weights.c", "weights.h", "digits_model.h"} | {
        p.name for p in (project / "runtime").iterdir()}
    assert {p.name for p in src.iterdir()} == expected
    for name in ("model.c", "weights.c", "model.h"):
        assert (src / name).read_bytes() == (project / name).read_bytes()
    sketch = (project / "examples" / "digits_demo" / "digits_demo.ino").read_text()
    assert "#include <digits_model.h>" in sketch and "DIGITS_LABELS[best]" in sketch


def test_esp_idf_component_structure(project):
    text = (project / "CMakeLists.txt").read_text()
    m = re.search(r"if\(ESP_PLATFORM\)\s*(.*?)return\(\)\s*endif\(\)", text, re.S)
    assert m, "the component branch comes first, before project()"
    assert text.index("if(ESP_PLATFORM)") < text.index("project(")
    call = re.search(r"idf_component_register\(SRCS ([^)]*?)\s+INCLUDE_DIRS ([^)]*)\)", m.group(1))
    srcs, dirs = call.group(1).split(), call.group(2).split()
    assert {"model.c", "weights.c"} <= set(srcs) and all((project / s).is_file() for s in srcs)
    assert dirs == [".", "runtime"]


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
def test_zephyr_and_arduino_sources_build_for_cortex_m4(project, tmp_path):
    zephyr = _cmake_sources((project / "zephyr" / "CMakeLists.txt").read_text(), "TC_DIGITS_DIR")
    for src in zephyr:  # Zephyr: the module's sources with both include directories
        r = subprocess.run([ARM_GCC, *ARM_FLAGS, "-std=c99", "-I", str(project), "-I", str(project / "runtime"),
                            "-c", "-o", str(tmp_path / "z.o"), str(project / src)], capture_output=True, text=True)
        assert r.returncode == 0, f"zephyr {src}:\n{r.stderr}"
    for src in sorted((project / "src").glob("*.c")):  # Arduino: src/ only, gnu11 like the Arduino cores
        r = subprocess.run([ARM_GCC, *ARM_FLAGS, "-std=gnu11", "-I", str(project / "src"), "-c",
                            "-o", str(tmp_path / "a.o"), str(src)], capture_output=True, text=True)
        assert r.returncode == 0, f"arduino {src.name}:\n{r.stderr}"
    if ARM_GXX:  # the sketch is C++: compile it against a stand-in for Arduino.h's Serial and micros()
        (tmp_path / "Arduino.h").write_text(
            "#include <stdint.h>\nstruct SerialStub { void begin(long) {} operator bool() const { return true; }\n"
            "  template <class T> void print(T) {} template <class T> void println(T) {} };\n"
            "extern SerialStub Serial;\nunsigned long micros();\n")
        sketch = tmp_path / "sketch.cpp"
        sketch.write_text('#include "Arduino.h"\n' + (project / "examples/digits_demo/digits_demo.ino").read_text())
        r = subprocess.run([ARM_GXX, *ARM_FLAGS, "-std=gnu++17", "-I", str(tmp_path), "-I", str(project / "src"),
                            "-c", "-o", str(tmp_path / "s.o"), str(sketch)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def _cmake_build(src: Path, build: Path, *defs: str) -> None:
    for cmd in ([CMAKE, "-S", str(src), "-B", str(build), "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror -pedantic", *defs],
                [CMAKE, "--build", str(build)]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(CMAKE is None, reason="cmake not installed")
def test_cmake_example_links_the_library_without_the_harness(project, tmp_path):
    _cmake_build(project / "cmake-example", tmp_path)
    out = subprocess.run([str(tmp_path / "digits_app")], capture_output=True, text=True, check=True).stdout
    assert out.startswith("prediction: ")
    best = int(out.split()[1])
    assert out.split(" ", 2)[2].startswith(LABELS[best].split()[0].replace("\t", ""))
    assert not list(tmp_path.rglob("digits_host")), "add_subdirectory(... EXCLUDE_FROM_ALL) builds no harness"


@pytest.mark.skipif(CMAKE is None, reason="cmake not installed")
def test_esp_idf_component_builds(project, tmp_path):
    """The component's CMakeLists read the way ESP-IDF reads it (ESP_PLATFORM set), with
    idf_component_register stood in by a function making the component library."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "CMakeLists.txt").write_text(f"""cmake_minimum_required(VERSION 3.13)
project(idf_app C)
set(CMAKE_C_STANDARD 99)
set(ESP_PLATFORM 1)
set(COMPONENT_LIB __idf_digits)
function(idf_component_register)
    cmake_parse_arguments(C "" "" "SRCS;INCLUDE_DIRS" ${{ARGN}})
    add_library(${{COMPONENT_LIB}} STATIC ${{C_SRCS}})
    target_include_directories(${{COMPONENT_LIB}} PUBLIC ${{C_INCLUDE_DIRS}})
endfunction()
add_subdirectory({project} digits)
add_executable(app {project}/cmake-example/app.c)
target_link_libraries(app PRIVATE __idf_digits)
""")
    _cmake_build(app, tmp_path / "build")
    out = subprocess.run([str(tmp_path / "build" / "app")], capture_output=True, text=True, check=True).stdout
    assert out.startswith("prediction: ")


@pytest.mark.skipif(CMAKE is None, reason="cmake not installed")
def test_two_models_in_one_cmake_build_share_the_runtime(project, zoo_models, tmp_path):
    """dscnn first (fewer kernels), then digits adds the files it lacks to tinycc_runtime."""
    kws_path, _ = zoo_models[("dscnn", "torchscript")]
    assert main(["compile", str(kws_path), "-o", str(tmp_path / "kws"), "--name", "kws"]) == 0
    missing = {p.name for p in (project / "runtime").glob("*.c")} - {p.name for p in (tmp_path / "kws/runtime").glob("*.c")}
    assert missing, "the second model must need a kernel the first lacks"
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.c").write_text('#include "digits_model.h"\n#include "kws/model.h"\n'
                                "int main(void) { return digits_invoke_arena() | kws_invoke_arena(); }\n")
    (app / "CMakeLists.txt").write_text(f"""cmake_minimum_required(VERSION 3.13)
project(two C)
add_subdirectory({tmp_path / 'kws'} kws EXCLUDE_FROM_ALL)
add_subdirectory({project} digits EXCLUDE_FROM_ALL)
add_executable(two main.c)
target_include_directories(two PRIVATE {tmp_path})
target_link_libraries(two PRIVATE kws digits)
""")
    _cmake_build(app, tmp_path / "build")
    subprocess.run([str(tmp_path / "build" / "two")], check=True)


def test_labels_are_escaped_c_strings(project, tmp_path):
    """Printed from C, every label reads back exactly as the --labels file had it."""
    if shutil.which("cc") is None:
        pytest.skip("no host C compiler")
    (tmp_path / "p.c").write_text('#include <stdio.h>\n#include "model.h"\nint main(void) { int i;\n'
                                  '  for (i = 0; i < DIGITS_NUM_LABELS; ++i) printf("%s\\n", DIGITS_LABELS[i]);\n'
                                  "  return 0; }\n")
    exe = tmp_path / "p"
    srcs = [str(project / "model.c"), str(project / "weights.c")] + [str(p) for p in (project / "runtime").glob("*.c")]
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wtrigraphs", "-I", str(project),
                    "-I", str(project / "runtime"), "-o", str(exe), str(tmp_path / "p.c"), *srcs], check=True)
    out = subprocess.run([str(exe)], capture_output=True, check=True).stdout.decode("utf-8")
    assert out.splitlines() == [label.strip() for label in LABELS]


def _with_metadata(tmp_path: Path, **props: str) -> Path:
    m = onnx.load(str(DIGITS))
    onnx.helper.set_model_props(m, props)
    path = tmp_path / "meta.onnx"
    onnx.save(m, str(path))
    return path


def test_labels_and_normalisation_from_metadata(tmp_path):
    model = _with_metadata(tmp_path, class_names='["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]',
                           mean="0.1307", std="0.3081")
    assert main(["compile", str(model), "-o", str(tmp_path / "p"), "--calib", str(CALIB), "--name", "m"]) == 0
    header = (tmp_path / "p" / "model.h").read_text()
    assert "#define M_NUM_LABELS 10" in header
    assert "#define M_INPUT_MEAN { 0.130700007f }" in header and "#define M_INPUT_STD { 0.308099985f }" in header
    assert '"a",' in (tmp_path / "p" / "model.c").read_text()


def test_label_count_must_match_the_output(tmp_path, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    out = tmp_path / "p"
    assert main(["compile", str(DIGITS), "-o", str(out), "--calib", str(CALIB), "--labels", str(labels)]) == 2
    assert "has 2 labels but output 0 has 10 values" in capsys.readouterr().err
    assert not out.exists()
    assert main(["compile", str(DIGITS), "-o", str(out), "--export", "keil"]) == 2
    assert main(["compile", str(DIGITS), "-o", str(out), "--labels", str(tmp_path / "none.txt")]) == 2


def test_no_option_adds_no_file(tmp_path):
    assert main(["compile", str(DIGITS), "-o", str(tmp_path / "p"), "--calib", str(CALIB)]) == 0
    names = {p.relative_to(tmp_path / "p").as_posix() for p in (tmp_path / "p").rglob("*") if p.is_file()}
    assert not any(n.startswith(("src/", "zephyr/", "cmake-example/", "examples/")) or n.endswith("_model.h")
                   for n in names)
    text = (tmp_path / "p" / "model.h").read_text()
    assert "LABELS" not in text and "INPUT_MEAN" not in text
    assert "ESP_PLATFORM" not in (tmp_path / "p" / "CMakeLists.txt").read_text()
    np.testing.assert_equal(len(names) > 0, True)
