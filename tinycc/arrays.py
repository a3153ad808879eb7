"""Tensors given by the user in files: .npy for a one-input model, .npz keyed by input name."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import BadInput


def load_arrays(path: str | Path, input_names: list[str], what: str,
                select: bool = False, ignore: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The file's arrays keyed by input name (`what` names the file in errors). With `select`,
    only the model's inputs are read from an .npz, and each of them must be there. `ignore`:
    keys of an .npz that are not inputs (e.g. the labels of a data set)."""
    p = Path(path)
    data = open_array_file(p, f"{what} {str(p)!r}")
    if isinstance(data, np.ndarray):
        if len(input_names) != 1:
            raise BadInput(f"the model has {len(input_names)} inputs ({', '.join(input_names)}); "
                           f"give the {what} as an .npz keyed by input name")
        return {input_names[0]: data}
    if not select:
        return {k: data[k] for k in data.files}
    files = [k for k in data.files if k not in ignore]
    missing = [n for n in input_names if n not in files]
    if missing and len(input_names) == 1 and len(files) == 1:  # one array for one input: unambiguous
        return {input_names[0]: data[files[0]]}
    if missing:
        raise BadInput(f"{what} {str(p)!r} has no array for input(s) {missing} (has {files})")
    return {n: data[n] for n in input_names}


def open_array_file(path: str | Path, label: str):
    """np.load of an .npy (an array) or .npz (keyed arrays) without pickles; a missing or unreadable
    file is BadInput naming it by `label`."""
    if not Path(path).is_file():
        raise BadInput(f"{label} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise BadInput(f"{label} is not a .npy/.npz array file ({exc})") from None


def check_values(arrays: dict[str, np.ndarray], what: str, finite: bool) -> None:
    """Real numbers only (bool, integer or float); with `finite`, no NaN or infinity (they have
    no int8 value)."""
    for name, v in arrays.items():
        if not (v.dtype == np.bool_ or np.issubdtype(v.dtype, np.integer) or np.issubdtype(v.dtype, np.floating)):
            raise BadInput(f"{what}: array {name!r} has dtype {v.dtype}; expected real numbers (float or integer)")
        if finite and np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v)):
            raise BadInput(f"{what}: array {name!r} holds NaN or infinite values, which have no int8 value")


def split_samples(arrays: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]],
                  what: str) -> tuple[list[dict[str, np.ndarray]], str | None]:
    """One sample, or a batch of samples, per the model's input shapes.

    Accepted per input with expected shape S: exactly S (one sample); (N,) + S (a leading axis of
    N samples: mode "stack"); or, when S starts with a batch dimension of 1, N in its place
    (mode "batch"). Every input must hold the same number of samples. Returns (the samples, the
    mode: None for one sample); stack_outputs puts the per-sample results back together."""
    modes: dict[str, tuple[str | None, int]] = {}
    for name, want in shapes.items():
        got = tuple(arrays[name].shape)
        want = tuple(want)
        if got == want:
            modes[name] = (None, 1)
        elif got[1:] == want:
            modes[name] = ("stack", got[0])
        elif want and want[0] == 1 and len(got) == len(want) and got[1:] == want[1:]:
            modes[name] = ("batch", got[0])
        else:
            batch = f" or (N,) + {want[1:]}" if want and want[0] == 1 else ""
            raise BadInput(f"{what}: input {name!r} has shape {got}; the model expects {want} "
                           f"(a batch of N samples: (N,) + {want}{batch})")
    kinds = set(modes.values())
    if len(kinds) > 1:
        found = ", ".join(f"{n!r}: {'1 sample' if m is None else f'{k} samples'}" for n, (m, k) in modes.items())
        raise BadInput(f"{what}: every input must hold the same number of samples, laid out the same way ({found})")
    mode, count = kinds.pop() if kinds else (None, 1)
    if count == 0:
        raise BadInput(f"{what}: the batch holds no samples")
    if mode is None:
        return [dict(arrays)], None
    samples = []
    for i in range(count):
        sample = {}
        for name, want in shapes.items():
            v = arrays[name][i]
            sample[name] = v if mode == "stack" else v.reshape(tuple(want))
        samples.append(sample)
    return samples, mode


def stack_outputs(results: list[dict[str, np.ndarray]], mode: str | None) -> dict[str, np.ndarray]:
    """Per-sample outputs back into one array per output: as they are for one sample; stacked
    on a new leading axis (mode "stack"); concatenated along a leading batch dimension of 1
    (mode "batch"; outputs without one are stacked)."""
    if mode is None:
        return results[0]
    out = {}
    for name in results[0]:
        parts = [r[name] for r in results]
        if mode == "batch" and parts[0].ndim and parts[0].shape[0] == 1:
            out[name] = np.concatenate(parts, axis=0)
        else:
            out[name] = np.stack(parts, axis=0)
    return out
