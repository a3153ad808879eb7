"""--optimize size (-Os) against speed (-O2) on the Cortex-M4: smaller kernels, the same outputs,
and report.json's flash_by_source (code and constants per source file, from the link map)
accounting for the ELF's flash."""
from __future__ import annotations

import numpy as np
import pytest

import tinycc
from tinycc.sim.qemu import missing_tools

pytestmark = pytest.mark.skipif(bool(missing_tools(run=True)), reason=str(missing_tools(run=True)))


@pytest.fixture(scope="module")
def builds(mlperf_dir, tmp_path_factory):
    model = mlperf_dir / "kws_dscnn.onnx"
    calib = tmp_path_factory.mktemp("opt") / "calib.npy"
    np.save(calib, np.random.default_rng(0).normal(0, 1, (4, 1, 49, 10)).astype(np.float32))
    return {o: tinycc.compile(model, calib=calib, target="cortex-m4", optimize=o) for o in ("speed", "size")}


def _kernel_bytes(report):
    return sum(v for k, v in report["flash_by_source"].items() if k.startswith("runtime/"))


def test_flash_by_source_accounts_for_the_elf(builds):
    for m in builds.values():
        r = m.report
        by_file = r["flash_by_source"]
        assert {"model.c", "weights.c", "runtime/tc_fc_s8.c"} <= set(by_file)
        # the constant blobs are in weights.c, the layers' const params structs in model.c
        assert by_file["weights.c"] + by_file["model.c"] >= r["flash_bytes"]
        # the vector table and alignment padding are the only flash bytes outside source files
        assert 0 <= r["flash_bytes_elf"] - sum(by_file.values()) <= 512
        assert "code (.text, .rodata) per source file" in m.files["report.md"].decode()


def test_size_build_is_smaller_and_gives_the_same_outputs(builds):
    speed, size = builds["speed"], builds["size"]
    assert b"-Os -DTC_OPTIMIZE_SIZE" in size.files["Makefile"] and b"-Os" not in speed.files["Makefile"]
    assert size.report["optimize"] == "size" and speed.report["optimize"] == "speed"
    assert _kernel_bytes(size.report) < 0.8 * _kernel_bytes(speed.report)
    assert size.report["flash_bytes_elf"] < speed.report["flash_bytes_elf"]
    x = np.random.default_rng(1).normal(0, 1, (2, 1, 49, 10)).astype(np.float32)
    golden = size.run(x, engine="int8")
    for engine in ("c", "qemu"):
        got = size.run(x, engine=engine)
        for name in golden:
            np.testing.assert_array_equal(got[name], golden[name], err_msg=f"{engine} {name}")
