"""docs/operators.md, the operator table, is generated from the registry (tinycc/ops: the ONNX
importers, the IR ops they emit, whether each lowers to int8 and through which declared C
kernels), next to TFLite Micro's builtin operators; this test fails when the file is not what the
registry gives today.

`python tests/test_operators_doc.py` rewrites docs/operators.md (after adding an operator).

Derived, never typed: which ONNX operators have an importer, the IR ops an importer adds (the
`ctx.add("Op", ...)` calls of the importer and of the module functions it calls, or the op of
the same name), whether an IR op has an int8 lowering, and the C kernels it names (declared in
tinycc/kernels.py). Typed by hand: TFLM's builtin list (tflite-micro's MicroMutableOpResolver)
with the ONNX operators each corresponds to, and a few notes on partial support.
"""
from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tinycc.ops  # noqa: E402,F401  (registers every op)
from tinycc.frontend.onnx import OWN_SEMANTICS  # noqa: E402
from tinycc.kernels import all_kernels  # noqa: E402
from tinycc.ops.registry import ONNX_IMPORTERS, OPS, OpDef  # noqa: E402

DOC = ROOT / "docs" / "operators.md"
# Evaluated at import when their inputs are constant (the static-shape chains exporters write).
FOLDED_ONLY = ("Constant", "ConstantOfShape", "Range")
# IR ops that only move data: listed only when an importer adds nothing else.
DATA_MOVEMENT = {"Reshape", "Transpose", "Identity", "Slice", "Concat"}

# TFLite Micro's builtin operators (tflite-micro 90b983c, micro_mutable_op_resolver.h: the Add*
# methods) -> the ONNX operators with that meaning; () where ONNX has none or it does not apply
# to a static int8 graph (variables, control flow, custom and signal-processing ops).
TFLM_BUILTINS: dict[str, tuple[str, ...]] = {
    "ABS": ("Abs",), "ADD": ("Add",), "ADD_N": ("Sum",), "ARG_MAX": ("ArgMax",), "ARG_MIN": ("ArgMin",),
    "ASSIGN_VARIABLE": (), "AVERAGE_POOL_2D": ("AveragePool", "GlobalAveragePool"),
    "BATCH_MATMUL": ("MatMul",), "BATCH_TO_SPACE_ND": (), "BROADCAST_ARGS": (), "BROADCAST_TO": ("Expand",),
    "CALL_ONCE": (), "CAST": ("Cast",), "CEIL": ("Ceil",), "CONCATENATION": ("Concat",), "CONV_2D": ("Conv",),
    "COS": ("Cos",), "CUMSUM": ("CumSum",), "CUSTOM": (), "DEPTHWISE_CONV_2D": ("Conv",),
    "DEPTH_TO_SPACE": ("DepthToSpace",), "DEQUANTIZE": ("DequantizeLinear",), "DIV": ("Div",),
    "DYNAMIC_UPDATE_SLICE": (), "ELU": ("Elu",), "EMBEDDING_LOOKUP": ("Gather",), "EQUAL": ("Equal",),
    "EXP": ("Exp",), "EXPAND_DIMS": ("Unsqueeze",), "FILL": ("ConstantOfShape",), "FLOOR": ("Floor",),
    "FLOOR_DIV": (), "FLOOR_MOD": ("Mod",), "FULLY_CONNECTED": ("Gemm", "MatMul"), "GATHER": ("Gather",),
    "GATHER_ND": ("GatherND",), "GREATER": ("Greater",), "GREATER_EQUAL": ("GreaterOrEqual",),
    "HARD_SWISH": ("HardSwish",), "IF": ("If",), "L2_NORMALIZATION": ("LpNormalization",),
    "L2_POOL_2D": ("LpPool",), "LEAKY_RELU": ("LeakyRelu",), "LESS": ("Less",), "LESS_EQUAL": ("LessOrEqual",),
    "LOG": ("Log",), "LOGICAL_AND": ("And",), "LOGICAL_NOT": ("Not",), "LOGICAL_OR": ("Or",),
    "LOGISTIC": ("Sigmoid",), "LOG_SOFTMAX": ("LogSoftmax",), "MAXIMUM": ("Max",), "MAX_POOL_2D": ("MaxPool",),
    "MEAN": ("ReduceMean",), "MINIMUM": ("Min",), "MIRROR_PAD": ("Pad",), "MUL": ("Mul",), "NEG": ("Neg",),
    "NOT_EQUAL": (), "PACK": ("Concat",), "PAD": ("Pad",), "PADV2": ("Pad",), "PRELU": ("PRelu",),
    "QUANTIZE": ("QuantizeLinear",), "READ_VARIABLE": (), "REDUCE_ALL": (), "REDUCE_MAX": ("ReduceMax", "GlobalMaxPool"),
    "REDUCE_MIN": ("ReduceMin",), "RELU": ("Relu",), "RELU6": ("Clip",), "RESHAPE": ("Reshape", "Flatten"),
    "RESIZE_BILINEAR": ("Resize",), "RESIZE_NEAREST_NEIGHBOR": ("Resize", "Upsample"), "REVERSE_V2": (),
    "ROUND": ("Round",), "RSQRT": ("Sqrt", "Reciprocal"), "SELECT_V2": ("Where",), "SHAPE": ("Shape",),
    "SIN": ("Sin",), "SLICE": ("Slice",), "SOFTMAX": ("Softmax",), "SPACE_TO_BATCH_ND": (),
    "SPACE_TO_DEPTH": ("SpaceToDepth",), "SPLIT": ("Split",), "SPLIT_V": ("Split",), "SQRT": ("Sqrt",),
    "SQUARE": ("Mul",), "SQUARED_DIFFERENCE": ("Sub", "Mul"), "SQUEEZE": ("Squeeze",),
    "STRIDED_SLICE": ("Slice",), "SUB": ("Sub",), "SUM": ("ReduceSum",), "SVDF": (), "TANH": ("Tanh",),
    "TRANSPOSE": ("Transpose",), "TRANSPOSE_CONV": ("ConvTranspose",),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("LSTM",), "UNPACK": ("Split",), "VAR_HANDLE": (), "WHILE": ("Loop",),
    "ZEROS_LIKE": (),
}
TFLM_SOURCE = "tflite-micro 90b983c (2026-08-20), `tensorflow/lite/micro/micro_mutable_op_resolver.h`"

# Hand-written notes where the derived columns say less than the truth.
NOTES = {
    "BatchNormalization": "folded into the Conv/Gemm before it, else a per-channel Mul + Add",
    "Cast": "folded on constants (shape chains)",
    "Dropout": "inference only; removed",
    "Identity": "removed by the passes where it can be",
    "LSTM": "int8: zero initial state, no peepholes; TFLM UNIDIRECTIONAL_SEQUENCE_LSTM arithmetic, one call per direction",
    "GRU": "int8: zero initial state; tinycc's scheme (ops/recurrent.py), one call per direction",
    "Gemm": "transA refused; bias per output",
    "Resize": "nearest and linear",
    "Softmax": "int8: TFLM SOFTMAX, output (1/256, -128)",
}


def _functions_reached(fn, cls=None, depth: int = 3) -> list:
    """fn and what it calls by name, `depth` calls deep: functions of its module's namespace
    (its own and imported ones) and, with `cls`, methods called as self.name(...)."""
    seen, frontier = [fn], [fn]
    for _ in range(depth):
        nxt = []
        for f in frontier:
            module, src = inspect.getmodule(f), inspect.getsource(f)
            names = dict.fromkeys(re.findall(r"\b(\w+)\(", src))
            found = [getattr(module, n, None) for n in names]
            if cls is not None:
                found += [getattr(cls, n, None) for n in re.findall(r"self\.(\w+)\(", src)]
            for g in found:
                if inspect.isfunction(g) and g not in seen and g.__module__.startswith("tinycc."):
                    seen.append(g)
                    nxt.append(g)
        frontier = nxt
    return seen


def ir_ops_of(onnx_op: str) -> list[str]:
    """The IR ops the importer of `onnx_op` adds (data movement only where there is nothing else)."""
    found = [onnx_op] if onnx_op in OPS else []
    for f in _functions_reached(ONNX_IMPORTERS[onnx_op], depth=1):
        src = inspect.getsource(f)
        found += [n for n in re.findall(r'ctx\.add\(\s*"(\w+)"', src) if n in OPS]
        found += [n for n in re.findall(r'"%s"\s*:\s*"(\w+)"' % onnx_op, src) if n in OPS]  # {"Sum": "Add"}
    found = list(dict.fromkeys(found))
    main = [n for n in found if n not in DATA_MOVEMENT]
    return main or found


def has_int8(ir_op: str) -> bool:
    return type(OPS[ir_op]).lower_int8 is not OpDef.lower_int8


def kernels_of(ir_op: str) -> list[str]:
    """Declared C kernels named by the op's int8 lowering (and the module functions it calls)."""
    if not has_int8(ir_op):
        return []
    declared = all_kernels()
    names = []
    for f in _functions_reached(type(OPS[ir_op]).lower_int8, type(OPS[ir_op])):
        names += [k for k in re.findall(r'"(tc_\w+)"', inspect.getsource(f)) if k in declared]
    return sorted(set(names))


def onnx_rows() -> list[tuple[str, str, str, str, str, str]]:
    rows = []
    for op in sorted(ONNX_IMPORTERS, key=str.lower):
        ir = ir_ops_of(op)
        int8 = [n for n in ir if has_int8(n)]
        kernels = sorted({k for n in ir for k in kernels_of(n)})
        int8_cell = "yes" if ir and len(int8) == len(ir) else ("partly" if int8 else ("—" if ir else "removed"))
        c_cell = ", ".join(f"`{k}`" for k in kernels) or ("view (no copy)" if int8 else "—")
        rows.append((op, "yes", int8_cell, c_cell, ", ".join(ir) or "—", NOTES.get(op, "")))
    for op in sorted(set(OWN_SEMANTICS) | set(FOLDED_ONLY), key=str.lower):
        if op not in ONNX_IMPORTERS:
            note = "QDQ models: taken as quantization parameters" if "Linear" in op else "folded at import"
            rows.append((op, "yes", "—", "—", "—", note))
    return rows


def supported_onnx() -> set[str]:
    return set(ONNX_IMPORTERS) | set(OWN_SEMANTICS) | set(FOLDED_ONLY)


def tflm_rows() -> list[tuple[str, str, str]]:
    supported = supported_onnx()
    rows = []
    for builtin, onnx_ops in sorted(TFLM_BUILTINS.items()):
        if not onnx_ops:
            rows.append((builtin, "—", "n/a"))
            continue
        have = [o for o in onnx_ops if o in supported]
        rows.append((builtin, ", ".join(onnx_ops), "yes" if have else "**no**"))
    return rows


def render() -> str:
    def table(header, rows):
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)

    rows = onnx_rows()
    tflm = tflm_rows()
    mapped = {o for ops in TFLM_BUILTINS.values() for o in ops}
    only_tinycc = sorted((o for o in ONNX_IMPORTERS if o not in mapped), key=str.lower)
    only_tflm = [b for b, _, have in tflm if have == "**no**"]
    int8_count = sum(r[2] == "yes" for r in rows)
    return "\n".join([
        "# Operators",
        "",
        "Generated from the operator registry by `python tests/test_operators_doc.py` (tests/test_operators_doc.py "
        "fails when this file is not current); do not edit by hand.",
        "",
        f"{len(rows)} ONNX operators are accepted, {int8_count} of them whole in int8. float: the front end "
        "imports it and the float reference runs it (checked against onnxruntime); int8: every IR op it becomes "
        "has an int8 lowering (\"partly\": some of them; \"removed\": it disappears in the passes); C: the "
        "runtime_c kernels the int8 lowering calls. Where int8 is refused for some attribute values the "
        "compiler names the node and the reason (exit 2).",
        "",
        "## ONNX operators in tinycc",
        "",
        table(("ONNX", "float", "int8", "C kernels", "IR op(s)", "notes"), rows),
        "",
        "## TFLite Micro builtin operators",
        "",
        f"From {TFLM_SOURCE}, with the ONNX operators of the same meaning (n/a: none, or not applicable to a "
        "static int8 graph: variables, control flow, custom and signal ops).",
        "",
        table(("TFLM builtin", "ONNX", "in tinycc"), tflm),
        "",
        "## tinycc has, TFLM lacks",
        "",
        "ONNX operators tinycc imports that no TFLM builtin corresponds to: " + ", ".join(only_tinycc) + ".",
        "",
        "## TFLM has, tinycc lacks",
        "",
        "TFLM builtins with an ONNX counterpart tinycc does not import: " + ", ".join(only_tflm) + ".",
        "",
    ])


def test_operators_doc_is_current():
    assert DOC.exists(), "docs/operators.md is missing: run python tests/test_operators_doc.py"
    assert DOC.read_text() == render(), "docs/operators.md is stale: run python tests/test_operators_doc.py"


def test_every_importer_reaches_a_registered_ir_op_or_is_removed():
    """The derivation itself: each importer's IR ops are found (a regex that finds nothing would
    silently leave the table empty)."""
    empty = [op for op in ONNX_IMPORTERS if not ir_ops_of(op)]
    assert set(empty) <= {"Dropout", "Cast"}, empty
    assert "Dense" in ir_ops_of("Gemm") and kernels_of("Dense") == ["tc_fc_cb_s8", "tc_fc_s8"]  # int8, codebook
    assert ir_ops_of("LSTM") == ["LSTM"] and kernels_of("LSTM") == ["tc_lstm_s8"]
    assert ir_ops_of("Sum") == ["Add"] and "tc_softmax_s8" in kernels_of("Softmax")


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC}")
