"""Shared fixtures: the ../shared reference material and the exported model zoo.

torch and the zoo are imported only by tests that use the zoo, so that the C kernel tests
do not pay for importing torch.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest

TESTS_DIR = Path(__file__).resolve().parent
ROOT = TESTS_DIR.parent
SHARED_DIR = ROOT.parent / "shared"
MLPERF_DIR = SHARED_DIR / "models" / "mlperf_tiny"
ZOO_CACHE_ROOT = Path(tempfile.gettempdir()) / "tinycc_zoo_cache"

ZooKey = tuple[str, str]  # (model name, exporter)
ZooExport = tuple[Path, dict[str, np.ndarray]]  # (ONNX file, example inputs by ONNX input name)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"../shared absent: {SHARED_DIR} not found")
    return SHARED_DIR


@pytest.fixture(scope="session")
def mlperf_dir() -> Path:
    if not MLPERF_DIR.is_dir():
        pytest.skip(f"../shared absent: MLPerf Tiny models not found at {MLPERF_DIR}")
    return MLPERF_DIR


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes `zoo_key` runs once per (model, exporter) pair of the zoo."""
    if "zoo_key" in metafunc.fixturenames:
        import zoo

        metafunc.parametrize("zoo_key", [_zoo_param(name, exporter) for exporter in zoo.EXPORTERS for name in zoo.ZOO])


def _zoo_param(name: str, exporter: str):
    import zoo

    reason = zoo.KNOWN_EXPORT_FAILURES.get((name, exporter))
    marks = [pytest.mark.skip(reason=f"{exporter} cannot export {name}: {reason}")] if reason else []
    return pytest.param((name, exporter), id=f"{name}-{exporter}", marks=marks)


def zoo_cache_dir() -> Path:
    """Persistent export cache, keyed by everything that determines the exported files."""
    digest = hashlib.sha256()
    digest.update((TESTS_DIR / "zoo.py").read_bytes())
    for package in ("torch", "onnxscript", "onnx"):
        digest.update(importlib.metadata.version(package).encode())
    return ZOO_CACHE_ROOT / digest.hexdigest()[:16]


class ZooExports(Mapping):
    """(model name, exporter) -> (ONNX path, example inputs), exported on first use.

    Exports come from the persistent cache when present; otherwise they are made and
    published there atomically (safe with concurrent test runs). Each session works on its
    own copies, so a test cannot damage the cache.
    """

    def __init__(self, session_dir: Path, cache_dir: Path):
        self._session_dir = session_dir
        self._cache_dir = cache_dir
        self._exports: dict[ZooKey, ZooExport] = {}

    def __getitem__(self, key: ZooKey) -> ZooExport:
        if key not in self._exports:
            self._exports[key] = self._load(*key)
        return self._exports[key]

    def __iter__(self) -> Iterator[ZooKey]:
        import zoo

        return ((name, exporter) for exporter in zoo.EXPORTERS for name in zoo.ZOO)

    def __len__(self) -> int:
        import zoo

        return len(zoo.EXPORTERS) * len(zoo.ZOO)

    def _load(self, name: str, exporter: str) -> ZooExport:
        import zoo

        if name not in zoo.ZOO or exporter not in zoo.EXPORTERS:
            raise KeyError((name, exporter))
        stem = f"{name}_{exporter}"
        cached_model = self._cache_dir / f"{stem}.onnx"
        cached_inputs = self._cache_dir / f"{stem}.npz"
        if not (cached_model.exists() and cached_inputs.exists()):
            self._export_into_cache(name, exporter, cached_model, cached_inputs)
        model_path = self._session_dir / cached_model.name
        shutil.copyfile(cached_model, model_path)
        with np.load(cached_inputs) as saved:
            inputs = {k: saved[k] for k in saved.files}
        return model_path, inputs

    def _export_into_cache(self, name: str, exporter: str, model_dst: Path, inputs_dst: Path) -> None:
        import zoo

        self._cache_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=self._session_dir))
        exported = zoo.export(name, exporter, work)
        model, example = zoo.ZOO[name]()
        inputs = {n: t.numpy() for n, t in zip(zoo.input_names(model), example)}
        np.savez(work / "inputs.npz", **inputs)
        _publish(exported, model_dst)
        _publish(work / "inputs.npz", inputs_dst)


def _publish(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


@pytest.fixture(scope="session")
def zoo_models(tmp_path_factory: pytest.TempPathFactory) -> ZooExports:
    return ZooExports(tmp_path_factory.mktemp("zoo"), zoo_cache_dir())


def ort_run(path: Path, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run an ONNX file with onnxruntime on the CPU; outputs in graph order."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, dict(inputs))


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a - ref| / max |ref| (shapes must match exactly; no broadcasting)."""
    a, ref = np.asarray(a, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if a.shape != ref.shape:
        raise AssertionError(f"shape {a.shape} != reference shape {ref.shape}")
    scale = np.abs(ref).max() if ref.size else 0.0
    diff = np.abs(a - ref).max() if ref.size else 0.0
    return float(diff / scale) if scale > 0 else float(diff)


def quantize_static_qdq(net, data: np.ndarray, tmp_path: Path, name: str = "qdq",
                        activation_type: str = "QInt8") -> Path:
    """`net` (torch, eval) exported at opset 17 and quantized by onnxruntime's quantize_static
    (QDQ, per-channel int8 weights), calibrated on data[i] (each a batch of one)."""
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    fp = tmp_path / "float.onnx"
    torch.onnx.export(net, (torch.from_numpy(data[0]),), fp, input_names=["x"], output_names=["y"],
                      opset_version=17, dynamo=False)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": d} for d in data])

        def get_next(self):
            return next(self.it, None)

    qp = tmp_path / f"{name}.onnx"
    quantize_static(str(fp), str(qp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=getattr(QuantType, activation_type), weight_type=QuantType.QInt8)
    return qp
