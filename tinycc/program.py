"""The lowered program: an ordered list of kernel calls on int8 tensors.

Both the integer golden executor (reference/int_exec.py) and the C code generator consume the
same Program, so they cannot disagree on what runs: the golden calls each step's numpy mirror,
the generated C calls the C kernel with the same params struct and constant blobs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .ir import QuantParams


@dataclass
class TensorInfo:
    name: str  # IR tensor name (untrusted text, from the model)
    shape: tuple[int, ...]  # physical shape
    quant: QuantParams
    perm: tuple[int, ...] | None = None
    logical_shape: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class Arg:
    """One C argument after the params pointer. kind: in | const | out | update | scratch | stream.

    "update" is an output that an earlier step created and this one completes (a concat part):
    the golden receives its current value and returns the new one. "stream": a graph input that
    is not in the arena (--stream-input): the golden receives the whole input, the C asks the
    caller's row callback for the step's window of it (schedule/patches.py, StreamWindow)."""

    kind: str
    ref: str  # tensor name (in/out), blob name (const), or "" (scratch)
    nbytes: int = 0  # scratch size
    # in/out/update: the kernel gets the tensor's address plus this many bytes (a patch step
    # reading a row range of a larger map, or writing its tile into the stage output)
    at: int = 0


@dataclass
class Step:
    name: str  # C-safe, unique
    op: str
    node: str
    onnx_name: str
    kernel: str  # C function name
    params: Any  # frozen dataclass mirroring the C struct (has C_STRUCT), or None
    args: list[Arg]
    golden: Callable[..., np.ndarray]  # (*values of in/const args, in order) -> output array
    macs: int = 0
    # In-place execution: the output may take the buffer of one of these inputs (indices into
    # `inputs`) when this step is its last reader; `inplace_kernel`/`inplace_args` replace the
    # call in that case (e.g. depthwise with a scratch plane), else the same call is used.
    inplace_inputs: tuple[int, ...] = ()
    note: str = ""
    inplace_kernel: str = ""
    inplace_args: list[Arg] | None = None
    # Partial overlap (vMCU): the output may start this many bytes after the start of input 0
    # (usually negative): the kernel writes rows in increasing address order and never needs an
    # input row again once output rows past it are written.
    overlap_delta: int | None = None
    # A pure copy of input 0 into (tensor, byte offset), e.g. a concat part: the planner may let
    # the producer write there directly and drop this step from the C.
    copy_into: tuple[str, int] | None = None
    # Learned parameters of the layer (weights, biases, constant operands; 0 for data movement).
    param_count: int = 0
    # With overlap_delta: the output may only start a multiple of this many bytes from input 0,
    # for kernels that run channel by channel (depthwise): each output channel must land on
    # bytes of its own input channel, whose rows that kernel has consumed.
    overlap_modulus: int = 1

    @property
    def inputs(self) -> list[str]:
        return [a.ref for a in self.args if a.kind == "in"]

    @property
    def outputs(self) -> list[str]:
        return [a.ref for a in self.args if a.kind in ("out", "update")]

    @property
    def scratch_bytes(self) -> int:
        return sum(a.nbytes for a in self.args if a.kind == "scratch")

    def call(self, inplace: bool) -> tuple[str, list[Arg]]:
        """The C kernel and arguments, for the in-place variant or the normal one."""
        if inplace and self.inplace_kernel:
            return self.inplace_kernel, self.inplace_args
        return self.kernel, self.args


@dataclass
class Program:
    name: str
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    blobs: dict[str, np.ndarray] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    views: dict[str, str] = field(default_factory=dict)  # tensor -> tensor it is a view of
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    quant_scheme: str = "int8"
    patch: Any = None  # schedule.patches.PatchPlan when the first steps run patch by patch
    # --stream-input: this graph input never sits in the arena; the patch stage reads the rows
    # each patch needs through the caller's callback (schedule/patches.py)
    streamed_input: str | None = None
    # add_blob's index: blob_key -> (name, array stored), and len(blobs) when it was last in step
    _blob_names: dict = field(default_factory=dict, repr=False, compare=False)
    _blob_indexed: int = field(default=0, repr=False, compare=False)

    def root(self, tensor: str) -> str:
        while tensor in self.views:
            tensor = self.views[tensor]
        return tensor

    def add_blob(self, data: np.ndarray, hint: str) -> str:
        """Store constant data under a C-safe name; identical data (same dtype, shape and values,
        e.g. per-tensor requantization arrays) is stored once, under the first name it got.
        Found through a hash index, not by comparing with every blob (quadratic on deep models)."""
        data = np.ascontiguousarray(data)
        key = blob_key(data)
        if key is not None:
            found = self._find_blob(key)
            if found is not None:
                return found
        base = c_identifier(hint)
        name, k = base, 1
        while name in self.blobs:
            k += 1
            name = f"{base}_{k}"
        self.blobs[name] = data
        if key is not None:
            self._blob_names.setdefault(key, (name, data))
        self._blob_indexed = len(self.blobs)
        return name

    def _find_blob(self, key: tuple) -> str | None:
        """The first blob stored with this key, or None. `blobs` is a public dict: when it holds
        another number of blobs than the index saw, or the entry found is no longer in `blobs`,
        the index is rebuilt from `blobs` rather than answer stale."""
        if self._blob_indexed != len(self.blobs):
            self._reindex_blobs()
        entry = self._blob_names.get(key)
        if entry is not None and self.blobs.get(entry[0]) is not entry[1]:
            self._reindex_blobs()
            entry = self._blob_names.get(key)
        return None if entry is None else entry[0]

    def _reindex_blobs(self) -> None:
        self._blob_names = {}
        for name, existing in self.blobs.items():
            key = blob_key(existing)
            if key is not None:
                self._blob_names.setdefault(key, (name, existing))
        self._blob_indexed = len(self.blobs)

    @property
    def flash_bytes(self) -> int:
        return sum(b.nbytes for b in self.blobs.values()) + self.params_bytes

    @property
    def params_bytes(self) -> int:
        """Flash of the params structs; with patches, identical ones are stored once (codegen/emit.py)."""
        structs = [s.params for s in self.steps if hasattr(s.params, "C_STRUCT")]  # a StreamWindow has no struct
        if self.patch is not None:
            structs = list({(type(p).__name__, p): p for p in structs}.values())
        return sum(4 * params_word_count(p) for p in structs)

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.steps)


def blob_key(data: np.ndarray) -> tuple | None:
    """What makes two blobs the same for add_blob (np.array_equal with equal dtype and shape),
    as a hashable key; None for data that array_equal never finds equal to anything (NaN).
    Floats are keyed on their values with -0.0 as 0.0, since array_equal takes them as equal."""
    if data.dtype.kind in "fc":
        if np.isnan(data).any():
            return None
        data = data + data.dtype.type(0)  # -0.0 + 0.0 == +0.0
    digest = hashlib.sha1(np.ascontiguousarray(data).tobytes()).hexdigest()
    return (data.dtype.str, data.shape, digest)


def params_word_count(params) -> int:
    n = 0
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        n += len(v) if isinstance(v, (tuple, list)) else 1
    return n


_IDENT = re.compile(r"[^A-Za-z0-9_]")


def c_identifier(text: str, limit: int = 40) -> str:
    """Sanitize untrusted text into a C identifier: [A-Za-z_][A-Za-z0-9_]*, bounded length.

    Never returns a reserved name (leading underscore + capital / double underscore)."""
    ident = _IDENT.sub("_", text.encode("ascii", "replace").decode("ascii"))
    ident = re.sub("_+", "_", ident).strip("_")[:limit] or "t"
    if ident[0].isdigit():
        ident = "n" + ident
    return ident
