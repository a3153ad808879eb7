"""Integer golden executor: runs a Program step by step with the numpy mirrors of the C kernels.

What it computes is, by construction and by the kernel tests, exactly what the generated C
computes: the same params, the same constant blobs, the same kernel arithmetic.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from ..program import Program


def run_int8(program: Program, inputs: Mapping[str, np.ndarray],
             observe: Callable[[str, np.ndarray], None] | None = None) -> dict[str, np.ndarray]:
    """`inputs`: int8 arrays in the physical layout (see lower.quantize_inputs).
    Returns int8 outputs in the physical layout, keyed by output tensor name."""
    env: dict[str, np.ndarray] = {}
    for name in program.inputs:
        info = program.tensors[name]
        v = np.asarray(inputs[name])
        if v.dtype != np.int8 or v.size != info.size:
            raise ValueError(f"input {name!r}: expected {info.size} int8 values, got {v.dtype} {v.shape}")
        env[name] = v.reshape(info.shape)
    for view in program.views:  # views of graph inputs exist before the first step
        root = program.root(view)
        if root in env:
            env[view] = env[root].reshape(program.tensors[view].shape)
    for step in program.steps:
        values = [env[a.ref] if a.kind in ("in", "update", "stream") and a.ref in env else
                  program.blobs[a.ref] for a in step.args if a.kind in ("in", "const", "update", "stream")]
        result = step.golden(*values)
        outs = step.outputs
        results = result if isinstance(result, (list, tuple)) else [result]
        for name, r in zip(outs, results):
            info = program.tensors[name]
            r = np.asarray(r)
            if r.dtype != np.int8 or r.size != info.size:
                raise AssertionError(f"step {step.name}: golden output {r.dtype}{r.shape} != int8 {info.shape}")
            env[name] = r.reshape(info.shape)
            if observe is not None:
                observe(name, env[name])
        for view in program.views:  # views follow their root (also when a concat part updates it)
            root = program.root(view)
            if root in env and (view not in env or root in outs):
                env[view] = env[root].reshape(program.tensors[view].shape)
    return {name: env[name] for name in program.outputs}


def to_logical(program: Program, name: str, value: np.ndarray) -> np.ndarray:
    info = program.tensors[name]
    value = value.reshape(info.shape)
    return np.ascontiguousarray(value.transpose(np.argsort(info.perm))) if info.perm else value
