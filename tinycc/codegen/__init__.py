"""C code generation: jinja2 templates fed with a precomputed view of the Program and its plan."""
from .emit import generate_project  # noqa: F401
