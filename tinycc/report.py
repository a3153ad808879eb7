"""report.json / report.md of a compiled model. Field names are a stable interface."""
from __future__ import annotations

from .inspect import safe_text
from .memory.lifetimes import MemoryPlan
from .program import Program


def markdown_text(text: str, limit: int = 40) -> str:
    """An untrusted name (layer, model file) as one markdown table cell or heading: printable,
    no table, code or HTML syntax."""
    return "".join("?" if c in "|`<>" else c for c in safe_text(text, limit))


def unicode_text(text: str) -> str:
    """A file name as valid Unicode (undecodable bytes, kept as surrogates by Python, become U+FFFD)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def build_report(program: Program, mem: MemoryPlan, sram: int | None, flash: int | None, source: str) -> dict:
    from . import __version__

    layers = []
    size = {b.name: b.size for b in mem.buffers}
    for k, step in enumerate(program.steps):
        out = step.outputs[0] if step.outputs else None
        info = program.tensors[out] if out else None
        weight_bytes = sum(program.blobs[a.ref].nbytes for a in step.args if a.kind == "const")
        layers.append({
            "name": step.onnx_name or step.node,
            "op": step.op,
            "kernel": step.kernel,
            "output_shape": list(info.logical_shape) if info else [],
            "macs": int(step.macs),
            "params": int(step.param_count),
            "weight_bytes": int(weight_bytes),
            "live_bytes": int(mem.live_bytes[k]),
            "live_buffers": [{"name": b, "bytes": int(size[b])} for b in mem.live_tensors[k]],
            "scratch_bytes": int(step.scratch_bytes),
            **_codebook_entry(step, program),
        })
    params = sum(int(step.param_count) for step in program.steps)
    return {
        "tinycc_version": __version__,
        "model": unicode_text(source),
        "quant": program.quant_scheme,
        "peak_sram_bytes": int(mem.arena_bytes),
        "arena_bytes": int(mem.arena_bytes),
        "io_outside_arena_bytes": 0,
        "lower_bound_bytes": int(mem.lower_bound),
        "lower_bound_kind": mem.lower_bound_kind,
        "planner": mem.plan.planner,
        "planner_candidates": {k: int(v) for k, v in mem.plan.candidates.items()},
        "flash_bytes": int(program.flash_bytes),
        "flash_breakdown": flash_breakdown(program),
        "sram_budget_bytes": sram,
        "flash_budget_bytes": flash,
        "macs": int(program.macs),
        "params": params,
        "inputs": [_io(program, t) for t in program.inputs],
        "outputs": [_io(program, t) for t in program.outputs],
        "layers": layers,
        **prom_section(program),
    }


def prom_section(program: Program) -> dict:
    """{"prom": ...} when layers run ternary (tc_pw_ternary_s8), else nothing (int8 reports keep
    their fields): which layers, their packed bytes against int8 (and in both formats), their
    share of the MACs, and the arithmetic energy estimate of quantization.md §1.4 against
    all-int8 and float16 (quant/ternary.energy_estimate)."""
    from .quant import ternary

    steps = [s for s in program.steps if s.kernel.startswith("tc_pw_ternary_s8")]
    if not steps:
        return {}
    total_macs = sum(int(s.macs) for s in program.steps)
    layers = []
    for s in steps:
        p = s.params
        layers.append({"name": s.onnx_name or s.node, "kernel": s.kernel, "in_c": p.in_c, "out_c": p.out_c,
                       "format": ternary.FORMAT_NAMES[p.format], "macs": int(s.macs),
                       "weight_bytes": p.out_c * ternary.row_bytes(p.in_c, p.format), "int8_weight_bytes": p.out_c * p.in_c,
                       "bytes_2bit": p.out_c * ternary.row_bytes(p.in_c, ternary.FORMAT_2BIT),
                       "bytes_base3": p.out_c * ternary.row_bytes(p.in_c, ternary.FORMAT_BASE3)})
    int8_bytes = sum(l["int8_weight_bytes"] for l in layers)

    def total(key):
        return sum(l[key] for l in layers)

    mac_layers = [("ternary" if s.kernel.startswith("tc_pw_ternary_s8") else "int8", int(s.macs))
                  for s in program.steps if s.macs]
    return {"prom": {
        "ternary_layers": layers,
        "ternary_weight_bytes": total("weight_bytes"),
        "int8_weight_bytes": int8_bytes,
        "flash_ratio": round(total("weight_bytes") / int8_bytes, 4),
        "flash_ratio_2bit": round(total("bytes_2bit") / int8_bytes, 4),
        "flash_ratio_base3": round(total("bytes_base3") / int8_bytes, 4),
        "mac_share": round(total("macs") / total_macs, 4) if total_macs else 0.0,
        "energy": ternary.energy_estimate(mac_layers),
    }}
def _codebook_entry(step, program: Program) -> dict:
    """{'codebook': ...} for a layer with codebook weights (quant/codebook.py), else nothing."""
    from .quant.codebook import layer_report

    entry = layer_report(step, program.blobs)
    return {"codebook": entry} if entry else {}


# The role a lowering gave a constant array is the end of its name (Lowering.blob(data, node, role)).
_BLOB_KINDS = {"w": "weights", "const": "weights", "windex": "weights", "wpalette": "weights", "bias": "biases", "mult": "requantization",
               "shift": "requantization", "lut": "tables", "exp": "tables", "xidx": "tables", "yidx": "tables"}


def blob_kind(name: str) -> str:
    """weights / biases / requantization / tables / other constants, from a blob's name
    (a trailing _2, _3 ... only tells identical-name blobs apart)."""
    parts = name.split("_")
    while len(parts) > 1 and parts[-1].isdigit():
        parts.pop()
    return _BLOB_KINDS.get(parts[-1], "other constants")


def flash_breakdown(program: Program) -> dict[str, int]:
    """Bytes of flash per kind of constant data; sums to program.flash_bytes."""
    out = {k: 0 for k in ("weights", "biases", "requantization", "tables", "other constants", "params structs")}
    for name, data in program.blobs.items():
        out[blob_kind(name)] += int(data.nbytes)
    out["params structs"] = program.params_bytes
    return out


def add_target_figures(report: dict, core, sizes, static_stack, run=None, run_input: str = "") -> None:
    """Figures of a Cortex-M build: sizes from the linked ELF, stack, and (when it ran under QEMU)
    instructions per inference and per layer. sizes/static_stack/run: sim.qemu.ElfSizes,
    StaticStack, QemuRun."""
    report["target"] = {"core": core.name, "board": core.board, "cpu_flags": list(core.cpu_flags),
                        "dsp": core.has_dsp, "stack_guard": core.stack_guard}
    report["flash_bytes_elf"] = int(sizes.flash)
    report["sram_bytes_elf"] = int(sizes.sram)
    report["elf_sections"] = {k: int(v) for k, v in sizes.sections.items()}
    # Code and constants per source file of the harness build (GNU ld map): each kernel's runtime
    # file, model.c, weights.c, the harness (arm/) and the C library members it pulled in.
    report["flash_by_source"] = {k: int(v) for k, v in sizes.code_by_file.items()}
    report["stack_bytes"] = {
        "reserved": int(sizes.stack_reserved),
        "static": int(static_stack.bytes),
        "static_bounded": bool(static_stack.bounded),
        "static_unknown_callees": list(static_stack.unknown),
        "measured": int(run.stack_high_water) if run is not None else None,
    }
    if run is None or run.instructions is None:
        report["instructions"] = None
        return
    macs = report["macs"]
    report["instructions"] = {"per_inference": int(run.instructions),
                              "per_mac": round(run.instructions / macs, 3) if macs else None,
                              "input": run_input, "counter": "QEMU instruction count"}
    for layer, count in zip(report["layers"], run.step_instructions):
        layer["instructions"] = int(count)


def _io(program: Program, name: str) -> dict:
    info = program.tensors[name]
    s, zp = info.quant.scalar()
    return {"name": name, "shape": list(info.shape), "logical_shape": list(info.logical_shape),
            "layout": "NHWC" if info.perm == (0, 2, 3, 1) else "row-major", "scale": float(s), "zero_point": int(zp)}


def render_markdown(r: dict) -> str:
    lines = [f"# tinycc report: {markdown_text(r['model'], 80)}", "",
             "| figure | value |", "|---|---|",
             f"| peak SRAM (arena, I/O inside) | {r['peak_sram_bytes']:,} B |",
             f"| lower bound ({r['lower_bound_kind']}) | {r['lower_bound_bytes']:,} B |",
             f"| planner | {r['planner']} |",
             f"| flash (weights + constants) | {r['flash_bytes']:,} B |",
             f"| MACs | {r['macs']:,} |", f"| params | {r['params']:,} |", f"| quantization | {r['quant']} |"]
    lines += _target_rows(r)
    lines += _prom_text(r)
    lines += _memory_text(r) + _flash_text(r)
    if "patch" in r:
        from .schedule.report import patch_markdown

        lines += patch_markdown(r)
    counted = bool(r.get("instructions"))
    lines += ["", "| # | layer | op | kernel | output | MACs | weight B | live B |" + (" instructions |" if counted else ""),
              "|---|---|---|---|---|---|---|---|" + ("---|" if counted else "")]
    for i, l in enumerate(r["layers"]):
        name = markdown_text(l["name"])
        shape = "x".join(str(d) for d in l["output_shape"])
        lines.append(f"| {i} | {name} | {l['op']} | {l['kernel']} | {shape} | {l['macs']:,} | "
                     f"{l['weight_bytes']:,} | {l['live_bytes']:,} |" + (f" {l['instructions']:,} |" if counted else ""))
    return "\n".join(lines) + "\n"


def _prom_text(r: dict) -> list[str]:
    if "prom" not in r:
        return []
    p, e = r["prom"], r["prom"]["energy"]
    lines = ["", "## PROM ternary layers", "",
             f"{len(p['ternary_layers'])} pointwise layers run ternary ({p['mac_share']:.1%} of the MACs): "
             f"{p['ternary_weight_bytes']:,} B of weights instead of {p['int8_weight_bytes']:,} B at int8 "
             f"({p['flash_ratio']:.3f}x; 2-bit {p['flash_ratio_2bit']:.3f}x, base-3 {p['flash_ratio_base3']:.3f}x). "
             f"Arithmetic energy estimate (45 nm, quantization.md §1.4): {e['prom_pj'] / 1e6:,.3f} uJ vs int8 "
             f"{e['int8_pj'] / 1e6:,.3f} uJ ({e['int8_over_prom']}x) and float16 {e['float16_pj'] / 1e6:,.3f} uJ "
             f"({e['float16_over_prom']}x).", "",
             "| layer | in x out | format | MACs | bytes | int8 bytes |", "|---|---|---|---|---|---|"]
    lines += [f"| {markdown_text(l['name'])} | {l['in_c']} x {l['out_c']} | {l['format']} | {l['macs']:,} | "
              f"{l['weight_bytes']:,} | {l['int8_weight_bytes']:,} |" for l in p["ternary_layers"]]
    return lines


def _memory_text(r: dict) -> list[str]:
    layers = r["layers"]
    if not layers:
        return []
    k = max(range(len(layers)), key=lambda i: layers[i]["live_bytes"])
    most = layers[k]["live_bytes"]
    lines = ["", "## Memory", "",
             f"memory.svg (and report.html) show where each buffer lives: one box per buffer at its offset in the "
             f"arena, from the layer that writes it to the last layer that reads it. The `live B` column below "
             f"adds up the sizes of the buffers live during each layer; the most is {most:,} B at layer {k} "
             f"({markdown_text(layers[k]['name'])})."]
    if most > r["arena_bytes"]:
        lines.append(f"That is more than the {r['arena_bytes']:,} B arena: buffers that share bytes are each counted "
                     f"in full. A convolution's output may start below its input by as many bytes as the input "
                     f"rows already consumed (row overlap), and an in-place or concat output sits on its input.")
    else:
        lines.append(f"The arena ({r['arena_bytes']:,} B) cannot be smaller than the bytes live at once unless "
                     f"buffers share bytes (row overlap of a convolution's output over the input rows it has "
                     f"consumed, in-place layers); the difference up to it is alignment and fragmentation.")
    return lines


def _flash_text(r: dict) -> list[str]:
    parts = r.get("flash_breakdown")
    if not parts:
        return []
    lines = ["", "## Flash", "", "| constant data | bytes |", "|---|---|"]
    lines += [f"| {k} | {v:,} |" for k, v in parts.items() if v]
    lines.append(f"| total (flash_bytes) | {r['flash_bytes']:,} |")
    if "flash_bytes_elf" in r:
        lines.append(f"| code and other data of the linked ELF | {max(r['flash_bytes_elf'] - r['flash_bytes'], 0):,} |")
        lines += _code_by_source_text(r.get("flash_by_source") or {})
    else:
        lines += ["", "Code is not included: compile with --target cortex-mN to link an ELF and measure it."]
    return lines + ["", "## Layers"]


def _code_by_source_text(by_file: dict[str, int]) -> list[str]:
    """Code per source file of the linked ELF: what each kernel costs in flash (report.json's
    flash_by_source; --optimize size trades speed for these bytes)."""
    code = {k: v for k, v in by_file.items() if k != "weights.c"}
    if not code:
        return []
    runtime = sum(v for k, v in code.items() if k.startswith("runtime/"))
    lines = ["", "| code (.text, .rodata) per source file | bytes |", "|---|---|"]
    lines += [f"| {markdown_text(k)} | {v:,} |" for k, v in sorted(code.items(), key=lambda kv: -kv[1])]
    lines.append(f"| total code (kernels: {runtime:,}) | {sum(code.values()):,} |")
    return lines


def _target_rows(r: dict) -> list[str]:
    if "target" not in r:
        return []
    t, st = r["target"], r["stack_bytes"]
    rows = [f"| target | {t['core']}" + (f" (QEMU {t['board']})" if t["board"] else "") + " |",
            f"| flash from the ELF (code + constants + .data image) | {r['flash_bytes_elf']:,} B |",
            f"| SRAM from the ELF (.data + .bss) | {r['sram_bytes_elf']:,} B |",
            f"| stack: reserved / static worst case / measured | {st['reserved']:,} / {st['static']:,} / "
            + (f"{st['measured']:,} B |" if st["measured"] is not None else "not run |")]
    if r.get("instructions"):
        ins = r["instructions"]
        rows.append(f"| instructions per inference ({ins['input']}, {ins['counter']}) | {ins['per_inference']:,}"
                    + (f" ({ins['per_mac']:.2f} per MAC)" if ins["per_mac"] else "") + " |")
    return rows
