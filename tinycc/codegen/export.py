"""Firmware integration: what a generated project needs to drop into a build system, and the
model's own annotations for an application (class labels, input normalisation).

--export adds files to the project (the project itself stays the same):
  zephyr   zephyr/module.yml, zephyr/CMakeLists.txt (zephyr_library_named + zephyr_library_sources),
           zephyr/Kconfig: the project folder is a Zephyr module (ZEPHYR_EXTRA_MODULES).
  arduino  library.properties, src/ (model, weights and runtime flattened: Arduino puts only src/
           on the include path), examples/<prefix>_demo/<prefix>_demo.ino: the folder is an
           Arduino library.
  esp-idf  CMakeLists.txt calls idf_component_register() when ESP-IDF reads it: the folder is an
           ESP-IDF component (components/<prefix>/).
  cmake    cmake-example/ (a tiny application that add_subdirectory()s the project and links <prefix>).
Every flavour also gets <prefix>_model.h, a header with a name unique to the model, so that an
application can include several models whose folders are all on the include path.

Several models in one firmware: the runtime files of one tinycc version are identical in every
project. CMake-based builds (cmake, Zephyr) share one tinycc_runtime library (see
templates/CMakeLists.txt.j2); the Arduino and ESP-IDF flavours build each model as a static
archive, from which the linker takes each kernel once.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import BadInput

EXPORTS = ("zephyr", "arduino", "esp-idf", "cmake")
LABEL_KEYS = ("labels", "class_names", "classes")
MAX_LABEL_BYTES = 200


# ---- labels and normalisation ---------------------------------------------------------------------
def c_string(text: str) -> str:
    """An untrusted string as a C string literal: UTF-8, every byte outside a safe printable set
    as a 3-digit octal escape (no trigraphs, no hex-escape run-on, no comment or quote tricks)."""
    safe = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _-.,:;+=()[]{}<>/!#%&'*~^|@$")
    data = text.encode("utf-8", "surrogateescape")[:MAX_LABEL_BYTES]
    return '"' + "".join(chr(b) if b in safe else f"\\{b:03o}" for b in data) + '"'


def _split_list(value: str) -> list[str]:
    """A metadata list: JSON (["a", "b"]), else one item per line, else comma-separated."""
    value = value.strip()
    if value.startswith("["):
        try:
            items = json.loads(value)
            if isinstance(items, list):
                return [str(v) for v in items]
        except ValueError:
            pass
    sep = "\n" if "\n" in value else ","
    return [v.strip() for v in value.split(sep) if v.strip()]


def read_metadata(model_path: str) -> dict[str, str]:
    """The ONNX model's metadata_props (key -> value); empty when the file has none."""
    import onnx

    try:
        m = onnx.load(model_path, load_external_data=False)
    except Exception:  # the front end has read this file already; metadata is optional
        return {}
    return {p.key: p.value for p in m.metadata_props}


def read_labels_file(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--labels {path!r}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _floats(key: str, value: str) -> list[float]:
    try:
        values = [float(v) for v in _split_list(value)]
    except ValueError:
        raise BadInput(f"model metadata {key!r}: expected numbers, got {value[:60]!r}") from None
    if not values or not all(abs(v) < 1e30 for v in values):
        raise BadInput(f"model metadata {key!r}: expected finite numbers, got {value[:60]!r}")
    return values


def annotations(metadata: dict[str, str], labels_file: str | None, classes: int, channels: int,
                warn=print) -> dict:
    """labels (list or None) and normalisation (mean, std lists or None) for model.h.

    classes: the size of output 0 (labels must match it); channels: input 0's channel count
    (mean/std hold one value or one per channel). Labels from --labels must match (BadInput);
    labels from the model's metadata that do not match are left out with a warning."""
    labels = None
    if labels_file:
        labels = read_labels_file(labels_file)
        if len(labels) != classes:
            raise BadInput(f"--labels {labels_file!r} has {len(labels)} labels but output 0 has {classes} values "
                           "(one label per line, one line per class)")
    else:
        key = next((k for k in LABEL_KEYS if k in metadata), None)
        if key:
            found = _split_list(metadata[key])
            if len(found) == classes:
                labels = found
            else:
                warn(f"tinycc: WARNING: the model's metadata {key!r} holds {len(found)} labels but output 0 has "
                     f"{classes} values; no labels in model.h (give them with --labels FILE)")
    norm = None
    if "mean" in metadata or "std" in metadata:
        mean = _floats("mean", metadata.get("mean", "0"))
        std = _floats("std", metadata.get("std", "1"))
        n = max(len(mean), len(std))
        if {len(mean), len(std)} - {1, n} or n not in (1, channels) or any(s == 0 for s in std):
            raise BadInput(f"model metadata mean/std: {len(mean)} and {len(std)} values for an input of {channels} "
                           "channels (one value, or one per channel; std not 0)")
        norm = (mean * n if len(mean) == 1 else mean, std * n if len(std) == 1 else std)
    return {"labels": labels, "norm": norm}


def integration_notes(program, model_path: str, labels_file: str | None) -> dict:
    """annotations() for a compiled program: output 0's size, input 0's channels (innermost
    dimension of the int8 tensor: NHWC)."""
    classes = program.tensors[program.outputs[0]].size
    shape = program.tensors[program.inputs[0]].shape
    channels = int(shape[-1]) if len(shape) >= 2 else 1
    return annotations(read_metadata(model_path), labels_file, classes, channels,
                       warn=lambda m: print(m, file=sys.stderr))


# ---- export flavours ------------------------------------------------------------------------------
def parse_exports(values: list[str]) -> list[str]:
    """--export zephyr --export cmake, or --export zephyr,cmake."""
    out = []
    for v in values:
        for name in v.split(","):
            name = name.strip().lower()
            if name not in EXPORTS:
                raise BadInput(f"--export {name!r}: one of {', '.join(EXPORTS)}")
            if name not in out:
                out.append(name)
    return out


def export_files(files: dict[str, bytes], vm: dict, exports: list[str], env) -> dict[str, bytes]:
    """The files --export adds, rendered from templates/export/ with the project's view-model."""
    out: dict[str, bytes] = {}
    if not exports:
        return out
    render = lambda tpl, **extra: env.get_template(f"export/{tpl}").render(**vm, **extra).encode()  # noqa: E731
    out[f"{vm['prefix']}_model.h"] = render("unique.h.j2", header="model.h")
    if "zephyr" in exports:
        out["zephyr/module.yml"] = render("module.yml.j2")
        out["zephyr/CMakeLists.txt"] = render("zephyr.cmake.j2")
        out["zephyr/Kconfig"] = render("Kconfig.j2")
    if "arduino" in exports:
        out["library.properties"] = render("library.properties.j2")
        for rel in arduino_sources(files):
            out[f"src/{Path(rel).name}"] = files[rel]
        out[f"src/{vm['prefix']}_model.h"] = out[f"{vm['prefix']}_model.h"]
        out[f"examples/{vm['prefix']}_demo/{vm['prefix']}_demo.ino"] = render("sketch.ino.j2")
    if "cmake" in exports:
        out["cmake-example/CMakeLists.txt"] = render("app.cmake.j2")
        out["cmake-example/app.c"] = render("app.c.j2")
    return out


def arduino_sources(files: dict[str, bytes]) -> list[str]:
    """What an Arduino library's src/ needs: the model, weights and runtime (not the harnesses)."""
    return sorted(rel for rel in files
                  if rel in ("model.c", "model.h", "weights.c", "weights.h") or rel.startswith("runtime/"))
