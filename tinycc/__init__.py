"""tinycc: compile trained ONNX networks into self-contained C for microcontrollers.

Python API (see tinycc/api.py): tinycc.compile(...) -> Model with .report, .files, .run(...),
.validate(...), .write(...); tinycc.layers(...) for the per-layer table of `tinycc inspect`.
Errors raise tinycc.errors exceptions: BadInput (and its subclass Unsupported), DoesNotFit.
"""

__version__ = "0.1.0"

from .api import Model, compile, layers, validate_markdown  # noqa: E402  (after __version__: cli imports it)
from .errors import BadInput, DoesNotFit, TinyccError, Unsupported  # noqa: E402

__all__ = ["compile", "Model", "layers", "validate_markdown", "BadInput", "DoesNotFit", "TinyccError",
           "Unsupported", "__version__"]
