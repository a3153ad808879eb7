"""Patch-based inference (MCUNetV2): the first steps of a Program run one spatial patch at a time.

The *patch stage* is a prefix of the (ordered) steps made only of spatially local steps
(receptive_field.classify) that reads one full feature map (the stage input, a model input) and
hands exactly one feature map (the stage output) to the rest of the network. The stage output is
cut into a rows x cols grid of tiles (uneven when the size does not divide); for every tile the
receptive-field analysis gives the region of every stage tensor that tile needs (halos included,
clipped to the map), and the stage steps are emitted once per patch on those sub-tensors:

* the same C kernels with per-patch params structs (const, in flash): geometry of the sub-map and
  padding only where the patch touches the image border (receptive_field.Window.local_pad), so
  border patches pad exactly like the layer-by-layer network (with the input zero point) and
  interior halos read real neighbour values -- bit for bit the layer-by-layer result;
* a region a consumer needs that is not a row range of what is stored (a residual skip whose map
  carries a larger halo than the add needs, a patch that does not start at the left border) is
  first cropped with tc_slice_s8; a row range is read in place through an argument byte offset;
* the patch's tile of the stage output is copied into the full stage-output buffer with
  tc_concat_s8_part (rows of the tile at their place); for full-width tiles the producer writes
  there directly (the planner's copy elision).

With a streamed input (--stream-input) the stage input never sits in the arena: every patch
starts with a StreamRows step that asks the caller's row callback for exactly the window of the
input it needs (need[stage input], halo included) and writes it into a patch input buffer; the
stage's first steps read that buffer like any other patch tensor.

Halos (PatchConfig.halo):

* "recompute": every patch computes every row and column it needs (MCUNetV2's strategy), at the
  cost of the overlapping MACs;
* "reuse" (StreamNet-style, rows): the patches run column band by column band, top to bottom;
  a patch computes only the rows of each intermediate map that the patch above did not, and gets
  the overlapping rows from a small halo buffer that the patch above filled (a crop right after
  its last reader there) and that is copied to the top of its own buffer before the new rows are
  written below it (the kernel's output at a byte offset). Columns are still recomputed (a grid
  of R x 1 bands has no extra MACs at all). Each patch buffer holds the same rows as with
  recompute, so the peak is that of recompute plus the halo buffers, with fewer MACs and two
  row copies per map and patch.

A second stage (PatchConfig.then, `--patch 13x7x7:reuse+21x3x2:reuse`) runs the steps from the
first stage's end to a later split the same way, on its own grid, reading the first stage's output
buffer whole (stage_limit with a start step): where the layers after a first stage set the peak
(MobileNetV2's 28x28 blocks once the input is streamed), they run patch by patch too, without
the deep first stage whose halos would cost many extra MACs. The result is an
ordinary Program: the golden executor, the host C and the Cortex-M build run the same unrolled
steps, and the memory planner places the per-patch tensors and both stages in one arena.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..kernels import lookup
from ..ops.concat import UNIT_MULTIPLIER, UNIT_SHIFT, ConcatPartParams, concat_s8_part
from ..ops.eltwise import broadcast_dims
from ..ops.slicing import make_slice_params, slice_s8
from ..program import Arg, Program, Step, TensorInfo
from .receptive_field import BINARY_KERNELS, TERNARY_KERNEL_PREFIX, LocalOp, Region, classify, image_hwc


@dataclass(frozen=True)
class PatchConfig:
    """The patch stage is the first `split` steps; its output is cut into rows x cols tiles."""

    split: int
    rows: int
    cols: int
    halo: str = "recompute"  # or "reuse" (see the module docstring)
    # a second stage: steps[split:then.split] on its own grid, reading this stage's output buffer
    # whole (split counted in steps of the layer-by-layer program, like this one's)
    then: "PatchConfig | None" = None

    def text(self) -> str:
        own = f"{self.split}x{self.rows}x{self.cols}" + ("" if self.halo == "recompute" else f":{self.halo}")
        return own + (f"+{self.then.text()}" if self.then is not None else "")


STREAM_KERNEL = "read_rows"  # not a runtime kernel: the generated C calls the caller's row callback


@dataclass(frozen=True)
class StreamWindow:
    """The window of a streamed input one patch reads: rows [row0, row0 + rows) and columns
    [col0, col0 + cols), every channel, written NHWC and contiguous to the patch input buffer.
    No C struct: the generated C passes the four numbers to the callback."""

    row0: int
    rows: int
    col0: int
    cols: int


@dataclass
class StageLimit:
    """What the analysis found about where a patch stage can end."""

    splits: dict[int, str]  # valid split -> its stage-output tensor
    stage_input: str | None
    stop_step: int  # the first step that cannot join any stage (len(steps) when none)
    stop_reason: str


@dataclass
class PatchPlan:
    """What a patched Program records about its stage (for the report and the tests)."""

    config: PatchConfig
    stage_input: str
    stage_output: str
    stage_steps: list[str]  # names of the original stage steps
    tiles: list[Region]  # per patch, row-major
    patch_steps: list[list[int]] = field(default_factory=list)  # indices of the steps of each patch
    macs_layer_by_layer: int = 0  # MACs of the stage run once on whole maps
    macs_patched: int = 0
    stop_reason: str = ""
    halo: str = "recompute"
    streamed: bool = False  # the stage input is read through the row callback (--stream-input)
    start: int = 0  # index of the stage's first step in the original program (0: the first stage)
    # a second stage (steps of the program after this one, over a full map this stage or a later
    # layer made), planned, run and reported like this one; its indices count the unrolled steps
    next_stage: "PatchPlan | None" = None

    @property
    def mac_overhead(self) -> float:
        return (self.macs_patched - self.macs_layer_by_layer) / self.macs_layer_by_layer \
            if self.macs_layer_by_layer else 0.0


# ---- where can a stage end ----------------------------------------------------------------------
def stage_limit(program: Program, start: int = 0) -> StageLimit:
    """The valid split points of a stage that starts at step `start` (0: the first stage, which
    reads a graph input; later: a second stage, which reads one full map made before it, such
    as the output buffer of a first stage), in the program's current order, and why no stage
    goes further. Splits are step indices of `program` (the stage is steps[start:split])."""
    produced: set[str] = set()
    stage_input = None
    splits: dict[int, str] = {}
    readers_after = _readers_from(program)
    made_before = {t for s in program.steps[:start] for t in s.outputs}
    for k, step in enumerate(program.steps[start:], start=start):
        op = classify(program, step)
        if isinstance(op, str):
            return StageLimit(splits, stage_input, k, f"step {k} ({_label(step)}): {op}")
        for t in (step.inputs[i] for i in op.spatial_inputs):
            if t in produced:
                continue
            source = made_before if start else program.inputs
            if stage_input is None and t in source and t not in program.views.values():
                stage_input = t
            elif t != stage_input:
                return StageLimit(splits, stage_input, k, f"step {k} ({_label(step)}) reads a second feature map "
                                                          f"from outside the stage ({t!r})")
        produced.update(step.outputs)
        crossing = {t for t in produced if readers_after[k + 1].get(t) or t in program.outputs}
        if len(crossing) == 1:
            out = next(iter(crossing))
            if not any(out in s.outputs for s in program.steps[k + 1:]):
                splits[k + 1] = out
    return StageLimit(splits, stage_input, len(program.steps), "the whole network is spatially local")


def _readers_from(program: Program) -> list[dict[str, bool]]:
    """readers[k][t]: some step >= k reads tensor t (or its view)."""
    out: list[dict[str, bool]] = [dict() for _ in range(len(program.steps) + 1)]
    acc: dict[str, bool] = {}
    for k in range(len(program.steps) - 1, -1, -1):
        for t in program.steps[k].inputs + [a.ref for a in program.steps[k].args if a.kind == "update"]:
            acc[program.root(t)] = True
        out[k] = dict(acc)
    return out


def _label(step: Step) -> str:
    return f"{step.op} {step.onnx_name or step.node!r}"


# ---- the grid and the regions ---------------------------------------------------------------------
def grid_tiles(height: int, width: int, rows: int, cols: int) -> list[Region]:
    """rows x cols tiles covering a height x width map, row-major; sizes differ by at most one
    (the first tiles take the extra row or column)."""
    def cuts(n, parts):
        base, extra = divmod(n, parts)
        edges = [0]
        for i in range(parts):
            edges.append(edges[-1] + base + (1 if i < extra else 0))
        return edges

    r, c = cuts(height, rows), cuts(width, cols)
    return [Region(r[i], r[i + 1], c[j], c[j + 1]) for i in range(rows) for j in range(cols)]


def needed_regions(program: Program, steps: list[Step], ops: list[LocalOp], output: str,
                   tile: Region) -> dict[str, Region]:
    """Region of every stage tensor (and of the stage input) that one tile of the output needs:
    the bounding box of what its consumers read, walking the stage backwards."""
    need = {output: tile}
    for step, op in zip(reversed(steps), reversed(ops)):
        out = step.outputs[0]
        if out not in need:
            continue  # this patch does not need the step
        wanted = op.input_region(need[out])
        for i in op.spatial_inputs:
            t = step.inputs[i]
            need[t] = need[t].union(wanted) if t in need else wanted
    return need


def computed_regions(need: dict[str, Region], above: dict[str, Region] | None, stage_input: str) -> dict[str, Region]:
    """Region of each stage tensor a patch computes: all it needs, or with halo reuse (`above`:
    the needs of the patch above) only the rows below those the patch above computed (needs grow
    monotonically down a column band, so the rest of what it needs is the halo the patch above
    left). May be empty (nothing new in a map)."""
    if above is None:
        return dict(need)
    out = {}
    for t, r in need.items():
        if t == stage_input or t not in above:
            out[t] = r
            continue
        out[t] = Region(min(max(r.r0, above[t].r1), r.r1), r.r1, r.c0, r.c1)
    return out


def stage_macs(steps: list[Step], program: Program, need: dict[str, Region]) -> int:
    """MACs of one patch: each step's MACs scale with the share of its output map computed."""
    total = 0
    for step in steps:
        out = step.outputs[0]
        if out in need:
            h, w, _ = image_hwc(program, out)
            total += step.macs * need[out].area // (h * w)
    return total


# ---- building the patched program -----------------------------------------------------------------
class _Builder:
    def __init__(self, program: Program, config: PatchConfig, limit: StageLimit, stream: bool = False,
                 start: int = 0):
        self.src = program
        self.stream = stream
        self.config = config
        self.start = start
        self.steps = program.steps[start:config.split]
        self.ops = [classify(program, s) for s in self.steps]
        self.stage_input = limit.stage_input
        self.stage_output = limit.splits[config.split]
        self.internal = {t for s in self.steps for t in s.outputs} - {self.stage_output}
        self.out = Program(program.name, dict(program.tensors), program.blobs, list(program.steps[:start]),
                           dict(program.views), list(program.inputs), list(program.outputs), program.quant_scheme)
        for t in self.internal:
            del self.out.tensors[t]
        self.crops = 0
        self.out.streamed_input = self.stage_input if stream else program.streamed_input
        self.earlier = program.patch  # the first stage, when this one is the second

    # regions stored per patch: tensor -> (name of the patch tensor, region it holds)
    def run(self) -> Program:
        h, w, c = image_hwc(self.src, self.stage_output)
        rows, cols = self.config.rows, self.config.cols
        tiles = grid_tiles(h, w, rows, cols)
        reuse = self.config.halo == "reuse"
        plan = PatchPlan(self.config, self.stage_input, self.stage_output, [s.name for s in self.steps], tiles,
                         streamed=self.stream, halo=self.config.halo)
        hi, wi, _ = image_hwc(self.src, self.stage_input)
        needs = [needed_regions(self.src, self.steps, self.ops, self.stage_output, t) for t in tiles]
        # reuse: down each column band, so that a patch's halo rows come from the patch just above
        order = sorted(range(len(tiles)), key=lambda n: (n % cols, n // cols)) if reuse else range(len(tiles))
        halos: dict[str, tuple[str, Region]] = {}  # tensor -> halo buffer left by the patch above
        for k, n in enumerate(order):
            i, j = divmod(n, cols)
            tag = f"p{i}_{j}" if not self.start else f"s2p{i}_{j}"  # names unique over both stages
            need = needs[n]
            above = needs[n - cols] if reuse and i > 0 else None
            below = needs[n + cols] if reuse and i + 1 < rows else None
            computed = computed_regions(need, above, self.stage_input)
            first = len(self.out.steps)
            if self.stream:
                stored = {self.stage_input: self._stream_window(need[self.stage_input], tag)}
            else:
                stored = {self.stage_input: (self.stage_input, Region(0, hi, 0, wi))}
            for step, op in zip(self.steps, self.ops):
                out = step.outputs[0]
                if out not in need:
                    continue
                self._emit(step, op, need, stored, tag, first_patch=k == 0, computed=computed[out],
                           halo=halos.pop(out, None))
            self._scatter(stored, tiles[n], tag, first=k == 0, width=w, channels=c)
            halos = self._save_halos(stored, below, first, tag) if below is not None else {}
            plan.patch_steps.append(list(range(first, len(self.out.steps))))
            plan.macs_patched += stage_macs(self.steps, self.src, computed)
        plan.macs_layer_by_layer = sum(s.macs for s in self.steps)
        self.out.steps.extend(self.src.steps[self.config.split:])
        plan.start = self.start
        if self.earlier is not None:  # this is the second stage: the first stays the program's plan
            self.out.patch = dataclasses.replace(self.earlier, next_stage=plan)
        else:
            self.out.patch = plan
        return self.out

    def _patch_tensor(self, t: str, region: Region, tag: str) -> str:
        info = self.src.tensors[t]
        name = f"{t}@{tag}"
        shape = (1, region.height, region.width, info.shape[3])
        self.out.tensors[name] = TensorInfo(name, shape, info.quant, info.perm,
                                            tuple(shape[i] for i in np.argsort(info.perm)) if info.perm else shape)
        return name

    def _stream_window(self, region: Region, tag: str) -> tuple[str, Region]:
        """A StreamRows step: the callback writes `region` of the stage input into a patch buffer."""
        name = self._patch_tensor(self.stage_input, region, tag)
        w = StreamWindow(region.r0, region.height, region.c0, region.width)

        def golden(v, r=region):
            return np.ascontiguousarray(np.asarray(v)[:, r.r0:r.r1, r.c0:r.c1, :])

        self.out.steps.append(Step(f"stream_{tag}", "StreamRows", "", f"rows of {self.stage_input} for patch {tag}",
                                   STREAM_KERNEL, w, [Arg("stream", self.stage_input), Arg("out", name)], golden,
                                   note=f"patch {tag} input rows {region.r0}..{region.r1 - 1}, "
                                        f"columns {region.c0}..{region.c1 - 1}"))
        return name, region

    def _read(self, t: str, want: Region, stored: dict, tag: str, window: bool) -> tuple[str, int, Region]:
        """(tensor, byte offset, region the kernel sees) to read region `want` of stage tensor t.

        A window kernel may see extra columns on the right and extra rows below (it never reads
        them); an element-wise one must see exactly `want`, as one contiguous block."""
        name, have = stored[t]
        c = self.src.tensors[t].shape[3]
        same_cols = have.c0 == want.c0 and (window or have.c1 == want.c1)
        if have.contains(want) and same_cols:
            seen = Region(want.r0, want.r1, have.c0, have.c1)
            return name, (want.r0 - have.r0) * have.width * c, seen
        self.crops += 1
        crop = f"{t}@{tag}#crop{self.crops}"
        info = self.src.tensors[t]
        shape = (1, want.height, want.width, c)
        self.out.tensors[crop] = TensorInfo(crop, shape, info.quant, info.perm, shape)
        p = make_slice_params((1, have.height, have.width, c), (0, want.r0 - have.r0, want.c0 - have.c0, 0),
                                (1, 1, 1, 1), shape)
        self.out.steps.append(Step(f"crop{self.crops}_{tag}", "Crop", "", f"crop of {t} for patch {tag}",
                                   "tc_slice_s8", p, [Arg("in", name), Arg("out", crop)],
                                   lambda v, p=p: slice_s8(p, v), note=f"patch {tag} crop"))
        return crop, 0, want

    def _emit(self, step: Step, op: LocalOp, need: dict, stored: dict, tag: str, first_patch: bool,
              computed: Region | None = None, halo: tuple[str, Region] | None = None) -> None:
        """The step on the patch: its output buffer holds need[out]; the kernel computes `computed`
        (the rows below `halo`, which is first copied to the top of the buffer; all of need[out]
        without halo reuse)."""
        out_t = step.outputs[0]
        held = need[out_t]
        out_r = computed if computed is not None else held
        at = 0
        if halo is not None or out_r != held:
            if out_t in stored or step.kernel == "tc_concat_s8_part":
                raise ValueError("halo reuse does not support concatenation inside the patch stage")
            out_name = self._patch_tensor(out_t, held, tag)
            stored[out_t] = (out_name, held)
            c = self.src.tensors[out_t].shape[3]
            at = (out_r.r0 - held.r0) * held.width * c
            if halo is not None:
                self._restore_halo(halo, out_name, held, tag)
            elif out_r.r0 > held.r0:
                raise AssertionError(f"patch {tag}: rows {held.r0}..{out_r.r0 - 1} of {out_t} have no halo to come from")
            if out_r.is_empty():
                return
        window = op.rows is not None
        want = op.input_region(out_r)
        reads: dict[str, tuple[str, int, Region]] = {}
        for i in op.spatial_inputs:
            t = step.inputs[i]
            reads[t] = self._read(t, want, stored, tag, window)
        if at or halo is not None:
            pass  # the buffer was made above; the kernel writes below the halo rows
        elif out_t in stored:  # a later concat part: completes the patch tensor made by part 0
            out_name = stored[out_t][0]
        else:
            out_name = self._patch_tensor(out_t, out_r, tag)
            stored[out_t] = (out_name, out_r)
        seen = next(iter(reads.values()))[2]
        params = self._params(step, op, out_r, seen)
        shared = any(reads[t][1] != 0 or stored[t][0] == t for t in reads)  # reads a full map or at an offset

        below_halo = at > 0 or halo is not None

        def map_arg(a: Arg) -> Arg:
            if a.kind == "in" and a.ref in reads:
                return Arg("in", reads[a.ref][0], at=reads[a.ref][1])
            if a.kind in ("out", "update"):
                return Arg("update", out_name, at=at) if below_halo else Arg(a.kind, out_name)
            if a.kind == "scratch" and step.kernel.startswith(TERNARY_KERNEL_PREFIX):
                return a  # tables or expanded weights: sized by the channels, not the pixels
            if a.kind == "scratch":
                return Arg("scratch", "", seen.area)  # depthwise in place: one input channel plane
            return a

        args = [map_arg(a) for a in step.args]
        extra = self._licences(step, params, args, shared or below_halo, map_arg)
        frac_macs = step.macs * out_r.area // (self.src.tensors[out_t].shape[1] * self.src.tensors[out_t].shape[2])
        if below_halo:
            golden = self._golden_below(step, params, args, out_r)
        else:
            golden = self._golden(step, params, args)
        self.out.steps.append(Step(f"{step.name}_{tag}", step.op, step.node, step.onnx_name, step.kernel, params,
                                   args, golden, frac_macs, note=(f"patch {tag}" + (f", {step.note}" if step.note else "")),
                                   param_count=step.param_count if first_patch else 0, **extra))

    def _params(self, step: Step, op: LocalOp, out_r: Region, seen: Region):
        p = step.params
        k = step.kernel
        if op.rows is not None:
            return dataclasses.replace(p, in_h=seen.height, in_w=seen.width, out_h=out_r.height, out_w=out_r.width,
                                       pad_top=op.rows.local_pad(out_r.r0, seen.r0),
                                       pad_left=op.cols.local_pad(out_r.c0, seen.c0))
        c_out = self.src.tensors[step.outputs[0]].shape[3]
        if k == "tc_lut_s8":
            return dataclasses.replace(p, size=out_r.area * c_out)
        if k == "tc_concat_s8_part":
            return dataclasses.replace(p, outer=out_r.area)
        if k.startswith(TERNARY_KERNEL_PREFIX):
            return dataclasses.replace(p, pixels=out_r.area)
        from .receptive_field import binary_operand_shapes

        full = self.src.tensors[step.outputs[0]].shape
        local = (1, out_r.height, out_r.width, c_out)
        shapes = [local if tuple(sh) == tuple(full) else sh for sh in binary_operand_shapes(self.src, step, full)]
        d1, d2, do = broadcast_dims(shapes[0], shapes[1], local)
        return dataclasses.replace(p, in1_dims=d1, in2_dims=d2, out_dims=do)

    def _licences(self, step: Step, params, args: list[Arg], shared: bool, map_arg) -> dict:
        """In-place and row-overlap permissions, recomputed for the patch geometry. A step that
        reads a full map or reads at an offset gets none: its input is not its own."""
        if shared:
            return {}
        k = step.kernel
        if k in ("tc_conv2d_s8", "tc_dwconv2d_s8"):
            from ..ops.conv import conv2d_overlap_licence, dwconv2d_overlap_licence

            p = params
            extra = conv2d_overlap_licence(p) if k == "tc_conv2d_s8" else dwconv2d_overlap_licence(p)
            if step.inplace_kernel and p.out_c == p.in_c and p.out_h * p.out_w <= p.in_h * p.in_w \
                    and p.in_h * p.in_w < p.out_h * p.out_w * p.out_c:
                extra.update(inplace_inputs=step.inplace_inputs, inplace_kernel=step.inplace_kernel,
                             inplace_args=[map_arg(a) for a in step.inplace_args])
            return extra
        if k in BINARY_KERNELS:
            out_size = self.out.tensors[args[-1].ref].size
            same = tuple(i for i, t in enumerate(a.ref for a in args if a.kind == "in")
                         if self.out.tensors[t].size == out_size)
            return dict(inplace_inputs=same)
        if k == "tc_lut_s8":
            return dict(inplace_inputs=step.inplace_inputs)
        if k.startswith(TERNARY_KERNEL_PREFIX):  # as lowered (ops/conv.py), on the patch's pixels
            from ..ops.conv import Conv2dParams, conv2d_overlap_licence, pw_ternary_overlap_delta

            p = params
            if k != "tc_pw_ternary_s8_expand":
                return dict(overlap_delta=pw_ternary_overlap_delta(p))
            return conv2d_overlap_licence(Conv2dParams(1, p.pixels, p.in_c, 1, p.pixels, p.out_c, 1, 1, 1, 1, 1, 1,
                                                       0, 0, 1, 0, p.out_zp, p.act_min, p.act_max))
        return {}

    def _golden_below(self, step: Step, params, args: list[Arg], region: Region):
        """The mirror of a step that writes its rows below the halo rows of its buffer: the kernel's
        result (for `region`) placed at the output's byte offset in the current buffer."""
        k_out = next(i for i, a in enumerate(args) if a.kind == "update")
        plain = [Arg("out", a.ref) if i == k_out else a for i, a in enumerate(args)]
        c = self.src.tensors[step.outputs[0]].shape[3]
        base = self._golden(step, params, plain, out_shape=(1, region.height, region.width, c))
        values = [i for i, a in enumerate(args) if a.kind in ("in", "const", "update")]
        at = args[k_out].at
        pos = values.index(k_out)

        def run(*vals):
            new = np.asarray(base(*(vals[:pos] + vals[pos + 1:]))).reshape(-1)
            buf = np.array(vals[pos], dtype=np.int8).reshape(-1).copy()
            buf[at:at + new.size] = new
            return buf
        return run

    def _restore_halo(self, halo: tuple[str, Region], out_name: str, held: Region, tag: str) -> None:
        """Copy the halo rows the patch above left to the top of this patch's buffer (their place:
        the buffer starts at the first halo row)."""
        src, region = halo
        assert region.r0 == held.r0 and (region.c0, region.c1) == (held.c0, held.c1), (region, held)
        size = self.out.tensors[src].size
        total = self.out.tensors[out_name].size
        p = ConcatPartParams(outer=1, in_inner=size, out_inner=size, out_offset=0, in_zp=0,
                             multiplier=UNIT_MULTIPLIER, shift=UNIT_SHIFT, out_zp=0)

        def golden(v):
            o = np.zeros(total, np.int8)
            o[:size] = concat_s8_part(p, np.asarray(v).reshape(-1), np.zeros(size, np.int8))
            return o
        self.out.steps.append(Step(f"halo_in_{out_name.split('@')[-1]}_{len(self.out.steps)}", "HaloRestore", "",
                                   f"halo rows of {src}", "tc_concat_s8_part", p,
                                   [Arg("in", src), Arg("out", out_name)], golden, note=f"patch {tag} halo rows in"))

    def _save_halos(self, stored: dict, below: dict[str, Region], first: int, tag: str) -> dict:
        """After the last reader of each map in this patch: crop the rows the patch below needs
        and this one holds into a small halo buffer (tc_slice_s8). Returns tensor -> (buffer, rows)."""
        halos = {}
        inserts = []
        for t, (name, held) in stored.items():
            if t in (self.stage_input, self.stage_output) or t not in below:
                continue
            want = Region(below[t].r0, held.r1, held.c0, held.c1)
            if want.is_empty() or want.r0 < held.r0:
                continue
            # after its last reader; a map nothing reads in this patch (no new rows below it) was
            # only filled from the halo above: passed on right after that
            touching = [k for k in range(first, len(self.out.steps))
                        if name in self.out.steps[k].inputs or name in self.out.steps[k].outputs]
            last = max(touching, default=None)
            if last is None:
                continue
            c = self.src.tensors[t].shape[3]
            halo = f"{t}@{tag}#halo"
            shape = (1, want.height, want.width, c)
            info = self.src.tensors[t]
            self.out.tensors[halo] = TensorInfo(halo, shape, info.quant, info.perm, shape)
            p = make_slice_params((1, held.height, held.width, c), (0, want.r0 - held.r0, 0, 0), (1, 1, 1, 1), shape)
            step = Step(f"halo_out{len(inserts)}_{tag}", "HaloSave", "", f"halo rows of {t} for the patch below",
                        "tc_slice_s8", p, [Arg("in", name), Arg("out", halo)], lambda v, p=p: slice_s8(p, v),
                        note=f"patch {tag} halo rows out")
            inserts.append((last + 1, step))
            halos[t] = (halo, want)
        for at, step in sorted(inserts, key=lambda e: -e[0]):
            self.out.steps.insert(at, step)
        return halos

    def _golden(self, step: Step, params, args: list[Arg], out_shape=None):
        """The step's numpy mirror on the patch. An input read at a byte offset is cut from the
        stored array the executor passes (the whole buffer), as the C pointer arithmetic does."""
        k = step.kernel
        out_info = self.out.tensors[next(a.ref for a in args if a.kind in ("out", "update"))]
        if out_shape is not None:
            out_info = TensorInfo("", tuple(out_shape), out_info.quant)
        if k in ("tc_conv2d_s8", "tc_dwconv2d_s8"):
            in_shape = (params.in_h, params.in_w, params.in_c)
        elif k in ("tc_maxpool_s8", "tc_avgpool_s8"):
            in_shape = (params.in_h, params.in_w, params.channels)
        elif k == "tc_concat_s8_part":
            in_shape = (params.outer * params.in_inner,)
        elif k.startswith(TERNARY_KERNEL_PREFIX):
            in_shape = (params.pixels * params.in_c,)
        else:
            in_shape = out_info.shape
        n_in = int(np.prod(in_shape))
        value_args = [a for a in args if a.kind in ("in", "const", "update")]

        def cut(a: Arg, v):
            if a.kind != "in":
                return v
            return np.asarray(v).reshape(-1)[a.at: a.at + n_in].reshape(in_shape)

        if k == "tc_concat_s8_part":
            def run_part(*vals):
                cur = np.array(vals[1], dtype=np.int8).reshape(-1) if len(vals) > 1 else np.zeros(out_info.size, np.int8)
                return concat_s8_part(params, cut(value_args[0], vals[0]), cur)
            return run_part
        fn = lookup(k).golden

        def run(*vals):
            return fn(params, *[cut(a, v) for a, v in zip(value_args, vals)])
        return run

    def _scatter(self, stored: dict, tile: Region, tag: str, first: bool, width: int, channels: int) -> None:
        """Copy the patch's tile of the stage output into the full stage-output buffer."""
        src, at, seen = self._read(self.stage_output, tile, stored, tag, window=False)
        out = self.stage_output
        p = ConcatPartParams(outer=tile.height, in_inner=tile.width * channels, out_inner=width * channels,
                               out_offset=tile.c0 * channels, in_zp=0, multiplier=UNIT_MULTIPLIER,
                               shift=UNIT_SHIFT, out_zp=0)
        row_at = tile.r0 * width * channels
        full = self.src.tensors[out]
        size = tile.area * channels

        def golden(v, cur=None):
            """tc_concat_s8_part on the rows of the tile: the C gets the output address + row_at."""
            o = np.zeros(full.size, np.int8) if cur is None else np.array(cur, dtype=np.int8).reshape(-1).copy()
            block = np.asarray(v).reshape(-1)[at: at + size]
            span = slice(row_at, row_at + p.outer * p.out_inner)
            o[span] = concat_s8_part(p, block, o[span].copy())
            return o

        whole_rows = tile.width == width and stored[out][1] == tile and src == stored[out][0] and row_at % 16 == 0
        self.out.steps.append(Step(
            f"scatter_{tag}", "PatchOutput", "", f"tile of {out} for patch {tag}", "tc_concat_s8_part", p,
            [Arg("in", src, at=at), Arg("out" if first else "update", out, at=row_at)],
            golden if first else (lambda v, cur: golden(v, cur)), note=f"patch {tag} tile",
            copy_into=(out, row_at) if whole_rows else None))


def patch_stages(plan: PatchPlan | None) -> list[PatchPlan]:
    """The stages of a program's patch plan, in order (none, one or two)."""
    out = []
    while plan is not None:
        out.append(plan)
        plan = plan.next_stage
    return out


def apply_patches(program: Program, config: PatchConfig, limit: StageLimit | None = None,
                  stream: bool = False, start: int = 0) -> Program:
    """A new Program with steps[start:config.split] run patch by patch (program is unchanged);
    `stream`: the stage input is read through the row callback (see stream_input_problem).
    Raises ValueError when the split is not a valid stage end or the grid exceeds the map."""
    if config.then is not None:
        return _two_stages(program, config, limit, stream)
    limit = limit or stage_limit(program, start)
    if stream:
        problem = stream_input_problem(program, limit, config.split)
        if problem:
            raise ValueError(problem)
    if config.split not in limit.splits:
        valid = ", ".join(str(k) for k in sorted(limit.splits)) or "none"
        raise ValueError(f"--patch {config.text()}: a patch stage cannot end after step {config.split} "
                         f"(valid ends: {valid}; {limit.stop_reason})")
    h, w, _ = image_hwc(program, limit.splits[config.split])
    if not (1 <= config.rows <= h and 1 <= config.cols <= w):
        raise ValueError(f"--patch {config.text()}: the stage output is {h}x{w}, which a {config.rows}x{config.cols} "
                         f"grid cannot cut")
    return _Builder(program, config, limit, stream, start).run()


def _two_stages(program: Program, config: PatchConfig, limit: StageLimit | None, stream: bool) -> Program:
    """The first stage (config), then the second (config.then) from where the first ends, over
    the first's output buffer. The program's plan is the first stage's, with the whole config;
    the second's is its next_stage, with its split and start counted in steps of `program`."""
    first, second = dataclasses.replace(config, then=None), config.then
    if second.then is not None:
        raise ValueError(f"--patch {config.text()}: at most two patch stages")
    if second.split <= first.split:
        raise ValueError(f"--patch {config.text()}: the second stage must end after the first")
    patched = apply_patches(program, first, limit, stream)
    shift = len(patched.steps) - len(program.steps)  # steps the first stage added
    moved = dataclasses.replace(second, split=second.split + shift)
    start = first.split + shift
    limit2 = stage_limit(patched, start)
    if moved.split not in limit2.splits:
        valid = ", ".join(str(k - shift) for k in sorted(limit2.splits)) or "none"
        raise ValueError(f"--patch {config.text()}: a second stage from step {first.split} cannot end after step "
                         f"{second.split} (valid ends: {valid}; {_shifted(limit2, shift)})")
    patched = apply_patches(patched, moved, limit2, start=start)
    patched.patch.config = config
    patched.patch.next_stage.config = second
    patched.patch.next_stage.start = first.split
    patched.patch.next_stage.stop_reason = _shifted(limit2, shift)
    return patched


def _shifted(limit: StageLimit, shift: int) -> str:
    """A stage limit's reason, with its step index counted in the layer-by-layer program."""
    reason = limit.stop_reason
    if reason.startswith(f"step {limit.stop_step} "):
        reason = f"step {limit.stop_step - shift} " + reason[len(f"step {limit.stop_step} "):]
    return reason


def stream_input_problem(program: Program, limit: StageLimit, split: int | None = None) -> str:
    """Why the stage input cannot be streamed ('' when it can): it must be a graph input that only
    the patch stage reads (a later step would need it whole, in the arena), not a graph output."""
    if limit.stage_input is None or not limit.splits:
        return f"--stream-input needs a patch stage that reads a graph input, and none is possible: {limit.stop_reason}"
    t = limit.stage_input
    if t in program.outputs:
        return f"--stream-input: the input {t!r} is also a graph output, so it must sit whole in the arena"
    ends = [split] if split is not None else sorted(limit.splits)
    for end in ends:
        later = [k for k, s in enumerate(program.steps[end:], start=end)
                 if t in s.inputs or any(program.root(x) == t for x in s.inputs)]
        if not later:
            return ""
    k = later[0]
    return (f"--stream-input: step {k} ({_label(program.steps[k])}) reads the input {t!r} after the patch stage "
            f"ends (after step {ends[-1]}), so the input must sit whole in the arena")
