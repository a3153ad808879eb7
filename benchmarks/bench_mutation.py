"""Mutation testing of tinycc's test suite: do the tests notice a plausible bug?

Each mutation is one exact text replacement in one file (a rounding constant, a zero-point sign,
a loop bound, a planner comparison, a template byte count, a pass condition). The script copies
the repository to a temporary folder (never touching the working tree, which other people may be
editing), checks that the selected tests pass on the unmutated copy, then applies the mutations
one at a time and runs each one's tests with a timeout. A mutation is *killed* when its tests
fail (or time out), *survived* when they pass. Every survivor must either get a test that kills
it or be argued equivalent (same behaviour) in its `equivalent` field below; the score leaves
argued-equivalent mutations out.

    python benchmarks/bench_mutation.py              # all 58 mutations (about 20 min on 2 shared cores)
    python benchmarks/bench_mutation.py --quick      # the quick subset of 14 (about 4 min)
    python benchmarks/bench_mutation.py --only fc_collapse_on_multiplier_only --keep
    python benchmarks/bench_mutation.py --list       # the table of mutations, nothing run

--source head (default) copies the last commit (`git archive HEAD`), --source worktree the
working tree as it is (tracked and untracked files that git does not ignore).
The copy gets a `shared` link beside it to ../shared, so tests that need the MLPerf Tiny models
run (or skip, with their reason, when it is absent).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Test selections (pytest arguments), fastest first. Each mutation runs only the tests that cover it.
C_API = ("tests/test_c_api.py",)
KILLS = ("tests/test_mutation_kills.py",)
K_CONV = ("tests/test_kernels_conv.py",)
K_ELT = ("tests/test_kernels_eltwise.py",)
K_DSP = ("tests/test_kernels_dsp.py",)
ARITH = ("tests/test_arith.py",)
PLANNER = ("tests/test_memory_planner.py",)
E2E = ("tests/test_memory_e2e.py",)
PASSES = ("tests/test_trust_shared_weights.py", "tests/test_passes.py")
QDQ = ("tests/test_qdq.py",)
CODEGEN = ("tests/test_codegen.py",)
CALIB = ("tests/test_calibration.py",)
NODE = ("tests/test_onnx_node.py::test_float_matches_or_refuses",)  # ONNX backend node tests, float engine


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    path: str            # relative to the repository root
    old: str             # exact text, must occur once in the file
    new: str
    tests: tuple[str, ...]
    quick: bool = False  # in the --quick subset
    equivalent: str = ""  # why the mutation cannot change behaviour (not counted in the score)


M = Mutation
MUTATIONS: list[Mutation] = [
    # ---- the generated project: public C API, harness, code generation ----------------------------
    M("invoke_copies_one_input_byte_short", "templates/model.c.j2",
      "memcpy(A({{ t.offset }}), {{ t.var }}, {{ t.size }});", "memcpy(A({{ t.offset }}), {{ t.var }}, {{ t.size - 1 }});",
      C_API, quick=True),
    M("invoke_copies_one_output_byte_short", "templates/model.c.j2",
      "memcpy({{ t.var }}, A({{ t.offset }}), {{ t.size }});", "memcpy({{ t.var }}, A({{ t.offset }}), {{ t.size - 1 }});",
      C_API),
    M("input_index_out_of_range_returns_the_arena", "templates/model.c.j2",
      "    case {{ t.index }}: return A({{ t.offset }});\n{% endfor %}\n    default: return 0;\n    }\n}\n\nconst",
      "    case {{ t.index }}: return A({{ t.offset }});\n{% endfor %}\n    default: return A(0);\n    }\n}\n\nconst",
      C_API),
    M("invoke_f32_negative_ties_toward_zero", "templates/model.c.j2",
      "if (frac <= -0.5f) --r;", "if (frac < -0.5f) --r;", C_API, quick=True),
    M("invoke_f32_negatives_truncated", "templates/model.c.j2", "        if (frac <= -0.5f) --r;\n", "", C_API),
    M("invoke_f32_dequantizes_with_plus_zero_point", "templates/model.c.j2",
      "(int32_t)q[i] - zp)", "(int32_t)q[i] + zp)", C_API, quick=True),
    M("arena_aligned_to_4_only", "templates/model.c.j2",
      "__attribute__((aligned({{ PREFIX }}_ARENA_ALIGN)))", "__attribute__((aligned(4)))", C_API),
    M("harness_alignment_check_disabled", "templates/main.c.j2",
      "if (base % {{ PREFIX }}_ARENA_ALIGN == 0) return 1;", "return 1;", C_API),
    M("harness_repeat_does_not_restore_inputs", "templates/main.c.j2",
      "            memcpy({{ prefix }}_input({{ t.index }}), saved_inputs + {{ ns.off }}, "
      "{{ PREFIX }}_INPUT{{ t.index }}_SIZE);\n", "", C_API),
    M("scale_literals_with_6_digits", "tinycc/codegen/emit.py",
      'text = f"{float(np.float32(x)):.9g}"', 'text = f"{float(np.float32(x)):.6g}"', KILLS + C_API, quick=True),
    M("header_zero_point_negated", "tinycc/codegen/emit.py",
      "layout=layout, scale=c_float(s), zp=int(zp),", "layout=layout, scale=c_float(s), zp=-int(zp),", C_API),
    M("arena_16_bytes_short", "tinycc/codegen/emit.py",
      "arena_bytes=max(mem.arena_bytes, 16)", "arena_bytes=max(mem.arena_bytes - 16, 16)", C_API),

    # ---- C kernels --------------------------------------------------------------------------------------
    M("srdhm_rounding_constant", "runtime_c/tc_common.h",
      "(int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31", "(int64_t)a * (int64_t)b + ((int64_t)1 << 29)) >> 31",
      K_ELT, quick=True),
    M("rdbpot_negative_threshold", "runtime_c/tc_common.h",
      "const int32_t thr = (mask >> 1) + (x < 0 ? 1 : 0);", "const int32_t thr = (mask >> 1);", K_ELT),
    M("requant_no_upper_clamp", "runtime_c/tc_common.h",
      "    if (z > act_max) z = act_max;\n", "", K_ELT),
    M("requant_nonneg_clamp_without_zero_point", "runtime_c/tc_common.h",
      "y = TC_MIN(y, act_max - out_zp);", "y = TC_MIN(y, act_max);", K_CONV, quick=True),
    M("fc_input_zero_point_sign", "runtime_c/tc_fc_s8.c",
      "acc += (int32_t)w_o[i] * ((int32_t)x[i] - p->in_zp);", "acc += (int32_t)w_o[i] * ((int32_t)x[i] + p->in_zp);",
      K_CONV),
    M("fc_always_channel_0", "runtime_c/tc_fc_s8.c",
      "const int32_t c = p->per_channel ? o : 0;", "const int32_t c = 0;", K_CONV),
    M("conv_input_zero_point_sign", "runtime_c/tc_conv2d_s8.c",
      "acc += (int32_t)wk[ic] * ((int32_t)x[ic] - p->in_zp);", "acc += (int32_t)wk[ic] * ((int32_t)x[ic] + p->in_zp);",
      K_CONV, quick=True),
    M("dwconv_input_zero_point_sign", "runtime_c/tc_dwconv2d_s8.c",
      "acc += (int32_t)w[(ky * p->k_w + kx) * p->out_c + oc] * (x - p->in_zp);",
      "acc += (int32_t)w[(ky * p->k_w + kx) * p->out_c + oc] * (x + p->in_zp);", K_CONV),
    M("dsp_dot_input_zero_point_sign", "runtime_c/tc_dot_s8_dsp.h",
      "const int32_t x0 = (int32_t)x[i] - in_zp;", "const int32_t x0 = (int32_t)x[i] + in_zp;", K_DSP),
    M("avgpool_negative_rounding", "runtime_c/tc_avgpool_s8.c",
      "return acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;", "return (acc + n / 2) / n;", K_CONV),
    M("maxpool_starts_at_zero", "runtime_c/tc_maxpool_s8.c", "int32_t max = INT8_MIN;", "int32_t max = 0;", K_CONV),
    M("pad_value_ignored", "runtime_c/tc_pad_s8.c",
      "const int pad_byte = (int)(int8_t)p->pad_value;", "const int pad_byte = 0;", K_ELT),
    M("lut_index_off_by_one", "runtime_c/tc_lut_s8.c", "table[(int32_t)in[i] + 128]", "table[(int32_t)in[i] + 127]",
      K_ELT),
    M("mul_second_zero_point_sign", "runtime_c/tc_mul_s8.c",
      "out[i] = mul_one(p, in1[i] - p->in1_zp, in2[i] - p->in2_zp);",
      "out[i] = mul_one(p, in1[i] - p->in1_zp, in2[i] + p->in2_zp);", K_ELT),
    M("add_second_operand_uses_first_zero_point", "runtime_c/tc_add_s8.c",
      "return sign2 * rescale_operand(x, p->in2_zp,", "return sign2 * rescale_operand(x, p->in1_zp,", K_ELT),
    M("concat_copies_despite_zero_points", "runtime_c/tc_concat_s8.c",
      "tc_is_unit_rescale(p->multiplier, p->shift) && p->in_zp == p->out_zp;",
      "tc_is_unit_rescale(p->multiplier, p->shift);", K_ELT),
    M("requantize_zero_point_shift_reversed", "runtime_c/tc_requantize_s8.c",
      "const int32_t zp_shift = p->out_zp - p->in_zp;", "const int32_t zp_shift = p->in_zp - p->out_zp;", K_ELT),
    M("softmax_drops_the_diff_min_boundary", "runtime_c/tc_softmax_s8.c",
      "const int32_t diff = (int32_t)row[c] - max;\n        if (diff >= p->diff_min) {",
      "const int32_t diff = (int32_t)row[c] - max;\n        if (diff > p->diff_min) {", K_ELT),

    # ---- golden model and quantization arithmetic ---------------------------------------------------------
    M("golden_srdhm_nudge_sign", "tinycc/golden/arith.py",
      "nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))", "nudge = np.where(ab >= 0, 1 << 30, 1 << 30)", ARITH),
    M("golden_rdbpot_threshold", "tinycc/golden/arith.py",
      "thr = (mask >> 1) + (x < 0)", "thr = (mask >> 1)", ARITH, quick=True),
    M("round_half_up_instead_of_away", "tinycc/golden/arith.py",
      "return np.sign(x) * np.floor(np.abs(x) + 0.5)", "return np.floor(x + 0.5)", ARITH + C_API),
    M("quantize_multiplier_no_renormalisation", "tinycc/golden/arith.py",
      "    if q_fixed == (1 << 31):\n        q_fixed //= 2\n        shift += 1\n", "", ARITH),
    M("golden_avgpool_negative_rounding", "tinycc/ops/pool.py",
      "mean = np.where(acc > 0, trunc_div(acc + n // 2, n), trunc_div(acc - n // 2, n))",
      "mean = trunc_div(acc + n // 2, n)", K_CONV),
    M("zero_point_from_max_always", "tinycc/quant/params.py",
      "zp = zp_from_min if err_min < err_max else zp_from_max", "zp = zp_from_max", CALIB + KILLS),
    M("ptq_weights_clip_at_minus_128", "tinycc/quant/params.py",
      "w / scale.astype(np.float64).reshape(shape)), -127, 127)",
      "w / scale.astype(np.float64).reshape(shape)), -128, 127)", KILLS + CALIB,
      equivalent="scale >= max|w|/127 per channel, so |w / scale| <= 127 (float32 rounding of the scale "
                 "moves it by far less than the 0.5 needed to round to 128): the clip never acts on -128"),
    M("relu6_clamp_truncated", "tinycc/quant/params.py",
      'hi = min(hi, zp + int(round_half_away(act["max"] / s)))', 'hi = min(hi, zp + int(act["max"] / s))', QDQ + KILLS),

    # ---- lowering -----------------------------------------------------------------------------------------
    M("requant_multipliers_in_float32", "tinycc/quant/weights.py",
      "    real = np.float64(np.float32(in_scale)) * np.broadcast_to(w_scale, (channels,)).astype(np.float32)"
      ".astype(np.float64) \\\n        / np.float64(np.float32(out_scale))",
      "    real = (np.float32(in_scale) * np.broadcast_to(w_scale, (channels,)).astype(np.float32)\n"
      "            / np.float32(out_scale)).astype(np.float64)", KILLS, quick=True),
    M("qdq_weights_minus_128_clipped", "tinycc/quant/weights.py",
      "q = np.clip(recover_integers(t.data, t.quant), -128, 127)", "q = np.clip(recover_integers(t.data, t.quant), -127, 127)",
      KILLS, quick=True),
    M("fc_collapse_on_multiplier_only", "tinycc/ops/dense.py",
      "per_channel = int(np.any(mult != mult[0]) or np.any(shift != shift[0]))",
      "per_channel = int(np.any(mult != mult[0]))", KILLS, quick=True),
    M("row_overlap_one_row_too_eager", "tinycc/ops/conv.py",
      "return min(max(0, r * stride_h - pad_top) * row_in - (r + 1) * row_out",
      "return min(max(0, r * stride_h - pad_top) * row_in - r * row_out", E2E),

    # ---- memory planning --------------------------------------------------------------------------------
    M("arena_offsets_unaligned", "tinycc/memory/lifetimes.py", "ALIGN = 16\n", "ALIGN = 1\n", KILLS + C_API, quick=True),
    M("planner_align_up_ignored", "tinycc/memory/planner.py",
      "    return x + (residue - x) % modulus", "    return x", PLANNER),
    M("planner_adjacent_intervals_collide", "tinycc/memory/planner.py",
      "        if hi >= free_from:\n            free_from = hi + 1",
      "        if hi > free_from:\n            free_from = hi + 1", PLANNER),
    M("inplace_over_a_graph_output", "tinycc/memory/lifetimes.py",
      "if group_last[g] != k or g in outputs or group_size[g] < program.tensors[out].size:",
      "if group_last[g] != k or group_size[g] < program.tensors[out].size:", E2E + KILLS,
      equivalent="a second guard: _last_reads keeps every output live to the end, so an output's group has "
                 "group_last == len(steps) != k and `group_last[g] != k` already refuses it (removing that "
                 "extension instead is equally masked by this test; tests/test_mutation_kills.py checks the "
                 "property end to end)"),
    M("inplace_into_a_smaller_buffer", "tinycc/memory/lifetimes.py",
      "if group_last[g] != k or g in outputs or group_size[g] < program.tensors[out].size:",
      "if group_last[g] != k or g in outputs:", E2E,
      equivalent="every op that declares inplace_inputs writes at most the size of that input (element-wise: "
                 "same shape; lookup tables and softmax: same size; depthwise in place: oc == ic and "
                 "oh*ow <= ih*iw), and a group is as large as its root: the size test never fires today"),

    # ---- graph passes and front end -----------------------------------------------------------------------
    M("nonzero_pad_folded_into_conv", "tinycc/passes/fold.py",
      ' or pad.outputs[0] in g.outputs or pad.attrs["value"] != 0.0:', ' or pad.outputs[0] in g.outputs:', KILLS + PASSES,
      quick=True),
    M("batchnorm_fold_forgets_to_scale_bias", "tinycc/passes/fold.py",
      "new_bias = bias * a + b", "new_bias = bias + b", PASSES + KILLS),
    M("div_to_mul_without_reciprocal", "tinycc/passes/fold.py",
      "(1.0 / c.data.astype(np.float64)).astype(np.float32)", "(c.data.astype(np.float64)).astype(np.float32)", PASSES),
    M("relu_fused_into_a_shared_producer", "tinycc/passes/fuse.py",
      "if len(g.consumers().get(src, [])) != 1:", "if len(g.consumers().get(src, [])) > 2:", PASSES + KILLS),
    M("clip_merge_keeps_the_wider_max", "tinycc/passes/fuse.py",
      "hi = old_hi if hi is None else (hi if old_hi is None else min(hi, old_hi))",
      "hi = old_hi if hi is None else (hi if old_hi is None else max(hi, old_hi))", PASSES + KILLS),
    M("gemm_alpha_ignored", "tinycc/ops/dense.py",
      "* (1.0 if prequantized else np.float32(alpha))", "* 1.0", KILLS, quick=True),
    M("gemm_beta_ignored", "tinycc/ops/dense.py",
      "cdata.reshape(-1) * np.float32(beta)", "cdata.reshape(-1)", KILLS),
    M("same_upper_and_same_lower_swapped", "tinycc/ops/common.py",
      'out.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))',
      'out.append((big, small) if auto_pad == "SAME_UPPER" else (small, big))', NODE),
    M("softmax_default_axis_of_opset_13_is_1", "tinycc/ops/softmax.py",
      "default = -1 if ctx.opset >= 13 else 1", "default = 1", NODE),
    M("flatten_default_axis_0", "tinycc/ops/shape.py",
      'axis = int(attrs.get("axis", 1))\n    axis = axis + len(shape) if axis < 0 else axis\n    out = (int(np.prod(',
      'axis = int(attrs.get("axis", 0))\n    axis = axis + len(shape) if axis < 0 else axis\n    out = (int(np.prod(',
      NODE),
    M("ceil_mode_pool_keeps_a_window_in_the_pad", "tinycc/ops/common.py",
      "    if (out - 1) * s >= size + pad_begin:", "    if (out - 1) * s > size + pad_begin:", KILLS),
]


# ---- running ------------------------------------------------------------------------------------------
def copy_repository(dest: Path, source: str) -> Path:
    """The repository at dest/repo, with dest/shared linked to ../shared if that exists."""
    repo = dest / "repo"
    repo.mkdir()
    if source == "head":
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
    else:
        listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                capture_output=True, check=True).stdout.decode().split("\0")
        for rel in filter(None, listed):
            src = ROOT / rel
            if src.is_file():
                (repo / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, repo / rel)
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (dest / "shared").symlink_to(shared)
    return repo


def test_env(repo: Path) -> dict:
    """The copy's tinycc first on the path (before the editable install of the working tree)."""
    env = dict(os.environ, PYTHONPATH=str(repo), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    return env


def check_imports_the_copy(repo: Path) -> None:
    r = subprocess.run([sys.executable, "-c", "import tinycc, sys; print(tinycc.__file__)"], cwd=repo,
                       env=test_env(repo), capture_output=True, text=True, check=True)
    if not Path(r.stdout.strip()).resolve().is_relative_to(repo.resolve()):
        raise SystemExit(f"the tests would import {r.stdout.strip()}, not the copy in {repo}")


def run_tests(repo: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """('pass' | 'fail' | 'timeout', seconds, last lines of output)."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]
    start = time.monotonic()
    try:
        r = subprocess.run(cmd, cwd=repo, env=test_env(repo), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start, ""
    tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-3:])
    if r.returncode == 5:  # no tests collected: a wrong selection, not a kill
        raise SystemExit(f"no tests collected by {' '.join(tests)}:\n{tail}")
    return ("pass" if r.returncode == 0 else "fail"), time.monotonic() - start, tail


def apply(repo: Path, m: Mutation) -> str:
    """Mutate the copy; returns the original text of the file."""
    path = repo / m.path
    text = path.read_text()
    count = text.count(m.old)
    if count != 1:
        raise LookupError(f"{m.name}: the old text occurs {count} times in {m.path}")
    path.write_text(text.replace(m.old, m.new))
    return text


def stale(repo: Path, mutations: list[Mutation]) -> dict[str, str]:
    """Mutations whose old text is not exactly once in the copy (the code moved on): name -> why."""
    out = {}
    for m in mutations:
        path = repo / m.path
        count = path.read_text().count(m.old) if path.is_file() else 0
        if count != 1:
            out[m.name] = f"old text found {count} times in {m.path}"
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the quick subset")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="only these mutations")
    ap.add_argument("--source", choices=("head", "worktree"), default="head")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per test run (a timeout counts as killed)")
    ap.add_argument("--list", action="store_true", help="print the mutations and exit")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    args = ap.parse_args(argv)

    selected = [m for m in MUTATIONS if (not args.quick or m.quick) and (not args.only or m.name in args.only)]
    unknown = set(args.only or ()) - {m.name for m in MUTATIONS}
    if unknown:
        ap.error(f"unknown mutation(s): {', '.join(sorted(unknown))}")
    if args.list:
        for m in selected:
            print(f"{m.name:<48} {m.path:<32} {' '.join(m.tests)}{'  [quick]' if m.quick else ''}")
        print(f"{len(selected)} mutations")
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="tinycc_mutation_"))
    try:
        repo = copy_repository(tmp, args.source)
        check_imports_the_copy(repo)
        skipped = stale(repo, selected)
        runnable = [m for m in selected if m.name not in skipped]
        print(f"copy of the {'last commit' if args.source == 'head' else 'working tree'} in {repo}")
        broken = {}
        for tests in sorted({m.tests for m in runnable}):
            outcome, seconds, tail = run_tests(repo, tests, args.timeout)
            print(f"baseline {' '.join(tests)}: {outcome} ({seconds:.0f} s)", flush=True)
            if outcome != "pass":
                broken[tests] = tail
                print("    " + tail.replace("\n", "\n    "), flush=True)
        rows = []
        for m in runnable:
            if m.tests in broken:
                rows.append((m, "baseline fails", 0.0))
                continue
            original = apply(repo, m)
            try:
                outcome, seconds, _ = run_tests(repo, m.tests, args.timeout)
            finally:
                (repo / m.path).write_text(original)
            result = {"fail": "killed", "timeout": "killed (timeout)", "pass": "survived"}[outcome]
            if result == "survived" and m.equivalent:
                result = "survived (equivalent)"
            rows.append((m, result, seconds))
            print(f"  {m.name:<48} {result:<22} {seconds:5.0f} s", flush=True)
        print_table(rows, skipped)
        survivors = [m for m, result, _ in rows if result in ("survived", "baseline fails")]
        return 1 if survivors else 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def print_table(rows, skipped: dict[str, str]) -> None:
    print()
    print(f"| {'mutation':<48} | {'file':<30} | {'result':<22} | {'s':>4} |")
    print(f"|{'-' * 50}|{'-' * 32}|{'-' * 24}|{'-' * 6}|")
    for m, result, seconds in rows:
        print(f"| {m.name:<48} | {m.path:<30} | {result:<22} | {seconds:4.0f} |")
    for name, why in skipped.items():
        print(f"| {name:<48} | {'':<30} | {'stale: ' + why[:15]:<22} |      |")
    killed = sum(r.startswith("killed") for _, r, _ in rows)
    equivalent = sum(r == "survived (equivalent)" for _, r, _ in rows)
    judged = sum(r != "baseline fails" for _, r, _ in rows) - equivalent
    print()
    print(f"mutation score: {killed}/{judged} killed ({100.0 * killed / max(judged, 1):.1f} %); "
          f"{equivalent} argued equivalent, {len(rows) - judged - equivalent} not judged (baseline fails), "
          f"{len(skipped)} stale")
    for name, why in skipped.items():
        print(f"  stale {name}: {why}")


if __name__ == "__main__":
    sys.exit(main())
