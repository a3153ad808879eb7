"""report.html: one self-contained page (inline CSS and SVG, no script, nothing fetched) with the
figures of report.json, the buffer-placement chart of memory.svg, the flash breakdown and the
per-layer table. Every string that comes from the model is escaped (a model is untrusted input)."""
from __future__ import annotations

from html import escape

from ..inspect import safe_text

FLASH_COLORS = {"weights": "#1f77b4", "biases": "#ff7f0e", "requantization": "#2ca02c", "tables": "#9467bd",
                "other constants": "#8c564b", "params structs": "#e377c2", "code and other data (ELF)": "#7f7f7f"}

CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.peak td { background: #ffe9a8; }
.bar { display: inline-block; height: 9px; background: #1f77b4; vertical-align: middle; }
.note { font-size: 13px; max-width: 900px; line-height: 1.4; }
.chart { overflow-x: auto; }
"""


def _e(text, limit: int = 80) -> str:
    """An untrusted string as HTML text or attribute: printable, bounded, escaped."""
    return escape(safe_text(str(text), limit), quote=True)


def _num(v) -> str:
    return f"{v:,}" if isinstance(v, int) else _e(v)


def flash_rows(report: dict) -> list[tuple[str, int]]:
    """(kind, bytes) of the flash: the constant data by kind, and, when a --target build measured
    the ELF, the rest of its flash image (code, startup, other read-only data)."""
    rows = [(k, v) for k, v in report.get("flash_breakdown", {}).items() if v]
    if "flash_bytes_elf" in report:
        rest = report["flash_bytes_elf"] - report["flash_bytes"]
        if rest > 0:
            rows.append(("code and other data (ELF)", rest))
    return rows


def _flash_svg(rows: list[tuple[str, int]]) -> str:
    total = sum(v for _, v in rows) or 1
    width, x = 900, 0.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="34" class="flash-bar">']
    for kind, v in rows:
        w = width * v / total
        parts.append(f'<rect x="{x:.1f}" y="2" width="{w:.1f}" height="30" fill="{FLASH_COLORS[kind]}">'
                     f'<title>{kind}: {v:,} B ({100 * v / total:.1f} %)</title></rect>')
        x += w
    parts.append("</svg>")
    return "".join(parts)


def _figures(r: dict) -> list[tuple[str, str]]:
    rows = [("model", _e(r["model"], 120)), ("quantization", _e(r["quant"])),
            ("peak SRAM (arena, inputs and outputs inside)", f"{r['peak_sram_bytes']:,} B"),
            ("lower bound of any plan (planner)", f"{r['lower_bound_bytes']:,} B"),
            ("memory planner", _e(r["planner"])),
            ("flash (weights and constants)", f"{r['flash_bytes']:,} B"),
            ("MACs", f"{r['macs']:,}"), ("parameters", f"{r['params']:,}")]
    if r.get("sram_budget_bytes"):
        rows.append(("--sram budget", f"{r['sram_budget_bytes']:,} B"))
    if r.get("flash_budget_bytes"):
        rows.append(("--flash budget", f"{r['flash_budget_bytes']:,} B"))
    if "target" in r:
        st = r["stack_bytes"]
        rows += [("target", _e(r["target"]["core"])),
                 ("flash of the linked ELF", f"{r['flash_bytes_elf']:,} B"),
                 ("SRAM of the linked ELF (.data + .bss)", f"{r['sram_bytes_elf']:,} B"),
                 ("stack: reserved / static worst case / measured",
                  f"{st['reserved']:,} / {st['static']:,} / " + (f"{st['measured']:,} B" if st["measured"] is not None
                                                                  else "not run"))]
        if r.get("instructions"):
            rows.append(("instructions per inference (QEMU)", f"{r['instructions']['per_inference']:,}"))
    return rows


def _io_table(r: dict) -> list[str]:
    out = ["<table><tr><th>tensor</th><th>name</th><th>shape</th><th>layout</th><th class=n>scale</th>"
           "<th class=n>zero point</th></tr>"]
    for kind in ("inputs", "outputs"):
        for i, t in enumerate(r[kind]):
            out.append(f"<tr><td>{kind[:-1]} {i}</td><td>{_e(t['name'])}</td>"
                       f"<td>{'x'.join(str(d) for d in t['logical_shape'])}</td><td>{_e(t['layout'])}</td>"
                       f"<td class=n>{t['scale']:.6g}</td><td class=n>{t['zero_point']}</td></tr>")
    out.append("</table>")
    return out


def _layer_table(r: dict) -> list[str]:
    counted = any("instructions" in layer for layer in r["layers"])
    peak = max(range(len(r["layers"])), key=lambda k: r["layers"][k]["live_bytes"]) if r["layers"] else -1
    top = max([layer["live_bytes"] for layer in r["layers"]] + [1])
    head = ["#", "layer", "op", "kernel", "output", "MACs", "params", "weight B", "scratch B", "live B", ""]
    if counted:
        head.insert(-1, "instructions")
    numeric = {"#", "MACs", "params", "weight B", "scratch B", "live B", "instructions"}
    out = ['<table class="layers"><tr>' + "".join(f"<th{' class=n' if h in numeric else ''}>{h}</th>" for h in head)
           + "</tr>"]
    for i, layer in enumerate(r["layers"]):
        cells = [f"<td class=n>{i}</td>", f"<td>{_e(layer['name'])}</td>", f"<td>{_e(layer['op'])}</td>",
                 f"<td>{_e(layer['kernel'])}</td>", f"<td>{'x'.join(str(d) for d in layer['output_shape'])}</td>"]
        cells += [f"<td class=n>{layer[k]:,}</td>" for k in ("macs", "params", "weight_bytes", "scratch_bytes",
                                                              "live_bytes")]
        if counted:
            cells.append(f"<td class=n>{_num(layer.get('instructions', ''))}</td>")
        width = 120 * layer["live_bytes"] / top
        cells.append(f'<td><span class="bar" style="width:{width:.0f}px"></span></td>')
        out.append(f'<tr class="layer{" peak" if i == peak else ""}">' + "".join(cells) + "</tr>")
    out.append("</table>")
    return out


def render_html(r: dict, chart_svg: str) -> str:
    """The page. `chart_svg`: profile_svg.buffer_chart_svg of the same plan."""
    rows = flash_rows(r)
    total = sum(v for _, v in rows) or 1
    peak = max(range(len(r["layers"])), key=lambda k: r["layers"][k]["live_bytes"]) if r["layers"] else -1
    peak_text = (f"The peak is at layer {peak} ({_e(r['layers'][peak]['name'])}), "
                 f"{r['layers'][peak]['live_bytes']:,} bytes live." if peak >= 0 else "")
    h = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         f"<title>tinycc report: {_e(r['model'])}</title>", f"<style>{CSS}</style></head><body>",
         f"<h1>tinycc report: {_e(r['model'], 120)}</h1>",
         '<table class="figures">']
    h += [f"<tr><th>{k}</th><td class=n>{v}</td></tr>" for k, v in _figures(r)]
    h += ["</table>", "<h2>Inputs and outputs</h2>"] + _io_table(r)
    h += ["<h2>Memory: where each buffer lives in the arena</h2>",
          f'<p class="note">Each box is one buffer at its planned offset in the arena (y), from the layer that '
          f"writes it to the last one that reads it (x). {peak_text} The black line counts the bytes of every "
          f"buffer live during a layer. It can rise above the arena line: a convolution's output may start below "
          f"its input by as many bytes as the input rows already consumed (row overlap), so the two buffers share "
          f"bytes and are counted twice. Dashed boxes share bytes with another buffer (in place, row overlap, or a "
          f"concat part written into its slice).</p>",
          f'<div class="chart">{chart_svg}</div>',
          "<h2>Flash</h2>", _flash_svg(rows),
          '<table class="flash"><tr><th>what</th><th class=n>bytes</th><th class=n>share</th></tr>']
    h += [f'<tr><td><span class="bar" style="background:{FLASH_COLORS[k]};width:12px"></span> {k}</td>'
          f"<td class=n>{v:,}</td><td class=n>{100 * v / total:.1f} %</td></tr>" for k, v in rows]
    h.append("</table>")
    if "flash_bytes_elf" not in r:
        h.append('<p class="note">Code size is not included: compile with --target cortex-mN to link an ELF and '
                 "measure it.</p>")
    h += ["<h2>Layers (execution order)</h2>"] + _layer_table(r)
    h += [f'<p class="note">tinycc {_e(r["tinycc_version"])}. report.json holds these figures for scripts.</p>',
          "</body></html>"]
    return "\n".join(h) + "\n"
