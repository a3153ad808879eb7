"""Graph passes. Each pass is `fn(graph) -> bool` (changed); PIPELINE lists them in order."""
from .pipeline import PIPELINE, run_pipeline  # noqa: F401
