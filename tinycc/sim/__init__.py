"""Simulation: build a generated project and run it (host C compiler; Cortex-M later)."""
