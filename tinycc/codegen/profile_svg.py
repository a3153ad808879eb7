"""The memory plan as a picture: a buffer-placement chart. x is time (the graph inputs, then
each layer in execution order, then the outputs read by the caller), y is the arena address;
each buffer is a box at its planned offset spanning its lifetime. Boxes that share bytes (in-place
outputs pinned on their input, row overlap of a convolution's output over its input) are drawn
translucent so that the overlap shows. A step line gives the bytes live per layer, the peak layer
is marked, and the arena size and the --sram budget are horizontal lines. With a patch stage
(schedule/patches.py) its steps are shaded as one band, labelled with the grid, the halo strategy,
the MAC overhead and whether the input is streamed; each patch starts at a thin line, the per-patch
buffers are drawn in their own colour and the full stage-output buffer is named as such.

Plain SVG, no plotting library. The same renderer gives memory.svg and the chart in report.html.
Every model-provided string is untrusted: escaped, and control characters replaced (they are not
even allowed escaped in XML 1.0).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from html import escape

from ..inspect import safe_text
from ..memory.lifetimes import MemoryPlan
from ..program import Program

PALETTE = {"input": "#2ca02c", "output": "#d62728", "activation": "#1f77b4", "scratch": "#7f7f7f"}
PATCH_COLOR = "#9467bd"  # buffers of one patch (only charts of patched programs have them)


@dataclass(frozen=True)
class Box:
    """One planned buffer: `size` bytes at `offset`, live from time `first` to `last` inclusive
    (time 0: the inputs are written; step k runs at time k + 1; len(steps) + 1: outputs read)."""

    name: str
    kind: str  # input | output | activation | scratch
    offset: int
    size: int
    first: int
    last: int
    shares: str = ""  # "in place" / "row overlap" / ... when it shares bytes with another buffer


@dataclass(frozen=True)
class StageMark:
    """The patch stage on the chart: its steps (layer indices, first..last) and where each patch starts."""

    first: int
    last: int
    patch_starts: list[int]
    label: str
    output: str  # the full stage-output buffer


@dataclass(frozen=True)
class MemoryChart:
    boxes: list[Box]
    columns: list[str]  # one label per time: "inputs", layer names, "outputs"
    live_bytes: list[int]  # per layer (time 1..n)
    inplace_layers: set[int]
    arena_bytes: int
    stages: tuple[StageMark, ...] = ()  # the patch stage(s), in order

    @property
    def stage(self) -> StageMark | None:
        return self.stages[0] if self.stages else None

    @property
    def peak_layer(self) -> int:
        return max(range(len(self.live_bytes)), key=lambda k: self.live_bytes[k]) if self.live_bytes else -1


def memory_chart(program: Program, mem: MemoryPlan) -> MemoryChart:
    """What the chart shows, taken from the plan (buffer names are model names: untrusted)."""
    inputs = {program.root(t) for t in program.inputs}
    outputs = {program.root(t) for t in program.outputs}
    shares = {}
    for out, src, delta in mem.overlaps:
        # in place (pinned at 0), a concat part in its slice, or a row overlap below its input
        shares[out] = f"shares bytes with {src} (placed {delta:+,} B from it)"
    boxes = []
    for b in mem.buffers:
        kind = ("scratch" if b.name.startswith("__scratch_") else "input" if b.name in inputs
                else "output" if b.name in outputs else
                "patch" if program.patch is not None and "@" in b.name else "activation")
        boxes.append(Box(b.name, kind, int(mem.plan.offsets[b.name]), int(b.size), int(b.first), int(b.last),
                         shares.get(b.name, "")))
    columns = ["inputs"] + [s.onnx_name or s.node for s in program.steps] + ["outputs"]
    return MemoryChart(boxes, columns, [int(v) for v in mem.live_bytes], set(mem.inplace_steps),
                       int(mem.arena_bytes), stage_marks(program))


def stage_marks(program: Program) -> tuple[StageMark, ...]:
    """One mark per patch stage (a second stage is labelled as such)."""
    from ..schedule.patches import patch_stages

    stages = patch_stages(program.patch)
    model_macs = max(program.macs - sum(pp.macs_patched - pp.macs_layer_by_layer for pp in stages), 1)
    marks = []
    for n, pp in enumerate(stages):
        if not pp.patch_steps:
            continue
        extra = pp.macs_patched - pp.macs_layer_by_layer
        own = dataclasses.replace(pp.config, then=None).text()
        name = f"patch stage {own}" if n == 0 else f"second patch stage {own} (steps {pp.start}..{pp.config.split - 1})"
        label = (name + f": {len(pp.tiles)} patches ({pp.config.rows} x {pp.config.cols}), "
                 f"halo {pp.halo}, +{100 * extra / model_macs:.2f} % MACs"
                 + (", input streamed (not in the arena)" if pp.streamed else ""))
        starts = [ks[0] for ks in pp.patch_steps if ks]
        marks.append(StageMark(starts[0], max(k for ks in pp.patch_steps for k in ks), starts, label,
                               program.root(pp.stage_output)))
    return tuple(marks)


def nice_ticks(top: float, target: int = 6) -> list[int]:
    """Tick values from 0 up to `top` in a power-of-two step (arena sizes and alignments are
    binary, so 2 KiB, 4 KiB, ... read better than 1,856, 3,712, ...), at most `target` + 1 ticks."""
    step = 1
    while top / step > target:
        step *= 2
    return [step * i for i in range(int(top // step) + 1)]


def byte_label(v: int) -> str:
    if v >= 1024 * 1024 and v % (1024 * 1024 // 4) == 0:
        return f"{v / (1024 * 1024):g} MiB"
    if v >= 1024 and v % 256 == 0:
        return f"{v / 1024:g} KiB"
    return f"{v:,} B"


def _text(s: str, limit: int) -> str:
    return escape(safe_text(str(s), limit), quote=True)


def _tail(s: str, limit: int) -> str:
    """The end of a long name, escaped: exporters' names share long prefixes (/features/...)."""
    s = safe_text(str(s), 10 ** 6)
    return escape(s if len(s) <= limit else "~" + s[len(s) - limit + 1:], quote=True)


def buffer_chart_svg(chart: MemoryChart, budget: int | None, title: str = "") -> str:
    """The chart as one <svg> element (a standalone file for memory.svg, inline in report.html)."""
    ncol = max(len(chart.columns), 1)
    left, right, top, label_band = 80, 24, 40, 130
    col_w = min(max(880 / ncol, 14.0), 60.0)
    plot_w = col_w * ncol
    plot_h = 380
    width, height = int(left + plot_w + right), int(top + plot_h + label_band)
    peak_live = max(chart.live_bytes, default=0)
    ymax = max(chart.arena_bytes, peak_live, 16) * 1.06
    if budget and budget <= 2 * ymax:  # a budget far above the arena would squash the boxes: say it instead
        ymax = max(ymax, budget * 1.06)
    ticks = nice_ticks(ymax)
    ymax = max(ymax, ticks[-1] * 1.02)

    def x(t: float) -> float:
        return left + t * col_w

    def y(v: float) -> float:
        return top + plot_h * (1 - v / ymax)

    heading = title or (f"Arena {chart.arena_bytes:,} B" + (f", budget {budget:,} B" if budget else "")
                        + f", peak {peak_live:,} B live")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" class="memory-chart">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="20" font-size="13">Buffer placement: {_text(heading, 160)}</text>']
    # the peak layer: a shaded column behind everything
    peak = chart.peak_layer
    if peak >= 0:
        parts.append(f'<rect class="peak" x="{x(peak + 1):.1f}" y="{top}" width="{col_w:.1f}" height="{plot_h}" '
                     f'fill="#ffe9a8"><title>peak: layer {peak} ({_text(chart.columns[peak + 1], 80)}), '
                     f'{peak_live:,} B live</title></rect>')
        parts.append(f'<text x="{x(peak + 1.5):.1f}" y="{top - 4}" text-anchor="middle" fill="#a06000">peak</text>')
    for stage in chart.stages:
        parts.append(f'<g class="patch-stage"><rect x="{x(stage.first + 1):.1f}" y="{top}" '
                     f'width="{(stage.last - stage.first + 1) * col_w:.1f}" height="{plot_h}" fill="{PATCH_COLOR}" '
                     f'fill-opacity="0.08"><title>{_text(stage.label, 200)}</title></rect>')
        for k in stage.patch_starts[1:]:
            parts.append(f'<line x1="{x(k + 1):.1f}" x2="{x(k + 1):.1f}" y1="{top}" y2="{top + plot_h}" '
                         f'stroke="{PATCH_COLOR}" stroke-opacity="0.35" stroke-width="0.6"/>')
        parts.append(f'<text x="{x(stage.first + 1) + 3:.1f}" y="{top + 12}" font-size="10" fill="{PATCH_COLOR}">'
                     f'{_text(stage.label, 160)}</text></g>')
    for k in sorted(chart.inplace_layers):
        parts.append(f'<text x="{x(k + 1.5):.1f}" y="{top + plot_h - 3}" text-anchor="middle" font-size="9" '
                     f'fill="#555">ip</text>')
    for v in ticks:
        parts.append(f'<line x1="{left}" x2="{left + plot_w:.1f}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{byte_label(v)}</text>')
    for b in chart.boxes:
        bx, bw = x(b.first), (b.last - b.first + 1) * col_w
        by, bh = y(b.offset + b.size), plot_h * b.size / ymax
        dash = ' stroke-dasharray="4 2"' if b.shares else ""
        life = f"{chart.columns[b.first]} .. {chart.columns[min(b.last, ncol - 1)]}"
        role = "stage output" if any(b.name == st.output for st in chart.stages) else b.kind
        color = PATCH_COLOR if b.kind == "patch" else PALETTE[b.kind]
        tip = (f"{safe_text(b.name, 80)} ({role}): {b.size:,} B at offset {b.offset:,}, live "
               f"{safe_text(life, 120)}" + (f"; {safe_text(b.shares, 120)}" if b.shares else ""))
        parts.append(f'<g class="buffer" data-kind="{b.kind}">'
                     f'<rect x="{bx:.1f}" y="{by:.1f}" width="{bw:.1f}" height="{max(bh, 1):.1f}" '
                     f'fill="{color}" fill-opacity="0.45" stroke="{color}"{dash}>'
                     f'<title>{escape(tip, quote=True)}</title></rect>')
        chars = int(bw / 6.2)
        if bh >= 12 and chars >= 4:
            parts.append(f'<text x="{bx + 3:.1f}" y="{by + min(bh, 24) / 2 + 4:.1f}" font-size="10">'
                         f'{_tail(b.name, chars)}</text>')
        parts.append("</g>")
    # bytes live per layer: can exceed the arena where an output overlaps the rows already read
    points = []
    for k, live in enumerate(chart.live_bytes):
        points += [f"{x(k + 1):.1f},{y(live):.1f}", f"{x(k + 2):.1f},{y(live):.1f}"]
    if points:
        parts.append(f'<polyline class="live" points="{" ".join(points)}" fill="none" stroke="black" '
                     f'stroke-width="1.5"><title>bytes live per layer</title></polyline>')
    for value, label, color in ((chart.arena_bytes, "arena", "#2ca02c"), (budget, "budget (--sram)", "#ff7f0e")):
        if value and value > ymax:
            parts.append(f'<text x="{left + plot_w - 4:.1f}" y="{top + 12}" text-anchor="end" fill="{color}">'
                         f'{label} {value:,} B: above the chart</text>')
        elif value:
            parts.append(f'<line class="limit" x1="{left}" x2="{left + plot_w:.1f}" y1="{y(value):.1f}" '
                         f'y2="{y(value):.1f}" stroke="{color}" stroke-width="1.5" stroke-dasharray="6 3"/>')
            parts.append(f'<text x="{left + plot_w - 4:.1f}" y="{y(value) - 4:.1f}" text-anchor="end" '
                         f'fill="{color}">{label} {value:,} B</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="black"/>')
    parts.append(f'<line x1="{left}" x2="{left + plot_w:.1f}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="black"/>')
    every = max(1, int(12 / col_w + 0.999))  # keep axis labels at least 12 px apart
    for t, name in enumerate(chart.columns):
        if t % every and t != ncol - 1:
            continue
        cx, cy = x(t + 0.5), top + plot_h + 8
        label = name if t in (0, ncol - 1) else f"{t - 1} " + _tail(name, 20)
        parts.append(f'<text x="{cx:.1f}" y="{cy:.1f}" transform="rotate(60 {cx:.1f} {cy:.1f})" font-size="9">'
                     f'{label}</text>')
    parts.append(f'<text x="16" y="{top + plot_h / 2:.1f}" transform="rotate(-90 16 {top + plot_h / 2:.1f})" '
                 f'text-anchor="middle">arena address</text>')
    legend_x = left
    for kind, color in PALETTE.items():
        parts.append(f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" fill="{color}" fill-opacity="0.45" '
                     f'stroke="{color}"/><text x="{legend_x + 14}" y="{height - 5}">{kind}</text>')
        legend_x += 90
    if chart.stages:
        parts.append(f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" fill="{PATCH_COLOR}" '
                     f'fill-opacity="0.45" stroke="{PATCH_COLOR}"/><text x="{legend_x + 14}" y="{height - 5}">'
                     f'one patch</text>')
        legend_x += 90
    parts.append(f'<text x="{legend_x}" y="{height - 5}">dashed: shares bytes (in place / row overlap); '
                 f'line: bytes live; ip: layer runs in place</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def memory_profile_svg(program: Program, mem: MemoryPlan, budget: int | None) -> str:
    """memory.svg: the buffer-placement chart as a standalone file."""
    return buffer_chart_svg(memory_chart(program, mem), budget)
