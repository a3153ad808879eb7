"""Tensors given by the user in files: .npy for a one-input model, .npz keyed by input name."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import BadInput


def load_arrays(path: str | Path, input_names: list[str], what: str,
                select: bool = False) -> dict[str, np.ndarray]:
    """The file's arrays keyed by input name (`what` names the file in errors). With `select`,
    only the model's inputs are read from an .npz, and each of them must be there."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{what} {str(p)!r} does not exist")
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as exc:
        raise BadInput(f"{what} {str(p)!r} is not a .npy/.npz array file ({exc})") from None
    if isinstance(data, np.ndarray):
        if len(input_names) != 1:
            raise BadInput(f"the model has {len(input_names)} inputs ({', '.join(input_names)}); "
                           f"give the {what} as an .npz keyed by input name")
        return {input_names[0]: data}
    if not select:
        return {k: data[k] for k in data.files}
    missing = [n for n in input_names if n not in data.files]
    if missing:
        raise BadInput(f"{what} {str(p)!r} has no array for input(s) {missing} (has {data.files})")
    return {n: data[n] for n in input_names}
