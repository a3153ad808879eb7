"""Scheduling: the execution order of the kernel calls (memory-aware, order.py). Patch-based
execution (MCUNetV2 stages) will live here too; memory/ then places the buffers of a schedule."""
from tinycc.schedule.order import OrderResult, best_order, cut_points, peak_bytes, search_order, step_bytes

__all__ = ["OrderResult", "best_order", "cut_points", "peak_bytes", "search_order", "step_bytes"]
