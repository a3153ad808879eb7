"""The `patch` section of report.json / report.md (present when a patch search ran: --patch auto or
forced, or the default --patch fit with a layer-by-layer plan over --sram)."""
from __future__ import annotations


def patch_report(program, mem, decision) -> dict:
    """What was chosen and why; the memory figures of the patch stage when there is one."""
    out = {"mode": decision.mode, "chosen": decision.chosen.text() if decision.chosen else None,
           "reason": decision.reason, "layer_by_layer_arena_bytes": int(decision.layer_by_layer_arena),
           "arena_bytes": int(mem.arena_bytes), "stage_stops_because": decision.stop_reason,
           "candidates_planned": decision.tried}
    pp = program.patch
    if pp is None:
        return out
    from .patches import patch_stages

    stages = patch_stages(pp)
    model_macs = max(program.macs - sum(s.macs_patched - s.macs_layer_by_layer for s in stages), 1)
    out.update(_stage_figures(program, mem, pp, model_macs))
    # over every stage: the figure the --patch-overhead limit applies to
    out["mac_overhead_percent"] = round(100 * sum(s.macs_patched - s.macs_layer_by_layer for s in stages)
                                        / model_macs, 2)
    out["instruction_overhead_estimate_percent"] = (round(100 * decision.instr_overhead, 2)
                                                    if decision.instr_overhead is not None else None)
    if len(stages) > 1:
        second = stages[1]
        out["second_stage"] = dict(_stage_figures(program, mem, second, model_macs), config=second.config.text(),
                                   first_step=second.start, why=decision.second_reason,
                                   stops_because=second.stop_reason)
    return out


def _stage_figures(program, mem, pp, model_macs: int) -> dict:
    """The figures of one patch stage."""
    steps = [k for ks in pp.patch_steps for k in ks]
    patch_buffers = {b.name for b in mem.buffers if "@" in b.name or b.name.startswith("__scratch_")}
    size = {b.name: b.size for b in mem.buffers}
    per_patch = max((sum(size[b] for b in mem.live_tensors[k] if b in patch_buffers) for k in steps), default=0)
    windows = _window_bytes(program) if pp.streamed else []
    return {
        "stage_steps": pp.config.split,
        "stage_layers": pp.stage_steps,
        "grid": [pp.config.rows, pp.config.cols],
        "tiles": [[t.r0, t.r1, t.c0, t.c1] for t in pp.tiles],
        "halo": pp.halo,
        "stage_input": pp.stage_input,
        # --stream-input: the input is read window by window through the callback, not in the arena
        "stream_input": bool(pp.streamed),
        "stage_input_bytes": 0 if pp.streamed else int(program.tensors[pp.stage_input].size),
        "streamed_input_bytes": int(program.tensors[pp.stage_input].size) if pp.streamed else 0,
        "stream_window_bytes_max": int(max(windows, default=0)),
        "stream_bytes_read": int(sum(windows)),
        "stage_output": pp.stage_output,
        "stage_output_shape": list(program.tensors[pp.stage_output].shape),
        "stage_output_bytes": int(program.tensors[pp.stage_output].size),
        "per_patch_peak_bytes": int(per_patch),
        # halo reuse: the rows kept between a patch and the one below it (all maps at once)
        "halo_buffers_peak_bytes": int(max((sum(size[b] for b in mem.live_tensors[k] if b.endswith("#halo"))
                                            for k in steps), default=0)),
        "stage_peak_live_bytes": int(max((mem.live_bytes[k] for k in steps), default=0)),
        "stage_macs_layer_by_layer": int(pp.macs_layer_by_layer),
        "stage_macs_patched": int(pp.macs_patched),
        "mac_overhead_percent": round(100 * (pp.macs_patched - pp.macs_layer_by_layer) / model_macs, 2),
        "stage_mac_overhead_percent": round(100 * pp.mac_overhead, 2),
        # the search's Cortex-M4 cost model (schedule/search.py, calibrated on QEMU counts): whole plan
        "instruction_overhead_estimate_percent": None,
        "patch_steps": [[int(k) for k in ks] for ks in pp.patch_steps],
    }


COPY_OPS = ("Crop", "PatchOutput", "StreamRows")  # the data movement a patch stage adds


def add_patch_instructions(report: dict) -> None:
    """Where the Cortex-M build ran under QEMU: instructions of the patch stage, and how many of
    them the stage's own copies take (crops, tile scatter, input windows): the part of the
    instruction overhead that is not recomputed halo MACs."""
    p = report.get("patch")
    if not p or not p.get("patch_steps") or not report.get("instructions"):
        return
    layers = report["layers"]
    steps = [k for ks in p["patch_steps"] + p.get("second_stage", {}).get("patch_steps", []) for k in ks]
    stage = sum(layers[k].get("instructions", 0) for k in steps)
    copies = sum(layers[k].get("instructions", 0) for k in steps if layers[k]["op"] in COPY_OPS)
    total = report["instructions"]["per_inference"]
    p["instructions"] = {"stage": int(stage), "stage_copies": int(copies),
                         "stage_share_percent": round(100 * stage / total, 2) if total else None,
                         "copies_share_percent": round(100 * copies / total, 2) if total else None}


def _window_bytes(program) -> list[int]:
    """Bytes of each window the callback delivers in one run (none without --stream-input)."""
    from .patches import STREAM_KERNEL

    return [program.tensors[s.outputs[0]].size for s in program.steps if s.kernel == STREAM_KERNEL]


def patch_markdown(r: dict) -> list[str]:
    p = r.get("patch")
    if not p:
        return []
    lines = ["", "## Patch-based inference", "",
             f"Mode `{p['mode']}`: {p['reason']}.", "",
             f"Layer by layer the arena would be {p['layer_by_layer_arena_bytes']:,} B; this plan: "
             f"{p['arena_bytes']:,} B."]
    if p.get("chosen"):
        lines += ["", "| figure | value |", "|---|---|",
                  f"| patch stage | first {p['stage_steps']} steps, {len(p['tiles'])} patches "
                  f"({p['grid'][0]} x {p['grid'][1]}) |",
                  f"| halo strategy | {p['halo']}" + (f" (halo buffers at most {p['halo_buffers_peak_bytes']:,} B "
                                                      f"live)" if p['halo'] == "reuse" else "") + " |",
                  f"| stage output buffer | {'x'.join(str(d) for d in p['stage_output_shape'])} = "
                  f"{p['stage_output_bytes']:,} B |",
                  (f"| stage input | streamed (--stream-input): {p['streamed_input_bytes']:,} B never in SRAM, "
                   f"read in windows of at most {p['stream_window_bytes_max']:,} B ({p['stream_bytes_read']:,} B "
                   f"read per run) |" if p.get("stream_input") else
                   f"| stage input buffer | {p['stage_input_bytes']:,} B |"),
                  f"| per-patch peak (patch tensors and scratch) | {p['per_patch_peak_bytes']:,} B |",
                  f"| peak live bytes in the stage | {p['stage_peak_live_bytes']:,} B |",
                  f"| extra MACs (whole model{', both stages' if p.get('second_stage') else ''}) | "
                  f"{p['mac_overhead_percent']:.2f} % |",
                  f"| extra MACs ({'first ' if p.get('second_stage') else ''}stage) | "
                  f"{p['stage_mac_overhead_percent']:.2f} % |"]
        if p.get("instruction_overhead_estimate_percent") is not None:
            lines.append(f"| extra Cortex-M4 instructions (the search's estimate) | "
                         f"{p['instruction_overhead_estimate_percent']:.2f} % |")
        ins = p.get("instructions")
        if ins:
            lines += [f"| instructions in the stage (QEMU) | {ins['stage']:,} ({ins['stage_share_percent']:.2f} % of "
                      f"the inference) |",
                      f"| of which the stage's copies (crops, tiles, input windows) | {ins['stage_copies']:,} "
                      f"({ins['copies_share_percent']:.2f} %) |"]
    two = p.get("second_stage")
    if two:
        lines += ["", f"A second patch stage `{two['config']}` runs steps {two['first_step']}.."
                      f"{two['stage_steps'] - 1} over the first stage's output buffer: {two['why']}.", "",
                  "| figure (second stage) | value |", "|---|---|",
                  f"| grid | {len(two['tiles'])} patches ({two['grid'][0]} x {two['grid'][1]}) |",
                  f"| halo strategy | {two['halo']}" + (f" (halo buffers at most {two['halo_buffers_peak_bytes']:,} "
                                                        f"B live)" if two['halo'] == "reuse" else "") + " |",
                  f"| stage input buffer | {two['stage_input_bytes']:,} B |",
                  f"| stage output buffer | {'x'.join(str(d) for d in two['stage_output_shape'])} = "
                  f"{two['stage_output_bytes']:,} B |",
                  f"| per-patch peak (patch tensors and scratch) | {two['per_patch_peak_bytes']:,} B |",
                  f"| peak live bytes in the stage | {two['stage_peak_live_bytes']:,} B |",
                  f"| extra MACs (whole model) | {two['mac_overhead_percent']:.2f} % |",
                  f"| extra MACs (stage) | {two['stage_mac_overhead_percent']:.2f} % |",
                  "", f"The second stage cannot go further: {two['stops_because']}."]
    lines += ["", f"The {'first ' if two else ''}stage cannot go further: {p['stage_stops_because']}."]
    return lines
