"""Which ONNX opsets tinycc accepts.

tinycc's importers implement the operators as ONNX defines them from opset 11 to opset 21
(`SEMANTICS_OPSET`), older forms included (Softmax before 13, Split/Squeeze/Reduce attributes
before they became inputs...). Later opsets revised many operators only to admit new element
types (bfloat16 in opset 22; float4, float8e8m0, int2 and more in 23-28) or to add an attribute
whose default keeps the old meaning. A model at any opset up to the newest that the installed
`onnx` package knows is therefore accepted when every operator whose semantics tinycc implements
itself is either unchanged since opset 21 or revised only in those ways (`SAME_MEANING_REVISIONS`: each importer lists its op's,
checked against onnx's operator schemas by tests/test_opsets.py). Nodes that tinycc folds with
onnx's reference evaluator need no such check: the evaluator implements the model's opset.

Opsets above what the installed onnx knows are refused: onnx can neither check such a model
nor infer its shapes.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import onnx

from ..ops.registry import NEW_ELEMENT_TYPES_23_TO_25, ONNX_REVISIONS, same_meaning_revisions

MIN_OPSET = 11
SEMANTICS_OPSET = 21

_FLOAT = onnx.TensorProto.FLOAT

# Operator revisions after opset 21 that keep the meaning tinycc implements: each importer lists
# its op's (@onnx_importer(..., revisions=...), gathered in ops.registry.ONNX_REVISIONS, which is
# this table). Only the operators the front end implements itself, with no importer, are listed
# here.
SAME_MEANING_REVISIONS: Mapping[str, Mapping[int, Mapping[str, tuple | None]]] = ONNX_REVISIONS
for _op in ("Shape", "Size"):  # folded by frontend/onnx.py
    same_meaning_revisions(_op, NEW_ELEMENT_TYPES_23_TO_25)
# QuantizeLinear/DequantizeLinear (frontend/qdq.py): 23 adds precision (of the division by the
# scale; the scale's type may differ from the input's) and output_dtype: 0 (the scale's / the
# input's type) or float keep the float32 arithmetic; 24, 25, 28 admit new element types.
same_meaning_revisions("DequantizeLinear", {23: {"output_dtype": (0, _FLOAT)}, 24: {}, 25: {}, 28: {}})
same_meaning_revisions("QuantizeLinear", {23: {"precision": (0, _FLOAT)}, 24: {}, 25: {}, 28: {}})


def max_opset() -> int:
    """The newest opset of the standard domain that the installed onnx package knows."""
    return onnx.defs.onnx_opset_version()


def opset_problem(version: int) -> str | None:
    """Why a model importing the standard domain at `version` is refused, or None."""
    newest = max_opset()
    if version < MIN_OPSET:
        return (f"the model uses ONNX opset {version}; tinycc supports opsets {MIN_OPSET} to {newest}. Upgrade it: "
                "onnx.save(onnx.version_converter.convert_version(onnx.load(MODEL), 13), NEW_MODEL), "
                "or re-export it with a newer opset_version.")
    if version > newest:
        return (f"the model uses ONNX opset {version}, newer than the installed onnx package "
                f"({onnx.__version__}) knows (opsets up to {newest}); upgrade onnx, or re-export the model "
                f"with opset_version={newest} or lower.")
    return None


def revision_problem(node: onnx.NodeProto, opset: int) -> str | None:
    """Why tinycc cannot take `node` at `opset` (its operator was revised after opset 21 in a
    way that may change its meaning), or None."""
    if opset <= SEMANTICS_OPSET:
        return None
    try:
        version = onnx.defs.get_schema(node.op_type, opset, node.domain or "").since_version
    except onnx.defs.SchemaError:
        return None  # not a standard operator: reported as unsupported by the importer
    if version <= SEMANTICS_OPSET:
        return None
    label = f"node {node.name!r}: {node.op_type}"
    revisions = SAME_MEANING_REVISIONS.get(node.op_type, {})
    newer = [v for v in range(SEMANTICS_OPSET + 1, version + 1)
             if onnx.defs.get_schema(node.op_type, v, node.domain or "").since_version == v]
    unknown = [v for v in newer if v not in revisions]
    if unknown:
        return (f"{label} at opset {opset} follows its opset-{unknown[0]} definition, which tinycc does not "
                f"implement yet (it implements {node.op_type} as of opset {SEMANTICS_OPSET}); re-export "
                f"the model with opset_version={SEMANTICS_OPSET}")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    for v in newer:
        for name, allowed in revisions[v].items():
            if allowed is not None and name in attrs and attrs[name] not in allowed:
                return (f"{label} attribute {name}={attrs[name]!r} (added in opset {v}) is not supported; "
                        f"tinycc takes {name} in {list(allowed)}")
    return None


def revision_problems(nodes: Iterable[onnx.NodeProto], opset: int, implemented: set[str]) -> list[str]:
    """revision_problem for every node whose operator tinycc implements itself."""
    problems = (revision_problem(n, opset) for n in nodes
                if n.op_type in implemented and n.domain in ("", "ai.onnx"))
    return [p for p in problems if p]
