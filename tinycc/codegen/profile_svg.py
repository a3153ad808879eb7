"""The memory profile as a picture: one bar per layer (bytes live while it runs), the arena
size and the --sram budget as lines. Plain SVG, no plotting library needed."""
from __future__ import annotations

from html import escape

from ..inspect import safe_text
from ..memory.lifetimes import MemoryPlan
from ..program import Program


def memory_profile_svg(program: Program, mem: MemoryPlan, budget: int | None) -> str:
    n = max(len(mem.live_bytes), 1)
    width, height, left, bottom, top = 900, 360, 70, 60, 30
    plot_w, plot_h = width - left - 20, height - bottom - top
    peak = max(mem.live_bytes, default=0)
    ymax = max(peak, mem.arena_bytes, budget or 0, 1) * 1.08
    bar_w = plot_w / n

    def y(v: float) -> float:
        return top + plot_h * (1 - v / ymax)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="18" font-size="13">Live bytes per layer (arena {mem.arena_bytes:,} B'
             f'{f", budget {budget:,} B" if budget else ""})</text>']
    for k, live in enumerate(mem.live_bytes):
        step = program.steps[k]
        x = left + k * bar_w
        color = "#d62728" if live == peak else "#1f77b4"
        # a model's names are untrusted: control characters are not even allowed escaped in XML 1.0
        title = escape(f"{k}: {step.op} {safe_text(step.onnx_name or step.node, 80)} - {live:,} B live")
        parts.append(f'<rect x="{x:.2f}" y="{y(live):.2f}" width="{max(bar_w - 1, 0.5):.2f}" '
                     f'height="{top + plot_h - y(live):.2f}" fill="{color}"><title>{title}</title></rect>')
    for value, label, color in ((mem.arena_bytes, "arena", "#2ca02c"), (budget, "budget", "#ff7f0e")):
        if value:
            parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.2f}" y2="{y(value):.2f}" '
                         f'stroke="{color}" stroke-dasharray="6 3"/>')
            parts.append(f'<text x="{left + plot_w - 4}" y="{y(value) - 4:.2f}" text-anchor="end" '
                         f'fill="{color}">{label} {value:,} B</text>')
    for i in range(5):
        v = ymax * i / 4
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.2f}" text-anchor="end">{int(v):,}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="black"/>')
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="black"/>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 20}" text-anchor="middle">layer (execution order)</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
