"""report.html and memory.svg: self-contained, every model string escaped, one box per buffer,
one row per layer; rendered in a real headless browser (Debian's chromium), whose screenshot
must be non-blank and of the requested size and whose DOM must hold the table and the boxes."""
from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path

import onnx
import pytest

from tinycc.cli import main

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits_cnn.onnx"
CALIB = ROOT / "examples" / "digits_calib.npy"
EVIL = '<b>x</b>&"\'\x01\x1b'
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
WIDTH, HEIGHT = 1280, 1800


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """digits with a hostile layer name and a hostile activation tensor name."""
    tmp = tmp_path_factory.mktemp("report")
    m = onnx.load(str(DIGITS))
    first = m.graph.node[0]
    first.name = "conv" + EVIL
    old = first.output[0]
    new = "act" + EVIL
    for node in m.graph.node:
        node.input[:] = [new if t == old else t for t in node.input]
        node.output[:] = [new if t == old else t for t in node.output]
    path = tmp / "evil.onnx"
    onnx.save(m, str(path))
    out = tmp / "p"
    assert main(["compile", str(path), "-o", str(out), "--calib", str(CALIB), "--calib-samples", "20",
                 "--sram", "4k"]) == 0
    return out


def _buffers(report: dict) -> set[str]:
    return {b["name"] for layer in report["layers"] for b in layer["live_buffers"]}


def test_report_html_is_self_contained_and_escaped(project):
    html = (project / "report.html").read_text()
    report = json.loads((project / "report.json").read_text())
    assert "<b>" not in html and "\x01" not in html and "\x1b" not in html
    assert "&lt;b&gt;x&lt;/b&gt;&amp;&quot;" in html
    assert not re.search(r"<script|<link|src=|href=|url\(|@import", html, re.I), "nothing fetched, no script"
    parser = HTMLParser()
    parser.feed(html)  # well-formed enough to parse
    assert html.count('<tr class="layer') == len(report["layers"])
    assert html.count('<g class="buffer"') == len(_buffers(report))
    for kind in ("weights", "biases", "requantization", "params structs"):
        assert f"> {kind}</td>" in html
    assert sum(report["flash_breakdown"].values()) == report["flash_bytes"]


def test_memory_svg_is_the_same_chart_with_layer_names(project):
    svg = (project / "memory.svg").read_text()
    root = ET.fromstring(svg)  # valid XML: markup escaped, no control characters
    ns = "{http://www.w3.org/2000/svg}"
    report = json.loads((project / "report.json").read_text())
    assert len(root.findall(f"{ns}g[@class='buffer']")) == len(_buffers(report))
    texts = [t.text or "" for t in root.iter(f"{ns}text")]
    assert any("Softmax" in t for t in texts), "layer names on the x axis"
    assert "peak" in texts and any(t.startswith("arena ") for t in texts)
    assert any(t.startswith("budget (--sram) 4,096") for t in texts)
    ticks = [t for t in texts if re.fullmatch(r"[\d.]+ (B|KiB)", t)]
    assert "0 B" in ticks and any(t.endswith("KiB") for t in ticks), ticks  # round binary ticks
    assert svg in (project / "report.html").read_text(), "one renderer: the same chart in report.html"


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of an 8-bit non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth = struct.unpack(">IIB", body[:9])
            assert depth == 8
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(project, tmp_path):
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={WIDTH},{HEIGHT}"]
    url = (project / "report.html").resolve().as_uri()
    shot = tmp_path / "report.png"
    subprocess.run(flags + [f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(set(pixels[::97])) > 20, "the screenshot is blank"
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    report = json.loads((project / "report.json").read_text())
    assert len(re.findall(r'<tr class="layer', dom)) == len(report["layers"])
    assert len(re.findall(r'<g class="buffer"', dom)) == len(_buffers(report))
    assert "<b>x</b>" not in dom, "a model's name must not become markup"
