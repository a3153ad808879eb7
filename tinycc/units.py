"""Parsing of command-line quantities: memory sizes (``--sram 256k``) and input shapes
(``--input-shape x=1x3x96x96``).

Size convention (the embedded one, as in MCU datasheets): every unit is binary, whatever its
spelling. ``k``/``K``/``kB``/``KB``/``KiB`` all mean 1024 bytes, ``M``/``MB``/``MiB`` mean
1024**2 and ``G``/``GB``/``GiB`` mean 1024**3; a bare number or a ``B`` suffix is bytes. Letters
are case-insensitive and a space may separate number and unit. A decimal number is accepted when
it comes to a whole number of bytes (``1.5M`` = 1572864, ``0.5k`` = 512; ``1.1k`` is refused).
Sizes must be positive.

Every parser raises ``ValueError`` with a message naming the offending text; the CLI turns it
into exit code 2.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from fractions import Fraction

_UNIT_BYTES = {
    "": 1,
    "b": 1,
    "k": 1024, "kb": 1024, "kib": 1024,
    "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1024**3, "gib": 1024**3,
}
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)")
_SIZE_HELP = "expected a positive number of bytes with an optional unit k/KiB/kB, M/MiB/MB or G (1k = 1024 bytes), e.g. 256k or 1.5M"

_DIM_SEPARATOR_RE = re.compile(r"[xX,]")
_SHAPE_HELP = "expected NAME=DIMS with positive integer dims separated by 'x' or ',', e.g. x=1x3x96x96"


def parse_size(text: str) -> int:
    """``"256k"`` -> 262144. See the module docstring for the accepted spellings."""
    match = _SIZE_RE.fullmatch(text.strip().lower())
    if match is None or match.group(2) not in _UNIT_BYTES:
        raise ValueError(f"invalid size {text!r}: {_SIZE_HELP}")
    number, unit = match.groups()
    size = Fraction(number) * _UNIT_BYTES[unit]
    if size.denominator != 1:
        raise ValueError(f"invalid size {text!r}: {float(size):g} is not a whole number of bytes")
    if size <= 0:
        raise ValueError(f"invalid size {text!r}: the size must be positive")
    return int(size)


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``"x=1x3x96x96"`` (or ``"x=1,3,96,96"``) -> ``("x", (1, 3, 96, 96))``.

    The name is everything before the last ``=``, so ONNX names that contain ``=`` work.
    """
    name, sep, dims_text = text.rpartition("=")
    name = name.strip()
    if not sep or not name:
        raise ValueError(f"invalid input shape {text!r}: {_SHAPE_HELP}")
    fields = [field.strip() for field in _DIM_SEPARATOR_RE.split(dims_text)]
    if not all(field.isdecimal() and field.isascii() for field in fields):
        raise ValueError(f"invalid input shape {text!r}: {_SHAPE_HELP}")
    dims = tuple(int(field) for field in fields)
    if any(dim == 0 for dim in dims):
        raise ValueError(f"invalid input shape {text!r}: every dimension must be at least 1")
    return name, dims


def parse_input_shapes(texts: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """Several ``--input-shape`` values -> ``{name: dims}``; naming one input twice is an error."""
    shapes: dict[str, tuple[int, ...]] = {}
    for text in texts:
        name, dims = parse_input_shape(text)
        if name in shapes:
            raise ValueError(f"input {name!r} is given more than one --input-shape")
        shapes[name] = dims
    return shapes
